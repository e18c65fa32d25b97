"""Computational and memory overhead of kernel and feature-map recovery — FT-DeepNets §4.3.

* :func:`measure_latency` — inference latency of several networks measured with
  :class:`torch.utils.benchmark.Timer` (``blocked_autorange``) on this machine, interleaved over
  rounds so that drift hits every network alike (Table 1). :func:`latency_summary` reduces it to
  one row per network with the ratio to a baseline.
* :func:`memory_overhead` — extra memory of KR / FMR, measured (parameter bytes, averaged-kernel
  cache bytes, activation bytes from forward hooks) next to the analytic estimate of §4.3
  (Table 2): KR adds the duplicated kernels (``duplicated parameters × 4 B``); FMR adds the
  duplicated kernels plus the feature maps they compute (``Σ_l k_l · H_l · W_l × 4 B``).
* :func:`kr_kernel_memory` — KR's kernel memory while its two copies differ (the state errors put
  it in): the duplicated kernels *and* the averaged kernels §4.3's text says KR keeps, beside
  Table 2's estimate (the duplicated kernels only).
* :func:`feature_map_elements` — output feature-map elements per convolution and how many FMR
  duplicates (§4.3's "extra space for feature maps", split by depthwise / other).
* :func:`compute_overhead` / :func:`fmr_latency_bound` — multiply-accumulates per layer and the
  analytic latency bound of FMR: ``(MACs + duplicated MACs) / MACs``.
"""

from __future__ import annotations

import contextlib

import pandas as pd
import torch
from torch import nn
from torch.utils import benchmark

from fatlib.core.torch_utils import eval_mode, model_device
from fatlib.ftd.duplication import (
    DUPLICATION_METHODS,
    DuplicatedConv2d,
    KRConv2d,
    duplicate,
    duplication_plan,
)
from fatlib.ftd.ranking import rank_channels

__all__ = [
    "measure_latency",
    "latency_summary",
    "memory_overhead",
    "kr_kernel_memory",
    "feature_map_elements",
    "compute_overhead",
    "fmr_latency_bound",
]


def _check_shape(input_shape: tuple[int, ...]) -> tuple[int, ...]:
    shape = tuple(int(s) for s in input_shape)
    if len(shape) < 2 or any(s < 1 for s in shape):
        raise ValueError(f"input_shape={input_shape!r}: give a full batch shape, e.g. (1, 3, 32, 32)")
    return shape


def measure_latency(
    models: dict[str, nn.Module],
    input_shape: tuple[int, ...],
    device: torch.device | str | None = None,
    min_run_time: float = 1.0,
    rounds: int = 3,
    num_threads: int | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """Inference latency of each network (FTD §4.3, Table 1), measured here with
    ``torch.utils.benchmark.Timer.blocked_autorange(min_run_time)`` under ``torch.no_grad`` in eval
    mode, on one random input of ``input_shape``. The networks are timed in turn, ``rounds`` times
    (interleaved). ``device`` defaults to the models' device; every model must already be there.
    ``num_threads`` defaults to ``torch.get_num_threads()``. Returns a tidy table, one row per
    (model, round): ``model, round, median_ms, mean_ms, iqr_ms, measurements, batch, device,
    threads``."""
    if not models:
        raise ValueError("models is empty: pass {name: module}")
    shape = _check_shape(input_shape)
    if rounds < 1 or min_run_time <= 0:
        raise ValueError("rounds must be >= 1 and min_run_time > 0")
    devices = {name: model_device(m) for name, m in models.items()}
    dev = torch.device(device) if device is not None else next(iter(devices.values()))
    for name, d in devices.items():
        if d.type != dev.type or (dev.index is not None and d.index != dev.index):
            raise ValueError(f"model {name!r} is on {d}, not {dev}: move it with .to({str(dev)!r})")
    threads = torch.get_num_threads() if num_threads is None else int(num_threads)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g).to(dev)  # cpu-only: seeded on the host for repeatability, then moved
    rows = []
    with contextlib.ExitStack() as modes:
        for m in models.values():
            modes.enter_context(eval_mode(m))
        runners = {}
        for name, m in models.items():

            def run(m=m):
                with torch.no_grad():
                    return m(x)

            for _ in range(2):  # warm-up (allocator, caches, KR's averaged kernel)
                run()
            runners[name] = run
        for r in range(rounds):
            for name, run in runners.items():
                t = benchmark.Timer(
                    stmt="run()", globals={"run": run}, num_threads=threads, label="latency", sub_label=name
                )
                meas = t.blocked_autorange(min_run_time=min_run_time)
                rows.append(
                    {
                        "model": name,
                        "round": r,
                        "median_ms": meas.median * 1e3,
                        "mean_ms": meas.mean * 1e3,
                        "iqr_ms": meas.iqr * 1e3,
                        "measurements": len(meas.times),
                        "batch": shape[0],
                        "device": str(dev),
                        "threads": threads,
                    }
                )
    return pd.DataFrame(rows)


