"""FAT's experiments as one call each: train a CNV with a scheme, then run the stuck-at campaign
on it (FAT §V, Tables I–IV, Figs. 3, 6, 7, 9, 10); DoReFa-Net on ImageNet likewise (Fig. 8).
Trained networks come from the artifact store and campaigns are cached (and resumable) beside
them, so a notebook re-run costs nothing.

One section per figure or table of the paper; each holds the experiment and the paper's claims
checked on our numbers (``(claim, holds, evidence)`` tuples for :func:`fatlib.core.paper.claims_table`),
so that a notebook only narrates, glues and writes files.
"""

from __future__ import annotations

import contextlib
import functools
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import pandas as pd
import torch

from fatlib.core import work
from fatlib.core.data import DatasetNotFound, load_dataset, profile_dataset, subset
from fatlib.core.paper import PAPER_DATASET
from fatlib.core.profiles import Profile, get_profile
from fatlib.core.schemes import CHANNEL, DROPOUT2D, FAT_M1, FAT_M2, PIXEL, SAT, scheme_label
from fatlib.core.training import TrainResult, data_fingerprint, train_cnv
from fatlib.core.verdicts import (
    Claim,
    Estimate,
    campaign_estimates,
    compare,
    every,
    image_weights,
    most,
    not_run,
)
from fatlib.core.verdicts import seed_mean as _seed_mean

if TYPE_CHECKING:
    from fatlib.fat.campaign import Outcomes

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
    "paper_layout",
    "stand_ins",
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
    "PER_LAYER_COLUMNS",
    "method_claims",
    "trend_claim",
    "diff_claim",
    "Setup",
    "setup",
    "summary_table",
    "per_layer_of",
    "error_free_by_label",
    "table1_claims",
    "MethodFigure",
    "method_figure",
    "fat_vs_sat_claims",
    "NOT_BELOW_PP",
    "CLOSE_PP",
    "pareto_share",
    "FRONTIER_REPLICATES",
    "table2_claims",
    "table3_claims",
    "figure10",
    "table4_claims",
    "sat_matching_fat",
    "fig09_claims",
]


#: the columns of :meth:`FaultEvaluation.per_layer` (one row per network, layer and stuck@ value)
PER_LAYER_COLUMNS = ["network", "layer", "value", "min", "max", "mean", "count", "error_free"]


# ------------------------------------------------------------------------------------------
# A trained network and its single stuck@ campaign (FAT Algorithm 1)
# ------------------------------------------------------------------------------------------


def _one_seed_noted(est: Estimate, seeds: int) -> Estimate:
    """Say in the method when one training seed stands for the configuration."""
    if seeds > 1 or not est.spread_known:
        return est
    note = "; one training seed (the spread between trainings is not included)"
    return Estimate(est.value, est.replicates, est.method + note, est.spread_known)


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
    #: every fault's per-image outcomes (None: not kept — intervals then unknown)
    outcomes: Outcomes | None = field(default=None, repr=False)
    #: fingerprint of the test images: networks scored on the same images share bootstrap weights
    images_key: str = ""
    #: whether the numbers come from synthetic stand-in data (never counted as results)
    synthetic: bool = False
    #: the same configuration trained with further seeds (``seed + 1``, ...; FAT comparisons)
    replicas: list[FaultEvaluation] = field(default_factory=list, repr=False)
    _own: dict | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def seeds(self) -> int:
        """Trainings behind this evaluation (1 + :attr:`replicas`)."""
        return 1 + len(self.replicas)

    def own_estimates(self) -> dict[str, Estimate]:
        """This seed's error-free accuracy, minimum, variance and mean accuracy over faults, each
        with its paired bootstrap over the test images (:func:`fatlib.core.verdicts.campaign_estimates`)."""
        if self._own is None:
            if self.outcomes is None:
                why = "no per-image outcomes: spread unknown"
                acc = self.campaign["accuracy"]
                vals = {"error_free": self.error_free, "min": self.minimum, "variance": self.variance}
                vals["mean"] = float(acc.mean())
                self._own = {k: Estimate(v, None, why, False) for k, v in vals.items()}
            else:
                o = self.outcomes
                w = image_weights(o.n_images, key=self.images_key)
                est = campaign_estimates(o.golden, o.faults, w)
                mean = float(o.faults.mean())
                reps = 100.0 * (w @ o.faults.astype(np.float32).mean(axis=0)) / w.sum(axis=1)
                est["mean"] = Estimate(100.0 * mean, reps.astype(np.float64), est["min"].method)
                self._own = est
        return self._own

    def estimate(self, quantity: str) -> Estimate:
        """``quantity`` (``"error_free"``, ``"min"``, ``"variance"`` or ``"mean"``) as the mean
        over this evaluation's seeds, with its 95 % interval (:func:`fatlib.core.verdicts.seed_mean`:
        the test images and, with several seeds, the seeds resampled)."""
        per_seed = [e.own_estimates()[quantity] for e in [self, *self.replicas]]
        return _one_seed_noted(_seed_mean(per_seed, key=(self.label, quantity)), self.seeds)

    def min_over_layers(self, layers: Sequence[int]) -> Estimate:
        """The lowest accuracy under any single fault of ``layers`` (e.g. the conv layers 0–5 of
        FAT Table I), with its interval, as the mean over seeds."""
        per_seed = []
        for e in [self, *self.replicas]:
            mask = e.campaign["layer"].isin(list(layers)).to_numpy()
            if not mask.any():
                raise ValueError(f"{e.label}: its campaign has no fault in layers {list(layers)}")
            if e.outcomes is None:
                value = float(e.campaign.loc[mask, "accuracy"].min())
                per_seed.append(Estimate(value, None, "no per-image outcomes: spread unknown", False))
            else:
                w = image_weights(e.outcomes.n_images, key=e.images_key)
                per_seed.append(campaign_estimates(e.outcomes.golden, e.outcomes.faults[mask], w)["min"])
        return _one_seed_noted(_seed_mean(per_seed, key=(self.label, "min", tuple(layers))), self.seeds)

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
    seeds: int | None = 1,
) -> FaultEvaluation:
    """Train (or reuse) CNV W\\ *w*\\ A\\ *a* with ``scheme`` at ``profile``'s sizes and run the
    single stuck@ campaign with ``campaign_pattern`` on the profile's test split (exhaustive, or
    ``profile.campaign_faults`` sampled faults), keeping every fault's per-image outcomes for the
    intervals of :mod:`fatlib.core.verdicts`. The campaign is stored beside the trained artifact
    and resumed or reused on a re-run. ``seeds`` > 1 trains the configuration again with seeds
    ``seed + 1``, ... (:attr:`FaultEvaluation.replicas`); None: the profile's ``fat_seeds``."""
    n_seeds = get_profile(profile).fat_seeds if seeds is None else int(seeds)
    if n_seeds < 1:
        raise ValueError(f"seeds={seeds!r}: train at least one seed (None: the profile's fat_seeds)")
    kw = dict(
        scheme=scheme,
        pattern=pattern,
        p=p,
        dataset=dataset,
        campaign_pattern=campaign_pattern,
        data_dir=data_dir,
        device=device,
        progress=progress,
    )
    first, *replicas = work.gather(
        [
            functools.partial(_evaluate_cnv_seed, profile, weight_bits, act_bits, seed=seed + i, **kw)
            for i in range(n_seeds)
        ]
    )
    first.replicas = replicas
    return first


