"""The experiments of the FT-DeepNets chapter (Baek et al., WACV 2022), one section per figure or
table with its claims, built on :mod:`fatlib.ftd.errors`, :mod:`fatlib.ftd.ranking`,
:mod:`fatlib.ftd.duplication`, :mod:`fatlib.ftd.overhead` and :mod:`fatlib.ftd.evaluation`; their
figures are drawn by :mod:`fatlib.ftd.plots`. The chapter's notebooks only call these functions and
narrate.

Stand-ins (``../shared/papers/README.md``): the paper's SSD-VGG / SSD-MobileNet detectors become
the VGG-16 / MobileNetV1 classifiers of :mod:`fatlib.core.models` on CIFAR-10, so *accuracy*
replaces mAP and *per-class accuracy* replaces per-class AP.

Error model (§2.2, §4, §4.1): zero errors, drawn afresh at every forward call (one draw per
batch of ``batch_size`` images), in the kernels and output feature maps of the feature-extraction
layers only — every ``Conv2d`` (and duplicated convolution), not the classifier
(:mod:`fatlib.ftd.evaluation`).

Sizes and setup
---------------
:func:`sweep_sizes` reads every size of the chapter's sweeps from the scale profile
(:attr:`fatlib.core.profiles.Profile.ftd_sweep`: test images per evaluation, error rates on the x
axes, latency timing budget; the number of error seeds is ``profile.seeds``), so the code path is
the same at every scale. :func:`setup` is what every page starts with: sizes, output folder, the
trained networks and the evaluation data.

Claims
------
Every ``*_claims`` function returns ``{key: Claim}`` (:class:`fatlib.core.verdicts.Claim`): the
paper's claim, where the paper says it and with what number, our difference A − B with its 95 %
interval, and the verdict **holds**, **does not hold**, **inconclusive** or **not run**
(:func:`fatlib.core.verdicts.compare`; a claim over several networks, panels or ratios must hold
for each: :func:`fatlib.core.verdicts.every`). Where the intervals come from:

* accuracy — the sweeps' error seeds (``profile.seeds``: smoke 1, cpu 3, paper 3): each curve is
  reduced to one number per seed, two methods are compared through their per-seed differences
  (paired: the same seeds), and the mean difference gets a Student-t interval
  (:func:`fatlib.core.verdicts.seed_estimate`); with one seed the spread is unknown and the
  verdict inconclusive;
* latency and FPS — the measurement rounds (each round times every variant in turn);
* byte sizes, counts and the deterministic demonstrations of Fig. 4 — exact (no interval);
* Fig. 3's overlaps — the layers (and they are observations, not claims: Fig. 3 is a diagram).

"A ≈ B" and "A is not below B" claims state their tolerance in their text and docstring. The
paper's numbers come from its tables (:func:`fatlib.core.paper.paper_table`) and quoted sentences
(:func:`fatlib.core.paper.quote`). ``synthetic=True`` marks claims computed on synthetic stand-in
data (:attr:`ChapterSetup.synthetic`): shown, never counted.

The evaluation helpers of :mod:`fatlib.ftd.evaluation` and :class:`~fatlib.core.profiles.SweepSizes`
are importable from here too.
"""

from __future__ import annotations

import copy
import functools
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from fatlib.core import work
from fatlib.core.data import ArrayDataset, profile_dataset
from fatlib.core.files import output_dir as make_output_dir
from fatlib.core.paper import paper_table, quote
from fatlib.core.profiles import PROFILES, Profile, SweepSizes, get_profile
from fatlib.core.torch_utils import eval_mode, model_device
from fatlib.core.training import TrainResult, train_ftd
from fatlib.core.verdicts import Claim, Estimate, compare, every, not_run, seed_estimate
from fatlib.ftd import duplication, errors, overhead, ranking
from fatlib.ftd.evaluation import (
    Data,
    accuracy_under_errors,
    as_tensors,
    error_sweep,
    feature_layers,
    layer_input,
    per_class_accuracy,
    predict_under_errors,
    summarize,
)

__all__ = [
    "duplication_claims",
    "ROUNDING_TOLERANCE",
    "ERROR_SEEDS",
    "NETWORK_LABELS",
    "PAPER_NETWORKS",
    "DUPLICATION_LABELS",
    "SweepSizes",
    "sweep_sizes",
    "setup_line",
    "ChapterSetup",
    "setup",
    # evaluation under errors (fatlib.ftd.evaluation), for the notebooks' convenience
    "Data",
    "as_tensors",
    "feature_layers",
    "layer_input",
    "predict_under_errors",
    "accuracy_under_errors",
    "per_class_accuracy",
    "error_sweep",
    "summarize",
    "error_location_sweep",
    "error_location_claims",
    "error_location_comparison",
    "paper_error_free",
    "rank_all",
    "score_table",
    "overlap_matrix",
    "layer_overlaps",
    "ranking_claims",
    "FIG03_PAPER",
    "kr_weight_error_demo",
    "fmr_fmap_error_demo",
    "no_error_agreement",
    "zero_error_moments",
    "layer_error_statistics",
    "Panel",
    "PAPER_FIG06_PANELS",
    "fig06_panels",
    "ranking_methods_sweep",
    "ranking_methods_claims",
    "ranking_methods_comparison",
    "rankings_within_one_std",
    "kr_vs_fmr_sweep",
    "weight_only_identity",
    "kr_vs_fmr_claims",
    "kr_fmr_similar_tolerance",
    "latency_rounds",
    "summarize_latency",
    "latency_table",
    "paper_latency",
    "latency_comparison",
    "latency_claims",
    "memory_table",
    "paper_scale_memory",
    "memory_comparison",
    "kr_memory_table",
    "paper_scale_fmr_maps",
    "memory_claims",
    "TABLE3_COLUMNS",
    "table3_models",
    "table3_runs",
    "per_class_from_runs",
    "per_class_table",
    "fps_rounds",
    "fps_median",
    "fps_row",
    "order_agreement",
    "table3_claims",
]


# ------------------------------------------------------------------------------------------
# labels (the one spelling of every name on the pages)
# ------------------------------------------------------------------------------------------
#: fatlib architecture → label on the pages, and → the paper's network it stands in for (§4)
NETWORK_LABELS: dict[str, str] = {"vgg16": "VGG-16", "mobilenet_v1": "MobileNetV1"}
PAPER_NETWORKS: dict[str, str] = {"vgg16": "SSD-VGG", "mobilenet_v1": "SSD-MobileNet"}
#: duplication method (:data:`fatlib.ftd.duplication.DUPLICATION_METHODS`, or none) → label
#: (§3.2: kernel recovery and feature-map recovery)
DUPLICATION_LABELS: dict[str, str] = {"kr": "KR", "fmr": "FMR", "none": "no duplication"}


# ------------------------------------------------------------------------------------------
# claims (every page): differences with their 95 % interval (fatlib.core.verdicts)
# ------------------------------------------------------------------------------------------
#: what the intervals of the accuracy claims are over: the sweeps' error seeds (FTD §4: "three
#: different random seeds"; ``profile.seeds``: smoke 1, cpu 3, paper 3)
ERROR_SEEDS = "error seeds"


def _label(net: str) -> str:
    return NETWORK_LABELS.get(net, net)


def _seed_difference(a: pd.Series, b: pd.Series | float = 0.0) -> Estimate | None:
    """The mean over error seeds of ``a − b`` (Series indexed by seed; ``b`` may be a constant),
    paired seed by seed, with its Student-t 95 % interval (:func:`seed_estimate`; one seed:
    spread unknown, so inconclusive). None (the claim did not run) when no seed has both."""
    d = (a - b).dropna() if isinstance(b, pd.Series) else (a - float(b)).dropna()
    if d.empty:
        return None
    return seed_estimate(d.to_numpy(dtype=float), ERROR_SEEDS)


def _seed_means(df: pd.DataFrame, **match: object) -> pd.Series:
    """Mean ``accuracy`` per seed of the rows of ``df`` whose columns equal ``match`` (means over
    the other columns, e.g. the rates of a sweep); empty when none match."""
    sel = pd.Series(True, index=df.index)
    for col, value in match.items():
        sel &= df[col] == value
    return df[sel].groupby("seed")["accuracy"].mean()


def _exact(value: float | None) -> Estimate | None:
    """An exact quantity (a count, a byte size, a deterministic demonstration): no interval."""
    return None if value is None or not np.isfinite(value) else Estimate(float(value))


# ------------------------------------------------------------------------------------------
# sizes and setup (every page)
# ------------------------------------------------------------------------------------------
def sweep_sizes(profile: str | Profile) -> SweepSizes:
    """The sweep sizes of a scale profile (FTD §4: rates and seeds of Fig. 2, 6, 7): its
    :attr:`~fatlib.core.profiles.Profile.ftd_sweep`; a profile without them gets the smoke sizes
    when its test split is at most 256 images, else the cpu sizes. ``seeds`` is always
    ``profile.seeds``."""
    prof = get_profile(profile)
    base = prof.ftd_sweep
    if base is None:
        small = prof.test_size is not None and prof.test_size <= 256
        base = PROFILES["smoke" if small else "cpu"].ftd_sweep
    return replace(base, seeds=int(prof.seeds))


def setup_line(profile: str | Profile) -> str:
    """What the profile means for this chapter: the stand-ins' width, epochs and data (FTD §4's
    networks), plus the sweep sizes (for the pages;
    :meth:`~fatlib.core.profiles.Profile.describe` is about CNV)."""
    prof = get_profile(profile)
    tr = "all" if prof.train_size is None else f"{prof.train_size:,}"
    return (
        f"profile `{prof.name}`: {' and '.join(NETWORK_LABELS.values())} at width {prof.ftd_width:g}, "
        f"{prof.ftd_epochs} epoch(s) on {tr} CIFAR-10 training images; "
        f"{sweep_sizes(prof).describe()}"
    )


@dataclass(frozen=True, eq=False)
class ChapterSetup:
    """What every page of the chapter starts from (:func:`setup`): the scale profile and its
    sweep sizes, the page's output folder, the trained stand-ins of FTD §4's networks, the
    evaluation data and the error seeds."""

    profile: Profile
    #: :func:`sweep_sizes` of the profile
    sizes: SweepSizes
    #: the page's output folder (created)
    out: Path
    #: ``{arch: result}`` of :func:`fatlib.core.training.train_ftd`, and ``{arch: network}``
    trained: dict[str, TrainResult]
    models: dict[str, nn.Module]
    #: the profile's CIFAR-10 test split, and its first ``sizes.eval_images`` images as tensors
    test: ArrayDataset
    eval_data: Data
    #: the error seeds ``seed, seed + 1, ...`` (``sizes.seeds`` of them)
    seeds: list[int]
    #: the profile's training split and its first ``sizes.rank_images`` images, read by the
    #: data-driven rankings (§3.1); None unless :func:`setup` was asked for them
    train: ArrayDataset | None = None
    rank_data: Data | None = None

    @property
    def line(self) -> str:
        """:func:`setup_line` of the profile."""
        return setup_line(self.profile)

    @property
    def synthetic(self) -> bool:
        """Whether the page's data are synthetic stand-ins
        (:attr:`~fatlib.core.data.ArrayDataset.synthetic`: smoke profile without the real
        CIFAR-10): its accuracy claims are then shown but never counted (``synthetic=`` of the
        claim functions)."""
        return bool(self.test.synthetic or (self.train is not None and self.train.synthetic))

    def glued(self, prefix: str) -> dict[str, object]:
        """The values every page glues about its setup, keyed ``<prefix>_profile``,
        ``_profile_line``, ``_setup``, ``_test_source``, ``_eval_images`` and ``_synthetic``."""
        return {
            f"{prefix}_profile": self.profile.name,
            f"{prefix}_profile_line": self.profile.describe(),
            f"{prefix}_setup": self.line,
            f"{prefix}_test_source": self.test.source,
            f"{prefix}_eval_images": len(self.eval_data[1]),
            f"{prefix}_synthetic": self.synthetic,
        }

    def networks(self) -> pd.DataFrame:
        """One column per trained network: test accuracy, width, epochs and whether it came from
        the artifact store."""
        return pd.DataFrame(
            {
                arch: {
                    "test accuracy [%]": r.test_accuracy,
                    "width": r.config["width"],
                    "epochs": r.config["epochs"],
                    "reused from store": r.reused,
                }
                for arch, r in self.trained.items()
            }
        )


