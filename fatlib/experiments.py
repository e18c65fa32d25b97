"""FAT's experiments as one call each: train a CNV with a scheme, then run the stuck-at campaign
on it (FAT §V, Tables I–IV, Figs. 3, 6, 7, 9, 10); DoReFa-Net on ImageNet likewise (Fig. 8).
Trained networks come from the artifact store and campaigns are cached (and resumable) beside
them, so a notebook re-run costs nothing.
"""
from __future__ import annotations

import operator
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from .data import load_dataset, profile_dataset, subset
from .profiles import Profile, get_profile
from .training import TrainResult, data_fingerprint, train_cnv

__all__ = ["FaultEvaluation", "evaluate_cnv", "data_missing", "table_row", "parse_list",
           "parse_networks", "per_layer_table", "reproduce_table", "wide", "TABLE_GROUPS",
           "table_claim", "selective_tmr", "channels_needed_table", "DataMissing", "ImageNetSource",
           "imagenet_source", "evaluate_dorefa", "DoReFaFigure8", "dorefa_figure8"]


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
        return int(len(self.campaign))

    def per_layer(self) -> pd.DataFrame:
        """Per layer and stuck@ value: min / max / mean accuracy (FAT Table I), with the network."""
        g = self.campaign.groupby(["layer", "value"])["accuracy"]
        out = g.agg(["min", "max", "mean", "count"]).reset_index()
        out.insert(0, "network", self.label)
        out["error_free"] = self.error_free
        return out

    def __repr__(self) -> str:
        return (f"FaultEvaluation({self.label!r}, error_free={self.error_free:.2f}, "
                f"min={self.minimum:.2f}, variance={self.variance:.3f}, faults={self.faults}, "
                f"pattern={self.campaign_pattern!r}, profile={self.profile!r})")


def data_missing(dataset: str, data_dir: str | os.PathLike | None = None,
                 profile: str | Profile | None = None) -> str | None:
    """Why ``dataset`` cannot be used here (the reason for a "not run" row), or None. Under a
    profile that allows synthetic stand-ins (smoke) a known dataset is never missing."""
    from .data import DATASETS

    if profile is not None and get_profile(profile).allow_synthetic and dataset in DATASETS:
        return None
    try:
        load_dataset(dataset, "test", data_dir=data_dir, download=False)
    except FileNotFoundError as err:
        return f"{dataset} not found ({str(err).split('. To get it')[0]})"
    return None


def evaluate_cnv(profile: str | Profile, weight_bits: int, act_bits: int, scheme: str = "sat",
                 pattern: str | None = None, p: float = 0.0, dataset: str = "cifar10",
                 campaign_pattern: str = "channel", seed: int = 0,
                 data_dir: str | os.PathLike | None = None, device: str | torch.device | None = "auto",
                 progress: bool = False) -> FaultEvaluation:
    """Train (or reuse) CNV W\\ *w*\\ A\\ *a* with ``scheme`` at ``profile``'s sizes and run the
    single stuck@ campaign with ``campaign_pattern`` on the profile's test split (exhaustive, or
    ``profile.campaign_faults`` sampled faults). The campaign is stored beside the trained
    artifact and resumed or reused on a re-run."""
    from .campaign import default_layers, golden_accuracy, stuck_at_campaign

    prof = get_profile(profile)
    trained = train_cnv(prof, weight_bits, act_bits, dataset=dataset, scheme=scheme, pattern=pattern,
                        p=p, seed=seed, data_dir=data_dir, device=device, progress=progress)
    test = profile_dataset(dataset, "test", prof, data_dir=data_dir, seed=seed)
    if campaign_pattern == "pixel" and prof.pixel_campaign_images is not None:
        test = subset(test, prof.pixel_campaign_images, seed=seed)
    fp = data_fingerprint(test).split(":")[-1]
    sample = prof.campaign_faults
    lays = "" if campaign_pattern == "channel" else \
        "-L" + "".join(map(str, default_layers(trained.model, campaign_pattern)))
    folder = Path(trained.path) / f"campaign-{campaign_pattern}{lays}-{fp}-{sample or 'all'}-s{seed}"
    images = test.images.float().div(255.0)
    campaign = stuck_at_campaign(trained.model, (images, test.labels), pattern=campaign_pattern,
                                 store=folder, sample=sample, seed=seed, progress=progress,
                                 device=device if device != "auto" else None)
    error_free = golden_accuracy(trained.model, (images, test.labels))
    network = f"CNVW{weight_bits}A{act_bits}"
    cfg = trained.config
    label = f"{network} SAT" if scheme == "sat" else \
        f"{network} {'FAT' if scheme.startswith('fat') else 'Dropout2D'}" \
        f"{'-m1' if scheme == 'fat-m1' else ''}{f' {pattern}' if pattern and pattern != 'channel' else ''} p={100 * cfg['p']:g}%"
    return FaultEvaluation(label=label, network=network, dataset=dataset, train=trained,
                           campaign=campaign, error_free=error_free,
                           campaign_pattern=campaign_pattern, profile=prof.name)


def table_row(ev: FaultEvaluation) -> dict[str, object]:
    """One row of a FAT summary table (II–IV) from an evaluation."""
    cfg = ev.train.config
    return {"network": ev.network, "dataset": ev.dataset, "scheme": cfg["scheme"],
            "p": 100 * cfg["p"], "error_free": ev.error_free, "min": ev.minimum,
            "variance": ev.variance, "faults": ev.faults, "profile": ev.profile}


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


def per_layer_table(ev: FaultEvaluation) -> pd.DataFrame:
    """FAT Table I from a campaign: per layer, the channels and, for each stuck@ value, the min
    and max accuracy."""
    t = ev.campaign.groupby(["layer", "value"])["accuracy"].agg(["min", "max"]).unstack("value")
    t.columns = [f"s@{v:+g} {stat}" for stat, v in t.columns]
    order = [f"s@{v:+g} {s}" for v in sorted(ev.campaign["value"].unique()) for s in ("min", "max")]
    t = t[order]
    key = "channel" if "channel" in ev.campaign else "row"
    counts = ev.campaign.groupby("layer")[key].nunique() if key == "channel" else \
        ev.campaign.groupby("layer").apply(lambda d: len(d[["row", "col"]].drop_duplicates()))
    t.insert(0, "channels" if key == "channel" else "positions", counts)
    return t.reset_index()


#: the columns of each FAT summary table that this book reproduces: group -> training scheme
TABLE_GROUPS: dict[str, dict[str, str]] = {
    "fat_table2": {"sat": "sat", "fat": "fat"},
    "fat_table3": {"fat": "fat", "d2d": "dropout2d"},
    "fat_table4": {"sat": "sat", "fat": "fat", "d2d": "dropout2d"},
}


