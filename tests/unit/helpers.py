"""Helpers shared by several test files (plain functions; fixtures live in conftest.py)."""

from __future__ import annotations

import torch
from torch import nn

from fatlib.core.models import cnv, mobilenet_v1, spread_statistics, vgg16


def randomize_statistics(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """:func:`fatlib.core.models.spread_statistics` (the tests' older name)."""
    return spread_statistics(model, seed)


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


def crash_once_training(store: str, marker: str) -> dict:
    """A training (tiny CNV W1A2, FAT method 2, resume state after every batch) whose process
    dies once — ``os._exit`` after its second resume state, the first time it runs (``marker``
    absent) — as a worker killed mid-training; run again it resumes (the Dask retry test)."""
    import os
    import threading
    import time
    from pathlib import Path

    from fatlib.core import data, training

    torch.set_num_threads(1)
    if not Path(marker).exists():

        def kill_after_two_states() -> None:
            seen = 0
            last = None
            while True:
                for f in Path(store).glob("*/resume.pt"):
                    stamp = f.stat().st_mtime_ns
                    if stamp != last:
                        seen, last = seen + 1, stamp
                if seen >= 2:
                    Path(marker).write_text("killed once")
                    os._exit(1)
                time.sleep(0.005)

        threading.Thread(target=kill_after_two_states, daemon=True).start()
        clip = training.clip_weights
        training.clip_weights = lambda m: (clip(m), time.sleep(0.05))  # slow enough to be caught
    res = training.train(
        tiny_config(scheme="fat-m2", pattern="channel", p=0.2, augment=True, seed=3),
        data.synthetic_dataset(n=160, seed=0),
        None,
        store=store,
        progress=False,
        checkpoint=training.Checkpointing(every_batches=1, every_seconds=1e9, every_epochs=1),
    )
    return {
        "resumes": len(res.metrics["resumes"]),
        "state": {k: v.clone() for k, v in res.model.state_dict().items()},
    }
