"""Partial duplication of kernels: kernel recovery (KR), feature-map recovery (FMR) and the
paper's D2NN baseline — FT-DeepNets §3.2, §3.3 and §4.4.

:func:`duplicate` returns a deep copy of a network in which the filters producing the top
``ratio`` of each convolution's channels (by a ranking of :mod:`fatlib.ftd.ranking`) get a second
copy; the original network is not touched. Each such convolution becomes a
:class:`KRConv2d` or an :class:`FMRConv2d` holding two real ``Conv2d`` children:

* ``primary`` — the original convolution, all filters;
* ``replica`` — a copy of the duplicated filters only (``index`` lists their output channels).

KR (Fig. 4b) averages the original and duplicated kernels into one kernel, then convolves once.
FMR (Fig. 4a) convolves with both and averages the two feature maps; the replica convolution
computes only the duplicated channels, so FMR adds the duplicated share of the layer's compute.

Errors (:func:`fatlib.ftd.errors.transient_errors`)
---------------------------------------------------
Both modules are *composite layers*: a duplicated layer is one error site, addressed by its own
name (e.g. ``"features.0"``), and the two copies are struck independently. Weight errors hit the
primary and the replica kernels separately (fresh, independent draws), before KR averages them /
before FMR convolves. Feature-map errors hit KR's single output map, and for FMR each copy's map
(the primary's full map and the replica's duplicated channels) before the two are averaged.

KR without recomputation
------------------------
Without errors the averaged kernel equals the original one. KR therefore caches it: the cache is
refreshed only when the weights it reads may have changed — when a weight is not the registered
parameter (``transient_errors`` swaps a faulty tensor in: then it is recomputed at every call) or
when a parameter's in-place version counter, storage, dtype or device changed (``load_state_dict``,
an optimizer step, ``.to()``). When the averaged kernel equals the primary kernel bit for bit
(the normal case) no extra tensor is kept and the convolution uses the primary weight directly,
so KR costs one Python call more than the original layer. With autograd enabled and weights that
require grad, the average is recomputed every call (differentiable).

MobileNet (§3.3, Fig. 5)
------------------------
A depthwise convolution paired with its pointwise convolution (:func:`fatlib.ftd.ranking.depthwise_pairs`)
is duplicated *whole* whenever the pointwise convolution has at least one duplicated filter; the
pointwise convolution duplicates its top ``ratio`` filters like any other convolution.

D2NN (§4.4, Fig. 8b)
--------------------
:func:`d2nn` re-implements D2NN the way the paper did: two identical copies of the network
(primary and secondary), run on the same input, outputs (logits here; boxes after NMS in the
paper) averaged. The channels the ranking selects (weight-sum in the paper, same selection rule
as :func:`duplicate`, depthwise pairing included) are the *unshared* part; every other channel
of every ``Conv2d`` / ``Linear`` is *shared*. Shared kernels and feature-map channels receive the
*same* errors in both copies (same positions and, for "random"/"bitflip", same draws) — they are
one physical neuron in D2NN; the unshared channels receive independent errors in the two copies
(``secondary_errors="independent"``, the physical reading: both copies sit in memory). The
paper's sentence "different random errors only in the unshared parts of the primary network" can
also be read as leaving the secondary's unshared part error-free: ``secondary_errors="none"``.
"""

from __future__ import annotations

import copy

import pandas as pd
import torch
from torch import nn

from fatlib.ftd.errors import FaultTargets, FaultTie
from fatlib.ftd.ranking import (
    check_ratio,
    check_scores,
    conv_layers,
    depthwise_pairs,
    is_depthwise,
    rank_channels,
    top_channels,
)

__all__ = [
    "DUPLICATION_METHODS",
    "DuplicatedConv2d",
    "KRConv2d",
    "FMRConv2d",
    "D2NN",
    "duplication_plan",
    "duplicate",
    "duplication_summary",
    "d2nn",
]

#: kernel recovery and feature-map recovery (§3.2).
DUPLICATION_METHODS: tuple[str, ...] = ("kr", "fmr")


def _replica(conv: nn.Conv2d, index: torch.Tensor) -> nn.Conv2d:
    """A ``Conv2d`` holding copies of the filters ``index`` of ``conv``."""
    k, c = index.numel(), conv.out_channels
    if k == c:
        rep = copy.deepcopy(conv)
        for hooks in (rep._forward_hooks, rep._forward_pre_hooks):
            hooks.clear()
        return rep
    if conv.groups == 1:
        in_ch, groups = conv.in_channels, 1
    elif is_depthwise(conv):
        in_ch, groups = k, k
    else:
        raise ValueError(
            f"partial duplication of a grouped convolution (groups={conv.groups}) is "
            "only supported for depthwise convolutions; duplicate it whole (ratio=1)"
        )
    w = conv.weight
    rep = nn.Conv2d(
        in_ch,
        k,
        conv.kernel_size,
        stride=conv.stride,
        padding=conv.padding,
        dilation=conv.dilation,
        groups=groups,
        bias=conv.bias is not None,
        padding_mode=conv.padding_mode,
        device=w.device,
        dtype=w.dtype,
    )
    idx = index.to(w.device)
    with torch.no_grad():
        rep.weight.copy_(w.index_select(0, idx))
        if conv.bias is not None:
            rep.bias.copy_(conv.bias.index_select(0, idx))
    rep.weight.requires_grad_(w.requires_grad)
    if conv.bias is not None:
        rep.bias.requires_grad_(conv.bias.requires_grad)
    return rep