@work.unit
def _evaluate_cnv_seed(
    profile: str | Profile,
    weight_bits: int,
    act_bits: int,
    scheme: str,
    pattern: str | None,
    p: float,
    dataset: str,
    campaign_pattern: str,
    seed: int,
    data_dir: str | os.PathLike | None,
    device: str | torch.device | None,
    progress: bool,
) -> FaultEvaluation:
    from fatlib.fat.campaign import default_layers, golden_accuracy, load_outcomes, stuck_at_campaign

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
        outcomes=True,
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
        outcomes=load_outcomes(folder),
        images_key=fp,
        synthetic=test.synthetic,
    )


def table_row(ev: FaultEvaluation) -> dict[str, object]:
    """One row of a FAT summary table (II–IV) from an evaluation: the mean over its seeds of the
    error-free accuracy, minimum and variance, the 95 % intervals of the first two
    (``*_low``, ``*_high``; :meth:`FaultEvaluation.estimate`), the seeds and whether the data
    was synthetic."""
    cfg = ev.train.config
    est = {q: ev.estimate(q) for q in ("error_free", "min", "variance")}
    return {
        "network": ev.network,
        "dataset": ev.dataset,
        "scheme": cfg["scheme"],
        "p": 100 * cfg["p"],
        "error_free": est["error_free"].value,
        "error_free_low": est["error_free"].interval()[0],
        "error_free_high": est["error_free"].interval()[1],
        "min": est["min"].value,
        "min_low": est["min"].interval()[0],
        "min_high": est["min"].interval()[1],
        "variance": est["variance"].value,
        "faults": ev.faults,
        "seeds": ev.seeds,
        "synthetic": ev.synthetic,
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


def diff_claim(
    claim: str,
    paper: str,
    a: FaultEvaluation,
    b: FaultEvaluation,
    quantity: str,
    relation: str,
    tolerance: float = 0.0,
) -> Claim:
    """A claim comparing ``quantity`` (``"error_free"``, ``"min"``, ``"variance"``) of network
    ``a`` with network ``b`` through their paired difference (:mod:`fatlib.core.verdicts`)."""
    ea, eb = a.estimate(quantity), b.estimate(quantity)
    fmt = ".3f" if quantity == "variance" else ".2f"
    unit = "pp²" if quantity == "variance" else "pp"
    evidence = f"{a.label} {ea.value:{fmt}} vs {b.label} {eb.value:{fmt}}"
    if a.images_key != b.images_key:
        raise ValueError(
            f"{a.label} and {b.label} were scored on different test images: no paired comparison"
        )
    return compare(
        claim, paper, ea - eb, relation, tolerance, evidence, unit, synthetic=a.synthetic or b.synthetic
    )


def _paper_table1() -> tuple[float, float, int]:
    """FAT Table I's lowest minimum, the error-free accuracy (Table II) and the layer of the worst fault."""
    from fatlib.core.paper import fat_row, paper_table

    t1 = paper_table("fat_table1")
    mins = t1[[c for c in t1.columns if c.endswith("_min")]]
    worst_layer = int(t1.loc[mins.min(axis=1).idxmin(), "layer"])
    return float(mins.min().min()), float(fat_row("CNVW1A1", "cifar10")["sat_error_free"]), worst_layer


def table1_claims(ev: FaultEvaluation) -> list[Claim]:
    """FAT §III-A (Table I, Fig. 3) on a SAT CNV's channel stuck@ campaign, each with its 95 %
    interval: a single stuck channel can cost far more than the typical one (worst drop at least
    5 × the mean drop), the convolutional layers (0–5) are more sensitive than the FC layers
    (6–7: lower minimum), and the worst fault sits in an early layer (the minimum over layers 0–2
    below that over layers 3–7)."""
    paper_min, paper_ef, paper_layer = _paper_table1()
    syn = ev.synthetic
    ef, mn, mean = ev.estimate("error_free"), ev.estimate("min"), ev.estimate("mean")
    worst_drop, mean_drop = ef - mn, ef - mean
    excess = worst_drop - mean_drop.scaled(5.0)
    layers = sorted(int(x) for x in ev.campaign["layer"].unique())
    conv = [L for L in layers if L <= 5]
    fc = [L for L in layers if L >= 6]
    early = [L for L in layers if L <= 2]
    late = [L for L in layers if L >= 3]
    out = [
        compare(
            "A single stuck channel can cost SAT far more accuracy than the typical one "
            "(worst drop ≥ 5 × mean drop)",
            f"Table I: worst {paper_min:.2f} % against {paper_ef:.2f} % error-free",
            excess,
            ">=",
            0.0,
            f"worst drop {worst_drop.value:.2f} pp, mean drop {mean_drop.value:.2f} pp "
            "(difference shown: worst − 5 × mean)",
            synthetic=syn,
        )
    ]
    if conv and fc:
        c_min, f_min = ev.min_over_layers(conv), ev.min_over_layers(fc)
        out.append(
            compare(
                "Convolutional layers are more sensitive than the FC layers (lower minimum)",
                "Table I, Fig. 3",
                c_min - f_min,
                "<",
                0.0,
                f"conv layers min {c_min.value:.2f} %, FC layers min {f_min.value:.2f} %",
                synthetic=syn,
            )
        )
    else:
        out.append(
            not_run("Convolutional layers are more sensitive than the FC layers", "Table I", "layers missing")
        )
    if early and late:
        e_min, l_min = ev.min_over_layers(early), ev.min_over_layers(late)
        out.append(
            compare(
                "The worst fault is in an early layer (0–2: their minimum below that of layers 3–7)",
                f"Table I: worst fault in layer {paper_layer}",
                e_min - l_min,
                "<",
                0.0,
                f"layers 0–2 min {e_min.value:.2f} %, layers 3–7 min {l_min.value:.2f} % "
                f"(worst fault in layer {int(ev.worst_fault['layer'])})",
                synthetic=syn,
            )
        )
    else:
        out.append(not_run("The worst fault is in an early layer", "Table I", "layers missing"))
    return out


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


#: tolerance of "not below" claims on error-free accuracy: FAT §V states FAT costs no accuracy;
#: a loss within 1 pp counts as "not below" (the paper's own gains are 0.03–0.85 pp)
NOT_BELOW_PP = 1.0


def fat_vs_sat_claims(sat: FaultEvaluation, fat: Sequence[FaultEvaluation]) -> list[Claim]:
    """FAT §V-A/§V-B (Figs. 6, 7), each with its 95 % interval: FAT keeps a higher minimum
    accuracy than SAT at every p, an error-free accuracy not below SAT's (within
    :data:`NOT_BELOW_PP`) at the lowest p, and a lower variance under faults at every p."""
    from fatlib.core.paper import fat_row

    row = fat_row(sat.network, sat.dataset)
    lowest = min(fat, key=lambda e: e.train.config["p"])
    p_of = lambda e: f"p = {100 * e.train.config['p']:g} %"  # noqa: E731
    return [
        every(
            "FAT's minimum accuracy is above SAT's for every p",
            f"Table II: {row['fat_min']:.2f} vs {row['sat_min']:.2f} % (p = {row['fat_p']:g} %)",
            [diff_claim(p_of(e), "", e, sat, "min", ">") for e in fat],
        ),
        diff_claim(
            f"FAT's error-free accuracy is not below SAT's at the lowest p (within {NOT_BELOW_PP:g} pp)",
            f"Table II: {row['fat_error_free']:.2f} vs {row['sat_error_free']:.2f} %",
            lowest,
            sat,
            "error_free",
            ">=",
            NOT_BELOW_PP,
        ),
        every(
            "FAT lowers the variance of accuracy under faults (every p)",
            f"Table II: {row['fat_variance']:.3f} vs {row['sat_variance']:.3f}",
            [diff_claim(p_of(e), "", e, sat, "variance", "<") for e in fat],
        ),
    ]


def trend_claim(
    claim: str, paper: str, fat: Sequence[FaultEvaluation], quantity: str, relation: str = "<"
) -> Claim:
    """A trend over the injection probability: the least-squares slope of ``quantity`` against
    p (percent) over the networks ``fat`` (in any order), per bootstrap replicate; ``"<"``: it
    falls as p rises. Needs at least two distinct p."""
    ps = np.array([100 * e.train.config["p"] for e in fat], dtype=float)
    if len(set(ps.tolist())) < 2:
        return not_run(claim, paper, "needs networks at two or more injection probabilities")
    x = (ps - ps.mean()) / ((ps - ps.mean()) ** 2).sum()
    ests = [e.estimate(quantity) for e in fat]
    slope = ests[0].scaled(float(x[0]))
    for e, xi in zip(ests[1:], x[1:]):
        slope = slope + e.scaled(float(xi))
    fmt = ".3f" if quantity == "variance" else ".2f"
    unit = ("pp²" if quantity == "variance" else "pp") + " per pp of p"
    evidence = ", ".join(f"p={p:g}%: {e.value:{fmt}}" for p, e in zip(ps, ests))
    return compare(
        claim, paper, slope, relation, 0.0, evidence, unit, synthetic=any(e.synthetic for e in fat)
    )


def method_claims(
    scheme: str,
    p_values: Sequence[float],
    sat: FaultEvaluation,
    fat: Sequence[FaultEvaluation],
    method1: FaultEvaluation | None,
) -> list[Claim]:
    """The claims of FAT Fig. 6 (method 1) or Fig. 7 (method 2): :func:`fat_vs_sat_claims`, and
    for Fig. 6 (§V-A) a higher p gives a lower variance and a lower error-free accuracy (slopes
    over p, :func:`trend_claim`); for Fig. 7 (§V-B) method 2's error-free accuracy above method
    1's at the same p (the paper, p = 5 %: 85.07 vs 82.57 %)."""
    from fatlib.core.paper import quote

    claims = fat_vs_sat_claims(sat, fat)
    if scheme == FAT_M1:
        claims.append(
            trend_claim("A higher p gives a lower variance (slope over p)", "Fig. 6, §V-A", fat, "variance")
        )
        claims.append(
            trend_claim(
                "Method 1's error-free accuracy falls as p rises (slope over p)",
                "Fig. 6, §V-A",
                fat,
                "error_free",
            )
        )
    else:
        claims.append(
            diff_claim(
                f"Method 2's error-free accuracy is above method 1's at the same p ({p_values[0]:g} %)",
                f"§V-B, p = 5 %: {quote('fat_m2_error_free_p5'):.2f} vs "
                f"{quote('fat_m1_error_free_p5'):.2f} %",
                fat[0],
                method1,
                "error_free",
                ">",
            )
        )
    return claims


def method_figure(
    profile: str | Profile,
    scheme: str,
    p_values: Sequence[float],
    weight_bits: int = 1,
    act_bits: int = 1,
    seed: int = 0,
    data_dir: str | os.PathLike | None = None,
    device: str | torch.device | None = "auto",
    seeds: int | None = None,
) -> MethodFigure:
    """FAT Fig. 6 (``scheme`` = ``FAT_M1``, §V-A) or Fig. 7 (``FAT_M2``, §V-B): CNV
    W\\ *w*\\ A\\ *a* trained with SAT and with FAT (channel injection) at each of ``p_values``
    (percent), each evaluated with the channel stuck@ campaign (:func:`evaluate_cnv`). The claims
    are :func:`fat_vs_sat_claims` plus, for Fig. 6, the trends over p (:func:`trend_claim`) and, for Fig. 7,
    method 1 vs method 2 at the first p (FAT method 1 trained there too): :func:`method_claims`.
    Every network is trained with ``seeds`` seeds (None: the profile's ``fat_seeds``)."""
    if scheme not in (FAT_M1, FAT_M2):
        raise ValueError(f"scheme={scheme!r}: Fig. 6 is {FAT_M1!r}, Fig. 7 is {FAT_M2!r}")
    p_values = list(p_values)
    kw = {"seed": seed, "data_dir": data_dir, "device": device, "seeds": seeds}
    calls = [functools.partial(evaluate_cnv, profile, weight_bits, act_bits, **kw)] + [
        functools.partial(
            evaluate_cnv, profile, weight_bits, act_bits, scheme=scheme, pattern=CHANNEL, p=p / 100, **kw
        )
        for p in p_values
    ]
    if scheme == FAT_M2:
        calls.append(
            functools.partial(
                evaluate_cnv,
                profile,
                weight_bits,
                act_bits,
                scheme=FAT_M1,
                pattern=CHANNEL,
                p=p_values[0] / 100,
                **kw,
            )
        )
    sat, *evaluated = work.gather(calls)
    fat = evaluated[: len(p_values)]
    method1 = evaluated[len(p_values)] if scheme == FAT_M2 else None
    claims = method_claims(scheme, p_values, sat, fat, method1)
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
    # Table III prints no SAT column; SAT runs beside it for "Dropout2D raises the minimum over
    # SAT" (§V-D, Fig. 10) and its rows show "–" for the paper
    "fat_table3": {"sat": SAT, "fat": "fat", "d2d": DROPOUT2D},
    "fat_table4": {"sat": SAT, "fat": "fat", "d2d": DROPOUT2D},
}
#: the quantities a summary table group holds when the paper prints no column for it
_GROUP_QUANTITIES = ("error_free", "min", "variance")


