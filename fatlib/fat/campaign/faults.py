"""Fault lists: the fault space of FAT Algorithm 1 (channel stuck@) and of the same-pixel model
(Table IV), in canonical order.

What a fault is
---------------
A fault ``(layer, channel, value)`` (pattern ``"channel"``) or ``(layer, row, col, value)``
(pattern ``"pixel"``) replaces the **output** of activation site ``layer`` (the quantizer numbered
0–7 by :func:`fatlib.core.models.activation_sites`; after the quantizer and *before* the max-pool of
layers 1 and 3) for every image: a whole channel (all spatial positions; for the FC sites 6 and 7
one neuron), or one position across all channels. ``value`` is one of the levels the site's
quantizer can output (:func:`fatlib.core.models.activation_levels`). The pixel pattern exists only
where there are pixels: sites 0–5 (conv); the FC sites 6, 7 have no spatial position, are skipped
by default and refused when asked for (a "pixel" of an FC layer would be the whole layer). Site 5
(a 1×1 map in CNV) is skipped by default for the same reason — its one pixel is the whole layer,
which leaves the output constant; the paper's Table IV minima (≥ 64.93 %) exclude it — but runs
when asked for by number.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from fatlib.core.schemes import CHANNEL, PIXEL
from fatlib.core.torch_utils import eval_mode
from fatlib.fat.campaign.data import prepare_model, unit_codes
from fatlib.fat.campaign.engine import Engine

#: the fault patterns of a campaign (FAT Fig. 2): channel stuck@ and same-pixel stuck@
PATTERNS = (CHANNEL, PIXEL)


@dataclass
class FaultList:
    """A campaign's faults in canonical order (parallel int / float arrays)."""

    pattern: str
    layer: np.ndarray
    a: np.ndarray  # channel, or row
    b: np.ndarray  # col (-1 for channel faults)
    code: np.ndarray
    value: np.ndarray
    index: np.ndarray  # position in the full population

    def __len__(self) -> int:
        return int(self.layer.shape[0])

    def take(self, idx: np.ndarray) -> FaultList:
        return FaultList(
            self.pattern,
            self.layer[idx],
            self.a[idx],
            self.b[idx],
            self.code[idx],
            self.value[idx],
            self.index[idx],
        )

    def key_frame(self) -> pd.DataFrame:
        cols = {"layer": self.layer.astype(np.int64)}
        if self.pattern == CHANNEL:
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


def site_table(eng: Engine) -> list[dict]:
    """Per activation site of the fast engine: ``layer``, output ``shape``, ``levels`` and their
    integer ``codes``."""
    out = []
    for layer in range(len(eng.sites)):
        st = eng.stages[eng.site_stage[layer]]
        out.append(
            {
                "layer": layer,
                "shape": st.out_shape,
                "levels": st.levels.tolist(),
                "codes": st.codes.long().tolist(),
            }
        )
    return out


def _default_image_shape(model: nn.Module) -> tuple[int, int, int]:
    from fatlib.core.models import DoReFaAlexNet

    size = 224 if isinstance(model, DoReFaAlexNet) else 32
    return (int(getattr(model, "in_channels", 3)), size, size)


def generic_site_table(model: nn.Module, image_shape: tuple[int, int, int]) -> list[dict]:
    """The site table of :func:`site_table` read from the model itself (any fatlib network with
    activation sites): output shape of each site for ``image_shape``, its levels and their
    integer codes (level / smallest step; the level's index when the levels are not one
    scale's multiples). The model must be in eval mode."""
    from fatlib.core.models import activation_levels, activation_sites, output_shapes

    sites = activation_sites(model)
    shapes = output_shapes(model, sites, image_shape=tuple(image_shape))
    out = []
    for layer, site in enumerate(sites):
        levels = activation_levels(site).float()
        try:
            _, codes = unit_codes(levels, f"levels of activation site {layer}")
        except ValueError:
            codes = torch.arange(levels.numel(), dtype=torch.float32)  # cpu-only: fault list bookkeeping
        out.append(
            {
                "layer": layer,
                "shape": shapes[id(site)],
                "levels": levels.tolist(),
                "codes": codes.long().tolist(),
            }
        )
    return out


def check_pattern(pattern: str) -> None:
    """Refuse (ValueError) a pattern that is not one of :data:`PATTERNS`."""
    if pattern not in PATTERNS:
        raise ValueError(
            f"pattern={pattern!r}: use one of {PATTERNS} (FAT Fig. 2: channel stuck@ "
            "or same pixel in all channels stuck@)"
        )


def resolve_layers(
    sites: list[dict], pattern: str, layers: Sequence[int] | None, explicit_faults: bool = False
) -> list[int]:
    """The sites a campaign covers: ``layers`` checked against the pattern, or the default."""
    allowed = [s["layer"] for s in sites if pattern == CHANNEL or len(s["shape"]) == 3]
    fc_sites = [s["layer"] for s in sites if len(s["shape"]) != 3]
    if layers is None and explicit_faults:
        return allowed  # explicit faults may name any site that has the pattern
    if layers is None:
        # A 1×1 map has one position: its "pixel" is the whole layer stuck, which makes the
        # network's output constant (chance accuracy) — not the same-pixel model of Table IV,
        # whose minima (≥ 64.93 %) rule it out. Asked for by number, it still runs.
        return [
            L for L in allowed if pattern == CHANNEL or int(np.prod(sites[L]["shape"][1:])) > 1
        ] or allowed
    if isinstance(layers, (int, np.integer)):
        layers = [int(layers)]
    out = []
    for L in layers:
        if isinstance(L, bool) or not isinstance(L, (int, np.integer)):
            raise ValueError(f"layers must be integers, got {L!r}")
        L = int(L)
        if L not in allowed:
            why = (
                " (the pixel pattern needs a spatial site: FC sites "
                f"{', '.join(map(str, fc_sites))} have no pixels)"
                if pattern == PIXEL and 0 <= L < len(sites)
                else ""
            )
            raise ValueError(f"layer {L} is not available for pattern {pattern!r}{why}; allowed: {allowed}")
        out.append(L)
    if not out:
        raise ValueError(f"layers is empty; allowed: {allowed}")
    return sorted(set(out))


def resolve_levels(
    sites: list[dict], layers: list[int], levels: Sequence[float] | None
) -> dict[int, list[tuple[int, float]]]:
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
                raise ValueError(
                    f"stuck-at value {v} is not a level of layer {L}'s quantizer; "
                    f"allowed: {[round(x, 6) for x in lv]}"
                )
            chosen[cd[i]] = lv[i]
        out[L] = sorted(chosen.items())
    return out


def population(
    sites: list[dict], pattern: str, layers: list[int], lv: dict[int, list[tuple[int, float]]]
) -> FaultList:
    """Every fault of ``layers`` at the levels ``lv``, in canonical order."""
    parts = []
    for L in layers:
        shape = sites[L]["shape"]
        codes = np.array([c for c, _ in lv[L]], dtype=np.int64)
        values = np.array([v for _, v in lv[L]], dtype=np.float64)
        k = len(codes)
        if pattern == CHANNEL:
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
    return FaultList(pattern, *cat, index=np.arange(cat[0].shape[0], dtype=np.int64))


def named_faults(pop: FaultList, faults: Any) -> FaultList:
    """The population entries named by ``faults`` (DataFrame or sequence of tuples)."""
    keys = ["layer", "channel", "value"] if pop.pattern == CHANNEL else ["layer", "row", "col", "value"]
    if isinstance(faults, pd.DataFrame):
        missing = [k for k in keys if k not in faults.columns]
        if missing:
            raise ValueError(f"faults lacks columns {missing}; needs {keys}")
        tuples = list(faults[keys].itertuples(index=False, name=None))
    else:
        tuples = [tuple(t) for t in faults]
    lookup = {}
    for i in range(len(pop)):
        k = (int(pop.layer[i]), int(pop.a[i])) + (() if pop.pattern == CHANNEL else (int(pop.b[i]),))
        lookup.setdefault(k, []).append((float(pop.value[i]), i))
    idx = []
    for t in tuples:
        if len(t) != len(keys):
            raise ValueError(f"fault {t!r}: expected ({', '.join(keys)})")
        k = tuple(int(x) for x in t[:-1])
        cands = lookup.get(k)
        if not cands:
            raise ValueError(
                f"fault {t!r} is outside the fault space of pattern {pop.pattern!r} "
                "(layer, channel / position, or level not selected)"
            )
        v = float(t[-1])
        best = min(cands, key=lambda c: abs(c[0] - v))
        if abs(best[0] - v) > 1e-3:
            raise ValueError(
                f"fault {t!r}: value {v} is not a level of layer {k[0]}; allowed: "
                f"{sorted(c[0] for c in cands)}"
            )
        idx.append(best[1])
    idx = np.array(sorted(set(idx)), dtype=np.int64)
    if len(idx) != len(tuples):
        raise ValueError("faults contains duplicates")
    return pop.take(idx)


def default_layers(
    model: nn.Module, pattern: str = CHANNEL, image_shape: tuple[int, int, int] | None = None
) -> list[int]:
    """The activation sites a campaign with ``layers=None`` covers (FAT Algorithm 1): every site
    for ``"channel"``; for ``"pixel"`` (Table IV) the conv sites whose map has more than one
    position (see the module docstring)."""
    check_pattern(pattern)
    model, _ = prepare_model(model, None)
    with eval_mode(model), torch.no_grad():
        sites = generic_site_table(model, image_shape or _default_image_shape(model))
    return resolve_layers(sites, pattern, None)


def enumerate_faults(
    model: nn.Module,
    pattern: str = CHANNEL,
    levels: Sequence[float] | None = None,
    layers: Sequence[int] | None = None,
    image_shape: tuple[int, int, int] | None = None,
) -> pd.DataFrame:
    """The fault space of FAT Algorithm 1 in canonical order: every (layer, channel, value) —
    or (layer, row, col, value) for the same-pixel pattern (Table IV) — with the default of every
    level of every site's quantizer. Its length is the population size for :func:`estimate`.
    ``image_shape`` (C, H, W) sets the pixel positions; default 32×32 for CNV, 224×224 for
    DoReFa-AlexNet."""
    check_pattern(pattern)
    model, _ = prepare_model(model, None)
    with eval_mode(model), torch.no_grad():
        sites = generic_site_table(model, image_shape or _default_image_shape(model))
    lays = resolve_layers(sites, pattern, layers)
    return population(sites, pattern, lays, resolve_levels(sites, lays, levels)).key_frame()
