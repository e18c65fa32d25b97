"""FAT's experiments as one call each: train a CNV with a scheme, then run the stuck-at campaign
on it (FAT §V, Tables I–IV, Figs. 3, 6, 7, 9, 10); DoReFa-Net on ImageNet likewise (Fig. 8).
Trained networks come from the artifact store and campaigns are cached (and resumable) beside
them, so a notebook re-run costs nothing.

One section per figure or table of the paper; each holds the experiment and the paper's claims
checked on our numbers (``(claim, holds, evidence)`` tuples for :func:`fatlib.core.paper.claims_table`),
so that a notebook only narrates, glues and writes files.
"""

from __future__ import annotations

import operator
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import pandas as pd
import torch

from fatlib.core.data import DatasetNotFound, load_dataset, profile_dataset, subset
from fatlib.core.paper import PAPER_DATASET
from fatlib.core.profiles import Profile, get_profile
from fatlib.core.schemes import CHANNEL, DROPOUT2D, FAT_M1, FAT_M2, PIXEL, SAT, scheme_label
from fatlib.core.training import TrainResult, data_fingerprint, train_cnv

__all__ = [
    "training_args",
    "ExportCheck",
    "export_check",
    "FaultEvaluation",
    "evaluate_cnv",
    "data_missing",
    "table_row",
    "parse_list",
    "parse_networks",
    "per_layer_table",
    "reproduce_table",
    "wide",
    "TABLE_GROUPS",
    "table_claim",
    "selective_tmr",
    "channels_needed_table",
    "DataMissing",
    "ImageNetSource",
    "imagenet_source",
    "evaluate_dorefa",
    "DoReFaFigure8",
    "dorefa_figure8",
    "Claim",
    "PER_LAYER_COLUMNS",
    "Setup",
    "setup",
    "summary_table",
    "per_layer_of",
    "error_free_by_label",
    "table1_claims",
    "MethodFigure",
    "method_figure",
    "fat_vs_sat_claims",
    "variance_by_p_claim",
    "method2_vs_method1_claim",
    "table2_claims",
    "table3_claims",
    "figure10",
    "table4_claims",
    "sat_matching_fat",
    "fig09_claims",
]

#: one of the paper's claims checked on our numbers: (claim, holds, evidence)
Claim = tuple[str, bool, str]

#: the columns of :meth:`FaultEvaluation.per_layer` (one row per network, layer and stuck@ value)
PER_LAYER_COLUMNS = ["network", "layer", "value", "min", "max", "mean", "count", "error_free"]


# ------------------------------------------------------------------------------------------
# A trained network and its single stuck@ campaign (FAT Algorithm 1)
# ------------------------------------------------------------------------------------------


@dataclass
class FaultEvaluation:
    """A trained network and its single stuck@ campaign (FAT Algorithm 1)."""

    label: str
    network: str
    dataset: str
    train: TrainResult
    campaign: pd.DataFrame
    error_free: float
    campaign_pattern: str
    profile: str

    @property
    def minimum(self) -> float:
        """Lowest accuracy under any single stuck@ fault ("Min Acc." of FAT Tables II–IV)."""
        return float(self.campaign["accuracy"].min())

    @property
    def variance(self) -> float:
        """Variance of the accuracies over all faults ("Variance" of FAT Tables II–III)."""
        return float(self.campaign["accuracy"].var(ddof=0))

    @property
    def faults(self) -> int:
        """Number of single faults the campaign evaluated."""
        return int(len(self.campaign))

    @property
    def worst_fault(self) -> pd.Series:
        """The campaign's row of the fault with the lowest accuracy (the first, on a tie)."""
        return self.campaign.loc[self.campaign["accuracy"].idxmin()]

    def per_layer(self) -> pd.DataFrame:
        """Per layer and stuck@ value: min / max / mean accuracy (FAT Table I), with the network
        (columns :data:`PER_LAYER_COLUMNS`; statistics of :func:`fatlib.fat.campaign.layer_statistics`)."""
        from fatlib.fat.campaign import layer_statistics

        out = layer_statistics(self.campaign)
        out.insert(0, "network", self.label)
        out["error_free"] = self.error_free
        return out[PER_LAYER_COLUMNS]

    def __repr__(self) -> str:
        return (
            f"FaultEvaluation({self.label!r}, error_free={self.error_free:.2f}, "
            f"min={self.minimum:.2f}, variance={self.variance:.3f}, faults={self.faults}, "
            f"pattern={self.campaign_pattern!r}, profile={self.profile!r})"
        )


def evaluate_cnv(
    profile: str | Profile,
    weight_bits: int,
    act_bits: int,
    scheme: str = SAT,
    pattern: str | None = None,
    p: float = 0.0,
    dataset: str = "cifar10",
    campaign_pattern: str = CHANNEL,
    seed: int = 0,
    data_dir: str | os.PathLike | None = None,
    device: str | torch.device | None = "auto",
    progress: bool = False,
) -> FaultEvaluation:
    """Train (or reuse) CNV W\\ *w*\\ A\\ *a* with ``scheme`` at ``profile``'s sizes and run the
    single stuck@ campaign with ``campaign_pattern`` on the profile's test split (exhaustive, or
    ``profile.campaign_faults`` sampled faults). The campaign is stored beside the trained
    artifact and resumed or reused on a re-run."""
    from fatlib.fat.campaign import default_layers, golden_accuracy, stuck_at_campaign

    prof = get_profile(profile)
    trained = train_cnv(
        prof,
        weight_bits,
        act_bits,
        dataset=dataset,
        scheme=scheme,
        pattern=pattern,
        p=p,
        seed=seed,
        data_dir=data_dir,
        device=device,
        progress=progress,
    )
    test = profile_dataset(dataset, "test", prof, data_dir=data_dir, seed=seed)
    if campaign_pattern == PIXEL and prof.pixel_campaign_images is not None:
        test = subset(test, prof.pixel_campaign_images, seed=seed)
    fp = data_fingerprint(test).split(":")[-1]
    sample = prof.campaign_faults
    lays = (
        ""
        if campaign_pattern == CHANNEL
        else "-L" + "".join(map(str, default_layers(trained.model, campaign_pattern)))
    )
    folder = Path(trained.path) / f"campaign-{campaign_pattern}{lays}-{fp}-{sample or 'all'}-s{seed}"
    images = test.images.float().div(255.0)
    campaign = stuck_at_campaign(
        trained.model,
        (images, test.labels),
        pattern=campaign_pattern,
        store=folder,
        sample=sample,
        seed=seed,
        progress=progress,
        device=device if device != "auto" else None,
    )
    error_free = golden_accuracy(trained.model, (images, test.labels))
    network = f"CNVW{weight_bits}A{act_bits}"
    label = scheme_label(network, scheme, trained.config["p"], pattern)
    return FaultEvaluation(
        label=label,
        network=network,
        dataset=dataset,
        train=trained,
        campaign=campaign,
        error_free=error_free,
        campaign_pattern=campaign_pattern,
        profile=prof.name,
    )


