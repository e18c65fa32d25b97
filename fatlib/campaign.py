"""Exhaustive stuck-at campaigns on CNV — FAT Algorithm 1 (§III), Tables I–IV.

Algorithm 1 sticks, for every error value, every layer and every channel, one channel of one
activation layer at that value and measures the test accuracy; Table I lists the min / max per
layer, Tables II–IV the error-free accuracy, the overall minimum and the variance. The same-pixel
model (Fig. 2 right, Table IV) sticks one (row, col) position of all channels instead.

What a fault is
---------------
A fault ``(layer, channel, value)`` (pattern ``"channel"``) or ``(layer, row, col, value)``
(pattern ``"pixel"``) replaces the **output** of activation site ``layer`` (the quantizer numbered
0–7 by :func:`fatlib.models.activation_sites`; after the quantizer and *before* the max-pool of
layers 1 and 3) for every image: a whole channel (all spatial positions; for the FC sites 6 and 7
one neuron), or one position across all channels. ``value`` is one of the levels the site's
quantizer can output (:func:`fatlib.models.activation_levels`). The pixel pattern exists only
where there are pixels: sites 0–5 (conv); the FC sites 6, 7 have no spatial position, are skipped
by default and refused when asked for (a "pixel" of an FC layer would be the whole layer). Site 5
(a 1×1 map in CNV) is skipped by default for the same reason — its one pixel is the whole layer,
which leaves the output constant; the paper's Table IV minima (≥ 64.93 %) exclude it — but runs
when asked for by number.

Results are tidy DataFrames, one row per fault in canonical order — ``layer``, ``channel`` (or
``row``, ``col``), ``value`` ascending — with ``correct``, ``total`` and ``accuracy`` (percent).

How it is fast, and why it stays exact
--------------------------------------
:func:`naive_campaign` is the reference: per fault, a forward hook overwrites the site output and
the unmodified brevitas model runs a full forward pass (how PyTorchFI works).
:func:`stuck_at_campaign` computes the same numbers with a frozen copy of the network:

1. **Integer domain.** Quantized weights (``quant_weight().value``) are frozen as integer codes
   times one scale; activations are carried as integer codes (the 8-bit input as codes of
   2^-7). Every conv / FC accumulator is a sum of small integers held in float32: exact in any
   summation order (|acc| < 2^24), so kernel choice, batch size, memory format (channels-last)
   and the linearity trick below cannot change a bit.
2. **BN + quantizer as thresholds.** For every channel the map "integer accumulator → output
   code" is tabulated once by running the model's *own* BatchNorm and QuantIdentity modules on
   every reachable accumulator value (``fl32(acc · scale)`` is exactly what brevitas feeds
   BatchNorm when the scales are powers of two). Each map is monotone; flipping the sign of a
   channel's weights makes it non-decreasing, and it becomes one threshold folded into the conv
   bias (A1: ``code = sign(z)``) or a sum of signs (A2). Monotone maps commute with max-pool, so
   the pool runs first (on a quarter of the elements). TensorNorm runs as the module itself on
   the exact logits; ``argmax`` breaks ties like the reference.
3. **Golden prefix once** per image batch: every stage input, accumulator and site output.
4. **Linearity at the first layer after the fault.** ``z' = z + W[:, c] ⊛ (v − x_c)``: a
   one-input-channel convolution (after a max-pool the stuck channel pools to the constant
   ``v``); for the pixel pattern, the conv of the one-pixel delta on a ≤5×5 crop after
   re-pooling the one affected 2×2 window. Integers only: exact.
5. **Stacking.** Many (fault, image) rows run as one batch through the rest of the network,
   bounded by ``memory_budget``.
6. **Masking.** Rows whose next-layer input equals the golden one are dropped: their prediction
   is the golden prediction.

A3 / A4 (activation scales 1/3, 1/7) are not exact in float32: brevitas' own sums round, in
its kernel's order. There the engine runs in **float mode**: the same F.conv2d / F.linear calls
on the same float values with the frozen float weights, the model's own BN and quantizer
modules, in NCHW like brevitas — keeping 3, 5, 6 (the stuck input is rebuilt and its layer run
in full). Tests check it against the reference too (``attrs["campaign"]["exact"]`` is False
there: exactness then rests on the kernel's per-image result not depending on the batch).
On CUDA, integer-mode accumulators are rounded to the nearest half-integer after each
convolution, which removes the small errors of Winograd / FFT kernels cuDNN may choose.

Other networks
--------------
DoReFa-Net's AlexNet (FAT Table II, Fig. 8; :func:`fatlib.models.dorefa_alexnet`: 7 sites,
levels {0, 1/3, 2/3, 1}) runs on a generic runner: exact by construction, because it runs the
model itself rather than a frozen copy. Many faults share one forward pass — (fault, image) rows
are stacked along the batch dimension, bounded by ``memory_budget``, and each row block gets its
fault where the site outputs it; a network whose forward is one ``nn.Sequential`` runs its golden
prefix once per image batch and only the layers after the faulty site per fault. Same fault
space, order, columns, manifest and store as the CNV engine (``engine="generic"`` runs a CNV
through it too; the tests check both against each other and against :func:`naive_campaign`).
It reads a large ImageFolder dataset batch by batch.

Never loses work
----------------
``store=DIR`` persists results as they complete: ``DIR/manifest.json`` (the campaign's arguments
and SHA-256 fingerprints of model weights, data and the fault list; written atomically) and
``DIR/records.jsonl``, an append-only log of ``(chunk, image batch) → correct counts`` records,
each line ending in its CRC-32, handed to the OS as soon as the unit finishes (a killed process
loses nothing) and fsync'ed at least every second (power loss). A restart with the same
arguments skips recorded units (a torn last line is dropped); one with different arguments
raises :class:`ValueError`. When all units are done ``DIR/results.parquet`` holds the table.
``shard=(i, n)`` splits the faults between processes; :func:`merge` joins their outputs.

Beyond the paper: ``sample=N`` evaluates N faults drawn uniformly without replacement and
:func:`estimate` gives the mean / worst case with confidence bounds — how campaigns scale to
ImageNet-size networks.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import hashlib
import json
import math
import os
import statistics
import sys
import tempfile
import time
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "PATTERNS",
    "stuck_at_campaign",
    "naive_campaign",
    "enumerate_faults",
    "golden_accuracy",
    "summarize",
    "overall",
    "estimate",
    "wilson_interval",
    "merge",
    "save_results",
    "load_results",
    "suffix_macs",
    "main",
]

PATTERNS = ("channel", "pixel")
STORE_FORMAT = "fatlib-campaign-store/1"
MANIFEST_FILE = "manifest.json"
RECORDS_FILE = "records.jsonl"
RESULTS_FILE = "results.parquet"
LOCK_FILE = "lock"
PARQUET_META_KEY = b"fatlib.campaign"
#: images per golden batch when ``batch_size`` is not given (fixed, so that a store written on a
#: GPU can be resumed on a CPU and vice versa).
DEFAULT_BATCH_SIZE = 100
#: work per persisted unit when ``chunk_size`` is not given: faults × suffix MACs × images.
_UNIT_MAC_TARGET = 4e10
_CPU_BUDGET = 256 << 20
#: output maps with at least this many pixels get one delta convolution per fault
_LOOP_MIN_PIXELS = 64
#: rows are dropped from the stacked batch when at most this fraction still differs
_PRUNE_FRACTION = 0.9
#: seconds between fsyncs of the store's record log
_FSYNC_INTERVAL = 1.0


# ------------------------------------------------------------------------------------------
# data and small helpers
# ------------------------------------------------------------------------------------------

def _as_tensors(data: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """``(images float32 N×C×H×W in [0, 1], labels int64 N)`` on the CPU, from a Dataset of
    ``(image, label)`` items or a tuple of tensors."""
    if isinstance(data, (tuple, list)) and len(data) == 2 and torch.is_tensor(data[0]):
        images, labels = data
        labels = torch.as_tensor(labels)
    elif hasattr(data, "__len__") and hasattr(data, "__getitem__"):
        raw = getattr(data, "images", None)
        if torch.is_tensor(raw) and raw.dtype == torch.uint8 and torch.is_tensor(getattr(data, "labels", None)):
            # fatlib.data.ArrayDataset: the same op as its __getitem__, for all items at once
            images, labels = raw.float().div_(255.0), data.labels
        else:
            if len(data) == 0:
                raise ValueError("data is empty: a campaign needs at least one image")
            items = [data[i] for i in range(len(data))]
            images = torch.stack([torch.as_tensor(x) for x, _ in items])
            labels = torch.as_tensor([int(y) for _, y in items])
    else:
        raise ValueError("data must be a torch Dataset of (image, label) items or a tuple "
                         f"(images, labels) of tensors, got {type(data).__name__}")
    if not torch.is_tensor(images) or images.ndim != 4 or not images.is_floating_point():
        raise ValueError("images must be a float tensor N×C×H×W with values in [0, 1], got "
                         f"{getattr(images, 'dtype', type(images))} of shape {tuple(getattr(images, 'shape', ()))}")
    labels = labels.reshape(-1).long()
    if labels.shape[0] != images.shape[0]:
        raise ValueError(f"{images.shape[0]} images but {labels.shape[0]} labels")
    if images.shape[0] == 0:
        raise ValueError("data is empty: a campaign needs at least one image")
    return images.detach().float().cpu().contiguous(), labels.detach().cpu().contiguous()


def _model_device(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def _prepare_model(model: nn.Module, device: str | torch.device | None) -> tuple[nn.Module, torch.device]:
    """The model on ``device`` (a copy when it has to move; the device follows the model when
    ``device`` is None). Refuses models without FAT activation sites (a fatlib CNV or
    DoReFaAlexNet) and models with enabled FAT injection layers attached."""
    from .models import CNV, DoReFaAlexNet

    if not isinstance(model, (CNV, DoReFaAlexNet)):
        raise ValueError("stuck-at campaigns need a fatlib CNV (fatlib.models.cnv) or DoReFaAlexNet "
                         f"(fatlib.models.dorefa_alexnet), got {type(model).__name__}")
    for m in model.modules():
        if type(m).__name__ == "ErrorInjection" and getattr(m, "enabled", False) and getattr(m, "p", 0.0) > 0:
            raise ValueError("the model has enabled FAT error-injection layers attached; call "
                             "fatlib.injection.remove_injection(model) before a campaign")
    here = _model_device(model)
    dev = here if device is None else torch.device(device)
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", torch.cuda.current_device())
    if dev != here:
        model = copy.deepcopy(model).to(dev)
    return model, dev


@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    modes = {m: m.training for m in model.modules()}
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        for m, t in modes.items():
            m.train(t)


def _sha256_tensors(items: Sequence[tuple[str, torch.Tensor]]) -> str:
    h = hashlib.sha256()
    for name, t in items:
        t = t.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _model_fingerprint(model: nn.Module) -> str:
    return _sha256_tensors(sorted(model.state_dict().items()))


def _data_fingerprint(images: torch.Tensor, labels: torch.Tensor) -> str:
    return _sha256_tensors([("images", images), ("labels", labels)])


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _is_pow2(x: float) -> bool:
    if not (x > 0 and math.isfinite(x)):
        return False
    m, _ = math.frexp(x)
    return m == 0.5


def _unit(values: torch.Tensor, what: str) -> tuple[float, torch.Tensor]:
    """``(unit, integer codes)`` with ``values == codes * unit`` exactly (float32)."""
    v = values.detach().float().cpu()
    nz = v[v != 0].abs()
    unit = float(nz.min()) if nz.numel() else 1.0
    codes = torch.round(v.double() / unit)
    if not torch.equal((codes * unit).float(), v):
        raise ValueError(f"{what}: values are not integer multiples of one scale; the campaign "
                         "engine needs uniformly quantized (brevitas INT / BINARY) tensors")
    return unit, codes.float()


# ------------------------------------------------------------------------------------------
# the frozen integer network
# ------------------------------------------------------------------------------------------

@dataclass
class _Stage:
    """One conv / FC layer of CNV, its BN + activation quantizer (site) and optional max-pool.

    Integer mode keeps ``z = conv(x, weight) + bias`` where ``weight`` holds the integer weight
    codes with each output channel's sign flipped so that the site's output code is a
    non-decreasing function of ``z`` (``bias`` folds a single threshold in, A1)."""

    kind: str                       # "conv" or "fc"
    weight: torch.Tensor            # integer codes (direction-folded), float32
    weight_f: torch.Tensor | None = None  # the quantized weights as brevitas uses them
    bias: torch.Tensor | None = None
    bn: nn.Module | None = None
    act_mod: nn.Module | None = None
    conv: dict = field(default_factory=dict)
    in_unit: float = 1.0            # scale of one input code
    w_unit: float = 1.0
    radius: int = 0                 # |integer accumulator| <= radius
    in_group: int = 1               # FC input features per channel of the previous site (H·W)
    site: int | None = None         # activation site number, None for the last layer
    out_unit: float = 1.0
    levels: torch.Tensor | None = None   # real output levels, ascending
    codes: torch.Tensor | None = None    # their integer codes
    pool: nn.Module | None = None
    # integer-mode activation, non-decreasing in z: "sign" (one threshold, folded into the
    # bias: code = sign(z)) or "signs" (code = half_step · (sign(z) + Σ_j sign(z + thr_bias[j])))
    act_kind: str = "sign"
    thr_bias: torch.Tensor | None = None   # (J−1)×C, thresholds relative to the first
    half_step: float = 1.0
    tn: nn.Module | None = None
    logit_scale: torch.Tensor | None = None
    exact: bool = True
    ones_resp: torch.Tensor | None = None   # FC: response of each input channel set to 1
    out_shape: tuple[int, ...] = ()
    post_shape: tuple[int, ...] = ()  # site output after the optional max-pool
    in_shape: tuple[int, ...] = ()
    macs: int = 0                   # multiply-accumulates per image

    def linear(self, x: torch.Tensor, float_mode: bool = False) -> torch.Tensor:
        """Integer mode: ``z`` from integer codes. Float mode: the layer on real values with the
        quantized float weights — exactly the call brevitas makes."""
        if float_mode:
            if self.kind == "conv":
                return F.conv2d(x, self.weight_f, None, **self.conv)
            return F.linear(x, self.weight_f)
        if self.kind == "conv":
            return F.conv2d(x.contiguous(memory_format=torch.channels_last), self.weight, self.bias, **self.conv)
        return F.linear(x, self.weight, self.bias)

    def act(self, z: torch.Tensor, float_mode: bool = False) -> torch.Tensor:
        """Integer mode: output codes of the site for accumulators ``z`` (exact: derived from the
        model's own BN + quantizer on every reachable accumulator value). Float mode: the
        model's own BN and quantizer modules."""
        if float_mode:
            y = self.bn(z) if self.bn is not None else z
            y = self.act_mod(y)
            return y.value if hasattr(y, "value") else y
        if self.act_kind == "sign":
            return torch.sign(z)
        shape = (-1,) + (1,) * (z.dim() - 2)
        out = torch.sign(z)
        for j in range(self.thr_bias.shape[0]):
            out.add_(torch.add(z, self.thr_bias[j].view(shape)).sign_())
        return out.mul_(self.half_step)

    def act_pool(self, z: torch.Tensor, float_mode: bool) -> torch.Tensor:
        """The next layer's input: activation, then the max-pool if any (pooling first where the
        activation is monotone — the same result on a quarter of the elements)."""
        if self.pool is None:
            return self.act(z, float_mode)
        if not float_mode:                # monotone activation: max-pool commutes with it
            return self.act(self.pool(z), False)
        return self.pool(self.act(z, float_mode))


class _Golden:
    """Unfaulted tensors of one image batch: stage inputs, accumulators, site outputs,
    predictions."""

    def __init__(self, inputs: list[torch.Tensor], accs: list[torch.Tensor], acts: list[torch.Tensor],
                 logits: torch.Tensor, pred: torch.Tensor, labels: torch.Tensor) -> None:
        self.inputs, self.accs, self.acts = inputs, accs, acts
        self.logits, self.pred, self.labels = logits, pred, labels
        self.correct = pred == labels


class _Engine:
    """CNV frozen into integer tensors (see the module docstring). Built from a CNV in eval mode."""

    def __init__(self, model: nn.Module, device: torch.device, image_shape: tuple[int, int, int],
                 tables: bool = True) -> None:
        from brevitas.nn import QuantConv2d, QuantIdentity, QuantLinear

        from .models import TensorNorm, activation_levels, activation_sites

        self.device = device
        self.model = model
        self.sites = activation_sites(model)
        feats = list(model.conv_features)
        self.in_quant = feats[0]
        in_levels = activation_levels(self.in_quant)
        self.in_unit, in_codes = _unit(in_levels, "input quantizer")
        max_code = float(in_codes.abs().max())
        raw: list[dict] = []
        for m in feats[1:] + list(model.linear_features):
            if isinstance(m, (QuantConv2d, QuantLinear)):
                raw.append({"mod": m})
            elif raw and isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
                raw[-1]["bn"] = m
            elif raw and isinstance(m, QuantIdentity):
                raw[-1]["act"] = m
            elif raw and isinstance(m, nn.MaxPool2d):
                raw[-1]["pool"] = m
            elif raw and isinstance(m, TensorNorm):
                raw[-1]["tn"] = m
            else:
                raise ValueError(f"unexpected module {type(m).__name__} in CNV; the campaign engine "
                                 "knows conv / FC, BatchNorm, QuantIdentity, MaxPool2d and TensorNorm")
        self.stages: list[_Stage] = []
        unit = self.in_unit
        shape: tuple[int, ...] = tuple(image_shape)
        site_no = 0
        self.exact = _is_pow2(self.in_unit)
        for r in raw:
            mod = r["mod"]
            w = mod.quant_weight().value.detach().float()
            w_unit, w_codes = _unit(w, f"weights of {type(mod).__name__}")
            kind = "conv" if isinstance(mod, QuantConv2d) else "fc"
            if getattr(mod, "bias", None) is not None:
                raise ValueError("the campaign engine supports CNV's bias-free conv / FC layers only")
            st = _Stage(kind=kind, weight=w_codes.to(device), weight_f=w.to(device), in_unit=unit,
                        w_unit=w_unit, bn=r.get("bn"), act_mod=r.get("act"))
            if kind == "conv":
                if mod.groups != 1:
                    raise ValueError("grouped convolutions are not supported by the campaign engine")
                st.conv = {"stride": mod.stride, "padding": mod.padding, "dilation": mod.dilation}
                c, h, wd = shape
                ho = (h + 2 * mod.padding[0] - mod.dilation[0] * (mod.kernel_size[0] - 1) - 1) // mod.stride[0] + 1
                wo = (wd + 2 * mod.padding[1] - mod.dilation[1] * (mod.kernel_size[1] - 1) - 1) // mod.stride[1] + 1
                st.in_shape = shape
                st.out_shape = (mod.out_channels, ho, wo)
                st.macs = mod.out_channels * ho * wo * c * mod.kernel_size[0] * mod.kernel_size[1]
                fan = w_codes.abs().sum(dim=(1, 2, 3)).max()
            else:
                feat = int(np.prod(shape))
                st.in_group = int(np.prod(shape[1:])) if len(shape) == 3 else 1
                st.in_shape = (feat,)
                st.out_shape = (mod.out_features,)
                st.macs = feat * mod.out_features
                fan = w_codes.abs().sum(dim=1).max()
            st.radius = int(float(fan) * max_code)
            st.exact = _is_pow2(unit) and _is_pow2(w_unit)
            self.exact = self.exact and st.exact
            if "act" in r:
                st.site = site_no
                site_no += 1
                st.levels = activation_levels(r["act"]).float()
                st.out_unit, st.codes = _unit(st.levels, f"levels of activation site {st.site}")
                max_code = float(st.codes.abs().max())
                unit = st.out_unit
                if "pool" in r:
                    st.pool = r["pool"]
                    c, h, wd = st.out_shape
                    shape = tuple(st.pool(torch.zeros(1, c, h, wd, device=device)).shape[1:])
                else:
                    shape = st.out_shape
                st.post_shape = shape
            else:
                if "tn" not in r:
                    raise ValueError("CNV's last layer must be followed by TensorNorm")
                st.tn = r["tn"]
                st.logit_scale = torch.tensor(unit * w_unit, dtype=torch.float32, device=device)
                st.exact = st.exact and _is_pow2(unit * w_unit)
                self.exact = self.exact and st.exact
                shape = st.out_shape
            self.stages.append(st)
        if site_no != len(self.sites):
            raise ValueError("could not match CNV's activation sites to its layers")
        self.site_stage = {s.site: i for i, s in enumerate(self.stages) if s.site is not None}
        #: integer mode when every scale is a power of two (bit-exact in any summation order);
        #: otherwise float mode replays brevitas' float32 ops (see the module docstring)
        self.float_mode = not self.exact
        if tables and not self.float_mode:
            for st in self.stages:
                if st.site is not None and not self._build_act(st):
                    self.float_mode = True                   # cannot fold: replay brevitas
                    break
        for st in self.stages:
            if st.kind == "conv" and not self.float_mode:
                # channels-last: faster convolutions and max-pooling on the CPU, same integers
                st.weight = st.weight.contiguous(memory_format=torch.channels_last)
            if st.kind == "fc":
                # response of a constant-1 input channel (for channel faults before an FC layer)
                cout = st.out_shape[0]
                st.ones_resp = st.weight.view(cout, -1, st.in_group).sum(-1).t().contiguous()

    def _build_act(self, st: _Stage) -> bool:
        """Tabulate BN + quantizer of ``st`` on every reachable integer accumulator with the
        model's own modules, then fold it into per-channel directions and thresholds. False
        when the map is not monotone with symmetric, evenly spaced levels (then the engine
        uses float mode)."""
        dev = self.device
        cout = st.out_shape[0]
        grid = torch.arange(-st.radius, st.radius + 1, dtype=torch.float64)
        vals = (grid * (st.in_unit * st.w_unit)).float().to(dev)
        x = vals.view(1, 1, -1).expand(1, cout, -1).contiguous()
        if st.kind == "conv":
            x = x.unsqueeze(-1)           # 1×C×L×1 for BatchNorm2d, 1×C×L for BatchNorm1d
        y = st.bn(x) if st.bn is not None else x
        y = st.act_mod(y)
        y = (y.value if hasattr(y, "value") else y).reshape(cout, -1).float()
        table = torch.round(y.double() / st.out_unit).float()         # C×(2R+1) codes
        if not torch.equal((table.double() * st.out_unit).float(), y):
            return False
        table = table.cpu()
        up = (table[:, 1:] >= table[:, :-1]).all(1)
        down = (table[:, 1:] <= table[:, :-1]).all(1)
        codes = st.codes.cpu()
        k = codes.numel()
        steps = codes[1:] - codes[:-1]
        symmetric = bool(torch.equal(codes, -codes.flip(0))) and bool((steps == steps[0]).all())
        if not (bool((up | down).all()) and symmetric and (k > 2 or codes.tolist() == [-1.0, 1.0])):
            return False
        sign = torch.where(up, 1.0, -1.0)                               # direction per channel
        z_table = torch.where(up.view(-1, 1), table, table.flip(1))     # codes as a function of s·acc
        big = float(st.radius + 2)
        thr = torch.empty(k - 1, cout)
        for j in range(1, k):
            reach = z_table >= codes[j]                                  # C×(2R+1), monotone in z
            first = torch.where(reach.any(1), reach.float().argmax(1).float() - st.radius,
                                torch.full((cout,), big))
            thr[j - 1] = first                                           # min z with code >= codes[j]
        thr = torch.where(thr < -st.radius + 0.5, torch.full_like(thr, -big), thr)
        st.weight = st.weight * sign.to(dev).view(-1, *([1] * (st.weight.dim() - 1)))
        if k == 2:
            st.act_kind = "sign"                                         # code = sign(z + 0.5 - t)
            st.bias = (0.5 - thr[0]).to(dev)
        else:
            # (d/2) Σ_j sign(z + 0.5 − t_j); the first threshold is folded into the bias, the
            # others are kept relative to it
            st.act_kind = "signs"
            st.bias = (0.5 - thr[0]).to(dev)
            st.thr_bias = (thr[0] - thr[1:]).to(dev)
            st.half_step = float(steps[0]) / 2.0
        return True

    # -- golden ------------------------------------------------------------------------------
    def input_codes(self, images01: torch.Tensor) -> torch.Tensor:
        """The quantized input: integer codes (integer mode) or values (float mode)."""
        x = 2.0 * images01 - 1.0            # exactly CNV.forward
        q = self.in_quant(x)
        q = q.value if hasattr(q, "value") else q
        return q if self.float_mode else torch.round(q / self.in_unit)

    def _round(self, z: torch.Tensor) -> torch.Tensor:
        # integer mode: exact on the CPU (integer sums); on GPUs cuDNN may pick Winograd / FFT
        # kernels, whose tiny errors rounding to the nearest integer (or half-integer, with a
        # folded threshold) removes
        if self.float_mode or z.device.type == "cpu":
            return z
        return torch.round(z * 2.0).mul_(0.5)

    def logits(self, st: _Stage, acc: torch.Tensor) -> torch.Tensor:
        return st.tn(acc) if self.float_mode else st.tn(acc * st.logit_scale)

    def golden(self, images01: torch.Tensor, labels: torch.Tensor) -> _Golden:
        fm = self.float_mode
        h = self.input_codes(images01)
        inputs, accs, acts = [], [], []
        logits = None
        for st in self.stages:
            if st.kind == "fc" and h.dim() > 2:
                h = h.flatten(1)
            elif h.dim() == 4 and not fm:
                h = h.contiguous(memory_format=torch.channels_last)
            inputs.append(h)
            z = self._round(st.linear(h, fm))
            accs.append(z)
            if st.site is not None:
                a = st.act(z, fm)
                acts.append(a)
                h = st.pool(a) if st.pool is not None else a
            else:
                logits = self.logits(st, z)
        pred = logits.argmax(1)
        return _Golden(inputs, accs, acts, logits, pred, labels)

    def site_values(self, g: _Golden, layer: int) -> torch.Tensor:
        """Golden output of activation site ``layer`` as real values (as brevitas returns it)."""
        a = g.acts[self.site_stage[layer]]
        return a if self.float_mode else a * self.stages[self.site_stage[layer]].out_unit

    # -- faults ------------------------------------------------------------------------------
    def first_acc_channel(self, g: _Golden, layer: int, chans: torch.Tensor, codes: torch.Tensor,
                          values: torch.Tensor) -> torch.Tensor:
        """Accumulators ``z`` of the stage after site ``layer`` with channel ``chans[f]`` stuck at
        code ``codes[f]`` (value ``values[f]``): F×N×... Integer mode: by linearity, exactly.
        Float mode: the stuck input is rebuilt and the layer runs in full, as brevitas does."""
        j = self.site_stage[layer] + 1
        st = self.stages[j]
        x = g.inputs[j]
        f, n = chans.numel(), x.shape[0]
        if self.float_mode:
            xs = x.unsqueeze(0).repeat(f, *([1] * x.dim()))
            ar = torch.arange(f, device=x.device)
            if st.kind == "conv":        # after a max-pool the stuck channel pools to the constant
                xs[ar, :, chans] = values.view(f, 1, 1, 1)
            else:
                xs.view(f, n, -1, st.in_group)[ar, :, chans] = values.view(f, 1, 1)
            z = st.linear(xs.view(f * n, *x.shape[1:]), True)
            return z.view(f, n, *z.shape[1:])
        z0 = g.accs[j]
        out = self._rows_like(z0, f)
        if st.kind == "conv":
            # z' = z + W[:, c] ⊛ (v − x_c): a one-input-channel convolution per fault; every
            # term is an integer, so the result is exact (padding, if any, stays zero)
            cout, ho, wo = st.out_shape
            if ho * wo >= _LOOP_MIN_PIXELS:         # big maps: one convolution per channel
                cl, kl = chans.tolist(), codes.tolist()
                i = 0
                while i < f:
                    c, e = cl[i], i + 1
                    while e < f and cl[e] == c:
                        e += 1
                    w_c = st.weight[:, c:c + 1]
                    if e - i == 1:
                        d = F.conv2d(kl[i] - x[:, c:c + 1], w_c, None, **st.conv)
                        torch.add(z0, self._round(d), out=out[i])
                    else:                           # several levels: z − W_c ⊛ x_c once, + v · W_c ⊛ 1
                        base = z0 - self._round(F.conv2d(x[:, c:c + 1], w_c, None, **st.conv))
                        ones = torch.ones((1, 1, *x.shape[2:]), device=x.device, dtype=x.dtype)
                        q = self._round(F.conv2d(ones, w_c, None, **st.conv))
                        for m in range(i, e):
                            torch.add(base, q, alpha=kl[m], out=out[m])
                    i = e
                return out
            # small maps: all faults in one grouped convolution
            d_in = codes.view(1, f, 1, 1) - x[:, chans].contiguous()
            wsel = st.weight[:, chans].transpose(0, 1).reshape(f * cout, 1, *st.weight.shape[2:]).contiguous()
            d = self._round(F.conv2d(d_in, wsel, None, groups=f, **st.conv))
            torch.add(z0.unsqueeze(0), d.view(n, f, cout, ho, wo).transpose(0, 1), out=out)
            return out
        cout = st.out_shape[0]
        uc, inv = torch.unique(chans, return_inverse=True)
        xs = x.view(n, -1, st.in_group)[:, uc]                           # N×U×g
        ws = st.weight.view(cout, -1, st.in_group)[:, uc]                 # Cout×U×g
        p = self._round(torch.einsum("nug,oug->nuo", xs, ws))
        kq = codes.view(-1, 1) * st.ones_resp[uc][inv]                    # F×Cout
        torch.sub(z0.unsqueeze(0), p.transpose(0, 1)[inv], out=out)
        out.add_(kq.unsqueeze(1))
        return out

    @staticmethod
    def _rows_like(z0: torch.Tensor, f: int) -> torch.Tensor:
        """Uninitialised F×N×... tensor whose N·F rows are channels-last 4-D (or plain 2-D)."""
        n = z0.shape[0]
        if z0.dim() == 4:
            base = torch.empty((f * n, *z0.shape[1:]), device=z0.device, dtype=z0.dtype,
                               memory_format=torch.channels_last)
        else:
            base = torch.empty((f * n, *z0.shape[1:]), device=z0.device, dtype=z0.dtype)
        return base.view(f, n, *z0.shape[1:])

    def first_acc_pixel(self, g: _Golden, layer: int, rows: torch.Tensor, cols: torch.Tensor,
                        codes: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """Accumulators ``z`` of the stage after conv site ``layer`` with position (row, col) of
        all channels stuck at ``codes[f]`` (value ``values[f]``): F×N×... Integer mode: the
        one-pixel delta (re-pooled) through a ≤5×5 crop, exactly. Float mode: in full."""
        i = self.site_stage[layer]
        st_site, st = self.stages[i], self.stages[i + 1]
        a = g.acts[i]                                                      # N×C×H×W
        n, c, h, w = a.shape
        f = rows.numel()
        if self.float_mode:
            xs = a.unsqueeze(0).repeat(f, 1, 1, 1, 1)
            xs[torch.arange(f, device=a.device), :, :, rows, cols] = values.view(f, 1, 1)
            xs = xs.view(f * n, c, h, w)
            if st_site.pool is not None:
                xs = st_site.pool(xs)
            if st.kind == "fc":
                xs = xs.flatten(1)
            z = st.linear(xs, True)
            return z.view(f, n, *z.shape[1:])
        z0 = g.accs[i + 1]
        out = self._rows_like(z0, f)
        out.copy_(z0.unsqueeze(0).expand_as(out))
        if st_site.pool is not None:
            pool = st_site.pool
            if not (pool.kernel_size in (2, (2, 2)) and pool.stride in (2, (2, 2))
                    and pool.padding in (0, (0, 0)) and pool.dilation in (1, (1, 1)) and not pool.ceil_mode):
                raise ValueError("the pixel pattern supports CNV's MaxPool2d(2) only")
            hp, wp = st_site.post_shape[1:]
            pr, pc = rows // 2, cols // 2
            valid = (pr < hp) & (pc < wp)          # rows / cols the floor-mode pool drops
            pr, pc = pr.clamp(max=hp - 1), pc.clamp(max=wp - 1)
            rr = torch.stack([2 * pr, 2 * pr, 2 * pr + 1, 2 * pr + 1], 1)     # F×4
            cc = torch.stack([2 * pc, 2 * pc + 1, 2 * pc, 2 * pc + 1], 1)
            win = a[:, :, rr, cc].permute(2, 0, 1, 3).clone()               # F×N×C×4
            slot = ((rows - 2 * pr) * 2 + (cols - 2 * pc)).clamp(0, 3)
            win[torch.arange(f, device=a.device), :, :, slot] = codes.view(f, 1, 1)
            new = win.amax(-1)                                              # re-pooled: F×N×C
            old = g.inputs[i + 1].reshape(n, c, hp, wp)[:, :, pr, pc].permute(2, 0, 1)
            delta = (new - old) * valid.view(f, 1, 1)
            pos_r, pos_c, hin, win_ = pr, pc, hp, wp
        else:
            delta = codes.view(f, 1, 1) - a[:, :, rows, cols].permute(2, 0, 1)   # F×N×C
            pos_r, pos_c, hin, win_ = rows, cols, h, w
        positions = torch.unique(torch.stack([pos_r, pos_c], 1), dim=0).tolist()
        if st.kind == "fc":
            wv = st.weight.view(st.out_shape[0], c, hin * win_)
            for r_, c_ in positions:
                sel = ((pos_r == r_) & (pos_c == c_)).nonzero().squeeze(1)
                out[sel] += torch.einsum("fnc,oc->fno", delta[sel], wv[:, :, r_ * win_ + c_])
            return out
        if st.conv["stride"] != (1, 1) or st.conv["padding"] != (0, 0) or st.conv["dilation"] != (1, 1):
            raise ValueError("the pixel pattern supports stride-1 valid convolutions (CNV) only")
        kh, kw = st.weight.shape[2:]
        ho, wo = st.out_shape[1:]
        for r_, c_ in positions:
            sel = ((pos_r == r_) & (pos_c == c_)).nonzero().squeeze(1)
            y0, y1 = max(0, r_ - kh + 1), min(ho - 1, r_)
            x0, x1 = max(0, c_ - kw + 1), min(wo - 1, c_)
            if y0 > y1 or x0 > x1:
                continue
            m = sel.numel()
            crop = torch.zeros(m * n, c, y1 - y0 + kh, x1 - x0 + kw, device=a.device)
            crop[:, :, r_ - y0, c_ - x0] = delta[sel].reshape(m * n, c)
            d = self._round(F.conv2d(crop, st.weight))                       # valid conv of the crop
            out[sel, :, :, y0:y1 + 1, x0:x1 + 1] += d.view(m, n, *d.shape[1:])
        return out

    def suffix(self, j: int, z: torch.Tensor, g: _Golden, f: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Run stage ``j``'s activation and everything after it on F·N rows (fault-major).
        Returns the rows whose next-layer inputs ever differ from the golden ones and their
        predictions; every other row predicts exactly what the golden network predicts."""
        fm = self.float_mode
        n = g.pred.shape[0]
        rows = torch.arange(f * n, device=z.device)
        img = None                                   # None: rows are all F·N, in order
        for k in range(j, len(self.stages)):
            st = self.stages[k]
            if st.site is None:
                return rows, self.logits(st, z).argmax(1)
            h = st.act_pool(z, fm)
            del z
            nxt = self.stages[k + 1]
            if nxt.kind == "fc" and h.dim() > 2:
                h = h.flatten(1)
            gold = g.inputs[k + 1]
            dims = tuple(range(1, h.dim()))
            if img is None:
                hv = h.view(f, n, *h.shape[1:])
                diff = torch.any(hv != gold.unsqueeze(0), dim=tuple(d + 1 for d in dims)).view(-1)
            else:
                diff = torch.any(h != gold.index_select(0, img), dim=dims)
            n_keep = int(diff.sum())
            if n_keep <= _PRUNE_FRACTION * diff.numel():
                # drop rows whose next input is the golden one (compacting costs a copy: only
                # when it removes enough rows)
                keep = diff.nonzero().squeeze(1)
                h = h.index_select(0, keep)
                rows = rows.index_select(0, keep)
                img = rows % n
                if rows.numel() == 0:
                    return rows, rows
            z = self._round(nxt.linear(h, fm))
        raise AssertionError("unreachable")

    def row_bytes(self, layer: int) -> int:
        """Rough peak bytes per (fault, image) row while evaluating faults of site ``layer``."""
        j = self.site_stage[layer] + 1
        sizes = [int(np.prod(s.out_shape)) for s in self.stages[j:]]
        biggest = max(sizes + [int(np.prod(self.stages[j].in_shape))])
        return 4 * 5 * biggest + 64


def suffix_macs(model: nn.Module, image_shape: tuple[int, int, int] = (3, 32, 32)) -> dict[int, int]:
    """Per activation site L: multiply-accumulates per image of every layer after L — the
    per-fault lower bound of any re-execution that starts after the faulty site."""
    with _eval_mode(model):
        eng = _Engine(model, _model_device(model), image_shape, tables=False)
    return {s: sum(st.macs for st in eng.stages[i + 1:]) for s, i in eng.site_stage.items()}


# ------------------------------------------------------------------------------------------
# the generic runner (any fatlib network: DoReFa-AlexNet; CNV on request)
# ------------------------------------------------------------------------------------------

#: a Dataset at least this long that has ``fingerprint()`` (fatlib.data.ImageFolderDataset) is
#: read batch by batch instead of being held in memory
_LAZY_MIN_ITEMS = 2048


class _Source:
    """The campaign's images: in memory (tensors, or a small Dataset read once), or, for the
    generic runner, a large Dataset with ``fingerprint()`` read one image batch at a time."""

    def __init__(self, data: Any, lazy_ok: bool = False) -> None:
        self.dataset = None
        if (lazy_ok and not isinstance(data, (tuple, list)) and hasattr(data, "fingerprint")
                and hasattr(data, "__getitem__") and len(data) >= _LAZY_MIN_ITEMS):
            self.dataset = data
            self.n = len(data)
            first = torch.as_tensor(data[0][0])
            if first.ndim != 3 or not first.is_floating_point():
                raise ValueError("images must be float tensors C×H×W with values in [0, 1], got "
                                 f"{first.dtype} of shape {tuple(first.shape)}")
            self.image_shape = tuple(first.shape)
            self._fp = hashlib.sha256(f"dataset|{data.fingerprint()}|{self.n}".encode()).hexdigest()
            self.images = self.labels = None
        else:
            self.images, self.labels = _as_tensors(data)
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
        return (torch.stack([torch.as_tensor(x).float() for x, _ in items]),
                torch.as_tensor([int(y) for _, y in items], dtype=torch.long))


class _GenericGolden:
    """Unfaulted results of one image batch for the generic runner."""

    def __init__(self, x: torch.Tensor, labels: torch.Tensor, pred: torch.Tensor,
                 site_out: dict[int, torch.Tensor]) -> None:
        self.x, self.labels, self.pred, self.site_out = x, labels, pred, site_out
        self.correct = pred == labels


def _write_faults(h: torch.Tensor, pattern: str, a: torch.Tensor, b: torch.Tensor,
                  values: torch.Tensor) -> None:
    """In place: row block ``f`` of ``h`` (F×N×site shape) gets fault ``f`` — channel ``a[f]``
    (an FC neuron for F×N×K), or position (``a[f]``, ``b[f]``) of all channels, set to
    ``values[f]``."""
    f = h.shape[0]
    ar = torch.arange(f, device=h.device)
    v = values.to(h.dtype)
    if pattern == "channel":
        h[ar, :, a] = v.view(f, *([1] * (h.dim() - 2)))
    else:
        h[ar, :, :, a, b] = v.view(f, 1, 1)


class _GenericRunner:
    """Stuck-at campaigns on any fatlib network with activation sites, by running the model
    itself: nothing is re-implemented, so the numbers are the model's own forward passes.

    Many faults run in one forward pass: the (fault, image) rows are stacked along the batch
    dimension (fault-major) and each row block gets its fault. Networks whose ``forward`` is one
    ``nn.Sequential`` (DoReFa-AlexNet's ``layers``) run the golden prefix once per image batch
    and only the layers after the faulty site per fault; any other network (CNV) runs in full
    with a forward hook on the site that writes each row block's fault."""

    def __init__(self, model: nn.Module, device: torch.device, image_shape: tuple[int, int, int]) -> None:
        from .models import DoReFaAlexNet, activation_sites, output_shapes

        self.model, self.device = model, device
        self.sites = activation_sites(model)
        self.table = _generic_site_table(model, image_shape)
        self.site_stage: dict[int, int] = {}
        units = (nn.Conv2d, nn.Linear, nn.BatchNorm1d, nn.BatchNorm2d, nn.MaxPool2d,
                 nn.AdaptiveMaxPool2d, nn.Flatten)
        site_ids = {id(m) for m in self.sites}
        leaves = [m for m in model.modules() if isinstance(m, units) or id(m) in site_ids]
        shapes = output_shapes(model, leaves, image_shape=tuple(image_shape))
        numel = {k: int(np.prod(v)) for k, v in shapes.items()}
        in_numel = int(np.prod(image_shape))
        macs = {id(m): self._macs(m, shapes) for m in leaves}
        self.suffix: dict[int, nn.Module] = {}
        self._row_bytes: dict[int, int] = {}
        self.cost: dict[int, int] = {}
        seq = model.layers if isinstance(model, DoReFaAlexNet) else None
        total_macs = sum(macs.values())
        biggest = max([in_numel] + list(numel.values()))
        for layer, site in enumerate(self.sites):
            if seq is not None:
                pos = next(i for i, m in enumerate(seq) if m is site)
                rest = list(seq)[pos + 1:]
                self.suffix[layer] = nn.Sequential(*rest)
                inner = [m for r in rest for m in r.modules()]
                sizes = [numel[id(site)]] + [numel[id(m)] for m in inner if id(m) in numel]
                self.cost[layer] = sum(macs.get(id(m), 0) for m in inner)
                self._row_bytes[layer] = 4 * (3 * max(sizes) + numel[id(site)]) + 64
            else:
                self.cost[layer] = total_macs
                self._row_bytes[layer] = 4 * (3 * biggest + in_numel) + 64

    @staticmethod
    def _macs(m: nn.Module, shapes: dict[int, tuple[int, ...]]) -> int:
        out = shapes.get(id(m))
        if out is None:
            return 0
        if isinstance(m, nn.Conv2d):
            return int(np.prod(out)) * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]
        if isinstance(m, nn.Linear):
            return m.in_features * m.out_features
        return 0

    def row_bytes(self, layer: int) -> int:
        """Rough peak bytes per (fault, image) row while evaluating faults of site ``layer``."""
        return self._row_bytes[layer]

    def golden(self, x: torch.Tensor, labels: torch.Tensor) -> _GenericGolden:
        site_out: dict[int, torch.Tensor] = {}
        handles = []
        if self.suffix:
            for layer, site in enumerate(self.sites):
                handles.append(site.register_forward_hook(
                    lambda mod, i, o, layer=layer: site_out.__setitem__(
                        layer, (o.value if hasattr(o, "value") else o).detach())))
        try:
            logits = self.model(x)
        finally:
            for h in handles:
                h.remove()
        return _GenericGolden(x, labels, logits.argmax(1), site_out)

    def eval_faults(self, g: _GenericGolden, fl: "_Faults", sub: np.ndarray, layer: int) -> np.ndarray:
        """Correct counts of faults ``sub`` (all of site ``layer``) on one golden batch."""
        dev = g.pred.device
        f, n = len(sub), g.labels.shape[0]
        values = torch.as_tensor(fl.value[sub], dtype=torch.float32, device=dev)
        a = torch.as_tensor(fl.a[sub], device=dev)
        b = torch.as_tensor(fl.b[sub], device=dev)
        if self.suffix:
            base = g.site_out[layer]
            h = base.unsqueeze(0).repeat(f, *([1] * base.dim()))
            _write_faults(h, fl.pattern, a, b, values)
            logits = self.suffix[layer](h.view(f * n, *base.shape[1:]))
        else:
            def hook(mod: nn.Module, inp: Any, out: torch.Tensor) -> torch.Tensor:
                out = (out.value if hasattr(out, "value") else out).clone()
                _write_faults(out.view(f, n, *out.shape[1:]), fl.pattern, a, b, values)
                return out

            handle = self.sites[layer].register_forward_hook(hook)
            try:
                logits = self.model(g.x.repeat(f, *([1] * (g.x.dim() - 1))))
            finally:
                handle.remove()
        pred = logits.argmax(1).view(f, n)
        return (pred == g.labels.view(1, n)).sum(1).cpu().numpy().astype(np.int64)


# ------------------------------------------------------------------------------------------
# fault lists
# ------------------------------------------------------------------------------------------

@dataclass
class _Faults:
    """A campaign's faults in canonical order (parallel int / float arrays)."""

    pattern: str
    layer: np.ndarray
    a: np.ndarray        # channel, or row
    b: np.ndarray        # col (-1 for channel faults)
    code: np.ndarray
    value: np.ndarray
    index: np.ndarray    # position in the full population

    def __len__(self) -> int:
        return int(self.layer.shape[0])

    def take(self, idx: np.ndarray) -> "_Faults":
        return _Faults(self.pattern, self.layer[idx], self.a[idx], self.b[idx], self.code[idx],
                       self.value[idx], self.index[idx])

    def key_frame(self) -> pd.DataFrame:
        cols = {"layer": self.layer.astype(np.int64)}
        if self.pattern == "channel":
            cols["channel"] = self.a.astype(np.int64)
        else:
            cols["row"] = self.a.astype(np.int64)
            cols["col"] = self.b.astype(np.int64)
        cols["value"] = self.value.astype(np.float64)
        return pd.DataFrame(cols)

    def digest(self) -> str:
        h = hashlib.sha256(self.pattern.encode())
        for arr in (self.layer, self.a, self.b, self.code, self.index):
            h.update(np.ascontiguousarray(arr, dtype=np.int64).tobytes())
        return h.hexdigest()


def _site_table(eng: _Engine) -> list[dict]:
    out = []
    for layer in range(len(eng.sites)):
        st = eng.stages[eng.site_stage[layer]]
        out.append({"layer": layer, "shape": st.out_shape, "levels": st.levels.tolist(),
                    "codes": st.codes.long().tolist()})
    return out


def _default_image_shape(model: nn.Module) -> tuple[int, int, int]:
    from .models import DoReFaAlexNet

    size = 224 if isinstance(model, DoReFaAlexNet) else 32
    return (int(getattr(model, "in_channels", 3)), size, size)


def _generic_site_table(model: nn.Module, image_shape: tuple[int, int, int]) -> list[dict]:
    """The site table of :func:`_site_table` read from the model itself (any fatlib network with
    activation sites): output shape of each site for ``image_shape``, its levels and their
    integer codes (level / smallest step; the level's index when the levels are not one
    scale's multiples). The model must be in eval mode."""
    from .models import activation_levels, activation_sites, output_shapes

    sites = activation_sites(model)
    shapes = output_shapes(model, sites, image_shape=tuple(image_shape))
    out = []
    for layer, site in enumerate(sites):
        levels = activation_levels(site).float()
        try:
            _, codes = _unit(levels, f"levels of activation site {layer}")
        except ValueError:
            codes = torch.arange(levels.numel(), dtype=torch.float32)
        out.append({"layer": layer, "shape": shapes[id(site)], "levels": levels.tolist(),
                    "codes": codes.long().tolist()})
    return out


def _check_pattern(pattern: str) -> None:
    if pattern not in PATTERNS:
        raise ValueError(f"pattern={pattern!r}: use one of {PATTERNS} (FAT Fig. 2: channel stuck@ "
                         "or same pixel in all channels stuck@)")


def _resolve_layers(sites: list[dict], pattern: str, layers: Sequence[int] | None,
                    explicit_faults: bool = False) -> list[int]:
    allowed = [s["layer"] for s in sites if pattern == "channel" or len(s["shape"]) == 3]
    fc_sites = [s["layer"] for s in sites if len(s["shape"]) != 3]
    if layers is None and explicit_faults:
        return allowed      # explicit faults may name any site that has the pattern
    if layers is None:
        # A 1×1 map has one position: its "pixel" is the whole layer stuck, which makes the
        # network's output constant (chance accuracy) — not the same-pixel model of Table IV,
        # whose minima (≥ 64.93 %) rule it out. Asked for by number, it still runs.
        return [L for L in allowed if pattern == "channel" or
                int(np.prod(sites[L]["shape"][1:])) > 1] or allowed
    if isinstance(layers, (int, np.integer)):
        layers = [int(layers)]
    out = []
    for L in layers:
        if isinstance(L, bool) or not isinstance(L, (int, np.integer)):
            raise ValueError(f"layers must be integers, got {L!r}")
        L = int(L)
        if L not in allowed:
            why = (" (the pixel pattern needs a spatial site: FC sites "
                   f"{', '.join(map(str, fc_sites))} have no pixels)"
                   if pattern == "pixel" and 0 <= L < len(sites) else "")
            raise ValueError(f"layer {L} is not available for pattern {pattern!r}{why}; allowed: {allowed}")
        out.append(L)
    if not out:
        raise ValueError(f"layers is empty; allowed: {allowed}")
    return sorted(set(out))


def _resolve_levels(sites: list[dict], layers: list[int],
                    levels: Sequence[float] | None) -> dict[int, list[tuple[int, float]]]:
    """Per layer: ``[(code, exact level value), ...]`` ascending."""
    out: dict[int, list[tuple[int, float]]] = {}
    req = None
    if levels is not None:
        if isinstance(levels, (int, float)):
            levels = [levels]
        req = [float(v) for v in levels]
        if not req:
            raise ValueError("levels is empty: give stuck-at values, or None for every level")
    for L in layers:
        lv, cd = sites[L]["levels"], sites[L]["codes"]
        if req is None:
            out[L] = list(zip(cd, lv))
            continue
        chosen = {}
        for v in req:
            dist = [abs(v - x) for x in lv]
            i = int(np.argmin(dist))
            if dist[i] > 1e-3:
                raise ValueError(f"stuck-at value {v} is not a level of layer {L}'s quantizer; "
                                 f"allowed: {[round(x, 6) for x in lv]}")
            chosen[cd[i]] = lv[i]
        out[L] = sorted(chosen.items())
    return out


def _population(sites: list[dict], pattern: str, layers: list[int],
                lv: dict[int, list[tuple[int, float]]]) -> _Faults:
    parts = []
    for L in layers:
        shape = sites[L]["shape"]
        codes = np.array([c for c, _ in lv[L]], dtype=np.int64)
        values = np.array([v for _, v in lv[L]], dtype=np.float64)
        k = len(codes)
        if pattern == "channel":
            ch = np.arange(shape[0], dtype=np.int64)
            a, b = np.repeat(ch, k), np.full(shape[0] * k, -1, dtype=np.int64)
            m = shape[0]
        else:
            h, w = shape[1], shape[2]
            rr, cc = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
            a, b = np.repeat(rr.reshape(-1), k), np.repeat(cc.reshape(-1), k)
            m = h * w
        parts.append((np.full(m * k, L, dtype=np.int64), a, b, np.tile(codes, m), np.tile(values, m)))
    cat = [np.concatenate([p[i] for p in parts]) for i in range(5)]
    return _Faults(pattern, *cat, index=np.arange(cat[0].shape[0], dtype=np.int64))


def _explicit_faults(pop: _Faults, faults: Any) -> _Faults:
    """The population entries named by ``faults`` (DataFrame or sequence of tuples)."""
    keys = ["layer", "channel", "value"] if pop.pattern == "channel" else ["layer", "row", "col", "value"]
    if isinstance(faults, pd.DataFrame):
        missing = [k for k in keys if k not in faults.columns]
        if missing:
            raise ValueError(f"faults lacks columns {missing}; needs {keys}")
        tuples = list(faults[keys].itertuples(index=False, name=None))
    else:
        tuples = [tuple(t) for t in faults]
    lookup = {}
    for i in range(len(pop)):
        k = (int(pop.layer[i]), int(pop.a[i])) + (() if pop.pattern == "channel" else (int(pop.b[i]),))
        lookup.setdefault(k, []).append((float(pop.value[i]), i))
    idx = []
    for t in tuples:
        if len(t) != len(keys):
            raise ValueError(f"fault {t!r}: expected ({', '.join(keys)})")
        k = tuple(int(x) for x in t[:-1])
        cands = lookup.get(k)
        if not cands:
            raise ValueError(f"fault {t!r} is outside the fault space of pattern {pop.pattern!r} "
                             "(layer, channel / position, or level not selected)")
        v = float(t[-1])
        best = min(cands, key=lambda c: abs(c[0] - v))
        if abs(best[0] - v) > 1e-3:
            raise ValueError(f"fault {t!r}: value {v} is not a level of layer {k[0]}; allowed: "
                             f"{sorted(c[0] for c in cands)}")
        idx.append(best[1])
    idx = np.array(sorted(set(idx)), dtype=np.int64)
    if len(idx) != len(tuples):
        raise ValueError("faults contains duplicates")
    return pop.take(idx)


def _parse_shard(shard: Any) -> tuple[int, int] | None:
    if shard is None:
        return None
    if isinstance(shard, str):
        try:
            i, n = (int(x) for x in shard.split("/"))
        except ValueError:
            raise ValueError(f"shard={shard!r}: write it as 'i/n' with 0 <= i < n") from None
    else:
        try:
            i, n = (int(x) for x in shard)
        except (TypeError, ValueError):
            raise ValueError(f"shard={shard!r}: give (i, n) with 0 <= i < n") from None
    if n < 1 or not 0 <= i < n:
        raise ValueError(f"shard=({i}, {n}): needs n >= 1 and 0 <= i < n")
    return i, n


def default_layers(model: nn.Module, pattern: str = "channel",
                   image_shape: tuple[int, int, int] | None = None) -> list[int]:
    """The activation sites a campaign with ``layers=None`` covers (FAT Algorithm 1): every site
    for ``"channel"``; for ``"pixel"`` (Table IV) the conv sites whose map has more than one
    position (see the module docstring)."""
    _check_pattern(pattern)
    model, _ = _prepare_model(model, None)
    with _eval_mode(model):
        sites = _generic_site_table(model, image_shape or _default_image_shape(model))
    return _resolve_layers(sites, pattern, None)


def enumerate_faults(model: nn.Module, pattern: str = "channel", levels: Sequence[float] | None = None,
                     layers: Sequence[int] | None = None,
                     image_shape: tuple[int, int, int] | None = None) -> pd.DataFrame:
    """The fault space of FAT Algorithm 1 in canonical order: every (layer, channel, value) —
    or (layer, row, col, value) for the same-pixel pattern (Table IV) — with the default of every
    level of every site's quantizer. Its length is the population size for :func:`estimate`.
    ``image_shape`` (C, H, W) sets the pixel positions; default 32×32 for CNV, 224×224 for
    DoReFa-AlexNet."""
    _check_pattern(pattern)
    model, _ = _prepare_model(model, None)
    with _eval_mode(model):
        sites = _generic_site_table(model, image_shape or _default_image_shape(model))
    lays = _resolve_layers(sites, pattern, layers)
    return _population(sites, pattern, lays, _resolve_levels(sites, lays, levels)).key_frame()


# ------------------------------------------------------------------------------------------
# result frames
# ------------------------------------------------------------------------------------------

def _frame(faults: _Faults, correct: np.ndarray, total: int, meta: dict) -> pd.DataFrame:
    df = faults.key_frame()
    df["correct"] = correct.astype(np.int64)
    df["total"] = np.int64(total)
    df["accuracy"] = 100.0 * df["correct"] / total
    df.attrs["campaign"] = meta
    return df


def _key_cols(pattern: str) -> list[str]:
    return ["layer", "channel", "value"] if pattern == "channel" else ["layer", "row", "col", "value"]


def save_results(df: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write a campaign table as Parquet, atomically, with its ``attrs["campaign"]`` manifest in
    the file's metadata (so :func:`merge` can check compatibility)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    table = pa.Table.from_pandas(df.reset_index(drop=True), preserve_index=False)
    meta = dict(table.schema.metadata or {})
    meta.pop(b"pandas", None)
    meta[PARQUET_META_KEY] = json.dumps(df.attrs.get("campaign", {}), sort_keys=True, default=str).encode()
    table = table.replace_schema_metadata(meta)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    _atomic_write_bytes(path, sink.getvalue().to_pybytes())
    return path


def load_results(path: str | os.PathLike) -> pd.DataFrame:
    """Read a table written by :func:`save_results` (or a complete campaign store directory),
    restoring ``attrs["campaign"]``."""
    import pyarrow.parquet as pq

    path = Path(path)
    if path.is_dir():
        return _load_store_results(path)
    table = pq.read_table(path)
    meta = (table.schema.metadata or {}).get(PARQUET_META_KEY)
    df = table.to_pandas()
    df.attrs["campaign"] = json.loads(meta) if meta else {}
    return df


# ------------------------------------------------------------------------------------------
# the store
# ------------------------------------------------------------------------------------------

#: manifest fields that must match for a restart (the rest is informational)
_IDENTITY = ("format", "pattern", "layers", "levels", "sample", "seed", "shard", "explicit_faults",
             "faults_sha256", "n_faults", "model_sha256", "data_sha256", "n_images", "batch_size",
             "chunks_sha256")


def _record_line(chunk: int, batch: int, correct: list[int]) -> bytes:
    body = json.dumps({"chunk": chunk, "batch": batch, "correct": correct}, separators=(",", ":"))
    return f"{body}\t{zlib.crc32(body.encode()):08x}\n".encode()


class _Store:
    """``manifest.json`` + append-only ``records.jsonl`` (one CRC-checked line per finished
    (chunk, image batch) unit, fsync'ed), see the module docstring."""

    def __init__(self, path: Path, manifest: dict, chunks: list[tuple[int, int]], n_batches: int) -> None:
        self.path = Path(path)
        self.chunks = chunks
        self.n_batches = n_batches
        self.path.mkdir(parents=True, exist_ok=True)
        self._lock_fh = open(self.path / LOCK_FILE, "a+")
        try:
            import fcntl

            fcntl.flock(self._lock_fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:  # pragma: no cover - non-POSIX
            pass
        except OSError:
            self._lock_fh.close()
            raise RuntimeError(f"campaign store {self.path} is in use by another process") from None
        mpath = self.path / MANIFEST_FILE
        if mpath.exists():
            old = json.loads(mpath.read_text())
            diff = [k for k in _IDENTITY if old.get(k) != manifest.get(k)]
            if diff:
                self.close()
                details = "; ".join(f"{k}: store has {_short(old.get(k))}, now {_short(manifest.get(k))}"
                                    for k in diff)
                raise ValueError(f"campaign store {self.path} belongs to a different campaign ({details}). "
                                 "Restart with the same model, data and arguments, or use a new store directory.")
            self.manifest = old
        else:
            others = [p.name for p in self.path.iterdir() if p.name not in (LOCK_FILE,)]
            if others:
                self.close()
                raise ValueError(f"{self.path} is not empty and has no {MANIFEST_FILE}: not a campaign store")
            _atomic_write_bytes(mpath, json.dumps(manifest, indent=2, sort_keys=True).encode())
            self.manifest = manifest
        self.done: dict[tuple[int, int], list[int]] = {}
        self._load_records()
        self._fh = open(self.path / RECORDS_FILE, "ab")
        self._last_sync = time.monotonic()

    def _load_records(self) -> None:
        rpath = self.path / RECORDS_FILE
        if not rpath.exists():
            return
        data = rpath.read_bytes()
        good_end = 0
        pos = 0
        while pos < len(data):
            nl = data.find(b"\n", pos)
            if nl < 0:
                break  # torn last line: dropped below
            line = data[pos:nl].decode("utf-8", errors="replace")
            pos = nl + 1
            rec = self._parse(line)
            if rec is None:
                continue  # corrupt record: its unit is recomputed
            key, correct = rec
            prev = self.done.get(key)
            if prev is not None and prev != correct:
                raise ValueError(f"campaign store {self.path}: unit {key} recorded twice with different "
                                 "results (was the store shared by two different runs?)")
            self.done[key] = correct
            good_end = pos
        if good_end < len(data) and data.rfind(b"\n") < len(data) - 1:
            # drop a torn tail so that the next append starts on a fresh line
            keep = data.rfind(b"\n") + 1
            with open(rpath, "r+b") as fh:
                fh.truncate(keep)
                fh.flush()
                os.fsync(fh.fileno())

    def _parse(self, line: str) -> tuple[tuple[int, int], list[int]] | None:
        body, sep, crc = line.rpartition("\t")
        if not sep or f"{zlib.crc32(body.encode()):08x}" != crc.strip():
            return None
        try:
            rec = json.loads(body)
            k, b, correct = int(rec["chunk"]), int(rec["batch"]), [int(x) for x in rec["correct"]]
        except (ValueError, KeyError, TypeError):
            return None
        if not (0 <= k < len(self.chunks) and 0 <= b < self.n_batches):
            return None
        s, e = self.chunks[k]
        if len(correct) != e - s:
            return None
        return (k, b), correct

    def write(self, chunk: int, batch: int, correct: list[int]) -> None:
        """Append one finished unit. The write reaches the OS at once (a killed process loses
        nothing); fsync runs at most every ``_FSYNC_INTERVAL`` seconds (power loss)."""
        if (chunk, batch) in self.done:
            return
        self._fh.write(_record_line(chunk, batch, correct))
        self._fh.flush()
        now = time.monotonic()
        if now - self._last_sync >= _FSYNC_INTERVAL:
            os.fsync(self._fh.fileno())
            self._last_sync = now
        self.done[(chunk, batch)] = correct

    def close(self) -> None:
        fh = getattr(self, "_fh", None)
        if fh is not None:
            fh.flush()
            os.fsync(fh.fileno())
            fh.close()
            self._fh = None
        if self._lock_fh is not None:
            self._lock_fh.close()
            self._lock_fh = None


def _short(v: Any) -> str:
    s = json.dumps(v, default=str)
    return s if len(s) <= 60 else s[:57] + "..."


def _load_store_results(path: Path) -> pd.DataFrame:
    res = path / RESULTS_FILE
    if res.exists():
        return load_results(res)
    if (path / MANIFEST_FILE).exists():
        m = json.loads((path / MANIFEST_FILE).read_text())
        raise ValueError(f"campaign store {path} is incomplete (no {RESULTS_FILE}); finish it by "
                         f"re-running the same campaign (pattern {m.get('pattern')!r}, shard {m.get('shard')})")
    raise ValueError(f"{path} is not a campaign store (no {MANIFEST_FILE})")


# ------------------------------------------------------------------------------------------
# campaigns
# ------------------------------------------------------------------------------------------

def _memory_budget(device: torch.device, memory_budget: int | None) -> int:
    if memory_budget is not None:
        if memory_budget <= 0:
            raise ValueError(f"memory_budget={memory_budget!r} must be a positive number of bytes")
        return int(memory_budget)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free * 0.5)
    return _CPU_BUDGET


def _plan_chunks(faults: _Faults, cost: dict[int, int], n_batch_images: int,
                 chunk_size: int | None) -> list[tuple[int, int]]:
    """Persistence units: consecutive faults of one layer."""
    chunks = []
    start = 0
    n = len(faults)
    while start < n:
        L = int(faults.layer[start])
        end = start
        while end < n and faults.layer[end] == L:
            end += 1
        if chunk_size is not None:
            size = chunk_size
        else:
            size = int(max(1, min(4096, _UNIT_MAC_TARGET // max(1, cost[L] * n_batch_images))))
        for s in range(start, end, size):
            chunks.append((s, min(end, s + size)))
        start = end
    return chunks


def stuck_at_campaign(model: nn.Module, data: Any, pattern: str = "channel",
                      levels: Sequence[float] | None = None, layers: Sequence[int] | None = None,
                      batch_size: int | None = None, device: str | torch.device | None = None,
                      store: str | os.PathLike | None = None, shard: tuple[int, int] | str | None = None,
                      sample: int | None = None, seed: int = 0, progress: bool = True,
                      faults: pd.DataFrame | Sequence[tuple] | None = None,
                      memory_budget: int | None = None, chunk_size: int | None = None,
                      engine: str = "auto") -> pd.DataFrame:
    """Exhaustive single stuck-at campaign — FAT Algorithm 1 (channel stuck@, Tables I–III) or
    the same-pixel model (Table IV) — computed exactly, fast and resumably.

    CNV runs on the fast engine of the module docstring. Every other network (DoReFa-AlexNet,
    FAT Fig. 8) runs on the generic runner, exact by construction because it runs the model
    itself: (fault, image) rows are stacked along the batch dimension and each row block gets its
    fault where the site outputs it (after the golden prefix, computed once per image batch, when
    the network is one ``nn.Sequential``). Same fault space, order, columns, manifest and store.

    Args:
        model: a fatlib CNV or DoReFaAlexNet (its own device is used unless ``device`` is given).
        data: a Dataset of ``(image, label)`` or a tuple ``(images, labels)``; images in [0, 1].
            The generic runner reads a long Dataset with ``fingerprint()``
            (:class:`fatlib.data.ImageFolderDataset`) batch by batch instead of holding it.
        pattern: ``"channel"`` or ``"pixel"`` (conv sites only; FC sites have no pixels).
        levels: stuck-at values (each must be a level of every selected site's quantizer);
            None: every level of each site (FAT §II).
        layers: activation sites 0–7 (FAT Table I numbering; 0–6 for DoReFa-AlexNet); None: all
            (for ``"pixel"``: the conv sites whose map has more than one position).
        batch_size: images per golden batch (default 100; part of a store's identity).
        store: directory persisting results as they complete (resumable after any kill).
        shard: ``(i, n)`` or ``"i/n"``: evaluate faults ``i, i+n, i+2n, ...`` of the list.
        sample: evaluate ``sample`` faults drawn uniformly without replacement (``seed``).
        faults: explicit faults (DataFrame with the key columns, or tuples) instead of all.
        memory_budget: bytes for stacked fault copies (default: half the free GPU memory, or
            256 MiB on the CPU).
        chunk_size: faults per persisted unit (default: about 4e10 MAC·images per unit).
        engine: ``"auto"`` (fast engine for CNV, generic runner otherwise), ``"fast"`` or
            ``"generic"`` (e.g. to check one against the other on a CNV).

    Returns:
        One row per fault, canonical order: ``layer``, ``channel`` | ``row``, ``col``, ``value``,
        ``correct``, ``total``, ``accuracy`` (%); ``attrs["campaign"]`` holds the manifest
        (fingerprints, population size, error-free accuracy ``error_free``, ``exact``).
    """
    _check_pattern(pattern)
    shard_t = _parse_shard(shard)
    if sample is not None and (isinstance(sample, bool) or not isinstance(sample, (int, np.integer)) or sample < 1):
        raise ValueError(f"sample={sample!r}: give a positive number of faults, or None for all")
    if batch_size is not None and (not isinstance(batch_size, (int, np.integer)) or batch_size < 1):
        raise ValueError(f"batch_size={batch_size!r} must be a positive integer")
    if chunk_size is not None and (not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1):
        raise ValueError(f"chunk_size={chunk_size!r} must be a positive integer")
    if engine not in ("auto", "fast", "generic"):
        raise ValueError(f"engine={engine!r}: use 'auto', 'fast' (CNV only) or 'generic'")
    from .models import CNV

    model, dev = _prepare_model(model, device)
    if engine == "fast" and not isinstance(model, CNV):
        raise ValueError(f"engine='fast' needs a CNV; {type(model).__name__} runs on engine='generic'")
    generic = engine == "generic" or not isinstance(model, CNV)
    src = _Source(data, lazy_ok=generic)
    budget = _memory_budget(dev, memory_budget)
    with _eval_mode(model):
        eng: _Engine | _GenericRunner
        if generic:
            eng = _GenericRunner(model, dev, src.image_shape)
            sites = eng.table
            cost = dict(eng.cost)
            exact = True
        else:
            eng = _Engine(model, dev, src.image_shape)
            sites = _site_table(eng)
            cost = {s: sum(st.macs for st in eng.stages[i + 1:]) for s, i in eng.site_stage.items()}
            exact = not eng.float_mode
        lays = _resolve_layers(sites, pattern, layers, explicit_faults=faults is not None)
        lv = _resolve_levels(sites, lays, levels)
        pop = _population(sites, pattern, lays, lv)
        fl = _explicit_faults(pop, faults) if faults is not None else pop
        pop_by_layer = {int(L): int((fl.layer == L).sum()) for L in lays}
        population_size = len(fl)
        if sample is not None:
            if sample > len(fl):
                raise ValueError(f"sample={sample} exceeds the {len(fl)} faults of this campaign")
            rng = np.random.Generator(np.random.PCG64(seed))
            fl = fl.take(np.sort(rng.choice(len(fl), size=int(sample), replace=False)))
        campaign_faults = len(fl)
        if shard_t is not None:
            fl = fl.take(np.arange(shard_t[0], len(fl), shard_t[1]))
        n_img = src.n
        bs = int(batch_size or DEFAULT_BATCH_SIZE)
        batches = [(s, min(n_img, s + bs)) for s in range(0, n_img, bs)]
        chunks = _plan_chunks(fl, cost, min(bs, n_img), chunk_size)
        manifest = {
            "format": STORE_FORMAT, "pattern": pattern, "layers": lays,
            "levels": {str(L): [v for _, v in lv[L]] for L in lays},
            "sample": None if sample is None else int(sample), "seed": int(seed),
            "shard": None if shard_t is None else list(shard_t),
            "explicit_faults": faults is not None,
            "faults_sha256": fl.digest(), "n_faults": len(fl), "campaign_faults": campaign_faults,
            "population_size": population_size, "population_by_layer": pop_by_layer,
            "model_sha256": _model_fingerprint(model), "data_sha256": src.fingerprint(),
            "n_images": int(n_img), "batch_size": bs,
            "chunks_sha256": hashlib.sha256(json.dumps(chunks).encode()).hexdigest(),
            "n_chunks": len(chunks), "exact": exact,
            "model": repr(getattr(model, "extra_repr", lambda: "")()),
            "torch": torch.__version__,
        }
        st_obj = _Store(Path(store), manifest, chunks, len(batches)) if store is not None else None
        try:
            correct, golden_correct = _run(eng, fl, chunks, batches, src.fetch, dev, budget,
                                           st_obj, progress)
        finally:
            if st_obj is not None:
                st_obj.close()
    meta = dict(manifest)
    meta.update({"golden_correct": int(golden_correct),
                 "error_free": 100.0 * golden_correct / n_img,
                 "engine": "fatlib.campaign/generic" if generic else "fatlib.campaign"})
    df = _frame(fl, correct, n_img, meta)
    if store is not None:
        save_results(df, Path(store) / RESULTS_FILE)
    return df


def _run(eng: _Engine | _GenericRunner, fl: _Faults, chunks: list[tuple[int, int]],
         batches: list[tuple[int, int]], fetch: Any, dev: torch.device, budget: int,
         store: _Store | None, progress: bool) -> tuple[np.ndarray, int]:
    from tqdm.auto import tqdm

    n_f = len(fl)
    per_batch = np.zeros((len(batches), n_f), dtype=np.int64)
    done = np.zeros((len(chunks), len(batches)), dtype=bool)
    if store is not None:
        for (k, b), corr in store.done.items():
            s, e = chunks[k]
            per_batch[b, s:e] = corr
            done[k, b] = True
    golden_correct = 0
    total_work = sum((e - s) * (batches[b][1] - batches[b][0])
                     for k, (s, e) in enumerate(chunks) for b in range(len(batches)) if not done[k, b])
    bar = tqdm(total=total_work, unit="fault·img", unit_scale=True, disable=not progress,
               desc=f"stuck-at {fl.pattern}", dynamic_ncols=True)
    levels_of_layer = {int(L): int(np.unique(fl.code[fl.layer == L]).size) for L in np.unique(fl.layer)}
    chunks_of_layer: dict[int, list[int]] = {}
    chunk_of = np.zeros(n_f, dtype=np.int64)
    for k, (s, e) in enumerate(chunks):
        chunks_of_layer.setdefault(int(fl.layer[s]), []).append(k)
        chunk_of[s:e] = k
    try:
        for b, (i0, i1) in enumerate(batches):
            x, y = fetch(i0, i1)
            x, y = x.to(dev), y.to(dev)
            g = eng.golden(x, y)
            golden_correct += int(g.correct.sum())
            for L in sorted(chunks_of_layer):
                pending = [k for k in chunks_of_layer[L] if not done[k, b]]
                if not pending:
                    continue
                idx = np.concatenate([np.arange(*chunks[k]) for k in pending])
                n_b = i1 - i0
                f_sub = max(1, budget // (eng.row_bytes(L) * n_b))
                k_lv = levels_of_layer[L]            # keep a channel's levels together
                f_sub = max(k_lv, f_sub - f_sub % k_lv)
                chunk_left = {k: chunks[k][1] - chunks[k][0] for k in pending}
                for s in range(0, len(idx), f_sub):
                    sub = idx[s:s + f_sub]
                    corr = _eval_faults(eng, g, fl, sub, L)
                    per_batch[b, sub] = corr
                    bar.update(len(sub) * n_b)
                    for k, cnt in zip(*np.unique(chunk_of[sub], return_counts=True)):
                        chunk_left[int(k)] -= int(cnt)
                        if chunk_left[int(k)] == 0:
                            done[k, b] = True
                            if store is not None:
                                cs, ce = chunks[k]
                                store.write(int(k), b, per_batch[b, cs:ce].tolist())
            del g
    finally:
        bar.close()
    assert done.all()
    return per_batch.sum(0), golden_correct


def _eval_faults(eng: _Engine | _GenericRunner, g: _Golden | _GenericGolden, fl: _Faults,
                 sub: np.ndarray, layer: int) -> np.ndarray:
    """Correct counts on one golden batch of faults ``sub`` (all of site ``layer``)."""
    if isinstance(eng, _GenericRunner):
        return eng.eval_faults(g, fl, sub, layer)
    dev = g.pred.device
    codes = torch.as_tensor(fl.code[sub], dtype=torch.float32, device=dev)
    values = torch.as_tensor(fl.value[sub], dtype=torch.float32, device=dev)
    if fl.pattern == "channel":
        chans = torch.as_tensor(fl.a[sub], device=dev)
        acc = eng.first_acc_channel(g, layer, chans, codes, values)
    else:
        rows = torch.as_tensor(fl.a[sub], device=dev)
        cols = torch.as_tensor(fl.b[sub], device=dev)
        acc = eng.first_acc_pixel(g, layer, rows, cols, codes, values)
    f, n = acc.shape[0], acc.shape[1]
    acc = acc.reshape(f * n, *acc.shape[2:])
    j = eng.site_stage[layer] + 1
    rows_changed, pred = eng.suffix(j, acc, g, f)
    out = np.full(f, int(g.correct.sum()), dtype=np.int64)
    if rows_changed.numel():
        img = rows_changed % n
        delta = (pred == g.labels.index_select(0, img)).long() - g.correct.index_select(0, img).long()
        per_f = torch.zeros(f, dtype=torch.long, device=dev).index_add_(0, rows_changed // n, delta)
        out += per_f.cpu().numpy()
    return out


# ------------------------------------------------------------------------------------------
# reference
# ------------------------------------------------------------------------------------------

def naive_campaign(model: nn.Module, data: Any, pattern: str = "channel",
                   levels: Sequence[float] | None = None, layers: Sequence[int] | None = None,
                   batch_size: int | None = None, device: str | torch.device | None = None,
                   faults: pd.DataFrame | Sequence[tuple] | None = None,
                   progress: bool = False) -> pd.DataFrame:
    """Reference implementation of FAT Algorithm 1: per fault, a forward hook overwrites the
    site's output (channel, or one position of all channels) and the unmodified brevitas model
    runs a full forward pass on every image — per-fault re-execution, as PyTorchFI does.
    Same fault space, order and columns as :func:`stuck_at_campaign`; any fatlib network with
    activation sites (CNV, DoReFa-AlexNet)."""
    from tqdm.auto import tqdm

    from .models import activation_sites

    _check_pattern(pattern)
    images, labels = _as_tensors(data)
    model, dev = _prepare_model(model, device)
    bs = int(batch_size or DEFAULT_BATCH_SIZE)
    with _eval_mode(model):
        sites_t = _generic_site_table(model, tuple(images.shape[1:]))
        lays = _resolve_layers(sites_t, pattern, layers, explicit_faults=faults is not None)
        pop = _population(sites_t, pattern, lays, _resolve_levels(sites_t, lays, levels))
        fl = _explicit_faults(pop, faults) if faults is not None else pop
        sites = activation_sites(model)
        batches = [(images[s:s + bs].to(dev), labels[s:s + bs].to(dev)) for s in range(0, images.shape[0], bs)]
        golden = sum(int((model(x).argmax(1) == y).sum()) for x, y in batches)
        correct = np.zeros(len(fl), dtype=np.int64)
        for i in tqdm(range(len(fl)), disable=not progress, desc="naive stuck-at"):
            L, a, b, v = int(fl.layer[i]), int(fl.a[i]), int(fl.b[i]), float(fl.value[i])

            def hook(mod: nn.Module, inp: Any, out: torch.Tensor, a=a, b=b, v=v) -> torch.Tensor:
                out = out.clone()
                if pattern == "channel":
                    out[:, a] = v
                else:
                    out[:, :, a, b] = v
                return out

            handle = sites[L].register_forward_hook(hook)
            try:
                correct[i] = sum(int((model(x).argmax(1) == y).sum()) for x, y in batches)
            finally:
                handle.remove()
    meta = {"pattern": pattern, "layers": lays, "n_images": int(images.shape[0]), "n_faults": len(fl),
            "population_size": len(fl), "golden_correct": golden,
            "error_free": 100.0 * golden / images.shape[0], "engine": "naive"}
    return _frame(fl, correct, images.shape[0], meta)


def golden_accuracy(model: nn.Module, data: Any, batch_size: int | None = None,
                    device: str | torch.device | None = None) -> float:
    """Error-free test accuracy (%) of the brevitas model — the "Error-free" column of FAT
    Tables I–IV."""
    images, labels = _as_tensors(data)
    model, dev = _prepare_model(model, device)
    bs = int(batch_size or DEFAULT_BATCH_SIZE)
    correct = 0
    with _eval_mode(model):
        for s in range(0, images.shape[0], bs):
            x, y = images[s:s + bs].to(dev), labels[s:s + bs].to(dev)
            correct += int((model(x).argmax(1) == y).sum())
    return 100.0 * correct / images.shape[0]


# ------------------------------------------------------------------------------------------
# tables (FAT Tables I–IV) and estimates
# ------------------------------------------------------------------------------------------

def _error_free(df: pd.DataFrame, error_free: float | None) -> float:
    if error_free is not None:
        return float(error_free)
    return float(df.attrs.get("campaign", {}).get("error_free", float("nan")))


def _check_results(df: pd.DataFrame) -> None:
    need = {"layer", "value", "correct", "total", "accuracy"}
    if not isinstance(df, pd.DataFrame) or not need <= set(df.columns):
        raise ValueError(f"expected a campaign table with columns {sorted(need)} (+ channel or row/col)")


def summarize(df: pd.DataFrame, error_free: float | None = None, ddof: int = 0) -> pd.DataFrame:
    """Per layer and stuck-at value: ``faults``, ``units`` (channels, or pixel positions),
    ``min`` / ``max`` / ``mean`` / ``var`` of the accuracy (%) and the ``error_free`` accuracy —
    FAT Algorithm 1's "min and max accuracy observed for the layer" and the columns of Table I
    (s@0 = value −1, s@1 = value +1 for A1). ``var`` uses ``ddof`` (0: the population variance
    of an exhaustive campaign). ``error_free`` defaults to the campaign's golden accuracy."""
    _check_results(df)
    unit_col = "channel" if "channel" in df.columns else None
    ef = _error_free(df, error_free)
    rows = []
    for (layer, value), grp in df.groupby(["layer", "value"], sort=True):
        acc = grp["accuracy"].to_numpy(dtype=np.float64)
        units = grp[unit_col].nunique() if unit_col else len(grp[["row", "col"]].drop_duplicates())
        rows.append({"layer": int(layer), "value": float(value), "faults": int(len(grp)), "units": int(units),
                     "min": float(acc.min()), "max": float(acc.max()), "mean": float(acc.mean()),
                     "var": float(acc.var(ddof=ddof)) if len(acc) > ddof else float("nan"),
                     "error_free": ef})
    return pd.DataFrame(rows, columns=["layer", "value", "faults", "units", "min", "max", "mean",
                                       "var", "error_free"])


def overall(df: pd.DataFrame, error_free: float | None = None, ddof: int = 0) -> pd.Series:
    """One campaign in one line — FAT Table II / III / IV: ``error_free``, ``min`` ("Min Acc."),
    ``var`` ("Variance" of the accuracies of all faults, ``ddof`` as in :func:`summarize`),
    plus ``max``, ``mean``, ``faults`` and the worst fault (``worst_layer``, ``worst_value``,
    ``worst_where``: channel or (row, col))."""
    _check_results(df)
    if len(df) == 0:
        raise ValueError("the campaign table is empty")
    acc = df["accuracy"].to_numpy(dtype=np.float64)
    i = int(np.argmin(acc))
    worst = df.iloc[i]
    where = int(worst["channel"]) if "channel" in df.columns else (int(worst["row"]), int(worst["col"]))
    return pd.Series({"error_free": _error_free(df, error_free), "min": float(acc.min()),
                      "max": float(acc.max()), "mean": float(acc.mean()),
                      "var": float(acc.var(ddof=ddof)) if len(acc) > ddof else float("nan"),
                      "faults": int(len(df)), "worst_layer": int(worst["layer"]),
                      "worst_value": float(worst["value"]), "worst_where": where}, dtype=object)


def _z(confidence: float) -> float:
    return statistics.NormalDist().inv_cdf(0.5 + confidence / 2.0)


def wilson_interval(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion, in percent."""
    if trials <= 0:
        return float("nan"), float("nan")
    z = _z(confidence)
    p = successes / trials
    den = 1.0 + z * z / trials
    center = (p + z * z / (2 * trials)) / den
    half = z / den * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials))
    return 100.0 * max(0.0, center - half), 100.0 * min(1.0, center + half)


def estimate(df: pd.DataFrame, population_size: int | dict[int, int] | None = None,
             confidence: float = 0.95) -> pd.DataFrame:
    """Estimates from a sampled campaign (``sample=N``; beyond the paper: how campaigns scale to
    ImageNet-size networks), per layer and overall (``layer`` = <NA>).

    Columns: ``sampled`` (n) and ``population`` (N faults); ``mean`` accuracy of all N faults
    with a normal confidence interval using the finite-population correction (exact when
    n = N); ``min``, the worst sampled fault, with the Wilson interval of its accuracy over the
    test images; ``p_missed_worst`` = 1 − n/N, the probability that the truly worst fault was
    not drawn; ``worse_fraction_bound`` q = 1 − (1 − confidence)^(1/n): with the given
    confidence at most a fraction q of all faults (``worse_count_bound`` = q·N) is worse than
    the sample minimum, because P(that fraction > q) ≤ (1 − q)^n; ``pooled`` accuracy over all
    sampled (fault, image) pairs with its Wilson interval (approximate: images are shared).

    ``population_size``: N overall, or a dict per layer; default from ``df.attrs["campaign"]``.
    """
    _check_results(df)
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence={confidence!r} must lie in (0, 1)")
    meta = df.attrs.get("campaign", {})
    by_layer: dict[int, int] = {}
    if isinstance(population_size, dict):
        by_layer = {int(k): int(v) for k, v in population_size.items()}
        total_pop = sum(by_layer.values())
    elif population_size is not None:
        total_pop = int(population_size)
    else:
        if "population_size" not in meta:
            raise ValueError("population_size is needed (the table carries no campaign manifest)")
        total_pop = int(meta["population_size"])
        by_layer = {int(k): int(v) for k, v in meta.get("population_by_layer", {}).items()}
    if total_pop < len(df):
        raise ValueError(f"population_size={total_pop} is smaller than the {len(df)} sampled faults")
    z = _z(confidence)

    def row(grp: pd.DataFrame, pop: int | None, layer: Any) -> dict:
        n = len(grp)
        acc = grp["accuracy"].to_numpy(dtype=np.float64)
        out: dict[str, Any] = {"layer": layer, "sampled": n, "population": pop}
        if n == 0:
            return out
        mean = float(acc.mean())
        if pop is not None and n >= pop:
            lo = hi = mean
        elif n >= 2:
            fpc = math.sqrt((pop - n) / (pop - 1)) if pop is not None and pop > 1 else 1.0
            se = float(acc.std(ddof=1)) / math.sqrt(n) * fpc
            lo, hi = mean - z * se, mean + z * se
        else:
            lo = hi = float("nan")
        i = int(np.argmin(acc))
        w = grp.iloc[i]
        mlo, mhi = wilson_interval(int(w["correct"]), int(w["total"]), confidence)
        q = 1.0 - (1.0 - confidence) ** (1.0 / n)
        plo, phi = wilson_interval(int(grp["correct"].sum()), int(grp["total"].sum()), confidence)
        out.update({"mean": mean, "mean_low": lo, "mean_high": hi, "min": float(acc.min()),
                    "min_low": mlo, "min_high": mhi,
                    "p_missed_worst": (1.0 - n / pop) if pop else float("nan"),
                    "worse_fraction_bound": 0.0 if (pop is not None and n >= pop) else q,
                    "worse_count_bound": (0.0 if n >= pop else q * pop) if pop else float("nan"),
                    "pooled": 100.0 * grp["correct"].sum() / grp["total"].sum(),
                    "pooled_low": plo, "pooled_high": phi})
        return out

    rows = [row(grp, by_layer.get(int(L)), int(L)) for L, grp in df.groupby("layer", sort=True)]
    rows.append(row(df, total_pop, pd.NA))
    cols = ["layer", "sampled", "population", "mean", "mean_low", "mean_high", "min", "min_low",
            "min_high", "p_missed_worst", "worse_fraction_bound", "worse_count_bound", "pooled",
            "pooled_low", "pooled_high"]
    out = pd.DataFrame(rows).reindex(columns=cols)
    out["layer"] = out["layer"].astype("Int64")
    out["population"] = out["population"].astype("Int64")
    return out


# ------------------------------------------------------------------------------------------
# merging shards
# ------------------------------------------------------------------------------------------

#: manifest fields that must agree between parts of one campaign
_MERGE_IDENTITY = ("pattern", "layers", "levels", "sample", "seed", "explicit_faults",
                   "campaign_faults", "model_sha256", "data_sha256", "n_images")


def merge(paths: Sequence[str | os.PathLike | pd.DataFrame]) -> pd.DataFrame:
    """Join the outputs of sharded runs (``shard=(i, n)``): Parquet files written by
    :func:`save_results` / the CLI, complete store directories, or result DataFrames. Refuses
    (ValueError) parts of different campaigns (model, data, pattern, levels, ...) and parts
    that overlap. ``attrs["campaign"]["complete"]`` says whether every fault is present."""
    if isinstance(paths, (str, os.PathLike, pd.DataFrame)):
        paths = [paths]
    if not paths:
        raise ValueError("merge needs at least one result (Parquet file, store directory or DataFrame)")
    parts, metas, names = [], [], []
    for p in paths:
        if isinstance(p, pd.DataFrame):
            df, name = p, "DataFrame"
        else:
            path = Path(p)
            if not path.exists():
                raise ValueError(f"{path} does not exist")
            df, name = load_results(path), str(path)
        _check_results(df)
        parts.append(df)
        metas.append(df.attrs.get("campaign", {}))
        names.append(name)
    ref = metas[0]
    for m, name in zip(metas[1:], names[1:]):
        diff = [k for k in _MERGE_IDENTITY if m.get(k) != ref.get(k)]
        if diff:
            raise ValueError(f"{name} is from a different campaign than {names[0]} (differs in "
                             f"{', '.join(diff)}); only shards of one campaign can be merged")
    keys = _key_cols(ref.get("pattern", "channel" if "channel" in parts[0].columns else "pixel"))
    for df, name in zip(parts, names):
        if list(df.columns[:len(keys)]) != keys:
            raise ValueError(f"{name}: columns {list(df.columns)} do not match pattern keys {keys}")
    out = pd.concat(parts, ignore_index=True)
    dup = out.duplicated(subset=keys, keep=False)
    if dup.any():
        first = out.loc[dup, keys].iloc[0]
        example = {k: (float(first[k]) if k == "value" else int(first[k])) for k in keys}
        raise ValueError(f"the parts overlap: {int(dup.sum())} rows appear in more than one part "
                         f"(e.g. {example}); merge each shard once")
    out = out.sort_values(keys, kind="mergesort").reset_index(drop=True)
    meta = dict(ref)
    meta["shard"] = None
    meta["shards"] = sorted([m.get("shard") for m in metas], key=lambda s: (s is None, s))
    meta["n_faults"] = len(out)
    expected = ref.get("campaign_faults")
    meta["complete"] = expected is not None and len(out) == int(expected)
    meta.pop("faults_sha256", None)
    meta.pop("chunks_sha256", None)
    out.attrs["campaign"] = meta
    return out


# ------------------------------------------------------------------------------------------
# command line: fatlib campaign
# ------------------------------------------------------------------------------------------

def _load_model(path: str | os.PathLike) -> tuple[nn.Module, dict]:
    """``(model, config)`` of a checkpoint: :func:`fatlib.store.load_checkpoint` when it exists,
    else a ``{"config": ..., "state_dict": ...}`` file."""
    try:
        from .store import load_checkpoint
    except ImportError:
        load_checkpoint = None
    if load_checkpoint is not None:
        model, config = load_checkpoint(path)
        return model, dict(config)
    from .models import build_model

    blob = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(blob, dict) or "config" not in blob or "state_dict" not in blob:
        raise ValueError(f"{path} is not a fatlib checkpoint (needs 'config' and 'state_dict')")
    cfg = dict(blob["config"])
    model = build_model(cfg.get("arch", "cnv"), num_classes=cfg.get("num_classes", 10),
                        width=cfg.get("width", 1.0), weight_bits=cfg.get("weight_bits"),
                        act_bits=cfg.get("act_bits"))
    model.load_state_dict(blob["state_dict"])
    return model.eval(), cfg


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="fatlib campaign",
        description="Exhaustive single stuck-at campaign of a CNV checkpoint (FAT Algorithm 1; "
                    "Tables I-IV). Writes one row per fault to --out (Parquet).")
    p.add_argument("checkpoint", help="checkpoint file or store artifact directory")
    p.add_argument("--pattern", choices=PATTERNS, default="channel",
                   help="channel stuck@ (default) or same pixel in all channels stuck@")
    p.add_argument("--out", required=True, help="result table (.parquet)")
    p.add_argument("--levels", type=float, nargs="+", default=None,
                   help="stuck-at values (default: every level of each site's quantizer)")
    p.add_argument("--layers", type=int, nargs="+", default=None,
                   help="activation sites 0-7 (default: all; for --pattern pixel the conv sites whose map has more than one position, 0-4 on CNV)")
    p.add_argument("--batch-size", type=int, default=None, help=f"images per batch (default {DEFAULT_BATCH_SIZE})")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda when available)")
    p.add_argument("--store", default=None, help="directory that persists progress; re-run to resume")
    p.add_argument("--shard", default=None, help="i/n: evaluate this process's share of the faults")
    p.add_argument("--sample", type=int, default=None, help="evaluate N faults drawn uniformly")
    p.add_argument("--seed", type=int, default=0, help="seed of --sample (default 0)")
    p.add_argument("--data-dir", default=None, help="data directory (default $FATLIB_DATA or the cache)")
    p.add_argument("--dataset", default=None,
                   help="dataset name (default: the checkpoint's, else cifar10)")
    p.add_argument("--split", default="test", choices=("train", "test"), help="data split (default test)")
    p.add_argument("--images", type=int, default=None,
                   help="evaluate a seeded subset of this many images (default: all)")
    p.add_argument("--memory-budget", type=float, default=None,
                   help="MiB for stacked faulty copies (default: half the free GPU memory / 256 on CPU)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def main(argv: list[str] | None = None) -> int:
    """``fatlib campaign CHECKPOINT --pattern channel --out results.parquet [...]``."""
    args = _parser().parse_args(argv)
    try:
        from .data import load_dataset, subset

        model, config = _load_model(args.checkpoint)
        device = args.device
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        name = args.dataset or config.get("dataset") or "cifar10"
        ds = load_dataset(name, args.split, data_dir=args.data_dir)
        if args.images is not None:
            ds = subset(ds, args.images, seed=0)
        budget = None if args.memory_budget is None else int(args.memory_budget * 2 ** 20)
        df = stuck_at_campaign(model, ds, pattern=args.pattern, levels=args.levels, layers=args.layers,
                               batch_size=args.batch_size, device=device, store=args.store,
                               shard=args.shard, sample=args.sample, seed=args.seed,
                               progress=not args.no_progress, memory_budget=budget)
        df.attrs["campaign"]["checkpoint"] = str(args.checkpoint)
        df.attrs["campaign"]["dataset"] = f"{name}/{args.split}"
        save_results(df, args.out)
    except (ValueError, FileNotFoundError, RuntimeError) as err:
        print(f"fatlib campaign: error: {err}", file=sys.stderr)
        return 2
    with pd.option_context("display.width", 120, "display.max_rows", 200):
        print(summarize(df).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
        o = overall(df)
        print(f"\n{len(df)} faults on {df['total'].iloc[0] if len(df) else 0} images: error-free "
              f"{o['error_free']:.2f}%, min {o['min']:.2f}% (layer {o['worst_layer']}, "
              f"{o['worst_where']}, value {o['worst_value']:g}), variance {o['var']:.3f}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
