"""Figures of the book, drawn from real fatlib objects (masks, layers, models, result tables).

Each function returns a matplotlib Figure; notebooks glue it and close it.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

__all__ = [
    "feature_map_grid",
    "injection_example",
    "cnv_graph",
    "min_max_per_layer",
    "learning_curve",
    "paper_vs_ours",
    "tmr_frontiers",
    "row_paper_vs_ours",
]


def feature_map_grid(rows: dict[str, torch.Tensor], channels: int = 8, title: str = "") -> Figure:
    """One row per labelled C×H×W feature map, its first ``channels`` channels as images
    (FAT Fig. 2: error-free, channel stuck@, same-pixel stuck@)."""
    n_rows = len(rows)
    fig, axes = plt.subplots(n_rows, channels, figsize=(1.3 * channels, 1.45 * n_rows + 0.4), squeeze=False)
    all_vals = torch.cat([t[:channels].flatten() for t in rows.values()])
    vmin, vmax = float(all_vals.min()), float(all_vals.max())
    for r, (label, fmap) in enumerate(rows.items()):
        for c in range(channels):
            ax = axes[r, c]
            ax.imshow(fmap[c].cpu().numpy(), cmap="coolwarm", vmin=vmin, vmax=vmax, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f"ch {c}", fontsize=8)
        axes[r, 0].set_ylabel(label, fontsize=8, rotation=0, ha="right", va="center")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def injection_example(table: pd.DataFrame, title: str = "") -> Figure:
    """FAT Fig. 4 as a heat-table: rows are the tensors of the forward and backward pass of an
    injection layer (input, replaced?, output, upstream gradient, input gradient), columns the
    neurons of the FC activation."""
    values = table.to_numpy(dtype=float)
    fig, ax = plt.subplots(figsize=(0.7 * values.shape[1] + 2.5, 0.55 * values.shape[0] + 0.8))
    ax.imshow(np.zeros_like(values), cmap="Greys", vmin=0, vmax=1)
    for (i, j), v in np.ndenumerate(values):
        is_mask = table.index[i].startswith("replaced")
        ax.text(
            j,
            i,
            f"{v:+.2f}".replace("+0.00", "0").replace("-0.00", "0") if not is_mask else ("yes" if v else "·"),
            ha="center",
            va="center",
            fontsize=8,
            color="crimson" if is_mask and v else "black",
        )
    replaced = table.loc[[i for i in table.index if i.startswith("replaced")][0]].to_numpy(dtype=bool)
    for j in np.flatnonzero(replaced):
        ax.axvspan(j - 0.5, j + 0.5, color="gold", alpha=0.3)
    ax.set_yticks(range(len(table.index)), table.index, fontsize=8)
    ax.set_xticks(range(values.shape[1]), [f"n{j}" for j in range(values.shape[1])], fontsize=8)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def cnv_graph(sites: pd.DataFrame, title: str = "") -> Figure:
    """FAT Fig. 5: CNV's layers left to right, with an injection layer after every activation
    site. ``sites`` is :func:`fatlib.fat.injection.site_table`."""
    fig, ax = plt.subplots(figsize=(max(8, 0.62 * len(sites)), 3.2))
    colours = {
        "input": "#dddddd",
        "conv": "#9ecae1",
        "fc": "#a1d99b",
        "bn": "#eeeeee",
        "act": "#fdd0a2",
        "pool": "#dadaeb",
        "inject": "#fb6a4a",
        "norm": "#eeeeee",
    }
    for x, row in enumerate(sites.itertuples()):
        colour = colours.get(row.kind, "#ffffff")
        ax.add_patch(plt.Rectangle((x - 0.4, 0), 0.8, 1.6, color=colour, ec="black", lw=0.6))
        ax.text(x, 0.8, row.label, rotation=90, ha="center", va="center", fontsize=7)
        ax.text(x, -0.15, row.shape, rotation=90, ha="center", va="top", fontsize=6, color="#444444")
        if x:
            ax.annotate(
                "", xy=(x - 0.4, 0.8), xytext=(x - 0.6, 0.8), arrowprops={"arrowstyle": "->", "lw": 0.6}
            )
    ax.set_xlim(-0.7, len(sites) - 0.3)
    ax.set_ylim(-1.6, 1.8)
    ax.axis("off")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def min_max_per_layer(
    summary: pd.DataFrame,
    error_free: dict[str, float] | float,
    labels: Sequence[str] | None = None,
    title: str = "",
) -> Figure:
    """FAT Fig. 3 / 6 / 7 / 10: per layer, the error-free accuracy and the min / max accuracy
    under single stuck@ faults, one series per network. ``summary`` needs columns ``network``
    (optional), ``layer``, ``min``, ``max``."""
    if "network" not in summary:
        summary = summary.assign(network="")
    nets = list(labels) if labels is not None else list(dict.fromkeys(summary["network"]))
    if not isinstance(error_free, dict):
        error_free = {n: float(error_free) for n in nets}
    fig, ax = plt.subplots(figsize=(7, 4))
    width = 0.8 / max(1, len(nets))
    for k, net in enumerate(nets):
        part = summary[summary["network"] == net].groupby("layer").agg(min=("min", "min"), max=("max", "max"))
        y = part.index.to_numpy() + (k - (len(nets) - 1) / 2) * width
        ax.hlines(y, part["min"], part["max"], color=f"C{k}", lw=2, label=f"{net} min–max".strip())
        ax.plot(part["min"], y, "<", color=f"C{k}", ms=5)
        ax.plot(part["max"], y, ">", color=f"C{k}", ms=5)
        ax.plot(
            [error_free[net]] * len(y),
            y,
            "o",
            mfc="white",
            color=f"C{k}",
            ms=5,
            label=f"{net} error-free".strip(),
        )
    ax.set_yticks(sorted(summary["layer"].unique()))
    ax.set_ylabel("layer")
    ax.set_xlabel("accuracy [%]")
    ax.invert_yaxis()
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower left")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def learning_curve(history: pd.DataFrame, title: str = "") -> Figure:
    """Training and test accuracy per epoch from a :class:`fatlib.core.training.TrainResult` history."""
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    ax.plot(history["epoch"], history["train_accuracy"], marker="o", label="training (augmented)")
    if "test_accuracy" in history:
        ax.plot(history["epoch"], history["test_accuracy"], marker="s", label="test")
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy [%]")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


def paper_vs_ours(long: pd.DataFrame, title: str = "") -> Figure:
    """Error-free and minimum accuracy of every reproduced row of a FAT summary table: the
    paper's (hollow markers) against ours (filled), one panel per quantity. ``long`` is
    :func:`fatlib.fat.experiments.reproduce_table`."""
    ran = long[(long["status"] == "ok") & long["quantity"].isin(["error_free", "min"])]
    fig, axes = plt.subplots(1, 2, figsize=(10, 0.45 * max(4, ran["row"].nunique() * 2) + 1.2), sharey=True)

    def row_label(t: pd.DataFrame) -> pd.Series:
        return t["network"] + " " + t["dataset"] + " " + t["group"] + " p=" + t["p"].map("{:g}".format)

    labels = row_label(ran).unique()
    ypos = {lab: i for i, lab in enumerate(labels)}
    groups = ("sat", "fat", "d2d")
    for ax, quantity in zip(axes, ["error_free", "min"]):
        part = ran[ran["quantity"] == quantity]
        y = row_label(part).map(ypos)
        colours = [f"C{groups.index(g) if g in groups else 3}" for g in part["group"]]
        ax.scatter(part["paper"], y, facecolors="none", edgecolors=colours, label="paper")
        ax.scatter(part["ours"], y, c=colours, marker="s", label="ours")
        ax.set_xlabel({"error_free": "error-free accuracy [%]", "min": "minimum accuracy [%]"}[quantity])
        ax.grid(alpha=0.3)
    axes[0].set_yticks(range(len(labels)), labels, fontsize=7)
    axes[0].invert_yaxis()
    axes[0].legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def tmr_frontiers(frontiers: pd.DataFrame, title: str = "") -> Figure:
    """FAT Fig. 9: worst-case error against normalized hardware cost, one curve per model
    (``frontiers`` from :func:`fatlib.fat.experiments.selective_tmr`)."""
    fig, ax = plt.subplots(figsize=(6.8, 4.2))
    for k, (model, part) in enumerate(frontiers.groupby("model", sort=False)):
        style = "-" if part["training"].iloc[0] == "FAT" else "--"
        ax.step(part["cost"], part["worst_error"], where="post", ls=style, color=f"C{k}", label=model)
    ax.set_xlabel("normalized hardware cost (1 = unprotected, 3 = full TMR)")
    ax.set_ylabel("worst-case test error [%]")
    ax.set_xlim(left=1.0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def row_paper_vs_ours(
    table: pd.DataFrame, groups: Sequence[str] = ("SAT", "FAT"), title: str = "", note: str = ""
) -> Figure:
    """One row of a FAT summary table, the paper's numbers (hollow) against ours (filled): per
    group, the error-free accuracy (circle) and the minimum accuracy under single stuck@ faults
    (triangle), joined by a line. ``table`` is a :func:`fatlib.core.paper.side_by_side` frame with
    quantities ``"<group> error-free"`` and ``"<group> min"``; where ours are missing (not run)
    only the paper's are drawn and ``note`` says why."""
    vals = table.set_index("quantity")
    fig, ax = plt.subplots(figsize=(8.5, 0.9 * len(groups) + 1.8))
    for k, group in enumerate(groups):
        for src, dy, filled in (("paper", -0.12, False), ("ours", 0.12, True)):
            ef = pd.to_numeric(vals.loc[f"{group} error-free", src], errors="coerce")
            mn = pd.to_numeric(vals.loc[f"{group} min", src], errors="coerce")
            if pd.isna(ef) or pd.isna(mn):
                continue
            y = k + dy
            face = f"C{k}" if filled else "white"
            ax.hlines(y, mn, ef, color=f"C{k}", lw=2 if filled else 1, ls="-" if filled else "--")
            ax.plot(ef, y, "o", mfc=face, color=f"C{k}", ms=7, label=f"{group} {src} error-free")
            ax.plot(mn, y, "<", mfc=face, color=f"C{k}", ms=7, label=f"{group} {src} min")
    ax.set_yticks(range(len(groups)), groups)
    ax.set_ylim(len(groups) - 0.5, -0.5)
    ax.set_xlabel("accuracy [%]")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    if note:
        import textwrap

        ax.text(
            0.5,
            -0.32,
            "\n".join(textwrap.wrap(note, 110)),
            transform=ax.transAxes,
            ha="center",
            va="top",
            fontsize=7,
            color="#444444",
        )
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig
