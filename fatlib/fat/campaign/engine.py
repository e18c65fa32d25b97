"""The fast engine of :func:`~fatlib.fat.campaign.run.stuck_at_campaign`: CNV frozen into
integer tensors (FAT Algorithm 1, computed exactly).

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
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fatlib.core.torch_utils import eval_mode, model_device
from fatlib.fat.campaign.data import is_pow2, unit_codes

#: output maps with at least this many pixels get one delta convolution per fault
_LOOP_MIN_PIXELS = 64
#: rows are dropped from the stacked batch when at most this fraction still differs
_PRUNE_FRACTION = 0.9


@dataclass
class _Stage:
    """One conv / FC layer of CNV, its BN + activation quantizer (site) and optional max-pool.

    Integer mode keeps ``z = conv(x, weight) + bias`` where ``weight`` holds the integer weight
    codes with each output channel's sign flipped so that the site's output code is a
    non-decreasing function of ``z`` (``bias`` folds a single threshold in, A1)."""

    kind: str  # "conv" or "fc"
    weight: torch.Tensor  # integer codes (direction-folded), float32
    weight_f: torch.Tensor | None = None  # the quantized weights as brevitas uses them
    bias: torch.Tensor | None = None
    bn: nn.Module | None = None
    act_mod: nn.Module | None = None
    conv: dict = field(default_factory=dict)
    in_unit: float = 1.0  # scale of one input code
    w_unit: float = 1.0
    radius: int = 0  # |integer accumulator| <= radius
    in_group: int = 1  # FC input features per channel of the previous site (H·W)
    site: int | None = None  # activation site number, None for the last layer
    out_unit: float = 1.0
    levels: torch.Tensor | None = None  # real output levels, ascending
    codes: torch.Tensor | None = None  # their integer codes
    pool: nn.Module | None = None
    # integer-mode activation, non-decreasing in z: "sign" (one threshold, folded into the
    # bias: code = sign(z)) or "signs" (code = half_step · (sign(z) + Σ_j sign(z + thr_bias[j])))
    act_kind: str = "sign"
    thr_bias: torch.Tensor | None = None  # (J−1)×C, thresholds relative to the first
    half_step: float = 1.0
    tn: nn.Module | None = None
    logit_scale: torch.Tensor | None = None
    exact: bool = True
    ones_resp: torch.Tensor | None = None  # FC: response of each input channel set to 1
    out_shape: tuple[int, ...] = ()
    post_shape: tuple[int, ...] = ()  # site output after the optional max-pool
    in_shape: tuple[int, ...] = ()
    macs: int = 0  # multiply-accumulates per image

    def linear(self, x: torch.Tensor, float_mode: bool = False) -> torch.Tensor:
        """Integer mode: ``z`` from integer codes. Float mode: the layer on real values with the
        quantized float weights — exactly the call brevitas makes."""
        if float_mode:
            if self.kind == "conv":
                return F.conv2d(x, self.weight_f, None, **self.conv)
            return F.linear(x, self.weight_f)
        if self.kind == "conv":
            return F.conv2d(
                x.contiguous(memory_format=torch.channels_last), self.weight, self.bias, **self.conv
            )
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
        if not float_mode:  # monotone activation: max-pool commutes with it
            return self.act(self.pool(z), False)
        return self.pool(self.act(z, float_mode))


class Golden:
    """Unfaulted tensors of one image batch: stage inputs, accumulators, site outputs,
    predictions."""

    def __init__(
        self,
        inputs: list[torch.Tensor],
        accs: list[torch.Tensor],
        acts: list[torch.Tensor],
        logits: torch.Tensor,
        pred: torch.Tensor,
        labels: torch.Tensor,
    ) -> None:
        self.inputs, self.accs, self.acts = inputs, accs, acts
        self.logits, self.pred, self.labels = logits, pred, labels
        self.correct = pred == labels


class Engine:
    """CNV frozen into integer tensors (see the module docstring). Built from a CNV in eval mode."""

    def __init__(
        self, model: nn.Module, device: torch.device, image_shape: tuple[int, int, int], tables: bool = True
    ) -> None:
        from brevitas.nn import QuantConv2d, QuantIdentity, QuantLinear

        from fatlib.core.models import TensorNorm, activation_levels, activation_sites

        self.device = device
        self.model = model
        self.sites = activation_sites(model)
        feats = list(model.conv_features)
        self.in_quant = feats[0]
        in_levels = activation_levels(self.in_quant)
        self.in_unit, in_codes = unit_codes(in_levels, "input quantizer")
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
                raise ValueError(
                    f"unexpected module {type(m).__name__} in CNV; the campaign engine "
                    "knows conv / FC, BatchNorm, QuantIdentity, MaxPool2d and TensorNorm"
                )
        self.stages: list[_Stage] = []
        unit = self.in_unit
        shape: tuple[int, ...] = tuple(image_shape)
        site_no = 0
        self.exact = is_pow2(self.in_unit)
        for r in raw:
            mod = r["mod"]
            w = mod.quant_weight().value.detach().float()
            w_unit, w_codes = unit_codes(w, f"weights of {type(mod).__name__}")
            kind = "conv" if isinstance(mod, QuantConv2d) else "fc"
            if getattr(mod, "bias", None) is not None:
                raise ValueError("the campaign engine supports CNV's bias-free conv / FC layers only")
            st = _Stage(
                kind=kind,
                weight=w_codes.to(device),
                weight_f=w.to(device),
                in_unit=unit,
                w_unit=w_unit,
                bn=r.get("bn"),
                act_mod=r.get("act"),
            )
            if kind == "conv":
                if mod.groups != 1:
                    raise ValueError("grouped convolutions are not supported by the campaign engine")
                st.conv = {"stride": mod.stride, "padding": mod.padding, "dilation": mod.dilation}
                c, h, wd = shape
                ho = (h + 2 * mod.padding[0] - mod.dilation[0] * (mod.kernel_size[0] - 1) - 1) // mod.stride[
                    0
                ] + 1
                wo = (wd + 2 * mod.padding[1] - mod.dilation[1] * (mod.kernel_size[1] - 1) - 1) // mod.stride[
                    1
                ] + 1
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
            st.exact = is_pow2(unit) and is_pow2(w_unit)
            self.exact = self.exact and st.exact
            if "act" in r:
                st.site = site_no
                site_no += 1
                st.levels = activation_levels(r["act"]).float()
                st.out_unit, st.codes = unit_codes(st.levels, f"levels of activation site {st.site}")
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
                st.exact = st.exact and is_pow2(unit * w_unit)
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
                    self.float_mode = True  # cannot fold: replay brevitas
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
        # cpu-only: tables built on the host, moved below
        grid = torch.arange(-st.radius, st.radius + 1, dtype=torch.float64)
        vals = (grid * (st.in_unit * st.w_unit)).float().to(dev)
        x = vals.view(1, 1, -1).expand(1, cout, -1).contiguous()
        if st.kind == "conv":
            x = x.unsqueeze(-1)  # 1×C×L×1 for BatchNorm2d, 1×C×L for BatchNorm1d
        y = st.bn(x) if st.bn is not None else x
        y = st.act_mod(y)
        y = (y.value if hasattr(y, "value") else y).reshape(cout, -1).float()
        table = torch.round(y.double() / st.out_unit).float()  # C×(2R+1) codes
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
        sign = torch.where(up, 1.0, -1.0)  # direction per channel
        z_table = torch.where(up.view(-1, 1), table, table.flip(1))  # codes as a function of s·acc
        big = float(st.radius + 2)
        thr = torch.empty(k - 1, cout)  # cpu-only: tables built on the host, moved below
        unreached = torch.full((cout,), big)  # cpu-only: tables built on the host, moved below
        for j in range(1, k):
            reach = z_table >= codes[j]  # C×(2R+1), monotone in z
            first = torch.where(reach.any(1), reach.float().argmax(1).float() - st.radius, unreached)
            thr[j - 1] = first  # min z with code >= codes[j]
        thr = torch.where(thr < -st.radius + 0.5, torch.full_like(thr, -big), thr)
        st.weight = st.weight * sign.to(dev).view(-1, *([1] * (st.weight.dim() - 1)))
        if k == 2:
            st.act_kind = "sign"  # code = sign(z + 0.5 - t)
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
        x = 2.0 * images01 - 1.0  # exactly CNV.forward
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

    def golden(self, images01: torch.Tensor, labels: torch.Tensor) -> Golden:
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
        return Golden(inputs, accs, acts, logits, pred, labels)

    def site_values(self, g: Golden, layer: int) -> torch.Tensor:
        """Golden output of activation site ``layer`` as real values (as brevitas returns it)."""
        a = g.acts[self.site_stage[layer]]
        return a if self.float_mode else a * self.stages[self.site_stage[layer]].out_unit

    # -- faults ------------------------------------------------------------------------------
    def first_acc_channel(
        self, g: Golden, layer: int, chans: torch.Tensor, codes: torch.Tensor, values: torch.Tensor
    ) -> torch.Tensor:
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
            if st.kind == "conv":  # after a max-pool the stuck channel pools to the constant
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
            if ho * wo >= _LOOP_MIN_PIXELS:  # big maps: one convolution per channel
                cl, kl = chans.tolist(), codes.tolist()
                i = 0
                while i < f:
                    c, e = cl[i], i + 1
                    while e < f and cl[e] == c:
                        e += 1
                    w_c = st.weight[:, c : c + 1]
                    if e - i == 1:
                        d = F.conv2d(kl[i] - x[:, c : c + 1], w_c, None, **st.conv)
                        torch.add(z0, self._round(d), out=out[i])
                    else:  # several levels: z − W_c ⊛ x_c once, + v · W_c ⊛ 1
                        base = z0 - self._round(F.conv2d(x[:, c : c + 1], w_c, None, **st.conv))
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
        xs = x.view(n, -1, st.in_group)[:, uc]  # N×U×g
        ws = st.weight.view(cout, -1, st.in_group)[:, uc]  # Cout×U×g
        p = self._round(torch.einsum("nug,oug->nuo", xs, ws))
        kq = codes.view(-1, 1) * st.ones_resp[uc][inv]  # F×Cout
        torch.sub(z0.unsqueeze(0), p.transpose(0, 1)[inv], out=out)
        out.add_(kq.unsqueeze(1))
        return out

    @staticmethod
    def _rows_like(z0: torch.Tensor, f: int) -> torch.Tensor:
        """Uninitialised F×N×... tensor whose N·F rows are channels-last 4-D (or plain 2-D)."""
        n = z0.shape[0]
        if z0.dim() == 4:
            base = torch.empty(
                (f * n, *z0.shape[1:]), device=z0.device, dtype=z0.dtype, memory_format=torch.channels_last
            )
        else:
            base = torch.empty((f * n, *z0.shape[1:]), device=z0.device, dtype=z0.dtype)
        return base.view(f, n, *z0.shape[1:])

    def first_acc_pixel(
        self,
        g: Golden,
        layer: int,
        rows: torch.Tensor,
        cols: torch.Tensor,
        codes: torch.Tensor,
        values: torch.Tensor,
    ) -> torch.Tensor:
        """Accumulators ``z`` of the stage after conv site ``layer`` with position (row, col) of
        all channels stuck at ``codes[f]`` (value ``values[f]``): F×N×... Integer mode: the
        one-pixel delta (re-pooled) through a ≤5×5 crop, exactly. Float mode: in full."""
        i = self.site_stage[layer]
        st_site, st = self.stages[i], self.stages[i + 1]
        a = g.acts[i]  # N×C×H×W
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
            if not (
                pool.kernel_size in (2, (2, 2))
                and pool.stride in (2, (2, 2))
                and pool.padding in (0, (0, 0))
                and pool.dilation in (1, (1, 1))
                and not pool.ceil_mode
            ):
                raise ValueError("the pixel pattern supports CNV's MaxPool2d(2) only")
            hp, wp = st_site.post_shape[1:]
            pr, pc = rows // 2, cols // 2
            valid = (pr < hp) & (pc < wp)  # rows / cols the floor-mode pool drops
            pr, pc = pr.clamp(max=hp - 1), pc.clamp(max=wp - 1)
            rr = torch.stack([2 * pr, 2 * pr, 2 * pr + 1, 2 * pr + 1], 1)  # F×4
            cc = torch.stack([2 * pc, 2 * pc + 1, 2 * pc, 2 * pc + 1], 1)
            win = a[:, :, rr, cc].permute(2, 0, 1, 3).clone()  # F×N×C×4
            slot = ((rows - 2 * pr) * 2 + (cols - 2 * pc)).clamp(0, 3)
            win[torch.arange(f, device=a.device), :, :, slot] = codes.view(f, 1, 1)
            new = win.amax(-1)  # re-pooled: F×N×C
            old = g.inputs[i + 1].reshape(n, c, hp, wp)[:, :, pr, pc].permute(2, 0, 1)
            delta = (new - old) * valid.view(f, 1, 1)
            pos_r, pos_c, hin, win_ = pr, pc, hp, wp
        else:
            delta = codes.view(f, 1, 1) - a[:, :, rows, cols].permute(2, 0, 1)  # F×N×C
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
            d = self._round(F.conv2d(crop, st.weight))  # valid conv of the crop
            out[sel, :, :, y0 : y1 + 1, x0 : x1 + 1] += d.view(m, n, *d.shape[1:])
        return out

    def suffix(self, j: int, z: torch.Tensor, g: Golden, f: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Run stage ``j``'s activation and everything after it on F·N rows (fault-major).
        Returns the rows whose next-layer inputs ever differ from the golden ones and their
        predictions; every other row predicts exactly what the golden network predicts."""
        fm = self.float_mode
        n = g.pred.shape[0]
        rows = torch.arange(f * n, device=z.device)
        img = None  # None: rows are all F·N, in order
        for k in range(j, len(self.stages)):
            st = self.stages[k]
            if st.site is None:
                return rows, self.logits(st, z).argmax(1)
            h = st.act_pool(z, fm)
            z = None  # frees the accumulator before the next layer's is made
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
    with eval_mode(model), torch.no_grad():
        eng = Engine(model, model_device(model), image_shape, tables=False)
    return {s: sum(st.macs for st in eng.stages[i + 1 :]) for s, i in eng.site_stage.items()}
