"""Evaluating a network under transient zero errors — FT-DeepNets §2.2–2.3 and §4.

Every figure and table of the chapter (:mod:`fatlib.ftd.experiments`) measures accuracy with these
functions. Error model (§2.2, §4, §4.1): zero errors, drawn afresh at every forward call (one draw
per batch of ``batch_size`` images), in the kernels and output feature maps of the
feature-extraction layers only — every ``Conv2d`` (and duplicated convolution), not the
classifier (:func:`feature_layers`). The injection itself is :func:`fatlib.ftd.errors.transient_errors`.

Stand-ins (``../shared/papers/README.md``): the paper's detectors become classifiers, so *accuracy*
replaces mAP and *per-class accuracy* (:func:`per_class_accuracy`) replaces per-class AP.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import replace

import pandas as pd
import torch
from torch import nn

from fatlib.core.data import ArrayDataset
from fatlib.core.torch_utils import check_images01, eval_mode, model_device
from fatlib.ftd import errors

__all__ = [
    "Data",
    "as_tensors",
    "feature_layers",
    "layer_input",
    "predict_under_errors",
    "accuracy_under_errors",
    "per_class_accuracy",
    "error_sweep",
    "summarize",
]

#: images and labels, as :func:`as_tensors` returns them
Data = tuple[torch.Tensor, torch.Tensor]


def as_tensors(dataset: ArrayDataset, n: int | None = None) -> Data:
    """The first ``n`` images (all when None) of a dataset as float images in [0, 1] and labels,
    exactly as the trainer feeds them (no augmentation): the evaluation and ranking data of
    FTD §3.1 and §4."""
    count = len(dataset) if n is None else min(int(n), len(dataset))
    if count < 1:
        raise ValueError("the dataset is empty")
    if isinstance(dataset, ArrayDataset):
        plain = replace(dataset, augment=False)
        return plain.batch(torch.arange(count))  # cpu-only: host data; batches move to the device
    xs, ys = zip(*(dataset[i] for i in range(count)))
    # cpu-only: host data; batches move to the device
    return torch.stack([torch.as_tensor(x) for x in xs]), torch.as_tensor(ys, dtype=torch.long)


def feature_layers(model: nn.Module) -> list[str]:
    """The error sites of FTD §4.1: every convolution (duplicated or not) of the feature
    extractor, not the classifier."""
    return errors.error_sites(model, include_linear=False)


@torch.no_grad()
def layer_input(model: nn.Module, layer: str, images: torch.Tensor) -> torch.Tensor:
    """The input that module ``layer`` of ``model`` receives for ``images`` (eval mode): what the
    single-layer demonstrations of FTD Fig. 4 and §3.2 feed to one convolution."""
    module = model.get_submodule(layer)
    seen: list[torch.Tensor] = []
    handle = module.register_forward_pre_hook(lambda m, args: seen.append(args[0].detach().clone()))
    try:
        with eval_mode(model):
            model(images.to(model_device(model)))
    finally:
        handle.remove()
    return seen[0]


def predict_under_errors(
    model: nn.Module,
    images: torch.Tensor,
    weight_rate: float = 0.0,
    fmap_rate: float = 0.0,
    seed: int = 0,
    layers: list[str] | None = None,
    batch_size: int = 100,
    kind: str = "zero",
) -> torch.Tensor:
    """Predicted classes of ``images`` with transient ``kind`` errors (FTD §2.2: zero) in the
    kernels (``weight_rate``) and feature maps (``fmap_rate``) of ``layers`` (default: the
    feature-extraction convolutions, §4.1), fresh errors at every batch of ``batch_size``, draws
    seeded with ``seed``. Eval mode; the model is unchanged afterwards. CPU tensor of labels.
    ``images`` must be floats in [0, 1], as :func:`as_tensors` gives them (ValueError otherwise:
    0–255 images would silently give a wrong accuracy)."""
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    check_images01(images)
    dev = model_device(model)
    layers = feature_layers(model) if layers is None else layers
    clean = weight_rate == 0 and fmap_rate == 0
    ctx = (
        contextlib.nullcontext()
        if clean
        else errors.transient_errors(model, weight_rate, fmap_rate, kind=kind, layers=layers, seed=seed)
    )
    preds = []
    with eval_mode(model), ctx:
        for xb in images.split(batch_size):
            preds.append(model(xb.to(dev)).argmax(1).cpu())
    return torch.cat(preds)


def accuracy_under_errors(
    model: nn.Module,
    data: Data,
    weight_rate: float = 0.0,
    fmap_rate: float = 0.0,
    seed: int = 0,
    layers: list[str] | None = None,
    batch_size: int = 100,
) -> float:
    """Top-1 accuracy in percent under transient zero errors (FTD §4's accuracy in place of mAP;
    :func:`predict_under_errors`)."""
    x, y = data
    pred = predict_under_errors(model, x, weight_rate, fmap_rate, seed, layers, batch_size)
    return 100.0 * float((pred == y.cpu()).double().mean())


def per_class_accuracy(pred: torch.Tensor, true: torch.Tensor, classes: Sequence[str]) -> pd.Series:
    """Accuracy in percent of each class (FTD Table 3's per-class AP, for classification)."""
    pred, true = pred.cpu(), true.cpu()
    out = {}
    for i, name in enumerate(classes):
        hit = true == i
        out[name] = 100.0 * float((pred[hit] == i).double().mean()) if hit.any() else float("nan")
    return pd.Series(out, name="accuracy")


def error_sweep(
    models: Mapping[str, nn.Module],
    data: Data,
    weight_rates: Sequence[float],
    fmap_rates: Sequence[float],
    seeds: Sequence[int],
    batch_size: int = 100,
) -> pd.DataFrame:
    """Accuracy of every model at every (weight rate, feature-map rate, seed) of the grid (FTD §4:
    the sweeps behind Fig. 2, 6 and 7). The error-free point (both rates 0) is evaluated once per
    model and repeated for each seed. Columns: ``model, weight_rate, fmap_rate, seed, accuracy``."""
    if not models:
        raise ValueError("models is empty")
    rows = []
    for name, model in models.items():
        clean: float | None = None
        for w in weight_rates:
            for f in fmap_rates:
                for s in seeds:
                    if w == 0 and f == 0:
                        if clean is None:
                            clean = accuracy_under_errors(model, data, batch_size=batch_size)
                        acc = clean
                    else:
                        acc = accuracy_under_errors(
                            model, data, float(w), float(f), int(s), batch_size=batch_size
                        )
                    rows.append(
                        {
                            "model": name,
                            "weight_rate": float(w),
                            "fmap_rate": float(f),
                            "seed": int(s),
                            "accuracy": acc,
                        }
                    )
    return pd.DataFrame(rows)


def summarize(results: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    """Mean and standard deviation of ``accuracy`` over seeds (FTD Fig. 6: line and shade);
    ``std`` is 0 for a single seed. Columns: ``*by, mean, std, n``."""
    g = results.groupby(list(by), sort=False)["accuracy"]
    out = g.agg(mean="mean", std="std", n="count").reset_index()
    out["std"] = out["std"].fillna(0.0)
    return out
