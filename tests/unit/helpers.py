"""Helpers shared by several test files (plain functions; fixtures live in conftest.py)."""

from __future__ import annotations

import torch
from torch import nn

from fatlib.core.models import cnv, mobilenet_v1, vgg16


def randomize_statistics(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Spread BatchNorm / TensorNorm statistics so that thresholds land everywhere (an untrained
    CNV with unit BN statistics is nearly constant and would hide wrong results)."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            c = m.num_features
            m.running_mean.copy_(torch.randn(c, generator=g) * 3)
            m.running_var.copy_(torch.rand(c, generator=g) * 20 + 0.5)
            m.weight.data.copy_(torch.randn(c, generator=g))
            m.bias.data.copy_(torch.randn(c, generator=g) * 0.5)
        if type(m).__name__ == "TensorNorm":
            m.running_mean.fill_(0.3)
            m.running_var.fill_(2.0)
    return model.eval()


def randomized_cnv(wb: int, ab: int, seed: int = 0) -> torch.nn.Module:
    """A seeded CNV W\\ *wb*\\ A\\ *ab* of width 0.125 with spread statistics, in eval mode."""
    torch.manual_seed(seed)
    return randomize_statistics(cnv(wb, ab, width=0.125), seed + 1)


def ftd_net(arch: str):
    """A tiny seeded VGG-16 / MobileNetV1 (width 0.125, eval mode) with non-trivial BatchNorm
    statistics, so that outputs depend on inputs."""
    torch.manual_seed(0)
    m = (vgg16 if arch == "vgg16" else mobilenet_v1)(width=0.125).eval()
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.1, 0.1)
                mod.running_var.uniform_(0.01, 0.05)
    return m


def tiny_config(**overrides: object):
    """A tiny CNV training config (W1A2, width 0.125, 3 epochs, batch 32, the learning rate halved
    every 2 epochs, no augmentation, seed 0, SAT) with ``overrides`` applied."""
    from fatlib.core.training import TrainConfig

    base = dict(
        arch="cnv",
        weight_bits=1,
        act_bits=2,
        width=0.125,
        epochs=3,
        batch_size=32,
        lr=0.02,
        lr_step=2,
        augment=False,
        seed=0,
    )
    return TrainConfig(**{**base, **overrides})