def reproduce_table(name: str, profile: str | Profile, fat_scheme: str = "fat-m2",
                    campaign_pattern: str = "channel", seed: int = 0,
                    data_dir: str | os.PathLike | None = None,
                    device: str | torch.device | None = "auto") -> pd.DataFrame:
    """Reproduce a FAT summary table (II, III or IV) row by row: for each of the paper's rows,
    train the networks its column groups name (SAT; FAT with ``fat_scheme`` at the row's p,
    trained with ``campaign_pattern`` injection; Dropout2D at the row's p), run the campaign and
    return a tidy table — one row per (paper row, group, quantity) with ``paper``, ``ours``,
    ``difference`` and ``status`` ("ok" or "not run: <reason>"). Rows whose data is absent keep the
    paper's numbers and say why; no number is invented."""
    if name not in TABLE_GROUPS:
        raise ValueError(f"table {name!r}: use one of {sorted(TABLE_GROUPS)}")
    from .paper import paper_table

    prof = get_profile(profile)
    table = paper_table(name)
    inverse = {"CIFAR10": "cifar10", "SVHN": "svhn", "GTSRB": "gtsrb", "ImageNet": "imagenet"}
    out = []
    for idx, row in table.iterrows():
        dataset = inverse.get(row["dataset"], str(row["dataset"]).lower())
        dorefa = str(row["network"]) == "DoReFa-Net"
        if dorefa:  # FAT Table II's last row: the Fig. 8 networks (same cache as that page)
            reason = imagenet_source(prof, data_dir=data_dir).reason if campaign_pattern == "channel" \
                else f"DoReFa-Net is evaluated under channel stuck@ only (asked: {campaign_pattern})"
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
                kw = {"scheme": "sat"}
                if scheme == "fat":
                    kw = {"scheme": fat_scheme, "pattern": campaign_pattern, "p": p}
                elif scheme == "dropout2d":
                    kw = {"scheme": "dropout2d", "p": p}
                if dorefa:
                    ev = evaluate_dorefa(prof, scheme=kw["scheme"], p=kw.get("p", 0.0), seed=seed,
                                         data_dir=data_dir, device=device)
                else:
                    ev = evaluate_cnv(prof, w, a, dataset=dataset, campaign_pattern=campaign_pattern,
                                      seed=seed, data_dir=data_dir, device=device, **kw)
            for col in cols:
                quantity = col[len(group) + 1:]
                ours = None
                if ev is not None:
                    ours = {"error_free": ev.error_free, "min": ev.minimum, "variance": ev.variance}[quantity]
                out.append({"row": idx, "network": row["network"], "dataset": row["dataset"],
                            "group": group, "p": 100 * p, "quantity": quantity,
                            "paper": row[col], "ours": ours,
                            "status": "ok" if ev is not None else f"not run: {reason}",
                            "profile": prof.name})
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


def table_claim(long: pd.DataFrame, claim: str, group_a: str, quantity_a: str, op: str,
                group_b: str, quantity_b: str) -> tuple[str, bool, str]:
    """Evaluate a claim comparing two column groups of a :func:`reproduce_table` result over
    every row that ran: ``op`` is ``">"``, ``">="``, ``"<"`` (for every row), ``"most>"`` (in more
    than half the rows) or ``"~"`` (mean absolute difference within 1 pp). Returns
    ``(claim, holds, evidence)`` for :func:`fatlib.paper.claims_table`."""
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


def selective_tmr(profile: str | Profile, networks: list[tuple[int, int]], fat_scheme: str = "fat-m2",
                  fat_p: float = 0.05, voter_cost: float = 1.0, seed: int = 0,
                  data_dir: str | os.PathLike | None = None,
                  device: str | torch.device | None = "auto") -> tuple[pd.DataFrame, pd.DataFrame]:
    """FAT Fig. 9: for each network, SAT and FAT, the triplication frontier
    (:func:`fatlib.replication.tmr_frontier`) from its channel stuck@ campaign. Returns
    ``(frontiers, summary)``: all frontier rows with ``model``, ``network``, ``training``; and per
    model the error-free accuracy and the unprotected worst-case error."""
    from .replication import channel_macs, tmr_frontier

    frontiers, summary = [], []
    for w, a in networks:
        for scheme in ("sat", fat_scheme):
            fat = scheme != "sat"
            ev = evaluate_cnv(profile, w, a, scheme=scheme, pattern="channel" if fat else None,
                              p=fat_p if fat else 0.0, seed=seed, data_dir=data_dir, device=device)
            front = tmr_frontier(ev.campaign, channel_macs(ev.train.model), voter_cost=voter_cost,
                                 error_free=ev.error_free)
            training = "FAT" if fat else "SAT"
            frontiers.append(front.assign(model=ev.label, network=ev.network, training=training))
            summary.append({"model": ev.label, "network": ev.network, "training": training,
                            "error_free": ev.error_free, "worst_error": 100 - ev.minimum})
    return pd.concat(frontiers, ignore_index=True), pd.DataFrame(summary)


