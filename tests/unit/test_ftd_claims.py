"""The FT-DeepNets chapter's claims (fatlib.ftd.experiments ``*_claims``) on small hand-made
results: each claim compares a difference with its 95 % interval (error seeds, measurement
rounds, layers, or exact) and the verdict flips between holds / does not hold / inconclusive
(or is not run) as the numbers change; the paper's constants come from the quotes table."""

from __future__ import annotations

import pandas as pd
import pytest

from fatlib.core import paper
from fatlib.core.verdicts import DOES_NOT_HOLD, HOLDS, INCONCLUSIVE, NOT_RUN, Claim, claims_table
from fatlib.ftd import experiments as ftd

SEEDS = (0, 1, 2)


def _verdicts(claims: dict[str, Claim]) -> dict[str, str]:
    return {k: c.verdict for k, c in claims.items()}


# ------------------------------------------------------------------------------------------
# Fig. 2 — error location
# ------------------------------------------------------------------------------------------
def _location(kernel: dict[str, list[float]], fmap: dict[str, list[float]], clean=None) -> pd.DataFrame:
    """Fig. 2 results: per network, the accuracy at 10 % kernel / feature-map errors per seed."""
    clean = clean or {"vgg16": 80.0, "mobilenet_v1": 70.0}
    rows = []
    for net in kernel:
        for i, s in enumerate(SEEDS[: len(kernel[net])]):
            for loc, acc in (("kernel", kernel[net][i]), ("feature map", fmap[net][i])):
                rows.append({"network": net, "location": loc, "rate": 0.0, "seed": s, "accuracy": clean[net]})
                rows.append({"network": net, "location": loc, "rate": 0.1, "seed": s, "accuracy": acc})
    return pd.DataFrame(rows)


def test_error_location_claims_flip():
    holds = _location(
        {"vgg16": [60, 61, 62], "mobilenet_v1": [20, 21, 22]},
        {"vgg16": [70, 72, 71], "mobilenet_v1": [40, 42, 41]},
    )
    c = ftd.error_location_claims(holds)
    assert _verdicts(c) == {
        "kernel_worse_vgg16": HOLDS,
        "kernel_worse_mobilenet_v1": HOLDS,
        "kernel_worse": HOLDS,
        "compact_more_sensitive": HOLDS,
    }
    k = c["kernel_worse_vgg16"]
    assert k.relation == "<" and k.difference == pytest.approx(-10.0) and k.low < k.difference < k.high
    assert k.method == "t interval over 3 error seeds" and k.unit == "pp"
    assert k.paper.startswith("§2.3, Fig. 2: SSD-VGG 77 % mAP under 10 % kernel vs 77 %")
    # kernel errors better than feature-map errors in VGG: does not hold there, nor for both
    worse = _location(
        {"vgg16": [75, 76, 77], "mobilenet_v1": [20, 21, 22]},
        {"vgg16": [70, 71, 72], "mobilenet_v1": [40, 42, 41]},
    )
    v = _verdicts(ftd.error_location_claims(worse))
    assert v["kernel_worse_vgg16"] == DOES_NOT_HOLD and v["kernel_worse"] == DOES_NOT_HOLD
    assert v["kernel_worse_mobilenet_v1"] == HOLDS
    # noisy seeds: the interval spans 0
    noisy = _location(
        {"vgg16": [60, 75, 66], "mobilenet_v1": [20, 21, 22]},
        {"vgg16": [70, 64, 68], "mobilenet_v1": [40, 42, 41]},
    )
    v = _verdicts(ftd.error_location_claims(noisy))
    assert v["kernel_worse_vgg16"] == INCONCLUSIVE and v["kernel_worse"] == INCONCLUSIVE
    # one seed: the spread is unknown
    one = _location({"vgg16": [60], "mobilenet_v1": [20]}, {"vgg16": [70], "mobilenet_v1": [40]})
    assert set(_verdicts(ftd.error_location_claims(one)).values()) == {INCONCLUSIVE}
    # one network only: the comparison between networks did not run
    alone = ftd.error_location_claims(holds[holds["network"] == "vgg16"])
    assert alone["compact_more_sensitive"].verdict == NOT_RUN and alone["kernel_worse"].verdict == HOLDS


