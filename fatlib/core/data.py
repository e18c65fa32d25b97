"""Datasets of both papers: CIFAR-10, SVHN, GTSRB as 32×32 RGB images in [0, 1]; ImageNet (FAT
Table II / Fig. 8) as an ImageFolder tree (:func:`imagefolder_dataset`, :func:`imagenet_dir`).

Where data comes from, in order:

1. ``<data_dir>/<name>.npz`` — the **array format**: ``train_x``, ``test_x`` uint8 arrays of shape
   N×H×W×C (RGB, channels last), ``train_y``, ``test_y`` integer class indices and, optionally,
   ``classes`` (one name per class). This is how offline copies are read
   (``python ../shared/data/build.py DIR`` writes exactly this) and how users bring their own data.
2. torchvision's dataset classes, downloading into ``<data_dir>/torchvision`` when the machine is
   online; the result is then written once as ``<data_dir>/<name>.npz`` so later loads are fast.

``data_dir`` is the argument, else ``$FATLIB_DATA``, else a per-user cache directory
(``$XDG_CACHE_HOME/fatlib/data``, by default ``~/.cache/fatlib/data``). A folder named by the
argument or by ``$FATLIB_DATA`` must exist (a typo raises :class:`DataDirNotFound`; it is never
created); only the per-user cache is created, and only when a download is attempted.

Synthetic stand-ins (:func:`profile_dataset`): at a profile that allows them (``smoke``) a known
dataset whose real data is absent is replaced by :func:`synthetic_dataset` — only when no data
folder was named (``data_dir`` None or ``""``), or when asked for with ``data_dir="synthetic"``
(:data:`SYNTHETIC`). Every stand-in says so: a :class:`SyntheticDataWarning` and its ``source``.

Augmentation follows brevitas' ``bnn_pynq`` recipe: random crop 32 with 4 pixels of zero padding,
plus a horizontal flip for CIFAR-10 only (never for digits or traffic signs).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch.utils.data import Dataset

from fatlib.core.files import atomic_dir, atomic_file

if TYPE_CHECKING:  # pragma: no cover
    from fatlib.core.profiles import Profile

__all__ = [
    "ArrayDataset",
    "load_dataset",
    "default_data_dir",
    "user_cache_dir",
    "synthetic_dataset",
    "DATASETS",
    "save_npz",
    "subset",
    "profile_dataset",
    "ImageFolderDataset",
    "imagefolder_dataset",
    "imagenet_dir",
    "imagenet_candidates",
    "imagefolder_missing",
    "make_synthetic_imagefolder",
    "DatasetNotFound",
    "DataDirNotFound",
    "UnknownDataset",
    "SyntheticDataWarning",
    "SYNTHETIC",
    "named_data_dir",
    "asks_synthetic",
    "check_known_dataset",
]

#: name -> (number of classes, horizontal flip in augmentation)
DATASETS: dict[str, tuple[int, bool]] = {"cifar10": (10, True), "svhn": (10, False), "gtsrb": (43, False)}
SPLITS = ("train", "test")
#: the ``data_dir`` (``--data-dir``, ``DATA_DIR``) that asks :func:`profile_dataset` for synthetic
#: stand-ins explicitly (write ``./synthetic`` for a folder of that name)
SYNTHETIC = "synthetic"


class DatasetNotFound(FileNotFoundError):
    """A dataset :func:`load_dataset` cannot find (nor download). ``str(err)`` is the whole
    message (every path tried, how to get the data, the array format); ``reason`` is its first
    part only — what is missing and where it was looked for — for a "not run" line."""

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = message if reason is None else reason


class DataDirNotFound(DatasetNotFound):
    """A data folder the user named (``data_dir``, ``--data-dir``, ``DATA_DIR`` or
    ``$FATLIB_DATA``) that does not exist: a typo, never a reason to fall back to other data."""


class UnknownDataset(DatasetNotFound, ValueError):
    """A dataset name that is neither one of :data:`DATASETS` nor an array file in the data
    folder (also a :class:`ValueError`: the name is wrong, not the data missing)."""


class SyntheticDataWarning(UserWarning):
    """Synthetic stand-in data is used in place of a real dataset (:func:`profile_dataset`)."""


def asks_synthetic(data_dir: str | os.PathLike | None) -> bool:
    """Whether ``data_dir`` is :data:`SYNTHETIC`, the explicit request for synthetic stand-ins."""
    return isinstance(data_dir, str) and data_dir.strip() == SYNTHETIC


def check_known_dataset(name: str) -> None:
    """ValueError listing the known datasets unless ``name`` is one of :data:`DATASETS` (a
    synthetic stand-in needs the real dataset's number of classes)."""
    if name not in DATASETS:
        raise ValueError(
            f"unknown dataset {name!r}: known datasets are {sorted(DATASETS)} (other data must be "
            "given in the array format, <data_dir>/<name>.npz)"
        )


def named_data_dir(data_dir: str | os.PathLike | None = None, looking_for: str | None = None) -> Path | None:
    """The data folder the user named — ``data_dir`` when given (not None or ``""``), else
    ``$FATLIB_DATA`` when set — or None when neither is (then the per-user cache is used).

    A named folder must exist: :class:`DataDirNotFound` (a :class:`FileNotFoundError`) names it
    otherwise, and it is never created. ``looking_for`` (a file name) goes into the message."""
    if data_dir is not None and str(data_dir) != "":
        root, origin = Path(data_dir).expanduser(), "data_dir / --data-dir / DATA_DIR"
    elif os.environ.get("FATLIB_DATA"):
        root, origin = Path(os.environ["FATLIB_DATA"]).expanduser(), "$FATLIB_DATA"
    else:
        return None
    if root.is_dir():
        return root
    state = "is not a folder" if root.exists() else "does not exist"
    reason = f"data folder {root} ({origin}) {state}"
    what = f" (looked for {root / looking_for})" if looking_for else ""
    hint = ""
    if asks_synthetic(data_dir):
        hint = (
            f" data_dir={SYNTHETIC!r} asks for synthetic stand-ins only where a profile's data is "
            "read (fatlib.core.data.profile_dataset); real data is needed here."
        )
    raise DataDirNotFound(
        f"{reason}{what}: check the path for a typo.{hint} To get the data: python "
        "../shared/data/build.py DIR (offline copies of cifar10 and gtsrb), then pass data_dir=DIR or "
        "set FATLIB_DATA=DIR.",
        reason=reason,
    )


def user_cache_dir(*parts: str) -> Path:
    """``$XDG_CACHE_HOME/fatlib/<parts>`` (``~/.cache/fatlib/...`` when the variable is unset):
    where data and trained models go when no folder is named."""
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache, "fatlib", *parts)


