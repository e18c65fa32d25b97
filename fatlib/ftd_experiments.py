"""The experiments of the FT-DeepNets chapter (Baek et al., WACV 2022), one helper per figure or
table, built on :mod:`fatlib.faults`, :mod:`fatlib.ranking`, :mod:`fatlib.duplication` and
:mod:`fatlib.overhead`. The chapter's notebooks only call these functions and narrate.

Stand-ins (``../shared/papers/README.md``): the paper's SSD-VGG / SSD-MobileNet detectors become
the VGG-16 / MobileNetV1 classifiers of :mod:`fatlib.models` on CIFAR-10, so *accuracy* replaces
mAP and *per-class accuracy* replaces per-class AP.

Error model (§2.2, §4, §4.1): zero errors, drawn afresh at every forward call (one draw per
batch of ``batch_size`` images), in the kernels and output feature maps of the feature-extraction
layers only — every ``Conv2d`` (and duplicated convolution), not the classifier.

Sizes
-----
:func:`sweep_sizes` derives every size of the chapter's sweeps from the scale profile (test images
per evaluation, error rates on the x axes, number of error seeds = ``profile.seeds``, latency
timing budget), so the code path is the same at every scale.
"""
from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from torch import nn

from . import duplication, faults, overhead, ranking
from .data import ArrayDataset
from .paper import paper_table
from .profiles import Profile, get_profile

__all__ = [
    "SweepSizes", "sweep_sizes", "setup_line", "as_tensors", "feature_layers",
    "predict_under_errors", "accuracy_under_errors", "per_class_accuracy",
    "error_sweep", "summarize", "error_location_sweep", "error_location_claims",
    "error_location_comparison", "ranking_methods_comparison", "PAPER_ERROR_FREE",
    "rank_all", "score_table", "overlap_matrix", "layer_overlaps", "ranking_claims",
    "layer_input", "kr_weight_error_demo", "fmr_fmap_error_demo", "no_error_agreement",
    "zero_error_moments", "layer_error_statistics",
    "Panel", "PAPER_FIG06_PANELS", "fig06_panels", "ranking_methods_sweep", "ranking_methods_claims",
    "kr_vs_fmr_sweep", "weight_only_identity", "kr_vs_fmr_claims",
    "latency_table", "paper_latency", "latency_comparison", "latency_claims",
    "memory_table", "paper_scale_memory", "memory_comparison", "memory_claims",
    "TABLE3_COLUMNS", "table3_models", "per_class_table", "fps_row", "order_agreement",
    "table3_claims",
    "plot_error_location", "plot_ranking_scores", "plot_duplication_demo",
    "plot_duplication_summary", "plot_ranking_methods", "plot_kr_vs_fmr", "plot_latency",
    "plot_per_class",
    "NETWORK_LABELS", "PAPER_NETWORKS",
]

#: fatlib architecture → label on the pages, and → the paper's network it stands in for
NETWORK_LABELS: dict[str, str] = {"vgg16": "VGG-16", "mobilenet_v1": "MobileNetV1"}
PAPER_NETWORKS: dict[str, str] = {"vgg16": "SSD-VGG", "mobilenet_v1": "SSD-MobileNet"}
_DUP_LABELS = {"kr": "KR", "fmr": "FMR", "none": "no duplication"}
_NET_COLOURS = {"vgg16": "C0", "mobilenet_v1": "C1"}
_RANK_STYLE = {"weight_sum": ("C0", "-"), "second_order": ("C1", "-"), "entropy": ("C2", "-"),
               "random": ("C7", "--"), "none": ("black", ":")}

Data = tuple[torch.Tensor, torch.Tensor]


# ------------------------------------------------------------------------------------------
# sizes
# ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SweepSizes:
    """Sizes of the FT-DeepNets sweeps at one scale profile (see :func:`sweep_sizes`)."""

    #: test images per evaluation (None: the profile's whole test split)
    eval_images: int | None
    #: training images read by the data-driven rankings (second-order, entropy; §3.1)
    rank_images: int
    #: error seeds (FTD §4: three seeds of the error draws)
    seeds: int
    #: error rates of Fig. 2 (kernel errors, feature-map errors), 0 included
    location_rates: tuple[float, ...]
    #: feature-map error rates of Fig. 6 and Fig. 7(a) (paper: 1 % to 10 %)
    fmap_rates: tuple[float, ...]
    #: weight error rates of Fig. 7(b)
    weight_rates: tuple[float, ...]
    #: images per forward call (each call draws fresh transient errors)
    batch_size: int
    #: :func:`fatlib.overhead.measure_latency` budget per model and round, and rounds
    latency_min_run_time: float
    latency_rounds: int

    def seed_list(self, seed: int = 0) -> list[int]:
        """The error seeds ``seed, seed + 1, ...`` (``seeds`` of them)."""
        return [int(seed) + i for i in range(self.seeds)]

    def describe(self) -> str:
        """One line for the pages."""
        ev = "all" if self.eval_images is None else f"{self.eval_images:,}"
        pct = lambda rates: ", ".join(f"{100 * r:g}" for r in rates)  # noqa: E731
        return (f"sweeps on {ev} test images in batches of {self.batch_size} (fresh errors per "
                f"batch), {self.seeds} error seed(s); rankings read {self.rank_images:,} training "
                f"images; Fig. 2 rates {pct(self.location_rates)} %, feature-map rates "
                f"{pct(self.fmap_rates)} %, weight rates {pct(self.weight_rates)} %")


_SIZES: dict[str, SweepSizes] = {
    "smoke": SweepSizes(eval_images=None, rank_images=64, seeds=1, location_rates=(0.0, 0.01, 0.1),
                        fmap_rates=(0.01, 0.1), weight_rates=(0.01, 0.1), batch_size=64,
                        latency_min_run_time=0.02, latency_rounds=1),
    "cpu": SweepSizes(eval_images=1000, rank_images=500, seeds=3,
                      location_rates=(0.0, 0.01, 0.02, 0.05, 0.1), fmap_rates=(0.01, 0.05, 0.1),
                      weight_rates=(0.01, 0.05, 0.1), batch_size=100, latency_min_run_time=0.5,
                      latency_rounds=3),
    "paper": SweepSizes(eval_images=None, rank_images=1000, seeds=3,
                        location_rates=(0.0, 0.01, 0.02, 0.03, 0.05, 0.07, 0.1),
                        fmap_rates=tuple(i / 100 for i in range(1, 11)),
                        weight_rates=(0.01, 0.02, 0.05, 0.1), batch_size=100,
                        latency_min_run_time=1.0, latency_rounds=5),
}


def sweep_sizes(profile: str | Profile) -> SweepSizes:
    """The sweep sizes of a scale profile (FTD §4: rates and seeds of Fig. 2, 6, 7). Known
    profiles have their own; another profile gets the smoke sizes when its test split is at most
    256 images, else the cpu sizes. ``seeds`` is always ``profile.seeds``."""
    prof = get_profile(profile)
    base = _SIZES.get(prof.name)
    if base is None:
        small = prof.test_size is not None and prof.test_size <= 256
        base = _SIZES["smoke" if small else "cpu"]
    return replace(base, seeds=int(prof.seeds))