def reproduce_table(
    name: str,
    profile: str | Profile,
    fat_scheme: str = FAT_M2,
    campaign_pattern: str = CHANNEL,
    seed: int = 0,
    data_dir: str | os.PathLike | None = None,
    device: str | torch.device | None = "auto",
    seeds: int | None = None,
) -> pd.DataFrame:
    """Reproduce a FAT summary table (II, III or IV) row by row: for each of the paper's rows,
    train the networks its column groups name (SAT; FAT with ``fat_scheme`` at the row's p,
    trained with ``campaign_pattern`` injection; Dropout2D at the row's p), run the campaign and
    return a tidy table — one row per (paper row, group, quantity) with ``paper``, ``ours``,
    ``difference`` and ``status`` ("ok" or "not run: <reason>"). Rows whose data is absent keep the
    paper's numbers and say why; no number is invented. Each network is trained with ``seeds``
    seeds (None: the profile's ``fat_seeds``); ``ours`` is the mean over them. ``attrs["estimates"]``
    maps ``(row, group, quantity)`` to its :class:`~fatlib.core.verdicts.Estimate` and
    ``attrs["images"]`` / ``attrs["synthetic"]`` map ``row`` to its test images' key and whether
    they are synthetic, for :func:`table_claim`."""
    if name not in TABLE_GROUPS:
        raise ValueError(f"table {name!r}: use one of {sorted(TABLE_GROUPS)}")
    from fatlib.core.paper import FATLIB_DATASET, paper_table

    prof = get_profile(profile)
    table = paper_table(name)
    out = []
    estimates: dict[tuple[int, str, str], Estimate] = {}
    images: dict[int, str] = {}
    synthetic: dict[int, bool] = {}
    # first the evaluations every row needs, as one batch (:func:`fatlib.core.work.gather`: plain
    # calls in order; planned together when the book runs on Dask), then the rows
    entries: list[tuple[int, pd.Series, str, str, list[str], float, str | None]] = []
    calls: list[Callable[[], FaultEvaluation]] = []
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
            if not cols:  # a group the paper prints no column for (SAT beside Table III)
                cols = [f"{group}_{q}" for q in _GROUP_QUANTITIES]
            elif all(pd.isna(row[c]) for c in cols):
                continue  # the paper has no such entry in this row
            p = float(row[f"{group}_p"]) / 100 if f"{group}_p" in table.columns else 0.0
            entries.append((int(idx), row, group, scheme, cols, p, reason))
            if reason is None:
                kw: dict[str, Any] = {"scheme": SAT}
                if scheme == "fat":
                    kw = {"scheme": fat_scheme, "pattern": campaign_pattern, "p": p}
                elif scheme == DROPOUT2D:
                    kw = {"scheme": DROPOUT2D, "p": p}
                if dorefa:
                    calls.append(
                        functools.partial(
                            evaluate_dorefa,
                            prof,
                            scheme=kw["scheme"],
                            p=kw.get("p", 0.0),
                            seed=seed,
                            data_dir=data_dir,
                            device=device,
                        )
                    )
                else:
                    calls.append(
                        functools.partial(
                            evaluate_cnv,
                            prof,
                            w,
                            a,
                            dataset=dataset,
                            campaign_pattern=campaign_pattern,
                            seed=seed,
                            data_dir=data_dir,
                            device=device,
                            seeds=seeds,
                            **kw,
                        )
                    )
    evaluated = iter(work.gather(calls))
    for idx, row, group, _scheme, cols, p, reason in entries:
        ev = None
        if reason is None:
            ev = next(evaluated)
            images[idx], synthetic[idx] = ev.images_key, ev.synthetic
        for col in cols:
            quantity = col[len(group) + 1 :]
            ours = None
            if ev is not None:
                est = ev.estimate(quantity)
                estimates[(idx, group, quantity)] = est
                ours = est.value
            out.append(
                {
                    "row": idx,
                    "network": row["network"],
                    "dataset": row["dataset"],
                    "group": group,
                    "p": 100 * p,
                    "quantity": quantity,
                    "paper": row[col] if col in table.columns else float("nan"),
                    "ours": ours,
                    "status": "ok" if ev is not None else f"not run: {reason}",
                    "profile": prof.name,
                }
            )
    df = pd.DataFrame(out)
    df["ours"] = pd.to_numeric(df["ours"])
    df["difference"] = df["ours"] - pd.to_numeric(df["paper"])
    df.attrs.update({"estimates": estimates, "images": images, "synthetic": synthetic, "table": name})
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
    synthetic = table.attrs.get("synthetic", {})
    status = status.where(
        [not synthetic.get(r, False) for r in status.index], status + " (synthetic stand-in: not counted)"
    )
    probs = t[t["group"] != "sat"].groupby(["row", "group"])["p"].first().unstack("group")
    w = w.reset_index()
    for k, group in enumerate(probs.columns):
        w.insert(3 + k, f"{group} p [%]", w["row"].map(probs[group]))
    w["status"] = w["row"].map(status)
    return w.drop(columns="row")