def default_data_dir() -> Path:
    """``$FATLIB_DATA`` when set, else ``$XDG_CACHE_HOME/fatlib/data`` (``~/.cache/fatlib/data``)."""
    env = os.environ.get("FATLIB_DATA")
    if env:
        return Path(env).expanduser()
    return user_cache_dir("data")


@dataclass(eq=False)
class ArrayDataset(Dataset):
    """Images held as one uint8 tensor N×C×H×W; items are ``(float image in [0, 1], label)``.

    ``augment`` asks the trainer for the bnn_pynq augmentation (random crop with padding 4, and a
    horizontal flip when ``flip``); :meth:`batch` applies it to a whole batch at once.
    """

    images: torch.Tensor  # uint8, N×C×H×W
    labels: torch.Tensor  # int64, N
    classes: tuple[str, ...]
    name: str = "custom"
    split: str = "train"
    augment: bool = False
    flip: bool = False
    source: str = ""

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.ndim != 4:
            raise ValueError("ArrayDataset.images must be a uint8 tensor N×C×H×W")
        if self.labels.shape != (self.images.shape[0],):
            raise ValueError(f"{self.images.shape[0]} images but labels of shape {tuple(self.labels.shape)}")

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.images[i].float().div_(255.0), int(self.labels[i])

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def synthetic(self) -> bool:
        """Whether these are synthetic stand-in images (:func:`synthetic_dataset`), whose
        numbers say nothing about the papers' data and are never counted as results."""
        return self.name == "synthetic" or self.source.startswith("synthetic")

    def batch(
        self,
        index: torch.Tensor,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Images (float in [0, 1]) and labels of ``index``, augmented when ``self.augment``."""
        x = self.images[index]
        y = self.labels[index]
        if device is not None:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        x = x.float().div_(255.0)
        if self.augment:
            x = augment_batch(x, flip=self.flip, generator=generator)
        return x, y

    def __repr__(self) -> str:
        return (
            f"ArrayDataset(name={self.name!r}, split={self.split!r}, n={len(self)}, "
            f"shape={tuple(self.images.shape[1:])}, classes={self.num_classes}, "
            f"augment={self.augment}, source={self.source!r})"
        )


def augment_batch(
    x: torch.Tensor, flip: bool, generator: torch.Generator | None = None, padding: int = 4
) -> torch.Tensor:
    """Random crop (zero padding ``padding``) and, when ``flip``, random horizontal flip of a
    batch N×C×H×W — brevitas ``bnn_pynq``'s ``RandomCrop(32, padding=4)`` / ``RandomHorizontalFlip``."""
    n, _, h, w = x.shape
    gen_dev = generator.device if generator is not None else x.device
    padded = torch.nn.functional.pad(x, (padding,) * 4)
    dy = torch.randint(0, 2 * padding + 1, (n,), generator=generator, device=gen_dev).to(x.device)
    dx = torch.randint(0, 2 * padding + 1, (n,), generator=generator, device=gen_dev).to(x.device)
    rows = dy[:, None] + torch.arange(h, device=x.device)[None, :]  # n×h
    cols = dx[:, None] + torch.arange(w, device=x.device)[None, :]  # n×w
    if flip:
        mirror = torch.rand(n, generator=generator, device=gen_dev).to(x.device) < 0.5
        cols = torch.where(mirror[:, None], cols.flip(1), cols)
    idx_r = rows[:, None, :, None].expand(n, x.shape[1], h, padded.shape[3])
    out = padded.gather(2, idx_r)
    idx_c = cols[:, None, None, :].expand(n, x.shape[1], h, w)
    return out.gather(3, idx_c)


def _read_npz(path: Path, name: str, split: str) -> ArrayDataset:
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files if k in (f"{split}_x", f"{split}_y", "classes")}
    except Exception as err:  # truncated zip, bad header, pickled objects ...
        raise ValueError(
            f"{path} is not a readable .npz file ({type(err).__name__}: {err}); delete it and rebuild it"
        ) from err
    missing = sorted({f"{split}_x", f"{split}_y"} - set(arrays))
    if missing:
        raise ValueError(
            f"{path} lacks {missing}; the array format needs train_x, train_y, "
            "test_x, test_y (and optionally classes)"
        )
    x, y = arrays[f"{split}_x"], arrays[f"{split}_y"]
    classes = tuple(str(c) for c in arrays["classes"]) if "classes" in arrays else None
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[-1] not in (1, 3):
        raise ValueError(f"{path}: {split}_x must be uint8 N×H×W×C with C in (1, 3), got {x.dtype} {x.shape}")
    if len(x) != len(y):
        raise ValueError(f"{path}: {len(x)} images but {len(y)} labels in {split}")
    y = _check_labels(path, name, split, y, classes)
    if x.shape[-1] == 1:
        x = np.repeat(x, 3, axis=-1)
    n_cls = DATASETS.get(name, (int(y.max()) + 1 if len(y) else 0, False))[0]
    if classes is None:
        classes = tuple(str(i) for i in range(max(n_cls, int(y.max()) + 1 if len(y) else 0)))
    images = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))  # cpu-only: host data
    return ArrayDataset(
        images,
        torch.from_numpy(y.astype(np.int64)),  # cpu-only: host data
        classes,
        name=name,
        split=split,
        flip=DATASETS.get(name, (0, False))[1],
        source=str(path),
    )


