"""FAT's error-injection layer (§IV-A, Eq. 1–5, Fig. 4) and its placement in CNV (Fig. 5).

:class:`ErrorInjection` replaces activation sites with quantizer levels during training. With
probability ``p`` a site is replaced; each of the ``K`` levels is used with probability ``p / K``
(Eq. 1 with the thresholds of Eq. 2 read as the text intends — see
``../shared/papers/README.md``). Replaced sites get exactly zero gradient, the rest pass their
gradient unchanged, with no rescaling (Eq. 3, unlike dropout, Eq. 6–7). The random draw is
broadcast according to the error model: one draw per sample and channel (``"channel"``, Eq. 4),
per sample and spatial position (``"pixel"``, Eq. 5), or per element (``"element"``).

:func:`insert_injection` puts one layer right after each activation site of CNV (Fig. 5) as a
forward hook, so the network's ``state_dict`` is unchanged and :func:`remove_injection` restores
the model exactly. :class:`TrainingScheme` switches the layers for FAT method 1 (all enabled),
method 2 (one random layer per epoch, Algorithm 2) and the Dropout2D baseline (§V-D).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import nn

from fatlib.core.schemes import CHANNEL, DROPOUT2D, FAT_M1, FAT_M2, PATTERNS, PIXEL, SAT
from fatlib.core.torch_utils import model_device

__all__ = [
    "ErrorInjection",
    "PATTERNS",
    "insert_injection",
    "insert_dropout",
    "remove_injection",
    "injected",
    "TrainingScheme",
    "injection_layers",
    "site_table",
]

_HOOK_ATTR = "_fatlib_hook"
_LAYER_ATTR = "fat_injection"


def _replaced_index(mask: torch.Tensor, shape: torch.Size) -> tuple[tuple, torch.Tensor]:
    """Index of the replaced sites for ``out[index] = ...``: the draw's non-broadcast dims get the
    positions of ``mask``'s True entries, its broadcast dims (e.g. H×W of the channel pattern, C
    of the pixel pattern) a full slice. Also returns those positions as a tuple for ``value``."""
    hits = mask.nonzero(as_tuple=True)
    index = tuple(slice(None) if m == 1 and s != 1 else h for m, s, h in zip(mask.shape, shape, hits))
    return index, hits


class _Replace(torch.autograd.Function):
    """Forward: replaced sites take their level (Eq. 1). Backward: exactly zero gradient at
    replaced sites, the rest unchanged and unscaled (Eq. 3). ``mask`` and ``value`` have the
    broadcast shape of the draw (e.g. N×C×1×1).

    On the CPU both directions are a copy plus an indexed write of the replaced (sample, channel)
    planes / (sample, position) columns only — about a third of the time of ``torch.where``
    with a broadcast mask, which reads three tensors and writes one (the FAT overhead goal of
    ``benchmarks/fat_overhead.py``). On CUDA, where ``nonzero`` would synchronise the host at
    every site, the same values come from ``torch.where`` / ``masked_fill``."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, mask: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        if x.is_cuda:
            ctx.save_for_backward(mask)
            ctx.index = None
            return torch.where(mask, value, x)
        index, hits = _replaced_index(mask, x.shape)
        n_sliced = sum(isinstance(i, slice) for i in index)
        out = x.clone()
        out[index] = value[hits].view(-1, *([1] * n_sliced))
        ctx.index = index
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        if ctx.index is None:
            (mask,) = ctx.saved_tensors
            return grad.masked_fill(mask, 0.0), None, None
        g = grad.clone()
        g[ctx.index] = 0.0
        return g, None, None