class DuplicatedConv2d(nn.Module):
    """A convolution whose filters ``index`` have a second copy (FTD §3.2); see the subclasses.

    ``ratio`` is the duplication ratio that was asked for; ``paired`` marks a MobileNet depthwise
    convolution duplicated whole because of its pointwise partner (§3.3)."""

    method: str = ""

    def __init__(self, conv: nn.Conv2d, index: torch.Tensor, ratio: float, paired: bool = False) -> None:
        super().__init__()
        if not isinstance(conv, nn.Conv2d):
            raise ValueError(f"{type(self).__name__} wraps an nn.Conv2d, got {type(conv).__name__}")
        index = torch.as_tensor(index, dtype=torch.long).flatten().cpu()  # cpu-only: host-side plan / masks
        if index.numel() == 0:
            raise ValueError("index is empty: leave the convolution as it is instead")
        if index.unique().numel() != index.numel() or index.min() < 0 or index.max() >= conv.out_channels:
            raise ValueError(f"index must hold distinct channels in [0, {conv.out_channels})")
        index = index.sort().values
        self.primary = conv
        self.replica = _replica(conv, index)
        self.register_buffer("index", index.to(conv.weight.device))
        self.ratio = float(ratio)
        self.paired = bool(paired)
        self.full = index.numel() == conv.out_channels
        # a replica of a partially duplicated depthwise conv reads only its channels
        self._select_input = (not self.full) and conv.groups > 1

    @property
    def duplicated(self) -> int:
        """Number of duplicated filters (output channels)."""
        return self.index.numel()

    @property
    def channels(self) -> int:
        """Number of output channels of the layer."""
        return self.primary.out_channels

    def fault_targets(self) -> FaultTargets:  # pragma: no cover - overridden
        raise NotImplementedError

    def extra_repr(self) -> str:
        s = f"method={self.method!r}, ratio={self.ratio:g}, duplicated={self.duplicated}/{self.channels}"
        return s + (", paired_depthwise=True" if self.paired else "")


