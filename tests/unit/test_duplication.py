"""KR / FMR partial duplication and the D2NN baseline (fatlib.ftd.duplication, FTD §3.2–3.3, §4.4)."""

from __future__ import annotations

import math

import pytest
import torch
from helpers import ftd_net
from torch import nn

from fatlib.ftd.duplication import (
    D2NN,
    DuplicatedConv2d,
    FMRConv2d,
    KRConv2d,
    d2nn,
    duplicate,
    duplication_plan,
    duplication_summary,
)
from fatlib.ftd.errors import transient_errors
from fatlib.ftd.ranking import rank_channels, top_channels


def _net(arch: str) -> nn.Module:
    return ftd_net(arch)


def _x(n: int = 3) -> torch.Tensor:
    return torch.randn(n, 3, 32, 32, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("arch", ["vgg16", "mobilenet_v1"])
@pytest.mark.parametrize("method", ["kr", "fmr"])
def test_no_errors_reproduce_the_original(arch, method):
    m, x = _net(arch), _x()
    scores = rank_channels(m, "weight_sum")
    dup = duplicate(m, 0.5, scores, method).eval()
    with torch.no_grad():
        ref, out = m(x), dup(x)
    assert ref.abs().max() > 0 and not torch.allclose(ref[0], ref[1])
    if method == "kr":
        assert torch.equal(out, ref)  # the averaged kernel is the original kernel
    else:
        assert torch.allclose(out, ref, rtol=1e-5, atol=1e-6)
    layers = [mod for mod in dup.modules() if isinstance(mod, DuplicatedConv2d)]
    n_convs = sum(isinstance(mod, nn.Conv2d) for mod in m.modules())
    assert len(layers) == n_convs and all(mod.method == method for mod in layers)


def test_original_untouched():
    m = _net("vgg16")
    before = {k: v.clone() for k, v in m.state_dict().items()}
    types = [type(mod) for mod in m.modules()]
    dup = duplicate(m, 0.5, rank_channels(m, "weight_sum"), "fmr")
    with torch.no_grad():
        next(dup.parameters()).add_(1.0)  # the copy shares no storage with the original
    assert [type(mod) for mod in m.modules()] == types
    assert all(torch.equal(before[k], v) for k, v in m.state_dict().items())


def test_selected_filters_are_the_top_ranked_and_copied():
    m = _net("vgg16")
    scores = rank_channels(m, "weight_sum")
    dup = duplicate(m, 0.5, scores, "kr")
    layer = dup.features[7]
    assert isinstance(layer, KRConv2d)
    expected = top_channels(scores, 0.5)["features.7"].sort().values
    assert torch.equal(layer.index, expected)
    assert torch.equal(layer.replica.weight, m.features[7].weight[expected])


def test_mobilenet_depthwise_duplicated_whole_with_its_pointwise():
    m = _net("mobilenet_v1")
    scores = rank_channels(m, "weight_sum")
    dup = duplicate(m, 0.5, scores, "fmr")
    for i, block in enumerate(dup.blocks):
        dw, pw = block[0], block[3]
        assert isinstance(dw, FMRConv2d) and isinstance(pw, FMRConv2d)
        assert dw.paired and dw.duplicated == dw.channels  # whole depthwise kernel (Fig. 5b)
        assert dw.replica.groups == dw.channels
        assert torch.equal(dw.replica.weight, m.blocks[i][0].weight)
        assert not pw.paired and pw.duplicated == math.floor(0.5 * pw.channels + 0.5)
    # with nothing duplicated in the pointwise conv, its depthwise partner stays as it is
    plan = duplication_plan(m, 0.0, scores)
    assert plan == {}


def test_repr_and_summary():
    m = _net("vgg16")
    dup = duplicate(m, 0.5, rank_channels(m, "weight_sum"), "kr")
    text = repr(dup)
    assert "method='kr'" in text and "ratio=0.5" in text and "duplicated=4/8" in text
    summary = duplication_summary(dup)
    assert list(summary["layer"])[:2] == ["features.0", "features.3"]
    assert (summary["duplicated"] * 2 == summary["channels"]).all()


def _probe(method: str, channels: int = 6) -> tuple[nn.Module, torch.Tensor]:
    """One 1×1 conv duplicated whole: with identity-basis inputs its output *is* its kernel."""
    torch.manual_seed(0)
    conv = nn.Conv2d(channels, channels, 1, bias=False)
    with torch.no_grad():
        conv.weight.uniform_(1.0, 2.0)  # no zero weights
    cls = KRConv2d if method == "kr" else FMRConv2d
    layer = cls(conv, torch.arange(channels), ratio=1.0)
    return nn.Sequential(layer), torch.eye(channels).view(channels, channels, 1, 1)


@pytest.mark.parametrize("method", ["kr", "fmr"])
def test_weight_errors_strike_the_two_copies_independently(method):
    model, x = _probe(method, 40)
    w = model[0].primary.weight.detach()[:, :, 0, 0].t()  # out[b, o] = W[o, b]
    with torch.no_grad(), transient_errors(model, weight_rate=0.5, seed=0) as inj:
        out = model(x)[:, :, 0, 0]
    assert inj.stats.weights_seen == 2 * 40 * 40  # both copies exposed
    whole, half, zero = out == w, out == w / 2, out == 0
    assert bool((whole | half | zero).all())
    # independent copies: P(one zeroed) = 0.5, P(both) = 0.25; a shared mask would give 0 and 0.5
    n = out.numel()
    for frac, p in ((half.sum() / n, 0.5), (zero.sum() / n, 0.25)):
        assert abs(float(frac) - p) < 5 * math.sqrt(p * (1 - p) / n)


def test_fmr_feature_map_errors_strike_each_copy_kr_only_the_output():
    for method, p_half, p_zero in (("fmr", 0.5, 0.25), ("kr", 0.0, 0.5)):
        model, x = _probe(method, 40)
        w = model[0].primary.weight.detach()[:, :, 0, 0].t()
        with torch.no_grad(), transient_errors(model, fmap_rate=0.5, seed=1) as inj:
            out = model(x)[:, :, 0, 0]
        n = out.numel()
        assert bool(((out == w) | (out == w / 2) | (out == 0)).all())
        for frac, p in (((out == w / 2).sum() / n, p_half), ((out == 0).sum() / n, p_zero)):
            assert abs(float(frac) - p) <= 5 * math.sqrt(max(p * (1 - p), 1e-12) / n), method
        assert inj.stats.fmap_seen == (2 if method == "fmr" else 1) * n


def test_duplicated_layer_is_one_error_site():
    m = _net("vgg16")
    dup = duplicate(m, 0.5, rank_channels(m, "weight_sum"), "fmr")
    with torch.no_grad(), transient_errors(dup, 0.1, 0.1, layers=["features.0"], seed=0) as inj:
        dup(_x())
    layer = dup.features[0]
    assert inj.stats.weights_seen == layer.primary.weight.numel() + layer.replica.weight.numel()
    with pytest.raises(ValueError, match="unknown layer"):
        transient_errors(dup, 0.1, layers=["features.0.primary"])


def test_kr_cache_follows_weight_changes():
    model, x = _probe("kr", 4)
    layer = model[0]
    with torch.no_grad():
        clean = model(x).clone()
        assert layer._cache is None  # averaged kernel == original kernel: nothing extra stored
        layer.replica.weight.mul_(3.0)  # in place: the version counter changes
        out = model(x)
        assert layer._cache is not None
        expected = (layer.primary.weight + layer.replica.weight) / 2
        assert torch.allclose(out[:, :, 0, 0], expected[:, :, 0, 0].t())
        layer.replica.weight.div_(3.0)
        assert torch.allclose(model(x), clean)
        with transient_errors(model, weight_rate=1.0):
            assert torch.count_nonzero(model(x)) == 0  # faulty kernels are used, not the cache
        assert torch.allclose(model(x), clean)


def test_kr_and_fmr_are_differentiable():
    torch.manual_seed(0)
    for cls in (KRConv2d, FMRConv2d):
        layer = cls(nn.Conv2d(3, 4, 3), torch.tensor([0, 2]), ratio=0.5)
        layer(torch.randn(2, 3, 5, 5)).sum().backward()
        assert layer.replica.weight.grad is not None and layer.primary.weight.grad is not None
        assert layer.replica.bias.grad is not None


def test_partial_depthwise_duplication():
    torch.manual_seed(0)
    # a depthwise conv with no pointwise partner is ranked and duplicated like any conv
    model = nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 6, 3, padding=1, groups=6)
    ).eval()
    scores = rank_channels(model, "weight_sum")
    x = torch.randn(2, 3, 8, 8)
    for method in ("kr", "fmr"):
        dup = duplicate(model, 0.5, scores, method)
        assert dup[2].duplicated == 3 and not dup[2].paired
        with torch.no_grad():
            assert torch.allclose(dup(x), model(x), atol=1e-6)


def test_d2nn_without_errors_equals_original():
    m, x = _net("mobilenet_v1"), _x()
    net = d2nn(m, 0.5)
    assert isinstance(net, D2NN) and "ratio=0.5" in repr(net)
    with torch.no_grad():
        assert torch.equal(net(x), m(x))


@pytest.mark.parametrize("secondary_errors", ["independent", "none"])
def test_d2nn_shared_part_gets_the_same_errors(secondary_errors):
    m = _net("vgg16")
    net = d2nn(m, 0.5, rank_channels(m, "weight_sum"), secondary_errors=secondary_errors)
    unshared = net.unshared["features.3"]
    assert int(unshared.sum()) == 4
    seen = {}
    with torch.no_grad(), transient_errors(net, weight_rate=0.3, seed=0):
        for copy in ("primary", "secondary"):
            layer = getattr(net, copy).features[3]
            layer.register_forward_pre_hook(
                lambda mod, a, copy=copy: seen.__setitem__(copy, mod.weight.detach().clone())
            )
        net(_x())
    for copy in ("primary", "secondary"):
        getattr(net, copy).features[3]._forward_pre_hooks.clear()
    p, s = seen["primary"], seen["secondary"]
    clean = m.features[3].weight
    assert torch.equal(p[~unshared], s[~unshared])  # shared filters: same errors
    assert not torch.equal(p[~unshared], clean[~unshared])
    if secondary_errors == "independent":
        assert not torch.equal(p[unshared], s[unshared])  # duplicated filters: independent
        assert not torch.equal(s[unshared], clean[unshared])
    else:
        assert torch.equal(s[unshared], clean[unshared])


