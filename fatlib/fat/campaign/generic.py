"""The generic runner: stuck-at campaigns on any fatlib network with activation sites, by running
the model itself.

Other networks
--------------
DoReFa-Net's AlexNet (FAT Table II, Fig. 8; :func:`fatlib.core.models.dorefa_alexnet`: 7 sites,
levels {0, 1/3, 2/3, 1}) runs on a generic runner: exact by construction, because it runs the
model itself rather than a frozen copy. Many faults share one forward pass — (fault, image) rows
are stacked along the batch dimension, bounded by ``memory_budget``, and each row block gets its
fault where the site outputs it; a network whose forward is one ``nn.Sequential`` runs its golden
prefix once per image batch and only the layers after the faulty site per fault. Same fault
space, order, columns, manifest and store as the CNV engine (``engine="generic"`` runs a CNV
through it too; the tests check both against each other and against :func:`naive_campaign`).
It reads a large ImageFolder dataset batch by batch.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from fatlib.core.schemes import CHANNEL
from fatlib.fat.campaign.faults import FaultList, generic_site_table


class GenericGolden:
    """Unfaulted results of one image batch for the generic runner."""

    def __init__(
        self, x: torch.Tensor, labels: torch.Tensor, pred: torch.Tensor, site_out: dict[int, torch.Tensor]
    ) -> None:
        self.x, self.labels, self.pred, self.site_out = x, labels, pred, site_out
        self.correct = pred == labels


def _write_faults(
    h: torch.Tensor, pattern: str, a: torch.Tensor, b: torch.Tensor, values: torch.Tensor
) -> None:
    """In place: row block ``f`` of ``h`` (F×N×site shape) gets fault ``f`` — channel ``a[f]``
    (an FC neuron for F×N×K), or position (``a[f]``, ``b[f]``) of all channels, set to
    ``values[f]``."""
    f = h.shape[0]
    ar = torch.arange(f, device=h.device)
    v = values.to(h.dtype)
    if pattern == CHANNEL:
        h[ar, :, a] = v.view(f, *([1] * (h.dim() - 2)))
    else:
        h[ar, :, :, a, b] = v.view(f, 1, 1)


class GenericRunner:
    """Stuck-at campaigns on any fatlib network with activation sites, by running the model
    itself: nothing is re-implemented, so the numbers are the model's own forward passes.

    Many faults run in one forward pass: the (fault, image) rows are stacked along the batch
    dimension (fault-major) and each row block gets its fault. Networks whose ``forward`` is one
    ``nn.Sequential`` (DoReFa-AlexNet's ``layers``) run the golden prefix once per image batch
    and only the layers after the faulty site per fault; any other network (CNV) runs in full
    with a forward hook on the site that writes each row block's fault."""

    def __init__(self, model: nn.Module, device: torch.device, image_shape: tuple[int, int, int]) -> None:
        from fatlib.core.models import DoReFaAlexNet, activation_sites, output_shapes

        self.model, self.device = model, device
        self.sites = activation_sites(model)
        self.table = generic_site_table(model, image_shape)
        self.site_stage: dict[int, int] = {}
        units = (
            nn.Conv2d,
            nn.Linear,
            nn.BatchNorm1d,
            nn.BatchNorm2d,
            nn.MaxPool2d,
            nn.AdaptiveMaxPool2d,
            nn.Flatten,
        )
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
                rest = list(seq)[pos + 1 :]
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

    def golden(self, x: torch.Tensor, labels: torch.Tensor) -> GenericGolden:
        site_out: dict[int, torch.Tensor] = {}
        handles = []
        if self.suffix:
            for layer, site in enumerate(self.sites):
                handles.append(
                    site.register_forward_hook(
                        lambda mod, i, o, layer=layer: site_out.__setitem__(
                            layer, (o.value if hasattr(o, "value") else o).detach()
                        )
                    )
                )
        try:
            logits = self.model(x)
        finally:
            for h in handles:
                h.remove()
        return GenericGolden(x, labels, logits.argmax(1), site_out)

    def eval_faults(
        self, g: GenericGolden, fl: FaultList, sub: np.ndarray, layer: int, per_image: bool = False
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Correct counts of faults ``sub`` (all of site ``layer``) on one golden batch and, when
        ``per_image``, each fault's outcome per image (len(sub) × images, bool)."""
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
        ok = logits.argmax(1).view(f, n) == g.labels.view(1, n)
        return ok.sum(1).cpu().numpy().astype(np.int64), ok.cpu().numpy() if per_image else None