def setup(
    profile: str | Profile,
    device: str | torch.device | None,
    seed: int,
    data_dir: str | os.PathLike | None,
    output_dir: str | os.PathLike,
    name: str,
    archs: Sequence[str] = tuple(NETWORK_LABELS),
    with_rank_data: bool = False,
) -> ChapterSetup:
    """The start of every page of the chapter (FTD §4's setup on the stand-ins): the profile's
    :func:`sweep_sizes`, the output folder (``output_dir``, else ``results/<name>``), the networks
    ``archs`` trained (or reused from the store) with :func:`fatlib.core.training.train_ftd` at
    the profile's sizes, the CIFAR-10 test split and its first ``sizes.eval_images`` images, and
    the error seeds from ``seed``; with ``with_rank_data``, also the training split and its first
    ``sizes.rank_images`` images for the data-driven rankings (§3.1). ``data_dir`` "" or None
    means ``$FATLIB_DATA``, else the per-user cache."""
    prof = get_profile(profile)
    sizes = sweep_sizes(prof)
    out = make_output_dir(output_dir, name)
    data_dir = data_dir or None
    results = work.gather(
        [
            functools.partial(
                train_ftd, prof, arch, seed=seed, data_dir=data_dir, device=device, progress=False
            )
            for arch in archs
        ]
    )
    trained = dict(zip(archs, results, strict=True))
    models = {arch: result.model for arch, result in trained.items()}
    test = profile_dataset("cifar10", "test", prof, data_dir=data_dir, seed=seed)
    eval_data = as_tensors(test, sizes.eval_images)
    seeds = sizes.seed_list(seed)
    train, rank_data = None, None
    if with_rank_data:
        train = profile_dataset("cifar10", "train", prof, data_dir=data_dir, seed=seed)
        rank_data = as_tensors(train, sizes.rank_images)
    return ChapterSetup(
        profile=prof,
        sizes=sizes,
        out=out,
        trained=trained,
        models=models,
        test=test,
        eval_data=eval_data,
        seeds=seeds,
        train=train,
        rank_data=rank_data,
    )


# ------------------------------------------------------------------------------------------
# Fig. 2 — error location (§2.3)
# ------------------------------------------------------------------------------------------
def error_location_sweep(
    networks: Mapping[str, nn.Module],
    data: Data,
    rates: Sequence[float],
    seeds: Sequence[int],
    batch_size: int = 100,
) -> pd.DataFrame:
    """FTD Fig. 2: accuracy of each network under kernel (weight) errors only and under
    feature-map errors only, at the same ``rates``. Columns: ``network, location, rate, seed,
    accuracy`` (location ``"kernel"`` or ``"feature map"``)."""
    parts = []
    for net, model in networks.items():
        k = error_sweep({net: model}, data, rates, [0.0], seeds, batch_size)
        k = k.assign(location="kernel", rate=k["weight_rate"])
        f = error_sweep({net: model}, data, [0.0], rates, seeds, batch_size)
        f = f.assign(location="feature map", rate=f["fmap_rate"])
        parts += [k, f]
    df = pd.concat(parts, ignore_index=True).rename(columns={"model": "network"})
    return df[["network", "location", "rate", "seed", "accuracy"]]


#: the quotes (``fatlib/core/paper_tables/quotes.csv``) of the paper's error-free mAP (FTD §4)
_ERROR_FREE_QUOTES: dict[str, str] = {
    "vgg16": "ftd_vgg_error_free_map",
    "mobilenet_v1": "ftd_mobilenet_error_free_map",
}
#: the quotes of the mAP at 10 % errors that FTD §2.3 states (Fig. 2 has no table)
_FIG02_QUOTES: dict[tuple[str, str], str] = {
    ("vgg16", "kernel"): "ftd_vgg_map_at_10pct",
    ("vgg16", "feature map"): "ftd_vgg_map_at_10pct",
    ("mobilenet_v1", "kernel"): "ftd_mobilenet_map_kernel_10pct",
    ("mobilenet_v1", "feature map"): "ftd_mobilenet_map_fm_10pct",
}


def paper_error_free() -> dict[str, float]:
    """Error-free mAP (%) of the paper's networks on PASCAL VOC2007 (FTD §4: SSD-VGG 77.26,
    SSD-MobileNet 67.5), from the quotes table (:func:`fatlib.core.paper.quote`), keyed by the
    stand-in's architecture."""
    return {net: quote(key) for net, key in _ERROR_FREE_QUOTES.items()}


def error_location_comparison(results: pd.DataFrame, rate: float = 0.1) -> list[dict]:
    """Rows for :func:`fatlib.core.paper.side_by_side`: the share of the error-free score kept at
    ``rate`` kernel / feature-map errors, from FTD §2.3's sentences (SSD-VGG stays at 77 % mAP for
    both, SSD-MobileNet drops to 62 % under feature-map and to 0 % under kernel errors; quotes
    table) and from ours (accuracy; the largest rate of the sweep when ``rate`` is not in it)."""
    s = summarize(results, ["network", "location", "rate"])
    if rate not in set(s["rate"]):
        rate = float(s["rate"].max())
    clean = s[s["rate"] == 0].groupby("network")["mean"].first()
    free = paper_error_free()
    rows = []
    for (net, loc), key in _FIG02_QUOTES.items():
        if net not in clean.index:
            continue
        ours = s[(s["network"] == net) & (s["location"] == loc) & (s["rate"] == rate)]["mean"]
        rows.append(
            {
                "quantity": f"{NETWORK_LABELS[net]}, {100 * rate:g} % {loc} errors: score kept "
                "[% of error-free]",
                "paper": 100.0 * quote(key) / free[net],
                "ours": 100.0 * float(ours.iloc[0]) / float(clean[net]),
            }
        )
    return rows


def _fig02_paper(net: str) -> str:
    k, f = (quote(_FIG02_QUOTES[(net, loc)]) for loc in ("kernel", "feature map"))
    return (
        f"§2.3, Fig. 2: {PAPER_NETWORKS[net]} {k:g} % mAP under 10 % kernel vs {f:g} % under "
        "10 % feature-map errors"
    )


def error_location_claims(results: pd.DataFrame, synthetic: bool = False) -> dict[str, Claim]:
    """Claims of FTD §2.3 / Fig. 2 on :func:`error_location_sweep` results (error seeds paired,
    accuracy averaged over the non-zero rates; intervals: Student-t over the error seeds):

    * ``kernel_worse_<net>`` — Fig. 2's caption: "kernel errors cause more damage to accuracy
      than what the same feature map error rate does": kernel − feature-map accuracy ``<`` 0
      (per network);
    * ``kernel_worse`` — the same for every network (:func:`fatlib.core.verdicts.every`);
    * ``compact_more_sensitive`` — §2.3 / §4.1: SSD-MobileNet suffers more than SSD-VGG: the share
      of its error-free accuracy that MobileNetV1 keeps minus VGG-16's ``<`` 0 (percentage
      points of the error-free accuracy; not run unless both networks ran).

    No tolerance: the relations are strict. ``synthetic``: the results come from synthetic
    stand-in data (:attr:`ChapterSetup.synthetic`). Returns ``{key: Claim}``."""
    faulty = results[results["rate"] > 0]
    clean = results[results["rate"] == 0].groupby("network")["accuracy"].mean()
    rates = ", ".join(f"{100 * r:g}" for r in sorted(set(faulty["rate"])))
    claims: dict[str, Claim] = {}
    per_net: list[Claim] = []
    for net in dict.fromkeys(results["network"]):
        k = _seed_means(faulty, network=net, location="kernel")
        f = _seed_means(faulty, network=net, location="feature map")
        ev = (
            f"{_label(net)}: {k.mean():.1f} % under kernel vs {f.mean():.1f} % under feature-map "
            f"errors (mean over rates {rates} % and {len(k)} seed(s))"
        )
        paper = _fig02_paper(net) if net in PAPER_NETWORKS else "Fig. 2"
        c = compare(
            f"{_label(net)}: kernel errors hurt more than feature-map errors at the same rate (Fig. 2)",
            paper,
            _seed_difference(k, f),
            "<",
            evidence=ev,
            synthetic=synthetic,
        )
        claims[f"kernel_worse_{net}"] = c
        per_net.append(c)
    claims["kernel_worse"] = every(
        "Kernel errors hurt more than feature-map errors at the same rate (every network)",
        "Fig. 2 caption: kernel errors cause more damage than the same feature-map error rate",
        per_net,
    )
    text = "The compact network (MobileNet) is more sensitive to errors than the large one (VGG)"
    free = paper_error_free()
    kept_paper = {
        net: [100.0 * quote(_FIG02_QUOTES[(net, loc)]) / free[net] for loc in ("kernel", "feature map")]
        for net in ("vgg16", "mobilenet_v1")
    }
    paper = (
        "§2.3: at 10 % errors SSD-MobileNet keeps "
        + "–".join(f"{v:.0f}" for v in sorted(kept_paper["mobilenet_v1"]))
        + " % of its error-free mAP, SSD-VGG "
        + "–".join(f"{v:.0f}" for v in sorted(set(round(v) for v in kept_paper["vgg16"])))
        + " %"
    )
    if {"vgg16", "mobilenet_v1"} <= set(clean.index):
        kept = {
            net: 100.0 * _seed_means(faulty, network=net) / float(clean[net])
            for net in ("vgg16", "mobilenet_v1")
        }
        claims["compact_more_sensitive"] = compare(
            text + " (share of the error-free accuracy kept under errors)",
            paper,
            _seed_difference(kept["mobilenet_v1"], kept["vgg16"]),
            "<",
            evidence=f"share of error-free accuracy kept (mean over locations, rates and seeds): "
            f"{NETWORK_LABELS['mobilenet_v1']} {kept['mobilenet_v1'].mean():.0f} %, "
            f"{NETWORK_LABELS['vgg16']} {kept['vgg16'].mean():.0f} %",
            synthetic=synthetic,
        )
    else:
        claims["compact_more_sensitive"] = not_run(text, paper, "needs both VGG-16 and MobileNetV1")
    return claims


# ------------------------------------------------------------------------------------------
# Fig. 3 — ranking scores (§3.1)
# ------------------------------------------------------------------------------------------
def rank_all(
    model: nn.Module,
    methods: Sequence[str] = ranking.RANKING_METHODS,
    data: Data | None = None,
    seed: int = 0,
    batch_size: int = 100,
) -> dict[str, dict[str, torch.Tensor]]:
    """Scores of every ranking method of FTD §3.1 (and the random baseline of §4.1) for every
    convolution of ``model``: ``{method: {conv name: scores}}``."""
    return {m: ranking.rank_channels(model, m, data=data, seed=seed, batch_size=batch_size) for m in methods}


def score_table(
    scores: Mapping[str, Mapping[str, torch.Tensor]], layer: str, ratio: float = 0.5
) -> pd.DataFrame:
    """One row per channel of ``layer``: each method's score, its rank (0 = most important) and
    whether it is in that method's top ``ratio`` (the channels duplicated, §3.3)."""
    cols: dict[str, object] = {}
    for method, by_layer in scores.items():
        if layer not in by_layer:
            raise ValueError(f"layer {layer!r} not ranked; layers are {list(by_layer)}")
        s = torch.as_tensor(by_layer[layer]).float().cpu()  # cpu-only: host-side ranks
        order = torch.sort(s, descending=True, stable=True).indices
        rank = torch.empty_like(order)
        rank[order] = torch.arange(len(order))  # cpu-only: host-side ranks
        top = set(ranking.top_channels({layer: s}, ratio)[layer].tolist())
        cols[f"{method}_score"] = s.numpy()
        cols[f"{method}_rank"] = rank.numpy()
        cols[f"{method}_top"] = [i in top for i in range(len(s))]
    df = pd.DataFrame(cols)
    df.index.name = "channel"
    return df.reset_index()