_TABLE_NAME = {"fat_table2": "Table II", "fat_table3": "Table III", "fat_table4": "Table IV"}


def _paper_pairs(name: str, group_a: str, quantity_a: str, group_b: str, quantity_b: str) -> str:
    """The paper's own numbers behind a table claim: "Table II: CNVW1A1 81.26 vs 50.83; ..."
    (rows where both are printed) and in how many rows the first is larger."""
    from fatlib.core.paper import TABLES, paper_table

    if name not in TABLES:
        return ""
    t = paper_table(name)
    ca, cb = f"{group_a}_{quantity_a}", f"{group_b}_{quantity_b}"
    label = _TABLE_NAME.get(name, name)
    if ca not in t.columns or cb not in t.columns:
        return f"{label} (the paper prints no {ca if ca not in t.columns else cb})"
    both = t.dropna(subset=[ca, cb])
    pairs = [f"{r.network} {r.dataset} {getattr(r, ca):g} vs {getattr(r, cb):g}" for r in both.itertuples()]
    above = int((both[ca] > both[cb]).sum())
    shown = "; ".join(pairs[:3]) + ("; …" if len(pairs) > 3 else "")
    return f"{label}, {above} of {len(both)} rows larger: {shown}"


def paper_layout(long: pd.DataFrame) -> pd.DataFrame:
    """A :func:`reproduce_table` result shown as the paper lays the table out: one row per paper
    row (network, dataset, p), columns training (SAT / FAT / Dropout2D) → quantity → paper |
    ours, rounded to 3 decimals; columns without any number dropped (Table III prints no SAT
    column, so only ours show). Show it with ``to_html(na_rep="–")``."""
    shown = wide(long).round(3)
    shown = shown.set_index([c for c in shown.columns if "(" not in c and c != "status"])
    shown = shown.dropna(axis=1, how="all")
    heads = [
        tuple(c.replace("(", "").replace(")", "").split()) if "(" in c else (c, "", "") for c in shown.columns
    ]
    shown.columns = pd.MultiIndex.from_tuples(heads)
    return shown.rename(columns={"sat": "SAT", "fat": "FAT", "d2d": "Dropout2D", "error_free": "error-free"})


