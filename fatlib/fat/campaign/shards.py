"""Merging shards: :func:`merge` joins the outputs of sharded runs (``shard=(i, n)``) of one
campaign into its table."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from fatlib.fat.campaign.results import key_cols, load_results
from fatlib.fat.campaign.stats import check_results

#: manifest fields that must agree between parts of one campaign
_MERGE_IDENTITY = (
    "pattern",
    "layers",
    "levels",
    "sample",
    "seed",
    "explicit_faults",
    "campaign_faults",
    "model_sha256",
    "data_sha256",
    "n_images",
)


def merge(paths: Sequence[str | os.PathLike | pd.DataFrame]) -> pd.DataFrame:
    """Join the outputs of sharded runs (``shard=(i, n)``): Parquet files written by
    :func:`save_results` / the CLI, complete store directories, or result DataFrames. Refuses
    (ValueError) parts of different campaigns (model, data, pattern, levels, ...) and parts
    that overlap. ``attrs["campaign"]["complete"]`` says whether every fault is present."""
    if isinstance(paths, (str, os.PathLike, pd.DataFrame)):
        paths = [paths]
    if not paths:
        raise ValueError("merge needs at least one result (Parquet file, store directory or DataFrame)")
    parts, metas, names = [], [], []
    for p in paths:
        if isinstance(p, pd.DataFrame):
            df, name = p, "DataFrame"
        else:
            path = Path(p)
            if not path.exists():
                raise ValueError(f"{path} does not exist")
            df, name = load_results(path), str(path)
        check_results(df)
        parts.append(df)
        metas.append(df.attrs.get("campaign", {}))
        names.append(name)
    ref = metas[0]
    for m, name in zip(metas[1:], names[1:]):
        diff = [k for k in _MERGE_IDENTITY if m.get(k) != ref.get(k)]
        if diff:
            raise ValueError(
                f"{name} is from a different campaign than {names[0]} (differs in "
                f"{', '.join(diff)}); only shards of one campaign can be merged"
            )
    keys = key_cols(ref.get("pattern", "channel" if "channel" in parts[0].columns else "pixel"))
    for df, name in zip(parts, names):
        if list(df.columns[: len(keys)]) != keys:
            raise ValueError(f"{name}: columns {list(df.columns)} do not match pattern keys {keys}")
    out = pd.concat(parts, ignore_index=True)
    dup = out.duplicated(subset=keys, keep=False)
    if dup.any():
        first = out.loc[dup, keys].iloc[0]
        example = {k: (float(first[k]) if k == "value" else int(first[k])) for k in keys}
        raise ValueError(
            f"the parts overlap: {int(dup.sum())} rows appear in more than one part "
            f"(e.g. {example}); merge each shard once"
        )
    out = out.sort_values(keys, kind="mergesort").reset_index(drop=True)
    meta = dict(ref)
    meta["shard"] = None
    meta["shards"] = sorted([m.get("shard") for m in metas], key=lambda s: (s is None, s))
    meta["n_faults"] = len(out)
    expected = ref.get("campaign_faults")
    meta["complete"] = expected is not None and len(out) == int(expected)
    meta.pop("faults_sha256", None)
    meta.pop("chunks_sha256", None)
    out.attrs["campaign"] = meta
    return out