def _check_labels(
    path: Path, name: str, split: str, y: np.ndarray, classes: tuple[str, ...] | None
) -> np.ndarray:
    """``{split}_y`` of the array file ``path`` as int64 class indices, or a ValueError naming the
    file and the split: labels must be integers (integer values), 1-D, in [0, classes)."""
    where = f"{path}: {split}_y"
    if y.ndim != 1:
        raise ValueError(f"{where} must be a 1-D array of class indices, got shape {y.shape}")
    if y.dtype == np.bool_ or not (np.issubdtype(y.dtype, np.integer) or np.issubdtype(y.dtype, np.floating)):
        raise ValueError(f"{where} must hold integer class indices, got dtype {y.dtype}")
    if np.issubdtype(y.dtype, np.floating):
        bad = ~np.isfinite(y) | (y != np.round(y))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"{where} must hold integer class indices, got {y[i]!r} at index {i} "
                f"({int(bad.sum())} non-integer labels); write class indices 0, 1, 2, ..."
            )
    if not len(y):
        return y.astype(np.int64)
    lo, hi = y.min(), y.max()
    if lo < 0:
        raise ValueError(
            f"{where} has negative labels (min {lo:g}, {int((y < 0).sum())} of them); labels are "
            "class indices 0, 1, 2, ..."
        )
    if classes is not None:
        n_cls, what = len(classes), f"the file's {len(classes)} class names"
    elif name in DATASETS:
        n_cls, what = DATASETS[name][0], f"{name}'s {DATASETS[name][0]} classes"
    else:
        n_cls = None
    if n_cls is not None and hi >= n_cls:
        raise ValueError(
            f"{where} has labels up to {hi:g} but there are only {what} (labels 0..{n_cls - 1}); "
            "fix the labels, or the file's name / its classes array"
        )
    return y.astype(np.int64)