def channels_needed_table(frontiers: pd.DataFrame, summary: pd.DataFrame,
                          target_error: float) -> pd.DataFrame:
    """How many channels each model must triplicate (and at what normalized cost) to reach
    ``target_error`` (the paper's 13.84 %) and to reach the FAT network's unprotected worst-case
    error (the comparison that carries over to other scales)."""
    from .replication import channels_needed

    rows = []
    for (network, training), front in frontiers.groupby(["network", "training"], sort=False):
        fat_level = float(summary[(summary.network == network) & (summary.training == "FAT")]["worst_error"].iloc[0])
        for target, label in ((target_error, "paper's target"), (fat_level, "FAT unprotected")):
            need = channels_needed(front, target)
            rows.append({"network": network, "training": training, "target": label,
                         "target_error": target, "channels": need["channels"], "cost": need["cost"]})
    return pd.DataFrame(rows)


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
        return self.root is not None

    @property
    def dataset(self) -> str:
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
            return (f"a tiny synthetic ImageFolder at {self.root} stands in for ImageNet (not found at "
                    f"{self.expected}; allowed at this profile only) — its numbers say nothing about ImageNet")
        return f"ImageNet (ImageFolder) from {self.root}"


def imagenet_source(profile: str | Profile, data_dir: str | os.PathLike | None = None,
                    imagenet_dir: str | os.PathLike | None = None) -> ImageNetSource:
    """Find ImageNet as an ImageFolder tree (``train/``, ``val/``): at ``imagenet_dir`` when
    given, else the first of :func:`fatlib.data.imagenet_candidates` (``<data_dir>/imagenet``,
    ``$FATLIB_DATA/imagenet``, the cache). When absent, a profile that allows synthetic data
    (smoke) gets a tiny synthetic ImageFolder written under the artifact store; any other
    profile gets ``reason`` ("ImageNet not found at ...") and ``runs`` False."""
    from .data import imagefolder_missing, make_synthetic_imagefolder
    from .data import imagenet_dir as find_imagenet
    from .store import default_store_dir

    prof = get_profile(profile)
    expected = Path(imagenet_dir).expanduser() if imagenet_dir else find_imagenet(data_dir)
    why = imagefolder_missing(expected)
    if why is None:
        return ImageNetSource(expected, False, expected)
    if prof.allow_synthetic:
        c, n, v = (prof.dorefa_synthetic_classes, prof.dorefa_synthetic_per_class,
                   prof.dorefa_synthetic_val_per_class)
        size = max(prof.dorefa_image_size, int(prof.dorefa_image_size * 256 / 224) + 1)
        root = default_store_dir() / "data" / f"synthetic-imagefolder-c{c}-n{n}-v{v}-s{size}"
        make_synthetic_imagefolder(root, num_classes=c, per_class=n, val_per_class=v, image_size=size)
        return ImageNetSource(root, True, expected)
    return ImageNetSource(None, False, expected,
                          reason=f"ImageNet not found at {expected} ({why}); put ImageFolder train/ and "
                                 "val/ there or pass IMAGENET_DIR")


def _loader_workers(n_items: int) -> int:
    return 0 if n_items < 5000 else max(0, min(8, (os.cpu_count() or 1) - 1))


