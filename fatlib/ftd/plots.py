"""Figures of the FT-DeepNets chapter (Baek et al., WACV 2022), drawn from real fatlib objects:
the result tables of :mod:`fatlib.ftd.experiments`, real ranking scores, real duplicated modules.

Each function returns a matplotlib Figure; notebooks save it, glue it and close it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from fatlib.ftd.evaluation import summarize
from fatlib.ftd.experiments import DUPLICATION_LABELS, NETWORK_LABELS, Panel, score_table

__all__ = [
    "plot_error_location",
    "plot_ranking_scores",
    "plot_duplication_demo",
    "plot_duplication_summary",
    "plot_ranking_methods",
    "plot_kr_vs_fmr",
    "plot_latency",
    "plot_per_class",
]

#: line colour of each network (Fig. 7) and colour / line style of each ranking (Fig. 6)
_NET_COLOURS = {"vgg16": "C0", "mobilenet_v1": "C1"}
_RANK_STYLE = {
    "weight_sum": ("C0", "-"),
    "second_order": ("C1", "-"),
    "entropy": ("C2", "-"),
    "random": ("C7", "--"),
    "none": ("black", ":"),
}


def _band(
    ax: plt.Axes,
    x: np.ndarray,
    mean: np.ndarray,
    std: np.ndarray,
    label: str,
    color: str,
    style: str = "-",
    marker: str = "o",
) -> None:
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
            _band(
                ax,
                100 * p["rate"].to_numpy(),
                p["mean"].to_numpy(),
                p["std"].to_numpy(),
                f"{loc} errors",
                color,
                marker=marker,
            )
        ax.set_title(f"({tag}) {NETWORK_LABELS.get(net, net)}", fontsize=10)
        ax.set_xlabel("error rate [%]")
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("accuracy [%]")
    axes[0, 0].legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_ranking_scores(
    scores: Mapping[str, Mapping[str, torch.Tensor]],
    layer: str,
    overlap: pd.DataFrame | None = None,
    ratio: float = 0.5,
    title: str = "",
) -> Figure:
    """FTD Fig. 3 from real scores: each method's score of every channel of ``layer`` (channels
    in weight-sum order, the top ``ratio`` of each method filled), and, when given, the
    method × method matrix of mean top-k overlap (:func:`fatlib.ftd.experiments.overlap_matrix`)."""
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
            ax.text(
                j,
                i,
                f"{100 * v:.0f}",
                ha="center",
                va="center",
                fontsize=8,
                color="white" if v < 0.6 else "black",
            )
        ax.set_title(f"top-{100 * ratio:g} % overlap [%], all layers", fontsize=10)
        fig.colorbar(im, ax=ax, fraction=0.046)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_duplication_demo(
    kr_demo: Mapping[str, object], fmr_demo: Mapping[str, object], title: str = ""
) -> Figure:
    """FTD Fig. 4 from the real modules: one row per mechanism (KR with a zeroed kernel weight,
    FMR with a zeroed feature-map element); columns: error-free output channel, the same error
    without duplication, with duplication, and the remaining error of both."""
    fig, axes = plt.subplots(2, 4, figsize=(11, 5.4))
    for r, (demo, key) in enumerate(((kr_demo, "kr"), (fmr_demo, "fmr"))):
        name = DUPLICATION_LABELS[key]
        clean, plain, rec = (demo["clean"], demo["no_duplication"], demo[key])
        vmin = float(min(t.min() for t in (clean, plain, rec)))
        vmax = float(max(t.max() for t in (clean, plain, rec)))
        for c, (t, lab) in enumerate(
            ((clean, "error-free"), (plain, f"error, {DUPLICATION_LABELS['none']}"), (rec, f"error, {name}"))
        ):
            axes[r, c].imshow(t.numpy(), cmap="coolwarm", vmin=vmin, vmax=vmax, interpolation="nearest")
            axes[r, c].set_title(lab, fontsize=9)
        err = max(float((plain - clean).abs().max()), 1e-12)
        axes[r, 3].plot((plain - clean).flatten().numpy(), color="C3", lw=1, label=DUPLICATION_LABELS["none"])
        axes[r, 3].plot((rec - clean).flatten().numpy(), color="C0", lw=1, label=name)
        axes[r, 3].set_ylim(-1.1 * err, 1.1 * err)
        axes[r, 3].set_title("error vs error-free (flattened)", fontsize=9)
        axes[r, 3].legend(fontsize=7)
        what = f"weight {demo['weight']} zeroed" if key == "kr" else f"map element {demo['position']} zeroed"
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
    convolution (:func:`fatlib.ftd.duplication.duplication_summary`), MobileNet's paired depthwise
    convolutions (duplicated whole) in orange."""
    fig, axes = plt.subplots(len(summaries), 1, figsize=(9, 2.4 * len(summaries)), squeeze=False)
    for ax, (net, s) in zip(axes[:, 0], summaries.items()):
        share = (s["duplicated"] / s["channels"]).to_numpy()
        colours = np.where(s["paired_depthwise"], "C1", "C0")
        ax.bar(np.arange(len(s)), 100 * share, color=colours)
        ax.set_xticks(np.arange(len(s)), s["layer"], rotation=90, fontsize=6)
        ax.set_ylabel("duplicated [%]")
        ax.set_ylim(0, 105)
        ax.set_title(
            NETWORK_LABELS.get(net, net) + "  (orange: depthwise conv paired with its "
            "pointwise conv, duplicated whole)" * bool(s["paired_depthwise"].any()),
            fontsize=9,
        )
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
        p = s[
            (s["network"] == panel.network)
            & (s["duplication"] == panel.duplication)
            & (s["weight_rate"] == panel.weight_rate)
        ]
        for rk in dict.fromkeys(p["ranking"]):
            q = p[p["ranking"] == rk].sort_values("fmap_rate")
            color, style = _RANK_STYLE.get(rk, ("C4", "-"))
            label = DUPLICATION_LABELS["none"] if rk == "none" else rk.replace("_", "-")
            _band(
                ax,
                100 * q["fmap_rate"].to_numpy(),
                q["mean"].to_numpy(),
                q["std"].to_numpy(),
                label,
                color,
                style,
            )
        ax.set_title(f"({tag}) {panel.label}", fontsize=9)
        ax.set_xlabel("feature-map error rate [%]")
        ax.set_ylabel("accuracy [%]")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_kr_vs_fmr(fmap_results: pd.DataFrame, weight_results: pd.DataFrame, title: str = "") -> Figure:
    """FTD Fig. 7: KR vs FMR accuracy (a) against the feature-map error rate, one line pair per
    network, and (b) against the weight error rate (mean ± std over seeds)."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, res, xlabel, tag in (
        (axes[0], fmap_results, "feature-map error rate [%]", "(a)"),
        (axes[1], weight_results, "weight error rate [%]", "(b)"),
    ):
        s = summarize(res, ["network", "duplication", "rate"])
        nets = list(dict.fromkeys(s["network"]))
        for k, net in enumerate(nets):
            color = _NET_COLOURS.get(net, f"C{k + 2}")
            for dup, style, marker in (("kr", "--", "s"), ("fmr", "-", "o")):
                q = s[(s["network"] == net) & (s["duplication"] == dup)].sort_values("rate")
                _band(
                    ax,
                    100 * q["rate"].to_numpy(),
                    q["mean"].to_numpy(),
                    q["std"].to_numpy(),
                    f"{NETWORK_LABELS.get(net, net)} {DUPLICATION_LABELS[dup]}",
                    color,
                    style,
                    marker,
                )
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
    for ax, net in zip(axes, NETWORK_LABELS.values()):
        p = comparison[comparison["network"] == net].reset_index(drop=True)
        x = np.arange(len(p))
        ax.bar(x - 0.2, p["kr_ratio"], 0.4, label=DUPLICATION_LABELS["kr"], color="C0")
        ax.bar(x + 0.2, p["fmr_ratio"], 0.4, label=DUPLICATION_LABELS["fmr"], color="C1")
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
        ax.bar(
            x + (k - (len(cols) - 1) / 2) * width,
            table.loc[classes, c],
            width,
            label=c.replace("_", " "),
            color=plt.cm.tab10(k),
        )
    ax.set_xticks(x, classes, fontsize=8)
    ax.set_ylabel("accuracy [%]")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=7, ncol=4)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig
