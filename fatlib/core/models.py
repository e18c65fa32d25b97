"""Networks of both papers.

* :func:`cnv` — the FINN / brevitas ``CNV`` quantized network of FAT (§V), built exactly as
  brevitas' ``bnn_pynq`` example builds it: six valid 3×3 convolutions (64-64-128-128-256-256)
  with max-pooling after the 2nd and 4th, three fully connected layers (256-512-512-classes),
  BatchNorm, ``QuantIdentity`` activations, an 8-bit input quantizer and ``TensorNorm`` last.
* :func:`dorefa_alexnet` — DoReFa-Net's AlexNet W1A2 (Zhou et al. 2016), the ImageNet network of
  FAT Table II and Fig. 8, in brevitas, after tensorpack's ``alexnet-dorefa.py``.
* :func:`vgg16` and :func:`mobilenet_v1` — CIFAR-size classification stand-ins for the
  SSD-VGG and SSD-MobileNet backbones of FT-DeepNets (see ``../shared/papers/README.md``).

:func:`activation_sites` numbers CNV's eight activation quantizers 0–7 as in FAT Table I (and
DoReFa-AlexNet's seven 0–6), and :func:`activation_levels` lists every value such a quantizer can
output — the stuck-at values of FAT's error models.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from fatlib.core.torch_utils import eval_mode, model_device

__all__ = [
    "spread_statistics",
    "CNV",
    "TensorNorm",
    "cnv",
    "DoReFaAlexNet",
    "dorefa_alexnet",
    "activation_sites",
    "conv_site_count",
    "activation_levels",
    "vgg16",
    "mobilenet_v1",
    "build_model",
    "clip_weights",
    "capture_activation",
    "output_shapes",
]

#: (out_channels, max-pool after) of CNV's six convolutions (brevitas ``bnn_pynq``).
CNV_CONVS: tuple[tuple[int, bool], ...] = (
    (64, False),
    (64, True),
    (128, False),
    (128, True),
    (256, False),
    (256, False),
)
#: hidden fully connected widths of CNV.
CNV_FCS: tuple[int, ...] = (512, 512)
#: bit widths of the papers' networks (FAT Table II).
SUPPORTED_WEIGHT_BITS = (1, 2)
SUPPORTED_ACT_BITS = (1, 2, 3, 4)


def _quantizers():
    """Brevitas' ``bnn_pynq`` ``CommonWeightQuant`` / ``CommonActQuant`` (imported lazily)."""
    from brevitas.core.bit_width import BitWidthImplType
    from brevitas.core.quant import QuantType
    from brevitas.core.restrict_val import FloatToIntImplType, RestrictValueType
    from brevitas.core.scaling import ScalingImplType
    from brevitas.core.zero_point import ZeroZeroPoint
    from brevitas.inject import ExtendedInjector
    from brevitas.quant.solver import ActQuantSolver, WeightQuantSolver
    from dependencies import value

    class CommonQuant(ExtendedInjector):
        bit_width_impl_type = BitWidthImplType.CONST
        scaling_impl_type = ScalingImplType.CONST
        restrict_scaling_type = RestrictValueType.FP
        zero_point_impl = ZeroZeroPoint
        float_to_int_impl_type = FloatToIntImplType.ROUND
        scaling_per_output_channel = False
        narrow_range = True
        signed = True

        @value
        def quant_type(bit_width):  # noqa: N805 - brevitas injector convention
            if bit_width is None:
                return QuantType.FP
            if bit_width == 1:
                return QuantType.BINARY
            return QuantType.INT

    class CommonWeightQuant(CommonQuant, WeightQuantSolver):
        scaling_const = 1.0

    class CommonActQuant(CommonQuant, ActQuantSolver):
        min_val = -1.0
        max_val = 1.0

    return CommonWeightQuant, CommonActQuant, RestrictValueType


class TensorNorm(nn.Module):
    """One scalar batch-norm over the whole logit tensor (brevitas ``bnn_pynq`` ``TensorNorm``)."""

    def __init__(self, eps: float = 1e-4, momentum: float = 0.1) -> None:
        super().__init__()
        self.eps = eps
        self.momentum = momentum
        self.weight = nn.Parameter(torch.ones(1))  # cpu-only: module init; .to() moves it
        self.bias = nn.Parameter(torch.zeros(1))  # cpu-only: module init; .to() moves it
        self.register_buffer("running_mean", torch.zeros(1))  # cpu-only: module init; .to() moves it
        self.register_buffer("running_var", torch.ones(1))  # cpu-only: module init; .to() moves it

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            mean = x.mean()
            biased_var = x.var(unbiased=False)
            with torch.no_grad():
                self.running_mean.mul_(1 - self.momentum).add_(self.momentum * mean)
                self.running_var.mul_(1 - self.momentum).add_(self.momentum * x.var(unbiased=True))
            return (x - mean) / (biased_var + self.eps).sqrt() * self.weight + self.bias
        return (x - self.running_mean) / (self.running_var + self.eps).sqrt() * self.weight + self.bias

    def extra_repr(self) -> str:
        return f"eps={self.eps}, momentum={self.momentum}"


def _scaled(channels: int, width: float) -> int:
    return max(1, int(round(channels * width)))


class CNV(nn.Module):
    """FINN's CNV (FAT §V): ``conv_features`` then ``linear_features``, as in brevitas ``bnn_pynq``.

    The input is an image in [0, 1]; the network maps it to [-1, 1] and quantizes it to 8 bits
    (Q1.7) itself.
    """

    def __init__(
        self,
        weight_bits: int,
        act_bits: int,
        num_classes: int = 10,
        in_channels: int = 3,
        width: float = 1.0,
        in_bits: int = 8,
    ) -> None:
        super().__init__()
        from brevitas.nn import QuantConv2d, QuantIdentity, QuantLinear

        weight_quant, act_quant, restrict = _quantizers()
        self.weight_bits, self.act_bits = weight_bits, act_bits
        self.num_classes, self.in_channels, self.width = num_classes, in_channels, width
        self.conv_features = nn.ModuleList()
        self.linear_features = nn.ModuleList()
        self.conv_features.append(
            QuantIdentity(
                act_quant=act_quant,
                bit_width=in_bits,
                min_val=-1.0,
                max_val=1.0 - 2.0**-7,
                narrow_range=False,
                restrict_scaling_type=restrict.POWER_OF_TWO,
            )
        )
        ch = in_channels
        for out_ch, pool in CNV_CONVS:
            out_ch = _scaled(out_ch, width)
            self.conv_features.append(
                QuantConv2d(
                    ch,
                    out_ch,
                    kernel_size=3,
                    bias=False,
                    weight_quant=weight_quant,
                    weight_bit_width=weight_bits,
                )
            )
            ch = out_ch
            self.conv_features.append(nn.BatchNorm2d(ch, eps=1e-4))
            self.conv_features.append(QuantIdentity(act_quant=act_quant, bit_width=act_bits))
            if pool:
                self.conv_features.append(nn.MaxPool2d(kernel_size=2))
        features = ch  # 32 -> 30 -> 28 -> 14 -> 12 -> 10 -> 5 -> 3 -> 1: one pixel left
        for out_f in CNV_FCS:
            out_f = _scaled(out_f, width)
            self.linear_features.append(
                QuantLinear(
                    features, out_f, bias=False, weight_quant=weight_quant, weight_bit_width=weight_bits
                )
            )
            self.linear_features.append(nn.BatchNorm1d(out_f, eps=1e-4))
            self.linear_features.append(QuantIdentity(act_quant=act_quant, bit_width=act_bits))
            features = out_f
        self.linear_features.append(
            QuantLinear(
                features, num_classes, bias=False, weight_quant=weight_quant, weight_bit_width=weight_bits
            )
        )
        self.linear_features.append(TensorNorm())
        for m in self.modules():
            if isinstance(m, (QuantConv2d, QuantLinear)):
                nn.init.uniform_(m.weight.data, -1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = 2.0 * x - 1.0
        for mod in self.conv_features:
            x = mod(x)
        x = x.flatten(1)
        for mod in self.linear_features:
            x = mod(x)
        return x

    def extra_repr(self) -> str:
        return (
            f"W{self.weight_bits}A{self.act_bits}, num_classes={self.num_classes}, "
            f"in_channels={self.in_channels}, width={self.width}"
        )


def _check_shape_args(width: float, num_classes: int, in_channels: int) -> None:
    """Refuse a width outside (0, 4], fewer than 2 classes or no input channel."""
    if not (isinstance(width, (int, float)) and 0 < width <= 4):
        raise ValueError(f"width={width!r}: use a channel multiplier in (0, 4], 1.0 for the paper")
    if num_classes < 2 or in_channels < 1:
        raise ValueError("num_classes must be >= 2 and in_channels >= 1")


def _check_build_args(
    network: str,
    weight_bits: int,
    act_bits: int,
    weight_choices: tuple[int, ...],
    act_choices: tuple[int, ...],
    note: str,
    width: float,
    num_classes: int,
    in_channels: int,
) -> None:
    """A clear ValueError for bit widths ``network`` does not support (``note`` says which it
    has) and for impossible shapes."""
    if weight_bits not in weight_choices:
        raise ValueError(f"weight_bits={weight_bits!r}: {network} supports {weight_choices} ({note})")
    if act_bits not in act_choices:
        raise ValueError(f"act_bits={act_bits!r}: {network} supports {act_choices}")
    _check_shape_args(width, num_classes, in_channels)


def cnv(
    weight_bits: int, act_bits: int, num_classes: int = 10, in_channels: int = 3, width: float = 1.0
) -> CNV:
    """Build CNV W\\ *w*\\ A\\ *a* (FAT §V; FINN's CNV). ``width`` scales every conv and hidden FC
    channel count; ``width=1`` is the papers' network."""
    _check_build_args(
        "CNV",
        weight_bits,
        act_bits,
        SUPPORTED_WEIGHT_BITS,
        SUPPORTED_ACT_BITS,
        "the papers' W1A1, W1A2, W1A3, W1A4, W2A2",
        width,
        num_classes,
        in_channels,
    )
    return CNV(weight_bits, act_bits, num_classes=num_classes, in_channels=in_channels, width=width)


def activation_sites(model: nn.Module) -> list[nn.Module]:
    """The activation quantizers of a FAT network in order: CNV's numbered 0–7 as in FAT Table I
    (six after the convolutions, two after the hidden FC layers; the input quantizer is not one),
    DoReFa-AlexNet's 0–6 (five after the convolutions, two after the hidden FC layers)."""
    from brevitas.nn import QuantIdentity

    if isinstance(model, CNV):
        sites = [m for m in model.conv_features[1:] if isinstance(m, QuantIdentity)]
        sites += [m for m in model.linear_features if isinstance(m, QuantIdentity)]
        return sites
    if isinstance(model, DoReFaAlexNet):
        return [m for m in model.layers if isinstance(m, QuantIdentity)]
    raise ValueError(f"activation_sites needs a fatlib CNV or DoReFaAlexNet, got {type(model).__name__}")


def conv_site_count(model: nn.Module) -> int:
    """How many of :func:`activation_sites` follow a convolution (the rest follow FC layers):
    6 for CNV, 5 for DoReFa-AlexNet. Only these sites have pixels (FAT's same-pixel model)."""
    if isinstance(model, CNV):
        from brevitas.nn import QuantIdentity

        return sum(isinstance(m, QuantIdentity) for m in model.conv_features[1:])
    if isinstance(model, DoReFaAlexNet):
        return len(DOREFA_CONVS)
    raise ValueError(f"conv_site_count needs a fatlib CNV or DoReFaAlexNet, got {type(model).__name__}")


@torch.no_grad()
def activation_levels(site: nn.Module) -> torch.Tensor:
    """Every real value the activation quantizer ``site`` can output, ascending
    (A1: −1, +1; narrow-range A2: −1, 0, +1; A3, A4: all 2^A − 1 levels). These are FAT's
    stuck-at values (§II, ``../shared/papers/README.md``)."""
    was_training = site.training
    site.eval()
    try:
        # on the device of the site's parameters or, for a QuantIdentity that holds buffers
        # only, of its buffers (a CPU probe crashed every campaign on CUDA, issue #16)
        probe = torch.linspace(-4.0, 4.0, 16001, device=model_device(site))
        out = site.forward(probe.view(1, -1))  # forward(): bypasses hooks (e.g. injection layers)
        out = out.value if hasattr(out, "value") else out
        levels = torch.unique(out.detach().float().cpu())
    finally:
        site.train(was_training)
    return levels


# --------------------------------------------------------------------------------------------
# DoReFa-Net AlexNet (FAT Table II / Fig. 8, ImageNet)
# --------------------------------------------------------------------------------------------

#: (out_channels, kernel, stride, padding, groups, max-pool after) of DoReFa-AlexNet's convolutions,
#: as in tensorpack's ``examples/DoReFa-Net/alexnet-dorefa.py`` (``split=2`` is ``groups=2``)
DOREFA_CONVS: tuple[tuple[int, int, int, int, int, bool], ...] = (
    (96, 12, 4, 0, 1, False),
    (256, 5, 1, 2, 2, True),
    (384, 3, 1, 1, 1, True),
    (384, 3, 1, 1, 2, False),
    (256, 3, 1, 1, 2, True),
)
#: hidden fully connected widths of DoReFa-AlexNet
DOREFA_FCS: tuple[int, ...] = (4096, 4096)
DOREFA_WEIGHT_BITS = (1,)
DOREFA_ACT_BITS = (2, 3, 4)


def _dorefa_weight_quant():
    """Binary weights with one per-tensor scale, the mean of |W| — DoReFa-Net's ``fw`` for
    1-bit weights (``sign(W) · E(|W|)``) as a brevitas injector in the style of
    ``CommonWeightQuant``."""
    from brevitas.core.scaling import ScalingImplType
    from brevitas.inject.enum import StatsOp

    weight_quant, _, _ = _quantizers()

    class DoReFaBinaryWeightQuant(weight_quant):
        scaling_impl_type = ScalingImplType.STATS
        scaling_stats_op = StatsOp.AVE

    return DoReFaBinaryWeightQuant


class DoReFaAlexNet(nn.Module):
    """DoReFa-Net's AlexNet (Zhou et al. 2016) as FAT evaluates it on ImageNet (§V-B, Fig. 8).

    Built after tensorpack's ``alexnet-dorefa.py``: ``conv0`` 96 12×12 stride 4 (valid), ``conv1``
    256 5×5 (2 groups), max-pool 3/2, ``conv2`` 384 3×3, max-pool 3/2, ``conv3`` 384 3×3 (2 groups),
    ``conv4`` 256 3×3 (2 groups), max-pool 3/2, ``fc0`` 4096, ``fc1`` 4096, ``fct`` classes. The
    first and the last layer keep float weights (DoReFa-Net quantizes neither); the others have
    binary weights with a mean-``|W|`` scale. Every conv / hidden FC layer is followed by BatchNorm and
    the activation quantizer — unsigned, ``act_bits`` bits in [0, 1], i.e. levels
    {0, 1/3, 2/3, 1} for A2, DoReFa's ``fa(clip(x, 0, 1))`` — then the max-pool where there is one.
    These seven quantizers are the activation sites 0–6 (five conv, two FC).

    Departures from tensorpack, so that every site is a FAT injection site with the same levels:
    BatchNorm also after ``conv0`` (tensorpack has none there) and the activation after ``fc1`` is
    quantized too (tensorpack only clips it); pools follow the quantizer (they commute with it).
    An ``AdaptiveMaxPool2d(6)`` before ``fc0`` is the identity at 224×224 and lets the network run
    on small images (at least 44×44). Input images are in [0, 1] (tensorpack: ``image / 255``).
    ``forward`` is exactly ``self.layers(x)``.
    """

    def __init__(
        self,
        weight_bits: int = 1,
        act_bits: int = 2,
        num_classes: int = 1000,
        width: float = 1.0,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        from brevitas.nn import QuantConv2d, QuantIdentity, QuantLinear

        _, act_quant, _ = _quantizers()
        weight_quant = _dorefa_weight_quant()
        self.weight_bits, self.act_bits = weight_bits, act_bits
        self.num_classes, self.in_channels, self.width = num_classes, in_channels, width

        def act() -> nn.Module:
            return QuantIdentity(
                act_quant=act_quant,
                bit_width=act_bits,
                signed=False,
                narrow_range=False,
                min_val=0.0,
                max_val=1.0,
            )

        layers: list[nn.Module] = []
        ch = in_channels
        for i, (out_ch, k, stride, pad, groups, pool) in enumerate(DOREFA_CONVS):
            out_ch = _scaled(out_ch, width)
            out_ch += (-out_ch) % groups  # grouped convs need a multiple of the groups
            if i == 0:
                layers.append(nn.Conv2d(ch, out_ch, k, stride=stride, padding=pad, bias=False))
            else:
                layers.append(
                    QuantConv2d(
                        ch,
                        out_ch,
                        k,
                        stride=stride,
                        padding=pad,
                        groups=groups,
                        bias=False,
                        weight_quant=weight_quant,
                        weight_bit_width=weight_bits,
                    )
                )
            layers += [nn.BatchNorm2d(out_ch, eps=1e-4, momentum=0.1), act()]
            if pool:
                last = i == len(DOREFA_CONVS) - 1
                layers.append(nn.MaxPool2d(3, 2, padding=0 if last else 1))
            ch = out_ch
        layers += [nn.AdaptiveMaxPool2d(6), nn.Flatten()]
        features = ch * 36
        for out_f in DOREFA_FCS:
            out_f = _scaled(out_f, width)
            layers += [
                QuantLinear(
                    features, out_f, bias=False, weight_quant=weight_quant, weight_bit_width=weight_bits
                ),
                nn.BatchNorm1d(out_f, eps=1e-4, momentum=0.1),
                act(),
            ]
            features = out_f
        layers.append(nn.Linear(features, num_classes))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)

    def extra_repr(self) -> str:
        return (
            f"W{self.weight_bits}A{self.act_bits}, num_classes={self.num_classes}, "
            f"in_channels={self.in_channels}, width={self.width}"
        )


def dorefa_alexnet(
    weight_bits: int = 1, act_bits: int = 2, num_classes: int = 1000, width: float = 1.0, in_channels: int = 3
) -> DoReFaAlexNet:
    """Build DoReFa-Net's AlexNet W\\ *w*\\ A\\ *a* (FAT Table II, Fig. 8: W1A2, activation levels
    {0, 1/3, 2/3, 1}). ``width`` scales every conv and hidden FC channel count; ``width=1`` is
    the paper's network."""
    _check_build_args(
        "DoReFa-AlexNet",
        weight_bits,
        act_bits,
        DOREFA_WEIGHT_BITS,
        DOREFA_ACT_BITS,
        "binary weights with a mean-|W| scale, as in FAT's W1A2 DoReFa-Net",
        width,
        num_classes,
        in_channels,
    )
    return DoReFaAlexNet(weight_bits, act_bits, num_classes=num_classes, width=width, in_channels=in_channels)


# --------------------------------------------------------------------------------------------
# FT-DeepNets stand-ins (CIFAR-size classification networks)
# --------------------------------------------------------------------------------------------

#: VGG-16 configuration ("M" is a 2×2 max-pool).
VGG16_CFG: tuple[int | str, ...] = (
    64,
    64,
    "M",
    128,
    128,
    "M",
    256,
    256,
    256,
    "M",
    512,
    512,
    512,
    "M",
    512,
    512,
    512,
    "M",
)


class VGG(nn.Module):
    """VGG-16 with BatchNorm for 32×32 inputs: the classification stand-in for SSD-VGG (FTD §4)."""

    def __init__(self, num_classes: int = 10, width: float = 1.0, in_channels: int = 3) -> None:
        super().__init__()
        self.num_classes, self.width = num_classes, width
        layers: list[nn.Module] = []
        ch = in_channels
        for v in VGG16_CFG:
            if v == "M":
                layers.append(nn.MaxPool2d(2))
            else:
                out = _scaled(int(v), width)
                layers += [
                    nn.Conv2d(ch, out, 3, padding=1, bias=False),
                    nn.BatchNorm2d(out),
                    nn.ReLU(inplace=True),
                ]
                ch = out
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(ch, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, width={self.width}"


#: MobileNetV1 (CIFAR variant): (out_channels, stride) of the 13 depthwise-separable blocks.
MOBILENET_CFG: tuple[tuple[int, int], ...] = (
    (64, 1),
    (128, 2),
    (128, 1),
    (256, 2),
    (256, 1),
    (512, 2),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (1024, 2),
    (1024, 1),
)


class MobileNetV1(nn.Module):
    """MobileNetV1 for 32×32 inputs: the classification stand-in for SSD-MobileNet (FTD §3.3, §4).

    Each block is a depthwise 3×3 conv (``dw``) followed by a pointwise 1×1 conv (``pw``), which
    FT-DeepNets ranks and duplicates as one unit (Fig. 5)."""

    def __init__(self, num_classes: int = 10, width: float = 1.0, in_channels: int = 3) -> None:
        super().__init__()
        self.num_classes, self.width = num_classes, width
        ch = _scaled(32, width)
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, ch, 3, padding=1, bias=False), nn.BatchNorm2d(ch), nn.ReLU(inplace=True)
        )
        blocks = []
        for out, stride in MOBILENET_CFG:
            out = _scaled(out, width)
            blocks.append(
                nn.Sequential(
                    nn.Conv2d(ch, ch, 3, stride=stride, padding=1, groups=ch, bias=False),
                    nn.BatchNorm2d(ch),
                    nn.ReLU(inplace=True),
                    nn.Conv2d(ch, out, 1, bias=False),
                    nn.BatchNorm2d(out),
                    nn.ReLU(inplace=True),
                )
            )
            ch = out
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(ch, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.blocks(self.stem(x)))
        return self.classifier(torch.flatten(x, 1))

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, width={self.width}"


def vgg16(num_classes: int = 10, width: float = 1.0) -> VGG:
    """VGG-16 (BatchNorm, CIFAR variant) — FT-DeepNets' large network (stand-in for SSD-VGG)."""
    if not 0 < width <= 4:
        raise ValueError(f"width={width!r}: use a channel multiplier in (0, 4]")
    return VGG(num_classes=num_classes, width=width)


def mobilenet_v1(num_classes: int = 10, width: float = 1.0) -> MobileNetV1:
    """MobileNetV1 (CIFAR variant) — FT-DeepNets' compact network (stand-in for SSD-MobileNet)."""
    if not 0 < width <= 4:
        raise ValueError(f"width={width!r}: use a channel multiplier in (0, 4]")
    return MobileNetV1(num_classes=num_classes, width=width)


def build_model(
    arch: str,
    num_classes: int = 10,
    width: float = 1.0,
    weight_bits: int | None = None,
    act_bits: int | None = None,
) -> nn.Module:
    """Build a network by name: ``"cnv"`` (needs ``weight_bits``, ``act_bits``),
    ``"dorefa-alexnet"`` (default W1A2), ``"vgg16"``, ``"mobilenet_v1"``. Used by the trainer and
    the artifact store to rebuild saved models."""
    if arch == "cnv":
        if weight_bits is None or act_bits is None:
            raise ValueError("arch 'cnv' needs weight_bits and act_bits")
        return cnv(weight_bits, act_bits, num_classes=num_classes, width=width)
    if arch == "dorefa-alexnet":
        return dorefa_alexnet(
            1 if weight_bits is None else weight_bits,
            2 if act_bits is None else act_bits,
            num_classes=num_classes,
            width=width,
        )
    if arch == "vgg16":
        return vgg16(num_classes=num_classes, width=width)
    if arch == "mobilenet_v1":
        return mobilenet_v1(num_classes=num_classes, width=width)
    raise ValueError(f"unknown arch {arch!r}: use 'cnv', 'dorefa-alexnet', 'vgg16' or 'mobilenet_v1'")