def test_synthetic_claims_are_labelled():
    holds = _location(
        {"vgg16": [60, 61, 62], "mobilenet_v1": [20, 21, 22]},
        {"vgg16": [70, 72, 71], "mobilenet_v1": [40, 42, 41]},
    )
    c = ftd.error_location_claims(holds, synthetic=True)
    assert all(x.synthetic for x in c.values())
    assert not any(x.synthetic for x in ftd.error_location_claims(holds).values())
    table = claims_table(list(c.values()))
    assert table["synthetic"].all() and table["ours"].str.contains(r"\[").all()


# ------------------------------------------------------------------------------------------
# Fig. 3 — the rankings' overlaps are observations, not claims of the paper
# ------------------------------------------------------------------------------------------
def _overlaps(fractions: list[float]) -> pd.DataFrame:
    rows = []
    for a, b in (("weight_sum", "second_order"), ("weight_sum", "entropy"), ("second_order", "entropy")):
        for i, f in enumerate(fractions):
            rows.append(
                {"a": a, "b": b, "layer": f"l{i}", "k": 8, "common": 8 * f, "fraction": f, "jaccard": 0.0}
            )
    for i in range(len(fractions)):  # random selection's pairs are left out
        rows.append(
            {
                "a": "weight_sum",
                "b": "random",
                "layer": f"l{i}",
                "k": 8,
                "common": 0,
                "fraction": 0.0,
                "jaccard": 0,
            }
        )
    return pd.DataFrame(rows)


def test_ranking_observations_flip():
    c = ftd.ranking_claims(_overlaps([0.70, 0.72, 0.68, 0.71]))
    assert _verdicts(c) == {"differ": HOLDS, "not_random": HOLDS}
    assert all(x.kind == "observation" and x.paper == ftd.FIG03_PAPER for x in c.values())
    assert c["not_random"].method.startswith("t interval over 4 layers")
    same = _verdicts(ftd.ranking_claims(_overlaps([0.95, 0.96, 0.97, 0.95])))
    assert same == {"differ": DOES_NOT_HOLD, "not_random": HOLDS}
    chance = _verdicts(ftd.ranking_claims(_overlaps([0.30, 0.70, 0.50, 0.60])))
    assert chance == {"differ": HOLDS, "not_random": INCONCLUSIVE}
    below = _verdicts(ftd.ranking_claims(_overlaps([0.40, 0.42, 0.41, 0.39])))
    assert below["not_random"] == DOES_NOT_HOLD
    # observations are not counted on the scoreboard
    from fatlib.core.verdicts import verdict_counts

    assert sum(verdict_counts(claims_table(list(c.values()))).values()) == 0


# ------------------------------------------------------------------------------------------
# Fig. 4 — exact demonstrations
# ------------------------------------------------------------------------------------------
def test_duplication_claims_are_exact():
    agreement = pd.DataFrame(
        {"equal": [True, False], "max_abs_diff": [0.0, 2e-6], "same_predictions": [1.0, 1.0]},
        index=["vgg16 KR", "vgg16 FMR"],
    )
    kr = {"max_error_no_duplication": 0.4, "max_error_kr": 0.2, "unprotected_channel_equal": True}
    fmr = {"clean_value": 3.0, "fmr_value": 1.5, "halfway": True}
    mn = pd.DataFrame({"paired_depthwise": [True, False], "duplicated": [8, 4], "channels": [8, 8]})
    c = ftd.duplication_claims(agreement, kr, fmr, {"mobilenet_v1": mn})
    assert set(_verdicts(c).values()) == {HOLDS}
    assert all(x.low == x.high == x.difference for x in c.values())  # exact: no interval
    assert "1e-03" in c["kr_halves_kernel_error"].claim or "0.001" in c["kr_halves_kernel_error"].claim
    bad = ftd.duplication_claims(
        agreement.assign(max_abs_diff=[0.0, 0.5]),
        {**kr, "max_error_kr": 0.4},
        {**fmr, "fmr_value": 3.0},
        {"mobilenet_v1": mn.assign(duplicated=[4, 4])},
    )
    assert set(_verdicts(bad).values()) == {DOES_NOT_HOLD}
    none = ftd.duplication_claims(agreement, kr, fmr, {"mobilenet_v1": mn[~mn["paired_depthwise"]]})
    assert none["depthwise_whole"].verdict == NOT_RUN