def evaluate_dorefa(profile: str | Profile, scheme: str = "sat", p: float = 0.0, seed: int = 0,
                    data_dir: str | os.PathLike | None = None,
                    imagenet_dir: str | os.PathLike | None = None,
                    device: str | torch.device | None = "auto", progress: bool = False) -> FaultEvaluation:
    """Train (or reuse) DoReFa-Net's AlexNet W1A2 with ``scheme`` (``"sat"``, ``"fat-m2"`` —
    FAT method 2 with channel injection, as in FAT Fig. 8 — ``"fat-m1"`` or ``"dropout2d"``) at
    ``profile``'s sizes on ImageNet and run the single channel stuck@ campaign on the profile's
    validation subset: exhaustive, or ``profile.dorefa_campaign_faults`` sampled faults (an
    exhaustive campaign needs one pass over the validation images per fault; the campaign's
    ``attrs["campaign"]`` has ``sample`` and ``population_size``). The campaign is stored beside
    the trained artifact and resumed or reused on a re-run.

    ImageNet is found as :func:`imagenet_source` says; where it is absent the smoke profile runs
    on a synthetic ImageFolder and every other profile raises :class:`DataMissing` with the reason."""
    from .campaign import enumerate_faults, stuck_at_campaign
    from .data import imagefolder_dataset
    from .training import dorefa_config, train

    prof = get_profile(profile)
    src = imagenet_source(prof, data_dir=data_dir, imagenet_dir=imagenet_dir)
    if not src.runs:
        raise DataMissing(src.reason)
    size = prof.dorefa_image_size
    train_ds = imagefolder_dataset(src.root, "train", size, True, limit=prof.dorefa_train_size, seed=seed,
                                   name=src.dataset)
    train_ds.workers = _loader_workers(len(train_ds))
    test_ds = imagefolder_dataset(src.root, "val", size, False, limit=prof.dorefa_test_size, seed=seed,
                                  name=src.dataset)
    test_ds.workers = _loader_workers(len(test_ds))
    config = dorefa_config(prof, scheme=scheme, p=p, seed=seed, num_classes=train_ds.num_classes,
                           dataset=src.dataset)
    trained = train(config, train_ds, test_ds, device=device, progress=progress, profile=prof.name)
    sample = prof.dorefa_campaign_faults
    if sample is not None and sample >= len(enumerate_faults(trained.model, image_shape=(3, size, size))):
        sample = None
    fp = data_fingerprint(test_ds).split(":")[-1]
    folder = Path(trained.path) / f"campaign-channel-{fp}-{sample or 'all'}-s{seed}"
    campaign = stuck_at_campaign(trained.model, test_ds, pattern="channel", store=folder, sample=sample,
                                 seed=seed, progress=progress, device=device if device != "auto" else None)
    error_free = float(campaign.attrs["campaign"]["error_free"])
    cfg = trained.config
    if scheme == "sat":
        label = "DoReFa-Net SAT"
    else:
        kind = {"fat-m1": "FAT-m1", "fat-m2": "FAT", "dropout2d": "Dropout2D"}[scheme]
        label = f"DoReFa-Net {kind} p={100 * cfg['p']:g}%"
    return FaultEvaluation(label=label, network="DoReFa-Net", dataset=src.dataset, train=trained,
                           campaign=campaign, error_free=error_free, campaign_pattern="channel",
                           profile=prof.name)


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
        return self.source.status

    @property
    def sat(self) -> FaultEvaluation | None:
        return self.evaluations[0] if self.evaluations else None

    @property
    def fat(self) -> list[FaultEvaluation]:
        return self.evaluations[1:]

    def error_free(self) -> dict[str, float]:
        return {e.label: e.error_free for e in self.evaluations}

    def campaign_line(self) -> str:
        """One line for the page: how many faults each campaign evaluated."""
        if not self.evaluations:
            return self.status
        meta = self.evaluations[0].campaign.attrs["campaign"]
        n, pop, images = int(meta["n_faults"]), int(meta["population_size"]), int(meta["n_images"])
        if meta.get("sample") is None:
            k = len(next(iter(meta["levels"].values())))
            return (f"exhaustive: all {pop:,} single channel stuck@ faults (every channel of the "
                    f"{len(meta['layers'])} activation sites at each of {k} levels) on {images:,} "
                    "validation images per network")
        return (f"{n:,} of the {pop:,} single channel stuck@ faults sampled uniformly (seed "
                f"{meta['seed']}) on {images:,} validation images per network — the minimum is over the "
                "sampled faults only (an upper bound of the true minimum)")


#: FAT Table II's DoReFa-Net row: network and dataset as the paper spells them
DOREFA_PAPER_ROW = ("DoReFa-Net", "ImageNet")