def setup_line(profile: str | Profile) -> str:
    """What the profile means for this chapter: the stand-ins' width, epochs and data, plus the
    sweep sizes (for the pages; :meth:`Profile.describe` is about CNV)."""
    prof = get_profile(profile)
    tr = "all" if prof.train_size is None else f"{prof.train_size:,}"
    return (f"profile `{prof.name}`: VGG-16 and MobileNetV1 at width {prof.ftd_width:g}, "
            f"{prof.ftd_epochs} epoch(s) on {tr} CIFAR-10 training images; "
            f"{sweep_sizes(prof).describe()}")


def as_tensors(dataset: ArrayDataset, n: int | None = None) -> Data:
    """The first ``n`` images (all when None) of a dataset as float images in [0, 1] and labels,
    exactly as the trainer feeds them (no augmentation)."""
    count = len(dataset) if n is None else min(int(n), len(dataset))
    if count < 1:
        raise ValueError("the dataset is empty")
    if isinstance(dataset, ArrayDataset):
        plain = replace(dataset, augment=False)
        return plain.batch(torch.arange(count))
    xs, ys = zip(*(dataset[i] for i in range(count)))
    return torch.stack([torch.as_tensor(x) for x in xs]), torch.as_tensor(ys, dtype=torch.long)


# ------------------------------------------------------------------------------------------
# evaluation under errors (§2.2–2.3, §4)
# ------------------------------------------------------------------------------------------
def feature_layers(model: nn.Module) -> list[str]:
    """The error sites of FTD §4.1: every convolution (duplicated or not) of the feature
    extractor, not the classifier."""
    return faults.error_sites(model, include_linear=False)