class KRConv2d(DuplicatedConv2d):
    """Kernel recovery (FTD §3.2, Fig. 4b): ``(primary[index] + replica) / 2`` replaces the
    duplicated filters, then one convolution. Errors: independent weight errors on both kernels,
    feature-map errors on the one output (module docstring)."""

    method = "kr"

    def __init__(self, conv: nn.Conv2d, index: torch.Tensor, ratio: float, paired: bool = False) -> None:
        super().__init__(conv, index, ratio, paired)
        self._cache_key: tuple | None = None
        self._cache: tuple[torch.Tensor, torch.Tensor | None] | None = None

    def fault_targets(self) -> FaultTargets:
        return FaultTargets(weights=(self.primary, self.replica), fmaps=(self,))

    @property
    def cache_bytes(self) -> int:
        """Bytes of the averaged kernel (and bias) cached beside the parameters (module docstring:
        0 while it equals the primary kernel); counted by FTD Table 2's measured memory."""
        if self._cache is None:
            return 0
        return sum(t.numel() * t.element_size() for t in self._cache if t is not None)

    def _average(self, w: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        if self.full:
            return (w + r) * 0.5
        idx = self._buffers["index"]
        return w.index_copy(0, idx, (w.index_select(0, idx) + r) * 0.5)

    def _bias(self) -> torch.Tensor | None:
        b = self.primary.bias
        return None if b is None else self._average(b, self.replica.bias)

    def merged_weight(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The averaged kernel (and bias) the convolution uses, from the cache when valid."""
        # direct dict access: this runs at every forward and nn.Module.__getattr__ is slow
        primary, replica = self._modules["primary"], self._modules["replica"]
        if "weight" in primary.__dict__ or "weight" in replica.__dict__:
            # a faulty weight is swapped in (fatlib.ftd.errors): average what is there now
            return self._average(primary.weight, replica.weight), self._bias()
        w, r = primary._parameters["weight"], replica._parameters["weight"]
        if (w.requires_grad or r.requires_grad) and torch.is_grad_enabled():
            return self._average(w, r), self._bias()
        b, rb = primary._parameters.get("bias"), replica._parameters.get("bias")
        key = (
            w._version,
            r._version,
            w.data_ptr(),
            r.data_ptr(),
            None if b is None else (b._version, rb._version, b.data_ptr(), rb.data_ptr()),
        )
        if key != self._cache_key:
            with torch.inference_mode(False), torch.no_grad():
                mw, mb = self._average(w, r), self._bias()
                same = torch.equal(mw, w) and (b is None or torch.equal(mb, b))
            self._cache = None if same else (mw, mb)
            self._cache_key = key
        return (w, b) if self._cache is None else self._cache

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight, bias = self.merged_weight()
        return self._modules["primary"]._conv_forward(x, weight, bias)


class FMRConv2d(DuplicatedConv2d):
    """Feature-map recovery (FTD §3.2, Fig. 4a): the primary convolution computes every channel,
    the replica convolution only the duplicated ones, and the duplicated channels are averaged.
    Errors: independent weight and feature-map errors on each copy (module docstring)."""

    method = "fmr"

    def fault_targets(self) -> FaultTargets:
        return FaultTargets(weights=(self.primary, self.replica), fmaps=(self.primary, self.replica))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        index = self._buffers["index"]
        y = self._modules["primary"](x)
        z = self._modules["replica"](x.index_select(1, index) if self._select_input else x)
        inplace = not ((y.requires_grad or z.requires_grad) and torch.is_grad_enabled())
        if not inplace:
            if self.full:
                return (y + z) * 0.5
            return y.index_copy(1, index, (y.index_select(1, index) + z) * 0.5)
        # inference: average in place; lerp(a, b, 0.5) is the mean in one pass (exact for a == b)
        if self.full:
            return y.lerp_(z, 0.5)
        return y.index_copy_(1, index, y.index_select(1, index).lerp_(z, 0.5))


# ------------------------------------------------------------------------------------------
def duplication_plan(
    model: nn.Module, ratio: float, scores: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Which output channels of which convolution get a copy (FTD §3.2–3.3): the top ``ratio``
    channels (:func:`fatlib.ftd.ranking.top_channels`) of every ``Conv2d`` named in ``scores``; a
    depthwise convolution paired with a pointwise one is taken whole when the pointwise one has
    any duplicated channel (its own scores are ignored). Layers with nothing duplicated are left
    out. Returns ``{conv name: ascending LongTensor of channels}`` in registration order."""
    check_ratio(ratio)
    if not isinstance(scores, dict) or not scores:
        raise ValueError(
            "scores must be a non-empty dict {conv name: scores}, as returned by "
            "fatlib.ftd.ranking.rank_channels"
        )
    convs = conv_layers(model)
    unknown = [n for n in scores if n not in convs]
    if unknown:
        raise ValueError(
            f"scores name layers that are not Conv2d modules of the model: {unknown}; "
            "rank this model with fatlib.ftd.ranking.rank_channels"
        )
    check_scores(scores, "scores")
    for n, s in scores.items():
        if torch.as_tensor(s).numel() != convs[n].out_channels:  # cpu-only: host-side plan / masks
            raise ValueError(
                # cpu-only: host-side plan / masks
                f"scores[{n!r}] has {torch.as_tensor(s).numel()} entries but the "
                f"layer has {convs[n].out_channels} output channels"
            )
    pairs = depthwise_pairs(model)
    top = top_channels({n: s for n, s in scores.items() if n not in pairs}, ratio)
    plan: dict[str, torch.Tensor] = {}
    for name, conv in convs.items():
        if name in pairs:
            pw = pairs[name]
            if pw in top and top[pw].numel() > 0:
                plan[name] = torch.arange(conv.out_channels)  # cpu-only: host-side plan / masks
        elif name in top and top[name].numel() > 0:
            plan[name] = top[name].sort().values
    return plan


def _set_submodule(root: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, child, module)


def duplicate(
    model: nn.Module, ratio: float, scores: dict[str, torch.Tensor], method: str = "kr"
) -> nn.Module:
    """A deep copy of ``model`` whose top-``ratio`` filters per convolution are duplicated with
    kernel recovery (``"kr"``) or feature-map recovery (``"fmr"``) (FTD §3.2–3.3). ``scores``
    come from :func:`fatlib.ftd.ranking.rank_channels` on ``model``. Without errors the copy computes
    the original outputs (KR bit for bit, FMR to float rounding). ``model`` is left untouched."""
    if method not in DUPLICATION_METHODS:
        raise ValueError(f"unknown duplication method {method!r}: use one of {DUPLICATION_METHODS}")
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if any(isinstance(m, DuplicatedConv2d) for m in model.modules()):
        raise ValueError("model is already duplicated: duplicate the original network")
    plan = duplication_plan(model, ratio, scores)
    pairs = depthwise_pairs(model)
    dup = copy.deepcopy(model)
    cls = KRConv2d if method == "kr" else FMRConv2d
    for name, index in plan.items():
        layer = cls(dup.get_submodule(name), index, ratio=ratio, paired=name in pairs)
        if name == "":
            return layer
        _set_submodule(dup, name, layer)
    return dup


def duplication_summary(model: nn.Module) -> pd.DataFrame:
    """One row per duplicated layer of ``model``: ``layer``, ``method``, ``channels``,
    ``duplicated``, ``paired_depthwise``, ``duplicated_params`` (FTD §3.2, Table 2)."""
    rows = []
    for name, m in model.named_modules():
        if isinstance(m, DuplicatedConv2d):
            rows.append(
                {
                    "layer": name,
                    "method": m.method,
                    "channels": m.channels,
                    "duplicated": m.duplicated,
                    "paired_depthwise": m.paired,
                    "duplicated_params": sum(p.numel() for p in m.replica.parameters()),
                }
            )
    return pd.DataFrame(
        rows, columns=["layer", "method", "channels", "duplicated", "paired_depthwise", "duplicated_params"]
    )


# ------------------------------------------------------------------------------------------
D2NN_SECONDARY_ERRORS: tuple[str, ...] = ("independent", "none")


class D2NN(nn.Module):
    """D2NN as FT-DeepNets re-implemented it (§4.4, Fig. 8b): ``primary`` and ``secondary`` are
    identical networks, the output is the average of theirs. ``unshared`` maps each duplicated
    layer to a bool vector over its output channels (True = duplicated / unshared); errors are
    tied between the copies through :meth:`fault_ties` (module docstring)."""

    def __init__(
        self,
        primary: nn.Module,
        secondary: nn.Module,
        unshared: dict[str, torch.Tensor],
        ratio: float,
        secondary_errors: str = "independent",
    ) -> None:
        super().__init__()
        if secondary_errors not in D2NN_SECONDARY_ERRORS:
            raise ValueError(f"secondary_errors={secondary_errors!r}: use one of {D2NN_SECONDARY_ERRORS}")
        self.primary = primary
        self.secondary = secondary
        self.ratio = float(ratio)
        self.secondary_errors = secondary_errors
        # cpu-only: host-side plan / masks
        self._unshared = {n: torch.as_tensor(u, dtype=torch.bool).cpu() for n, u in unshared.items()}

    @property
    def unshared(self) -> dict[str, torch.Tensor]:
        """Per duplicated layer, the bool vector of unshared (duplicated) output channels."""
        return dict(self._unshared)

    def fault_ties(self) -> list[FaultTie]:
        """Ties between each ``Conv2d`` / ``Linear`` of the two copies (see :mod:`fatlib.ftd.errors`)."""
        ties = []
        sec = dict(self.secondary.named_modules())
        for name, m in self.primary.named_modules():
            if not isinstance(m, (nn.Conv2d, nn.Linear)):
                continue
            channels = m.out_channels if isinstance(m, nn.Conv2d) else m.out_features
            # cpu-only: host-side plan / masks
            unshared = self._unshared.get(name, torch.zeros(channels, dtype=torch.bool))
            ties.append(
                FaultTie(
                    primary=m, secondary=sec[name], unshared=unshared, secondary_errors=self.secondary_errors
                )
            )
        return ties

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.primary(x) + self.secondary(x)) * 0.5

    def extra_repr(self) -> str:
        dup = sum(int(u.sum()) for u in self._unshared.values())
        total = sum(u.numel() for u in self._unshared.values())
        return (
            f"ratio={self.ratio:g}, unshared_channels={dup}/{total} in "
            f"{len(self._unshared)} layers, secondary_errors={self.secondary_errors!r}"
        )


def d2nn(
    model: nn.Module,
    ratio: float,
    scores: dict[str, torch.Tensor] | None = None,
    secondary_errors: str = "independent",
) -> D2NN:
    """The D2NN baseline of FTD §4.4 (Fig. 8b): two copies of ``model`` whose outputs are
    averaged; the top-``ratio`` channels by ``scores`` (default: weight-sum ranking, as in the
    paper) are unshared and get independent errors in the two copies, all other channels are
    shared and get the same errors. ``model`` is left untouched."""
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if scores is None:
        scores = rank_channels(model, "weight_sum")
    plan = duplication_plan(model, ratio, scores)
    convs = conv_layers(model)
    unshared = {}
    for name, index in plan.items():
        u = torch.zeros(convs[name].out_channels, dtype=torch.bool)  # cpu-only: host-side plan / masks
        u[index] = True
        unshared[name] = u
    return D2NN(copy.deepcopy(model), copy.deepcopy(model), unshared, ratio, secondary_errors)