# ------------------------------------------------------------------------------------------
# Fig. 6 — ranking methods
# ------------------------------------------------------------------------------------------
def _fig06(acc: dict[str, list[float]]) -> pd.DataFrame:
    rows = []
    for rk, per_seed in acc.items():
        for s, a in zip(SEEDS, per_seed):
            for f in (0.01, 0.1):
                rows.append(
                    {
                        "network": "vgg16",
                        "duplication": "kr",
                        "weight_rate": 0.01,
                        "ranking": rk,
                        "fmap_rate": f,
                        "seed": s,
                        "accuracy": a,
                    }
                )
    return pd.DataFrame(rows)


def test_ranking_methods_claims_flip():
    base = {
        "weight_sum": [60, 61, 62],
        "second_order": [58, 59, 60],
        "entropy": [57, 58, 59],
        "random": [50, 51, 52],
        "none": [40, 41, 42],
    }
    c = ftd.ranking_methods_claims(_fig06(base))
    assert _verdicts(c) == {"beats_random": HOLDS, "random_beats_none": HOLDS, "dup_beats_none": HOLDS}
    assert "10 % better" in c["dup_beats_none"].paper  # the quoted gain (quotes.csv)
    v = _verdicts(ftd.ranking_methods_claims(_fig06({**base, "weight_sum": [45, 46, 47]})))
    assert v["beats_random"] == DOES_NOT_HOLD and v["dup_beats_none"] == HOLDS
    v = _verdicts(ftd.ranking_methods_claims(_fig06({**base, "weight_sum": [40, 62, 55]})))
    assert v["beats_random"] == INCONCLUSIVE
    spread = ftd.rankings_within_one_std(_fig06({**base, "weight_sum": [40, 62, 55]}))
    assert spread["pairs"] == 2 * 6  # 2 rates × 4 rankings choose 2
    # weight-sum's spread covers the other three; second-order and entropy are 1 apart (std 1)
    assert spread["within"] == 2 * (3 + 1)
    assert spread["share"] == pytest.approx(100 * 8 / 12)
    rows = ftd.ranking_methods_comparison(_fig06(base), {"vgg16": 80.0})
    assert rows[-1]["paper"] == paper.quote("ftd_dup_gain_fig6")
    assert rows[0]["paper"] == pytest.approx(100 * paper.quote("ftd_vgg_map_fm_10pct_fig6") / 77.26)


# ------------------------------------------------------------------------------------------
# Fig. 7 — KR vs FMR, §4.2 and Observation 1
# ------------------------------------------------------------------------------------------
def _fig07(kr: dict[float, list[float]], fmr: dict[float, list[float]], varied="fmap", net="mobilenet_v1"):
    rows = []
    for dup, by_rate in (("kr", kr), ("fmr", fmr)):
        for rate, per_seed in by_rate.items():
            for s, a in zip(SEEDS, per_seed):
                w, f = (0.01, rate) if varied == "fmap" else (rate, 0.01)
                rows.append(
                    {
                        "network": net,
                        "duplication": dup,
                        "varied": varied,
                        "rate": rate,
                        "weight_rate": w,
                        "fmap_rate": f,
                        "seed": s,
                        "accuracy": a,
                    }
                )
    return pd.DataFrame(rows)