def table_row(ev: FaultEvaluation) -> dict[str, object]:
    """One row of a FAT summary table (II–IV) from an evaluation."""
    cfg = ev.train.config
    return {
        "network": ev.network,
        "dataset": ev.dataset,
        "scheme": cfg["scheme"],
        "p": 100 * cfg["p"],
        "error_free": ev.error_free,
        "min": ev.minimum,
        "variance": ev.variance,
        "faults": ev.faults,
        "profile": ev.profile,
    }


def summary_table(evaluations: Sequence[FaultEvaluation]) -> pd.DataFrame:
    """One :func:`table_row` per evaluation, after a ``model`` column (its label)."""
    table = pd.DataFrame([table_row(e) for e in evaluations])
    table.insert(0, "model", [e.label for e in evaluations])
    return table


def per_layer_of(evaluations: Sequence[FaultEvaluation]) -> pd.DataFrame:
    """The :meth:`FaultEvaluation.per_layer` tables of several networks, one below the other."""
    return pd.concat([e.per_layer() for e in evaluations], ignore_index=True)


def error_free_by_label(evaluations: Sequence[FaultEvaluation]) -> dict[str, float]:
    """Each network's error-free accuracy by its label (the circles of Figs. 3, 6–8, 10)."""
    return {e.label: e.error_free for e in evaluations}


# ------------------------------------------------------------------------------------------
# Notebook set-up and parameters
# ------------------------------------------------------------------------------------------


class Setup(NamedTuple):
    """What a FAT notebook starts from (:func:`setup`)."""

    profile: Profile
    out: Path
    data_dir: str | None


def setup(profile: str | Profile, output_dir: str | os.PathLike, name: str, data_dir: str = "") -> Setup:
    """The start of every FAT notebook: the scale ``profile``, the output folder (``output_dir``,
    or ``results/<name>`` when empty; created, :func:`fatlib.core.files.output_dir`) and the data folder
    (``data_dir``, or None when empty: the default places of :mod:`fatlib.core.data`)."""
    from fatlib.core.files import output_dir as make_output_dir

    return Setup(get_profile(profile), make_output_dir(output_dir, name), data_dir or None)


def parse_list(text: str, kind: type = float) -> list:
    """Parse a notebook parameter such as ``"5, 2.5, 1.5"`` (papermill passes primitives only)."""
    items = [t.strip() for t in str(text).split(",") if t.strip()]
    try:
        return [kind(t) for t in items]
    except ValueError:
        raise ValueError(f"cannot read {text!r} as a comma-separated list of {kind.__name__}") from None


def parse_networks(text: str) -> list[tuple[int, int]]:
    """``"W1A1, W2A2"`` → ``[(1, 1), (2, 2)]``."""
    out = []
    for item in parse_list(text, str):
        item = item.upper().replace("CNV", "")
        if not (item.startswith("W") and "A" in item):
            raise ValueError(f"network {item!r}: write it as W<bits>A<bits>, e.g. W1A1")
        w, a = item[1:].split("A")
        out.append((int(w), int(a)))
    return out


# ------------------------------------------------------------------------------------------
# FAT Table I and Fig. 3: SAT CNVW1A1 under single channel stuck@ (§III-A)
# ------------------------------------------------------------------------------------------


def per_layer_table(ev: FaultEvaluation) -> pd.DataFrame:
    """FAT Table I from a campaign: per layer, the channels and, for each stuck@ value, the min
    and max accuracy (those of :meth:`FaultEvaluation.per_layer`)."""
    t = ev.per_layer().set_index(["layer", "value"])[["min", "max"]].unstack("value")
    t.columns = [f"s@{v:+g} {stat}" for stat, v in t.columns]
    order = [f"s@{v:+g} {s}" for v in sorted(ev.campaign["value"].unique()) for s in ("min", "max")]
    t = t[order]
    key = "channel" if "channel" in ev.campaign else "row"
    counts = (
        ev.campaign.groupby("layer")[key].nunique()
        if key == "channel"
        else ev.campaign.groupby("layer").apply(lambda d: len(d[["row", "col"]].drop_duplicates()))
    )
    t.insert(0, "channels" if key == "channel" else "positions", counts)
    return t.reset_index()


def table1_claims(ev: FaultEvaluation) -> list[Claim]:
    """FAT §III-A (Table I, Fig. 3) on a SAT CNV's channel stuck@ campaign: a single stuck channel
    can cost far more than the typical one, the convolutional layers (0–5) are more sensitive
    than the FC layers (6–7), and the worst fault sits in an early layer."""
    per_layer_min = ev.per_layer().groupby("layer")["min"].min()
    conv_min, fc_min = per_layer_min.loc[0:5].min(), per_layer_min.loc[6:7].min()
    drop = ev.error_free - ev.campaign["accuracy"]
    worst = ev.worst_fault
    return [
        (
            "A single stuck channel can cost SAT far more accuracy than the typical one "
            "(worst drop ≥ 5 × mean drop)",
            bool(drop.max() >= 5 * max(drop.mean(), 1e-9)),
            f"worst drop {drop.max():.2f} pp, mean drop {drop.mean():.2f} pp",
        ),
        (
            "Convolutional layers are more sensitive than the FC layers (lower minimum)",
            bool(conv_min < fc_min),
            f"conv layers min {conv_min:.2f} %, FC layers min {fc_min:.2f} %",
        ),
        (
            "The worst fault is in an early layer (0–2; paper: layer 1)",
            int(worst["layer"]) <= 2,
            f"worst fault in layer {int(worst['layer'])}",
        ),
    ]


# ------------------------------------------------------------------------------------------
# FAT Figs. 6 and 7: SAT vs FAT method 1 (§V-A) and method 2 (§V-B)
# ------------------------------------------------------------------------------------------


@dataclass
class MethodFigure:
    """FAT Fig. 6 (``scheme`` FAT method 1) or Fig. 7 (method 2) reproduced: SAT and FAT at each
    of ``p_values`` (percent) on one CNV, each with its channel stuck@ campaign.

    ``summary``: :func:`summary_table` of SAT and the FAT networks; ``per_layer``: their
    :func:`per_layer_of`; ``method1``: for Fig. 7, FAT method 1 at the first p (the networks the
    "method 2 beats method 1" claim compares), else None; ``claims``: the figure's claims."""

    scheme: str
    p_values: list[float]
    sat: FaultEvaluation
    fat: list[FaultEvaluation]
    method1: FaultEvaluation | None
    summary: pd.DataFrame
    per_layer: pd.DataFrame
    claims: list[Claim]

    @property
    def evaluations(self) -> list[FaultEvaluation]:
        """SAT, then FAT at each p: the networks of the figure."""
        return [self.sat] + self.fat

    def error_free(self) -> dict[str, float]:
        """The error-free accuracy of each network of the figure, by label."""
        return error_free_by_label(self.evaluations)