def layer_overlaps(scores: Mapping[str, Mapping[str, torch.Tensor]], ratio: float = 0.5) -> pd.DataFrame:
    """For every pair of methods, :func:`fatlib.ftd.ranking.overlap` per layer (top-``ratio``
    sets; FTD Fig. 3), stacked: columns ``a, b, layer, k, common, fraction, jaccard``."""
    names = list(scores)
    parts = []
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            parts.append(ranking.overlap(scores[a], scores[b], ratio).assign(a=a, b=b))
    df = pd.concat(parts, ignore_index=True)
    return df[["a", "b", "layer", "k", "common", "fraction", "jaccard"]]


def overlap_matrix(overlaps: pd.DataFrame) -> pd.DataFrame:
    """Method × method matrix of the mean top-k overlap fraction over layers (1 on the diagonal;
    FTD Fig. 3)."""
    names = list(dict.fromkeys([*overlaps["a"], *overlaps["b"]]))
    m = pd.DataFrame(np.eye(len(names)), index=names, columns=names)
    for (a, b), v in overlaps.groupby(["a", "b"], sort=False)["fraction"].mean().items():
        m.loc[a, b] = m.loc[b, a] = float(v)
    return m


#: FTD Fig. 3 is a diagram of how each score is computed; it states no number and no ordering
FIG03_PAPER = "Fig. 3 is a diagram (no claim of the paper): our observation"


def ranking_claims(
    overlaps: pd.DataFrame, ratio: float = 0.5, differ_below: float = 90.0, synthetic: bool = False
) -> dict[str, Claim]:
    """Observations (``kind="observation"``, not claims of the paper: FTD Fig. 3 is a diagram of
    the three scores of §3.1) on :func:`layer_overlaps` of the three rankings, random selection
    left out. The units are the layers: for each pair of methods, the mean over layers of the
    top-``ratio`` overlap (in %) with a Student-t interval over the layers:

    * ``differ`` — the three methods select different channels: overlap − ``differ_below`` (90 %)
      ``<`` 0 for every pair;
    * ``not_random`` — yet they agree more than chance: overlap − 100·``ratio`` (the expected
      overlap of two random top-``ratio`` selections) ``>`` 0 for every pair.

    Returns ``{key: Claim}``."""
    three = overlaps[~overlaps["a"].eq("random") & ~overlaps["b"].eq("random")]
    chance = 100.0 * ratio
    differ, above = [], []
    for (a, b), part in three.groupby(["a", "b"], sort=False):
        frac = 100.0 * part["fraction"].astype(float)
        ev = f"{a}/{b}: {frac.mean():.0f} % over {len(frac)} layers"
        differ.append(
            compare(
                f"{a} and {b} select different channels",
                FIG03_PAPER,
                seed_estimate((frac - differ_below).to_numpy(), "layers"),
                "<",
                evidence=ev,
                kind="observation",
                synthetic=synthetic,
            )
        )
        above.append(
            compare(
                f"{a} and {b} agree more than chance",
                FIG03_PAPER,
                seed_estimate((frac - chance).to_numpy(), "layers"),
                ">",
                evidence=ev,
                kind="observation",
                synthetic=synthetic,
            )
        )
    return {
        "differ": every(
            f"The three ranking methods select different channels (mean top-k overlap over layers "
            f"below {differ_below:g} %)",
            FIG03_PAPER,
            differ,
            kind="observation",
        ),
        "not_random": every(
            f"The rankings agree more than chance (overlap above {chance:g} %, the expectation for "
            "random selections)",
            FIG03_PAPER,
            above,
            kind="observation",
        ),
    }


# ------------------------------------------------------------------------------------------
# Fig. 4 / Fig. 5 — what KR and FMR compute (§3.2–3.3)
# ------------------------------------------------------------------------------------------
def _demo_copy(layer: nn.Module, kind: type, channel: int | None) -> tuple[nn.Module, list[int], int]:
    """An eval-mode copy of a duplicated layer of type ``kind``, its duplicated channels and the
    channel to demonstrate (default: the first duplicated one); ValueError otherwise."""
    if not isinstance(layer, kind):
        raise ValueError(f"expected a {kind.__name__}, got {type(layer).__name__}")
    copied = copy.deepcopy(layer).eval()
    dup = copied.index.cpu().tolist()
    c = dup[0] if channel is None else int(channel)
    if c not in dup:
        raise ValueError(f"channel {c} has no copy; duplicated channels: {dup}")
    return copied, dup, c


@torch.no_grad()
def kr_weight_error_demo(
    layer: duplication.KRConv2d,
    x: torch.Tensor,
    channel: int | None = None,
) -> dict[str, object]:
    """Zero the largest weight of one filter of the *original* copy of a KR layer (FTD Fig. 4b)
    and compare the output channel with the error-free layer and with the same error without
    duplication. On a copy of ``layer``. ``channel`` defaults to the first duplicated one.
    Returns maps (``clean``, ``no_duplication``, ``kr``; H×W of the first image), the weight
    position, ``halfway`` (KR's output equals the mean of clean and unprotected, i.e. the error is
    halved) and ``unprotected_channel_equal`` (in a channel without a copy, KR equals the
    unprotected output: no recovery there)."""
    kr, dup, c = _demo_copy(layer, duplication.KRConv2d, channel)
    others = [i for i in range(kr.channels) if i not in dup]
    clean = kr(x)
    plain = copy.deepcopy(kr.primary)
    w = kr.primary.weight
    pos = (c, *(int(i) for i in np.unravel_index(int(w[c].abs().argmax()), tuple(w.shape[1:]))))
    plain.weight[pos] = 0.0
    w[pos] = 0.0  # in place: KR's averaged-kernel cache notices the new version
    if others:  # the same error in a filter without a copy
        o = others[0]
        pos_o = (o, *(int(i) for i in np.unravel_index(int(w[o].abs().argmax()), tuple(w.shape[1:]))))
        plain.weight[pos_o] = 0.0
        w[pos_o] = 0.0
    unprotected = plain(x)
    out = kr(x)
    halfway = torch.allclose(out[:, c], (clean[:, c] + unprotected[:, c]) / 2, rtol=1e-4, atol=1e-5)
    same = (
        bool(torch.allclose(out[:, others[0]], unprotected[:, others[0]], rtol=1e-5, atol=1e-6))
        if others
        else True
    )
    return {
        "channel": c,
        "weight": pos,
        "clean": clean[0, c].cpu(),
        "no_duplication": unprotected[0, c].cpu(),
        "kr": out[0, c].cpu(),
        "halfway": bool(halfway),
        "unprotected_channel_equal": same,
        "max_error_no_duplication": float((unprotected[:, c] - clean[:, c]).abs().max()),
        "max_error_kr": float((out[:, c] - clean[:, c]).abs().max()),
    }


@torch.no_grad()
def fmr_fmap_error_demo(
    layer: duplication.FMRConv2d,
    x: torch.Tensor,
    channel: int | None = None,
) -> dict[str, object]:
    """Zero the largest element of one output channel of the *original* copy's feature map in an
    FMR layer (FTD Fig. 4a) and compare with the error-free output and with the same error
    without duplication. ``channel`` defaults to the first duplicated one. Returns maps
    (``clean``, ``no_duplication``, ``fmr``; H×W of the first image), the position and
    ``halfway`` (FMR's output there is half the clean value: the error is halved; elsewhere the
    output is unchanged)."""
    fmr, dup, c = _demo_copy(layer, duplication.FMRConv2d, channel)
    clean = fmr(x)
    ref = fmr.primary(x)
    flat = int(ref[0, c].abs().argmax())
    h, w = (int(i) for i in np.unravel_index(flat, tuple(ref.shape[2:])))

    def zero(module: nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor:
        output = output.clone()
        output[0, c, h, w] = 0.0
        return output

    unprotected = ref.clone()
    unprotected[0, c, h, w] = 0.0
    handle = fmr.primary.register_forward_hook(zero)
    try:
        out = fmr(x)
    finally:
        handle.remove()
    expected = clean.clone()
    expected[0, c, h, w] = clean[0, c, h, w] / 2
    halfway = torch.allclose(out, expected, rtol=1e-4, atol=1e-5)
    return {
        "channel": c,
        "position": (int(h), int(w)),
        "clean": clean[0, c].cpu(),
        "no_duplication": unprotected[0, c].cpu(),
        "fmr": out[0, c].cpu(),
        "halfway": bool(halfway),
        "clean_value": float(clean[0, c, h, w]),
        "fmr_value": float(out[0, c, h, w]),
    }


@torch.no_grad()
def no_error_agreement(
    original: nn.Module, duplicated: nn.Module, images: torch.Tensor, batch_size: int = 100
) -> dict[str, float | bool]:
    """Without errors a duplicated network computes the original (FTD §3.2): ``equal`` (bit for
    bit), ``max_abs_diff`` of the logits and ``same_predictions`` (fraction)."""
    dev = model_device(original)
    diffs, equal, same, n = [], True, 0, 0
    with eval_mode(original), eval_mode(duplicated):
        for xb in images.split(batch_size):
            a, b = original(xb.to(dev)), duplicated(xb.to(dev))
            equal &= bool(torch.equal(a, b))
            diffs.append(float((a - b).abs().max()))
            same += int((a.argmax(1) == b.argmax(1)).sum())
            n += len(xb)
    return {"equal": equal, "max_abs_diff": max(diffs), "same_predictions": same / n}


def zero_error_moments(rate: float) -> pd.DataFrame:
    """What averaging two copies does to one value ``v`` under independent zero errors of
    probability ``rate`` (FTD §3.2): the error of a single copy is ``-v`` with probability ``p``;
    of the average, ``-v/2`` with probability ``2p(1-p)`` and ``-v`` with probability ``p²``.
    The mean error is ``-p·v`` either way; the mean squared error drops from ``p·v²`` to
    ``p(1+p)/2·v²``. Returns both, in units of ``v`` and ``v²``."""
    p = float(rate)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"rate={rate!r}: use a probability in [0, 1]")
    return pd.DataFrame(
        [
            {
                "copies": "one (no duplication)",
                "mean_error": -p,
                "mean_abs_error": p,
                "mean_squared_error": p,
                "rms_error": p**0.5,
            },
            {
                "copies": "two, averaged (KR / FMR)",
                "mean_error": -p,
                "mean_abs_error": p,
                "mean_squared_error": p * (1 + p) / 2,
                "rms_error": (p * (1 + p) / 2) ** 0.5,
            },
        ]
    )


@torch.no_grad()
def layer_error_statistics(
    original: nn.Conv2d,
    duplicated: duplication.DuplicatedConv2d,
    x: torch.Tensor,
    weight_rate: float,
    fmap_rate: float,
    seeds: Sequence[int],
) -> pd.DataFrame:
    """Error of one layer's output under transient zero errors, without and with duplication
    (FTD §3.2), measured on the real modules with :func:`fatlib.ftd.errors.transient_errors`: the
    mean error (bias), mean absolute error and RMS error against the error-free output, over
    ``seeds`` draws, separately for the duplicated channels and the others. Columns: ``layer,
    channels, mean_error, mean_abs_error, rms_error``."""
    clean = original(x)
    dup_mask = torch.zeros(clean.shape[1], dtype=torch.bool, device=clean.device)
    dup_mask[duplicated.index] = True
    rows = []
    for name, layer in (
        (DUPLICATION_LABELS["none"], original),
        (DUPLICATION_LABELS[duplicated.method], duplicated),
    ):
        errs = []
        for s in seeds:
            with errors.transient_errors(layer, weight_rate, fmap_rate, seed=int(s)):
                errs.append(layer(x) - clean)
        e = torch.stack(errs)
        for part, sel in (("duplicated", dup_mask), ("not duplicated", ~dup_mask)):
            d = e[:, :, sel].double()
            if d.numel() == 0:
                continue
            rows.append(
                {
                    "layer": name,
                    "channels": part,
                    "mean_error": float(d.mean()),
                    "mean_abs_error": float(d.abs().mean()),
                    "rms_error": float(d.pow(2).mean().sqrt()),
                }
            )
    return pd.DataFrame(rows)


