"""Transient errors in kernels (weights) and feature maps — FT-DeepNets §2.2–2.3.

:func:`transient_errors` is a context manager. Inside it, every weight of the selected
``Conv2d`` / ``Linear`` layers and every element of their output feature maps is independently
replaced, with probability ``weight_rate`` resp. ``fmap_rate``, by an error of ``kind``:

* ``"zero"`` — the value becomes 0 (the paper's error model, §2.2 and §4),
* ``"random"`` — a value drawn uniformly from the ``[min, max]`` range of the clean tensor,
* ``"bitflip"`` — one uniformly chosen bit of the value's float word is flipped.

Errors are *transient*: fresh positions are drawn at every forward call of a layer.
``permanent=True`` draws the weight errors once on entry and the feature-map errors once per
feature-map shape (at the first forward; one ``C×H×W`` mask shared by every image of the batch).

How the model stays clean
-------------------------
Parameters are never written to. A forward pre-hook on each layer builds the faulty weight and
*shadows* the parameter for the duration of that call by putting the faulty tensor in the
module's instance ``__dict__`` (``module.weight`` then resolves to it, while
``module._parameters`` — hence ``state_dict``, ``parameters()`` and optimizers — still hold the
untouched parameter); a forward hook registered with ``always_call=True`` removes the shadow, and
leaving the context removes every hook and any shadow left behind, also when an exception is
raised. Feature-map errors are applied by a forward hook to the layer's output. Draws come from a
``torch.Generator`` on the tensor's device seeded with ``seed``, so a run is repeatable.

Composite layers (duplicated kernels, :mod:`fatlib.ftd.duplication`)
--------------------------------------------------------------------
A module that holds several copies of one layer implements ``fault_targets()`` and returns a
:class:`FaultTargets`: the ``Conv2d`` children whose ``weight`` it reads (each copy gets its own,
independent weight errors, swapped in by a pre-hook on the composite) and the modules whose
outputs are feature maps (each gets its own, independent feature-map errors). Such a composite is
one *site* for ``layers=`` (addressed by its own name); the convolutions inside it are not
separate sites. Kernel recovery (KR) lists its two convolutions as weights and itself as the one
feature map (one map is computed from the averaged kernel); feature-map recovery (FMR) lists its
two convolutions for both (two maps are computed, then averaged).

Tied errors (D2NN, §4.4)
------------------------
A module may also implement ``fault_ties()`` returning :class:`FaultTie` objects: the secondary
copy of a layer then receives *the same* errors (positions and drawn values) as its primary
copy in the output channels that the two networks share, and independent ones (or none) in the
duplicated, unshared channels. The primary copy must run first in each forward.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import pandas as pd
import torch
from torch import nn

__all__ = [
    "ERROR_KINDS",
    "ErrorInjector",
    "ErrorStats",
    "FaultTargets",
    "FaultTie",
    "CompositeLayer",
    "transient_errors",
    "error_sites",
    "apply_error",
]

#: the error kinds of §2.2 (the paper evaluates only ``"zero"``).
ERROR_KINDS: tuple[str, ...] = ("zero", "random", "bitflip")

_INT_VIEW = {2: torch.int16, 4: torch.int32, 8: torch.int64}


@dataclass(frozen=True)
class FaultTargets:
    """What a composite layer exposes to :func:`transient_errors`: the modules whose ``.weight``
    it reads (corrupted independently), and the modules whose outputs are feature maps."""

    weights: tuple[nn.Module, ...]
    fmaps: tuple[nn.Module, ...]


@runtime_checkable
class CompositeLayer(Protocol):
    """A module that holds several copies of a layer (see the module docstring)."""

    def fault_targets(self) -> FaultTargets: ...


@dataclass(frozen=True)
class FaultTie:
    """Tie the errors of ``secondary`` to those of ``primary`` (D2NN, FTD §4.4).

    ``unshared`` is a bool vector over output channels: ``False`` channels are shared (same errors
    as the primary copy), ``True`` channels are duplicated; ``secondary_errors`` says whether the
    secondary copy's duplicated channels get independent errors (``"independent"``) or none
    (``"none"``)."""

    primary: nn.Module
    secondary: nn.Module
    unshared: torch.Tensor
    secondary_errors: str = "independent"


@dataclass(frozen=True)
class ErrorStats:
    """Counts of replaced values and of values exposed to errors, since entry or the last reset."""

    weights_replaced: int
    weights_seen: int
    fmap_replaced: int
    fmap_seen: int

    @property
    def weight_error_rate(self) -> float:
        """Realised fraction of replaced weights (NaN when none were seen)."""
        return self.weights_replaced / self.weights_seen if self.weights_seen else float("nan")

    @property
    def fmap_error_rate(self) -> float:
        """Realised fraction of replaced feature-map elements (NaN when none were seen)."""
        return self.fmap_replaced / self.fmap_seen if self.fmap_seen else float("nan")


@dataclass
class _Draw:
    mask: torch.Tensor
    aux: torch.Tensor | None  # uniform [0, 1) for "random", bit index for "bitflip"


@dataclass
class _Site:
    name: str
    module: nn.Module  # the module whose forward pre-/post-hooks swap the weights
    weights: tuple[nn.Module, ...]
    fmaps: tuple[nn.Module, ...]


@dataclass
class _Counter:
    w_rep: torch.Tensor | int = 0
    w_seen: int = 0
    f_rep: torch.Tensor | int = 0
    f_seen: int = 0


def _is_layer(m: nn.Module) -> bool:
    return isinstance(m, (nn.Conv2d, nn.Linear))


def _is_composite(m: nn.Module) -> bool:
    return isinstance(m, CompositeLayer)


def _sites(model: nn.Module) -> list[_Site]:
    """Error sites in registration order: composites, and Conv2d / Linear outside composites."""
    sites: list[_Site] = []
    inside: set[int] = set()
    for name, m in model.named_modules():
        if id(m) in inside:
            continue
        if _is_composite(m):
            t = m.fault_targets()
            sites.append(_Site(name, m, tuple(t.weights), tuple(t.fmaps)))
            inside.update(id(s) for s in m.modules())
        elif _is_layer(m):
            sites.append(_Site(name, m, (m,), (m,)))
    return sites


def error_sites(model: nn.Module, include_linear: bool = True) -> list[str]:
    """Names that :func:`transient_errors` accepts in ``layers=`` (FTD §2.3): every ``Conv2d``
    (and ``Linear`` when ``include_linear``) and every duplicated composite layer, in registration
    order. ``include_linear=False`` gives the feature-extraction layers the paper injects (§4.1)."""
    out = []
    for s in _sites(model):
        if not include_linear and isinstance(s.module, nn.Linear):
            continue
        out.append(s.name)
    return out


def apply_error(
    t: torch.Tensor, mask: torch.Tensor, kind: str, aux: torch.Tensor | None = None, inplace: bool = False
) -> torch.Tensor:
    """Replace the elements of ``t`` where ``mask`` is true by an error of ``kind`` (FTD §2.2).

    ``aux`` (broadcastable to ``t``) carries the random part: for ``"random"`` a uniform [0, 1)
    number mapped onto ``[t.min(), t.max()]``; for ``"bitflip"`` the index of the bit to flip
    (0 = least significant bit of the float word), taken modulo the word size."""
    if kind == "zero":
        return t.masked_fill_(mask, 0) if inplace else t.masked_fill(mask, 0)
    if kind == "random":
        if aux is None:
            raise ValueError("kind='random' needs aux (uniform [0, 1) numbers)")
        lo, hi = torch.aminmax(t.detach())
        values = (lo + aux * (hi - lo)).to(t.dtype)
        if inplace:
            return t.copy_(torch.where(mask, values, t))
        return torch.where(mask, values, t)
    if kind == "bitflip":
        if aux is None:
            raise ValueError("kind='bitflip' needs aux (bit indices)")
        int_dtype = _INT_VIEW.get(t.element_size())
        if int_dtype is None or not t.is_floating_point():
            raise ValueError(f"bitflip needs a 16/32/64-bit float tensor, got {t.dtype}")
        words = t.detach().contiguous().view(int_dtype)
        one = torch.ones((), dtype=int_dtype, device=t.device)
        nbits = 8 * t.element_size()
        flips = torch.bitwise_left_shift(one, aux.to(int_dtype) % nbits)
        flipped = torch.where(mask, torch.bitwise_xor(words, flips), words).view(t.dtype)
        if inplace:
            return t.copy_(flipped)
        return flipped
    raise ValueError(f"unknown error kind {kind!r}: use one of {ERROR_KINDS}")


class ErrorInjector:
    """The object :func:`transient_errors` returns; use it as a context manager.

    ``.stats`` (an :class:`ErrorStats`) and :meth:`layer_stats` count replaced and exposed values,
    so the realised error rate can be checked; :meth:`reset_stats` zeroes them."""

    def __init__(
        self,
        model: nn.Module,
        weight_rate: float,
        fmap_rate: float,
        kind: str,
        layers: list[str] | None,
        seed: int | None,
        permanent: bool,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        for label, rate in (("weight_rate", weight_rate), ("fmap_rate", fmap_rate)):
            if not isinstance(rate, (int, float)) or not 0.0 <= float(rate) <= 1.0:
                raise ValueError(f"{label}={rate!r}: use a probability in [0, 1]")
        if kind not in ERROR_KINDS:
            raise ValueError(f"unknown error kind {kind!r}: use one of {ERROR_KINDS}")
        sites = _sites(model)
        if not sites:
            raise ValueError(
                f"{type(model).__name__} has no Conv2d / Linear layer (nor a "
                "duplicated layer) to inject errors into"
            )
        if layers is not None:
            if isinstance(layers, str):
                raise ValueError("layers must be a list of module names, not a string")
            by_name = {s.name: s for s in sites}
            unknown = [n for n in layers if n not in by_name]
            if unknown:
                allowed = list(by_name)
                shown = ", ".join(allowed[:8]) + (", ..." if len(allowed) > 8 else "")
                raise ValueError(
                    f"unknown layer(s) {unknown}: use names of Conv2d / Linear / "
                    f"duplicated layers, e.g. {shown} (see fatlib.ftd.errors.error_sites)"
                )
            wanted = set(layers)
            sites = [s for s in sites if s.name in wanted]
        for s in sites:
            for owner in s.weights:
                if isinstance(getattr(type(owner), "weight", None), property):
                    raise ValueError(
                        f"layer {s.name!r}: parametrized weights are not supported; "
                        "remove the parametrization first"
                    )
        self.model = model
        self.weight_rate = float(weight_rate)
        self.fmap_rate = float(fmap_rate)
        self.kind = kind
        self.seed = seed
        self.permanent = permanent
        self._sites = sites
        self._ties: dict[int, FaultTie] = {}
        self._tie_primaries: set[int] = set()
        site_modules = {id(m) for s in sites for m in (*s.weights, *s.fmaps)}
        for m in model.modules():
            if callable(getattr(m, "fault_ties", None)):
                for tie in m.fault_ties():
                    if tie.secondary_errors not in ("independent", "none"):
                        raise ValueError(
                            f"FaultTie.secondary_errors={tie.secondary_errors!r}: use 'independent' or 'none'"
                        )
                    p, s = id(tie.primary) in site_modules, id(tie.secondary) in site_modules
                    if p != s:
                        raise ValueError(
                            "tied layers (D2NN primary / secondary copies) must be "
                            "selected together in layers="
                        )
                    if p:
                        self._ties[id(tie.secondary)] = tie
                        self._tie_primaries.add(id(tie.primary))
        self._handles: list[torch.utils.hooks.RemovableHandle] = []
        self._shadowed: dict[int, nn.Module] = {}
        self._generators: dict[torch.device, torch.Generator] = {}
        self._permanent_draws: dict[tuple, _Draw] = {}
        self._last: dict[tuple, _Draw] = {}
        self._counters: dict[str, _Counter] = {s.name: _Counter() for s in sites}
        self._tie_masks: dict[tuple, torch.Tensor] = {}
        self._active = False

    # ----------------------------------------------------------------------------------------
    def __repr__(self) -> str:
        return (
            f"ErrorInjector(weight_rate={self.weight_rate}, fmap_rate={self.fmap_rate}, "
            f"kind={self.kind!r}, layers={len(self._sites)}, seed={self.seed}, "
            f"permanent={self.permanent}, active={self._active})"
        )

    @property
    def layers(self) -> list[str]:
        """Names of the layers errors are injected into."""
        return [s.name for s in self._sites]

    @property
    def stats(self) -> ErrorStats:
        """Totals over all layers (see :class:`ErrorStats`)."""
        c = [self._count(n) for n in self._counters]
        return ErrorStats(
            sum(x[0] for x in c), sum(x[1] for x in c), sum(x[2] for x in c), sum(x[3] for x in c)
        )

    def layer_stats(self) -> pd.DataFrame:
        """One row per layer: replaced / seen weights and feature-map elements, realised rates."""
        rows = []
        for name in self._counters:
            wr, ws, fr, fs = self._count(name)
            rows.append(
                {
                    "layer": name,
                    "weights_replaced": wr,
                    "weights_seen": ws,
                    "weight_error_rate": wr / ws if ws else float("nan"),
                    "fmap_replaced": fr,
                    "fmap_seen": fs,
                    "fmap_error_rate": fr / fs if fs else float("nan"),
                }
            )
        return pd.DataFrame(rows)

    def reset_stats(self) -> None:
        """Zero every counter."""
        self._counters = {n: _Counter() for n in self._counters}

    def _count(self, name: str) -> tuple[int, int, int, int]:
        c = self._counters[name]
        return int(c.w_rep), c.w_seen, int(c.f_rep), c.f_seen

    # ----------------------------------------------------------------------------------------
    def __enter__(self) -> ErrorInjector:
        if self._active:
            raise RuntimeError("this ErrorInjector is already active")
        self._active = True
        try:
            self._generators.clear()
            self._permanent_draws.clear()
            self._last.clear()
            for site in self._sites:
                if self.permanent and self.weight_rate > 0:
                    for owner in site.weights:  # draw once, on entry
                        w = owner._parameters["weight"]
                        self._draw(owner, "weight", tuple(w.shape), w.device, 0)
                self._handles.append(site.module.register_forward_pre_hook(self._make_pre(site)))
                self._handles.append(
                    site.module.register_forward_hook(self._make_restore(site), always_call=True)
                )
                for fm in site.fmaps:
                    self._handles.append(fm.register_forward_hook(self._make_fmap(site)))
        except BaseException:
            self._cleanup()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self._cleanup()

    def _cleanup(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()
        for owner in self._shadowed.values():
            owner.__dict__.pop("weight", None)
        self._shadowed.clear()
        self._last.clear()
        self._permanent_draws.clear()
        self._tie_masks.clear()
        self._active = False

    # ----------------------------------------------------------------------------------------
    def _generator(self, device: torch.device) -> torch.Generator:
        g = self._generators.get(device)
        if g is None:
            g = torch.Generator(device=device)
            if self.seed is None:
                g.seed()
            else:
                g.manual_seed(int(self.seed))
            self._generators[device] = g
        return g

    def _fresh(self, shape: tuple[int, ...], device: torch.device, rate: float) -> _Draw:
        g = self._generator(device)
        mask = torch.rand(shape, generator=g, device=device) < rate
        aux = None
        if self.kind == "random":
            aux = torch.rand(shape, generator=g, device=device)
        elif self.kind == "bitflip":
            # 0..255 is uniform modulo 16, 32 and 64: one draw serves every float width
            aux = torch.randint(0, 256, shape, generator=g, device=device, dtype=torch.uint8)
        return _Draw(mask, aux)

    def _unshared(
        self, tie: FaultTie, shape: tuple[int, ...], channel_dim: int, device: torch.device
    ) -> torch.Tensor:
        key = (id(tie.secondary), len(shape), channel_dim, device)
        m = self._tie_masks.get(key)
        if m is None:
            view = [1] * len(shape)
            view[channel_dim] = -1
            m = tie.unshared.to(device=device, dtype=torch.bool).view(view)
            self._tie_masks[key] = m
        return m

    def _draw(
        self, module: nn.Module, role: str, shape: tuple[int, ...], device: torch.device, channel_dim: int
    ) -> _Draw:
        """Error positions (and random parts) for one tensor of ``module`` (role: weight/fmap)."""
        key = (id(module), role, shape)
        if self.permanent and key in self._permanent_draws:
            return self._permanent_draws[key]
        rate = self.weight_rate if role == "weight" else self.fmap_rate
        d = self._fresh(shape, device, rate)
        tie = self._ties.get(id(module))
        if tie is not None:
            partner = self._last.get((id(tie.primary), role, shape))
            if partner is None:
                raise RuntimeError(
                    "D2NN tie: the primary copy of a layer must run before its "
                    "secondary copy in every forward"
                )
            unshared = self._unshared(tie, shape, channel_dim, device)
            own_mask = d.mask if tie.secondary_errors == "independent" else torch.zeros_like(d.mask)
            mask = torch.where(unshared, own_mask, partner.mask)
            aux = None if d.aux is None else torch.where(unshared, d.aux, partner.aux)
            d = _Draw(mask, aux)
        if id(module) in self._tie_primaries:
            self._last[(id(module), role, shape)] = d
        if self.permanent:
            self._permanent_draws[key] = d
        return d

    def _make_pre(self, site: _Site):
        def pre_hook(module: nn.Module, args) -> None:
            counter = self._counters[site.name]
            for owner in site.weights:
                w = owner._parameters["weight"]
                counter.w_seen += w.numel()
                if self.weight_rate == 0.0:
                    continue
                d = self._draw(owner, "weight", tuple(w.shape), w.device, 0)
                counter.w_rep = counter.w_rep + d.mask.sum()
                faulty = apply_error(w, d.mask, self.kind, d.aux)
                owner.__dict__["weight"] = faulty  # shadows the parameter for this call
                self._shadowed[id(owner)] = owner

        return pre_hook

    def _make_restore(self, site: _Site):
        def restore_hook(module: nn.Module, args, output) -> None:
            for owner in site.weights:
                owner.__dict__.pop("weight", None)
                self._shadowed.pop(id(owner), None)

        return restore_hook

    def _make_fmap(self, site: _Site):
        def fmap_hook(module: nn.Module, args, output):
            if not isinstance(output, torch.Tensor):
                return None
            counter = self._counters[site.name]
            counter.f_seen += output.numel()
            if self.fmap_rate == 0.0:
                return None
            if self.permanent:  # one mask per C×H×W position, shared by the batch
                shape, channel_dim, batch = tuple(output.shape[1:]), 0, output.shape[0]
            else:
                shape, channel_dim, batch = tuple(output.shape), 1, 1
            d = self._draw(module, "fmap", shape, output.device, channel_dim)
            counter.f_rep = counter.f_rep + d.mask.sum() * batch
            inplace = not (torch.is_grad_enabled() and output.requires_grad)
            return apply_error(output, d.mask, self.kind, d.aux, inplace=inplace)

        return fmap_hook


def transient_errors(
    model: nn.Module,
    weight_rate: float = 0.0,
    fmap_rate: float = 0.0,
    kind: str = "zero",
    layers: list[str] | None = None,
    seed: int | None = None,
    permanent: bool = False,
) -> ErrorInjector:
    """Inject kernel and feature-map errors into ``model`` inside a ``with`` block (FTD §2.2–2.3).

    Each weight of the selected layers (default: every ``Conv2d``, ``Linear`` and duplicated
    layer, see :func:`error_sites`) is replaced with probability ``weight_rate``, and each element
    of their output feature maps with probability ``fmap_rate``, by an error of ``kind``
    (``"zero"``, ``"random"`` or ``"bitflip"``). Fresh errors are drawn at every forward call;
    ``permanent=True`` reuses one draw. ``seed`` seeds a generator on the model's device.
    On exit the model is exactly as before. Duplicated copies of a kernel get independent errors
    (see the module docstring). Returns an :class:`ErrorInjector` whose ``.stats`` count the
    realised errors::

        with transient_errors(model, weight_rate=0.01, fmap_rate=0.01, seed=0) as inj:
            logits = model(images)
        inj.stats.weight_error_rate
    """
    return ErrorInjector(model, weight_rate, fmap_rate, kind, layers, seed, permanent)