def save_npz(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    """Write the array format atomically (temp file, then rename)."""
    path = Path(path)
    with atomic_file(path, suffix=".npz.part") as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)  # a file object: np.savez would append .npz to a name
    return path


def _download(name: str, root: Path) -> dict[str, np.ndarray]:
    """Fetch ``name`` with torchvision into ``root`` and return it in the array format."""
    import torchvision.datasets as tvd

    root.mkdir(parents=True, exist_ok=True)
    out: dict[str, np.ndarray] = {}
    if name == "cifar10":
        for split in SPLITS:
            ds = tvd.CIFAR10(str(root), train=split == "train", download=True)
            out[f"{split}_x"] = np.asarray(ds.data, dtype=np.uint8)
            out[f"{split}_y"] = np.asarray(ds.targets, dtype=np.int64)
        out["classes"] = np.array(ds.classes)
    elif name == "svhn":
        for split in SPLITS:
            ds = tvd.SVHN(str(root), split=split, download=True)
            out[f"{split}_x"] = np.ascontiguousarray(
                np.asarray(ds.data, dtype=np.uint8).transpose(0, 2, 3, 1)
            )
            out[f"{split}_y"] = np.asarray(ds.labels, dtype=np.int64)
        out["classes"] = np.array([str(i) for i in range(10)])
    elif name == "gtsrb":
        for split in SPLITS:
            ds = tvd.GTSRB(str(root), split=split, download=True)
            xs, ys = [], []
            for img, label in ds:
                xs.append(np.asarray(img.convert("RGB").resize((32, 32)), dtype=np.uint8))
                ys.append(label)
            out[f"{split}_x"] = np.stack(xs)
            out[f"{split}_y"] = np.asarray(ys, dtype=np.int64)
        out["classes"] = np.array([str(i) for i in range(43)])
    else:  # pragma: no cover - guarded by load_dataset
        raise ValueError(name)
    return out