#: tolerance of the Fig. 4 claims: float rounding (largest logit difference; error left / error
#: without duplication, which averaging makes exactly 1/2 in exact arithmetic)
ROUNDING_TOLERANCE = 1e-3


def duplication_claims(
    agreement: pd.DataFrame,
    kr_demo: Mapping[str, object],
    fmr_demo: Mapping[str, object],
    summaries: Mapping[str, pd.DataFrame],
    synthetic: bool = False,
) -> dict[str, Claim]:
    """The claims of FT-DeepNets Fig. 4 / Fig. 5 (§3.2–3.3) on this book's evidence, all exact
    (deterministic computations on the real modules, no sampling error):

    * ``identity`` (§3.2) — without errors KR and FMR compute the original network: the largest
      logit difference over ``agreement`` (:func:`no_error_agreement` per ``"<net> KR"`` /
      ``"<net> FMR"`` row) ``<=`` 0 within ±1e-3 (float rounding; KR is bit-exact);
    * ``kr_halves_kernel_error`` (Fig. 4b) — KR averages the kernels, halving a kernel error in
      a duplicated filter: error left with KR / error without duplication (``kr_demo``:
      :func:`kr_weight_error_demo`) − ½ ``~`` 0 within ±1e-3;
    * ``fmr_halves_fmap_error`` (Fig. 4a) — FMR averages two maps, halving a feature-map error:
      FMR's value / the error-free value at the zeroed element (``fmr_demo``:
      :func:`fmr_fmap_error_demo`) − ½ ``~`` 0 within ±1e-3;
    * ``depthwise_whole`` (§3.3, Fig. 5b) — MobileNet's depthwise kernel is duplicated whole with
      its pointwise kernel: the duplicated share (%) of the paired depthwise convolutions'
      channels (``summaries["mobilenet_v1"]``: :func:`fatlib.ftd.duplication.duplication_summary`
      of the KR network) − 100 ``~`` 0 (exact; not run without a paired depthwise convolution).

    Returns ``{key: Claim}``."""
    t = ROUNDING_TOLERANCE
    kr_rows = [r for r in agreement.index if r.endswith(f" {DUPLICATION_LABELS['kr']}")]
    fmr_rows = [r for r in agreement.index if r.endswith(f" {DUPLICATION_LABELS['fmr']}")]
    largest = float(agreement["max_abs_diff"].max()) if len(agreement) else None
    kr_exact = bool(agreement.loc[kr_rows, "equal"].all()) if kr_rows else False
    fmr_diff = float(agreement.loc[fmr_rows, "max_abs_diff"].max()) if fmr_rows else float("nan")
    same = 100.0 * float(agreement["same_predictions"].min()) if len(agreement) else float("nan")
    claims = {
        "identity": compare(
            f"Without errors KR and FMR compute the original network (largest logit difference "
            f"at most {t:g}: float rounding)",
            "§3.2: averaging two equal copies leaves the network unchanged",
            _exact(largest),
            "<=",
            t,
            evidence=f"KR {'bit-exact' if kr_exact else 'not bit-exact'}, FMR max logit difference "
            f"{fmr_diff:.1e}; {same:.1f} % identical predictions",
            unit="logit",
            synthetic=synthetic,
        )
    }
    plain, kr_err = float(kr_demo["max_error_no_duplication"]), float(kr_demo["max_error_kr"])
    claims["kr_halves_kernel_error"] = compare(
        f"KR averages the kernels, halving a kernel error in a duplicated filter (error left / "
        f"error without duplication = ½ within ±{t:g})",
        "§3.2, Fig. 4b: KR averages the original and duplicated kernels",
        _exact(kr_err / plain - 0.5 if plain > 0 else None),
        "~",
        t,
        evidence=f"max error {plain:.3f} without, {kr_err:.3f} with KR; a filter without a copy "
        f"{'keeps' if kr_demo['unprotected_channel_equal'] else 'does not keep'} the whole error",
        unit="",
        synthetic=synthetic,
    )
    clean_v, fmr_v = float(fmr_demo["clean_value"]), float(fmr_demo["fmr_value"])
    claims["fmr_halves_fmap_error"] = compare(
        f"FMR averages two feature maps, halving a feature-map error (value kept / error-free "
        f"value = ½ within ±{t:g})",
        "§3.2, Fig. 4a: FMR averages the original and duplicated feature maps",
        _exact(fmr_v / clean_v - 0.5 if clean_v != 0 else None),
        "~",
        t,
        evidence=f"zeroed element {clean_v:.3f} → {fmr_v:.3f}; elsewhere "
        f"{'unchanged' if fmr_demo['halfway'] else 'changed'}",
        unit="",
        synthetic=synthetic,
    )
    text = "MobileNet: the depthwise kernel is duplicated whole with its pointwise kernel"
    paper = "§3.3, Fig. 5b: we duplicate the entire depthwise convolutional kernel"
    mn = summaries.get("mobilenet_v1")
    paired = mn[mn["paired_depthwise"]] if mn is not None else None
    if paired is None or paired.empty:
        claims["depthwise_whole"] = not_run(text, paper, "no paired depthwise convolution")
    else:
        share = 100.0 * float(paired["duplicated"].sum() / paired["channels"].sum())
        claims["depthwise_whole"] = compare(
            text + " (duplicated share of the paired depthwise channels = 100 %)",
            paper,
            _exact(share - 100.0),
            "~",
            0.0,
            evidence=f"{len(paired)} depthwise convolutions, {share:.1f} % of their channels duplicated",
            unit="pp",
            synthetic=synthetic,
        )
    return claims


# ------------------------------------------------------------------------------------------
# Fig. 6 — ranking methods (§4.1)
# ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Panel:
    """One panel of FTD Fig. 6: a network, a duplication method and a weight error rate; the x
    axis is the feature-map error rate."""

    network: str
    duplication: str
    weight_rate: float

    @property
    def label(self) -> str:
        """The panel's title on the page (FTD Fig. 6's captions)."""
        return (
            f"{NETWORK_LABELS.get(self.network, self.network)} + "
            f"{DUPLICATION_LABELS[self.duplication]}, {100 * self.weight_rate:g} % weight error"
        )


#: the four panels of FTD Fig. 6 (a)–(d)
PAPER_FIG06_PANELS: tuple[Panel, ...] = (
    Panel("mobilenet_v1", "kr", 0.01),
    Panel("mobilenet_v1", "fmr", 0.01),
    Panel("vgg16", "kr", 0.01),
    Panel("vgg16", "fmr", 0.10),
)


def fig06_panels(all_panels: bool = False) -> tuple[Panel, ...]:
    """The paper's four panels of FTD Fig. 6, or (``all_panels``) every combination of network,
    KR / FMR and weight error 1 % / 10 % (eight panels, twice the evaluations)."""
    if not all_panels:
        return PAPER_FIG06_PANELS
    return tuple(
        Panel(n, d, w) for n in ("mobilenet_v1", "vgg16") for d in ("kr", "fmr") for w in (0.01, 0.10)
    )


def ranking_methods_sweep(
    networks: Mapping[str, nn.Module],
    panels: Sequence[Panel],
    rank_data: Data,
    eval_data: Data,
    fmap_rates: Sequence[float],
    seeds: Sequence[int],
    ratio: float = 0.5,
    ranking_seed: int = 0,
    batch_size: int = 100,
    methods: Sequence[str] = ranking.RANKING_METHODS,
) -> pd.DataFrame:
    """FTD Fig. 6: for each panel, accuracy vs feature-map error rate of the network duplicated
    at ``ratio`` (paper: 50 %) by each ranking ``method`` (scores from ``rank_data``), and of the
    network without duplication, at the panel's weight error rate. Columns: ``network,
    duplication, weight_rate, ranking, fmap_rate, seed, accuracy`` (ranking ``"none"``: no
    duplication, shared by the panels of one network and weight rate)."""
    parts = []
    for net in dict.fromkeys(p.network for p in panels):
        model = networks[net]
        scores = rank_all(model, methods, rank_data, seed=ranking_seed, batch_size=batch_size)
        none: dict[float, pd.DataFrame] = {}
        for panel in (p for p in panels if p.network == net):
            dups = {m: duplication.duplicate(model, ratio, scores[m], panel.duplication) for m in methods}
            res = error_sweep(dups, eval_data, [panel.weight_rate], fmap_rates, seeds, batch_size)
            if panel.weight_rate not in none:
                none[panel.weight_rate] = error_sweep(
                    {"none": model}, eval_data, [panel.weight_rate], fmap_rates, seeds, batch_size
                )
            res = pd.concat([res, none[panel.weight_rate]], ignore_index=True)
            parts.append(
                res.rename(columns={"model": "ranking"}).assign(network=net, duplication=panel.duplication)
            )
    df = pd.concat(parts, ignore_index=True)
    return df[["network", "duplication", "weight_rate", "ranking", "fmap_rate", "seed", "accuracy"]]


def _fig06_panels(results: pd.DataFrame) -> list[tuple[Panel, pd.DataFrame]]:
    """The panels of a :func:`ranking_methods_sweep` result with their rows."""
    keys = ["network", "duplication", "weight_rate"]
    return [(Panel(net, dup, float(w)), part) for (net, dup, w), part in results.groupby(keys, sort=False)]


def _short(panel: Panel) -> str:
    return f"{_label(panel.network)}+{DUPLICATION_LABELS[panel.duplication]} w{100 * panel.weight_rate:g}%"


def ranking_methods_claims(results: pd.DataFrame, synthetic: bool = False) -> dict[str, Claim]:
    """Claims of FTD §4.1 / Fig. 6 on :func:`ranking_methods_sweep` results. Each curve is
    reduced to its mean over the feature-map rates, per error seed; two curves are compared
    through their per-seed differences (paired: the same error seeds), with a Student-t
    interval over the seeds. A claim must hold in every panel and for every ranking
    (:func:`fatlib.core.verdicts.every`); no tolerance (strict relations):

    * ``beats_random`` — "all of our ranking methods outperform the random method": ranking −
      random ``>`` 0;
    * ``random_beats_none`` — "the random selection provides better accuracy than the baseline
      without duplication": random − none ``>`` 0;
    * ``dup_beats_none`` — "all our duplication methods provide 10 % better accuracy compared
      with the original baseline without duplication": every ranking and random − none ``>`` 0
      (the size of the gain is compared on the page, :func:`ranking_methods_comparison`: mAP
      points and accuracy points are different scales).

    Returns ``{key: Claim}``."""
    rankers = [m for m in dict.fromkeys(results["ranking"]) if m not in ("random", "none")]
    beats_random, random_beats_none, dup_beats_none = [], [], []

    def row(a: str, b: str, panel: Panel, part: pd.DataFrame) -> Claim:
        sa, sb = _seed_means(part, ranking=a), _seed_means(part, ranking=b)
        return compare(
            f"{_short(panel)}: {a} beats {b}",
            "",
            _seed_difference(sa, sb),
            ">",
            evidence=f"{_short(panel)}: {a} {sa.mean():.1f} vs {b} {sb.mean():.1f}",
            synthetic=synthetic,
        )

    for panel, part in _fig06_panels(results):
        for m in rankers:
            beats_random.append(row(m, "random", panel, part))
        random_beats_none.append(row("random", "none", panel, part))
        for m in [*rankers, "random"]:
            dup_beats_none.append(row(m, "none", panel, part))
    gain = quote("ftd_dup_gain_fig6")
    return {
        "beats_random": every(
            "Every ranking method beats random selection (every panel)",
            "§4.1, Fig. 6: all of our ranking methods outperform the random method",
            beats_random,
        ),
        "random_beats_none": every(
            "Random selection beats no duplication (every panel)",
            "§4.1, Fig. 6: the random selection provides better accuracy than the baseline",
            random_beats_none,
        ),
        "dup_beats_none": every(
            "Every duplication beats no duplication (every panel)",
            f"§4.1, Fig. 6: all our duplication methods provide {gain:g} % better accuracy than "
            "the baseline without duplication",
            dup_beats_none,
        ),
    }


