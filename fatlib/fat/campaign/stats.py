"""Tables (FAT Tables I–IV) and estimates from a campaign table: :func:`summarize` per layer and
value (Table I), :func:`overall` in one line (Tables II–IV), :func:`estimate` from a sample.

Beyond the paper: ``sample=N`` evaluates N faults drawn uniformly without replacement and
:func:`estimate` gives the mean / worst case with confidence bounds — how campaigns scale to
ImageNet-size networks.
"""

from __future__ import annotations

import math
import statistics
from typing import Any

import numpy as np
import pandas as pd


def _error_free(df: pd.DataFrame, error_free: float | None) -> float:
    if error_free is not None:
        return float(error_free)
    return float(df.attrs.get("campaign", {}).get("error_free", float("nan")))


def check_results(df: pd.DataFrame) -> None:
    """Refuse (ValueError) anything but a campaign table."""
    need = {"layer", "value", "correct", "total", "accuracy"}
    if not isinstance(df, pd.DataFrame) or not need <= set(df.columns):
        raise ValueError(f"expected a campaign table with columns {sorted(need)} (+ channel or row/col)")


def layer_statistics(df: pd.DataFrame, ddof: int = 0) -> pd.DataFrame:
    """Per layer and stuck-at value (ascending): ``count``, ``min``, ``max``, ``mean`` and ``var``
    (with ``ddof``) of the accuracy (%) — the one place the per-layer statistics of FAT Table I /
    Fig. 3 are computed (:func:`summarize`, :meth:`fatlib.fat.experiments.FaultEvaluation.per_layer`)."""
    g = df.groupby(["layer", "value"], sort=True)["accuracy"]
    out = g.agg(["count", "min", "max", "mean"])
    out["var"] = g.var(ddof=ddof)
    return out.reset_index()


def summarize(df: pd.DataFrame, error_free: float | None = None, ddof: int = 0) -> pd.DataFrame:
    """Per layer and stuck-at value: ``faults``, ``units`` (channels, or pixel positions),
    ``min`` / ``max`` / ``mean`` / ``var`` of the accuracy (%) and the ``error_free`` accuracy —
    FAT Algorithm 1's "min and max accuracy observed for the layer" and the columns of Table I
    (s@0 = value −1, s@1 = value +1 for A1). ``var`` uses ``ddof`` (0: the population variance
    of an exhaustive campaign). ``error_free`` defaults to the campaign's golden accuracy."""
    check_results(df)
    stats = layer_statistics(df, ddof=ddof)
    if "channel" in df.columns:
        units = df.groupby(["layer", "value"], sort=True)["channel"].nunique()
    else:
        units = (
            df.drop_duplicates(["layer", "value", "row", "col"]).groupby(["layer", "value"], sort=True).size()
        )
    out = pd.DataFrame(
        {
            "layer": stats["layer"].astype(int),
            "value": stats["value"].astype(float),
            "faults": stats["count"].astype(int),
            "units": units.to_numpy().astype(int),
            "min": stats["min"].astype(float),
            "max": stats["max"].astype(float),
            "mean": stats["mean"].astype(float),
            "var": stats["var"].astype(float),
            "error_free": _error_free(df, error_free),
        }
    )
    return out.reset_index(drop=True)


def overall(df: pd.DataFrame, error_free: float | None = None, ddof: int = 0) -> pd.Series:
    """One campaign in one line — FAT Table II / III / IV: ``error_free``, ``min`` ("Min Acc."),
    ``var`` ("Variance" of the accuracies of all faults, ``ddof`` as in :func:`summarize`),
    plus ``max``, ``mean``, ``faults`` and the worst fault (``worst_layer``, ``worst_value``,
    ``worst_where``: channel or (row, col))."""
    check_results(df)
    if len(df) == 0:
        raise ValueError("the campaign table is empty")
    acc = df["accuracy"].to_numpy(dtype=np.float64)
    i = int(np.argmin(acc))
    worst = df.iloc[i]
    where = int(worst["channel"]) if "channel" in df.columns else (int(worst["row"]), int(worst["col"]))
    return pd.Series(
        {
            "error_free": _error_free(df, error_free),
            "min": float(acc.min()),
            "max": float(acc.max()),
            "mean": float(acc.mean()),
            "var": float(acc.var(ddof=ddof)) if len(acc) > ddof else float("nan"),
            "faults": int(len(df)),
            "worst_layer": int(worst["layer"]),
            "worst_value": float(worst["value"]),
            "worst_where": where,
        },
        dtype=object,
    )


def _z(confidence: float) -> float:
    return statistics.NormalDist().inv_cdf(0.5 + confidence / 2.0)