def load_dataset(
    name: str,
    split: str,
    data_dir: str | os.PathLike | None = None,
    augment: bool = False,
    download: bool = True,
) -> ArrayDataset:
    """Load ``split`` (``"train"`` or ``"test"``) of ``name`` (``"cifar10"``, ``"svhn"``,
    ``"gtsrb"``, or any name with a ``<data_dir>/<name>.npz`` in the array format).

    Images are 32×32 RGB floats in [0, 1] (CNV maps them to [-1, 1] itself). ``augment=True``
    turns on the bnn_pynq augmentation (crop + flip for CIFAR-10; crop only otherwise).
    Raises :class:`DatasetNotFound` (a :class:`FileNotFoundError`) naming every path tried and how
    to get the data; :class:`DataDirNotFound` when a named data folder (``data_dir``, else
    ``$FATLIB_DATA``) does not exist — it is never created; :class:`UnknownDataset` (also a
    :class:`ValueError`) for a name that is neither known nor an array file. ``data_dir=""`` is
    the same as None. Labels are checked (integers in the dataset's classes).
    """
    if split not in SPLITS:
        raise ValueError(f"split={split!r}: use 'train' or 'test'")
    named = named_data_dir(data_dir, looking_for=f"{name}.npz")
    root = named if named is not None else default_data_dir()
    path = root / f"{name}.npz"
    tried = [str(path)]
    if not path.exists():
        if name not in DATASETS:
            raise UnknownDataset(
                f"unknown dataset {name!r} (no {path}). Known datasets: {sorted(DATASETS)}; "
                f"other data must be given in the array format at {path}."
            )
        errors = ""
        if download:
            tv_root = root / "torchvision"
            tried.append(f"torchvision download into {tv_root}")
            try:
                save_npz(path, _download(name, tv_root))
            except Exception as err:  # offline, or torchvision missing
                errors = f" (download failed: {type(err).__name__}: {err})"
        if not path.exists():
            hint = (
                "python ../shared/data/build.py DIR  (offline copies of cifar10 and gtsrb), then "
                "pass data_dir=DIR or set FATLIB_DATA=DIR"
                if name != "svhn"
                else "SVHN has no offline copy here: run once on a machine with internet, or write "
                f"{path} in the array format"
            )
            reason = f"{name} not found. Tried: {'; '.join(tried)}{errors}"
            raise DatasetNotFound(
                f"{reason}. To get it: {hint}. "
                "The array format is <data_dir>/<name>.npz with uint8 train_x/test_x (N×H×W×C) "
                "and integer train_y/test_y.",
                reason=reason,
            )
    ds = _read_npz(path, name, split)
    if ds.images.shape[2:] != (32, 32):
        raise ValueError(
            f"{path}: images are {tuple(ds.images.shape[2:])}, CNV needs 32×32; "
            "resize them when writing the array format"
        )
    ds.augment = augment
    return ds


def subset(ds: ArrayDataset, n: int | None, seed: int = 0, stratified: bool = True) -> ArrayDataset:
    """The first ``n`` images of a seeded permutation of ``ds`` (all when ``n`` is None or ≥ len).

    Used by scale profiles: the same code path on less data."""
    if n is None or n >= len(ds):
        return ds
    if n <= 0:
        raise ValueError(f"subset size must be positive, got {n}")
    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(ds), generator=g)[:n].sort().values  # cpu-only: host data
    return ArrayDataset(
        ds.images[idx],
        ds.labels[idx],
        ds.classes,
        name=ds.name,
        split=ds.split,
        augment=ds.augment,
        flip=ds.flip,
        source=f"{ds.source} [{n} of {len(ds)}]",
    )