def rankings_within_one_std(results: pd.DataFrame) -> dict[str, float]:
    """How often two rankings' curves of Fig. 6 (the three methods and random selection) are
    within one standard deviation of the error draws of each other: for every panel, feature-map
    rate and pair of rankings, whether ``|mean a − mean b|`` ≤ the larger of their standard
    deviations over the seeds (:func:`~fatlib.ftd.evaluation.summarize`; 0 with a single seed).
    Returns ``pairs`` (the comparisons), ``within`` (those within one std) and ``share`` (%)."""
    keys = ["network", "duplication", "weight_rate", "fmap_rate"]
    s = summarize(results[results["ranking"] != "none"], [*keys, "ranking"])
    pairs = within = 0
    for _, part in s.groupby(keys, sort=False):
        rows = list(part.itertuples())
        for i, a in enumerate(rows):
            for b in rows[i + 1 :]:
                pairs += 1
                within += int(abs(a.mean - b.mean) <= max(a.std, b.std))
    return {"pairs": pairs, "within": within, "share": 100.0 * within / pairs if pairs else float("nan")}


#: the quotes of FTD §4.1's sentences on Fig. 6: mAP (%) at 10 % feature-map errors, per panel
#: ("nearly 10 %", "over 74 %", "over 69 %"); the gain of duplication over none ("10 % better")
#: is quote ``ftd_dup_gain_fig6``
_FIG06_QUOTES: dict[Panel, str] = {
    Panel("mobilenet_v1", "kr", 0.01): "ftd_mobilenet_map_fm_10pct_fig6",
    Panel("vgg16", "kr", 0.01): "ftd_vgg_map_fm_10pct_fig6",
    Panel("vgg16", "fmr", 0.10): "ftd_vgg_map_weight_10pct_fig6",
}


def ranking_methods_comparison(results: pd.DataFrame, error_free: Mapping[str, float]) -> list[dict]:
    """Rows for :func:`fatlib.core.paper.side_by_side` from FTD §4.1's numbers on Fig. 6 (quotes
    table): the share of the error-free score kept at the largest feature-map rate (mean of the
    three rankings) in the panels the text quantifies, and the gain of duplication over none in
    points (mean over panels, rates and the three rankings; last row). ``error_free``: our
    error-free accuracy per network."""
    rankers = [m for m in dict.fromkeys(results["ranking"]) if m not in ("random", "none")]
    top = float(results["fmap_rate"].max())
    free = paper_error_free()
    rows = []
    for panel, key in _FIG06_QUOTES.items():
        sel = results[
            (results["network"] == panel.network)
            & (results["duplication"] == panel.duplication)
            & (results["weight_rate"] == panel.weight_rate)
        ]
        if sel.empty:
            continue
        ours = sel[(sel["fmap_rate"] == top) & sel["ranking"].isin(rankers)]["accuracy"].mean()
        rows.append(
            {
                "quantity": f"{panel.label}: score kept at {100 * top:g} % feature-map errors "
                "[% of error-free]",
                "paper": 100.0 * quote(key) / free[panel.network],
                "ours": 100.0 * float(ours) / float(error_free[panel.network]),
            }
        )
    mean = (
        results.groupby(["network", "duplication", "weight_rate", "fmap_rate", "ranking"])["accuracy"]
        .mean()
        .unstack()
    )
    gain = (mean[rankers].mean(axis=1) - mean["none"]).mean()
    rows.append(
        {
            "quantity": "gain of duplication over none [points, mean over panels]",
            "paper": quote("ftd_dup_gain_fig6"),
            "ours": float(gain),
        }
    )
    return rows


# ------------------------------------------------------------------------------------------
# Fig. 7 — KR vs FMR (§4.2)
# ------------------------------------------------------------------------------------------
def kr_vs_fmr_sweep(
    networks: Mapping[str, nn.Module],
    eval_data: Data,
    varied: str,
    rates: Sequence[float],
    fixed_rate: float,
    seeds: Sequence[int],
    ratio: float = 0.5,
    ranking_method: str = "weight_sum",
    batch_size: int = 100,
) -> pd.DataFrame:
    """FTD Fig. 7: accuracy of KR and FMR duplication (``ratio`` of the channels by
    ``ranking_method``, a data-free method) while the ``varied`` error rate (``"fmap"``: Fig. 7a,
    ``"weight"``: Fig. 7b) takes ``rates`` and the other is ``fixed_rate``. Columns: ``network,
    duplication, varied, rate, weight_rate, fmap_rate, seed, accuracy``."""
    if varied not in ("fmap", "weight"):
        raise ValueError("varied must be 'fmap' or 'weight'")
    parts = []
    for net, model in networks.items():
        scores = ranking.rank_channels(model, ranking_method)
        dups = {m: duplication.duplicate(model, ratio, scores, m) for m in ("kr", "fmr")}
        w, f = ([fixed_rate], rates) if varied == "fmap" else (rates, [fixed_rate])
        res = error_sweep(dups, eval_data, w, f, seeds, batch_size)
        res = res.rename(columns={"model": "duplication"}).assign(
            network=net,
            varied=varied,
            rate=lambda d: d["fmap_rate"] if varied == "fmap" else d["weight_rate"],
        )
        parts.append(res)
    df = pd.concat(parts, ignore_index=True)
    return df[["network", "duplication", "varied", "rate", "weight_rate", "fmap_rate", "seed", "accuracy"]]


@torch.no_grad()
def weight_only_identity(
    model: nn.Module,
    images: torch.Tensor,
    weight_rate: float,
    seed: int = 0,
    ratio: float = 0.5,
    batch_size: int = 100,
) -> dict[str, float]:
    """Under weight errors alone KR and FMR compute the same thing (FTD §4.2, Fig. 7b): a
    convolution is linear, so averaging the maps of two kernels (FMR) equals convolving with their
    average (KR). Both see the same error draws (same seed, same draw order when ``fmap_rate`` is
    0); returns the largest logit difference (absolute, and relative to the largest logit: float
    rounding) and the fraction of equal predictions."""
    scores = ranking.rank_channels(model, "weight_sum")
    kr = duplication.duplicate(model, ratio, scores, "kr").eval()
    fmr = duplication.duplicate(model, ratio, scores, "fmr").eval()
    dev = model_device(model)
    diffs, scale, same, n = [], 0.0, 0, 0
    with (
        errors.transient_errors(kr, weight_rate, 0.0, layers=feature_layers(kr), seed=seed),
        errors.transient_errors(fmr, weight_rate, 0.0, layers=feature_layers(fmr), seed=seed),
    ):
        for xb in images.split(batch_size):
            a, b = kr(xb.to(dev)), fmr(xb.to(dev))
            diffs.append(float((a - b).abs().max()))
            scale = max(scale, float(a.abs().max()))
            same += int((a.argmax(1) == b.argmax(1)).sum())
            n += len(xb)
    return {
        "max_logit_diff": max(diffs),
        "relative_diff": max(diffs) / scale if scale else 0.0,
        "same_predictions": same / n,
    }


def kr_fmr_similar_tolerance() -> float:
    """How close "similar accuracy" is (FTD Obs. 1 and §4.2), in points: the largest gap between
    KR and FMR at the same duplication ratio in the mAP row of Table 3, on which Obs. 1 rests
    (50 %: KR 0.36 vs FMR 0.37; 20 %: 0.35 vs 0.32 → 3 points)."""
    m = paper_table("ftdeepnets_table3").set_index("class").loc["mAP"].astype(float)
    ratios = [c.split("_")[1] for c in m.index if c.startswith("kr_")]
    return round(float(100.0 * max(abs(m[f"kr_{r}"] - m[f"fmr_{r}"]) for r in ratios)), 6)


def _low_rates(rates: Sequence[float]) -> list[float]:
    """The lower half of a sweep's rates (at or below their median): "lower" error rates."""
    rates = sorted(set(float(r) for r in rates))
    return [r for r in rates if r <= float(np.median(rates))]


def kr_vs_fmr_claims(
    fmap_results: pd.DataFrame,
    weight_results: pd.DataFrame,
    synthetic: bool = False,
    tolerance: float | None = None,
    table3_rates: tuple[float, float] = (0.01, 0.01),
) -> dict[str, Claim]:
    """Claims of FTD §4.2 / Fig. 7 and the accuracy half of Observation 1 (§4.4) on
    :func:`kr_vs_fmr_sweep` results. Accuracy is averaged over the rates named below per error
    seed; KR and FMR are compared through their per-seed differences (paired: the same error
    seeds), with a Student-t interval over the seeds:

    * ``fmr_ge_kr_fmap`` (§4.2, Fig. 7a) — "FMR yields better overall accuracy than KR w.r.t.
      feature map errors": FMR − KR over all feature-map rates ``>`` 0, every network;
    * ``fmr_gap_grows`` (§4.2) — "as the feature-map error rate increases, FMR provides better
      accuracy than KR": (FMR − KR) at the largest rate − at the smallest ``>`` 0, every network;
    * ``kr_ge_fmr_weight`` (§4.2, Fig. 7b) — "KR provides overall better accuracy than FMR
      w.r.t. the weight error": KR − FMR over all weight rates ``>`` 0 (``weight_results``);
    * ``kr_similar_low_fmap`` (§4.2) — "KR can provide similar accuracy as FMR when the
      feature-map error rate is expected to be lower": KR − FMR over the lower half of the
      feature-map rates ``~`` 0 within ±``tolerance``, every network;
    * ``obs1_kr_similar`` (§4.4, Observation 1) — "KR duplication provides a similar accuracy
      protection capability ... compared to the FMR method", in Table 3's setting (MobileNet,
      ``table3_rates``: 1 % weight + 1 % feature-map errors): KR − FMR ``~`` 0 within
      ±``tolerance`` (not run when that point is not in ``fmap_results``).

    ``tolerance`` (points of accuracy) defaults to :func:`kr_fmr_similar_tolerance` (3 points,
    the largest KR–FMR gap that Table 3 calls similar). Returns ``{key: Claim}``."""
    t = kr_fmr_similar_tolerance() if tolerance is None else float(tolerance)
    nets = list(dict.fromkeys(fmap_results["network"]))

    def diff(df: pd.DataFrame, net: str, a: str, b: str, **match: object) -> tuple[Estimate | None, str]:
        sa = _seed_means(df, network=net, duplication=a, **match)
        sb = _seed_means(df, network=net, duplication=b, **match)
        la, lb = DUPLICATION_LABELS[a], DUPLICATION_LABELS[b]
        ev = f"{_label(net)}: {la} {sa.mean():.1f} % vs {lb} {sb.mean():.1f} %"
        return _seed_difference(sa, sb), ev

    better, grows, similar = [], [], []
    low = _low_rates(fmap_results["rate"]) if len(fmap_results) else []
    for n in nets:
        est, ev = diff(fmap_results, n, "fmr", "kr")
        better.append(compare(f"{_label(n)}: FMR beats KR", "", est, ">", evidence=ev, synthetic=synthetic))
        part = fmap_results[fmap_results["network"] == n]
        lo_r, hi_r = float(part["rate"].min()), float(part["rate"].max())
        g_lo = _seed_means(part, duplication="fmr", rate=lo_r) - _seed_means(
            part, duplication="kr", rate=lo_r
        )
        g_hi = _seed_means(part, duplication="fmr", rate=hi_r) - _seed_means(
            part, duplication="kr", rate=hi_r
        )
        grows.append(
            compare(
                f"{_label(n)}: FMR's lead grows",
                "",
                _seed_difference(g_hi, g_lo) if hi_r > lo_r else None,
                ">",
                evidence=f"{_label(n)}: FMR − KR {g_lo.mean():+.1f} at {100 * lo_r:g} %, "
                f"{g_hi.mean():+.1f} at {100 * hi_r:g} %",
                synthetic=synthetic,
            )
        )
        lows = part[part["rate"].isin(low)]
        est, ev = diff(lows, n, "kr", "fmr")
        similar.append(
            compare(
                f"{_label(n)}: KR ≈ FMR at low feature-map rates",
                "",
                est,
                "~",
                t,
                evidence=ev + f" (rates {', '.join(f'{100 * r:g}' for r in low)} %)",
                synthetic=synthetic,
            )
        )
    wnets = list(dict.fromkeys(weight_results["network"]))
    kr_better = []
    for n in wnets:
        est, ev = diff(weight_results, n, "kr", "fmr")
        kr_better.append(
            compare(f"{_label(n)}: KR beats FMR", "", est, ">", evidence=ev, synthetic=synthetic)
        )
    claims = {
        "fmr_ge_kr_fmap": every(
            "FMR is more accurate than KR under feature-map errors (every network)",
            "§4.2, Fig. 7a: FMR yields better overall accuracy than KR w.r.t. feature-map errors",
            better,
        ),
        "fmr_gap_grows": every(
            "FMR's lead over KR grows with the feature-map error rate (every network)",
            "§4.2: as the feature-map error rate increases, FMR provides better accuracy than KR",
            grows,
        ),
        "kr_ge_fmr_weight": every(
            "KR is more accurate than FMR under weight errors",
            "§4.2, Fig. 7b: KR provides overall better accuracy than FMR w.r.t. the weight error",
            kr_better,
        ),
        "kr_similar_low_fmap": every(
            f"KR's accuracy is similar to FMR's at low feature-map error rates (within ±{t:g} "
            "points, every network)",
            "§4.2: KR can provide similar accuracy as FMR when the feature-map error rate is lower",
            similar,
        ),
    }
    w, f = table3_rates
    text = (
        f"Observation 1: KR's accuracy is similar to FMR's at {100 * w:g} % weight + {100 * f:g} % "
        f"feature-map errors (within ±{t:g} points)"
    )
    t3 = paper_table("ftdeepnets_table3").set_index("class").loc["mAP"]
    paper = (
        f"§4.4 Obs. 1, Table 3 (SSD-MobileNet): KR {100 * float(t3['kr_50']):g} vs FMR "
        f"{100 * float(t3['fmr_50']):g} mAP at 50 %"
    )
    sel = fmap_results[np.isclose(fmap_results["weight_rate"], w) & np.isclose(fmap_results["fmap_rate"], f)]
    if "mobilenet_v1" not in set(sel["network"]):
        claims["obs1_kr_similar"] = not_run(
            text, paper, f"MobileNetV1 at {100 * w:g} % + {100 * f:g} % errors is not in the sweep"
        )
    else:
        est, ev = diff(sel, "mobilenet_v1", "kr", "fmr")
        claims["obs1_kr_similar"] = compare(text, paper, est, "~", t, evidence=ev, synthetic=synthetic)
    return claims