def fat_vs_sat_claims(sat: FaultEvaluation, fat: Sequence[FaultEvaluation]) -> list[Claim]:
    """FAT §V-A/§V-B (Figs. 6, 7): FAT keeps a higher minimum accuracy than SAT at every p, an
    error-free accuracy not below SAT's at the lowest p, and a lower variance under faults."""
    lowest = min(fat, key=lambda e: e.train.config["p"])
    return [
        (
            "FAT's minimum accuracy is above SAT's for every p",
            all(e.minimum > sat.minimum for e in fat),
            ", ".join(f"p={100 * e.train.config['p']:g}%: {e.minimum:.2f}" for e in fat)
            + f" vs SAT {sat.minimum:.2f}",
        ),
        (
            "FAT's error-free accuracy is not below SAT's at the lowest p",
            lowest.error_free >= sat.error_free,
            f"FAT {lowest.error_free:.2f} vs SAT {sat.error_free:.2f}",
        ),
        (
            "FAT lowers the variance of accuracy under faults",
            all(e.variance < sat.variance for e in fat),
            ", ".join(f"{e.variance:.3f}" for e in fat) + f" vs SAT {sat.variance:.3f}",
        ),
    ]


def variance_by_p_claim(fat: Sequence[FaultEvaluation], p_values: Sequence[float]) -> Claim:
    """FAT §V-A (Fig. 6): a higher injection probability gives a lower variance — the first
    network of ``fat`` (at ``p_values[0]`` percent) against the last (at ``p_values[-1]``)."""
    return (
        f"A higher p gives a lower variance (p = {p_values[0]:g} % vs {p_values[-1]:g} %)",
        fat[0].variance <= fat[-1].variance,
        f"variance {fat[0].variance:.3f} vs {fat[-1].variance:.3f}",
    )


def method2_vs_method1_claim(m2: FaultEvaluation, m1: FaultEvaluation, p: float) -> Claim:
    """FAT §V-B (Fig. 7): method 2 (one random injection layer per epoch) keeps at least method
    1's minimum accuracy at the same injection probability ``p`` (percent)."""
    return (
        "Method 2 beats method 1 in minimum accuracy at the same p",
        m2.minimum >= m1.minimum,
        f"p = {p:g} %: method 2 min {m2.minimum:.2f} %, method 1 min {m1.minimum:.2f} %",
    )


def method_figure(
    profile: str | Profile,
    scheme: str,
    p_values: Sequence[float],
    weight_bits: int = 1,
    act_bits: int = 1,
    seed: int = 0,
    data_dir: str | os.PathLike | None = None,
    device: str | torch.device | None = "auto",
) -> MethodFigure:
    """FAT Fig. 6 (``scheme`` = ``FAT_M1``, §V-A) or Fig. 7 (``FAT_M2``, §V-B): CNV
    W\\ *w*\\ A\\ *a* trained with SAT and with FAT (channel injection) at each of ``p_values``
    (percent), each evaluated with the channel stuck@ campaign (:func:`evaluate_cnv`). The claims
    are :func:`fat_vs_sat_claims` plus, for Fig. 6, :func:`variance_by_p_claim` and, for Fig. 7,
    :func:`method2_vs_method1_claim` at the first p (FAT method 1 trained there too)."""
    if scheme not in (FAT_M1, FAT_M2):
        raise ValueError(f"scheme={scheme!r}: Fig. 6 is {FAT_M1!r}, Fig. 7 is {FAT_M2!r}")
    p_values = list(p_values)
    kw = {"seed": seed, "data_dir": data_dir, "device": device}
    sat = evaluate_cnv(profile, weight_bits, act_bits, **kw)
    fat = [
        evaluate_cnv(profile, weight_bits, act_bits, scheme=scheme, pattern=CHANNEL, p=p / 100, **kw)
        for p in p_values
    ]
    claims = fat_vs_sat_claims(sat, fat)
    method1 = None
    if scheme == FAT_M1:
        claims.append(variance_by_p_claim(fat, p_values))
    else:
        method1 = evaluate_cnv(
            profile, weight_bits, act_bits, scheme=FAT_M1, pattern=CHANNEL, p=p_values[0] / 100, **kw
        )
        claims.append(method2_vs_method1_claim(fat[0], method1, p_values[0]))
    return MethodFigure(
        scheme=scheme,
        p_values=p_values,
        sat=sat,
        fat=fat,
        method1=method1,
        summary=summary_table([sat] + fat),
        per_layer=per_layer_of([sat] + fat),
        claims=claims,
    )


# ------------------------------------------------------------------------------------------
# FAT Tables II–IV: the summary tables, row by row
# ------------------------------------------------------------------------------------------


def data_missing(
    dataset: str, data_dir: str | os.PathLike | None = None, profile: str | Profile | None = None
) -> str | None:
    """Why ``dataset`` cannot be used here (the reason for a "not run" row), or None — by the rule
    of :func:`fatlib.core.data.profile_dataset`: under a profile that allows synthetic stand-ins
    (smoke) a known dataset is never missing when no data folder was named (``data_dir`` None or
    ``""``); ``data_dir="synthetic"`` asks for stand-ins at any profile.

    Bad input raises instead of giving a reason: a named data folder that does not exist
    (:class:`fatlib.core.data.DataDirNotFound`, a FileNotFoundError) and an unknown dataset name
    (:class:`fatlib.core.data.UnknownDataset`, a ValueError)."""
    from fatlib.core.data import (
        DATASETS,
        DataDirNotFound,
        UnknownDataset,
        asks_synthetic,
        check_known_dataset,
        named_data_dir,
    )

    if asks_synthetic(data_dir):
        check_known_dataset(dataset)
        return None
    named_data_dir(data_dir, looking_for=f"{dataset}.npz")  # a typo raises here
    unnamed = data_dir is None or str(data_dir) == ""
    if profile is not None and get_profile(profile).allow_synthetic and dataset in DATASETS and unnamed:
        return None
    try:
        load_dataset(dataset, "test", data_dir=data_dir, download=False)
    except (DataDirNotFound, UnknownDataset):
        raise
    except FileNotFoundError as err:
        reason = err.reason if isinstance(err, DatasetNotFound) else str(err)
        return f"{dataset} not found ({reason})"
    return None


#: the columns of each FAT summary table that this book reproduces: group -> training scheme
#: (``"fat"``: the FAT method :func:`reproduce_table` is given)
TABLE_GROUPS: dict[str, dict[str, str]] = {
    "fat_table2": {"sat": SAT, "fat": "fat"},
    "fat_table3": {"fat": "fat", "d2d": DROPOUT2D},
    "fat_table4": {"sat": SAT, "fat": "fat", "d2d": DROPOUT2D},
}


