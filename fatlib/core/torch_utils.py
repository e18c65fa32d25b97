"""Small torch helpers every module shares: the device a model lives on and a context manager
that puts a model in eval mode and restores every submodule's own mode afterwards."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

__all__ = ["model_device", "eval_mode", "resolve_device"]


def model_device(model: nn.Module) -> torch.device:
    """The device of ``model``'s first parameter (else of its first buffer, else the CPU): where
    every tensor made for this model goes ("device follows the model")."""
    for tensors in (model.parameters(), model.buffers()):
        t = next(tensors, None)
        if t is not None:
            return t.device
    return torch.device("cpu")


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``"auto"`` or None → CUDA when available, else the CPU; anything else as given."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} but CUDA is not available here; use 'auto' or 'cpu'")
    return dev


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