@contextlib.contextmanager
def stand_ins() -> Iterator[list[str]]:
    """Collect the names of the synthetic stand-ins used in the block (``"svhn test"``, ...)
    instead of printing their :class:`~fatlib.core.data.SyntheticDataWarning` — a page names
    them in its text; every other warning still shows."""
    from fatlib.core.data import SyntheticDataWarning

    names: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SyntheticDataWarning)
        yield names
    for w in caught:
        if issubclass(w.category, SyntheticDataWarning):
            name = str(w.message).split(":")[0]
            if name not in names:
                names.append(name)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    names.sort()


def table_claim(
    long: pd.DataFrame,
    claim: str,
    group_a: str,
    quantity_a: str,
    relation: str,
    group_b: str,
    quantity_b: str,
    tolerance: float = 0.0,
    combine: str = "every",
    paper: str | None = None,
) -> Claim:
    """Judge a claim comparing two column groups of a :func:`reproduce_table` result: in each
    row that ran, the paired difference A − B (``group_a``'s ``quantity_a`` minus ``group_b``'s
    ``quantity_b``) against ``relation`` and ``tolerance`` (:func:`fatlib.core.verdicts.compare`),
    combined over the rows by ``combine``: ``"every"`` (holds in every network) or ``"most"``
    (in more than half; the paper's "4 of 5"). A row with only synthetic data is never counted
    beside real ones; no row ran: "not run"."""
    if combine not in ("every", "most"):
        raise ValueError(f"combine={combine!r}: use 'every' or 'most'")
    name = long.attrs.get("table", "")
    paper = paper if paper is not None else _paper_pairs(name, group_a, quantity_a, group_b, quantity_b)
    est = long.attrs.get("estimates", {})
    syn = long.attrs.get("synthetic", {})
    ran = long[long["status"] == "ok"]
    rows = []
    for r, grp in ran.groupby("row", sort=True):
        a, b = est.get((r, group_a, quantity_a)), est.get((r, group_b, quantity_b))
        if a is None or b is None:
            continue
        net = f"{grp['network'].iloc[0]} {grp['dataset'].iloc[0]}"
        fmt = ".3f" if quantity_a == "variance" else ".2f"
        unit = "pp²" if quantity_a == "variance" else "pp"
        ev = f"{net}: {a.value:{fmt}} vs {b.value:{fmt}}"
        rows.append(
            compare(ev, paper, a - b, relation, tolerance, ev, unit, synthetic=bool(syn.get(r, False)))
        )
    if not rows:
        return not_run(claim, paper, "no row ran for both columns")
    return (every if combine == "every" else most)(claim, paper, rows)