def test_kr_vs_fmr_claims_flip():
    assert ftd.kr_fmr_similar_tolerance() == pytest.approx(3.0)  # Table 3: KR 35 vs FMR 32 at 20 %
    weight = _fig07({0.01: [60, 61, 62]}, {0.01: [58, 59, 60]}, varied="weight")
    # similar at 1 %, FMR ahead and further ahead at 10 %
    a = _fig07({0.01: [60, 61, 62], 0.1: [40, 41, 42]}, {0.01: [61, 61.5, 62.5], 0.1: [50, 52, 51]})
    c = ftd.kr_vs_fmr_claims(a, weight)
    assert _verdicts(c) == {
        "fmr_ge_kr_fmap": HOLDS,
        "fmr_gap_grows": HOLDS,
        "kr_ge_fmr_weight": HOLDS,
        "kr_similar_low_fmap": HOLDS,
        "obs1_kr_similar": HOLDS,
    }
    obs1 = c["obs1_kr_similar"]
    assert obs1.relation == "~" and obs1.tolerance == pytest.approx(3.0) and "±3 points" in obs1.claim
    assert "Table 3" in obs1.paper and "§4.4 Obs. 1" in obs1.paper
    # KR far below FMR at low rates: not similar
    far = _fig07({0.01: [50, 51, 52], 0.1: [45, 46, 47]}, {0.01: [61, 61.5, 62.5], 0.1: [50, 52, 51]})
    v = _verdicts(ftd.kr_vs_fmr_claims(far, weight))
    assert v["obs1_kr_similar"] == DOES_NOT_HOLD and v["kr_similar_low_fmap"] == DOES_NOT_HOLD
    assert v["fmr_gap_grows"] == DOES_NOT_HOLD  # the gap shrinks from about 10.7 to 5
    # seeds that disagree: the interval is wider than the tolerance
    noisy = _fig07({0.01: [60, 55, 66], 0.1: [40, 41, 42]}, {0.01: [61, 61.5, 62.5], 0.1: [50, 52, 51]})
    assert ftd.kr_vs_fmr_claims(noisy, weight)["obs1_kr_similar"].verdict == INCONCLUSIVE
    # a custom tolerance is stated and tested: ±0.1 points is narrower than the interval
    tight = ftd.kr_vs_fmr_claims(a, weight, tolerance=0.1)["obs1_kr_similar"]
    assert tight.verdict == INCONCLUSIVE and "±0.1 points" in tight.claim and tight.tolerance == 0.1
    # Table 3's setting not in the sweep, or no weight sweep: not run
    v = _verdicts(ftd.kr_vs_fmr_claims(a[a["rate"] == 0.1], weight.iloc[0:0]))
    assert v["obs1_kr_similar"] == NOT_RUN and v["kr_ge_fmr_weight"] == NOT_RUN
    assert v["fmr_gap_grows"] == NOT_RUN  # a single rate has no growth
    # KR worse than FMR under weight errors
    w_bad = _fig07({0.01: [50, 51, 52]}, {0.01: [58, 59, 60]}, varied="weight")
    assert ftd.kr_vs_fmr_claims(a, w_bad)["kr_ge_fmr_weight"].verdict == DOES_NOT_HOLD


# ------------------------------------------------------------------------------------------
# Table 1 — latency, per measurement round
# ------------------------------------------------------------------------------------------
def _rounds(kr: list[float], fmr: list[float]) -> pd.DataFrame:
    rows = []
    for r, (k, f) in enumerate(zip(kr, fmr)):
        for model, ratio in (("original", 1.0), ("kr", k), ("fmr", f)):
            rows.append(
                {
                    "network": "vgg16",
                    "model": model,
                    "round": r,
                    "median_ms": 10.0 * ratio,
                    "ratio": ratio,
                    "device": "cpu (2 threads)",
                    "macs_bound": 1.0,
                }
            )
    return pd.DataFrame(rows)


