"""Per-image outcomes of a campaign: for every fault, which test images it still classifies
correctly — what a paired bootstrap over the test images resamples (:mod:`fatlib.core.verdicts`)
to put a 95 % interval on the error-free accuracy, the minimum and the variance of FAT
Tables II–IV, and on their differences between two networks scored on the same images.

``stuck_at_campaign(..., store=DIR, outcomes=True)`` writes ``DIR/outcomes.npz`` (bit-packed,
atomically) beside ``results.parquet``; :func:`load_outcomes` reads it back and checks that it
belongs to the store's campaign (same model, data and fault list).
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fatlib.core.files import atomic_write_bytes

__all__ = ["OUTCOMES_FILE", "Outcomes", "save_outcomes", "load_outcomes", "has_outcomes"]

OUTCOMES_FILE = "outcomes.npz"
#: manifest fields an outcomes file must share with its campaign
_IDENTITY = ("faults_sha256", "model_sha256", "data_sha256", "n_images", "n_faults")


@dataclass(frozen=True)
class Outcomes:
    """Each fault's per-image outcome: ``golden`` (images,) and ``faults`` (faults × images),
    True where the image is classified correctly; faults in the campaign table's row order."""

    golden: np.ndarray
    faults: np.ndarray

    def __post_init__(self) -> None:
        if self.golden.ndim != 1 or self.faults.ndim != 2 or self.faults.shape[1] != self.golden.shape[0]:
            raise ValueError(
                f"outcomes: golden {self.golden.shape} and faults {self.faults.shape} must be "
                "(images,) and (faults, images)"
            )

    @property
    def n_images(self) -> int:
        return int(self.golden.shape[0])

    def accuracy(self) -> np.ndarray:
        """Each fault's accuracy in percent (equals the campaign table's ``accuracy``)."""
        return 100.0 * self.faults.mean(axis=1)

    def __repr__(self) -> str:
        return f"Outcomes(faults={self.faults.shape[0]}, images={self.n_images})"


def _identity(manifest: dict) -> dict:
    return {k: manifest.get(k) for k in _IDENTITY}


def save_outcomes(store: str | os.PathLike, manifest: dict, golden: np.ndarray, faults: np.ndarray) -> Path:
    """Write ``store/outcomes.npz`` atomically: bit-packed outcomes and the campaign identity."""
    out = Outcomes(np.asarray(golden, dtype=bool), np.asarray(faults, dtype=bool))
    buf = io.BytesIO()
    np.savez_compressed(
        buf,
        golden=np.packbits(out.golden),
        faults=np.packbits(out.faults, axis=1),
        shape=np.array(out.faults.shape, dtype=np.int64),
        identity=np.frombuffer(json.dumps(_identity(manifest), sort_keys=True).encode(), dtype=np.uint8),
    )
    path = Path(store) / OUTCOMES_FILE
    atomic_write_bytes(path, buf.getvalue())
    return path


def _read(path: Path) -> tuple[dict, Outcomes]:
    try:
        with np.load(path) as z:
            ident = json.loads(z["identity"].tobytes().decode())
            f, n = (int(v) for v in z["shape"])
            golden = np.unpackbits(z["golden"], count=n).astype(bool)
            faults = np.unpackbits(z["faults"], axis=1, count=n).astype(bool).reshape(f, n)
    except (OSError, ValueError, KeyError) as err:
        raise ValueError(
            f"{path} is damaged ({err}); delete it and run the campaign again with outcomes=True"
        ) from None
    return ident, Outcomes(golden, faults)


def has_outcomes(store: str | os.PathLike, manifest: dict) -> bool:
    """Whether ``store`` holds outcomes of the campaign ``manifest`` describes."""
    path = Path(store) / OUTCOMES_FILE
    if not path.is_file():
        return False
    try:
        ident, _ = _read(path)
    except ValueError:
        return False
    return ident == _identity(manifest)


def load_outcomes(store: str | os.PathLike) -> Outcomes:
    """The per-image outcomes of the campaign in ``store`` (a campaign store directory).

    Raises FileNotFoundError when the store has none (run the campaign with
    ``outcomes=True``) and ValueError when they belong to another campaign."""
    store = Path(store)
    path = store / OUTCOMES_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: run stuck_at_campaign(..., store={str(store)!r}, outcomes=True)"
        )
    ident, out = _read(path)
    mpath = store / "manifest.json"
    if mpath.is_file():
        manifest = json.loads(mpath.read_text())
        if ident != _identity(manifest):
            raise ValueError(
                f"{path} belongs to another campaign than {mpath}; run the campaign again with outcomes=True"
            )
    return out