# ------------------------------------------------------------------------------------------
# FAT Table II: SAT vs FAT under channel stuck@ (§V-A, §V-B)
# ------------------------------------------------------------------------------------------


def table2_claims(long: pd.DataFrame) -> list[Claim]:
    """FAT Table II (§V-B: "minimum and error-free accuracies observed with FAT were better than
    SAT"), on every row of ``long`` (:func:`reproduce_table` ``("fat_table2")``) that ran, each
    network's paired difference with its 95 % interval: FAT's minimum above SAT's, its
    error-free accuracy not below (within :data:`NOT_BELOW_PP`), its variance below."""
    return [
        table_claim(
            long, "FAT's minimum accuracy is above SAT's (every network run)", "fat", "min", ">", "sat", "min"
        ),
        table_claim(
            long,
            f"FAT's error-free accuracy is not below SAT's (every network run, within {NOT_BELOW_PP:g} pp)",
            "fat",
            "error_free",
            ">=",
            "sat",
            "error_free",
            tolerance=NOT_BELOW_PP,
        ),
        table_claim(
            long,
            "FAT's variance is below SAT's (every network run)",
            "fat",
            "variance",
            "<",
            "sat",
            "variance",
        ),
    ]


# ------------------------------------------------------------------------------------------
# FAT Table III and Fig. 10: FAT vs Dropout2D under channel stuck@ (§V-D)
# ------------------------------------------------------------------------------------------


#: tolerance of "close to" claims on error-free accuracy (FAT §V-D: Dropout2D's error-free
#: accuracy is close to FAT's; the paper's differences are 0.05–0.66 pp)
CLOSE_PP = 1.0


def table3_claims(long: pd.DataFrame) -> list[Claim]:
    """FAT Table III (§V-D), on every row of ``long`` (:func:`reproduce_table`
    ``("fat_table3")``) that ran, each with its paired 95 % interval: Dropout2D's error-free
    accuracy within :data:`CLOSE_PP` of FAT's in every network, its minimum above FAT's in most
    networks (paper: 4 of 5), and its minimum above SAT's in every network (SAT runs beside the
    table; the paper shows it in Fig. 10)."""
    return [
        table_claim(
            long,
            f"Dropout2D's error-free accuracy is close to FAT's (within {CLOSE_PP:g} pp, every network)",
            "d2d",
            "error_free",
            "~",
            "fat",
            "error_free",
            tolerance=CLOSE_PP,
        ),
        table_claim(
            long,
            "Dropout2D's minimum accuracy beats FAT's in most networks (paper: 4 of 5)",
            "d2d",
            "min",
            ">",
            "fat",
            "min",
            combine="most",
        ),
        table_claim(
            long,
            "Dropout2D raises the minimum accuracy over SAT (every network run)",
            "d2d",
            "min",
            ">",
            "sat",
            "min",
            paper="Fig. 10, Table III with Table II's SAT minima (e.g. CNVW1A1 80.14 vs 50.83 %)",
        ),
    ]


