"""The campaign's inputs and small helpers: images and labels as tensors (in memory, or a large
dataset read batch by batch), the model on its device, SHA-256 fingerprints of both (part of a
store's identity) and the integer codes of uniformly quantized tensors."""

from __future__ import annotations

import copy
import hashlib
import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from fatlib.core.torch_utils import check_images01, model_device, resolve_device
from fatlib.fat.injection import ErrorInjection

#: images per golden batch when ``batch_size`` is not given (fixed, so that a store written on a
#: GPU can be resumed on a CPU and vice versa).
DEFAULT_BATCH_SIZE = 100


def as_tensors(data: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """``(images float32 N×C×H×W in [0, 1], labels int64 N)`` on the CPU, from a Dataset of
    ``(image, label)`` items or a tuple of tensors. Images outside [0, 1] (e.g. 0–255 floats),
    non-integer labels and wrong shapes raise ValueError saying how to fix them."""
    in_range = False  # an ArrayDataset's uint8 / 255 is in [0, 1] by construction
    if isinstance(data, (tuple, list)) and len(data) == 2 and torch.is_tensor(data[0]):
        images, labels = data
        labels = torch.as_tensor(labels)  # cpu-only: host data; batches move to the device
    elif hasattr(data, "__len__") and hasattr(data, "__getitem__"):
        raw = getattr(data, "images", None)
        if (
            torch.is_tensor(raw)
            and raw.dtype == torch.uint8
            and torch.is_tensor(getattr(data, "labels", None))
        ):
            # fatlib.core.data.ArrayDataset: the same op as its __getitem__, for all items at once
            images, labels = raw.float().div_(255.0), data.labels
            in_range = True
        else:
            if len(data) == 0:
                raise ValueError("data is empty: a campaign needs at least one image")
            items = [data[i] for i in range(len(data))]
            # cpu-only: host data; batches move to the device
            images = torch.stack([torch.as_tensor(x) for x, _ in items])
            # cpu-only: host data; batches move to the device
            labels = torch.as_tensor([int(y) for _, y in items])
    else:
        raise ValueError(
            "data must be a torch Dataset of (image, label) items or a tuple "
            f"(images, labels) of tensors, got {type(data).__name__}"
        )
    if not torch.is_tensor(images) or images.ndim != 4:
        raise ValueError(
            "images must be a float tensor N×C×H×W with values in [0, 1], got "
            f"{getattr(images, 'dtype', type(images))} of shape "
            f"{tuple(getattr(images, 'shape', ()))}"
        )
    if not in_range:
        check_images01(images)
    labels = _integer_labels(labels)
    if labels.shape[0] != images.shape[0]:
        raise ValueError(f"{images.shape[0]} images but {labels.shape[0]} labels")
    if images.shape[0] == 0:
        raise ValueError("data is empty: a campaign needs at least one image")
    return images.detach().float().cpu().contiguous(), labels.detach().cpu().contiguous()


def _integer_labels(labels: torch.Tensor) -> torch.Tensor:
    """``labels`` as int64 N; ValueError for non-integer values (a float 2.7 is not a class)."""
    labels = torch.as_tensor(labels).reshape(-1)  # cpu-only: host data; batches move to the device
    if labels.dtype == torch.bool:
        raise ValueError("labels must be integer class indices, got bool")
    if labels.is_floating_point():
        bad = ~torch.isfinite(labels) | (labels != labels.round())
        if bool(bad.any()):
            raise ValueError(
                f"labels must be integer class indices, got {labels[bad][0].item()!r} "
                f"({int(bad.sum())} non-integer labels)"
            )
    return labels.long()


def model_classes(model: nn.Module) -> int | None:
    """The number of output classes of a fatlib network (its ``num_classes``), or None."""
    n = getattr(model, "num_classes", None)
    return int(n) if isinstance(n, int) and not isinstance(n, bool) else None


def check_labels(labels: torch.Tensor | None, model: nn.Module) -> None:
    """ValueError unless every label is a class of ``model``: ``0 <= label < num_classes`` (a
    label the network cannot output would silently count as wrong everywhere)."""
    if labels is None or labels.numel() == 0:
        return
    lo, hi = int(labels.min()), int(labels.max())
    if lo < 0:
        raise ValueError(f"labels must be class indices 0, 1, 2, ..., got {lo} (negative)")
    n = model_classes(model)
    if n is not None and hi >= n:
        raise ValueError(
            f"labels go up to {hi} but the model has {n} output classes: evaluate it on the "
            "dataset it was trained on (a label it cannot output is always counted wrong)"
        )


def check_image_shape(model: nn.Module, image_shape: Sequence[int]) -> None:
    """ValueError unless images of ``image_shape`` (C×H×W) fit ``model``: a CNV needs
    ``in_channels``×32×32 (3×32×32), DoReFa-AlexNet ``in_channels`` channels of at least 44×44."""
    from fatlib.core.models import CNV, DoReFaAlexNet

    shape = tuple(int(v) for v in image_shape)
    got = "×".join(map(str, shape))
    if isinstance(model, CNV):
        need = (int(model.in_channels), 32, 32)
        if shape != need:
            raise ValueError(
                f"images are {got} but CNV needs {'×'.join(map(str, need))} (C×H×W): give "
                f"{need[0]}-channel 32×32 images (RGB, channels first; resize / convert them first)"
            )
    elif isinstance(model, DoReFaAlexNet):
        if len(shape) != 3 or shape[0] != int(model.in_channels) or min(shape[1:]) < 44:
            raise ValueError(
                f"images are {got} but DoReFa-AlexNet needs {model.in_channels}×H×W with H, W >= 44 "
                "(C×H×W, channels first)"
            )


def prepare_model(model: nn.Module, device: str | torch.device | None) -> tuple[nn.Module, torch.device]:
    """The model on ``device`` (a copy when it has to move; the device follows the model when
    ``device`` is None; ``"auto"``: CUDA when available; a bad device string raises ValueError).
    Refuses models without FAT activation sites (a fatlib CNV or DoReFaAlexNet) and models with
    enabled FAT injection layers attached."""
    from fatlib.core.models import CNV, DoReFaAlexNet

    if not isinstance(model, (CNV, DoReFaAlexNet)):
        raise ValueError(
            "stuck-at campaigns need a fatlib CNV (fatlib.core.models.cnv) or DoReFaAlexNet "
            f"(fatlib.core.models.dorefa_alexnet), got {type(model).__name__}"
        )
    for m in model.modules():
        if isinstance(m, ErrorInjection) and getattr(m, "enabled", False) and getattr(m, "p", 0.0) > 0:
            raise ValueError(
                "the model has enabled FAT error-injection layers attached; call "
                "fatlib.fat.injection.remove_injection(model) before a campaign"
            )
    here = model_device(model)
    dev = here if device is None else resolve_device(device)
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", torch.cuda.current_device())
    if dev != here:
        model = copy.deepcopy(model).to(dev)
    return model, dev


def _sha256_tensors(items: Sequence[tuple[str, torch.Tensor]]) -> str:
    h = hashlib.sha256()
    for name, t in items:
        t = t.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def model_fingerprint(model: nn.Module) -> str:
    """SHA-256 of the model's state dict (a store's ``model_sha256``)."""
    return _sha256_tensors(sorted(model.state_dict().items()))


def _data_fingerprint(images: torch.Tensor, labels: torch.Tensor) -> str:
    return _sha256_tensors([("images", images), ("labels", labels)])


def is_pow2(x: float) -> bool:
    """Whether ``x`` is a positive, finite power of two (a scale that keeps float32 sums exact)."""
    if not (x > 0 and math.isfinite(x)):
        return False
    m, _ = math.frexp(x)
    return m == 0.5


def unit_codes(values: torch.Tensor, what: str) -> tuple[float, torch.Tensor]:
    """``(unit, integer codes)`` with ``values == codes * unit`` exactly (float32)."""
    v = values.detach().float().cpu()
    nz = v[v != 0].abs()
    unit = float(nz.min()) if nz.numel() else 1.0
    codes = torch.round(v.double() / unit)
    if not torch.equal((codes * unit).float(), v):
        raise ValueError(
            f"{what}: values are not integer multiples of one scale; the campaign "
            "engine needs uniformly quantized (brevitas INT / BINARY) tensors"
        )
    return unit, codes.float()


#: a Dataset at least this long that has ``fingerprint()`` (fatlib.core.data.ImageFolderDataset) is
#: read batch by batch instead of being held in memory
_LAZY_MIN_ITEMS = 2048


class ImageSource:
    """The campaign's images: in memory (tensors, or a small Dataset read once), or, for the
    generic runner, a large Dataset with ``fingerprint()`` read one image batch at a time."""

    def __init__(self, data: Any, lazy_ok: bool = False) -> None:
        self.dataset = None
        if (
            lazy_ok
            and not isinstance(data, (tuple, list))
            and hasattr(data, "fingerprint")
            and hasattr(data, "__getitem__")
            and len(data) >= _LAZY_MIN_ITEMS
        ):
            self.dataset = data
            self.n = len(data)
            first = torch.as_tensor(data[0][0])  # cpu-only: host data; batches move to the device
            if first.ndim != 3:
                raise ValueError(
                    "images must be float tensors C×H×W with values in [0, 1], got "
                    f"{first.dtype} of shape {tuple(first.shape)}"
                )
            check_images01(first, "images (the first one)")
            self.image_shape = tuple(first.shape)
            self._fp = hashlib.sha256(f"dataset|{data.fingerprint()}|{self.n}".encode()).hexdigest()
            self.images = self.labels = None
        else:
            self.images, self.labels = as_tensors(data)
            self.n = int(self.images.shape[0])
            self.image_shape = tuple(self.images.shape[1:])
            self._fp = None

    def fingerprint(self) -> str:
        if self._fp is None:
            self._fp = _data_fingerprint(self.images, self.labels)
        return self._fp

    def fetch(self, i0: int, i1: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Images (float, [0, 1]) and labels ``i0:i1`` on the CPU."""
        if self.dataset is None:
            return self.images[i0:i1], self.labels[i0:i1]
        items = [self.dataset[i] for i in range(i0, i1)]
        # cpu-only: host data; batches move to the device
        x = torch.stack([torch.as_tensor(x) for x, _ in items])
        check_images01(x, f"images {i0}..{i1 - 1}")
        # cpu-only: host data; batches move to the device
        return x.float(), torch.as_tensor([int(y) for _, y in items], dtype=torch.long)

    def all_labels(self) -> torch.Tensor | None:
        """Every label (in memory, or a lazy dataset's ``labels`` read without images), or None."""
        if self.dataset is None:
            return self.labels
        labels = getattr(self.dataset, "labels", None)
        # cpu-only: host data; batches move to the device
        return torch.as_tensor(labels).reshape(-1).long() if labels is not None else None
