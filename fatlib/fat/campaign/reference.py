"""The reference: :func:`naive_campaign` runs FAT Algorithm 1 as written — per fault, the
unmodified model re-executes every image (per-fault re-execution, as PyTorchFI does) — and
:func:`golden_accuracy` gives the error-free accuracy of FAT Tables I–IV."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from fatlib.core.schemes import CHANNEL
from fatlib.core.torch_utils import eval_mode
from fatlib.fat.campaign.data import (
    DEFAULT_BATCH_SIZE,
    as_tensors,
    check_image_shape,
    check_labels,
    prepare_model,
)
from fatlib.fat.campaign.faults import (
    check_pattern,
    generic_site_table,
    named_faults,
    population,
    resolve_layers,
    resolve_levels,
)
from fatlib.fat.campaign.results import result_frame


def naive_campaign(
    model: nn.Module,
    data: Any,
    pattern: str = CHANNEL,
    levels: Sequence[float] | None = None,
    layers: Sequence[int] | None = None,
    batch_size: int | None = None,
    device: str | torch.device | None = None,
    faults: pd.DataFrame | Sequence[tuple] | None = None,
    progress: bool = False,
) -> pd.DataFrame:
    """Reference implementation of FAT Algorithm 1: per fault, a forward hook overwrites the
    site's output (channel, or one position of all channels) and the unmodified brevitas model
    runs a full forward pass on every image — per-fault re-execution, as PyTorchFI does.
    Same fault space, order and columns as :func:`stuck_at_campaign`; any fatlib network with
    activation sites (CNV, DoReFa-AlexNet)."""
    from tqdm import tqdm  # tqdm.auto warns on every page where ipywidgets is absent

    from fatlib.core.models import activation_sites

    check_pattern(pattern)
    images, labels = as_tensors(data)
    model, dev = prepare_model(model, device)
    check_image_shape(model, images.shape[1:])
    check_labels(labels, model)
    bs = int(batch_size or DEFAULT_BATCH_SIZE)
    with eval_mode(model), torch.no_grad():
        sites_t = generic_site_table(model, tuple(images.shape[1:]))
        lays = resolve_layers(sites_t, pattern, layers, explicit_faults=faults is not None)
        pop = population(sites_t, pattern, lays, resolve_levels(sites_t, lays, levels))
        fl = named_faults(pop, faults) if faults is not None else pop
        sites = activation_sites(model)
        batches = [
            (images[s : s + bs].to(dev), labels[s : s + bs].to(dev)) for s in range(0, images.shape[0], bs)
        ]
        golden = sum(int((model(x).argmax(1) == y).sum()) for x, y in batches)
        correct = np.zeros(len(fl), dtype=np.int64)
        for i in tqdm(range(len(fl)), disable=not progress, desc="naive stuck-at"):
            L, a, b, v = int(fl.layer[i]), int(fl.a[i]), int(fl.b[i]), float(fl.value[i])

            def hook(mod: nn.Module, inp: Any, out: torch.Tensor, a=a, b=b, v=v) -> torch.Tensor:
                out = out.clone()
                if pattern == CHANNEL:
                    out[:, a] = v
                else:
                    out[:, :, a, b] = v
                return out

            handle = sites[L].register_forward_hook(hook)
            try:
                correct[i] = sum(int((model(x).argmax(1) == y).sum()) for x, y in batches)
            finally:
                handle.remove()
    meta = {
        "pattern": pattern,
        "layers": lays,
        "n_images": int(images.shape[0]),
        "n_faults": len(fl),
        "population_size": len(fl),
        "golden_correct": golden,
        "error_free": 100.0 * golden / images.shape[0],
        "engine": "naive",
    }
    return result_frame(fl, correct, images.shape[0], meta)


def golden_accuracy(
    model: nn.Module, data: Any, batch_size: int | None = None, device: str | torch.device | None = None
) -> float:
    """Error-free test accuracy (%) of the brevitas model — the "Error-free" column of FAT
    Tables I–IV. Images must be floats in [0, 1] of the shape the model needs, labels classes of
    the model (ValueError otherwise: a silent 0 % is never returned for bad input)."""
    images, labels = as_tensors(data)
    model, dev = prepare_model(model, device)
    check_image_shape(model, images.shape[1:])
    check_labels(labels, model)
    bs = int(batch_size or DEFAULT_BATCH_SIZE)
    correct = 0
    with eval_mode(model), torch.no_grad():
        for s in range(0, images.shape[0], bs):
            x, y = images[s : s + bs].to(dev), labels[s : s + bs].to(dev)
            correct += int((model(x).argmax(1) == y).sum())
    return 100.0 * correct / images.shape[0]