# ------------------------------------------------------------------------------------------
# Table 1 — latency (§4.3)
# ------------------------------------------------------------------------------------------
def latency_rounds(
    networks: Mapping[str, nn.Module],
    ratio: float = 0.5,
    input_shape: tuple[int, ...] = (1, 3, 32, 32),
    device: str | torch.device = "cpu",
    min_run_time: float = 0.5,
    rounds: int = 3,
    ranking_method: str = "weight_sum",
) -> pd.DataFrame:
    """FTD Table 1 measured here, one row per measurement round: inference latency of each
    network as is (``original``), with KR and with FMR duplication at ``ratio`` (weight-sum
    ranking), on ``device`` (copies of the networks are moved there), via
    :func:`fatlib.ftd.overhead.measure_latency` (the three timed in turn in every round, so
    drift hits all alike). ``ratio`` is the round's latency over the original's in the same
    round — the rounds are the replicates of the latency claims. Adds the analytic FMR bound
    ``(MACs + duplicated MACs) / MACs``. Columns: ``network, model, round, median_ms, ratio,
    device, macs_bound``."""
    dev = torch.device(device)
    parts = []
    for net, model in networks.items():
        base = copy.deepcopy(model).to(dev).eval()
        scores = ranking.rank_channels(base, ranking_method)
        variants = {
            "original": base,
            "kr": duplication.duplicate(base, ratio, scores, "kr").eval(),
            "fmr": duplication.duplicate(base, ratio, scores, "fmr").eval(),
        }
        raw = overhead.measure_latency(
            variants, input_shape, device=dev, min_run_time=min_run_time, rounds=rounds
        )
        bound = overhead.fmr_latency_bound(base, ratio, input_shape, scores)
        label = (
            f"cpu ({int(raw['threads'].iloc[0])} threads)"
            if dev.type == "cpu"
            else torch.cuda.get_device_name(dev)
        )
        base_ms = raw[raw["model"] == "original"].set_index("round")["median_ms"]
        parts.append(
            raw.assign(
                network=net,
                device=label,
                ratio=raw["median_ms"] / raw["round"].map(base_ms),
                macs_bound=raw["model"].map({"original": 1.0, "kr": 1.0, "fmr": bound}),
            )
        )
    df = pd.concat(parts, ignore_index=True)
    return df[["network", "model", "round", "median_ms", "ratio", "device", "macs_bound"]]


def summarize_latency(rounds: pd.DataFrame) -> pd.DataFrame:
    """One row per network, device and variant of :func:`latency_rounds`: the median over rounds
    of the per-round medians (``median_ms``), its min / max over rounds, and ``ratio``, the
    median over rounds of the per-round ratio to the original (FTD Table 1 as ratios). Columns:
    ``network, model, median_ms, min_ms, max_ms, ratio, device, macs_bound``."""
    g = rounds.groupby(["network", "device", "model"], sort=False)
    out = g.agg(
        median_ms=("median_ms", "median"),
        min_ms=("median_ms", "min"),
        max_ms=("median_ms", "max"),
        ratio=("ratio", "median"),
        macs_bound=("macs_bound", "first"),
    ).reset_index()
    return out[["network", "model", "median_ms", "min_ms", "max_ms", "ratio", "device", "macs_bound"]]


def latency_table(
    networks: Mapping[str, nn.Module],
    ratio: float = 0.5,
    input_shape: tuple[int, ...] = (1, 3, 32, 32),
    device: str | torch.device = "cpu",
    min_run_time: float = 0.5,
    rounds: int = 3,
    ranking_method: str = "weight_sum",
) -> pd.DataFrame:
    """FTD Table 1 measured here, summarised: :func:`summarize_latency` of :func:`latency_rounds`
    (same arguments). Columns: ``network, model, median_ms, min_ms, max_ms, ratio, device,
    macs_bound``."""
    return summarize_latency(
        latency_rounds(networks, ratio, input_shape, device, min_run_time, rounds, ranking_method)
    )


def paper_latency() -> pd.DataFrame:
    """FTD Table 1 as printed, with KR / FMR latency as ratios to the original network."""
    t = paper_table("ftdeepnets_table1_latency_ms")
    return t.assign(
        kr_ratio=t["kernel_recovery"] / t["original"], fmr_ratio=t["feature_map_recovery"] / t["original"]
    )


def latency_comparison(ours: pd.DataFrame) -> pd.DataFrame:
    """FTD Table 1 as ratios: latency relative to the original network, ours (one row per network
    and device) beside the paper's (x86 with its discrete GPU, and Nvidia Xavier): columns
    ``network, platform, source, kr_ratio, fmr_ratio``."""
    rows = []
    for (net, dev), part in ours.groupby(["network", "device"], sort=False):
        r = part.set_index("model")["ratio"]
        rows.append(
            {
                "network": NETWORK_LABELS.get(net, net),
                "platform": dev,
                "source": "ours",
                "kr_ratio": float(r["kr"]),
                "fmr_ratio": float(r["fmr"]),
            }
        )
    inv = {v: k for k, v in PAPER_NETWORKS.items()}
    for row in paper_latency().itertuples():
        net = inv.get(row.model, row.model)
        rows.append(
            {
                "network": NETWORK_LABELS.get(net, net),
                "platform": row.platform,
                "source": f"paper ({row.model})",
                "kr_ratio": float(row.kr_ratio),
                "fmr_ratio": float(row.fmr_ratio),
            }
        )
    return pd.DataFrame(rows).sort_values(["network", "source"], kind="stable").reset_index(drop=True)


def _round_estimate(values: pd.Series) -> Estimate | None:
    """The mean over measurement rounds with its Student-t interval (None: no round)."""
    v = values.dropna()
    return seed_estimate(v.to_numpy(dtype=float), "measurement rounds") if len(v) else None


def latency_claims(rounds: pd.DataFrame) -> dict[str, Claim]:
    """Claims of FTD §4.3 / Table 1 and the speed half of Observation 1 (§4.4) on
    :func:`latency_rounds` (one row per network, device, variant and measurement round). Each
    quantity is computed per round from that round's ratios to the original network (KR and
    FMR are timed in the same round as the original), then averaged over the rounds with a
    Student-t interval over the rounds (one round: inconclusive). Per network and device; a claim
    must hold on every one (:func:`fatlib.core.verdicts.every`). Overheads in % of the original
    latency:

    * ``kr_far_less`` (Table 1) — KR's latency overhead is less than half of FMR's (Table 1: KR
      −1 % to +20 %, FMR +40 % to +92 %): KR's overhead − ½ FMR's ``<`` 0;
    * ``fmr_slower`` (§4.3, Table 1) — "the FMR approach ... impose[s] more computational
      overhead": FMR's overhead ``>`` 0;
    * ``obs1_kr_speed`` (§4.4, Observation 1) — "KR drops only by 10 % in speed performance":
      KR's speed loss 100·(1 − original / KR latency) ``<=`` 0 within +10 % (the quoted 10 %,
      ``ftd_obs1_kr_speed_drop``).

    Latency is measured on random inputs: no claim here depends on the test data. Returns
    ``{key: Claim}``."""
    drop = quote("ftd_obs1_kr_speed_drop")
    far, more, speed = [], [], []
    for (net, dev), part in rounds.groupby(["network", "device"], sort=False):
        wide = part.pivot_table(index="round", columns="model", values="ratio")
        tag = f"{_label(net)} on {dev}"
        kr = wide["kr"] if "kr" in wide else pd.Series(dtype=float)
        fmr = wide["fmr"] if "fmr" in wide else pd.Series(dtype=float)
        kr_o, fmr_o = 100.0 * (kr - 1.0), 100.0 * (fmr - 1.0)
        ev = f"{tag}: KR {kr_o.mean():+.1f} %, FMR {fmr_o.mean():+.1f} % ({len(wide)} round(s))"
        est = _round_estimate
        far.append(compare(f"{tag}: KR < ½ FMR", "", est(kr_o - 0.5 * fmr_o), "<", evidence=ev, unit="%"))
        more.append(compare(f"{tag}: FMR slower", "", est(fmr_o), ">", evidence=ev, unit="%"))
        loss = 100.0 * (1.0 - 1.0 / kr)
        speed.append(
            compare(
                f"{tag}: KR's speed loss ≤ {drop:g} %",
                "",
                est(loss),
                "<=",
                drop,
                evidence=f"{tag}: KR speed loss {loss.mean():.1f} % ({len(wide)} round(s))",
                unit="%",
            )
        )
    paper = paper_latency()
    kr_p, fmr_p = 100 * (paper["kr_ratio"] - 1), 100 * (paper["fmr_ratio"] - 1)
    t3 = paper_table("ftdeepnets_table3").set_index("class").loc["FPS"]
    return {
        "kr_far_less": every(
            "KR's latency overhead is less than half of FMR's (every network and device)",
            f"Table 1: KR {kr_p.min():+.0f} % to {kr_p.max():+.0f} %, FMR {fmr_p.min():+.0f} % to "
            f"{fmr_p.max():+.0f} % of the original latency",
            far,
        ),
        "fmr_slower": every(
            "FMR is slower than the original network (every network and device)",
            f"§4.3, Table 1: FMR {fmr_p.min():+.0f} % to {fmr_p.max():+.0f} %",
            more,
        ),
        "obs1_kr_speed": every(
            f"Observation 1: KR's speed is within {drop:g} % of the original network's (every "
            "network and device)",
            f"§4.4 Obs. 1: KR drops only by {drop:g} % in speed (Table 3: {float(t3['no_duplication']):g} "
            f"→ {float(t3['kr_50']):g} FPS at 50 %)",
            speed,
        ),
    }