def reproduce_table(
    name: str,
    profile: str | Profile,
    fat_scheme: str = FAT_M2,
    campaign_pattern: str = CHANNEL,
    seed: int = 0,
    data_dir: str | os.PathLike | None = None,
    device: str | torch.device | None = "auto",
) -> pd.DataFrame:
    """Reproduce a FAT summary table (II, III or IV) row by row: for each of the paper's rows,
    train the networks its column groups name (SAT; FAT with ``fat_scheme`` at the row's p,
    trained with ``campaign_pattern`` injection; Dropout2D at the row's p), run the campaign and
    return a tidy table — one row per (paper row, group, quantity) with ``paper``, ``ours``,
    ``difference`` and ``status`` ("ok" or "not run: <reason>"). Rows whose data is absent keep the
    paper's numbers and say why; no number is invented."""
    if name not in TABLE_GROUPS:
        raise ValueError(f"table {name!r}: use one of {sorted(TABLE_GROUPS)}")
    from fatlib.core.paper import FATLIB_DATASET, paper_table

    prof = get_profile(profile)
    table = paper_table(name)
    out = []
    for idx, row in table.iterrows():
        dataset = FATLIB_DATASET.get(row["dataset"], str(row["dataset"]).lower())
        dorefa = str(row["network"]) == DOREFA_PAPER_ROW[0]
        if dorefa:  # FAT Table II's last row: the Fig. 8 networks (same cache as that page)
            reason = (
                imagenet_source(prof, data_dir=data_dir).reason
                if campaign_pattern == CHANNEL
                else f"DoReFa-Net is evaluated under channel stuck@ only (asked: {campaign_pattern})"
            )
        elif not str(row["network"]).startswith("CNV"):
            reason = f"{row['network']} on {row['dataset']}: no such network in fatlib"
        else:
            reason = data_missing(dataset, data_dir, prof)
        w, a = parse_networks(str(row["network"]))[0] if reason is None and not dorefa else (None, None)
        for group, scheme in TABLE_GROUPS[name].items():
            cols = [c for c in table.columns if c.startswith(group + "_") and not c.endswith("_p")]
            if all(pd.isna(row[c]) for c in cols):
                continue  # the paper has no such entry in this row
            p = float(row[f"{group}_p"]) / 100 if f"{group}_p" in table.columns else 0.0
            ev = None
            if reason is None:
                kw = {"scheme": SAT}
                if scheme == "fat":
                    kw = {"scheme": fat_scheme, "pattern": campaign_pattern, "p": p}
                elif scheme == DROPOUT2D:
                    kw = {"scheme": DROPOUT2D, "p": p}
                if dorefa:
                    ev = evaluate_dorefa(
                        prof,
                        scheme=kw["scheme"],
                        p=kw.get("p", 0.0),
                        seed=seed,
                        data_dir=data_dir,
                        device=device,
                    )
                else:
                    ev = evaluate_cnv(
                        prof,
                        w,
                        a,
                        dataset=dataset,
                        campaign_pattern=campaign_pattern,
                        seed=seed,
                        data_dir=data_dir,
                        device=device,
                        **kw,
                    )
            for col in cols:
                quantity = col[len(group) + 1 :]
                ours = None
                if ev is not None:
                    ours = {"error_free": ev.error_free, "min": ev.minimum, "variance": ev.variance}[quantity]
                out.append(
                    {
                        "row": idx,
                        "network": row["network"],
                        "dataset": row["dataset"],
                        "group": group,
                        "p": 100 * p,
                        "quantity": quantity,
                        "paper": row[col],
                        "ours": ours,
                        "status": "ok" if ev is not None else f"not run: {reason}",
                        "profile": prof.name,
                    }
                )
    df = pd.DataFrame(out)
    df["ours"] = pd.to_numeric(df["ours"])
    df["difference"] = df["ours"] - pd.to_numeric(df["paper"])
    return df


def wide(table: pd.DataFrame) -> pd.DataFrame:
    """A :func:`reproduce_table` result laid out like the paper: one row per paper row, columns
    ``group quantity (paper | ours)``."""
    t = table.copy()
    t["column"] = t["group"] + " " + t["quantity"]
    w = t.set_index(["row", "network", "dataset", "column"])[["paper", "ours"]].unstack("column")
    w.columns = [f"{col} ({src})" for src, col in w.columns]
    ordered = [f"{c} ({s})" for c in dict.fromkeys(t["column"]) for s in ("paper", "ours")]
    w = w[[c for c in ordered if c in w.columns]]
    status = t.groupby("row")["status"].first()
    probs = t[t["group"] != "sat"].groupby(["row", "group"])["p"].first().unstack("group")
    w = w.reset_index()
    for k, group in enumerate(probs.columns):
        w.insert(3 + k, f"{group} p [%]", w["row"].map(probs[group]))
    w["status"] = w["row"].map(status)
    return w.drop(columns="row")


def table_claim(
    long: pd.DataFrame, claim: str, group_a: str, quantity_a: str, op: str, group_b: str, quantity_b: str
) -> Claim:
    """Evaluate a claim comparing two column groups of a :func:`reproduce_table` result over
    every row that ran: ``op`` is ``">"``, ``">="``, ``"<"`` (for every row), ``"most>"`` (in more
    than half the rows) or ``"~"`` (mean absolute difference within 1 pp). Returns
    ``(claim, holds, evidence)`` for :func:`fatlib.core.paper.claims_table`."""
    ran = long[long["status"] == "ok"]
    a = ran[(ran.group == group_a) & (ran.quantity == quantity_a)].set_index("row")["ours"]
    b = ran[(ran.group == group_b) & (ran.quantity == quantity_b)].set_index("row")["ours"]
    rows = a.index.intersection(b.index)
    if len(rows) == 0:
        return claim, False, "no row ran for both columns"
    a, b = a.loc[rows], b.loc[rows]
    names = ran.drop_duplicates("row").set_index("row").loc[rows, "network"]
    evidence = "; ".join(f"{n}: {x:.2f} vs {y:.2f}" for n, x, y in zip(names, a, b))
    if op == ">":
        holds = bool((a > b).all())
    elif op == ">=":
        holds = bool((a >= b).all())
    elif op == "<":
        holds = bool((a < b).all())
    elif op == "most>":
        holds = bool((a > b).sum() > len(rows) / 2)
    elif op == "~":
        holds = bool((a - b).abs().mean() <= 1.0)
    else:
        raise ValueError(f"op={op!r}: use '>', '>=', '<', 'most>' or '~'")
    return claim, holds, evidence


# ------------------------------------------------------------------------------------------
# FAT Table II: SAT vs FAT under channel stuck@ (§V-A, §V-B)
# ------------------------------------------------------------------------------------------