def test_latency_claims_flip():
    c = ftd.latency_claims(_rounds([1.02, 1.03, 1.025], [1.8, 1.85, 1.75]))
    assert _verdicts(c) == {"kr_far_less": HOLDS, "fmr_slower": HOLDS, "obs1_kr_speed": HOLDS}
    speed = c["obs1_kr_speed"]
    assert speed.relation == "<=" and speed.tolerance == paper.quote("ftd_obs1_kr_speed_drop") == 10.0
    assert "within 10 %" in speed.claim and speed.method.startswith("t interval over 3 measurement rounds")
    assert "Table 1: KR -1 % to +20 %, FMR +40 % to +92 %" in c["kr_far_less"].paper
    slow = _verdicts(ftd.latency_claims(_rounds([1.5, 1.45, 1.55], [1.6, 1.65, 1.55])))
    assert slow["obs1_kr_speed"] == DOES_NOT_HOLD and slow["kr_far_less"] == DOES_NOT_HOLD
    assert slow["fmr_slower"] == HOLDS
    noisy = _verdicts(ftd.latency_claims(_rounds([1.0, 1.3, 1.05], [1.8, 1.85, 1.75])))
    assert noisy["obs1_kr_speed"] == INCONCLUSIVE
    one = _verdicts(ftd.latency_claims(_rounds([1.02], [1.8])))
    assert set(one.values()) == {INCONCLUSIVE}  # one round: the spread is unknown
    no_kr = _rounds([1.02, 1.03], [1.8, 1.85])
    v = _verdicts(ftd.latency_claims(no_kr[no_kr["model"] != "kr"]))
    assert v["obs1_kr_speed"] == NOT_RUN and v["fmr_slower"] == HOLDS


# ------------------------------------------------------------------------------------------
# Table 2 — memory: what the paper states, measured
# ------------------------------------------------------------------------------------------
def _comparison(vgg_scale: tuple[float, float] = (29.6, 78.0), fmr_mb: float = 0.2) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "network": "VGG-16",
                "method": "KR",
                "paper_mb": 29.6,
                "paper_scale_mb": vgg_scale[0],
                "ours_measured_mb": 0.1,
            },
            {
                "network": "VGG-16",
                "method": "FMR",
                "paper_mb": 78.0,
                "paper_scale_mb": vgg_scale[1],
                "ours_measured_mb": fmr_mb,
            },
        ]
    )


def _kr_memory(averaged: int) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "network": "vgg16",
                "duplicated_bytes": 1000,
                "averaged_bytes": averaged,
                "total_bytes": 1000 + averaged,
                "estimate_bytes": 1000,
            }
        ]
    )


def test_memory_claims_flip():
    c = ftd.memory_claims(_comparison(), _kr_memory(0))
    assert _verdicts(c) == {"kr_matches_estimate": HOLDS, "fmr_more": HOLDS, "paper_scale_vgg16": HOLDS}
    kr = c["kr_matches_estimate"]
    assert kr.relation == "~" and kr.tolerance == 5.0 and "within ±5 %" in kr.claim and kr.unit == "%"
    assert "averaged" in kr.paper and "29.6 MB" in kr.paper
    # KR keeps averaged kernels as large as the duplicated ones: twice Table 2's estimate
    c = ftd.memory_claims(_comparison((29.0, 90.0), fmr_mb=0.05), _kr_memory(1000))
    assert _verdicts(c) == {
        "kr_matches_estimate": DOES_NOT_HOLD,
        "fmr_more": DOES_NOT_HOLD,
        "paper_scale_vgg16": DOES_NOT_HOLD,  # FMR 90 MB computed vs 78 printed
    }
    assert c["kr_matches_estimate"].difference == pytest.approx(100.0)
    assert ftd.memory_claims(_comparison(), _kr_memory(40))["kr_matches_estimate"].verdict == HOLDS  # +4 %
    assert ftd.memory_claims(_comparison())["kr_matches_estimate"].verdict == NOT_RUN
    # byte counts are exact: never inconclusive
    assert all(x.low == x.high for x in c.values())


def test_paper_scale_fmr_maps_are_computed():
    m = ftd.paper_scale_fmr_maps()
    assert m["paper"] == paper.quote("ftd_mobilenet_fmr_fm_elements_million") == 2.6
    assert 2.0 < m["stem_pointwise"] < 3.5 < m["all"]  # the depthwise maps, duplicated whole, add more
    assert m["paper_vs_stem_pointwise"] == pytest.approx(100 * (2.6 / m["stem_pointwise"] - 1))