# ------------------------------------------------------------------------------------------
# Table 2 — memory (§4.3)
# ------------------------------------------------------------------------------------------
def memory_table(
    networks: Mapping[str, nn.Module], ratio: float = 0.5, input_shape: tuple[int, ...] = (1, 3, 32, 32)
) -> pd.DataFrame:
    """FTD Table 2 on our networks: :func:`fatlib.ftd.overhead.memory_overhead` of KR and FMR at
    ``ratio`` (weight-sum ranking), measured and analytic, stacked with a ``network`` column."""
    parts = []
    for net, model in networks.items():
        scores = ranking.rank_channels(model, "weight_sum")
        for method in ("kr", "fmr"):
            parts.append(
                overhead.memory_overhead(model, ratio, method, input_shape, scores).assign(network=net)
            )
    df = pd.concat(parts, ignore_index=True)
    return df[["network", *[c for c in df.columns if c != "network"]]]


def paper_scale_memory(
    ratio: float = 0.5, width: float = 1.0, vgg_input: int = 300, mobilenet_input: int = 150
) -> pd.DataFrame:
    """FTD Table 2 recomputed at the paper's sizes: the §4.3 estimate (duplicated kernels ×
    4 B; FMR adds duplicated feature maps × 4 B) and the measured overhead, on the
    *feature-extraction layers* of full-width VGG-16 at a 300×300 input (SSD300) and of
    MobileNetV1 at 150×150 (SSD300's input after the standard stride-2 stem, which the CIFAR
    variant lacks). The networks are untrained: the counts depend only on how many channels are
    duplicated. Columns as :func:`memory_table`, plus ``input``."""
    from fatlib.core.models import mobilenet_v1, vgg16

    torch.manual_seed(0)
    vgg = vgg16(width=width).eval()
    mn = mobilenet_v1(width=width).eval()
    feats = {
        "vgg16": (vgg.features, vgg_input),
        "mobilenet_v1": (nn.Sequential(mn.stem, mn.blocks), mobilenet_input),
    }
    parts = []
    for net, (module, size) in feats.items():
        t = memory_table({net: module}, ratio, (1, 3, size, size))
        parts.append(
            t.assign(
                input=f"{size}×{size}",
                feature_params=sum(p.numel() for p in module.parameters() if p.dim() > 1),
            )
        )
    return pd.concat(parts, ignore_index=True)


def memory_comparison(ours: pd.DataFrame, paper_scale: pd.DataFrame) -> pd.DataFrame:
    """Total memory overhead in MB per network and method: the paper's Table 2, the §4.3 estimate
    at the paper's sizes (:func:`paper_scale_memory`), and ours measured and analytic
    (:func:`memory_table`), plus ours relative to the original network's bytes."""
    paper = paper_table("ftdeepnets_table2_memory_mb").set_index("model")
    col = {"kr": "kernel_recovery", "fmr": "feature_map_recovery"}
    rows = []
    for net in dict.fromkeys(ours["network"]):
        for method in ("kr", "fmr"):
            o = ours[(ours["network"] == net) & (ours["method"] == method)].set_index("quantity")
            p = paper_scale[(paper_scale["network"] == net) & (paper_scale["method"] == method)].set_index(
                "quantity"
            )
            rows.append(
                {
                    "network": NETWORK_LABELS.get(net, net),
                    "method": DUPLICATION_LABELS[method],
                    "paper_mb": float(paper.loc[PAPER_NETWORKS[net], col[method]]),
                    "paper_scale_mb": float(p.loc["total", "analytic_overhead_mb"])
                    if len(p)
                    else float("nan"),
                    "ours_measured_mb": float(o.loc["total", "measured_overhead_mb"]),
                    "ours_analytic_mb": float(o.loc["total", "analytic_overhead_mb"]),
                    "ours_relative_to_original": float(
                        o.loc["total", "measured_overhead_bytes"] / o.loc["total", "original_bytes"]
                    ),
                }
            )
    return pd.DataFrame(rows)


def kr_memory_table(networks: Mapping[str, nn.Module], ratio: float = 0.5) -> pd.DataFrame:
    """KR's kernel memory in operation (:func:`fatlib.ftd.overhead.kr_kernel_memory`: the copies
    differ, so the averaged kernels §4.3 says KR keeps exist) beside Table 2's estimate, per
    network. Columns: ``network, duplicated_bytes, averaged_bytes, total_bytes,
    estimate_bytes, total_mb, estimate_mb``."""
    rows = []
    for net, model in networks.items():
        m = overhead.kr_kernel_memory(model, ratio, ranking.rank_channels(model, "weight_sum"))
        rows.append(
            {
                "network": net,
                "duplicated_bytes": m["duplicated"],
                "averaged_bytes": m["averaged"],
                "total_bytes": m["total"],
                "estimate_bytes": m["estimate"],
                "total_mb": m["total"] / 1e6,
                "estimate_mb": m["estimate"] / 1e6,
            }
        )
    return pd.DataFrame(rows)


def paper_scale_fmr_maps(
    ratio: float = 0.5, width: float = 1.0, mobilenet_input: int = 150
) -> dict[str, float]:
    """The feature-map elements FMR duplicates in full-width MobileNetV1 at the paper's size
    (:func:`paper_scale_memory`'s 150×150), beside §4.3's "2.6 million (10.4 MB) for
    SSD-MobileNet" (quote ``ftd_mobilenet_fmr_fm_elements_million``), in millions:
    ``stem_pointwise`` (duplicated elements of the stem and pointwise maps only), ``all`` (with
    the depthwise maps, duplicated whole, §3.3), ``paper`` and ``paper_vs_stem_pointwise`` (the
    paper's count relative to ``stem_pointwise``, in %: how close the paper's count is to a
    count without the depthwise maps)."""
    from fatlib.core.models import mobilenet_v1

    torch.manual_seed(0)
    mn = mobilenet_v1(width=width).eval()
    fe = overhead.feature_map_elements(
        nn.Sequential(mn.stem, mn.blocks), ratio, (1, 3, mobilenet_input, mobilenet_input)
    )
    sp = float(fe.loc[~fe["depthwise"], "duplicated_elements"].sum()) / 1e6
    total = float(fe["duplicated_elements"].sum()) / 1e6
    paper = quote("ftd_mobilenet_fmr_fm_elements_million")
    return {
        "stem_pointwise": sp,
        "all": total,
        "paper": paper,
        "paper_vs_stem_pointwise": 100.0 * (paper / sp - 1),
    }


def memory_claims(
    comparison: pd.DataFrame,
    kr_memory: pd.DataFrame | None = None,
    tolerance: float = 5.0,
) -> dict[str, Claim]:
    """Claims of FTD §4.3 / Table 2, all exact (byte counts; the numbers do not depend on the
    test data):

    * ``kr_matches_estimate`` (§4.3, Table 2) — "KR consumes 29.6 MB more space in memory", the
      duplicated parameters × 4 B, while §4.3's text says KR keeps "the duplicated and averaged
      kernels": KR's kernel memory in operation (``kr_memory``: :func:`kr_memory_table`, the
      copies differing as under errors) relative to the estimate, 100·(measured / estimate − 1)
      ``~`` 0 within ±``tolerance`` % (5 %), every network; not run without ``kr_memory``;
    * ``fmr_more`` (Table 2) — FMR needs more memory than KR: FMR − KR total measured overhead
      of :func:`memory_table` (one forward, MB) ``>`` 0, every network;
    * ``paper_scale_<net>`` (Table 2) — the paper's MB follow from the §4.3 estimate at full size
      (``comparison``: :func:`memory_comparison`): 100·(computed / printed − 1) ``~`` 0 within
      ±``tolerance`` %, for KR and for FMR.

    Returns ``{key: Claim}``."""
    tol = float(tolerance)
    paper_t2 = paper_table("ftdeepnets_table2_memory_mb").set_index("model")
    text = f"KR's memory overhead is the duplicated kernels, as Table 2 estimates (within ±{tol:g} %)"
    paper = (
        f"§4.3, Table 2: KR {float(paper_t2.loc['SSD-VGG', 'kernel_recovery']):g} MB (SSD-VGG) = "
        "duplicated parameters × 4 B; the text: KR keeps the duplicated and averaged kernels"
    )
    if kr_memory is None or kr_memory.empty:
        claims = {"kr_matches_estimate": not_run(text, paper, "KR's memory in operation was not measured")}
    else:
        rows = []
        for r in kr_memory.itertuples():
            rows.append(
                compare(
                    f"{_label(r.network)}: KR's memory = Table 2's estimate",
                    "",
                    _exact(100.0 * (r.total_bytes / r.estimate_bytes - 1.0)),
                    "~",
                    tol,
                    evidence=f"{_label(r.network)}: {r.total_bytes:,} B measured = {r.duplicated_bytes:,} B "
                    f"duplicated + {r.averaged_bytes:,} B averaged kernels; estimate {r.estimate_bytes:,} B",
                    unit="%",
                )
            )
        claims = {"kr_matches_estimate": every(text, paper, rows)}
    c = comparison.set_index(["network", "method"])
    nets = list(dict.fromkeys(comparison["network"]))
    kr_label, fmr_label = DUPLICATION_LABELS["kr"], DUPLICATION_LABELS["fmr"]
    mb = c["ours_measured_mb"]
    more = [
        compare(
            f"{n}: FMR > KR",
            "",
            _exact(float(mb[(n, fmr_label)] - mb[(n, kr_label)])),
            ">",
            evidence=f"{n}: {fmr_label} {mb[(n, fmr_label)]:.3f} MB vs {kr_label} {mb[(n, kr_label)]:.3f} MB",
            unit="MB",
        )
        for n in nets
    ]
    claims["fmr_more"] = every(
        "FMR needs more memory than KR (measured, one forward; every network)",
        "Table 2: FMR "
        + ", ".join(
            f"{row.feature_map_recovery:g} vs KR {row.kernel_recovery:g} MB ({m})"
            for m, row in paper_t2.iterrows()
        ),
        more,
    )
    for n in nets:
        key = [k for k, v in NETWORK_LABELS.items() if v == n][0]
        printed_mb = paper_t2.loc[PAPER_NETWORKS[key]].astype(float)
        rows = []
        for m in (kr_label, fmr_label):
            computed, printed = float(c.loc[(n, m), "paper_scale_mb"]), float(c.loc[(n, m), "paper_mb"])
            rows.append(
                compare(
                    f"{PAPER_NETWORKS[key]} {m}",
                    "",
                    _exact(100.0 * (computed / printed - 1.0)),
                    "~",
                    tol,
                    evidence=f"{m} {computed:.1f} MB computed vs {printed:.1f} MB printed",
                    unit="%",
                )
            )
        claims[f"paper_scale_{key}"] = every(
            f"{PAPER_NETWORKS[key]}: the paper's MB follow from the §4.3 estimate at full size "
            f"(within ±{tol:g} %)",
            f"Table 2: {PAPER_NETWORKS[key]} KR {printed_mb['kernel_recovery']:g} MB, "
            f"FMR {printed_mb['feature_map_recovery']:g} MB",
            rows,
        )
    return claims