def table2_claims(long: pd.DataFrame) -> list[Claim]:
    """FAT Table II (§V-B: "minimum and error-free accuracies observed with FAT were better than
    SAT"), on every row of ``long`` (:func:`reproduce_table` ``("fat_table2")``) that ran: FAT's
    minimum above SAT's, its error-free accuracy not below, its variance below."""
    return [
        table_claim(long, *c)
        for c in [
            ("FAT's minimum accuracy is above SAT's (every network run)", "fat", "min", ">", "sat", "min"),
            (
                "FAT's error-free accuracy is not below SAT's (every network run)",
                "fat",
                "error_free",
                ">=",
                "sat",
                "error_free",
            ),
            ("FAT's variance is below SAT's (every network run)", "fat", "variance", "<", "sat", "variance"),
        ]
    ]


# ------------------------------------------------------------------------------------------
# FAT Table III and Fig. 10: FAT vs Dropout2D under channel stuck@ (§V-D)
# ------------------------------------------------------------------------------------------


def table3_claims(long: pd.DataFrame) -> list[Claim]:
    """FAT Table III (§V-D), on every row of ``long`` (:func:`reproduce_table`
    ``("fat_table3")``) that ran: Dropout2D's error-free accuracy close to FAT's, and its minimum
    accuracy above FAT's in most networks (paper: 4 of 5)."""
    return [
        table_claim(long, *c)
        for c in [
            (
                "Dropout2D's error-free accuracy is close to FAT's (within 1 pp on average)",
                "d2d",
                "error_free",
                "~",
                "fat",
                "error_free",
            ),
            (
                "Dropout2D's minimum accuracy beats FAT's in most networks (paper: 4 of 5)",
                "d2d",
                "min",
                "most>",
                "fat",
                "min",
            ),
        ]
    ]


def figure10(
    profile: str | Profile,
    fat_scheme: str = FAT_M2,
    seed: int = 0,
    data_dir: str | os.PathLike | None = None,
    device: str | torch.device | None = "auto",
) -> list[FaultEvaluation]:
    """FAT Fig. 10 (§V-D): CNVW1A1 trained with FAT (``fat_scheme``, channel injection, p = 5 %)
    and with Dropout2D at 5 % and 2.5 %, each with its channel stuck@ campaign."""
    kw = {"seed": seed, "data_dir": data_dir, "device": device}
    return [
        evaluate_cnv(profile, 1, 1, scheme=fat_scheme, pattern=CHANNEL, p=0.05, **kw),
        evaluate_cnv(profile, 1, 1, scheme=DROPOUT2D, p=0.05, **kw),
        evaluate_cnv(profile, 1, 1, scheme=DROPOUT2D, p=0.025, **kw),
    ]


# ------------------------------------------------------------------------------------------
# FAT Table IV: SAT vs FAT vs Dropout2D under same-pixel stuck@ (§V-D)
# ------------------------------------------------------------------------------------------


def table4_claims(long: pd.DataFrame) -> list[Claim]:
    """FAT Table IV (§V-D), on every row of ``long`` (:func:`reproduce_table` ``("fat_table4",
    campaign_pattern="pixel")``) that ran: FAT's minimum accuracy above SAT's and above
    Dropout2D's under same-pixel stuck@."""
    return [
        table_claim(long, *c)
        for c in [
            ("FAT's minimum accuracy is above SAT's under pixel stuck@", "fat", "min", ">", "sat", "min"),
            ("FAT beats Dropout2D under pixel stuck@ (minimum accuracy)", "fat", "min", ">", "d2d", "min"),
        ]
    ]


# ------------------------------------------------------------------------------------------
# FAT Fig. 9: selective channel triplication (§V-C)
# ------------------------------------------------------------------------------------------


