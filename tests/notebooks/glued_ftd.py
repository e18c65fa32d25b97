"""What each FT-DeepNets notebook must glue (key -> check on the value); read by test_book.py.

Verdicts of the paper's claims depend on the trained networks, so they are checked to be one of the
four verdicts (holds, does not hold, inconclusive, not run — fatlib.core.verdicts), not to hold;
facts that hold by construction (KR is bit-exact without errors, averaging halves a single error,
the paper's MB follow from §4.3's estimate, ...) are checked to hold. Every claim also glues
``<key>_ours``: its difference with the 95 % interval, as text."""

from __future__ import annotations

import math

from fatlib.core.verdicts import VERDICTS


def _figure(v) -> bool:
    return "image/png" in v


def _percent(v) -> bool:
    return isinstance(v, (int, float)) and 0.0 <= v <= 100.0


def _verdict(v) -> bool:
    return v in VERDICTS


def _ours(v) -> bool:  # "+1.23 [-0.4, +2.9] pp", "+0.5 % (exact)" or "–" (not run)
    return isinstance(v, str) and (v == "–" or v[0] in "+-")


def _claims(prefix: str, checks: dict) -> dict:
    """The verdict checks of a page's claims, and a check of the ``_ours`` text of each."""
    return {**checks, **{f"{prefix}_claim_{k}_ours": _ours for k in _keys(prefix, checks)}}


def _keys(prefix: str, checks: dict) -> list[str]:
    head = f"{prefix}_claim_"
    return [k[len(head) :] for k in checks if k.startswith(head)]


def _positive(v) -> bool:
    return isinstance(v, (int, float)) and v > 0


def _correlation(v) -> bool:  # NaN (glued as the text 'nan') when one ordering is constant
    return v == "nan" or (isinstance(v, (int, float)) and (math.isnan(v) or -1.0 <= v <= 1.0))


def _common(prefix: str) -> dict:
    return {
        f"{prefix}_profile": lambda v: v == "smoke",
        f"{prefix}_setup": lambda v: isinstance(v, str) and "profile `smoke`" in v,
        f"{prefix}_profile_line": lambda v: isinstance(v, str) and v.startswith("profile `smoke`"),
        f"{prefix}_test_source": lambda v: isinstance(v, str) and v != "",
        f"{prefix}_eval_images": _positive,
        f"{prefix}_synthetic": lambda v: isinstance(v, bool),
    }


_NETS = ("vgg16", "mobilenet_v1")
_T3 = ("no_error", "no_duplication", "fmr_50", "fmr_20", "kr_50", "kr_20", "d2nn_50", "d2nn_20")

