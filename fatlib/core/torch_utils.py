"""Small torch helpers every module shares: the device a model lives on and a context manager
that puts a model in eval mode and restores every submodule's own mode afterwards."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch
from torch import nn

__all__ = ["model_device", "eval_mode", "resolve_device", "parse_device", "check_images01"]


def model_device(model: nn.Module) -> torch.device:
    """The device of ``model``'s first parameter (else of its first buffer, else the CPU): where
    every tensor made for this model goes ("device follows the model")."""
    for tensors in (model.parameters(), model.buffers()):
        t = next(tensors, None)
        if t is not None:
            return t.device
    return torch.device("cpu")


def parse_device(device: str | torch.device) -> torch.device:
    """``device`` as a :class:`torch.device`; a string torch cannot read (``"cudax"``) or a CUDA
    device on a machine without CUDA raises ValueError saying what to write instead."""
    if isinstance(device, torch.device):
        dev = device
    else:
        try:
            dev = torch.device(device)
        except (RuntimeError, TypeError, ValueError):
            raise ValueError(
                f"device={device!r} is not a device: use cpu, cuda or cuda:N (or auto)"
            ) from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device={str(device)!r} but CUDA is not available here; use 'auto' or 'cpu'")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(
                f"device={str(device)!r} but this machine has {torch.cuda.device_count()} CUDA "
                "device(s): use cuda:0 .. cuda:N-1"
            )
    return dev


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``"auto"`` or None → CUDA when available, else the CPU; anything else as given (checked by
    :func:`parse_device`: ValueError for a device that is not one, or not here)."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return parse_device(device)


def check_images01(images: torch.Tensor, what: str = "images") -> None:
    """ValueError unless ``images`` is a floating tensor with every value in [0, 1] (the range every
    fatlib network is trained on: ``uint8 / 255``); the message says how to fix it."""
    if not torch.is_tensor(images):
        raise ValueError(f"{what} must be a float tensor with values in [0, 1], got {type(images).__name__}")
    if images.dtype == torch.uint8:
        raise ValueError(f"{what} must be floats in [0, 1], got uint8; divide uint8 images by 255")
    if not images.is_floating_point():
        raise ValueError(f"{what} must be floats in [0, 1], got {images.dtype}; divide uint8 images by 255")
    if images.numel() == 0:
        return
    if bool(torch.isnan(images).any()):
        raise ValueError(f"{what} contain NaN; images must be floats in [0, 1]")
    lo, hi = float(images.min()), float(images.max())
    if lo < 0.0 or hi > 1.0:
        hint = (
            "divide uint8 images by 255"
            if hi > 1.0 and lo >= 0.0
            else "undo any normalisation (mean / std): fatlib networks take the raw image in [0, 1]"
        )
        raise ValueError(
            f"{what} must be floats in [0, 1], got values from {lo:g} to {hi:g}; {hint} "
            "(out-of-range images would silently give a wrong accuracy)"
        )


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """``model`` in eval mode inside the block; afterwards every submodule is back in the mode
    it had (not just the top one: a model with some modules frozen in eval stays that way).
    Gradients are untouched: combine with :func:`torch.no_grad` where none are needed."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, training in modes:  # parents first: each child then gets its own mode back
            m.train(training)


#: the cuBLAS workspace setting deterministic CUDA matrix products need (set when unset, before
#: cuBLAS starts; https://docs.nvidia.com/cuda/cublas/#results-reproducibility)
CUBLAS_WORKSPACE = ":4096:8"


@contextlib.contextmanager
def deterministic_algorithms(enabled: bool = True) -> Iterator[bool]:
    """Repeatable kernels while the block runs (issue #16): ``torch.use_deterministic_algorithms``
    (an operation with no deterministic kernel warns instead of failing), the cuBLAS workspace
    setting :data:`CUBLAS_WORKSPACE` in ``$CUBLAS_WORKSPACE_CONFIG`` when it is unset, and cuDNN
    without autotuning, in its deterministic mode. Restores the previous settings afterwards
    (the environment variable stays: cuBLAS reads it once). ``enabled=False`` changes nothing.
    Yields ``enabled``, for the artifact's record. With the same seed on the same kind of device
    and the same thread count, training then gives the same weights; across devices or thread
    counts the floating-point order differs and so may the weights."""
    if not enabled:
        yield False
        return
    before = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.backends.cudnn.benchmark,
        torch.backends.cudnn.deterministic,
    )
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    try:
        yield True
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = before[2], before[3]
