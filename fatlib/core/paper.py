"""The papers' own numbers (every table of FAT and FT-DeepNets, transcribed as CSV in
``fatlib/core/paper_tables/``) and helpers to show them beside ours.

Tables: ``fat_table1`` … ``fat_table4`` (FAT Tables I–IV), ``ftdeepnets_table1_latency_ms``,
``ftdeepnets_table2_memory_mb``, ``ftdeepnets_table3`` (FT-DeepNets Tables 1–3). Numbers the
papers print only in their text (FT-DeepNets §2.3's mAP at 10 % errors, FAT §V-C's triplication
example, ...) are in ``quotes.csv``, read by :func:`quote`, so that pages glue them too.
"""

from __future__ import annotations

from importlib import resources

import pandas as pd

__all__ = [
    "paper_table",
    "TABLES",
    "side_by_side",
    "claims_table",
    "claims_view",
    "fat_row",
    "PAPER_DATASET",
    "FATLIB_DATASET",
    "quote",
    "quotes",
]

TABLES = (
    "fat_table1",
    "fat_table2",
    "fat_table3",
    "fat_table4",
    "ftdeepnets_table1_latency_ms",
    "ftdeepnets_table2_memory_mb",
    "ftdeepnets_table3",
)


def paper_table(name: str) -> pd.DataFrame:
    """One of the papers' tables as printed (see module docstring for names)."""
    if name not in TABLES:
        raise ValueError(f"unknown paper table {name!r}: use one of {TABLES}")
    with resources.files("fatlib.core.paper_tables").joinpath(f"{name}.csv").open() as f:
        return pd.read_csv(f)


def quotes() -> pd.DataFrame:
    """Numbers printed in the papers' text rather than in a table: ``key``, ``value``, ``unit``,
    ``paper``, ``where`` (section) and the quoted ``text``."""
    with resources.files("fatlib.core.paper_tables").joinpath("quotes.csv").open() as f:
        return pd.read_csv(f)


def quote(key: str) -> float:
    """The number behind one of :func:`quotes` (e.g. ``"fat_fig9_sat_channels"`` → 278)."""
    q = quotes().set_index("key")["value"]
    if key not in q.index:
        raise ValueError(f"unknown paper quote {key!r}: use one of {sorted(q.index)}")
    return float(q[key])


def side_by_side(rows: list[dict], profile: str) -> pd.DataFrame:
    """A tidy "paper vs. this book" table: each row a dict with ``quantity``, ``paper`` and
    ``ours`` (numbers, or None when not run); adds ``difference`` (ours − paper) and ``profile``."""
    df = pd.DataFrame(rows, columns=["quantity", "paper", "ours"])
    df["difference"] = pd.to_numeric(df["ours"], errors="coerce") - pd.to_numeric(
        df["paper"], errors="coerce"
    )
    df["profile"] = profile
    return df


def claims_table(claims: list) -> pd.DataFrame:
    """A page's claims table (:func:`fatlib.core.verdicts.claims_table`): each claim with the
    difference behind it, its 95 % interval and the verdict (holds / does not hold /
    inconclusive / not run)."""
    from fatlib.core.verdicts import claims_table as table

    return table(claims)


def claims_view(claims: pd.DataFrame):
    """A page's claims table as shown on the page (a pandas Styler, so that no text is cut
    short): the claim, the paper's figure, ours with its 95 % interval, the verdict (marked when
    the row is an observation of ours or ran on synthetic data) and the numbers behind it."""
    t = claims.copy()
    mark = pd.Series("", index=t.index)
    if "kind" in t:
        mark = mark.where(t["kind"] != "observation", " (observation, not the paper's claim)")
    if "synthetic" in t:
        mark = mark + t["synthetic"].astype(bool).map({True: " (synthetic data: not counted)", False: ""})
    t["verdict"] = t["verdict"] + mark
    cols = [c for c in ("claim", "paper", "ours", "verdict", "evidence") if c in t]
    shown = t[cols].fillna("–").rename(columns={"ours": "ours (95 % interval)"})
    return shown.style.hide(axis="index").set_table_attributes('class="dataframe fatlib-claims"')


#: fatlib dataset names → the papers' spelling
PAPER_DATASET = {"cifar10": "CIFAR10", "svhn": "SVHN", "gtsrb": "GTSRB", "imagenet": "ImageNet"}
#: the papers' spelling → fatlib dataset names (the inverse of :data:`PAPER_DATASET`)
FATLIB_DATASET = {paper: name for name, paper in PAPER_DATASET.items()}


def fat_row(network: str, dataset: str, table: str = "fat_table2") -> pd.Series:
    """The first row of a FAT summary table (II–IV) for ``network`` (e.g. ``"CNVW1A1"``) on
    ``dataset`` (fatlib name, e.g. ``"cifar10"``); all-NaN when the paper has no such row."""
    df = paper_table(table)
    name = PAPER_DATASET.get(dataset, dataset)
    hit = df[(df["network"] == network) & (df["dataset"] == name)]
    if hit.empty:
        return pd.Series({c: float("nan") for c in df.columns})
    return hit.iloc[0]