# ------------------------------------------------------------------------------------------
# Table 3 — D2NN, per seed and per round
# ------------------------------------------------------------------------------------------
def _runs(acc: dict[str, list[float]]) -> pd.DataFrame:
    rows = []
    for v, per_seed in acc.items():
        for s, a in zip(SEEDS, per_seed):
            for cls, shift in (("cat", -1.0), ("dog", 1.0)):
                rows.append({"variant": v, "seed": s, "class": cls, "accuracy": a + shift})
            rows.append({"variant": v, "seed": s, "class": "overall", "accuracy": a})
    return pd.DataFrame(rows)


def _fps(kr: list[float], fmr: list[float]) -> pd.DataFrame:
    rows = []
    for r, (k, f) in enumerate(zip(kr, fmr)):
        for v, fps in (("kr_50", k), ("kr_20", k), ("fmr_50", f), ("fmr_20", f)):
            rows.append({"variant": v, "round": r, "fps": fps})
    return pd.DataFrame(rows)


def test_table3_claims_flip():
    acc = {
        "no_error": [80, 80, 80],
        "no_duplication": [40, 41, 42],
        "fmr_50": [60, 61, 62],
        "fmr_20": [55, 56, 57],
        "kr_50": [59, 60, 61],
        "kr_20": [54, 55, 56],
        "d2nn_50": [50, 51, 52],
        "d2nn_20": [45, 46, 47],
    }
    c = ftd.table3_claims(_runs(acc), _fps([100, 101, 99], [70, 69, 71]))
    assert set(_verdicts(c).values()) == {HOLDS}
    assert c["beat_d2nn"].method.endswith("every network must hold")  # fatlib.core.verdicts.every
    table = ftd.per_class_from_runs(_runs(acc))
    assert table.loc["mean per-class", "kr_50"] == pytest.approx(60.0)
    v = _verdicts(
        ftd.table3_claims(_runs({**acc, "d2nn_50": [65, 66, 67]}), _fps([60, 61, 59], [70, 69, 71]))
    )
    assert v["beat_d2nn"] == DOES_NOT_HOLD and v["kr_faster"] == DOES_NOT_HOLD
    v = _verdicts(ftd.table3_claims(_runs({**acc, "kr_20": [50, 62, 58]}), _fps([100, 60, 80], [70, 69, 71])))
    assert v["more_dup_better"] == INCONCLUSIVE and v["kr_faster"] == INCONCLUSIVE
    v = _verdicts(
        ftd.table3_claims(_runs({k: x for k, x in acc.items() if k != "d2nn_20"}), _fps([100], [70]))
    )
    assert v["beat_d2nn"] == HOLDS  # D2NN 20 % did not run: the pairs that ran decide
    assert v["kr_faster"] == INCONCLUSIVE


# ------------------------------------------------------------------------------------------
# the paper's constants live in one table
# ------------------------------------------------------------------------------------------
def test_paper_numbers_come_from_the_quotes_table():
    assert ftd.paper_error_free() == {
        "vgg16": paper.quote("ftd_vgg_error_free_map"),
        "mobilenet_v1": paper.quote("ftd_mobilenet_error_free_map"),
    }
    assert ftd.PAPER_ERROR_FREE == ftd.paper_error_free()  # fatlib 0.2's name, read from the table
    q = paper.quotes().set_index("key")
    for key in ("ftd_dup_gain_fig6", "ftd_obs1_kr_speed_drop"):
        assert q.loc[key, "paper"] == "FT-DeepNets" and q.loc[key, "text"]
    import ast
    import inspect

    numbers = {n.value for n in ast.walk(ast.parse(inspect.getsource(ftd))) if isinstance(n, ast.Constant)}
    held = numbers & {77.26, 67.5, 77.0, 62.0, 74.0, 69.0}  # §2.3, §4, §4.1's numbers
    assert not held, f"paper numbers held outside the quotes table: {held}"