def figure10(
    profile: str | Profile,
    fat_scheme: str = FAT_M2,
    seed: int = 0,
    data_dir: str | os.PathLike | None = None,
    device: str | torch.device | None = "auto",
    seeds: int | None = None,
) -> list[FaultEvaluation]:
    """FAT Fig. 10 (§V-D): CNVW1A1 trained with FAT (``fat_scheme``, channel injection, p = 5 %)
    and with Dropout2D at 5 % and 2.5 %, each with its channel stuck@ campaign — and SAT, the
    baseline both are measured against (last)."""
    kw = {"seed": seed, "data_dir": data_dir, "device": device, "seeds": seeds}
    return work.gather(
        [
            functools.partial(evaluate_cnv, profile, 1, 1, scheme=fat_scheme, pattern=CHANNEL, p=0.05, **kw),
            functools.partial(evaluate_cnv, profile, 1, 1, scheme=DROPOUT2D, p=0.05, **kw),
            functools.partial(evaluate_cnv, profile, 1, 1, scheme=DROPOUT2D, p=0.025, **kw),
            functools.partial(evaluate_cnv, profile, 1, 1, **kw),
        ]
    )


# ------------------------------------------------------------------------------------------
# FAT Table IV: SAT vs FAT vs Dropout2D under same-pixel stuck@ (§V-D)
# ------------------------------------------------------------------------------------------


def table4_claims(long: pd.DataFrame) -> list[Claim]:
    """FAT Table IV (§V-D), on every row of ``long`` (:func:`reproduce_table` ``("fat_table4",
    campaign_pattern="pixel")``) that ran, each network's paired difference with its 95 %
    interval: under same-pixel stuck@, FAT's minimum accuracy above SAT's and above Dropout2D's,
    FAT's error-free accuracy above SAT's, and Dropout2D's minimum above SAT's."""
    return [
        table_claim(
            long, "FAT's minimum accuracy is above SAT's under pixel stuck@", "fat", "min", ">", "sat", "min"
        ),
        table_claim(
            long, "FAT beats Dropout2D under pixel stuck@ (minimum accuracy)", "fat", "min", ">", "d2d", "min"
        ),
        table_claim(
            long,
            "FAT's error-free accuracy is above SAT's (pixel table's networks)",
            "fat",
            "error_free",
            ">",
            "sat",
            "error_free",
        ),
        table_claim(
            long,
            "Dropout2D's minimum accuracy is above SAT's under pixel stuck@",
            "d2d",
            "min",
            ">",
            "sat",
            "min",
        ),
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
    model the error-free accuracy and the unprotected worst-case error.
    ``summary.attrs["evaluations"]`` keeps each model's :class:`FaultEvaluation` (by label) for
    :func:`fig09_claims`."""
    from fatlib.fat.replication import channel_macs, tmr_frontier

    frontiers, summary, evaluations = [], [], {}
    models = [(w, a, scheme) for w, a in networks for scheme in (SAT, fat_scheme)]
    evaluated = work.gather(
        [
            functools.partial(
                evaluate_cnv,
                profile,
                w,
                a,
                **training_args(scheme, fat_p),
                seed=seed,
                data_dir=data_dir,
                device=device,
            )
            for w, a, scheme in models
        ]
    )
    for (_, _, scheme), ev in zip(models, evaluated, strict=True):
        fat = scheme != SAT
        front = tmr_frontier(
            ev.campaign, channel_macs(ev.train.model), voter_cost=voter_cost, error_free=ev.error_free
        )
        training = "FAT" if fat else "SAT"
        evaluations[ev.label] = ev
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
    table = pd.DataFrame(summary)
    table.attrs["evaluations"] = evaluations
    return pd.concat(frontiers, ignore_index=True), table


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


#: bootstrap replicates of a triplication frontier (each one re-sorts the channels)
FRONTIER_REPLICATES = 200


def _front_share(points: np.ndarray, is_fat: np.ndarray) -> float:
    """The share of FAT's among the Pareto-optimal (cost, worst error) points of both frontiers."""
    order = np.lexsort((points[:, 1], points[:, 0]))
    best, front = np.inf, []
    for k in order:
        if points[k, 1] < best - 1e-12:
            front.append(k)
            best = points[k, 1]
    return float(np.mean(is_fat[front])) if front else float("nan")


def pareto_share(sat: FaultEvaluation, fat: FaultEvaluation, voter_cost: float = 1.0) -> Estimate:
    """FAT Fig. 9: the share of FAT's points among the Pareto-optimal points of the SAT and FAT
    triplication frontiers (:func:`fatlib.fat.replication.tmr_frontier`; cost against worst-case
    error), with a paired bootstrap over the test images (:data:`FRONTIER_REPLICATES` resamples of
    every fault's accuracy; each re-sorts the channels)."""
    from fatlib.fat.replication import channel_macs, tmr_frontier

    def share(sat_acc: np.ndarray | None, fat_acc: np.ndarray | None, sat_ef: float, fat_ef: float) -> float:
        pts, tags = [], []
        for ev, acc, ef, tag in ((sat, sat_acc, sat_ef, False), (fat, fat_acc, fat_ef, True)):
            camp = ev.campaign if acc is None else ev.campaign.assign(accuracy=acc)
            f = tmr_frontier(camp, channel_macs(ev.train.model), voter_cost=voter_cost, error_free=ef)
            pts.append(f[["cost", "worst_error"]].to_numpy(dtype=float))
            tags.append(np.full(len(f), tag))
        return _front_share(np.concatenate(pts), np.concatenate(tags))

    value = share(None, None, sat.error_free, fat.error_free)
    if sat.outcomes is None or fat.outcomes is None or sat.images_key != fat.images_key:
        return Estimate(value, None, "no paired per-image outcomes: spread unknown", False)
    w = image_weights(sat.outcomes.n_images, key=sat.images_key)[:FRONTIER_REPLICATES]
    tot = w.sum(axis=1)
    acc = {id(ev): 100.0 * (w @ ev.outcomes.faults.astype(np.float32).T) / tot[:, None] for ev in (sat, fat)}
    ef = {id(ev): 100.0 * (w @ ev.outcomes.golden.astype(np.float32)) / tot for ev in (sat, fat)}
    reps = np.array(
        [share(acc[id(sat)][b], acc[id(fat)][b], ef[id(sat)][b], ef[id(fat)][b]) for b in range(len(w))]
    )
    n = sat.outcomes.n_images
    return Estimate(value, reps, f"paired bootstrap over {n:,} test images ({len(w)} frontier resamples)")


def fig09_claims(needed: pd.DataFrame, summary: pd.DataFrame | None = None) -> list[Claim]:
    """FAT §V-C (Fig. 9), per network of ``needed`` (:func:`channels_needed_table`), with 95 %
    intervals from the networks kept in ``summary`` (:func:`selective_tmr`): SAT must triplicate
    channels to match what FAT gives unprotected (FAT's minimum above SAT's), and FAT's points
    are the Pareto-dominating ones (more than half of the joint Pareto front is FAT's:
    :func:`pareto_share`)."""
    from fatlib.core.paper import quote

    evs = {} if summary is None else summary.attrs.get("evaluations", {})
    paper = (
        f"Fig. 9, §V-C: {quote('fat_fig9_sat_channels'):g} channels under SAT, "
        f"{quote('fat_fig9_fat_channels'):g} under FAT"
    )
    out = []
    for r in sat_matching_fat(needed).itertuples():
        pair = [e for e in evs.values() if e.network == r.network]
        sat = next((e for e in pair if e.train.config["scheme"] == SAT), None)
        fat = next((e for e in pair if e.train.config["scheme"] != SAT), None)
        text = f"{r.network}: SAT must triplicate channels to match FAT's unprotected worst case"
        evidence = (
            f"SAT needs {r.channels} channels (cost {r.cost:.3f}) to reach {r.target_error:.2f} % "
            "worst-case error"
        )
        if sat is None or fat is None:
            out.append(not_run(text, paper, "the networks were not kept with the table"))
            continue
        c = diff_claim(text, paper, fat, sat, "min", ">")
        out.append(
            compare(
                text,
                paper,
                fat.estimate("min") - sat.estimate("min"),
                ">",
                0.0,
                f"{evidence}; FAT min {fat.minimum:.2f} vs SAT min {sat.minimum:.2f} %",
                synthetic=c.synthetic,
            )
        )
        share = pareto_share(sat, fat)
        out.append(
            compare(
                f"{r.network}: FAT's points are the Pareto-dominating ones (share of the joint front > 1/2)",
                "Fig. 9",
                share - Estimate(0.5),
                ">",
                0.0,
                f"FAT holds {100 * share.value:.0f} % of the joint Pareto front "
                "(difference shown: share − 0.5)",
                unit="",
                synthetic=c.synthetic,
            )
        )
    return out


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


@work.unit
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
    from fatlib.fat.campaign import enumerate_faults, load_outcomes, stuck_at_campaign

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
        outcomes=True,
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
        outcomes=load_outcomes(folder),
        images_key=fp,
        synthetic=src.synthetic,
    )