def latency_summary(latency: pd.DataFrame, baseline: str = "original") -> pd.DataFrame:
    """One row per model of a :func:`measure_latency` table: the median over rounds of the
    per-round medians (``median_ms``), its min / max over rounds, and ``ratio`` to ``baseline``
    computed per round then taken as the median (FTD Table 1 as ratios)."""
    if baseline not in set(latency["model"]):
        raise ValueError(
            f"baseline {baseline!r} is not a model of the table: {sorted(set(latency['model']))}"
        )
    wide = latency.pivot(index="round", columns="model", values="median_ms")
    ratios = wide.div(wide[baseline], axis=0)
    order = list(dict.fromkeys(latency["model"]))
    return pd.DataFrame(
        {
            "model": order,
            "median_ms": [wide[m].median() for m in order],
            "min_ms": [wide[m].min() for m in order],
            "max_ms": [wide[m].max() for m in order],
            "ratio": [ratios[m].median() for m in order],
        }
    )


# ------------------------------------------------------------------------------------------
def _layer_shapes(model: nn.Module, input_shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
    """Output shape of every Conv2d / Linear (one forward on zeros, eval mode, no grad)."""
    shapes: dict[str, tuple[int, ...]] = {}
    handles = []
    for name, m in model.named_modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            handles.append(
                m.register_forward_hook(
                    lambda mod, a, out, name=name: shapes.__setitem__(name, tuple(out.shape))
                )
            )
    try:
        with eval_mode(model), torch.no_grad():
            model(torch.zeros(input_shape, device=model_device(model)))
    finally:
        for h in handles:
            h.remove()
    return shapes


def _filter_params(m: nn.Module) -> int:
    """Parameters of one output filter (weights + bias) of a Conv2d / Linear."""
    n = m.weight[0].numel()
    return n + (1 if getattr(m, "bias", None) is not None else 0)


def compute_overhead(
    model: nn.Module,
    ratio: float,
    input_shape: tuple[int, ...],
    scores: dict[str, torch.Tensor] | None = None,
) -> pd.DataFrame:
    """Multiply-accumulates per ``Conv2d`` / ``Linear`` of ``model`` for one forward of
    ``input_shape`` and the extra ones FMR's replica convolutions add at duplication ``ratio``
    (FTD §4.3). ``scores`` default to weight-sum ranking. Columns: ``layer, kind, channels,
    duplicated, macs, fmr_extra_macs``."""
    shape = _check_shape(input_shape)
    scores = rank_channels(model, "weight_sum") if scores is None else scores
    plan = duplication_plan(model, ratio, scores)
    shapes = _layer_shapes(model, shape)
    rows = []
    for name, m in model.named_modules():
        if name not in shapes:
            continue
        out = shapes[name]
        per_output = m.weight[0].numel()  # MACs per output element
        channels = out[1]
        positions = 1
        for s in out[2:]:
            positions *= s
        macs = out[0] * channels * positions * per_output
        k = plan[name].numel() if name in plan else 0
        rows.append(
            {
                "layer": name,
                "kind": type(m).__name__,
                "channels": channels,
                "duplicated": k,
                "macs": macs,
                "fmr_extra_macs": out[0] * k * positions * per_output,
            }
        )
    return pd.DataFrame(rows)


def fmr_latency_bound(
    model: nn.Module,
    ratio: float,
    input_shape: tuple[int, ...],
    scores: dict[str, torch.Tensor] | None = None,
) -> float:
    """Analytic FMR / original latency if time were proportional to multiply-accumulates
    (FTD §4.3): ``(MACs + duplicated MACs) / MACs`` — the duplicated share of compute, with MobileNet's
    paired depthwise kernels counted whole."""
    table = compute_overhead(model, ratio, input_shape, scores)
    return float((table["macs"].sum() + table["fmr_extra_macs"].sum()) / table["macs"].sum())


# ------------------------------------------------------------------------------------------
def _param_bytes(model: nn.Module) -> int:
    seen, total = set(), 0
    for p in model.parameters():
        if p.data_ptr() in seen:
            continue
        seen.add(p.data_ptr())
        total += p.numel() * p.element_size()
    return total


def _cache_bytes(model: nn.Module) -> int:
    total = 0
    for m in model.modules():
        if isinstance(m, KRConv2d):
            total += m.cache_bytes
    return total


def _activation_bytes(model: nn.Module, x: torch.Tensor) -> int:
    """Bytes of the distinct tensors the modules of ``model`` output in one forward (a tensor
    written in place, e.g. by ``ReLU(inplace=True)`` or FMR's averaging, counts once)."""
    keep: list[torch.Tensor] = []  # hold every output so that no storage is reused
    seen: dict[int, int] = {}

    def hook(module, args, output):
        outs = output if isinstance(output, (tuple, list)) else (output,)
        for t in outs:
            if isinstance(t, torch.Tensor):
                keep.append(t)
                st = t.untyped_storage()
                seen[st.data_ptr()] = max(seen.get(st.data_ptr(), 0), st.nbytes())

    handles = [m.register_forward_hook(hook) for m in model.modules() if m is not model]
    try:
        with eval_mode(model), torch.no_grad():
            out = model(x)
            hook(model, (), out)
    finally:
        for h in handles:
            h.remove()
    total = sum(seen.values())
    keep.clear()
    return total


def memory_overhead(
    model: nn.Module,
    ratio: float,
    method: str,
    input_shape: tuple[int, ...],
    scores: dict[str, torch.Tensor] | None = None,
) -> pd.DataFrame:
    """Memory overhead of duplicating ``model`` with ``method`` (``"kr"`` or ``"fmr"``) at
    ``ratio`` (FTD §4.3, Table 2), measured and analytic, for one forward of ``input_shape``.
    ``scores`` default to weight-sum ranking.

    Rows (``quantity``): ``kernels`` (parameter bytes, plus KR's cached averaged kernels, which
    exist only when the copies differ), ``activations`` (bytes of distinct module outputs of one
    forward, from forward hooks) and ``total``. Columns: ``method, ratio, quantity,
    original_bytes, duplicated_bytes, measured_overhead_bytes, analytic_overhead_bytes,
    measured_overhead_mb, analytic_overhead_mb`` (MB = 10⁶ bytes, as in the paper). Analytic, as
    in §4.3: kernels = duplicated parameters × bytes per parameter (KR and FMR); activations =
    duplicated feature-map elements × bytes per element (FMR; 0 for KR)."""
    if method not in DUPLICATION_METHODS:
        raise ValueError(f"unknown duplication method {method!r}: use one of {DUPLICATION_METHODS}")
    if any(isinstance(m, DuplicatedConv2d) for m in model.modules()):
        raise ValueError("pass the original (not duplicated) network")
    shape = _check_shape(input_shape)
    scores = rank_channels(model, "weight_sum") if scores is None else scores
    dup = duplicate(model, ratio, scores, method)
    device = model_device(model)
    # cpu-only: seeded on the host for repeatability, then moved
    x = torch.randn(shape, generator=torch.Generator().manual_seed(0)).to(device)

    orig_act = _activation_bytes(model, x)
    dup_act = _activation_bytes(dup, x)  # also fills KR's cache
    orig_k = _param_bytes(model)
    dup_k = _param_bytes(dup) + _cache_bytes(dup)

    plan = duplication_plan(model, ratio, scores)
    shapes = _layer_shapes(model, shape)
    modules = dict(model.named_modules())
    an_k = an_act = 0
    for name, index in plan.items():
        m = modules[name]
        k = index.numel()
        an_k += k * _filter_params(m) * m.weight.element_size()
        if method == "fmr":
            out = shapes[name]
            positions = 1
            for s in out[2:]:
                positions *= s
            an_act += out[0] * k * positions * m.weight.element_size()
    rows = []
    for q, o, d, a in (
        ("kernels", orig_k, dup_k, an_k),
        ("activations", orig_act, dup_act, an_act),
        ("total", orig_k + orig_act, dup_k + dup_act, an_k + an_act),
    ):
        rows.append(
            {
                "method": method,
                "ratio": float(ratio),
                "quantity": q,
                "original_bytes": o,
                "duplicated_bytes": d,
                "measured_overhead_bytes": d - o,
                "analytic_overhead_bytes": a,
                "measured_overhead_mb": (d - o) / 1e6,
                "analytic_overhead_mb": a / 1e6,
            }
        )
    return pd.DataFrame(rows)


@torch.no_grad()
def kr_kernel_memory(
    model: nn.Module, ratio: float, scores: dict[str, torch.Tensor] | None = None
) -> dict[str, int]:
    """KR's kernel memory while its two copies differ (FTD §4.3: "the KR approach requires memory
    space to keep the duplicated and averaged kernels"), the state transient errors put it in.
    ``model`` is duplicated with KR at ``ratio`` (``scores`` default to weight-sum ranking); one
    zero error is placed in the replica kernel of every duplicated layer (its largest weight), so
    the copies differ and KR caches its averaged kernel (:attr:`fatlib.ftd.duplication.KRConv2d.cache_bytes`;
    this implementation caches the whole merged kernel of the layer, the minimum is the
    averaged filters). Returns bytes: ``duplicated`` (replica kernels and biases, measured),
    ``averaged`` (the cached averaged kernels, measured), ``total`` (the two) and ``estimate``
    (§4.3 / Table 2: duplicated parameters × bytes per parameter)."""
    if any(isinstance(m, DuplicatedConv2d) for m in model.modules()):
        raise ValueError("pass the original (not duplicated) network")
    scores = rank_channels(model, "weight_sum") if scores is None else scores
    dup = duplicate(model, ratio, scores, "kr")
    duplicated = _param_bytes(dup) - _param_bytes(model)
    estimate = 0
    modules = dict(model.named_modules())
    for name, index in duplication_plan(model, ratio, scores).items():
        m = modules[name]
        estimate += index.numel() * _filter_params(m) * m.weight.element_size()
    with eval_mode(dup):
        for m in dup.modules():
            if isinstance(m, KRConv2d):
                w = m.replica.weight
                w.view(-1)[int(w.abs().argmax())] = 0.0  # in place: a zero error in the copy
                m.merged_weight()  # KR averages the two copies (and caches the result)
    averaged = _cache_bytes(dup)
    return {
        "duplicated": duplicated,
        "averaged": averaged,
        "total": duplicated + averaged,
        "estimate": estimate,
    }


def feature_map_elements(
    model: nn.Module,
    ratio: float,
    input_shape: tuple[int, ...],
    scores: dict[str, torch.Tensor] | None = None,
) -> pd.DataFrame:
    """Output feature-map elements of every convolution of ``model`` for one forward of
    ``input_shape`` and how many of them FMR duplicates at ``ratio`` (FTD §4.3: "FMR requires
    extra space for feature maps"); ``scores`` default to weight-sum ranking. Columns: ``layer,
    depthwise`` (grouped convolution: MobileNet's depthwise kernels, duplicated whole when their
    pointwise partner is duplicated, §3.3), ``channels, duplicated, elements,
    duplicated_elements``."""
    shape = _check_shape(input_shape)
    scores = rank_channels(model, "weight_sum") if scores is None else scores
    plan = duplication_plan(model, ratio, scores)
    shapes = _layer_shapes(model, shape)
    rows = []
    for name, m in model.named_modules():
        if name not in shapes or not isinstance(m, nn.Conv2d):
            continue
        out = shapes[name]
        per_channel = out[0]
        for d in out[2:]:
            per_channel *= d
        k = plan[name].numel() if name in plan else 0
        rows.append(
            {
                "layer": name,
                "depthwise": m.groups > 1,
                "channels": out[1],
                "duplicated": k,
                "elements": out[1] * per_channel,
                "duplicated_elements": k * per_channel,
            }
        )
    return pd.DataFrame(rows)
