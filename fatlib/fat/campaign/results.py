"""Result frames: a campaign's table, saved and read back with its manifest.

Results are tidy DataFrames, one row per fault in canonical order — ``layer``, ``channel`` (or
``row``, ``col``), ``value`` ascending — with ``correct``, ``total`` and ``accuracy`` (percent).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from fatlib.core.files import atomic_write_bytes
from fatlib.core.schemes import CHANNEL
from fatlib.fat.campaign.faults import FaultList
from fatlib.fat.campaign.store import MANIFEST_FILE, RESULTS_FILE

#: the Parquet metadata key of a result table (fatlib 0.1's module name: a file-format key, kept)
PARQUET_META_KEY = b"fatlib.campaign"


def result_frame(faults: FaultList, correct: np.ndarray, total: int, meta: dict) -> pd.DataFrame:
    """The campaign table: the faults' key columns, ``correct``, ``total``, ``accuracy`` (%) and
    ``attrs["campaign"] = meta``."""
    df = faults.key_frame()
    df["correct"] = correct.astype(np.int64)
    df["total"] = np.int64(total)
    df["accuracy"] = 100.0 * df["correct"] / total
    df.attrs["campaign"] = meta
    return df


def key_cols(pattern: str) -> list[str]:
    """The columns that name a fault of ``pattern``."""
    return ["layer", "channel", "value"] if pattern == CHANNEL else ["layer", "row", "col", "value"]


def save_results(df: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write a campaign table as Parquet, atomically, with its ``attrs["campaign"]`` manifest in
    the file's metadata (so :func:`merge` can check compatibility)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    table = pa.Table.from_pandas(df.reset_index(drop=True), preserve_index=False)
    meta = dict(table.schema.metadata or {})
    meta.pop(b"pandas", None)
    meta[PARQUET_META_KEY] = json.dumps(df.attrs.get("campaign", {}), sort_keys=True, default=str).encode()
    table = table.replace_schema_metadata(meta)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    atomic_write_bytes(path, sink.getvalue().to_pybytes())
    return path


def load_results(path: str | os.PathLike) -> pd.DataFrame:
    """Read a table written by :func:`save_results` (or a complete campaign store directory),
    restoring ``attrs["campaign"]``."""
    import pyarrow.parquet as pq

    path = Path(path)
    if path.is_dir():
        return _load_store_results(path)
    table = pq.read_table(path)
    meta = (table.schema.metadata or {}).get(PARQUET_META_KEY)
    df = table.to_pandas()
    try:
        df.attrs["campaign"] = json.loads(meta) if meta else {}
    except ValueError as err:
        raise ValueError(f"{path}: its campaign metadata is not valid JSON ({err}); write it again") from None
    return df


def _load_store_results(path: Path) -> pd.DataFrame:
    res = path / RESULTS_FILE
    if res.exists():
        return load_results(res)
    if (path / MANIFEST_FILE).exists():
        m = _read_manifest(path / MANIFEST_FILE)
        raise ValueError(
            f"campaign store {path} is incomplete (no {RESULTS_FILE}); finish it by "
            f"re-running the same campaign (pattern {m.get('pattern')!r}, "
            f"shard {m.get('shard')})"
        )
    raise ValueError(f"{path} is not a campaign store (no {MANIFEST_FILE})")


def _read_manifest(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except ValueError as err:
        raise ValueError(
            f"{path} is not valid JSON ({err}): the campaign store is damaged; use a new store directory"
        ) from None