def _device(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    modes = {m: m.training for m in model.modules()}
    model.eval()
    try:
        yield model
    finally:
        for m, t in modes.items():
            m.training = t


@torch.no_grad()
def predict_under_errors(model: nn.Module, images: torch.Tensor, weight_rate: float = 0.0,
                         fmap_rate: float = 0.0, seed: int = 0, layers: list[str] | None = None,
                         batch_size: int = 100, kind: str = "zero") -> torch.Tensor:
    """Predicted classes of ``images`` with transient ``kind`` errors (FTD §2.2: zero) in the
    kernels (``weight_rate``) and feature maps (``fmap_rate``) of ``layers`` (default: the
    feature-extraction convolutions, §4.1), fresh errors at every batch of ``batch_size``, draws
    seeded with ``seed``. Eval mode; the model is unchanged afterwards. CPU tensor of labels."""
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    dev = _device(model)
    layers = feature_layers(model) if layers is None else layers
    clean = weight_rate == 0 and fmap_rate == 0
    ctx = contextlib.nullcontext() if clean else faults.transient_errors(
        model, weight_rate, fmap_rate, kind=kind, layers=layers, seed=seed)
    preds = []
    with _eval_mode(model), ctx:
        for xb in images.split(batch_size):
            preds.append(model(xb.to(dev)).argmax(1).cpu())
    return torch.cat(preds)


def accuracy_under_errors(model: nn.Module, data: Data, weight_rate: float = 0.0,
                          fmap_rate: float = 0.0, seed: int = 0, layers: list[str] | None = None,
                          batch_size: int = 100) -> float:
    """Top-1 accuracy in percent under transient zero errors (:func:`predict_under_errors`)."""
    x, y = data
    pred = predict_under_errors(model, x, weight_rate, fmap_rate, seed, layers, batch_size)
    return 100.0 * float((pred == y.cpu()).double().mean())


def per_class_accuracy(pred: torch.Tensor, true: torch.Tensor,
                       classes: Sequence[str]) -> pd.Series:
    """Accuracy in percent of each class (FTD Table 3's per-class AP, for classification)."""
    pred, true = pred.cpu(), true.cpu()
    out = {}
    for i, name in enumerate(classes):
        hit = true == i
        out[name] = 100.0 * float((pred[hit] == i).double().mean()) if hit.any() else float("nan")
    return pd.Series(out, name="accuracy")


def error_sweep(models: Mapping[str, nn.Module], data: Data, weight_rates: Sequence[float],
                fmap_rates: Sequence[float], seeds: Sequence[int], batch_size: int = 100) -> pd.DataFrame:
    """Accuracy of every model at every (weight rate, feature-map rate, seed) of the grid (FTD §4).
    The error-free point (both rates 0) is evaluated once per model and repeated for each seed.
    Columns: ``model, weight_rate, fmap_rate, seed, accuracy``."""
    if not models:
        raise ValueError("models is empty")
    rows = []
    for name, model in models.items():
        clean: float | None = None
        for w in weight_rates:
            for f in fmap_rates:
                for s in seeds:
                    if w == 0 and f == 0:
                        if clean is None:
                            clean = accuracy_under_errors(model, data, batch_size=batch_size)
                        acc = clean
                    else:
                        acc = accuracy_under_errors(model, data, float(w), float(f), int(s),
                                                    batch_size=batch_size)
                    rows.append({"model": name, "weight_rate": float(w), "fmap_rate": float(f),
                                 "seed": int(s), "accuracy": acc})
    return pd.DataFrame(rows)


def summarize(results: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    """Mean and standard deviation of ``accuracy`` over seeds (FTD Fig. 6: line and shade);
    ``std`` is 0 for a single seed. Columns: ``*by, mean, std, n``."""
    g = results.groupby(list(by), sort=False)["accuracy"]
    out = g.agg(mean="mean", std="std", n="count").reset_index()
    out["std"] = out["std"].fillna(0.0)
    return out


# ------------------------------------------------------------------------------------------
# Fig. 2 — error location (§2.3)
# ------------------------------------------------------------------------------------------
def error_location_sweep(networks: Mapping[str, nn.Module], data: Data, rates: Sequence[float],
                         seeds: Sequence[int], batch_size: int = 100) -> pd.DataFrame:
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
    ("vgg16", "kernel"): 77.0, ("vgg16", "feature map"): 77.0,
    ("mobilenet_v1", "kernel"): 0.0, ("mobilenet_v1", "feature map"): 62.0}


def error_location_comparison(results: pd.DataFrame, rate: float = 0.1) -> list[dict]:
    """Rows for :func:`fatlib.paper.side_by_side`: the share of the error-free score kept at
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
        rows.append({"quantity": f"{NETWORK_LABELS[net]}, {100 * rate:g} % {loc} errors: score kept "
                                 "[% of error-free]",
                     "paper": 100.0 * paper_map / PAPER_ERROR_FREE[net],
                     "ours": 100.0 * float(ours.iloc[0]) / float(clean[net])})
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
        per_net[net] = (k < f, f"{NETWORK_LABELS.get(net, net)}: {k:.1f} % under kernel vs "
                               f"{f:.1f} % under feature-map errors (mean over rates)")
    for net, (holds, ev) in per_net.items():
        claims[f"kernel_worse_{net}"] = (
            f"{NETWORK_LABELS.get(net, net)}: kernel errors hurt more than feature-map errors "
            "at the same rate (Fig. 2)", holds, ev)
    claims["kernel_worse"] = ("Kernel errors hurt more than feature-map errors at the same rate "
                              "(both networks)", all(h for h, _ in per_net.values()),
                              "; ".join(e for _, e in per_net.values()))
    if {"vgg16", "mobilenet_v1"} <= set(per_net):
        kept = {net: float(faulty[faulty["network"] == net]["mean"].mean() / clean[net])
                for net in ("vgg16", "mobilenet_v1")}
        claims["compact_more_sensitive"] = (
            "The compact network (MobileNet) is more sensitive to errors than the large one (VGG)",
            kept["mobilenet_v1"] < kept["vgg16"],
            f"share of error-free accuracy kept under errors (mean over locations and rates): "
            f"MobileNetV1 {100 * kept['mobilenet_v1']:.0f} %, VGG-16 {100 * kept['vgg16']:.0f} %")
    return claims


# ------------------------------------------------------------------------------------------
# Fig. 3 — ranking scores (§3.1)
# ------------------------------------------------------------------------------------------
def rank_all(model: nn.Module, methods: Sequence[str] = ranking.RANKING_METHODS,
             data: Data | None = None, seed: int = 0,
             batch_size: int = 100) -> dict[str, dict[str, torch.Tensor]]:
    """Scores of every ranking method of FTD §3.1 (and the random baseline of §4.1) for every
    convolution of ``model``: ``{method: {conv name: scores}}``."""
    return {m: ranking.rank_channels(model, m, data=data, seed=seed, batch_size=batch_size)
            for m in methods}


def score_table(scores: Mapping[str, Mapping[str, torch.Tensor]], layer: str,
                ratio: float = 0.5) -> pd.DataFrame:
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
    """For every pair of methods, :func:`fatlib.ranking.overlap` per layer (top-``ratio`` sets),
    stacked: columns ``a, b, layer, k, common, fraction, jaccard``."""
    names = list(scores)
    parts = []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            parts.append(ranking.overlap(scores[a], scores[b], ratio).assign(a=a, b=b))
    df = pd.concat(parts, ignore_index=True)
    return df[["a", "b", "layer", "k", "common", "fraction", "jaccard"]]


def overlap_matrix(overlaps: pd.DataFrame) -> pd.DataFrame:
    """Method × method matrix of the mean top-k overlap fraction over layers (1 on the diagonal)."""
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
        "differ": ("The three ranking methods select different channels (mean top-k overlap "
                   "below 90 %)", bool((pair < 0.9).all()), ev),
        "not_random": (f"The rankings agree more than chance (overlap above {100 * ratio:.0f} %, "
                       "the expectation for random selections)", bool((pair > ratio).all()), ev),
    }


# ------------------------------------------------------------------------------------------
# Fig. 4 / Fig. 5 — what KR and FMR compute (§3.2–3.3)
# ------------------------------------------------------------------------------------------
@torch.no_grad()
def layer_input(model: nn.Module, layer: str, images: torch.Tensor) -> torch.Tensor:
    """The input that module ``layer`` of ``model`` receives for ``images`` (eval mode)."""
    module = model.get_submodule(layer)
    seen: list[torch.Tensor] = []
    handle = module.register_forward_pre_hook(lambda m, args: seen.append(args[0].detach().clone()))
    try:
        with _eval_mode(model):
            model(images.to(_device(model)))
    finally:
        handle.remove()
    return seen[0]


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
def kr_weight_error_demo(layer: duplication.KRConv2d, x: torch.Tensor, channel: int | None = None,
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
        pos_o = (o, *(int(i) for i in np.unravel_index(int(w[o].abs().argmax()),
                                                       tuple(w.shape[1:]))))
        plain.weight[pos_o] = 0.0
        w[pos_o] = 0.0
    unprotected = plain(x)
    out = kr(x)
    halfway = torch.allclose(out[:, c], (clean[:, c] + unprotected[:, c]) / 2, rtol=1e-4, atol=1e-5)
    same = bool(torch.allclose(out[:, others[0]], unprotected[:, others[0]], rtol=1e-5, atol=1e-6)) \
        if others else True
    return {"channel": c, "weight": pos,
            "clean": clean[0, c].cpu(), "no_duplication": unprotected[0, c].cpu(), "kr": out[0, c].cpu(),
            "halfway": bool(halfway), "unprotected_channel_equal": same,
            "max_error_no_duplication": float((unprotected[:, c] - clean[:, c]).abs().max()),
            "max_error_kr": float((out[:, c] - clean[:, c]).abs().max())}


@torch.no_grad()
def fmr_fmap_error_demo(layer: duplication.FMRConv2d, x: torch.Tensor, channel: int | None = None,
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
    return {"channel": c, "position": (int(h), int(w)),
            "clean": clean[0, c].cpu(), "no_duplication": unprotected[0, c].cpu(), "fmr": out[0, c].cpu(),
            "halfway": bool(halfway),
            "clean_value": float(clean[0, c, h, w]), "fmr_value": float(out[0, c, h, w])}


@torch.no_grad()
def no_error_agreement(original: nn.Module, duplicated: nn.Module, images: torch.Tensor,
                       batch_size: int = 100) -> dict[str, float | bool]:
    """Without errors a duplicated network computes the original (FTD §3.2): ``equal`` (bit for
    bit), ``max_abs_diff`` of the logits and ``same_predictions`` (fraction)."""
    dev = _device(original)
    diffs, equal, same, n = [], True, 0, 0
    with _eval_mode(original), _eval_mode(duplicated):
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
    return pd.DataFrame([
        {"copies": "one (no duplication)", "mean_error": -p, "mean_abs_error": p,
         "mean_squared_error": p, "rms_error": p ** 0.5},
        {"copies": "two, averaged (KR / FMR)", "mean_error": -p, "mean_abs_error": p,
         "mean_squared_error": p * (1 + p) / 2, "rms_error": (p * (1 + p) / 2) ** 0.5},
    ])


@torch.no_grad()
def layer_error_statistics(original: nn.Conv2d, duplicated: duplication.DuplicatedConv2d,
                           x: torch.Tensor, weight_rate: float, fmap_rate: float,
                           seeds: Sequence[int]) -> pd.DataFrame:
    """Error of one layer's output under transient zero errors, without and with duplication
    (FTD §3.2), measured on the real modules with :func:`fatlib.faults.transient_errors`: the
    mean error (bias), mean absolute error and RMS error against the error-free output, over
    ``seeds`` draws, separately for the duplicated channels and the others. Columns: ``layer,
    channels, mean_error, mean_abs_error, rms_error``."""
    clean = original(x)
    dup_mask = torch.zeros(clean.shape[1], dtype=torch.bool, device=clean.device)
    dup_mask[duplicated.index] = True
    rows = []
    for name, layer in (("no duplication", original), (duplicated.method.upper(), duplicated)):
        errs = []
        for s in seeds:
            with faults.transient_errors(layer, weight_rate, fmap_rate, seed=int(s)):
                errs.append(layer(x) - clean)
        e = torch.stack(errs)
        for part, sel in (("duplicated", dup_mask), ("not duplicated", ~dup_mask)):
            d = e[:, :, sel].double()
            if d.numel() == 0:
                continue
            rows.append({"layer": name, "channels": part, "mean_error": float(d.mean()),
                         "mean_abs_error": float(d.abs().mean()),
                         "rms_error": float(d.pow(2).mean().sqrt())})
    return pd.DataFrame(rows)


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
        return (f"{NETWORK_LABELS.get(self.network, self.network)} + "
                f"{_DUP_LABELS[self.duplication]}, {100 * self.weight_rate:g} % weight error")


#: the four panels of FTD Fig. 6 (a)–(d)
PAPER_FIG06_PANELS: tuple[Panel, ...] = (
    Panel("mobilenet_v1", "kr", 0.01), Panel("mobilenet_v1", "fmr", 0.01),
    Panel("vgg16", "kr", 0.01), Panel("vgg16", "fmr", 0.10))


def fig06_panels(all_panels: bool = False) -> tuple[Panel, ...]:
    """The paper's four panels, or (``all_panels``) every combination of network, KR / FMR and
    weight error 1 % / 10 % (eight panels, twice the evaluations)."""
    if not all_panels:
        return PAPER_FIG06_PANELS
    return tuple(Panel(n, d, w) for n in ("mobilenet_v1", "vgg16") for d in ("kr", "fmr")
                 for w in (0.01, 0.10))


def ranking_methods_sweep(networks: Mapping[str, nn.Module], panels: Sequence[Panel],
                          rank_data: Data, eval_data: Data, fmap_rates: Sequence[float],
                          seeds: Sequence[int], ratio: float = 0.5, ranking_seed: int = 0,
                          batch_size: int = 100,
                          methods: Sequence[str] = ranking.RANKING_METHODS) -> pd.DataFrame:
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
            dups = {m: duplication.duplicate(model, ratio, scores[m], panel.duplication)
                    for m in methods}
            res = error_sweep(dups, eval_data, [panel.weight_rate], fmap_rates, seeds, batch_size)
            if panel.weight_rate not in none:
                none[panel.weight_rate] = error_sweep({"none": model}, eval_data,
                                                      [panel.weight_rate], fmap_rates, seeds, batch_size)
            res = pd.concat([res, none[panel.weight_rate]], ignore_index=True)
            parts.append(res.rename(columns={"model": "ranking"})
                         .assign(network=net, duplication=panel.duplication))
    df = pd.concat(parts, ignore_index=True)
    return df[["network", "duplication", "weight_rate", "ranking", "fmap_rate", "seed", "accuracy"]]


def ranking_methods_claims(results: pd.DataFrame) -> dict[str, tuple[str, bool, str]]:
    """Claims of FTD §4.1 on :func:`ranking_methods_sweep` results, each ranking's accuracy
    averaged over feature-map rates and seeds, per panel: every ranking beats random selection,
    random selection beats no duplication, and every duplication beats no duplication."""
    mean = results.groupby(["network", "duplication", "weight_rate", "ranking"], sort=False)[
        "accuracy"].mean()
    rankers = [m for m in dict.fromkeys(results["ranking"]) if m not in ("random", "none")]
    beats_random, random_beats_none, dup_beats_none = [], [], []
    ev_rand, ev_none = [], []
    for (net, dup, w), part in mean.groupby(level=[0, 1, 2], sort=False):
        p = part.droplevel([0, 1, 2])
        tag = f"{NETWORK_LABELS.get(net, net)}+{_DUP_LABELS[dup]} w{100 * w:g}%"
        beats_random.append(all(p[m] > p["random"] for m in rankers))
        random_beats_none.append(p["random"] > p["none"])
        dup_beats_none.append(all(p[m] > p["none"] for m in [*rankers, "random"]))
        ev_rand.append(f"{tag}: " + ", ".join(f"{m} {p[m]:.1f}" for m in rankers)
                       + f" vs random {p['random']:.1f}")
        ev_none.append(f"{tag}: random {p['random']:.1f}, best {max(p[m] for m in rankers):.1f} "
                       f"vs none {p['none']:.1f}")
    return {
        "beats_random": ("Every ranking method beats random selection (§4.1, Fig. 6)",
                         all(beats_random), "; ".join(ev_rand)),
        "random_beats_none": ("Random selection beats no duplication (§4.1)",
                              all(random_beats_none), "; ".join(ev_none)),
        "dup_beats_none": ("Every duplication beats no duplication (§4.1)",
                           all(dup_beats_none), "; ".join(ev_none)),
    }


#: FTD §4.1's sentences on Fig. 6: mAP (%) at 10 % feature-map errors, per panel ("nearly 10 %",
#: "over 74 %", "over 69 %"), and the gain of duplication over none ("10 % better")
_PAPER_FIG06: dict[Panel, float] = {Panel("mobilenet_v1", "kr", 0.01): 10.0,
                                    Panel("vgg16", "kr", 0.01): 74.0,
                                    Panel("vgg16", "fmr", 0.10): 69.0}
_PAPER_FIG06_GAIN = 10.0


def ranking_methods_comparison(results: pd.DataFrame, error_free: Mapping[str, float]) -> list[dict]:
    """Rows for :func:`fatlib.paper.side_by_side` from FTD §4.1's numbers on Fig. 6: the share of
    the error-free score kept at the largest feature-map rate (mean of the three rankings) in the
    panels the text quantifies, and the gain of duplication over none in points (mean over
    panels, rates and the three rankings). ``error_free``: our error-free accuracy per network."""
    rankers = [m for m in dict.fromkeys(results["ranking"]) if m not in ("random", "none")]
    top = float(results["fmap_rate"].max())
    rows = []
    for panel, paper_map in _PAPER_FIG06.items():
        sel = results[(results["network"] == panel.network) & (results["duplication"] == panel.duplication)
                      & (results["weight_rate"] == panel.weight_rate)]
        if sel.empty:
            continue
        ours = sel[(sel["fmap_rate"] == top) & sel["ranking"].isin(rankers)]["accuracy"].mean()
        rows.append({"quantity": f"{panel.label}: score kept at {100 * top:g} % feature-map errors "
                                 "[% of error-free]",
                     "paper": 100.0 * paper_map / PAPER_ERROR_FREE[panel.network],
                     "ours": 100.0 * float(ours) / float(error_free[panel.network])})
    mean = results.groupby(["network", "duplication", "weight_rate", "fmap_rate", "ranking"])[
        "accuracy"].mean().unstack()
    gain = (mean[rankers].mean(axis=1) - mean["none"]).mean()
    rows.append({"quantity": "gain of duplication over none [points, mean over panels]",
                 "paper": _PAPER_FIG06_GAIN, "ours": float(gain)})
    return rows


# ------------------------------------------------------------------------------------------
# Fig. 7 — KR vs FMR (§4.2)
# ------------------------------------------------------------------------------------------
def kr_vs_fmr_sweep(networks: Mapping[str, nn.Module], eval_data: Data, varied: str,
                    rates: Sequence[float], fixed_rate: float, seeds: Sequence[int],
                    ratio: float = 0.5, ranking_method: str = "weight_sum",
                    batch_size: int = 100) -> pd.DataFrame:
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
        w, f = (([fixed_rate], rates) if varied == "fmap" else (rates, [fixed_rate]))
        res = error_sweep(dups, eval_data, w, f, seeds, batch_size)
        res = res.rename(columns={"model": "duplication"}).assign(
            network=net, varied=varied,
            rate=lambda d: d["fmap_rate"] if varied == "fmap" else d["weight_rate"])
        parts.append(res)
    df = pd.concat(parts, ignore_index=True)
    return df[["network", "duplication", "varied", "rate", "weight_rate", "fmap_rate", "seed",
               "accuracy"]]


@torch.no_grad()
def weight_only_identity(model: nn.Module, images: torch.Tensor, weight_rate: float, seed: int = 0,
                         ratio: float = 0.5, batch_size: int = 100) -> dict[str, float]:
    """Under weight errors alone KR and FMR compute the same thing: a convolution is linear, so
    averaging the maps of two kernels (FMR) equals convolving with their average (KR). Both see
    the same error draws (same seed, same draw order when ``fmap_rate`` is 0); returns the
    largest logit difference (absolute, and relative to the largest logit: float rounding) and
    the fraction of equal predictions."""
    scores = ranking.rank_channels(model, "weight_sum")
    kr = duplication.duplicate(model, ratio, scores, "kr").eval()
    fmr = duplication.duplicate(model, ratio, scores, "fmr").eval()
    dev = _device(model)
    diffs, scale, same, n = [], 0.0, 0, 0
    with faults.transient_errors(kr, weight_rate, 0.0, layers=feature_layers(kr), seed=seed), \
            faults.transient_errors(fmr, weight_rate, 0.0, layers=feature_layers(fmr), seed=seed):
        for xb in images.split(batch_size):
            a, b = kr(xb.to(dev)), fmr(xb.to(dev))
            diffs.append(float((a - b).abs().max()))
            scale = max(scale, float(a.abs().max()))
            same += int((a.argmax(1) == b.argmax(1)).sum())
            n += len(xb)
    return {"max_logit_diff": max(diffs), "relative_diff": max(diffs) / scale if scale else 0.0,
            "same_predictions": same / n}


def kr_vs_fmr_claims(fmap_results: pd.DataFrame,
                     weight_results: pd.DataFrame) -> dict[str, tuple[str, bool, str]]:
    """Claims of FTD §4.2 / Fig. 7, means over rates and seeds: FMR ≥ KR under feature-map errors
    (every network of ``fmap_results``), FMR's lead grows with the feature-map rate, and KR ≥ FMR
    under weight errors (``weight_results``)."""
    def means(df: pd.DataFrame) -> pd.Series:
        return df.groupby(["network", "duplication"], sort=False)["accuracy"].mean()

    mf = means(fmap_results)
    nets = list(dict.fromkeys(fmap_results["network"]))
    fmr_wins = [mf[(n, "fmr")] >= mf[(n, "kr")] for n in nets]
    ev_f = "; ".join(f"{NETWORK_LABELS.get(n, n)}: FMR {mf[(n, 'fmr')]:.1f} % vs KR "
                     f"{mf[(n, 'kr')]:.1f} %" for n in nets)
    by_rate = fmap_results.groupby(["network", "rate", "duplication"])["accuracy"].mean().unstack()
    grows, ev_g = [], []
    for n in nets:
        gap = (by_rate.loc[n, "fmr"] - by_rate.loc[n, "kr"]).sort_index()
        grows.append(gap.iloc[-1] > gap.iloc[0])
        ev_g.append(f"{NETWORK_LABELS.get(n, n)}: FMR − KR {gap.iloc[0]:+.1f} at "
                    f"{100 * gap.index[0]:g} %, {gap.iloc[-1]:+.1f} at {100 * gap.index[-1]:g} %")
    mw = means(weight_results)
    wnets = list(dict.fromkeys(weight_results["network"]))
    kr_wins = [mw[(n, "kr")] >= mw[(n, "fmr")] for n in wnets]
    ev_w = "; ".join(f"{NETWORK_LABELS.get(n, n)}: KR {mw[(n, 'kr')]:.1f} % vs FMR "
                     f"{mw[(n, 'fmr')]:.1f} %" for n in wnets)
    return {
        "fmr_ge_kr_fmap": ("FMR ≥ KR under feature-map errors (Fig. 7a)", all(fmr_wins), ev_f),
        "fmr_gap_grows": ("FMR's lead over KR grows with the feature-map error rate (§4.2)",
                          all(grows), "; ".join(ev_g)),
        "kr_ge_fmr_weight": ("KR ≥ FMR under weight errors (Fig. 7b)", all(kr_wins), ev_w),
    }


# ------------------------------------------------------------------------------------------
# Table 1 — latency (§4.3)
# ------------------------------------------------------------------------------------------
def latency_table(networks: Mapping[str, nn.Module], ratio: float = 0.5,
                  input_shape: tuple[int, ...] = (1, 3, 32, 32), device: str | torch.device = "cpu",
                  min_run_time: float = 0.5, rounds: int = 3,
                  ranking_method: str = "weight_sum") -> pd.DataFrame:
    """FTD Table 1 measured here: inference latency of each network as is (``original``), with
    KR and with FMR duplication at ``ratio`` (weight-sum ranking), on ``device`` (copies of the
    networks are moved there), via :func:`fatlib.overhead.measure_latency` (interleaved rounds).
    Adds the analytic FMR bound ``(MACs + duplicated MACs) / MACs``. Columns: ``network, model,
    median_ms, min_ms, max_ms, ratio, device, macs_bound``."""
    dev = torch.device(device)
    parts = []
    for net, model in networks.items():
        base = copy.deepcopy(model).to(dev).eval()
        scores = ranking.rank_channels(base, ranking_method)
        variants = {"original": base,
                    "kr": duplication.duplicate(base, ratio, scores, "kr").eval(),
                    "fmr": duplication.duplicate(base, ratio, scores, "fmr").eval()}
        raw = overhead.measure_latency(variants, input_shape, device=dev, min_run_time=min_run_time,
                                       rounds=rounds)
        summ = overhead.latency_summary(raw)
        bound = overhead.fmr_latency_bound(base, ratio, input_shape, scores)
        summ["macs_bound"] = summ["model"].map({"original": 1.0, "kr": 1.0, "fmr": bound})
        label = (f"cpu ({int(raw['threads'].iloc[0])} threads)" if dev.type == "cpu"
                 else torch.cuda.get_device_name(dev))
        parts.append(summ.assign(network=net, device=label))
    df = pd.concat(parts, ignore_index=True)
    return df[["network", "model", "median_ms", "min_ms", "max_ms", "ratio", "device", "macs_bound"]]


def paper_latency() -> pd.DataFrame:
    """FTD Table 1 as printed, with KR / FMR latency as ratios to the original network."""
    t = paper_table("ftdeepnets_table1_latency_ms")
    return t.assign(kr_ratio=t["kernel_recovery"] / t["original"],
                    fmr_ratio=t["feature_map_recovery"] / t["original"])


def latency_comparison(ours: pd.DataFrame) -> pd.DataFrame:
    """Latency ratios to the original network, ours (one row per network and device) beside the
    paper's (x86 with its discrete GPU, and Nvidia Xavier): columns ``network, platform, source,
    kr_ratio, fmr_ratio``."""
    rows = []
    for (net, dev), part in ours.groupby(["network", "device"], sort=False):
        r = part.set_index("model")["ratio"]
        rows.append({"network": NETWORK_LABELS.get(net, net), "platform": dev, "source": "ours",
                     "kr_ratio": float(r["kr"]), "fmr_ratio": float(r["fmr"])})
    inv = {v: k for k, v in PAPER_NETWORKS.items()}
    for row in paper_latency().itertuples():
        net = inv.get(row.model, row.model)
        rows.append({"network": NETWORK_LABELS.get(net, net), "platform": row.platform,
                     "source": f"paper ({row.model})", "kr_ratio": float(row.kr_ratio),
                     "fmr_ratio": float(row.fmr_ratio)})
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
        ev.append(f"{NETWORK_LABELS.get(net, net)} on {dev}: KR {100 * (r['kr'] - 1):+.0f} %, "
                  f"FMR {100 * (r['fmr'] - 1):+.0f} %")
    return {
        "kr_far_less": ("KR costs far less latency than FMR (KR's overhead < half of FMR's)",
                        all(far), "; ".join(ev)),
        "fmr_slower": ("FMR is slower than the original network", all(more), "; ".join(ev)),
    }


# ------------------------------------------------------------------------------------------
# Table 2 — memory (§4.3)
# ------------------------------------------------------------------------------------------
def memory_table(networks: Mapping[str, nn.Module], ratio: float = 0.5,
                 input_shape: tuple[int, ...] = (1, 3, 32, 32)) -> pd.DataFrame:
    """FTD Table 2 on our networks: :func:`fatlib.overhead.memory_overhead` of KR and FMR at
    ``ratio`` (weight-sum ranking), measured and analytic, stacked with a ``network`` column."""
    parts = []
    for net, model in networks.items():
        scores = ranking.rank_channels(model, "weight_sum")
        for method in ("kr", "fmr"):
            parts.append(overhead.memory_overhead(model, ratio, method, input_shape, scores)
                         .assign(network=net))
    df = pd.concat(parts, ignore_index=True)
    return df[["network", *[c for c in df.columns if c != "network"]]]


def paper_scale_memory(ratio: float = 0.5, width: float = 1.0, vgg_input: int = 300,
                       mobilenet_input: int = 150) -> pd.DataFrame:
    """FTD Table 2 recomputed at the paper's sizes: the §4.3 estimate (duplicated kernels ×
    4 B; FMR adds duplicated feature maps × 4 B) and the measured overhead, on the
    *feature-extraction layers* of full-width VGG-16 at a 300×300 input (SSD300) and of
    MobileNetV1 at 150×150 (SSD300's input after the standard stride-2 stem, which the CIFAR
    variant lacks). The networks are untrained: the counts depend only on how many channels are
    duplicated. Columns as :func:`memory_table`, plus ``input``."""
    from .models import mobilenet_v1, vgg16

    torch.manual_seed(0)
    vgg = vgg16(width=width).eval()
    mn = mobilenet_v1(width=width).eval()
    feats = {"vgg16": (vgg.features, vgg_input),
             "mobilenet_v1": (nn.Sequential(mn.stem, mn.blocks), mobilenet_input)}
    parts = []
    for net, (module, size) in feats.items():
        t = memory_table({net: module}, ratio, (1, 3, size, size))
        parts.append(t.assign(input=f"{size}×{size}",
                              feature_params=sum(p.numel() for p in module.parameters() if p.dim() > 1)))
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
            p = paper_scale[(paper_scale["network"] == net)
                            & (paper_scale["method"] == method)].set_index("quantity")
            rows.append({
                "network": NETWORK_LABELS.get(net, net), "method": _DUP_LABELS[method],
                "paper_mb": float(paper.loc[PAPER_NETWORKS[net], col[method]]),
                "paper_scale_mb": float(p.loc["total", "analytic_overhead_mb"]) if len(p) else float("nan"),
                "ours_measured_mb": float(o.loc["total", "measured_overhead_mb"]),
                "ours_analytic_mb": float(o.loc["total", "analytic_overhead_mb"]),
                "ours_relative_to_original": float(o.loc["total", "measured_overhead_bytes"]
                                                   / o.loc["total", "original_bytes"]),
            })
    return pd.DataFrame(rows)


def memory_claims(ours: pd.DataFrame, comparison: pd.DataFrame,
                  tolerance: float = 0.05) -> dict[str, tuple[str, bool, str]]:
    """Claims of FTD §4.3 / Table 2: KR's overhead is the duplicated kernels only (measured =
    analytic, no extra feature maps), FMR needs more memory than KR, and the paper's MB follow
    from its §4.3 estimate at full size (within ``tolerance``), per network."""
    kr = ours[ours["method"] == "kr"].set_index(["network", "quantity"])
    kr_ok, ev_kr = [], []
    for net in dict.fromkeys(ours["network"]):
        k = kr.loc[(net, "kernels")]
        a = kr.loc[(net, "activations")]
        kr_ok.append(k["measured_overhead_bytes"] == k["analytic_overhead_bytes"]
                     and a["measured_overhead_bytes"] == 0)
        ev_kr.append(f"{NETWORK_LABELS.get(net, net)}: {k['measured_overhead_bytes']:,} B measured, "
                     f"{k['analytic_overhead_bytes']:,} B estimated, activations "
                     f"{a['measured_overhead_bytes']:+,} B")
    c = comparison.set_index(["network", "method"])
    nets = list(dict.fromkeys(comparison["network"]))
    more = [c.loc[(n, "FMR"), "ours_measured_mb"] > c.loc[(n, "KR"), "ours_measured_mb"] for n in nets]
    ev_more = "; ".join(f"{n}: FMR {c.loc[(n, 'FMR'), 'ours_measured_mb']:.3f} MB vs KR "
                        f"{c.loc[(n, 'KR'), 'ours_measured_mb']:.3f} MB" for n in nets)
    claims = {
        "kr_kernels_only": ("KR's memory overhead is the duplicated kernels only (§4.3)",
                            all(kr_ok), "; ".join(ev_kr)),
        "fmr_more": ("FMR needs more memory than KR (Table 2)", all(more), ev_more),
    }
    for n in nets:
        key = [k for k, v in NETWORK_LABELS.items() if v == n][0]
        rel = [(m, c.loc[(n, m), "paper_scale_mb"], c.loc[(n, m), "paper_mb"]) for m in ("KR", "FMR")]
        ok = all(abs(s - p) <= tolerance * p for _, s, p in rel)
        claims[f"paper_scale_{key}"] = (
            f"{PAPER_NETWORKS[key]}: the paper's MB follow from the §4.3 estimate at full size "
            f"(within {100 * tolerance:g} %)", ok,
            "; ".join(f"{m} {s:.1f} MB computed vs {p:.1f} MB printed" for m, s, p in rel))
    return claims


# ------------------------------------------------------------------------------------------
# Table 3 — D2NN comparison (§4.4)
# ------------------------------------------------------------------------------------------
#: the columns of FTD Table 3 (duplication type and ratio)
TABLE3_COLUMNS: tuple[str, ...] = ("no_error", "no_duplication", "fmr_50", "fmr_20", "kr_50",
                                   "kr_20", "d2nn_50", "d2nn_20")


def table3_models(model: nn.Module, ratios: Sequence[float] = (0.5, 0.2),
                  secondary_errors: str = "independent") -> dict[str, nn.Module]:
    """The networks of FTD Table 3 (§4.4): the original (``no_duplication``), FMR, KR and D2NN
    (:func:`fatlib.duplication.d2nn`) at each ratio, all with weight-sum ranking as in the paper.
    Keys as :data:`TABLE3_COLUMNS` (without ``no_error``, which is the original without errors)."""
    scores = ranking.rank_channels(model, "weight_sum")
    out: dict[str, nn.Module] = {"no_duplication": model}
    for method in ("fmr", "kr"):
        for r in ratios:
            out[f"{method}_{round(100 * r)}"] = duplication.duplicate(model, r, scores, method).eval()
    for r in ratios:
        out[f"d2nn_{round(100 * r)}"] = duplication.d2nn(model, r, scores, secondary_errors).eval()
    return out


def per_class_table(models: Mapping[str, nn.Module], eval_data: Data, classes: Sequence[str],
                    weight_rate: float = 0.01, fmap_rate: float = 0.01,
                    seeds: Sequence[int] = (0,), batch_size: int = 100) -> pd.DataFrame:
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
    order = [c for c in TABLE3_COLUMNS if c in table.columns] + \
        [c for c in table.columns if c not in TABLE3_COLUMNS]
    table.index.name = "class"
    return table[order]


def fps_row(models: Mapping[str, nn.Module], input_shape: tuple[int, ...] = (1, 3, 32, 32),
            min_run_time: float = 0.5, rounds: int = 3) -> pd.Series:
    """Images per second of each network (FTD Table 3's FPS row), from
    :func:`fatlib.overhead.measure_latency` at ``input_shape`` (batch 1 = frames). ``no_error``
    is the original network, timed as ``no_duplication``."""
    raw = overhead.measure_latency(dict(models), input_shape, min_run_time=min_run_time,
                                   rounds=rounds)
    summ = overhead.latency_summary(raw, baseline=next(iter(models))).set_index("model")
    fps = input_shape[0] * 1000.0 / summ["median_ms"]
    out = {"no_error": float(fps.iloc[0]), **{k: float(v) for k, v in fps.items()}}
    return pd.Series(out, name="images/s")


def order_agreement(ours: pd.Series, paper: pd.Series) -> float:
    """Spearman rank correlation of two rows over their common columns (how alike the orderings
    of the duplication types are; 1 = same order)."""
    common = [c for c in ours.index if c in paper.index and pd.notna(ours[c]) and pd.notna(paper[c])]
    a = ours[common].astype(float).rank()
    b = paper[common].astype(float).rank()
    return float(a.corr(b))


def table3_claims(table: pd.DataFrame, fps: pd.Series,
                  ratios: Sequence[int] = (50, 20)) -> dict[str, tuple[str, bool, str]]:
    """Claims of FTD §4.4 (Observations 1–2) on :func:`per_class_table` (mean per-class accuracy)
    and :func:`fps_row`: KR and FMR beat D2NN at the same ratio, every duplication beats none,
    50 % recovers more than 20 %, and KR is faster than FMR."""
    m = table.loc["mean per-class"]
    beat = all(m[f"kr_{r}"] > m[f"d2nn_{r}"] and m[f"fmr_{r}"] > m[f"d2nn_{r}"] for r in ratios)
    ev = "; ".join(f"{r} %: FMR {m[f'fmr_{r}']:.1f}, KR {m[f'kr_{r}']:.1f}, D2NN {m[f'd2nn_{r}']:.1f}"
                   for r in ratios)
    dups = [c for c in table.columns if c not in ("no_error", "no_duplication")]
    more = all(m[f"{k}_{max(ratios)}"] >= m[f"{k}_{min(ratios)}"] for k in ("fmr", "kr", "d2nn"))
    faster = all(fps[f"kr_{r}"] > fps[f"fmr_{r}"] for r in ratios)
    return {
        "beat_d2nn": ("KR and FMR beat D2NN at the same duplication ratio (Observation 2)", beat, ev),
        "dup_recovers": ("Every duplication recovers accuracy lost to errors (beats no duplication)",
                         all(m[c] > m["no_duplication"] for c in dups),
                         f"no duplication {m['no_duplication']:.1f}; "
                         + ", ".join(f"{c} {m[c]:.1f}" for c in dups)),
        "more_dup_better": (f"{max(ratios)} % duplication recovers more than {min(ratios)} %",
                            more, ", ".join(f"{c} {m[c]:.1f}" for c in dups)),
        "kr_faster": ("KR runs faster than FMR (Observation 1, FPS)", faster,
                      ", ".join(f"{c} {fps[c]:.0f}/s" for c in fps.index)),
    }


# ------------------------------------------------------------------------------------------
# figures
# ------------------------------------------------------------------------------------------
def _band(ax: plt.Axes, x: np.ndarray, mean: np.ndarray, std: np.ndarray, label: str,
          color: str, style: str = "-", marker: str = "o") -> None:
    ax.plot(x, mean, style, marker=marker, ms=4, color=color, label=label)
    if np.any(std > 0):
        ax.fill_between(x, mean - std, mean + std, color=color, alpha=0.18, lw=0)


def plot_error_location(results: pd.DataFrame, title: str = "") -> Figure:
    """FTD Fig. 2: accuracy vs error rate, kernel errors vs feature-map errors, one panel per
    network (mean ± std over seeds)."""
    s = summarize(results, ["network", "location", "rate"])
    nets = list(dict.fromkeys(s["network"]))
    fig, axes = plt.subplots(1, len(nets), figsize=(4.6 * len(nets), 3.6), squeeze=False, sharey=True)
    for ax, net, tag in zip(axes[0], nets, "abcdefgh"):
        for loc, color, marker in (("kernel", "C3", "s"), ("feature map", "C0", "o")):
            p = s[(s["network"] == net) & (s["location"] == loc)].sort_values("rate")
            _band(ax, 100 * p["rate"].to_numpy(), p["mean"].to_numpy(), p["std"].to_numpy(),
                  f"{loc} errors", color, marker=marker)
        ax.set_title(f"({tag}) {NETWORK_LABELS.get(net, net)}", fontsize=10)
        ax.set_xlabel("error rate [%]")
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("accuracy [%]")
    axes[0, 0].legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_ranking_scores(scores: Mapping[str, Mapping[str, torch.Tensor]], layer: str,
                        overlap: pd.DataFrame | None = None, ratio: float = 0.5,
                        title: str = "") -> Figure:
    """FTD Fig. 3 from real scores: each method's score of every channel of ``layer`` (channels
    in weight-sum order, the top ``ratio`` of each method filled), and, when given, the
    method × method matrix of mean top-k overlap (:func:`overlap_matrix`)."""
    methods = [m for m in scores if m != "random"]
    table = score_table({m: scores[m] for m in methods}, layer, ratio)
    order = table.sort_values(f"{methods[0]}_rank")["channel"].to_numpy()
    n = len(methods) + (overlap is not None)
    fig, axes = plt.subplots(1, n, figsize=(3.6 * n, 3.4), squeeze=False)
    for ax, m, tag in zip(axes[0], methods, "abc"):
        t = table.set_index("channel").loc[order]
        colours = np.where(t[f"{m}_top"], f"C{methods.index(m)}", "#cccccc")
        values = t[f"{m}_score"].to_numpy(dtype=float)
        span = float(values.max() - values.min()) or 1.0
        base = float(values.min()) - 0.08 * span  # zoom on the spread: scores need not start at 0
        ax.bar(np.arange(len(t)), values - base, bottom=base, color=colours, width=0.9)
        ax.set_ylim(base, float(values.max()) + 0.05 * span)
        ax.set_title(f"({tag}) {m.replace('_', '-')}", fontsize=10)
        ax.set_xlabel(f"channel (in {methods[0].replace('_', '-')} order)")
        ax.set_xticks([])
        ax.grid(alpha=0.3, axis="y")
    axes[0, 0].set_ylabel(f"score of each channel of {layer}")
    if overlap is not None:
        ax = axes[0, -1]
        im = ax.imshow(overlap.to_numpy(), vmin=0, vmax=1, cmap="viridis")
        labels = [c.replace("_", "-") for c in overlap.columns]
        ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(len(labels)), labels, fontsize=8)
        for (i, j), v in np.ndenumerate(overlap.to_numpy()):
            ax.text(j, i, f"{100 * v:.0f}", ha="center", va="center", fontsize=8,
                    color="white" if v < 0.6 else "black")
        ax.set_title(f"top-{100 * ratio:g} % overlap [%], all layers", fontsize=10)
        fig.colorbar(im, ax=ax, fraction=0.046)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_duplication_demo(kr_demo: Mapping[str, object], fmr_demo: Mapping[str, object],
                          title: str = "") -> Figure:
    """FTD Fig. 4 from the real modules: one row per mechanism (KR with a zeroed kernel weight,
    FMR with a zeroed feature-map element); columns: error-free output channel, the same error
    without duplication, with duplication, and the remaining error of both."""
    fig, axes = plt.subplots(2, 4, figsize=(11, 5.4))
    for r, (demo, key, name) in enumerate(((kr_demo, "kr", "KR"), (fmr_demo, "fmr", "FMR"))):
        clean, plain, rec = (demo["clean"], demo["no_duplication"], demo[key])
        vmin = float(min(t.min() for t in (clean, plain, rec)))
        vmax = float(max(t.max() for t in (clean, plain, rec)))
        for c, (t, lab) in enumerate(((clean, "error-free"), (plain, "error, no duplication"),
                                      (rec, f"error, {name}"))):
            axes[r, c].imshow(t.numpy(), cmap="coolwarm", vmin=vmin, vmax=vmax, interpolation="nearest")
            axes[r, c].set_title(lab, fontsize=9)
        err = max(float((plain - clean).abs().max()), 1e-12)
        axes[r, 3].plot((plain - clean).flatten().numpy(), color="C3", lw=1, label="no duplication")
        axes[r, 3].plot((rec - clean).flatten().numpy(), color="C0", lw=1, label=name)
        axes[r, 3].set_ylim(-1.1 * err, 1.1 * err)
        axes[r, 3].set_title("error vs error-free (flattened)", fontsize=9)
        axes[r, 3].legend(fontsize=7)
        what = (f"weight {demo['weight']} zeroed" if key == "kr"
                else f"map element {demo['position']} zeroed")
        axes[r, 0].set_ylabel(f"{name}: channel {demo['channel']}\n{what}", fontsize=8)
        for c in range(3):
            axes[r, c].set_xticks([])
            axes[r, c].set_yticks([])
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_duplication_summary(summaries: Mapping[str, pd.DataFrame], title: str = "") -> Figure:
    """FTD Fig. 5 from the real duplicated networks: duplicated share of the channels of every
    convolution (:func:`fatlib.duplication.duplication_summary`), MobileNet's paired depthwise
    convolutions (duplicated whole) in orange."""
    fig, axes = plt.subplots(len(summaries), 1, figsize=(9, 2.4 * len(summaries)), squeeze=False)
    for ax, (net, s) in zip(axes[:, 0], summaries.items()):
        share = (s["duplicated"] / s["channels"]).to_numpy()
        colours = np.where(s["paired_depthwise"], "C1", "C0")
        ax.bar(np.arange(len(s)), 100 * share, color=colours)
        ax.set_xticks(np.arange(len(s)), s["layer"], rotation=90, fontsize=6)
        ax.set_ylabel("duplicated [%]")
        ax.set_ylim(0, 105)
        ax.set_title(NETWORK_LABELS.get(net, net) + "  (orange: depthwise conv paired with its "
                     "pointwise conv, duplicated whole)" * bool(s["paired_depthwise"].any()), fontsize=9)
        ax.grid(alpha=0.3, axis="y")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_ranking_methods(results: pd.DataFrame, panels: Sequence[Panel], title: str = "") -> Figure:
    """FTD Fig. 6: one panel per (network, duplication, weight rate), accuracy vs feature-map
    error rate for each ranking, random selection and no duplication (mean line, ± std shade)."""
    s = summarize(results, ["network", "duplication", "weight_rate", "ranking", "fmap_rate"])
    cols = 2 if len(panels) > 1 else 1
    rows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.6 * rows), squeeze=False)
    for ax, panel, tag in zip(axes.flat, panels, "abcdefgh"):
        p = s[(s["network"] == panel.network) & (s["duplication"] == panel.duplication)
              & (s["weight_rate"] == panel.weight_rate)]
        for rk in dict.fromkeys(p["ranking"]):
            q = p[p["ranking"] == rk].sort_values("fmap_rate")
            color, style = _RANK_STYLE.get(rk, ("C4", "-"))
            label = "no duplication" if rk == "none" else rk.replace("_", "-")
            _band(ax, 100 * q["fmap_rate"].to_numpy(), q["mean"].to_numpy(), q["std"].to_numpy(),
                  label, color, style)
        ax.set_title(f"({tag}) {panel.label}", fontsize=9)
        ax.set_xlabel("feature-map error rate [%]")
        ax.set_ylabel("accuracy [%]")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_kr_vs_fmr(fmap_results: pd.DataFrame, weight_results: pd.DataFrame,
                   title: str = "") -> Figure:
    """FTD Fig. 7: KR vs FMR accuracy (a) against the feature-map error rate, one line pair per
    network, and (b) against the weight error rate (mean ± std over seeds)."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, res, xlabel, tag in ((axes[0], fmap_results, "feature-map error rate [%]", "(a)"),
                                 (axes[1], weight_results, "weight error rate [%]", "(b)")):
        s = summarize(res, ["network", "duplication", "rate"])
        nets = list(dict.fromkeys(s["network"]))
        for k, net in enumerate(nets):
            color = _NET_COLOURS.get(net, f"C{k + 2}")
            for dup, style, marker in (("kr", "--", "s"), ("fmr", "-", "o")):
                q = s[(s["network"] == net) & (s["duplication"] == dup)].sort_values("rate")
                _band(ax, 100 * q["rate"].to_numpy(), q["mean"].to_numpy(), q["std"].to_numpy(),
                      f"{NETWORK_LABELS.get(net, net)} {_DUP_LABELS[dup]}", color, style, marker)
        fixed = res["weight_rate"].iloc[0] if res["varied"].iloc[0] == "fmap" else res["fmap_rate"].iloc[0]
        other = "weight" if res["varied"].iloc[0] == "fmap" else "feature-map"
        ax.set_title(f"{tag} {other} error fixed at {100 * fixed:g} %", fontsize=9)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("accuracy [%]")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_latency(comparison: pd.DataFrame, title: str = "") -> Figure:
    """FTD Table 1 as a picture: KR and FMR latency relative to the original network, ours and
    the paper's, per network and platform."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
    for ax, net in zip(axes, ("VGG-16", "MobileNetV1")):
        p = comparison[comparison["network"] == net].reset_index(drop=True)
        x = np.arange(len(p))
        ax.bar(x - 0.2, p["kr_ratio"], 0.4, label="KR", color="C0")
        ax.bar(x + 0.2, p["fmr_ratio"], 0.4, label="FMR", color="C1")
        ax.axhline(1.0, color="black", lw=0.8)
        ax.set_xticks(x, [f"{s}\n{pl}" for s, pl in zip(p["source"], p["platform"])], fontsize=6)
        ax.set_title(net, fontsize=10)
        ax.grid(alpha=0.3, axis="y")
    axes[0].set_ylabel("latency / original")
    axes[0].legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_per_class(table: pd.DataFrame, title: str = "") -> Figure:
    """FTD Table 3 as grouped bars: per-class accuracy of every duplication type."""
    classes = [i for i in table.index if i not in ("mean per-class", "overall")]
    cols = list(table.columns)
    fig, ax = plt.subplots(figsize=(max(8, 0.9 * len(classes) + 2), 3.8))
    width = 0.8 / len(cols)
    x = np.arange(len(classes))
    for k, c in enumerate(cols):
        ax.bar(x + (k - (len(cols) - 1) / 2) * width, table.loc[classes, c], width,
               label=c.replace("_", " "), color=plt.cm.tab10(k))
    ax.set_xticks(x, classes, fontsize=8)
    ax.set_ylabel("accuracy [%]")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=7, ncol=4)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig
