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

The evaluation helpers of :mod:`fatlib.ftd.evaluation` and :class:`~fatlib.core.profiles.SweepSizes`
are importable from here too.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from fatlib.core.data import ArrayDataset, profile_dataset
from fatlib.core.files import output_dir as make_output_dir
from fatlib.core.paper import paper_table
from fatlib.core.profiles import PROFILES, Profile, SweepSizes, get_profile
from fatlib.core.torch_utils import eval_mode, model_device
from fatlib.core.training import TrainResult, train_ftd
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
    "PAPER_ERROR_FREE",
    "rank_all",
    "score_table",
    "overlap_matrix",
    "layer_overlaps",
    "ranking_claims",
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
    "kr_vs_fmr_sweep",
    "weight_only_identity",
    "kr_vs_fmr_claims",
    "latency_table",
    "paper_latency",
    "latency_comparison",
    "latency_claims",
    "memory_table",
    "paper_scale_memory",
    "memory_comparison",
    "memory_claims",
    "TABLE3_COLUMNS",
    "table3_models",
    "per_class_table",
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
    networks), plus the sweep sizes (for the pages; :meth:`Profile.describe` is about CNV)."""
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

    def glued(self, prefix: str) -> dict[str, object]:
        """The values every page glues about its setup, keyed ``<prefix>_profile``,
        ``_profile_line``, ``_setup``, ``_test_source`` and ``_eval_images``."""
        return {
            f"{prefix}_profile": self.profile.name,
            f"{prefix}_profile_line": self.profile.describe(),
            f"{prefix}_setup": self.line,
            f"{prefix}_test_source": self.test.source,
            f"{prefix}_eval_images": len(self.eval_data[1]),
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
    trained = {
        arch: train_ftd(prof, arch, seed=seed, data_dir=data_dir, device=device, progress=False)
        for arch in archs
    }
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


#: error-free mAP (%) of the paper's networks on PASCAL VOC2007 (FTD §4)
PAPER_ERROR_FREE: dict[str, float] = {"vgg16": 77.26, "mobilenet_v1": 67.5}
#: mAP (%) at 10 % errors stated in FTD §2.3 (Fig. 2 has no table)
_PAPER_FIG02: dict[tuple[str, str], float] = {
    ("vgg16", "kernel"): 77.0,
    ("vgg16", "feature map"): 77.0,
    ("mobilenet_v1", "kernel"): 0.0,
    ("mobilenet_v1", "feature map"): 62.0,
}


def error_location_comparison(results: pd.DataFrame, rate: float = 0.1) -> list[dict]:
    """Rows for :func:`fatlib.core.paper.side_by_side`: the share of the error-free score kept at
    ``rate`` kernel / feature-map errors, from FTD §2.3's sentences (SSD-VGG stays at 77 % mAP for
    both, SSD-MobileNet drops to 62 % under feature-map and to 0 % under kernel errors) and from
    ours (accuracy; the largest rate of the sweep when ``rate`` is not in it)."""
    s = summarize(results, ["network", "location", "rate"])
    if rate not in set(s["rate"]):
        rate = float(s["rate"].max())
    clean = s[s["rate"] == 0].groupby("network")["mean"].first()
    rows = []
    for (net, loc), paper_map in _PAPER_FIG02.items():
        if net not in clean.index:
            continue
        ours = s[(s["network"] == net) & (s["location"] == loc) & (s["rate"] == rate)]["mean"]
        rows.append(
            {
                "quantity": f"{NETWORK_LABELS[net]}, {100 * rate:g} % {loc} errors: score kept "
                "[% of error-free]",
                "paper": 100.0 * paper_map / PAPER_ERROR_FREE[net],
                "ours": 100.0 * float(ours.iloc[0]) / float(clean[net]),
            }
        )
    return rows


def error_location_claims(results: pd.DataFrame) -> dict[str, tuple[str, bool, str]]:
    """Claims of FTD §2.3 / Fig. 2 evaluated on :func:`error_location_sweep` results, averaged
    over the non-zero rates and seeds: kernel errors hurt more than feature-map errors (per network
    and for both), and the compact MobileNet retains a smaller share of its error-free accuracy
    than VGG. Returns ``{key: (claim, holds, evidence)}``."""
    s = summarize(results, ["network", "location", "rate"])
    faulty = s[s["rate"] > 0]
    clean = s[s["rate"] == 0].groupby("network")["mean"].first()
    means = faulty.groupby(["network", "location"])["mean"].mean()
    claims: dict[str, tuple[str, bool, str]] = {}
    per_net = {}
    for net in dict.fromkeys(results["network"]):
        k, f = float(means[(net, "kernel")]), float(means[(net, "feature map")])
        per_net[net] = (
            k < f,
            f"{NETWORK_LABELS.get(net, net)}: {k:.1f} % under kernel vs "
            f"{f:.1f} % under feature-map errors (mean over rates)",
        )
    for net, (holds, ev) in per_net.items():
        claims[f"kernel_worse_{net}"] = (
            f"{NETWORK_LABELS.get(net, net)}: kernel errors hurt more than feature-map errors "
            "at the same rate (Fig. 2)",
            holds,
            ev,
        )
    claims["kernel_worse"] = (
        "Kernel errors hurt more than feature-map errors at the same rate (both networks)",
        all(h for h, _ in per_net.values()),
        "; ".join(e for _, e in per_net.values()),
    )
    if {"vgg16", "mobilenet_v1"} <= set(per_net):
        kept = {
            net: float(faulty[faulty["network"] == net]["mean"].mean() / clean[net])
            for net in ("vgg16", "mobilenet_v1")
        }
        claims["compact_more_sensitive"] = (
            "The compact network (MobileNet) is more sensitive to errors than the large one (VGG)",
            kept["mobilenet_v1"] < kept["vgg16"],
            f"share of error-free accuracy kept under errors (mean over locations and rates): "
            f"{NETWORK_LABELS['mobilenet_v1']} {100 * kept['mobilenet_v1']:.0f} %, "
            f"{NETWORK_LABELS['vgg16']} {100 * kept['vgg16']:.0f} %",
        )
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
        s = torch.as_tensor(by_layer[layer]).float().cpu()
        order = torch.sort(s, descending=True, stable=True).indices
        rank = torch.empty_like(order)
        rank[order] = torch.arange(len(order))
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


def ranking_claims(overlaps: pd.DataFrame, ratio: float = 0.5) -> dict[str, tuple[str, bool, str]]:
    """Observations behind FTD §3.1 / Fig. 3 on :func:`layer_overlaps`: the three scores select
    different channels (mean pairwise top-k overlap below 90 %), yet not at random (each pair of
    the three overlaps more than two random top-``ratio`` sets, whose expected overlap is
    ``ratio``)."""
    three = overlaps[~overlaps["a"].eq("random") & ~overlaps["b"].eq("random")]
    pair = three.groupby(["a", "b"], sort=False)["fraction"].mean()
    ev = ", ".join(f"{a}/{b} {100 * v:.0f} %" for (a, b), v in pair.items())
    return {
        "differ": (
            "The three ranking methods select different channels (mean top-k overlap below 90 %)",
            bool((pair < 0.9).all()),
            ev,
        ),
        "not_random": (
            f"The rankings agree more than chance (overlap above {100 * ratio:.0f} %, "
            "the expectation for random selections)",
            bool((pair > ratio).all()),
            ev,
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
    (FTD §3.2), measured on the real modules with :func:`fatlib.errors.transient_errors`: the
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


def duplication_claims(
    agreement: pd.DataFrame,
    kr_demo: Mapping[str, object],
    fmr_demo: Mapping[str, object],
    summaries: Mapping[str, pd.DataFrame],
) -> dict[str, tuple[str, bool, str]]:
    """The claims of FT-DeepNets Fig. 4 / Fig. 5 (§3.2–3.3) on this book's evidence: KR and FMR
    compute the original network without errors (``agreement``: :func:`no_error_agreement` per
    ``"<net> KR"`` / ``"<net> FMR"`` row); KR halves a kernel error (``kr_demo``:
    :func:`kr_weight_error_demo`); FMR halves a feature-map error (``fmr_demo``:
    :func:`fmr_fmap_error_demo`); MobileNet's depthwise kernels are duplicated whole with their
    pointwise kernels (``summaries["mobilenet_v1"]``: :func:`fatlib.ftd.duplication.duplication_summary`
    of the KR network)."""
    kr_rows = [f"{net} {DUPLICATION_LABELS['kr']}" for net in ("vgg16", "mobilenet_v1")]
    fmr_rows = [f"{net} {DUPLICATION_LABELS['fmr']}" for net in ("vgg16", "mobilenet_v1")]
    mn = summaries["mobilenet_v1"]
    paired = mn[mn["paired_depthwise"]]
    return {
        "identity": (
            "Without errors KR and FMR compute the original network (§3.2)",
            bool(agreement["same_predictions"].min() == 1.0 and agreement.loc[kr_rows, "equal"].all()),
            f"KR bit-exact, FMR max logit difference {agreement.loc[fmr_rows, 'max_abs_diff'].max():.1e}",
        ),
        "kr_halves_kernel_error": (
            "KR averages the kernels, halving a kernel error in a duplicated filter (Fig. 4b)",
            kr_demo["halfway"] and kr_demo["unprotected_channel_equal"],
            f"max error {kr_demo['max_error_no_duplication']:.3f} without, "
            f"{kr_demo['max_error_kr']:.3f} with KR",
        ),
        "fmr_halves_fmap_error": (
            "FMR averages two feature maps, halving a feature-map error (Fig. 4a)",
            fmr_demo["halfway"],
            f"zeroed element {fmr_demo['clean_value']:.3f} → {fmr_demo['fmr_value']:.3f}",
        ),
        "depthwise_whole": (
            "MobileNet: the depthwise kernel is duplicated whole with its pointwise kernel (Fig. 5b)",
            bool((paired["duplicated"] == paired["channels"]).all()) and len(paired) > 0,
            f"{len(paired)} depthwise convolutions, all duplicated whole",
        ),
    }


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


def ranking_methods_claims(results: pd.DataFrame) -> dict[str, tuple[str, bool, str]]:
    """Claims of FTD §4.1 on :func:`ranking_methods_sweep` results, each ranking's accuracy
    averaged over feature-map rates and seeds, per panel: every ranking beats random selection,
    random selection beats no duplication, and every duplication beats no duplication."""
    mean = results.groupby(["network", "duplication", "weight_rate", "ranking"], sort=False)[
        "accuracy"
    ].mean()
    rankers = [m for m in dict.fromkeys(results["ranking"]) if m not in ("random", "none")]
    beats_random, random_beats_none, dup_beats_none = [], [], []
    ev_rand, ev_none = [], []
    for (net, dup, w), part in mean.groupby(level=[0, 1, 2], sort=False):
        p = part.droplevel([0, 1, 2])
        tag = f"{NETWORK_LABELS.get(net, net)}+{DUPLICATION_LABELS[dup]} w{100 * w:g}%"
        beats_random.append(all(p[m] > p["random"] for m in rankers))
        random_beats_none.append(p["random"] > p["none"])
        dup_beats_none.append(all(p[m] > p["none"] for m in [*rankers, "random"]))
        ev_rand.append(
            f"{tag}: " + ", ".join(f"{m} {p[m]:.1f}" for m in rankers) + f" vs random {p['random']:.1f}"
        )
        ev_none.append(
            f"{tag}: random {p['random']:.1f}, best {max(p[m] for m in rankers):.1f} vs none {p['none']:.1f}"
        )
    return {
        "beats_random": (
            "Every ranking method beats random selection (§4.1, Fig. 6)",
            all(beats_random),
            "; ".join(ev_rand),
        ),
        "random_beats_none": (
            "Random selection beats no duplication (§4.1)",
            all(random_beats_none),
            "; ".join(ev_none),
        ),
        "dup_beats_none": (
            "Every duplication beats no duplication (§4.1)",
            all(dup_beats_none),
            "; ".join(ev_none),
        ),
    }


#: FTD §4.1's sentences on Fig. 6: mAP (%) at 10 % feature-map errors, per panel ("nearly 10 %",
#: "over 74 %", "over 69 %"), and the gain of duplication over none ("10 % better")
_PAPER_FIG06: dict[Panel, float] = {
    Panel("mobilenet_v1", "kr", 0.01): 10.0,
    Panel("vgg16", "kr", 0.01): 74.0,
    Panel("vgg16", "fmr", 0.10): 69.0,
}
_PAPER_FIG06_GAIN = 10.0


def ranking_methods_comparison(results: pd.DataFrame, error_free: Mapping[str, float]) -> list[dict]:
    """Rows for :func:`fatlib.core.paper.side_by_side` from FTD §4.1's numbers on Fig. 6: the share of
    the error-free score kept at the largest feature-map rate (mean of the three rankings) in the
    panels the text quantifies, and the gain of duplication over none in points (mean over
    panels, rates and the three rankings). ``error_free``: our error-free accuracy per network."""
    rankers = [m for m in dict.fromkeys(results["ranking"]) if m not in ("random", "none")]
    top = float(results["fmap_rate"].max())
    rows = []
    for panel, paper_map in _PAPER_FIG06.items():
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
                "paper": 100.0 * paper_map / PAPER_ERROR_FREE[panel.network],
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
            "paper": _PAPER_FIG06_GAIN,
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


def kr_vs_fmr_claims(
    fmap_results: pd.DataFrame, weight_results: pd.DataFrame
) -> dict[str, tuple[str, bool, str]]:
    """Claims of FTD §4.2 / Fig. 7, means over rates and seeds: FMR ≥ KR under feature-map errors
    (every network of ``fmap_results``), FMR's lead grows with the feature-map rate, and KR ≥ FMR
    under weight errors (``weight_results``)."""

    def means(df: pd.DataFrame) -> pd.Series:
        return df.groupby(["network", "duplication"], sort=False)["accuracy"].mean()

    mf = means(fmap_results)
    nets = list(dict.fromkeys(fmap_results["network"]))
    fmr_wins = [mf[(n, "fmr")] >= mf[(n, "kr")] for n in nets]
    ev_f = "; ".join(
        f"{NETWORK_LABELS.get(n, n)}: FMR {mf[(n, 'fmr')]:.1f} % vs KR {mf[(n, 'kr')]:.1f} %" for n in nets
    )
    by_rate = fmap_results.groupby(["network", "rate", "duplication"])["accuracy"].mean().unstack()
    grows, ev_g = [], []
    for n in nets:
        gap = (by_rate.loc[n, "fmr"] - by_rate.loc[n, "kr"]).sort_index()
        grows.append(gap.iloc[-1] > gap.iloc[0])
        ev_g.append(
            f"{NETWORK_LABELS.get(n, n)}: FMR − KR {gap.iloc[0]:+.1f} at "
            f"{100 * gap.index[0]:g} %, {gap.iloc[-1]:+.1f} at {100 * gap.index[-1]:g} %"
        )
    mw = means(weight_results)
    wnets = list(dict.fromkeys(weight_results["network"]))
    kr_wins = [mw[(n, "kr")] >= mw[(n, "fmr")] for n in wnets]
    ev_w = "; ".join(
        f"{NETWORK_LABELS.get(n, n)}: KR {mw[(n, 'kr')]:.1f} % vs FMR {mw[(n, 'fmr')]:.1f} %" for n in wnets
    )
    return {
        "fmr_ge_kr_fmap": ("FMR ≥ KR under feature-map errors (Fig. 7a)", all(fmr_wins), ev_f),
        "fmr_gap_grows": (
            "FMR's lead over KR grows with the feature-map error rate (§4.2)",
            all(grows),
            "; ".join(ev_g),
        ),
        "kr_ge_fmr_weight": ("KR ≥ FMR under weight errors (Fig. 7b)", all(kr_wins), ev_w),
    }


# ------------------------------------------------------------------------------------------
# Table 1 — latency (§4.3)
# ------------------------------------------------------------------------------------------
def latency_table(
    networks: Mapping[str, nn.Module],
    ratio: float = 0.5,
    input_shape: tuple[int, ...] = (1, 3, 32, 32),
    device: str | torch.device = "cpu",
    min_run_time: float = 0.5,
    rounds: int = 3,
    ranking_method: str = "weight_sum",
) -> pd.DataFrame:
    """FTD Table 1 measured here: inference latency of each network as is (``original``), with
    KR and with FMR duplication at ``ratio`` (weight-sum ranking), on ``device`` (copies of the
    networks are moved there), via :func:`fatlib.ftd.overhead.measure_latency` (interleaved rounds).
    Adds the analytic FMR bound ``(MACs + duplicated MACs) / MACs``. Columns: ``network, model,
    median_ms, min_ms, max_ms, ratio, device, macs_bound``."""
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
        summ = overhead.latency_summary(raw)
        bound = overhead.fmr_latency_bound(base, ratio, input_shape, scores)
        summ["macs_bound"] = summ["model"].map({"original": 1.0, "kr": 1.0, "fmr": bound})
        label = (
            f"cpu ({int(raw['threads'].iloc[0])} threads)"
            if dev.type == "cpu"
            else torch.cuda.get_device_name(dev)
        )
        parts.append(summ.assign(network=net, device=label))
    df = pd.concat(parts, ignore_index=True)
    return df[["network", "model", "median_ms", "min_ms", "max_ms", "ratio", "device", "macs_bound"]]


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


def latency_claims(ours: pd.DataFrame) -> dict[str, tuple[str, bool, str]]:
    """Claims of FTD §4.3 / Table 1 on :func:`latency_table` results: KR costs far less latency
    than FMR (KR's overhead below half of FMR's, every network and device), and FMR costs more
    than the original network."""
    far, more, ev = [], [], []
    for (net, dev), part in ours.groupby(["network", "device"], sort=False):
        r = part.set_index("model")["ratio"]
        far.append((r["kr"] - 1) < 0.5 * (r["fmr"] - 1))
        more.append(r["fmr"] > 1)
        ev.append(
            f"{NETWORK_LABELS.get(net, net)} on {dev}: KR {100 * (r['kr'] - 1):+.0f} %, "
            f"FMR {100 * (r['fmr'] - 1):+.0f} %"
        )
    return {
        "kr_far_less": (
            "KR costs far less latency than FMR (KR's overhead < half of FMR's)",
            all(far),
            "; ".join(ev),
        ),
        "fmr_slower": ("FMR is slower than the original network", all(more), "; ".join(ev)),
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


def memory_claims(
    ours: pd.DataFrame, comparison: pd.DataFrame, tolerance: float = 0.05
) -> dict[str, tuple[str, bool, str]]:
    """Claims of FTD §4.3 / Table 2: KR's overhead is the duplicated kernels only (measured =
    analytic, no extra feature maps), FMR needs more memory than KR, and the paper's MB follow
    from its §4.3 estimate at full size (within ``tolerance``), per network."""
    kr = ours[ours["method"] == "kr"].set_index(["network", "quantity"])
    kr_ok, ev_kr = [], []
    for net in dict.fromkeys(ours["network"]):
        k = kr.loc[(net, "kernels")]
        a = kr.loc[(net, "activations")]
        kr_ok.append(
            k["measured_overhead_bytes"] == k["analytic_overhead_bytes"] and a["measured_overhead_bytes"] == 0
        )
        ev_kr.append(
            f"{NETWORK_LABELS.get(net, net)}: {k['measured_overhead_bytes']:,} B measured, "
            f"{k['analytic_overhead_bytes']:,} B estimated, activations "
            f"{a['measured_overhead_bytes']:+,} B"
        )
    c = comparison.set_index(["network", "method"])
    nets = list(dict.fromkeys(comparison["network"]))
    kr_label, fmr_label = DUPLICATION_LABELS["kr"], DUPLICATION_LABELS["fmr"]
    mb = c["ours_measured_mb"]
    more = [mb[(n, fmr_label)] > mb[(n, kr_label)] for n in nets]
    ev_more = "; ".join(
        f"{n}: {fmr_label} {mb[(n, fmr_label)]:.3f} MB vs {kr_label} {mb[(n, kr_label)]:.3f} MB" for n in nets
    )
    claims = {
        "kr_kernels_only": (
            "KR's memory overhead is the duplicated kernels only (§4.3)",
            all(kr_ok),
            "; ".join(ev_kr),
        ),
        "fmr_more": ("FMR needs more memory than KR (Table 2)", all(more), ev_more),
    }
    for n in nets:
        key = [k for k, v in NETWORK_LABELS.items() if v == n][0]
        rel = [(m, c.loc[(n, m), "paper_scale_mb"], c.loc[(n, m), "paper_mb"]) for m in (kr_label, fmr_label)]
        ok = all(abs(s - p) <= tolerance * p for _, s, p in rel)
        claims[f"paper_scale_{key}"] = (
            f"{PAPER_NETWORKS[key]}: the paper's MB follow from the §4.3 estimate at full size "
            f"(within {100 * tolerance:g} %)",
            ok,
            "; ".join(f"{m} {s:.1f} MB computed vs {p:.1f} MB printed" for m, s, p in rel),
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
    mAP) and ``overall`` accuracy. Columns in the order of :data:`TABLE3_COLUMNS`."""
    x, y = eval_data
    first = next(iter(models.values()))
    clean = predict_under_errors(first, x, batch_size=batch_size)
    cols: dict[str, pd.Series] = {"no_error": per_class_accuracy(clean, y, classes)}
    overall = {"no_error": 100.0 * float((clean == y.cpu()).double().mean())}
    for name, model in models.items():
        per_seed, accs = [], []
        for s in seeds:
            pred = predict_under_errors(model, x, weight_rate, fmap_rate, int(s), batch_size=batch_size)
            per_seed.append(per_class_accuracy(pred, y, classes))
            accs.append(100.0 * float((pred == y.cpu()).double().mean()))
        cols[name] = pd.concat(per_seed, axis=1).mean(axis=1)
        overall[name] = float(np.mean(accs))
    table = pd.DataFrame(cols)
    table.loc["mean per-class"] = table.mean(axis=0)
    table.loc["overall"] = pd.Series(overall)
    order = [c for c in TABLE3_COLUMNS if c in table.columns] + [
        c for c in table.columns if c not in TABLE3_COLUMNS
    ]
    table.index.name = "class"
    return table[order]


