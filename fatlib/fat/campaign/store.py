"""The campaign store: results persisted as they complete.

Never loses work
----------------
``store=DIR`` persists results as they complete: ``DIR/manifest.json`` (the campaign's arguments
and SHA-256 fingerprints of model weights, data and the fault list; written atomically) and
``DIR/records.jsonl``, an append-only log of ``(chunk, image batch) → correct counts`` records,
each line ending in its CRC-32, handed to the OS as soon as the unit finishes (a killed process
loses nothing) and fsync'ed at least every second (power loss). A restart with the same
arguments skips recorded units (a torn last line is dropped); one with different arguments
raises :class:`ValueError`. When all units are done ``DIR/results.parquet`` holds the table.
``shard=(i, n)`` splits the faults between processes; :func:`merge` joins their outputs.
"""

from __future__ import annotations

import json
import os
import time
import zlib
from pathlib import Path
from typing import Any

from fatlib.core.files import atomic_write_bytes

STORE_FORMAT = "fatlib-campaign-store/1"
MANIFEST_FILE = "manifest.json"
RECORDS_FILE = "records.jsonl"
RESULTS_FILE = "results.parquet"
LOCK_FILE = "lock"
#: seconds between fsyncs of the store's record log
_FSYNC_INTERVAL = 1.0


#: manifest fields that must match for a restart (the rest is informational)
_IDENTITY = (
    "format",
    "pattern",
    "layers",
    "levels",
    "sample",
    "seed",
    "shard",
    "explicit_faults",
    "faults_sha256",
    "n_faults",
    "model_sha256",
    "data_sha256",
    "n_images",
    "batch_size",
    "chunks_sha256",
)


def _record_line(chunk: int, batch: int, correct: list[int]) -> bytes:
    body = json.dumps({"chunk": chunk, "batch": batch, "correct": correct}, separators=(",", ":"))
    return f"{body}\t{zlib.crc32(body.encode()):08x}\n".encode()


class CampaignStore:
    """``manifest.json`` + append-only ``records.jsonl`` (one CRC-checked line per finished
    (chunk, image batch) unit, fsync'ed), see the module docstring."""

    def __init__(self, path: Path, manifest: dict, chunks: list[tuple[int, int]], n_batches: int) -> None:
        self.path = Path(path)
        self.chunks = chunks
        self.n_batches = n_batches
        self.path.mkdir(parents=True, exist_ok=True)
        self._lock_fh = open(self.path / LOCK_FILE, "a+")
        try:
            import fcntl

            fcntl.flock(self._lock_fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:  # pragma: no cover - non-POSIX
            pass
        except OSError:
            self._lock_fh.close()
            raise RuntimeError(f"campaign store {self.path} is in use by another process") from None
        mpath = self.path / MANIFEST_FILE
        if mpath.exists():
            try:
                old = json.loads(mpath.read_text())
            except ValueError as err:
                self.close()
                raise ValueError(
                    f"{mpath} is not valid JSON ({err}): the campaign store is damaged; use a new "
                    "store directory (or delete this one to start over)"
                ) from None
            diff = [k for k in _IDENTITY if old.get(k) != manifest.get(k)]
            if diff:
                self.close()
                details = "; ".join(
                    f"{k}: store has {_short(old.get(k))}, now {_short(manifest.get(k))}" for k in diff
                )
                raise ValueError(
                    f"campaign store {self.path} belongs to a different campaign ({details}). "
                    "Restart with the same model, data and arguments, or use a new store "
                    "directory."
                )
            self.manifest = old
        else:
            others = [p.name for p in self.path.iterdir() if p.name not in (LOCK_FILE,)]
            if others:
                self.close()
                raise ValueError(f"{self.path} is not empty and has no {MANIFEST_FILE}: not a campaign store")
            atomic_write_bytes(mpath, json.dumps(manifest, indent=2, sort_keys=True).encode())
            self.manifest = manifest
        self.done: dict[tuple[int, int], list[int]] = {}
        self._load_records()
        self._fh = open(self.path / RECORDS_FILE, "ab")
        self._last_sync = time.monotonic()

    def _load_records(self) -> None:
        rpath = self.path / RECORDS_FILE
        if not rpath.exists():
            return
        data = rpath.read_bytes()
        good_end = 0
        pos = 0
        while pos < len(data):
            nl = data.find(b"\n", pos)
            if nl < 0:
                break  # torn last line: dropped below
            line = data[pos:nl].decode("utf-8", errors="replace")
            pos = nl + 1
            rec = self._parse(line)
            if rec is None:
                continue  # corrupt record: its unit is recomputed
            key, correct = rec
            prev = self.done.get(key)
            if prev is not None and prev != correct:
                raise ValueError(
                    f"campaign store {self.path}: unit {key} recorded twice with different "
                    "results (was the store shared by two different runs?)"
                )
            self.done[key] = correct
            good_end = pos
        if good_end < len(data) and data.rfind(b"\n") < len(data) - 1:
            # drop a torn tail so that the next append starts on a fresh line
            keep = data.rfind(b"\n") + 1
            with open(rpath, "r+b") as fh:
                fh.truncate(keep)
                fh.flush()
                os.fsync(fh.fileno())

    def _parse(self, line: str) -> tuple[tuple[int, int], list[int]] | None:
        body, sep, crc = line.rpartition("\t")
        if not sep or f"{zlib.crc32(body.encode()):08x}" != crc.strip():
            return None
        try:
            rec = json.loads(body)
            k, b, correct = int(rec["chunk"]), int(rec["batch"]), [int(x) for x in rec["correct"]]
        except (ValueError, KeyError, TypeError):
            return None
        if not (0 <= k < len(self.chunks) and 0 <= b < self.n_batches):
            return None
        s, e = self.chunks[k]
        if len(correct) != e - s:
            return None
        return (k, b), correct

    def write(self, chunk: int, batch: int, correct: list[int]) -> None:
        """Append one finished unit. The write reaches the OS at once (a killed process loses
        nothing); fsync runs at most every ``_FSYNC_INTERVAL`` seconds (power loss)."""
        if (chunk, batch) in self.done:
            return
        self._fh.write(_record_line(chunk, batch, correct))
        self._fh.flush()
        now = time.monotonic()
        if now - self._last_sync >= _FSYNC_INTERVAL:
            os.fsync(self._fh.fileno())
            self._last_sync = now
        self.done[(chunk, batch)] = correct

    def close(self) -> None:
        fh = getattr(self, "_fh", None)
        if fh is not None:
            fh.flush()
            os.fsync(fh.fileno())
            fh.close()
            self._fh = None
        if self._lock_fh is not None:
            self._lock_fh.close()
            self._lock_fh = None


def _short(v: Any) -> str:
    s = json.dumps(v, default=str)
    return s if len(s) <= 60 else s[:57] + "..."