def synthetic_dataset(
    n: int = 64, num_classes: int = 10, seed: int = 0, split: str = "train", size: int = 32
) -> ArrayDataset:
    """A tiny learnable dataset (class = which colour channel and quadrant is bright), for tests
    and the smoke profile when no real data is at hand."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, num_classes, (n,), generator=g)  # cpu-only: host data
    images = torch.randint(0, 80, (n, 3, size, size), generator=g, dtype=torch.int64)  # cpu-only: host data
    half = size // 2
    for i, c in enumerate(labels.tolist()):
        ch, quad = c % 3, (c // 3) % 4
        r0, c0 = (quad // 2) * half, (quad % 2) * half
        images[i, ch, r0 : r0 + half, c0 : c0 + half] += 170
    images = images.clamp(0, 255).to(torch.uint8)
    return ArrayDataset(
        images,
        labels,
        tuple(f"class{i}" for i in range(num_classes)),
        name="synthetic",
        split=split,
        source=f"synthetic(n={n}, seed={seed})",
    )


def profile_dataset(
    name: str,
    split: str,
    profile: str | Profile,
    data_dir: str | os.PathLike | None = None,
    seed: int = 0,
    synthetic: bool = False,
) -> ArrayDataset:
    """``split`` of ``name`` at the sizes of a scale profile (``train_size`` / ``test_size``
    images of a seeded subset).

    Synthetic stand-ins (:func:`synthetic_dataset`, with the dataset's number of classes) replace
    the real data only (a) under a profile that allows them (``smoke``), for a known dataset
    whose real data is absent, when no data folder was named (``data_dir`` None or ``""``;
    ``$FATLIB_DATA`` unset, or an existing folder without the dataset), or (b) when asked for:
    ``synthetic=True`` or ``data_dir="synthetic"`` (:data:`SYNTHETIC`), at any profile. A stand-in
    warns (:class:`SyntheticDataWarning`) and says so in its ``source``.

    Raises :class:`DataDirNotFound` for a named data folder that does not exist (never created),
    :class:`UnknownDataset` / :class:`ValueError` for an unknown dataset name, and
    :class:`DatasetNotFound` when the real data is absent and no stand-in is allowed."""
    from fatlib.core.profiles import get_profile

    prof = get_profile(profile)
    size = prof.train_size if split == "train" else prof.test_size
    if split not in SPLITS:
        raise ValueError(f"split={split!r}: use 'train' or 'test'")
    if synthetic or asks_synthetic(data_dir):
        check_known_dataset(name)
        how = "synthetic=True" if synthetic else f"data_dir={SYNTHETIC!r}"
        return _stand_in(name, split, size, seed, f"asked for with {how}")
    try:
        ds = load_dataset(name, split, data_dir=data_dir)
    except (DataDirNotFound, UnknownDataset):
        raise
    except DatasetNotFound as err:
        if not prof.allow_synthetic:
            raise
        if data_dir is not None and str(data_dir) != "":
            raise DatasetNotFound(
                f"{err} (At the {prof.name} profile synthetic stand-ins are used only when no data "
                f"folder is named; name none, or pass data_dir={SYNTHETIC!r} to ask for them.)",
                reason=err.reason,
            ) from None
        return _stand_in(name, split, size, seed, "real data not found")
    return subset(ds, size, seed=seed)


def _stand_in(name: str, split: str, size: int | None, seed: int, why: str) -> ArrayDataset:
    """The synthetic stand-in for ``split`` of the known dataset ``name``, announced."""
    n_cls = DATASETS[name][0]
    ds = synthetic_dataset(n=size or 256, num_classes=n_cls, seed=seed + (split == "test"), split=split)
    ds.source = f"synthetic stand-in for {name} ({why}) — {ds.source}"
    warnings.warn(
        f"{name} {split}: using synthetic stand-in data ({why}); the numbers say nothing about "
        f"{name}. Real data: <data_dir>/{name}.npz (see fatlib.core.data)",
        SyntheticDataWarning,
        stacklevel=3,
    )
    return ds


# --------------------------------------------------------------------------------------------
# ImageNet as an ImageFolder (FAT Table II / Fig. 8: DoReFa-Net)
# --------------------------------------------------------------------------------------------

#: the two splits of an ImageFolder tree (ImageNet: ``train/`` and ``val/``, one folder per class)
IMAGEFOLDER_SPLITS = ("train", "val")
_IMAGEFOLDER_LAYOUT = (
    "<root>/train/<class>/<image> and <root>/val/<class>/<image>, the same class "
    "folders in both (ImageNet: train/n01440764/*.JPEG ..., val/n01440764/*.JPEG ...)"
)
_SYNTHETIC_DONE = "fatlib-synthetic-imagefolder.json"


def imagenet_candidates(data_dir: str | os.PathLike | None = None) -> list[Path]:
    """Where ImageNet is looked for, in order: ``<data_dir>/imagenet``, ``$FATLIB_DATA/imagenet``,
    the per-user cache ``$XDG_CACHE_HOME/fatlib/data/imagenet`` (duplicates removed)."""
    out: list[Path] = []
    if data_dir is not None and str(data_dir):
        out.append(Path(data_dir).expanduser() / "imagenet")
    env = os.environ.get("FATLIB_DATA")
    if env:
        out.append(Path(env).expanduser() / "imagenet")
    out.append(user_cache_dir("data", "imagenet"))
    return list(dict.fromkeys(out))


def imagefolder_missing(root: str | os.PathLike) -> str | None:
    """Why ``root`` is not a usable ImageFolder tree (``train/`` and ``val/`` with class
    folders), or None when it is."""
    root = Path(root).expanduser()
    for split in IMAGEFOLDER_SPLITS:
        folder = root / split
        if not folder.is_dir():
            return f"no {folder}"
        if not any(p.is_dir() for p in folder.iterdir()):
            return f"{folder} has no class folders"
    return None


def imagenet_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The ImageNet ImageFolder root: the first of :func:`imagenet_candidates` that holds
    ``train/`` and ``val/`` class folders; when none does, the first candidate (where it is
    expected — check it with :func:`imagefolder_missing`)."""
    cands = imagenet_candidates(data_dir)
    for c in cands:
        if imagefolder_missing(c) is None:
            return c
    return cands[0]


def _imagefolder_transform(image_size: int, train: bool):
    from torchvision import transforms as T

    if train:  # the usual ImageNet training augmentation (tensorpack: fbresnet_augmentor)
        return T.Compose([T.RandomResizedCrop(image_size), T.RandomHorizontalFlip(), T.ToTensor()])
    return T.Compose([T.Resize(int(image_size * 256 / 224)), T.CenterCrop(image_size), T.ToTensor()])


class ImageFolderDataset(Dataset):
    """One split of an ImageFolder tree as ``(float image C×H×W in [0, 1], label)`` items
    (torchvision's ``ImageFolder`` underneath), optionally a seeded subset of ``limit`` images.

    ``fingerprint()`` identifies the data (files, labels, image size, transform) without reading
    pixels, so trained artifacts and campaign stores keyed by it are reused across runs even
    though training crops are random."""

    def __init__(
        self,
        root: str | os.PathLike,
        split: str,
        image_size: int,
        train_transform: bool,
        limit: int | None = None,
        seed: int = 0,
        name: str = "imagefolder",
        workers: int = 0,
    ) -> None:
        from torchvision.datasets import ImageFolder

        if split not in IMAGEFOLDER_SPLITS:
            raise ValueError(f"split={split!r}: use one of {IMAGEFOLDER_SPLITS}")
        if not isinstance(image_size, int) or image_size < 8:
            raise ValueError(f"image_size={image_size!r}: give the side of the square crop in pixels")
        root = Path(root).expanduser()
        why = imagefolder_missing(root)
        if why is not None:
            raise FileNotFoundError(
                f"no ImageFolder data at {root} ({why}). Expected layout: {_IMAGEFOLDER_LAYOUT}."
            )
        self.root, self.split, self.image_size = root, split, image_size
        self.train_transform = bool(train_transform)
        self.name, self.workers = name, int(workers)
        self._folder = ImageFolder(
            str(root / split), transform=_imagefolder_transform(image_size, self.train_transform)
        )
        self.classes = tuple(self._folder.classes)
        if split == "val":
            train_classes = sorted(p.name for p in (root / "train").iterdir() if p.is_dir())
            if list(self.classes) != train_classes:
                raise ValueError(
                    f"{root / 'val'} and {root / 'train'} have different class folders; "
                    f"expected layout: {_IMAGEFOLDER_LAYOUT}"
                )
        n = len(self._folder.samples)
        if n == 0:
            raise FileNotFoundError(f"{root / split} holds no images; expected layout: {_IMAGEFOLDER_LAYOUT}")
        if limit is not None and limit <= 0:
            raise ValueError(f"limit must be positive, got {limit}")
        if limit is None or limit >= n:
            self.indices = list(range(n))
        else:
            g = torch.Generator().manual_seed(seed)
            # cpu-only: host data
            self.indices = torch.randperm(n, generator=g)[:limit].sort().values.tolist()
        part = "" if len(self.indices) == n else f" [{len(self.indices)} of {n}]"
        self.source = f"{root / split}{part}"

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self._folder[self.indices[i]]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def labels(self) -> torch.Tensor:
        """Class index of every item (no image is read)."""
        # cpu-only: host data
        return torch.as_tensor([self._folder.samples[j][1] for j in self.indices], dtype=torch.long)

    def fingerprint(self) -> str:
        import hashlib

        h = hashlib.sha256(f"{self.split}|{self.image_size}|{self.train_transform}|".encode())
        base = self.root / self.split
        for j in self.indices:
            path, label = self._folder.samples[j]
            h.update(f"{Path(path).relative_to(base).as_posix()}:{label}\n".encode())
        return h.hexdigest()[:16]

    def __repr__(self) -> str:
        return (
            f"ImageFolderDataset(name={self.name!r}, split={self.split!r}, n={len(self)}, "
            f"image_size={self.image_size}, classes={self.num_classes}, "
            f"train_transform={self.train_transform}, source={self.source!r})"
        )


def imagefolder_dataset(
    root: str | os.PathLike,
    split: str,
    image_size: int,
    train_transform: bool,
    limit: int | None = None,
    seed: int = 0,
    name: str = "imagefolder",
    workers: int = 0,
) -> ImageFolderDataset:
    """``split`` (``"train"`` or ``"val"``) of the ImageFolder tree at ``root`` as images of
    ``image_size``² in [0, 1]: ``train_transform`` → RandomResizedCrop + horizontal flip, else
    Resize(size·256/224) + CenterCrop (the standard ImageNet evaluation). ``limit`` keeps a
    seeded subset. Raises :class:`FileNotFoundError` naming the expected layout when absent."""
    return ImageFolderDataset(
        root, split, image_size, train_transform, limit=limit, seed=seed, name=name, workers=workers
    )


def make_synthetic_imagefolder(
    root: str | os.PathLike,
    num_classes: int = 8,
    per_class: int = 32,
    image_size: int = 64,
    seed: int = 0,
    val_per_class: int | None = None,
) -> Path:
    """Write a tiny learnable ImageFolder tree (``train/`` and ``val/``, PNG files) at ``root``
    and return it: class *c* is a colour of its own (hue c / classes) with a brighter band whose
    orientation also depends on *c*, plus noise — it survives random crops. Written into a
    temporary folder and renamed into place; an existing complete tree with the same arguments
    is reused."""
    from PIL import Image

    if num_classes < 2 or per_class < 1 or image_size < 8:
        raise ValueError("need num_classes >= 2, per_class >= 1 and image_size >= 8")
    val_per_class = per_class if val_per_class is None else val_per_class
    import colorsys
    import json

    root = Path(root).expanduser()
    spec = {
        "num_classes": num_classes,
        "per_class": per_class,
        "val_per_class": val_per_class,
        "image_size": image_size,
        "seed": seed,
        "format": 1,
    }
    done = root / _SYNTHETIC_DONE
    if done.is_file():
        try:
            if json.loads(done.read_text()) == spec:
                return root
        except (OSError, ValueError):
            pass
        raise FileExistsError(f"{root} holds another synthetic ImageFolder; remove it or use another root")
    if root.exists() and any(root.iterdir()):
        raise FileExistsError(f"{root} exists and is not a synthetic ImageFolder written by fatlib")
    if root.exists() and not any(root.iterdir()):
        root.rmdir()  # an empty folder: replaced
    try:
        with atomic_dir(root) as tmp:
            rng = np.random.default_rng(seed)
            yy, xx = np.mgrid[0:image_size, 0:image_size]
            for split, count in (("train", per_class), ("val", val_per_class)):
                for c in range(num_classes):
                    folder = tmp / split / f"class{c:03d}"
                    folder.mkdir(parents=True)
                    rgb = np.array(colorsys.hsv_to_rgb(c / num_classes, 0.8, 0.9)) * 255
                    band = (xx if c % 2 else yy) % 16 < 8
                    for k in range(count):
                        img = rgb[None, None, :] * (0.6 + 0.4 * band[..., None])
                        img = img + rng.normal(0, 20, (image_size, image_size, 3))
                        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(folder / f"{k:05d}.png")
            (tmp / _SYNTHETIC_DONE).write_text(json.dumps(spec))
    except OSError:
        # another process finished the same tree first: use it
        try:
            same = done.is_file() and json.loads(done.read_text()) == spec
        except ValueError:
            raise ValueError(f"{done} is not valid JSON: remove {root} and run again") from None
        if same:
            return root
        raise
    return root