def fps_row(
    models: Mapping[str, nn.Module],
    input_shape: tuple[int, ...] = (1, 3, 32, 32),
    min_run_time: float = 0.5,
    rounds: int = 3,
) -> pd.Series:
    """Images per second of each network (FTD Table 3's FPS row), from
    :func:`fatlib.ftd.overhead.measure_latency` at ``input_shape`` (batch 1 = frames). ``no_error``
    is the original network, timed as ``no_duplication``."""
    raw = overhead.measure_latency(dict(models), input_shape, min_run_time=min_run_time, rounds=rounds)
    summ = overhead.latency_summary(raw, baseline=next(iter(models))).set_index("model")
    fps = input_shape[0] * 1000.0 / summ["median_ms"]
    out = {"no_error": float(fps.iloc[0]), **{k: float(v) for k, v in fps.items()}}
    return pd.Series(out, name="images/s")


def order_agreement(ours: pd.Series, paper: pd.Series) -> float:
    """Spearman rank correlation of two rows over their common columns (how alike the orderings
    of the duplication types of FTD Table 3 are; 1 = same order)."""
    common = [c for c in ours.index if c in paper.index and pd.notna(ours[c]) and pd.notna(paper[c])]
    a = ours[common].astype(float).rank()
    b = paper[common].astype(float).rank()
    return float(a.corr(b))