@dataclass
class DoReFaFigure8:
    """FAT Fig. 8 (and Table II's DoReFa-Net row) reproduced, or the reason it was not run.

    ``summary``: one row per network (SAT, FAT at each p) with error-free / min / variance,
    faults evaluated and the fault population; ``per_layer``: per network, layer and value the
    min / max / mean accuracy; ``table2``: the paper's Table II row beside ours
    (``paper.side_by_side``); ``claims``: the figure's :class:`~fatlib.core.verdicts.Claim` list
    ("not run" when ImageNet is absent)."""

    source: ImageNetSource
    profile: str
    p_values: list[float]
    evaluations: list[FaultEvaluation]
    summary: pd.DataFrame
    per_layer: pd.DataFrame
    table2: pd.DataFrame
    claims: list[Claim]

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

    paper = (
        f"Table II, Fig. 8: SAT min {row['sat_min']:.2f}, error-free {row['sat_error_free']:.2f}, "
        f"variance {row['sat_variance']:.2f}; FAT (p={paper_p:g}%) min {row['fat_min']:.2f}, "
        f"error-free {row['fat_error_free']:.2f}, variance {row['fat_variance']:.2f}"
    )
    claims: list[Claim] = []
    for claim, quantity, relation, tol in (
        ("FAT's minimum accuracy is above SAT's (every p)", "min", ">", 0.0),
        (
            f"FAT's error-free accuracy is not below SAT's (every p, within {NOT_BELOW_PP:g} pp)",
            "error_free",
            ">=",
            NOT_BELOW_PP,
        ),
        ("FAT lowers the variance (every p)", "variance", "<", 0.0),
    ):
        if sat is None:
            claims.append(not_run(claim, paper, status))
            continue
        rows = [
            diff_claim(f"p = {100 * e.train.config['p']:g} %", paper, e, sat, quantity, relation, tol)
            for e in fat
        ]
        claims.append(every(claim, paper, rows))
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