def test_d2nn_feature_map_ties_and_random_kind():
    m, x = _net("vgg16"), _x(2)
    net = d2nn(m, 0.5)
    maps = {}
    with torch.no_grad(), transient_errors(net, fmap_rate=0.3, kind="random", seed=0):
        for copy in ("primary", "secondary"):
            getattr(net, copy).features[0].register_forward_hook(
                lambda mod, a, out, copy=copy: maps.__setitem__(copy, out.clone())
            )
        net(x)
    for copy in ("primary", "secondary"):
        getattr(net, copy).features[0]._forward_hooks.clear()
    u = net.unshared["features.0"]
    # both copies see the same input, so equal shared channels mean equal errors (positions+values)
    assert torch.equal(maps["primary"][:, ~u], maps["secondary"][:, ~u])
    assert not torch.equal(maps["primary"][:, u], maps["secondary"][:, u])


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda m, s: duplicate(m, 1.5, s, "kr"), "ratio"),
        (lambda m, s: duplicate(m, -0.1, s, "kr"), "ratio"),
        (lambda m, s: duplicate(m, 0.5, s, "tmr"), "kr"),
        (lambda m, s: duplicate(m, 0.5, {"nope": torch.ones(3)}, "kr"), "not Conv2d"),
        (lambda m, s: duplicate(m, 0.5, {"features.0": torch.ones(3)}, "kr"), "output channels"),
        (lambda m, s: duplicate(m, 0.5, {}, "kr"), "rank_channels"),
        (lambda m, s: duplicate(duplicate(m, 0.5, s), 0.5, s), "already duplicated"),
        (lambda m, s: d2nn(m, 0.5, s, secondary_errors="some"), "independent"),
    ],
)
def test_bad_arguments(call, match):
    m = _net("vgg16")
    with pytest.raises(ValueError, match=match):
        call(m, rank_channels(m, "weight_sum"))


def test_ratio_extremes():
    m = _net("vgg16")
    s = rank_channels(m, "weight_sum")
    none = duplicate(m, 0.0, s, "kr")
    assert not any(isinstance(mod, DuplicatedConv2d) for mod in none.modules())
    full = duplicate(m, 1.0, s, "fmr")
    assert all(mod.full for mod in full.modules() if isinstance(mod, DuplicatedConv2d))
    with torch.no_grad():
        assert torch.allclose(full(_x()), m(_x()), atol=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_duplication():
    m = _net("mobilenet_v1").cuda()
    x = _x().cuda()
    s = rank_channels(m, "weight_sum")
    with torch.no_grad():
        ref = m(x)
        for method in ("kr", "fmr"):
            dup = duplicate(m, 0.5, s, method)
            assert torch.allclose(dup(x), ref, atol=1e-5)
            with transient_errors(dup, 0.01, 0.01, seed=0):
                assert dup(x).is_cuda