GLUED: dict[str, dict] = {
    "ftd-fig02-error-location": {
        **_common("ftd02"),
        "ftd02_figure": _figure,
        # the paper's numbers quoted in the prose (§2.3, §4), from fatlib/core/paper_tables/quotes.csv
        "paper_ftd_vgg_map_at_10pct": lambda v: v == 77,
        "paper_ftd_mobilenet_map_fm_10pct": lambda v: v == 62,
        "paper_ftd_mobilenet_map_kernel_10pct": lambda v: v == 0,
        "paper_ftd_vgg_error_free_map": lambda v: v == 77.26,
        "paper_ftd_mobilenet_error_free_map": lambda v: v == 67.5,
        "ftd02_max_rate": lambda v: abs(v - 10.0) < 1e-9,
        **{f"ftd02_clean_{n}": _percent for n in _NETS},
        **{f"ftd02_{n}_{loc}_max": _percent for n in _NETS for loc in ("kernel", "fmap")},
        "ftd02_seeds": lambda v: v == 1,
        **_claims(
            "ftd02",
            {
                "ftd02_claim_kernel_worse": _verdict,
                "ftd02_claim_kernel_worse_vgg16": _verdict,
                "ftd02_claim_kernel_worse_mobilenet_v1": _verdict,
                "ftd02_claim_compact_more_sensitive": _verdict,
            },
        ),
    },
    "ftd-fig03-ranking": {
        **_common("ftd03"),
        "ftd03_figure": _figure,
        "ftd03_layer": lambda v: v == "features.20",
        "ftd03_channels": _positive,
        "ftd03_k": _positive,
        "ftd03_in_all_three": lambda v: isinstance(v, int) and v >= 0,
        "ftd03_rank_images": _positive,
        **{f"ftd03_overlap_{p}": _percent for p in ("ws_so", "ws_ent", "so_ent")},
        # observations of ours (Fig. 3 is a diagram), not the paper's claims
        **_claims("ftd03", {"ftd03_claim_differ": _verdict, "ftd03_claim_not_random": _verdict}),
    },
    "ftd-fig04-duplication": {
        **_common("ftd04"),
        "ftd04_figure": _figure,
        "ftd04_pairing": _figure,
        "ftd04_kr_exact": lambda v: v is True,
        "ftd04_fmr_max_diff": lambda v: 0.0 <= v < 1e-3,
        "ftd04_fmr_same_predictions": lambda v: v >= 99.0,
        "ftd04_kr_halfway": lambda v: v is True,
        "ftd04_kr_unprotected_equal": lambda v: v is True,
        "ftd04_fmr_halfway": lambda v: v is True,
        "ftd04_depthwise_whole": lambda v: v is True,
        "ftd04_depthwise_pairs": lambda v: v == 13,
        "ftd04_pointwise_share": lambda v: 45.0 <= v <= 55.0,
        **_claims(
            "ftd04",
            {
                "ftd04_claim_identity": lambda v: v == "holds",
                "ftd04_claim_kr_halves_kernel_error": lambda v: v == "holds",
                "ftd04_claim_fmr_halves_fmap_error": lambda v: v == "holds",
                "ftd04_claim_depthwise_whole": lambda v: v == "holds",
            },
        ),
    },
    "ftd-fig06-ranking-methods": {
        **_common("ftd06"),
        "ftd06_figure": _figure,
        "paper_ftd_mobilenet_map_fm_10pct_fig6": lambda v: v == 10,
        "paper_ftd_vgg_map_fm_10pct_fig6": lambda v: v == 74,
        "paper_ftd_vgg_map_weight_10pct_fig6": lambda v: v == 69,
        "ftd06_panels": lambda v: v == 4,
        "ftd06_seeds": lambda v: v == 1,
        "ftd06_gain": lambda v: isinstance(v, float) and -100.0 <= v <= 100.0,
        **{f"ftd06_clean_{n}": _percent for n in _NETS},
        "paper_ftd_dup_gain_fig6": lambda v: v == 10,
        "ftd06_within_std_share": _percent,
        "ftd06_within_std_pairs": _positive,
        **_claims(
            "ftd06",
            {
                "ftd06_claim_beats_random": _verdict,
                "ftd06_claim_random_beats_none": _verdict,
                "ftd06_claim_dup_beats_none": _verdict,
            },
        ),
    },
    "ftd-fig07-kr-vs-fmr": {
        **_common("ftd07"),
        "ftd07_figure": _figure,
        "ftd07_weight_only_relative_diff": lambda v: 0.0 <= v < 1e-5,
        "ftd07_weight_only_same_predictions": lambda v: v >= 99.0,
        # "similar" (Obs. 1, §4.2): the largest KR–FMR gap of the paper's Table 3, 3 points
        "ftd07_similar_tolerance": lambda v: abs(v - 3.0) < 1e-9,
        "ftd07_seeds": lambda v: v == 1,
        **_claims(
            "ftd07",
            {
                "ftd07_claim_fmr_ge_kr_fmap": _verdict,
                "ftd07_claim_fmr_gap_grows": _verdict,
                "ftd07_claim_kr_ge_fmr_weight": _verdict,
                "ftd07_claim_kr_similar_low_fmap": _verdict,
                "ftd07_claim_obs1_kr_similar": _verdict,
            },
        ),
    },
    "ftd-table1-latency": {
        **_common("ftdt1"),
        "ftdt1_figure": _figure,
        # FMR's latency overhead in the paper's Table 1: +40 % (Xavier, MobileNet) to +92 % (x86, VGG)
        "ftdt1_paper_fmr_min": lambda v: abs(v - 40.21) < 0.01,
        "ftdt1_paper_fmr_max": lambda v: abs(v - 92.26) < 0.01,
        "ftdt1_device": lambda v: isinstance(v, str) and v.startswith("cpu"),
        **{f"ftdt1_{n}_{m}_ratio": _positive for n in _NETS for m in ("kr", "fmr")},
        **{f"ftdt1_{n}_original_ms": _positive for n in _NETS},
        **{f"ftdt1_{n}_fmr_bound": lambda v: 1.0 < v < 2.0 for n in _NETS},
        "ftdt1_rounds": lambda v: v == 1,
        "ftdt1_paper_kr_speed_drop": lambda v: v == 10,  # Obs. 1: "KR drops only by 10% in speed"
        **_claims(
            "ftdt1",
            {
                "ftdt1_claim_kr_far_less": _verdict,
                "ftdt1_claim_fmr_slower": _verdict,
                "ftdt1_claim_obs1_kr_speed": _verdict,
            },
        ),
    },
    "ftd-table2-memory": {
        **_common("ftdt2"),
        **{f"ftdt2_{n}_{m}_mb": _positive for n in _NETS for m in ("kr", "fmr")},
        **{f"ftdt2_{n}_{m}_relative": _positive for n in _NETS for m in ("kr", "fmr")},
        "ftdt2_paper_vgg_kr_mb": lambda v: v == 29.6,
        "ftdt2_paper_vgg_fmr_mb": lambda v: v == 78,
        "ftdt2_paper_mobilenet_kr_mb": lambda v: v == 6.4,
        "ftdt2_paper_mobilenet_fmr_mb": lambda v: v == 16.8,
        "paper_ftd_mobilenet_fmr_fm_elements_million": lambda v: v == 2.6,
        # the paper-scale estimate does not depend on the profile (SSD-VGG: 29.6 / 78 MB printed)
        "ftdt2_paper_scale_vgg16_kr_mb": lambda v: abs(v - 29.6) < 0.5,
        "ftdt2_paper_scale_vgg16_fmr_mb": lambda v: abs(v - 78.0) < 1.0,
        "ftdt2_paper_scale_mobilenet_v1_kr_mb": lambda v: abs(v - 6.4) < 0.3,
        "ftdt2_paper_scale_mobilenet_v1_fmr_mb": _positive,
        # KR in operation keeps averaged kernels beside the duplicated ones (§4.3's text)
        **{f"ftdt2_{n}_kr_operation_ratio": lambda v: v > 1.0 for n in _NETS},
        # MobileNetV1 at the paper's size: duplicated feature-map elements (millions)
        "ftdt2_mobilenet_fm_stem_pointwise_million": lambda v: 2.0 < v < 3.5,
        "ftdt2_mobilenet_fm_all_million": lambda v: v > 3.5,
        "ftdt2_mobilenet_fm_paper_vs_stem_pointwise": lambda v: -20.0 < v < 20.0,
        "ftdt2_mobilenet_fm_paper_share_of_all": _percent,
        **_claims(
            "ftdt2",
            {
                # measured in operation: Table 2 counts no averaged kernels (exact, so never inconclusive)
                "ftdt2_claim_kr_matches_estimate": lambda v: v in ("holds", "does not hold"),
                "ftdt2_claim_fmr_more": lambda v: v == "holds",
                "ftdt2_claim_paper_scale_vgg16": lambda v: v == "holds",
                "ftdt2_claim_paper_scale_mobilenet_v1": _verdict,
            },
        ),
    },
    "ftd-table3-d2nn": {
        **_common("ftdt3"),
        "ftdt3_figure": _figure,
        **{f"ftdt3_{c}": _percent for c in _T3},
        **{f"ftdt3_fps_{c}": _positive for c in _T3},
        "ftdt3_order_spearman": _correlation,
        "ftdt3_fps_spearman": _correlation,
        "ftdt3_seeds": lambda v: v == 1,
        "ftdt3_rounds": lambda v: v == 1,
        **_claims(
            "ftdt3",
            {
                "ftdt3_claim_beat_d2nn": _verdict,
                "ftdt3_claim_dup_recovers": _verdict,
                "ftdt3_claim_more_dup_better": _verdict,
                "ftdt3_claim_kr_faster": _verdict,
            },
        ),
    },
}