def table3_claims(
    table: pd.DataFrame, fps: pd.Series, ratios: Sequence[int] = (50, 20)
) -> dict[str, tuple[str, bool, str]]:
    """Claims of FTD §4.4 (Observations 1–2) on :func:`per_class_table` (mean per-class accuracy)
    and :func:`fps_row`: KR and FMR beat D2NN at the same ratio, every duplication beats none,
    50 % recovers more than 20 %, and KR is faster than FMR."""
    m = table.loc["mean per-class"]
    beat = all(m[f"kr_{r}"] > m[f"d2nn_{r}"] and m[f"fmr_{r}"] > m[f"d2nn_{r}"] for r in ratios)
    ev = "; ".join(
        f"{r} %: FMR {m[f'fmr_{r}']:.1f}, KR {m[f'kr_{r}']:.1f}, D2NN {m[f'd2nn_{r}']:.1f}" for r in ratios
    )
    dups = [c for c in table.columns if c not in ("no_error", "no_duplication")]
    more = all(m[f"{k}_{max(ratios)}"] >= m[f"{k}_{min(ratios)}"] for k in ("fmr", "kr", "d2nn"))
    faster = all(fps[f"kr_{r}"] > fps[f"fmr_{r}"] for r in ratios)
    return {
        "beat_d2nn": ("KR and FMR beat D2NN at the same duplication ratio (Observation 2)", beat, ev),
        "dup_recovers": (
            "Every duplication recovers accuracy lost to errors (beats no duplication)",
            all(m[c] > m["no_duplication"] for c in dups),
            f"no duplication {m['no_duplication']:.1f}; " + ", ".join(f"{c} {m[c]:.1f}" for c in dups),
        ),
        "more_dup_better": (
            f"{max(ratios)} % duplication recovers more than {min(ratios)} %",
            more,
            ", ".join(f"{c} {m[c]:.1f}" for c in dups),
        ),
        "kr_faster": (
            "KR runs faster than FMR (Observation 1, FPS)",
            faster,
            ", ".join(f"{c} {fps[c]:.0f}/s" for c in fps.index),
        ),
    }


def __getattr__(name: str) -> object:
    """The ``plot_*`` functions of fatlib 0.1's ``ftd_experiments`` live in :mod:`fatlib.ftd.plots`
    now (imported on use: the plots import this module's labels)."""
    if name.startswith("plot_"):
        from fatlib.ftd import plots

        if name in plots.__all__:
            return getattr(plots, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