def dorefa_figure8(profile: str | Profile, p_values: list[float], seed: int = 0,
                   data_dir: str | os.PathLike | None = None,
                   imagenet_dir: str | os.PathLike | None = None,
                   device: str | torch.device | None = "auto") -> DoReFaFigure8:
    """FAT Fig. 8: DoReFa-Net trained with SAT and with FAT method 2 (channel injection) at each
    ``p_values`` (percent; the paper: 5 and 2.5), each evaluated with the single channel stuck@
    campaign (:func:`evaluate_dorefa`); Table II's row (FAT at p = 2.5 %) beside ours. Where
    ImageNet is absent (and the profile does not allow the synthetic stand-in) nothing is
    trained: every table keeps the paper's numbers and says "not run: <reason>"."""
    from .paper import fat_row, side_by_side

    prof = get_profile(profile)
    src = imagenet_source(prof, data_dir=data_dir, imagenet_dir=imagenet_dir)
    row = fat_row(*DOREFA_PAPER_ROW, table="fat_table2")
    paper_p = float(row["fat_p"])
    evals: list[FaultEvaluation] = []
    if src.runs:
        kw = {"seed": seed, "data_dir": data_dir, "imagenet_dir": imagenet_dir, "device": device}
        evals.append(evaluate_dorefa(prof, "sat", **kw))
        evals += [evaluate_dorefa(prof, "fat-m2", p=p / 100, **kw) for p in p_values]
    status = src.status
    cols = ["model", "scheme", "p", "error_free", "min", "variance", "faults", "population", "status"]
    if evals:
        summary = pd.DataFrame([{"model": e.label, **table_row(e),
                                 "population": int(e.campaign.attrs["campaign"]["population_size"]),
                                 "status": status} for e in evals])
        summary = summary[cols + ["dataset", "profile"]]
        per_layer = pd.concat([e.per_layer() for e in evals], ignore_index=True)
    else:
        summary = pd.DataFrame([{"model": "DoReFa-Net SAT", "scheme": "sat", "p": 0.0}]
                               + [{"model": f"DoReFa-Net FAT p={p:g}%", "scheme": "fat-m2", "p": p}
                                  for p in p_values]).reindex(columns=cols)
        summary["status"] = status
        per_layer = pd.DataFrame(columns=["network", "layer", "value", "min", "max", "mean", "count",
                                          "error_free"])
    sat = evals[0] if evals else None
    fat = evals[1:]
    at_paper_p = next((e for e in fat if abs(100 * e.train.config["p"] - paper_p) < 1e-9),
                      fat[0] if fat else None)
    rows = []
    for group, ev in (("sat", sat), ("fat", at_paper_p)):
        for q, attr in (("error_free", "error_free"), ("min", "minimum"), ("variance", "variance")):
            rows.append({"quantity": f"{group.upper()} {q.replace('_', '-')}", "paper": float(row[f"{group}_{q}"]),
                         "ours": getattr(ev, attr) if ev is not None else None})
    rows.append({"quantity": "FAT p [%]", "paper": paper_p,
                 "ours": 100 * at_paper_p.train.config["p"] if at_paper_p is not None else None})
    rows.append({"quantity": "Ref. error-free (DoReFa-Net paper)", "paper": float(row["ref_error_free"]),
                 "ours": None})
    table2 = side_by_side(rows, prof.name)
    table2["status"] = status

    paper_evidence = (f"paper: SAT min {row['sat_min']:.2f}, error-free {row['sat_error_free']:.2f}, "
                      f"variance {row['sat_variance']:.2f}; FAT (p={paper_p:g}%) min {row['fat_min']:.2f}, "
                      f"error-free {row['fat_error_free']:.2f}, variance {row['fat_variance']:.2f}")
    claims: list[tuple[str, bool | None, str]] = []
    for claim, attr, holds, fmt in (
            ("FAT's minimum accuracy is above SAT's", "minimum", operator.gt, ".2f"),
            ("FAT's error-free accuracy is not below SAT's", "error_free", operator.ge, ".2f"),
            ("FAT lowers the variance", "variance", operator.lt, ".3f")):
        if sat is None:
            claims.append((claim, None, paper_evidence))
            continue
        ours = ", ".join(f"p={100 * e.train.config['p']:g}%: {getattr(e, attr):{fmt}}" for e in fat)
        claims.append((claim, all(holds(getattr(e, attr), getattr(sat, attr)) for e in fat),
                       f"{ours} vs SAT {getattr(sat, attr):{fmt}}"))
    return DoReFaFigure8(source=src, profile=prof.name, p_values=list(p_values), evaluations=evals,
                         summary=summary, per_layer=per_layer, table2=table2, claims=claims)