@torch.no_grad()
def spread_statistics(model: nn.Module, seed: int) -> nn.Module:
    """Spread a network's BatchNorm / TensorNorm statistics (seeded) and put it in eval mode, for
    checks of exactness on untrained networks: with unit statistics an untrained CNV is nearly
    constant and every quantizer threshold falls the same way, which would hide wrong results
    (the campaign engines' tests, ``benchmarks/device_check.py``)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                c = m.num_features
                # drawn by the seeded host generator; copy_ moves them to the model's device
                mean = torch.randn(c, generator=g) * 3  # cpu-only: seeded host draw
                var = torch.rand(c, generator=g) * 20 + 0.5  # cpu-only: seeded host draw
                weight = torch.randn(c, generator=g)  # cpu-only: seeded host draw
                bias = torch.randn(c, generator=g) * 0.5  # cpu-only: seeded host draw
                m.running_mean.copy_(mean)
                m.running_var.copy_(var)
                m.weight.data.copy_(weight)
                m.bias.data.copy_(bias)
            if isinstance(m, TensorNorm):
                m.running_mean.fill_(0.3)
                m.running_var.fill_(2.0)
    return model.eval()


def clip_weights(model: nn.Module, low: float = -1.0, high: float = 1.0) -> None:
    """Clamp the latent float weights of every quantized conv / linear layer to [low, high]
    (the BNN recipe FAT trains with, §V: weights clipped after each step)."""
    from brevitas.nn import QuantConv2d, QuantLinear

    for m in model.modules():
        if isinstance(m, (QuantConv2d, QuantLinear)):
            m.weight.data.clamp_(low, high)


@torch.no_grad()
def capture_activation(model: nn.Module, site: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The output of ``site`` (e.g. an activation quantizer) when ``model`` (eval mode) sees
    ``x``; ``x`` is moved to the model's device, the result is returned on the CPU."""
    seen: list[torch.Tensor] = []
    handle = site.register_forward_hook(
        lambda mod, inp, out: seen.append((out.value if hasattr(out, "value") else out).detach())
    )
    try:
        with eval_mode(model):
            model(x.to(model_device(model)))
    finally:
        handle.remove()
    return seen[0].cpu()


@torch.no_grad()
def output_shapes(
    model: nn.Module,
    modules: Sequence[nn.Module],
    input_size: int = 32,
    image_shape: tuple[int, int, int] | None = None,
) -> dict[int, tuple[int, ...]]:
    """Output shape (without the batch dimension) of each of ``modules`` when ``model`` (eval
    mode) sees one zero image — ``image_shape`` (C, H, W), else ``input_size``×``input_size``
    with the model's ``in_channels`` — keyed by ``id(module)``. Quantized outputs count by their
    ``value``; modules that output no tensor are left out."""
    shapes: dict[int, tuple[int, ...]] = {}

    def record(mod: nn.Module, inp: Any, out: Any) -> None:
        t = out.value if hasattr(out, "value") else out
        if torch.is_tensor(t):
            shapes[id(mod)] = tuple(t.shape[1:])

    if image_shape is None:
        image_shape = (getattr(model, "in_channels", 3), input_size, input_size)
    handles = [m.register_forward_hook(record) for m in modules]
    try:
        with eval_mode(model):
            model(torch.zeros(1, *image_shape, device=model_device(model)))
    finally:
        for h in handles:
            h.remove()
    return shapes