def wilson_interval(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion, in percent."""
    if trials <= 0:
        return float("nan"), float("nan")
    z = _z(confidence)
    p = successes / trials
    den = 1.0 + z * z / trials
    center = (p + z * z / (2 * trials)) / den
    half = z / den * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials))
    return 100.0 * max(0.0, center - half), 100.0 * min(1.0, center + half)


def estimate(
    df: pd.DataFrame, population_size: int | dict[int, int] | None = None, confidence: float = 0.95
) -> pd.DataFrame:
    """Estimates from a sampled campaign (``sample=N``; beyond the paper: how campaigns scale to
    ImageNet-size networks), per layer and overall (``layer`` = <NA>).

    Columns: ``sampled`` (n) and ``population`` (N faults); ``mean`` accuracy of all N faults
    with a normal confidence interval using the finite-population correction (exact when
    n = N); ``min``, the worst sampled fault, with the Wilson interval of its accuracy over the
    test images; ``p_missed_worst`` = 1 − n/N, the probability that the truly worst fault was
    not drawn; ``worse_fraction_bound`` q = 1 − (1 − confidence)^(1/n): with the given
    confidence at most a fraction q of all faults (``worse_count_bound`` = q·N) is worse than
    the sample minimum, because P(that fraction > q) ≤ (1 − q)^n; ``pooled`` accuracy over all
    sampled (fault, image) pairs with its Wilson interval (approximate: images are shared).

    ``population_size``: N overall, or a dict per layer; default from ``df.attrs["campaign"]``.
    """
    check_results(df)
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence={confidence!r} must lie in (0, 1)")
    meta = df.attrs.get("campaign", {})
    by_layer: dict[int, int] = {}
    if isinstance(population_size, dict):
        by_layer = {int(k): int(v) for k, v in population_size.items()}
        total_pop = sum(by_layer.values())
    elif population_size is not None:
        total_pop = int(population_size)
    else:
        if "population_size" not in meta:
            raise ValueError("population_size is needed (the table carries no campaign manifest)")
        total_pop = int(meta["population_size"])
        by_layer = {int(k): int(v) for k, v in meta.get("population_by_layer", {}).items()}
    if total_pop < len(df):
        raise ValueError(f"population_size={total_pop} is smaller than the {len(df)} sampled faults")
    z = _z(confidence)

    def row(grp: pd.DataFrame, pop: int | None, layer: Any) -> dict:
        n = len(grp)
        acc = grp["accuracy"].to_numpy(dtype=np.float64)
        out: dict[str, Any] = {"layer": layer, "sampled": n, "population": pop}
        if n == 0:
            return out
        mean = float(acc.mean())
        if pop is not None and n >= pop:
            lo = hi = mean
        elif n >= 2:
            fpc = math.sqrt((pop - n) / (pop - 1)) if pop is not None and pop > 1 else 1.0
            se = float(acc.std(ddof=1)) / math.sqrt(n) * fpc
            lo, hi = mean - z * se, mean + z * se
        else:
            lo = hi = float("nan")
        i = int(np.argmin(acc))
        w = grp.iloc[i]
        mlo, mhi = wilson_interval(int(w["correct"]), int(w["total"]), confidence)
        q = 1.0 - (1.0 - confidence) ** (1.0 / n)
        plo, phi = wilson_interval(int(grp["correct"].sum()), int(grp["total"].sum()), confidence)
        out.update(
            {
                "mean": mean,
                "mean_low": lo,
                "mean_high": hi,
                "min": float(acc.min()),
                "min_low": mlo,
                "min_high": mhi,
                "p_missed_worst": (1.0 - n / pop) if pop else float("nan"),
                "worse_fraction_bound": 0.0 if (pop is not None and n >= pop) else q,
                "worse_count_bound": (0.0 if n >= pop else q * pop) if pop else float("nan"),
                "pooled": 100.0 * grp["correct"].sum() / grp["total"].sum(),
                "pooled_low": plo,
                "pooled_high": phi,
            }
        )
        return out

    rows = [row(grp, by_layer.get(int(L)), int(L)) for L, grp in df.groupby("layer", sort=True)]
    rows.append(row(df, total_pop, pd.NA))
    cols = [
        "layer",
        "sampled",
        "population",
        "mean",
        "mean_low",
        "mean_high",
        "min",
        "min_low",
        "min_high",
        "p_missed_worst",
        "worse_fraction_bound",
        "worse_count_bound",
        "pooled",
        "pooled_low",
        "pooled_high",
    ]
    out = pd.DataFrame(rows).reindex(columns=cols)
    out["layer"] = out["layer"].astype("Int64")
    out["population"] = out["population"].astype("Int64")
    return out