class ErrorInjection(nn.Module):
    """FAT's error-injection layer (§IV-A).

    Args:
        pattern: ``"channel"`` (Eq. 4: one draw per sample and channel, broadcast over H×W),
            ``"pixel"`` (Eq. 5: one draw per sample and position, broadcast over channels) or
            ``"element"``. On 2-D inputs (FC layers, N×F) ``"channel"`` and ``"element"`` mean one
            neuron; ``"pixel"`` needs a 4-D input.
        p: probability in [0, 1] that a site is replaced (a probability, not a percent).
        levels: the K values a replaced site can take, each with probability p / K.
        enabled: when False the layer is exactly the identity (values and gradients). Train /
            eval mode does not switch it; the trainer does.
        generator: optional seeded :class:`torch.Generator` (on the input's device) for
            repeatable draws; fresh randomness is drawn at every forward.
    """

    def __init__(
        self,
        pattern: str,
        p: float,
        levels: Sequence[float] | torch.Tensor,
        enabled: bool = True,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if pattern not in PATTERNS:
            raise ValueError(f"pattern={pattern!r}: use one of {PATTERNS}")
        if not isinstance(p, (int, float)) or not 0.0 <= float(p) <= 1.0:
            raise ValueError(f"p={p!r} must lie in [0, 1] (e.g. 0.05 for the paper's 5 %)")
        lv = torch.as_tensor(levels, dtype=torch.float32).flatten()  # cpu-only: levels checked on the host
        if lv.numel() == 0:
            raise ValueError("levels is empty: give the values a stuck site can take, e.g. (-1.0, 1.0)")
        if not torch.isfinite(lv).all():
            raise ValueError(f"levels must be finite, got {lv.tolist()}")
        self.pattern = pattern
        self.p = float(p)
        self.enabled = bool(enabled)
        self.generator = generator
        self.register_buffer("levels", lv, persistent=False)
        #: the replacement mask of the last forward (broadcast shape), for inspection and plots
        self.last_mask: torch.Tensor | None = None
        self.last_index: torch.Tensor | None = None

    def draw_shape(self, shape: torch.Size) -> tuple[int, ...]:
        """Shape of the random tensor r before broadcasting (Eq. 4–5)."""
        if len(shape) == 2:
            if self.pattern == PIXEL:
                raise ValueError(
                    "pattern 'pixel' needs a 4-D input N×C×H×W; an FC activation (N×F) "
                    "has no pixels — use 'channel' or 'element' there"
                )
            return tuple(shape)
        if len(shape) != 4:
            raise ValueError(f"ErrorInjection takes N×F or N×C×H×W inputs, got shape {tuple(shape)}")
        n, c, h, w = shape
        return {"channel": (n, c, 1, 1), "pixel": (n, 1, h, w), "element": (n, c, h, w)}[self.pattern]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.enabled or self.p == 0.0:
            self.last_mask = None
            return x
        shape = self.draw_shape(x.shape)
        r = torch.rand(shape, device=x.device, generator=self.generator)
        k = self.levels.numel()
        mask = r < self.p
        # Eq. 1 with thresholds p_j = p (j + 1) / K: level j for r in [p j / K, p (j + 1) / K)
        index = torch.clamp((r * (k / self.p)).long(), max=k - 1)
        value = self.levels.to(x.dtype)[index]
        self.last_mask, self.last_index = mask, index
        return _Replace.apply(x, mask, value)

    def extra_repr(self) -> str:
        return (
            f"pattern={self.pattern!r}, p={self.p}, levels={[round(v, 4) for v in self.levels.tolist()]}, "
            f"enabled={self.enabled}"
        )


def _sites_and_levels(model: nn.Module, pattern: str) -> list[tuple[int, nn.Module, torch.Tensor]]:
    from fatlib.core.models import activation_levels, activation_sites, conv_site_count

    sites = activation_sites(model)
    n_conv = conv_site_count(model)
    out = []
    for i, site in enumerate(sites):
        if pattern == PIXEL and i >= n_conv:
            continue  # same-pixel stuck@ exists only where there are pixels (CNV: conv sites 0-5)
        out.append((i, site, activation_levels(site)))
    return out


def _attach(site: nn.Module, layer: nn.Module) -> None:
    if hasattr(site, _HOOK_ATTR):
        raise ValueError(
            "this model already has injection or dropout layers; call "
            "fatlib.fat.injection.remove_injection(model) first"
        )
    # a child module without persistent state: the state_dict is unchanged
    site.add_module(_LAYER_ATTR, layer)
    handle = site.register_forward_hook(lambda mod, inp, out: getattr(mod, _LAYER_ATTR)(out))
    object.__setattr__(site, _HOOK_ATTR, handle)


def insert_injection(
    model: nn.Module,
    pattern: str,
    p: float,
    levels: Sequence[float] | None = None,
    enabled: bool = True,
    generator: torch.Generator | None = None,
) -> list[ErrorInjection]:
    """Put one :class:`ErrorInjection` right after each activation site of CNV (FAT Fig. 5) or
    DoReFa-AlexNet, its levels taken from that site's quantizer. The ``"pixel"`` pattern goes
    after the conv sites only (CNV's six, DoReFa-AlexNet's five: FC activations have no pixels).
    Returns the layers in site order.

    ``levels`` restricts the injected values; each must be a level the site's quantizer can
    output, else :class:`ValueError`."""
    if pattern not in PATTERNS:
        raise ValueError(f"pattern={pattern!r}: use one of {PATTERNS}")
    layers = []
    planned = []
    for i, site, site_levels in _sites_and_levels(model, pattern):
        use = site_levels
        if levels is not None:
            # cpu-only: levels checked on the host
            want = torch.as_tensor(levels, dtype=torch.float32).flatten()
            # cpu-only: levels checked on the host
            bad = [v for v in want.tolist() if not torch.isclose(site_levels, torch.tensor(v)).any()]
            if bad:
                raise ValueError(
                    f"levels {bad} cannot be output by activation site {i}, whose "
                    f"quantizer outputs {site_levels.tolist()}"
                )
            use = want
        planned.append((site, ErrorInjection(pattern, p, use, enabled=enabled, generator=generator)))
    if any(hasattr(site, _HOOK_ATTR) for site, _ in planned):
        raise ValueError(
            "this model already has injection or dropout layers; call "
            "fatlib.fat.injection.remove_injection(model) first"
        )
    dev = model_device(model)
    for site, layer in planned:
        layer.to(dev)
        _attach(site, layer)
        layers.append(layer)
    return layers


def insert_dropout(model: nn.Module, p: float) -> list[nn.Module]:
    """The Dropout2D baseline (FAT §V-D): ``nn.Dropout2d(p)`` after each conv activation site and
    plain ``nn.Dropout(p)`` after each FC site, at the injection layers' places."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p={p!r} must lie in [0, 1]")
    from fatlib.core.models import activation_sites, conv_site_count

    layers: list[nn.Module] = []
    sites = activation_sites(model)
    n_conv = conv_site_count(model)
    if any(hasattr(site, _HOOK_ATTR) for site in sites):
        raise ValueError(
            "this model already has injection or dropout layers; call "
            "fatlib.fat.injection.remove_injection(model) first"
        )
    for i, site in enumerate(sites):
        layer = nn.Dropout2d(p) if i < n_conv else nn.Dropout(p)
        _attach(site, layer)
        layers.append(layer)
    return layers


def injection_layers(model: nn.Module) -> list[nn.Module]:
    """The injection (or dropout) layers currently attached to ``model``, in site order."""
    return [getattr(m, _LAYER_ATTR) for m in model.modules() if hasattr(m, _HOOK_ATTR)]


def remove_injection(model: nn.Module) -> None:
    """Detach every injection / dropout layer: the model is exactly as before insertion."""
    for m in model.modules():
        handle = m.__dict__.pop(_HOOK_ATTR, None)
        if handle is not None:
            handle.remove()
            del m._modules[_LAYER_ATTR]


@contextlib.contextmanager
def injected(
    model: nn.Module,
    pattern: str,
    p: float,
    levels: Sequence[float] | None = None,
    generator: torch.Generator | None = None,
) -> Iterator[list[ErrorInjection]]:
    """Context manager: injection layers inside, the unmodified model after (even on error)."""
    layers = insert_injection(model, pattern, p, levels=levels, generator=generator)
    try:
        yield layers
    finally:
        remove_injection(model)


class TrainingScheme:
    """How the trainer switches injection / dropout layers (FAT §IV-C, §V-D).

    * ``sat``: no layers.
    * ``fat-m1`` (method 1): every injection layer enabled with a fixed p.
    * ``fat-m2`` (method 2, Algorithm 2): each epoch exactly one injection layer, drawn at random,
      is enabled and the rest disabled.
    * ``dropout2d``: ``Dropout2d`` / ``Dropout`` at the same sites, trained like method 1.

    Injection is off while evaluating (:meth:`on_eval`)."""

    def __init__(self, scheme: str, layers: list[nn.Module]) -> None:
        self.scheme = scheme
        self.layers = layers
        #: index of the layer method 2 enabled this epoch (None for the other schemes)
        self.active_site: int | None = None

    @classmethod
    def attach(cls, model: nn.Module, config: Any) -> TrainingScheme:
        """Insert the layers ``config.scheme`` needs into ``model``."""
        if config.scheme == SAT:
            return cls(SAT, [])
        if config.scheme == DROPOUT2D:
            return cls(DROPOUT2D, insert_dropout(model, config.p))
        return cls(config.scheme, insert_injection(model, config.pattern, config.p, enabled=False))

    def on_epoch(self, epoch: int, generator: torch.Generator, active_site: int | None = None) -> None:
        """Enable the layers for this epoch. ``active_site`` resumes an epoch whose method-2 draw
        was already made (training restarted from its resume state): no new draw."""
        if self.scheme == FAT_M1:
            for layer in self.layers:
                layer.enabled = True
        elif self.scheme == FAT_M2:
            if active_site is None:
                # cpu-only: levels checked on the host
                active_site = int(torch.randint(len(self.layers), (1,), generator=generator))
            self.active_site = active_site
            for i, layer in enumerate(self.layers):
                layer.enabled = i == self.active_site
        elif self.scheme == DROPOUT2D:
            for layer in self.layers:
                layer.train()

    def on_eval(self) -> None:
        """Turn injection off (dropout is off in eval mode anyway)."""
        for layer in self.layers:
            if isinstance(layer, ErrorInjection):
                layer.enabled = False

    def export(self, model: nn.Module) -> nn.Module:
        """The deployed network: the layers removed (its state_dict never contained them)."""
        remove_injection(model)
        return model

    def __repr__(self) -> str:
        return f"TrainingScheme(scheme={self.scheme!r}, layers={len(self.layers)})"


@torch.no_grad()
def site_table(model: nn.Module, pattern: str = CHANNEL, input_size: int = 32):
    """CNV's layers in order with their output shapes, and an injection layer after every
    activation site that ``pattern`` injects at — FAT Fig. 5 read from the model itself.

    Returns a DataFrame with ``kind`` (input, conv, bn, act, inject, pool, fc, norm), ``label``,
    ``shape`` (C×H×W or F) and ``site`` (0–7 for activation sites and their injection layers)."""
    import pandas as pd
    from brevitas.nn import QuantConv2d, QuantIdentity, QuantLinear

    from fatlib.core.models import TensorNorm, activation_levels, activation_sites, output_shapes

    sites = activation_sites(model)
    injected = {id(site) for _, site, _ in _sites_and_levels(model, pattern)}
    modules = list(model.conv_features) + list(model.linear_features)
    shapes = output_shapes(model, modules, input_size)
    rows = []
    for m in modules:
        shape = "×".join(str(s) for s in shapes.get(id(m), ()))
        if isinstance(m, QuantIdentity) and m is model.conv_features[0]:
            rows.append({"kind": "input", "label": "input quant (8 bit)", "shape": shape, "site": None})
        elif isinstance(m, QuantIdentity):
            i = next(k for k, s in enumerate(sites) if s is m)
            levels = activation_levels(m)
            rows.append(
                {
                    "kind": "act",
                    "label": f"act A{model.act_bits} ({levels.numel()} levels)",
                    "shape": shape,
                    "site": i,
                }
            )
            if id(m) in injected:
                rows.append({"kind": "inject", "label": f"injection #{i}", "shape": shape, "site": i})
        elif isinstance(m, QuantConv2d):
            rows.append(
                {"kind": "conv", "label": f"conv 3×3 W{model.weight_bits}", "shape": shape, "site": None}
            )
        elif isinstance(m, QuantLinear):
            rows.append({"kind": "fc", "label": f"FC W{model.weight_bits}", "shape": shape, "site": None})
        elif isinstance(m, nn.MaxPool2d):
            rows.append({"kind": "pool", "label": "max-pool 2×2", "shape": shape, "site": None})
        elif isinstance(m, TensorNorm):
            rows.append({"kind": "norm", "label": "TensorNorm", "shape": shape, "site": None})
        else:
            rows.append({"kind": "bn", "label": "BatchNorm", "shape": shape, "site": None})
    return pd.DataFrame(rows).astype({"site": "Int64"})