def selective_tmr(
    profile: str | Profile,
    networks: list[tuple[int, int]],
    fat_scheme: str = FAT_M2,
    fat_p: float = 0.05,
    voter_cost: float = 1.0,
    seed: int = 0,
    data_dir: str | os.PathLike | None = None,
    device: str | torch.device | None = "auto",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """FAT Fig. 9: for each network, SAT and FAT, the triplication frontier
    (:func:`fatlib.fat.replication.tmr_frontier`) from its channel stuck@ campaign. Returns
    ``(frontiers, summary)``: all frontier rows with ``model``, ``network``, ``training``; and per
    model the error-free accuracy and the unprotected worst-case error."""
    from fatlib.fat.replication import channel_macs, tmr_frontier

    frontiers, summary = [], []
    for w, a in networks:
        for scheme in (SAT, fat_scheme):
            fat = scheme != SAT
            ev = evaluate_cnv(
                profile, w, a, **training_args(scheme, fat_p), seed=seed, data_dir=data_dir, device=device
            )
            front = tmr_frontier(
                ev.campaign, channel_macs(ev.train.model), voter_cost=voter_cost, error_free=ev.error_free
            )
            training = "FAT" if fat else "SAT"
            frontiers.append(front.assign(model=ev.label, network=ev.network, training=training))
            summary.append(
                {
                    "model": ev.label,
                    "network": ev.network,
                    "training": training,
                    "error_free": ev.error_free,
                    "worst_error": 100 - ev.minimum,
                }
            )
    return pd.concat(frontiers, ignore_index=True), pd.DataFrame(summary)


def channels_needed_table(
    frontiers: pd.DataFrame, summary: pd.DataFrame, target_error: float
) -> pd.DataFrame:
    """How many channels each model must triplicate (and at what normalized cost) to reach
    ``target_error`` (the paper's 13.84 %) and to reach the FAT network's unprotected worst-case
    error (the comparison that carries over to other scales)."""
    from fatlib.fat.replication import channels_needed

    rows = []
    for (network, training), front in frontiers.groupby(["network", "training"], sort=False):
        fat_level = float(
            summary[(summary.network == network) & (summary.training == "FAT")]["worst_error"].iloc[0]
        )
        for target, label in ((target_error, "paper's target"), (fat_level, "FAT unprotected")):
            need = channels_needed(front, target)
            rows.append(
                {
                    "network": network,
                    "training": training,
                    "target": label,
                    "target_error": target,
                    "channels": need["channels"],
                    "cost": need["cost"],
                }
            )
    return pd.DataFrame(rows)


def sat_matching_fat(needed: pd.DataFrame) -> pd.DataFrame:
    """The rows of :func:`channels_needed_table` that say what SAT must triplicate to reach each
    FAT network's unprotected worst-case error (one per network, index from 0)."""
    return needed[(needed.training == "SAT") & (needed.target == "FAT unprotected")].reset_index(drop=True)


def fig09_claims(needed: pd.DataFrame) -> list[Claim]:
    """FAT §V-C (Fig. 9), per network of ``needed`` (:func:`channels_needed_table`): SAT must
    triplicate channels to match what FAT gives unprotected (``nan`` channels, a level SAT never
    reaches, counts as holding)."""
    return [
        (
            f"{r.network}: SAT must triplicate channels to match FAT's unprotected worst case",
            bool(r.channels != 0),
            f"SAT needs {r.channels} channels (cost {r.cost:.3f}) to reach {r.target_error:.2f} % "
            "worst-case error",
        )
        for r in sat_matching_fat(needed).itertuples()
    ]


# ------------------------------------------------------------------------------------------
# DoReFa-Net on ImageNet (FAT Table II last row, Fig. 8)
# ------------------------------------------------------------------------------------------


class DataMissing(FileNotFoundError):
    """The data an experiment needs is not here; ``str(err)`` is the reason a page shows."""


@dataclass
class ImageNetSource:
    """Where DoReFa-Net's data comes from: ImageNet (``synthetic`` False), a synthetic
    ImageFolder stand-in (smoke profile only), or nowhere (``root`` None, ``reason`` says why)."""

    root: Path | None
    synthetic: bool
    expected: Path
    reason: str | None = None

    @property
    def runs(self) -> bool:
        """Whether there is data to run on (ImageNet or the smoke profile's stand-in)."""
        return self.root is not None

    @property
    def dataset(self) -> str:
        """The dataset name the trained networks and campaigns are stored under."""
        return "synthetic-imagefolder" if self.synthetic else "imagenet"

    @property
    def status(self) -> str:
        """``"ok"``, or ``"not run: <reason>"`` — the status column of the pages' tables."""
        return "ok" if self.runs else f"not run: {self.reason}"

    def describe(self) -> str:
        """One line for the page: what data the numbers come from."""
        if self.root is None:
            return self.status
        if self.synthetic:
            return (
                f"a tiny synthetic ImageFolder at {self.root} stands in for ImageNet (not found at "
                f"{self.expected}; allowed at this profile only) — its numbers say nothing about "
                "ImageNet"
            )
        return f"ImageNet (ImageFolder) from {self.root}"


def imagenet_source(
    profile: str | Profile,
    data_dir: str | os.PathLike | None = None,
    imagenet_dir: str | os.PathLike | None = None,
) -> ImageNetSource:
    """Find ImageNet as an ImageFolder tree (``train/``, ``val/``): at ``imagenet_dir`` when
    given, else the first of :func:`fatlib.core.data.imagenet_candidates` (``<data_dir>/imagenet``,
    ``$FATLIB_DATA/imagenet``, the cache). When absent, a profile that allows synthetic data
    (smoke) gets a tiny synthetic ImageFolder written under the artifact store — only when no
    folder was named, as in :func:`fatlib.core.data.profile_dataset` (``data_dir`` and
    ``imagenet_dir`` empty, ``$FATLIB_DATA`` unset or an existing folder); ``data_dir="synthetic"``
    asks for it at any profile. Otherwise ``reason`` ("ImageNet not found at ...") and ``runs``
    False: a mistyped folder is never replaced by synthetic data."""
    from fatlib.core.data import (
        SyntheticDataWarning,
        asks_synthetic,
        imagefolder_missing,
        make_synthetic_imagefolder,
    )
    from fatlib.core.data import imagenet_dir as find_imagenet
    from fatlib.core.store import default_store_dir

    prof = get_profile(profile)
    asked = asks_synthetic(data_dir) and not imagenet_dir
    if asked:
        expected, why = find_imagenet(None), f"synthetic data asked for with data_dir={data_dir!r}"
    else:
        expected = Path(imagenet_dir).expanduser() if imagenet_dir else find_imagenet(data_dir)
        why = imagefolder_missing(expected)
        if why is None:
            return ImageNetSource(expected, False, expected)
    env = os.environ.get("FATLIB_DATA")
    unnamed = (
        not imagenet_dir
        and (data_dir is None or str(data_dir) == "")
        and (not env or Path(env).expanduser().is_dir())
    )
    if asked or (prof.allow_synthetic and unnamed):
        c, n, v = (
            prof.dorefa_synthetic_classes,
            prof.dorefa_synthetic_per_class,
            prof.dorefa_synthetic_val_per_class,
        )
        size = max(prof.dorefa_image_size, int(prof.dorefa_image_size * 256 / 224) + 1)
        root = default_store_dir() / "data" / f"synthetic-imagefolder-c{c}-n{n}-v{v}-s{size}"
        make_synthetic_imagefolder(root, num_classes=c, per_class=n, val_per_class=v, image_size=size)
        warnings.warn(
            f"ImageNet: using a synthetic ImageFolder stand-in at {root} ({why}; looked for "
            f"ImageNet at {expected}); its numbers say nothing about ImageNet",
            SyntheticDataWarning,
            stacklevel=2,
        )
        return ImageNetSource(root, True, expected)
    return ImageNetSource(
        None,
        False,
        expected,
        reason=f"ImageNet not found at {expected} ({why}); put ImageFolder train/ and "
        "val/ there or pass IMAGENET_DIR",
    )


def _loader_workers(n_items: int) -> int:
    return 0 if n_items < 5000 else max(0, min(8, (os.cpu_count() or 1) - 1))


def evaluate_dorefa(
    profile: str | Profile,
    scheme: str = SAT,
    p: float = 0.0,
    seed: int = 0,
    data_dir: str | os.PathLike | None = None,
    imagenet_dir: str | os.PathLike | None = None,
    device: str | torch.device | None = "auto",
    progress: bool = False,
) -> FaultEvaluation:
    """Train (or reuse) DoReFa-Net's AlexNet W1A2 with ``scheme`` (``"sat"``, ``"fat-m2"`` —
    FAT method 2 with channel injection, as in FAT Fig. 8 — ``"fat-m1"`` or ``"dropout2d"``) at
    ``profile``'s sizes on ImageNet and run the single channel stuck@ campaign on the profile's
    validation subset: exhaustive, or ``profile.dorefa_campaign_faults`` sampled faults (an
    exhaustive campaign needs one pass over the validation images per fault; the campaign's
    ``attrs["campaign"]`` has ``sample`` and ``population_size``). The campaign is stored beside
    the trained artifact and resumed or reused on a re-run.

    ImageNet is found as :func:`imagenet_source` says; where it is absent the smoke profile runs
    on a synthetic ImageFolder and every other profile raises :class:`DataMissing` with the reason."""
    from fatlib.core.data import imagefolder_dataset
    from fatlib.core.training import dorefa_config, train
    from fatlib.fat.campaign import enumerate_faults, stuck_at_campaign

    prof = get_profile(profile)
    src = imagenet_source(prof, data_dir=data_dir, imagenet_dir=imagenet_dir)
    if not src.runs:
        raise DataMissing(src.reason)
    size = prof.dorefa_image_size
    train_ds = imagefolder_dataset(
        src.root, "train", size, True, limit=prof.dorefa_train_size, seed=seed, name=src.dataset
    )
    train_ds.workers = _loader_workers(len(train_ds))
    test_ds = imagefolder_dataset(
        src.root, "val", size, False, limit=prof.dorefa_test_size, seed=seed, name=src.dataset
    )
    test_ds.workers = _loader_workers(len(test_ds))
    config = dorefa_config(
        prof, scheme=scheme, p=p, seed=seed, num_classes=train_ds.num_classes, dataset=src.dataset
    )
    trained = train(config, train_ds, test_ds, device=device, progress=progress, profile=prof.name)
    sample = prof.dorefa_campaign_faults
    if sample is not None and sample >= len(enumerate_faults(trained.model, image_shape=(3, size, size))):
        sample = None
    fp = data_fingerprint(test_ds).split(":")[-1]
    folder = Path(trained.path) / f"campaign-channel-{fp}-{sample or 'all'}-s{seed}"
    campaign = stuck_at_campaign(
        trained.model,
        test_ds,
        pattern=CHANNEL,
        store=folder,
        sample=sample,
        seed=seed,
        progress=progress,
        device=device if device != "auto" else None,
    )
    error_free = float(campaign.attrs["campaign"]["error_free"])
    network = DOREFA_PAPER_ROW[0]
    return FaultEvaluation(
        label=scheme_label(network, scheme, trained.config["p"]),
        network=network,
        dataset=src.dataset,
        train=trained,
        campaign=campaign,
        error_free=error_free,
        campaign_pattern=CHANNEL,
        profile=prof.name,
    )


@dataclass
class DoReFaFigure8:
    """FAT Fig. 8 (and Table II's DoReFa-Net row) reproduced, or the reason it was not run.

    ``summary``: one row per network (SAT, FAT at each p) with error-free / min / variance,
    faults evaluated and the fault population; ``per_layer``: per network, layer and value the
    min / max / mean accuracy; ``table2``: the paper's Table II row beside ours
    (``paper.side_by_side``); ``claims``: ``(claim, holds or None when not run, evidence)``."""

    source: ImageNetSource
    profile: str
    p_values: list[float]
    evaluations: list[FaultEvaluation]
    summary: pd.DataFrame
    per_layer: pd.DataFrame
    table2: pd.DataFrame
    claims: list[tuple[str, bool | None, str]]

    @property
    def status(self) -> str:
        """``"ok"``, or ``"not run: <reason>"`` (:attr:`ImageNetSource.status`)."""
        return self.source.status

    @property
    def sat(self) -> FaultEvaluation | None:
        """The SAT network, or None when not run."""
        return self.evaluations[0] if self.evaluations else None

    @property
    def fat(self) -> list[FaultEvaluation]:
        """The FAT networks, one per p (empty when not run)."""
        return self.evaluations[1:]

    def error_free(self) -> dict[str, float]:
        """The error-free accuracy of each network, by label (empty when not run)."""
        return error_free_by_label(self.evaluations)

    def campaign_line(self) -> str:
        """One line for the page: how many faults each campaign evaluated."""
        if not self.evaluations:
            return self.status
        meta = self.evaluations[0].campaign.attrs["campaign"]
        n, pop, images = int(meta["n_faults"]), int(meta["population_size"]), int(meta["n_images"])
        if meta.get("sample") is None:
            k = len(next(iter(meta["levels"].values())))
            return (
                f"exhaustive: all {pop:,} single channel stuck@ faults (every channel of the "
                f"{len(meta['layers'])} activation sites at each of {k} levels) on {images:,} "
                "validation images per network"
            )
        return (
            f"{n:,} of the {pop:,} single channel stuck@ faults sampled uniformly (seed "
            f"{meta['seed']}) on {images:,} validation images per network — the minimum is over the "
            "sampled faults only (an upper bound of the true minimum)"
        )


#: FAT Table II's DoReFa-Net row: network and dataset as the paper spells them
DOREFA_PAPER_ROW = ("DoReFa-Net", PAPER_DATASET["imagenet"])


def dorefa_figure8(
    profile: str | Profile,
    p_values: list[float],
    seed: int = 0,
    data_dir: str | os.PathLike | None = None,
    imagenet_dir: str | os.PathLike | None = None,
    device: str | torch.device | None = "auto",
) -> DoReFaFigure8:
    """FAT Fig. 8: DoReFa-Net trained with SAT and with FAT method 2 (channel injection) at each
    ``p_values`` (percent; the paper: 5 and 2.5), each evaluated with the single channel stuck@
    campaign (:func:`evaluate_dorefa`); Table II's row (FAT at p = 2.5 %) beside ours. Where
    ImageNet is absent (and the profile does not allow the synthetic stand-in) nothing is
    trained: every table keeps the paper's numbers and says "not run: <reason>"."""
    from fatlib.core.paper import fat_row, side_by_side

    prof = get_profile(profile)
    src = imagenet_source(prof, data_dir=data_dir, imagenet_dir=imagenet_dir)
    row = fat_row(*DOREFA_PAPER_ROW, table="fat_table2")
    paper_p = float(row["fat_p"])
    evals: list[FaultEvaluation] = []
    if src.runs:
        kw = {"seed": seed, "data_dir": data_dir, "imagenet_dir": imagenet_dir, "device": device}
        evals.append(evaluate_dorefa(prof, SAT, **kw))
        evals += [evaluate_dorefa(prof, FAT_M2, p=p / 100, **kw) for p in p_values]
    status = src.status
    cols = ["model", "scheme", "p", "error_free", "min", "variance", "faults", "population", "status"]
    if evals:
        summary = summary_table(evals)
        summary["population"] = [int(e.campaign.attrs["campaign"]["population_size"]) for e in evals]
        summary["status"] = status
        summary = summary[cols + ["dataset", "profile"]]
        per_layer = per_layer_of(evals)
    else:
        network = DOREFA_PAPER_ROW[0]
        summary = pd.DataFrame(
            [{"model": scheme_label(network, SAT), "scheme": SAT, "p": 0.0}]
            + [{"model": scheme_label(network, FAT_M2, p / 100), "scheme": FAT_M2, "p": p} for p in p_values]
        ).reindex(columns=cols)
        summary["status"] = status
        per_layer = pd.DataFrame(columns=PER_LAYER_COLUMNS)
    sat = evals[0] if evals else None
    fat = evals[1:]
    at_paper_p = next(
        (e for e in fat if abs(100 * e.train.config["p"] - paper_p) < 1e-9), fat[0] if fat else None
    )
    rows = []
    for group, ev in (("sat", sat), ("fat", at_paper_p)):
        for q, attr in (("error_free", "error_free"), ("min", "minimum"), ("variance", "variance")):
            rows.append(
                {
                    "quantity": f"{group.upper()} {q.replace('_', '-')}",
                    "paper": float(row[f"{group}_{q}"]),
                    "ours": getattr(ev, attr) if ev is not None else None,
                }
            )
    rows.append(
        {
            "quantity": "FAT p [%]",
            "paper": paper_p,
            "ours": 100 * at_paper_p.train.config["p"] if at_paper_p is not None else None,
        }
    )
    rows.append(
        {
            "quantity": "Ref. error-free (DoReFa-Net paper)",
            "paper": float(row["ref_error_free"]),
            "ours": None,
        }
    )
    table2 = side_by_side(rows, prof.name)
    table2["status"] = status

    paper_evidence = (
        f"paper: SAT min {row['sat_min']:.2f}, error-free {row['sat_error_free']:.2f}, "
        f"variance {row['sat_variance']:.2f}; FAT (p={paper_p:g}%) min {row['fat_min']:.2f}, "
        f"error-free {row['fat_error_free']:.2f}, variance {row['fat_variance']:.2f}"
    )
    claims: list[tuple[str, bool | None, str]] = []
    for claim, attr, holds, fmt in (
        ("FAT's minimum accuracy is above SAT's", "minimum", operator.gt, ".2f"),
        ("FAT's error-free accuracy is not below SAT's", "error_free", operator.ge, ".2f"),
        ("FAT lowers the variance", "variance", operator.lt, ".3f"),
    ):
        if sat is None:
            claims.append((claim, None, paper_evidence))
            continue
        ours = ", ".join(f"p={100 * e.train.config['p']:g}%: {getattr(e, attr):{fmt}}" for e in fat)
        claims.append(
            (
                claim,
                all(holds(getattr(e, attr), getattr(sat, attr)) for e in fat),
                f"{ours} vs SAT {getattr(sat, attr):{fmt}}",
            )
        )
    return DoReFaFigure8(
        source=src,
        profile=prof.name,
        p_values=list(p_values),
        evaluations=evals,
        summary=summary,
        per_layer=per_layer,
        table2=table2,
        claims=claims,
    )


def training_args(scheme: str, p: float) -> dict[str, object]:
    """``scheme``, ``pattern`` and ``p`` for :func:`~fatlib.core.training.train_cnv` /
    :func:`evaluate_cnv`: FAT's methods inject with the channel pattern (FAT §V-A, §V-B) at ``p``,
    Dropout2D drops at ``p`` without a pattern, SAT has neither."""
    if scheme == SAT:
        return {"scheme": SAT, "pattern": None, "p": 0.0}
    return {"scheme": scheme, "pattern": CHANNEL if scheme in (FAT_M1, FAT_M2) else None, "p": p}


# ------------------------------------------------------------------------------------------
# From the book to the FPGA: QONNX export for FINN (beyond the paper; FAT §V deploys on a ZCU104)
# ------------------------------------------------------------------------------------------


@dataclass
class ExportCheck:
    """A trained CNV exported as QONNX (:func:`fatlib.fat.export.to_qonnx`) and checked against
    itself: predictions on test images, and single stuck@ faults replayed in the graph."""

    label: str
    path: Path
    nodes: pd.DataFrame
    quantizers: pd.DataFrame
    images: int
    same_predictions: float
    max_logit_difference: float
    faults: pd.DataFrame
    profile: str

    @property
    def faults_agreeing(self) -> int:
        """Faults whose accuracy in the graph equals the campaign engine's, image for image count."""
        return int(self.faults["agree"].sum())

    def __repr__(self) -> str:
        return (
            f"ExportCheck({self.label!r}, images={self.images}, "
            f"same_predictions={self.same_predictions:.3f}, "
            f"faults={self.faults_agreeing}/{len(self.faults)} agree, profile={self.profile!r})"
        )


def export_check(
    profile: str | Profile,
    weight_bits: int,
    act_bits: int,
    output_dir: str | os.PathLike,
    scheme: str = FAT_M2,
    p: float = 0.05,
    seed: int = 0,
    data_dir: str | os.PathLike | None = None,
    device: str | torch.device | None = "auto",
) -> ExportCheck:
    """Train (or reuse) CNV W\\ *w*\\ A\\ *a* with ``scheme`` (FAT with channel injection at ``p``,
    or SAT), export it to ``output_dir`` as QONNX, and check the graph: top-1 predictions and
    logits against the torch model on ``profile.export_images`` test images, and
    ``profile.export_faults`` sampled channel and same-pixel stuck@ faults per pattern (every site
    represented) executed in the graph against :func:`fatlib.fat.campaign.stuck_at_campaign` on
    the same images, fault for fault."""
    from fatlib.fat import export
    from fatlib.fat.campaign import enumerate_faults, stuck_at_campaign

    prof = get_profile(profile)
    args = training_args(scheme, p)
    trained = train_cnv(prof, weight_bits, act_bits, **args, seed=seed, data_dir=data_dir, device=device)
    model = trained.model.cpu().eval()
    test = subset(
        profile_dataset("cifar10", "test", prof, data_dir=data_dir, seed=seed), prof.export_images, seed
    )
    images, labels = test.images.float().div(255.0), test.labels
    network = f"CNVW{weight_bits}A{act_bits}"
    label = scheme_label(network, **args)
    batch = min(100, len(images))
    path = export.to_qonnx(
        model, Path(output_dir) / f"{network}-{scheme}.onnx", input_shape=(batch, 3, 32, 32)
    )
    graph = export.load_graph(path)
    graph_logits = export.execute(graph, images)
    with torch.no_grad():
        torch_logits = model(images).numpy()
    frames = []
    for pattern in (CHANNEL, PIXEL):
        chosen = export.sample_faults(enumerate_faults(model, pattern), prof.export_faults, seed=seed)
        engine = stuck_at_campaign(model, (images, labels), pattern=pattern, faults=chosen, progress=False)
        replayed = export.graph_campaign(graph, images, labels, engine)
        frames.append(
            engine.assign(
                pattern=pattern,
                graph_correct=replayed["correct"].to_numpy(),
                graph_accuracy=replayed["accuracy"].to_numpy(),
                agree=replayed["correct"].to_numpy() == engine["correct"].to_numpy(),
            )
        )
    faults = pd.concat(frames, ignore_index=True)
    order = [
        "pattern",
        "layer",
        "channel",
        "row",
        "col",
        "value",
        "correct",
        "graph_correct",
        "accuracy",
        "graph_accuracy",
        "agree",
    ]
    faults = faults[[c for c in order if c in faults.columns]]
    return ExportCheck(
        label=label,
        path=path,
        nodes=export.graph_summary(graph),
        quantizers=export.quantizers(graph),
        images=len(images),
        same_predictions=float((graph_logits.argmax(1) == torch_logits.argmax(1)).mean()),
        max_logit_difference=float(abs(graph_logits - torch_logits).max()),
        faults=faults,
        profile=prof.name,
    )