# ------------------------------------------------------------------------------------------
# Table 3 — D2NN comparison (§4.4)
# ------------------------------------------------------------------------------------------
#: the columns of FTD Table 3 (duplication type and ratio)
TABLE3_COLUMNS: tuple[str, ...] = (
    "no_error",
    "no_duplication",
    "fmr_50",
    "fmr_20",
    "kr_50",
    "kr_20",
    "d2nn_50",
    "d2nn_20",
)


def table3_models(
    model: nn.Module, ratios: Sequence[float] = (0.5, 0.2), secondary_errors: str = "independent"
) -> dict[str, nn.Module]:
    """The networks of FTD Table 3 (§4.4): the original (``no_duplication``), FMR, KR and D2NN
    (:func:`fatlib.ftd.duplication.d2nn`) at each ratio, all with weight-sum ranking as in the paper.
    Keys as :data:`TABLE3_COLUMNS` (without ``no_error``, which is the original without errors)."""
    scores = ranking.rank_channels(model, "weight_sum")
    out: dict[str, nn.Module] = {"no_duplication": model}
    for method in ("fmr", "kr"):
        for r in ratios:
            out[f"{method}_{round(100 * r)}"] = duplication.duplicate(model, r, scores, method).eval()
    for r in ratios:
        out[f"d2nn_{round(100 * r)}"] = duplication.d2nn(model, r, scores, secondary_errors).eval()
    return out


def table3_runs(
    models: Mapping[str, nn.Module],
    eval_data: Data,
    classes: Sequence[str],
    weight_rate: float = 0.01,
    fmap_rate: float = 0.01,
    seeds: Sequence[int] = (0,),
    batch_size: int = 100,
) -> pd.DataFrame:
    """FTD Table 3 for classification, one row per network, error seed and class: accuracy (%)
    of each network under ``weight_rate`` + ``fmap_rate`` zero errors drawn with each seed, and
    of the original without errors (variant ``no_error``, the same at every seed). ``class``
    holds the classes and ``"overall"`` (accuracy over all images). Columns: ``variant, seed,
    class, accuracy``; :func:`per_class_from_runs` makes the table, :func:`table3_claims` reads
    the seeds."""
    x, y = eval_data
    first = next(iter(models.values()))
    rows = []

    def add(name: str, seed: int, pred: torch.Tensor) -> None:
        pc = per_class_accuracy(pred, y, classes)
        overall = 100.0 * float((pred == y.cpu()).double().mean())
        rows.extend({"variant": name, "seed": seed, "class": c, "accuracy": float(v)} for c, v in pc.items())
        rows.append({"variant": name, "seed": seed, "class": "overall", "accuracy": overall})

    clean = predict_under_errors(first, x, batch_size=batch_size)
    for s in seeds:
        add("no_error", int(s), clean)
    for name, model in models.items():
        for s in seeds:
            add(
                name,
                int(s),
                predict_under_errors(model, x, weight_rate, fmap_rate, int(s), batch_size=batch_size),
            )
    return pd.DataFrame(rows)


def per_class_from_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """The Table 3 of :func:`table3_runs`: per-class accuracy averaged over the seeds, one column
    per variant (order of :data:`TABLE3_COLUMNS`), plus the rows ``mean per-class`` (the
    analogue of mAP) and ``overall``."""
    classes = list(dict.fromkeys(runs.loc[runs["class"] != "overall", "class"]))
    variants = list(dict.fromkeys(runs["variant"]))
    mean = runs.groupby(["class", "variant"], sort=False)["accuracy"].mean().unstack("variant")
    table = mean.loc[classes, variants].astype(float)
    table.loc["mean per-class"] = table.mean(axis=0)
    table.loc["overall"] = mean.loc["overall", variants].astype(float)
    order = [c for c in TABLE3_COLUMNS if c in table.columns] + [
        c for c in table.columns if c not in TABLE3_COLUMNS
    ]
    table.index.name = "class"
    table.columns.name = None
    return table[order]


def per_class_table(
    models: Mapping[str, nn.Module],
    eval_data: Data,
    classes: Sequence[str],
    weight_rate: float = 0.01,
    fmap_rate: float = 0.01,
    seeds: Sequence[int] = (0,),
    batch_size: int = 100,
) -> pd.DataFrame:
    """FTD Table 3 for classification: per-class accuracy (%) of each network under
    ``weight_rate`` + ``fmap_rate`` zero errors, averaged over ``seeds``, plus the original
    without errors (column ``no_error``). Rows: the classes, ``mean per-class`` (the analogue of
    mAP) and ``overall`` accuracy. Columns in the order of :data:`TABLE3_COLUMNS`
    (:func:`per_class_from_runs` of :func:`table3_runs`)."""
    return per_class_from_runs(
        table3_runs(models, eval_data, classes, weight_rate, fmap_rate, seeds, batch_size)
    )


def fps_rounds(
    models: Mapping[str, nn.Module],
    input_shape: tuple[int, ...] = (1, 3, 32, 32),
    min_run_time: float = 0.5,
    rounds: int = 3,
) -> pd.DataFrame:
    """Images per second of each network per measurement round (FTD Table 3's FPS row), from
    :func:`fatlib.ftd.overhead.measure_latency` at ``input_shape`` (batch 1 = frames; the networks
    timed in turn in every round). ``no_error`` is the original network (the first), timed as
    ``no_duplication``. Columns: ``variant, round, fps``."""
    raw = overhead.measure_latency(dict(models), input_shape, min_run_time=min_run_time, rounds=rounds)
    raw = raw.assign(fps=input_shape[0] * 1000.0 / raw["median_ms"])
    first = next(iter(models))
    base = raw[raw["model"] == first].assign(model="no_error")
    out = pd.concat([base, raw], ignore_index=True).rename(columns={"model": "variant"})
    return out[["variant", "round", "fps"]]


def fps_median(rounds: pd.DataFrame) -> pd.Series:
    """The FPS row of :func:`fps_rounds`: the median over the rounds, per variant."""
    return rounds.groupby("variant", sort=False)["fps"].median().rename("images/s").rename_axis(None)


def fps_row(
    models: Mapping[str, nn.Module],
    input_shape: tuple[int, ...] = (1, 3, 32, 32),
    min_run_time: float = 0.5,
    rounds: int = 3,
) -> pd.Series:
    """Images per second of each network (FTD Table 3's FPS row): :func:`fps_median` of
    :func:`fps_rounds`. ``no_error`` is the original network, timed as ``no_duplication``."""
    return fps_median(fps_rounds(models, input_shape, min_run_time, rounds))


def order_agreement(ours: pd.Series, paper: pd.Series) -> float:
    """Spearman rank correlation of two rows over their common columns (how alike the orderings
    of the duplication types of FTD Table 3 are; 1 = same order)."""
    common = [c for c in ours.index if c in paper.index and pd.notna(ours[c]) and pd.notna(paper[c])]
    a = ours[common].astype(float).rank()
    b = paper[common].astype(float).rank()
    return float(a.corr(b))


def table3_claims(
    runs: pd.DataFrame, fps: pd.DataFrame, ratios: Sequence[int] = (50, 20), synthetic: bool = False
) -> dict[str, Claim]:
    """Claims of FTD §4.4 (Table 3, Observations 1–2) on :func:`table3_runs` (the accuracy
    claims: mean per-class accuracy per error seed, two variants compared through their
    per-seed differences, Student-t interval over the seeds) and :func:`fps_rounds` (the speed
    claim: per measurement round, interval over the rounds). Strict relations, no tolerance;
    each claim must hold for every pair it lists (:func:`fatlib.core.verdicts.every`):

    * ``beat_d2nn`` (Obs. 2) — "our approaches out-perform D2NN recovery": KR − D2NN and FMR −
      D2NN ``>`` 0 at each ratio;
    * ``dup_recovers`` (Obs. 2, Table 3) — every duplication recovers accuracy lost to errors:
      each variant − no duplication ``>`` 0;
    * ``more_dup_better`` (Obs. 1: "we recommend the use of KR with more duplication"; Table 3)
      — the larger ratio − the smaller ``>`` 0 for FMR, KR and D2NN;
    * ``kr_faster`` (Obs. 1: "better speed performance compared to the FMR method") — KR's FPS
      over FMR's, 100·(KR / FMR − 1) ``>`` 0 % at each ratio.

    Returns ``{key: Claim}``."""
    per_seed = runs[runs["class"] != "overall"].groupby(["variant", "seed"])["accuracy"].mean()

    def seeds_of(variant: str) -> pd.Series:
        return (
            per_seed.loc[variant] if variant in per_seed.index.get_level_values(0) else pd.Series(dtype=float)
        )

    def diff(a: str, b: str) -> Claim:
        sa, sb = seeds_of(a), seeds_of(b)
        return compare(
            f"{a} beats {b}",
            "",
            _seed_difference(sa, sb),
            ">",
            evidence=f"{a} {sa.mean():.1f} vs {b} {sb.mean():.1f}",
            synthetic=synthetic,
        )

    paper = paper_table("ftdeepnets_table3").set_index("class")
    pm = paper.loc["mAP"].astype(float)

    def pct(cols: Sequence[str]) -> str:
        return ", ".join(f"{c} {100 * pm[c]:g}" for c in cols if c in pm.index and pd.notna(pm[c]))

    hi, lo = max(ratios), min(ratios)
    dups = [f"{k}_{r}" for k in ("fmr", "kr", "d2nn") for r in ratios]
    wide = fps.pivot_table(index="round", columns="variant", values="fps")
    fast = []
    for r in ratios:
        kr, fmr = f"kr_{r}", f"fmr_{r}"
        if kr in wide and fmr in wide:
            rel = 100.0 * (wide[kr] / wide[fmr] - 1.0)
            est = _round_estimate(rel)
            ev = (
                f"{r} %: KR {wide[kr].mean():.0f} vs FMR {wide[fmr].mean():.0f} images/s "
                f"({len(wide)} round(s))"
            )
        else:
            est, ev = None, f"{r} %: not timed"
        fast.append(compare(f"KR faster than FMR at {r} %", "", est, ">", evidence=ev, unit="%"))
    pf = paper.loc["FPS"]
    return {
        "beat_d2nn": every(
            "KR and FMR beat D2NN at the same duplication ratio (Observation 2)",
            f"§4.4 Obs. 2, Table 3 mAP: {pct(dups)}",
            [diff(f"{m}_{r}", f"d2nn_{r}") for r in ratios for m in ("kr", "fmr")],
        ),
        "dup_recovers": every(
            "Every duplication recovers accuracy lost to errors (beats no duplication)",
            f"Table 3 mAP: no duplication {100 * pm['no_duplication']:g}; {pct(dups)}",
            [diff(c, "no_duplication") for c in dups],
        ),
        "more_dup_better": every(
            f"{hi} % duplication recovers more than {lo} % (FMR, KR and D2NN)",
            f"§4.4 Obs. 1 (use KR with more duplication), Table 3 mAP: {pct(dups)}",
            [diff(f"{k}_{hi}", f"{k}_{lo}") for k in ("fmr", "kr", "d2nn")],
        ),
        "kr_faster": every(
            "KR runs faster than FMR (Observation 1, FPS)",
            "§4.4 Obs. 1, Table 3 FPS: "
            + ", ".join(f"{c} {float(pf[c]):g}" for c in ("fmr_50", "fmr_20", "kr_50", "kr_20")),
            fast,
        ),
    }


def __getattr__(name: str) -> object:
    """The ``plot_*`` functions of fatlib 0.1's ``ftd_experiments`` live in :mod:`fatlib.ftd.plots`
    now (imported on use: the plots import this module's labels)."""
    if name == "PAPER_ERROR_FREE":  # fatlib 0.2's constant: now read from the quotes table
        return paper_error_free()
    if name.startswith("plot_"):
        from fatlib.ftd import plots

        if name in plots.__all__:
            return getattr(plots, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
