"""Verdicts a reader can trust: every claim of the papers compared on our numbers *with their
uncertainty*, and judged **holds**, **does not hold** or **inconclusive** (or **not run**).

How a claim is judged
---------------------
A claim compares two quantities ``A`` and ``B`` (or one quantity with a bound) through their
difference ``d = A − B``, estimated with a 95 % interval ``[lo, hi]``:

========  ===========================  ====================  =====================
relation  the claim                    holds when            does not hold when
========  ===========================  ====================  =====================
``>``     A is above B                 lo > 0                hi ≤ 0
``<``     A is below B                 hi < 0                lo ≥ 0
``>=``    A is not below B (−t)        lo ≥ −t               hi < −t
``<=``    A is not above B (+t)        hi ≤ t                lo > t
``~``     A ≈ B within ±t              −t ≤ lo and hi ≤ t    lo > t or hi < −t
========  ===========================  ====================  =====================

and **inconclusive** otherwise: the data cannot decide. ``t`` is the claim's stated tolerance.
A quantity with no sampling error (a count, a byte size: :class:`Estimate` without replicates)
has the interval ``[d, d]``, so its verdict is never inconclusive. A claim whose inputs did not
run is **not run**, never "does not hold".

Where the intervals come from
-----------------------------
* **Paired bootstrap over test images** (:func:`image_weights`, :func:`campaign_estimates`): two
  networks scored on the same test images are resampled with the *same* multinomial image
  weights, so the difference of their accuracies (error-free, the campaign's minimum and
  variance over faults, from each fault's per-image outcomes) keeps its pairing. Basic
  (reverse-percentile) intervals from :data:`REPLICATES` resamples, which correct the bias of a
  resampled minimum or variance (:meth:`Estimate.interval`).
* **Seeds** (:func:`seed_mean`): where a profile trains several seeds, a quantity is the mean
  over seeds, and each bootstrap replicate also resamples the seeds (a two-level bootstrap), so
  the interval holds the spread between trainings as well as the test sample.
* Claims over several networks (:func:`every`, :func:`most`) combine the per-network verdicts.

FAT §V and FT-DeepNets §4 report single runs without intervals; these rules are this book's.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = [
    "HOLDS",
    "DOES_NOT_HOLD",
    "INCONCLUSIVE",
    "NOT_RUN",
    "VERDICTS",
    "RELATIONS",
    "CONFIDENCE",
    "REPLICATES",
    "Estimate",
    "Claim",
    "image_weights",
    "campaign_estimates",
    "accuracy_estimate",
    "seed_mean",
    "seed_estimate",
    "mean_of",
    "decide",
    "compare",
    "every",
    "most",
    "not_run",
    "claims_table",
    "CLAIM_COLUMNS",
    "verdict_counts",
]

HOLDS = "holds"
DOES_NOT_HOLD = "does not hold"
INCONCLUSIVE = "inconclusive"
NOT_RUN = "not run"
#: the four verdicts, in the order the scoreboard counts them
VERDICTS = (HOLDS, DOES_NOT_HOLD, INCONCLUSIVE, NOT_RUN)
#: the relations a claim can state (see the module docstring)
RELATIONS = (">", "<", ">=", "<=", "~")
#: the confidence of every interval and verdict
CONFIDENCE = 0.95
#: bootstrap resamples per estimate
REPLICATES = 1000


def _seed_of(key: object) -> int:
    return int.from_bytes(hashlib.sha256(repr(key).encode()).digest()[:8], "little")


def image_weights(n_images: int, key: object = 0, replicates: int = REPLICATES) -> np.ndarray:
    """Bootstrap weights over ``n_images`` test images: ``replicates`` × ``n_images`` counts
    (each row a multinomial resample, summing to ``n_images``), a pure function of ``key`` and
    the sizes — the same images under the same key get the same weights, which is what pairs two
    networks scored on them (key: the images' fingerprint)."""
    if n_images < 1:
        raise ValueError(f"n_images={n_images}: a bootstrap needs at least one test image")
    if replicates < 2:
        raise ValueError(f"replicates={replicates}: use at least 2 (the book uses {REPLICATES})")
    rng = np.random.Generator(np.random.PCG64(_seed_of(("images", n_images, key))))
    idx = rng.integers(0, n_images, size=(replicates, n_images))
    w = np.zeros((replicates, n_images), dtype=np.float32)
    np.add.at(w, (np.arange(replicates)[:, None], idx), 1.0)
    return w


@dataclass(frozen=True)
class Estimate:
    """A quantity measured on our numbers: its ``value`` and, when it has sampling error, its
    bootstrap ``replicates`` (None: exact — a count, a size; its interval is the value itself).
    ``method`` says where the uncertainty comes from (shown on the methods page)."""

    value: float
    replicates: np.ndarray | None = field(default=None, repr=False, compare=False)
    method: str = "exact"
    #: False: the quantity has sampling error that these numbers cannot measure (one seed of a
    #: random experiment): its interval is unbounded, so its verdicts are inconclusive
    spread_known: bool = True

    def interval(self, confidence: float = CONFIDENCE) -> tuple[float, float]:
        """The basic (reverse-percentile) bootstrap interval ``[2v − q_hi, 2v − q_lo]``: it
        corrects the bias of resampled minima and variances (a resampled minimum over many
        faults is lower than the minimum, a resampled variance higher), and equals the
        percentile interval for a symmetric spread. ``[value, value]`` when exact."""
        if not self.spread_known:
            return -float("inf"), float("inf")
        if self.replicates is None:
            return float(self.value), float(self.value)
        a = (1 - confidence) / 2
        q_lo, q_hi = np.quantile(self.replicates, [a, 1 - a])
        return float(2 * self.value - q_hi), float(2 * self.value - q_lo)

    def __sub__(self, other: Estimate) -> Estimate:
        """The paired difference: replicates subtracted one by one (same resamples)."""
        return _combine(self, other, np.subtract)

    def __add__(self, other: Estimate) -> Estimate:
        return _combine(self, other, np.add)

    def scaled(self, factor: float) -> Estimate:
        """This estimate times ``factor`` (e.g. a ratio to a fixed reference)."""
        reps = None if self.replicates is None else self.replicates * factor
        return Estimate(self.value * factor, reps, self.method, self.spread_known)

    def __repr__(self) -> str:
        lo, hi = self.interval()
        return f"Estimate({self.value:.4g}, 95% [{lo:.4g}, {hi:.4g}], {self.method!r})"


def _combine(a: Estimate, b: Estimate, op) -> Estimate:
    value = float(op(a.value, b.value))
    if not (a.spread_known and b.spread_known):
        return Estimate(value, None, a.method if not a.spread_known else b.method, False)
    if a.replicates is None and b.replicates is None:
        return Estimate(value, None, a.method)
    ra = a.replicates if a.replicates is not None else np.full_like(b.replicates, a.value)
    rb = b.replicates if b.replicates is not None else np.full_like(a.replicates, b.value)
    if ra.shape != rb.shape:
        raise ValueError(
            f"cannot pair estimates with {ra.shape[0]} and {rb.shape[0]} replicates: "
            "build both from the same image weights"
        )
    method = a.method if a.replicates is not None else b.method
    return Estimate(value, op(ra, rb), method)


def accuracy_estimate(correct: np.ndarray, weights: np.ndarray | None) -> Estimate:
    """Accuracy in percent of per-image outcomes ``correct`` (images,) with its paired bootstrap
    (``weights`` from :func:`image_weights`; None: exact)."""
    c = np.asarray(correct, dtype=np.float64)
    value = 100.0 * float(c.mean())
    if weights is None:
        return Estimate(value)
    reps = 100.0 * (weights @ c) / weights.sum(axis=1)
    return Estimate(value, reps.astype(np.float64), f"paired bootstrap over {c.shape[0]:,} test images")


def campaign_estimates(golden: np.ndarray, faults: np.ndarray, weights: np.ndarray) -> dict[str, Estimate]:
    """FAT Tables II–IV's quantities of one campaign with their paired bootstrap: ``error_free``
    (accuracy without faults), ``min`` (lowest accuracy under any single fault) and ``variance``
    (of the accuracies over faults, ddof 0), from the per-image outcomes ``golden`` (images,) and
    ``faults`` (faults × images; :class:`fatlib.fat.campaign.Outcomes`) resampled with
    ``weights`` (replicates × images, :func:`image_weights`)."""
    golden = np.asarray(golden, dtype=bool)
    faults = np.asarray(faults, dtype=bool)
    if faults.shape[1] != golden.shape[0] or weights.shape[1] != golden.shape[0]:
        raise ValueError(
            f"outcomes over {golden.shape[0]} images, faults over {faults.shape[1]}, weights over "
            f"{weights.shape[1]}: they must be the same images"
        )
    n = golden.shape[0]
    method = f"paired bootstrap over {n:,} test images"
    total = weights.sum(axis=1)
    acc = 100.0 * faults.mean(axis=1)
    out = {"error_free": accuracy_estimate(golden, weights)}
    reps = np.empty((weights.shape[0], faults.shape[0]), dtype=np.float64)
    f32 = faults.astype(np.float32)
    step = max(1, int(2e7 // max(1, faults.shape[0] * 4)))
    for s in range(0, weights.shape[0], step):  # bounded memory: replicates × faults floats
        reps[s : s + step] = 100.0 * (weights[s : s + step] @ f32.T) / total[s : s + step, None]
    out["min"] = Estimate(float(acc.min()), reps.min(axis=1), method)
    out["variance"] = Estimate(float(acc.var()), reps.var(axis=1), method)
    return out


def mean_of(estimates: Sequence[Estimate]) -> Estimate:
    """The mean of several estimates, replicate by replicate (paired ones: same resamples)."""
    if not estimates:
        raise ValueError("mean_of needs at least one estimate")
    total = estimates[0]
    for e in estimates[1:]:
        total = total + e
    return total.scaled(1.0 / len(estimates))


def seed_mean(per_seed: Sequence[Estimate], key: object = 0) -> Estimate:
    """The mean over trainings with different seeds, its replicates also resampling the seeds:
    replicate ``b`` averages the ``b``-th replicates of seeds drawn with replacement (a two-level
    bootstrap). One seed: that seed's estimate unchanged."""
    per_seed = list(per_seed)
    if not per_seed:
        raise ValueError("seed_mean needs at least one seed's estimate")
    if len(per_seed) == 1:
        return per_seed[0]
    value = float(np.mean([e.value for e in per_seed]))
    if all(e.replicates is None for e in per_seed):
        return Estimate(value, None, "exact")
    reps = np.stack(
        [e.replicates if e.replicates is not None else np.full(REPLICATES, e.value) for e in per_seed]
    )
    s, b = reps.shape
    rng = np.random.Generator(np.random.PCG64(_seed_of(("seeds", s, key))))
    pick = rng.integers(0, s, size=(b, s))
    boot = reps[pick, np.arange(b)[:, None]].mean(axis=1)
    method = next(e.method for e in per_seed if e.replicates is not None)
    return Estimate(value, boot, f"{method}, resampling {s} seeds")


#: Student's t, 97.5 % quantile, for 1–30 degrees of freedom (two-sided 95 % intervals)
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
         2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
         2.052, 2.048, 2.045, 2.042)  # fmt: skip


def seed_estimate(values: Sequence[float], unit_method: str = "seeds") -> Estimate:
    """The mean of a quantity measured once per seed (``values``) with Student's t interval
    (95 %) from their spread — for experiments whose randomness is the seed (FT-DeepNets' error
    draws). For a *difference* between two methods run on the same seeds, pass the per-seed
    differences (paired). One seed: the spread is unknown and the verdict inconclusive."""
    v = np.asarray([float(x) for x in values], dtype=np.float64)
    if v.size == 0 or not np.isfinite(v).all():
        raise ValueError(f"seed_estimate needs finite values, got {list(values)}")
    n = v.size
    if n == 1:
        return Estimate(
            float(v[0]),
            None,
            f"one {unit_method[:-1] if unit_method.endswith('s') else unit_method}: spread unknown",
            False,
        )
    se = float(v.std(ddof=1) / np.sqrt(n))
    t = _T975[n - 2] if n - 1 <= len(_T975) else 1.96
    # a symmetric grid of replicates whose 2.5 / 97.5 % quantiles are mean ∓ t·se
    grid = np.linspace(-1.0, 1.0, REPLICATES) * t * se / 0.95
    return Estimate(float(v.mean()), float(v.mean()) + grid, f"t interval over {n} {unit_method}")


def decide(
    difference: Estimate | None, relation: str, tolerance: float = 0.0, confidence: float = CONFIDENCE
) -> str:
    """The verdict on ``difference`` (A − B) for ``relation`` with ``tolerance`` (module
    docstring's table); ``"not run"`` when the difference is None."""
    if relation not in RELATIONS:
        raise ValueError(f"relation={relation!r}: use one of {RELATIONS}")
    if tolerance < 0:
        raise ValueError(f"tolerance={tolerance}: a tolerance is never negative")
    if difference is None or not np.isfinite(difference.value):
        return NOT_RUN
    lo, hi = difference.interval(confidence)
    t = tolerance
    if relation == ">":
        return HOLDS if lo > 0 else DOES_NOT_HOLD if hi <= 0 else INCONCLUSIVE
    if relation == "<":
        return HOLDS if hi < 0 else DOES_NOT_HOLD if lo >= 0 else INCONCLUSIVE
    if relation == ">=":
        return HOLDS if lo >= -t else DOES_NOT_HOLD if hi < -t else INCONCLUSIVE
    if relation == "<=":
        return HOLDS if hi <= t else DOES_NOT_HOLD if lo > t else INCONCLUSIVE
    return HOLDS if (-t <= lo and hi <= t) else DOES_NOT_HOLD if (lo > t or hi < -t) else INCONCLUSIVE


@dataclass(frozen=True)
class Claim:
    """One claim of a paper judged on our numbers (a row of a page's claims table and of the
    book's scoreboard).

    ``claim``: what the paper says; ``paper``: where and with what number (e.g. "Fig. 7:
    85.07 vs 82.57 %"); ``verdict``: one of :data:`VERDICTS`; ``difference``, ``low``,
    ``high``: our A − B and its 95 % interval (None when not run), in ``unit``; ``relation``
    and ``tolerance``: what was tested; ``evidence``: the numbers behind it; ``method``: where
    the interval comes from; ``kind``: ``"claim"`` (the paper's) or ``"observation"`` (ours,
    not a claim of the paper: not counted on the scoreboard); ``synthetic``: computed on a
    synthetic stand-in for the data (smoke profile, or data missing) — shown, never counted."""

    claim: str
    paper: str
    verdict: str
    difference: float | None = None
    low: float | None = None
    high: float | None = None
    unit: str = "pp"
    relation: str = ">"
    tolerance: float = 0.0
    evidence: str = ""
    method: str = "exact"
    kind: str = "claim"
    synthetic: bool = False

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict={self.verdict!r}: use one of {VERDICTS}")
        if self.kind not in ("claim", "observation"):
            raise ValueError(f"kind={self.kind!r}: use 'claim' or 'observation'")

    def interval_text(self) -> str:
        """``"+1.23 [−0.40, +2.90] pp"`` (or "–" when not run)."""
        if self.difference is None or not np.isfinite(self.difference):
            return "–"
        unit = f" {self.unit}" if self.unit else ""
        if self.low is None or self.high is None or (self.low == self.high and self.method == "exact"):
            return f"{self.difference:+.3g}{unit} (exact)"
        if not (np.isfinite(self.low) and np.isfinite(self.high)):
            return f"{self.difference:+.3g}{unit} (spread unknown)"
        return f"{self.difference:+.3g} [{self.low:+.3g}, {self.high:+.3g}]{unit}"


def compare(
    claim: str,
    paper: str,
    difference: Estimate | None,
    relation: str,
    tolerance: float = 0.0,
    evidence: str = "",
    unit: str = "pp",
    kind: str = "claim",
    synthetic: bool = False,
) -> Claim:
    """Judge one claim from its difference A − B (:func:`decide`) into a :class:`Claim`."""
    verdict = decide(difference, relation, tolerance)
    if verdict == NOT_RUN:
        return Claim(
            claim,
            paper,
            NOT_RUN,
            None,
            None,
            None,
            unit,
            relation,
            tolerance,
            evidence or "not run",
            "–",
            kind,
            synthetic,
        )
    lo, hi = difference.interval()
    return Claim(
        claim,
        paper,
        verdict,
        float(difference.value),
        lo,
        hi,
        unit,
        relation,
        tolerance,
        evidence,
        difference.method,
        kind,
        synthetic,
    )


def not_run(claim: str, paper: str, why: str, kind: str = "claim") -> Claim:
    """A claim whose inputs did not run (``why``: the reason shown as its evidence)."""
    return Claim(claim, paper, NOT_RUN, evidence=why, method="–", kind=kind)


def _support(c: Claim) -> float:
    """How far a claim's interval is from failing its relation (smaller: weaker)."""
    if c.difference is None:
        return float("inf")
    lo, hi, t = c.low, c.high, c.tolerance
    return {
        ">": lo,
        "<": -hi,
        ">=": lo + t,
        "<=": t - hi,
        "~": min(lo + t, t - hi),
    }[c.relation]


def _counted(rows: Sequence[Claim]) -> list[Claim]:
    """The rows that ran; rows on synthetic stand-ins only when no row ran on real data (a
    synthetic row is never counted toward "every network")."""
    ran = [r for r in rows if r.verdict != NOT_RUN]
    real = [r for r in ran if not r.synthetic]
    return real or ran


def every(claim: str, paper: str, rows: Sequence[Claim], kind: str = "claim") -> Claim:
    """A claim over several networks ("FAT's minimum is above SAT's in every network"): holds
    when it holds in every network that ran, does not hold when it does not hold in one of
    them, inconclusive otherwise; not run when none ran. The difference shown is the network
    with the weakest support; the evidence lists them all."""
    ran = _counted(rows)
    evidence = "; ".join(f"{r.evidence}: {r.interval_text()} → {r.verdict}" for r in rows)
    if not ran:
        return not_run(claim, paper, evidence or "no network ran", kind)
    verdicts = {r.verdict for r in ran}
    verdict = DOES_NOT_HOLD if DOES_NOT_HOLD in verdicts else HOLDS if verdicts == {HOLDS} else INCONCLUSIVE
    weakest = min(ran, key=_support)
    return Claim(
        claim,
        paper,
        verdict,
        weakest.difference,
        weakest.low,
        weakest.high,
        weakest.unit,
        weakest.relation,
        weakest.tolerance,
        f"weakest: {weakest.evidence}; all: {evidence}",
        weakest.method + "; every network must hold",
        kind,
        any(r.synthetic for r in ran),
    )


def most(claim: str, paper: str, rows: Sequence[Claim], kind: str = "claim") -> Claim:
    """A claim that holds in most networks (the paper: "4 of 5"): holds when more than half of
    the networks that ran hold, does not hold when at most half could (the others do not
    hold), inconclusive otherwise. The difference shown is the median network's."""
    ran = _counted(rows)
    evidence = "; ".join(f"{r.evidence}: {r.interval_text()} → {r.verdict}" for r in rows)
    if not ran:
        return not_run(claim, paper, evidence or "no network ran", kind)
    n = len(ran)
    holds = sum(r.verdict == HOLDS for r in ran)
    could = sum(r.verdict != DOES_NOT_HOLD for r in ran)
    verdict = HOLDS if holds > n / 2 else DOES_NOT_HOLD if could <= n / 2 else INCONCLUSIVE
    mid = sorted(ran, key=_support)[n // 2]
    return Claim(
        claim,
        paper,
        verdict,
        mid.difference,
        mid.low,
        mid.high,
        mid.unit,
        mid.relation,
        mid.tolerance,
        f"{holds} of {n} hold, {n - could} do not; {evidence}",
        mid.method + "; more than half of the networks must hold",
        kind,
        any(r.synthetic for r in ran),
    )


#: the columns of :func:`claims_table` (and of every page's ``claims.csv``)
CLAIM_COLUMNS = [
    "claim",
    "paper",
    "ours",
    "verdict",
    "difference",
    "low",
    "high",
    "unit",
    "relation",
    "tolerance",
    "evidence",
    "method",
    "kind",
    "synthetic",
]


def claims_table(claims: Sequence[Claim | tuple]) -> pd.DataFrame:
    """A page's claims table: one row per :class:`Claim` (columns :data:`CLAIM_COLUMNS`;
    ``ours`` is the difference with its 95 % interval as text). A bare ``(claim, holds,
    evidence)`` tuple is an exact comparison (``holds`` None: not run)."""
    rows = []
    for c in claims:
        if not isinstance(c, Claim):
            text, holds, evidence = c
            verdict = NOT_RUN if holds is None else HOLDS if bool(holds) else DOES_NOT_HOLD
            c = Claim(text, "", verdict, evidence=str(evidence))
        row = {k: getattr(c, k) for k in CLAIM_COLUMNS if k != "ours"}
        row["ours"] = c.interval_text()
        rows.append(row)
    return pd.DataFrame(rows, columns=CLAIM_COLUMNS)


def verdict_counts(table: pd.DataFrame) -> dict[str, int]:
    """How many of the paper claims of ``table`` (:func:`claims_table` rows, kind "claim", not
    synthetic) get each verdict."""
    t = table
    if "kind" in t:
        t = t[t["kind"] == "claim"]
    if "synthetic" in t:
        t = t[~t["synthetic"].astype(bool)]
    return {v: int((t["verdict"] == v).sum()) for v in VERDICTS}
