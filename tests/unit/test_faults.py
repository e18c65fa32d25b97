"""Transient kernel / feature-map errors (fatlib.ftd.errors, FT-DeepNets §2.2–2.3)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from fatlib.core.models import mobilenet_v1, vgg16
from fatlib.ftd.errors import apply_error, error_sites, transient_errors

KINDS = ("zero", "random", "bitflip")


def _tiny() -> nn.Module:
    torch.manual_seed(0)
    return vgg16(width=0.125).eval()


def _x(n: int = 2) -> torch.Tensor:
    return torch.randn(n, 3, 32, 32, generator=torch.Generator().manual_seed(1))


def _snapshot(model: nn.Module) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    return {n: (p, p.detach().clone()) for n, p in model.named_parameters()}


def _assert_clean(model: nn.Module, snap) -> None:
    params = dict(model.named_parameters())
    assert params.keys() == snap.keys()
    for n, (obj, val) in snap.items():
        assert params[n] is obj, f"parameter {n} was replaced"
        assert torch.equal(params[n].detach().view(torch.int32), val.view(torch.int32)), (
            f"parameter {n} changed"
        )
    for name, m in model.named_modules():
        assert not m._forward_hooks and not m._forward_pre_hooks, f"hook left on {name!r}"
        assert "weight" not in m.__dict__, f"faulty weight left on {name!r}"


class _Capture:
    """Forward pre-hook (registered inside the context) recording the weight a layer uses."""

    def __init__(self, layer: nn.Module) -> None:
        self.seen: list[torch.Tensor] = []
        self.handle = layer.register_forward_pre_hook(
            lambda m, a: self.seen.append(m.weight.detach().clone())
        )


@pytest.mark.parametrize("kind", KINDS)
def test_zero_rates_leave_output_bit_exact(kind):
    model, x = _tiny(), _x()
    with torch.no_grad():
        ref = model(x)
        with transient_errors(model, 0.0, 0.0, kind=kind, seed=0) as inj:
            out = model(x)
    assert torch.equal(out, ref)
    st = inj.stats
    assert st.weights_seen == sum(
        m.weight.numel() for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))
    )
    assert st.fmap_seen > 0 and st.weights_replaced == 0 and st.fmap_replaced == 0


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("rate", [0.02, 0.3])
def test_realised_rates_match_requested(kind, rate):
    model, x = _tiny(), _x(4)
    with torch.no_grad(), transient_errors(model, rate, rate, kind=kind, seed=3) as inj:
        model(x)
        model(x)
    st = inj.stats
    for replaced, seen in ((st.weights_replaced, st.weights_seen), (st.fmap_replaced, st.fmap_seen)):
        sigma = math.sqrt(seen * rate * (1 - rate))
        assert abs(replaced - seen * rate) < 5 * sigma, (replaced, seen * rate, sigma)
    table = inj.layer_stats()
    assert list(table["layer"]) == error_sites(model)
    assert table["weights_replaced"].sum() == st.weights_replaced


def test_stats_count_the_weights_actually_zeroed():
    model, x = _tiny(), _x()
    layer = model.features[3]
    with torch.no_grad(), transient_errors(model, weight_rate=0.25, seed=5) as inj:
        cap = _Capture(layer)
        model(x)
        cap.handle.remove()
    faulty = cap.seen[0]
    clean = layer.weight.detach()
    assert not (clean == 0).any()  # precondition: every zeroed weight is visible
    row = inj.layer_stats().set_index("layer").loc["features.3"]
    assert row["weights_replaced"] == int((faulty != clean).sum()) == int((faulty == 0).sum())
    assert row["weights_seen"] == clean.numel()


def test_model_restored_after_context():
    model, x = _tiny(), _x()
    snap = _snapshot(model)
    with torch.no_grad():
        ref = model(x)
        with transient_errors(model, 0.1, 0.1, kind="bitflip", seed=0):
            bad = model(x)
        after = model(x)
    assert not torch.equal(bad, ref)
    assert torch.equal(after, ref)
    _assert_clean(model, snap)


class _Boom(nn.Module):
    def forward(self, x):
        raise RuntimeError("boom")


def test_model_restored_after_exception_in_forward():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Sequential(nn.Conv2d(4, 4, 3), _Boom()), nn.Conv2d(4, 2, 1))
    snap = _snapshot(model)
    with pytest.raises(RuntimeError, match="boom"):
        with transient_errors(model, weight_rate=0.5, fmap_rate=0.5, seed=0):
            model(_x())
    _assert_clean(model, snap)


def test_model_restored_after_exception_in_body():
    model, x = _tiny(), _x()
    snap = _snapshot(model)
    with pytest.raises(KeyError):
        with transient_errors(model, weight_rate=0.5, seed=0):
            model(x)
            raise KeyError("user code failed")
    _assert_clean(model, snap)


def test_errors_are_transient_and_seeded():
    model, x = _tiny(), _x()
    with torch.no_grad():
        with transient_errors(model, 0.05, 0.05, seed=7):
            a1, a2 = model(x), model(x)
        with transient_errors(model, 0.05, 0.05, seed=7):
            b1 = model(x)
        with transient_errors(model, 0.05, 0.05, seed=8):
            c1 = model(x)
    assert not torch.equal(a1, a2)  # fresh draws at every forward
    assert torch.equal(a1, b1)  # same seed, same errors
    assert not torch.equal(a1, c1)


def test_permanent_errors_reuse_one_draw():
    model = _tiny()
    x = _x(1).repeat(3, 1, 1, 1)  # three identical images
    with torch.no_grad():
        with transient_errors(model, 0.05, 0.05, seed=1, permanent=True) as inj:
            p1, p2 = model(x), model(x)
        with transient_errors(model, 0.0, 0.05, seed=1):
            t1 = model(x)
    assert torch.equal(p1, p2)
    # a permanent feature-map fault sits at one C×H×W position for every image of the batch
    assert torch.equal(p1[0], p1[1]) and torch.equal(p1[0], p1[2])
    assert not torch.equal(t1[0], t1[1])
    assert inj.stats.weights_replaced > 0


def test_bitflip_flips_exactly_one_bit():
    torch.manual_seed(0)
    layer = nn.Linear(64, 32)
    model = nn.Sequential(layer)
    with torch.no_grad(), transient_errors(model, weight_rate=1.0, kind="bitflip", seed=2):
        cap = _Capture(layer)
        model(torch.randn(2, 64))
        cap.handle.remove()
    diff = torch.bitwise_xor(cap.seen[0].view(torch.int32), layer.weight.detach().view(torch.int32))
    bits = [bin(v & 0xFFFFFFFF).count("1") for v in diff.flatten().tolist()]
    assert set(bits) == {1}
    positions = {(v & 0xFFFFFFFF).bit_length() - 1 for v in diff.flatten().tolist()}
    assert len(positions) > 20  # many different bits of the word are hit, sign bit included
    # apply_error itself, every bit position
    t = torch.randn(32)
    out = apply_error(t, torch.ones(32, dtype=torch.bool), "bitflip", torch.arange(32))
    d = torch.bitwise_xor(out.view(torch.int32), t.view(torch.int32))
    assert [(v & 0xFFFFFFFF) for v in d.tolist()] == [1 << i for i in range(32)]


def test_random_errors_lie_in_the_tensor_range():
    torch.manual_seed(0)
    t = torch.randn(1000)
    mask = torch.rand(1000) < 0.5
    out = apply_error(t, mask, "random", torch.rand(1000))
    assert torch.equal(out[~mask], t[~mask])
    assert out[mask].min() >= t.min() and out[mask].max() <= t.max()
    assert not torch.equal(out[mask], t[mask])


def test_layer_selection():
    model, x = _tiny(), _x()
    with torch.no_grad(), transient_errors(model, 0.5, 0.5, layers=["features.7"], seed=0) as inj:
        model(x)
    assert inj.layers == ["features.7"]
    assert inj.stats.weights_seen == model.features[7].weight.numel()
    assert error_sites(model, include_linear=False)[-1] == "features.40"
    assert error_sites(model)[-1] == "classifier"


def test_mobilenet_feature_map_errors_hit_only_selected_layer():
    torch.manual_seed(0)
    model = mobilenet_v1(width=0.125).eval()
    x = _x()
    seen: dict[str, torch.Tensor] = {}

    def record(name):
        return lambda m, a, out: seen.__setitem__(name, out.clone())

    with torch.no_grad():
        hs = [
            model.get_submodule(n).register_forward_hook(record("clean/" + n))
            for n in ("blocks.12.0", "blocks.12.3")
        ]
        model(x)
        for h in hs:
            h.remove()
        with transient_errors(model, fmap_rate=1.0, layers=["blocks.12.3"]):
            # registered after the injector's hooks: sees the faulty maps
            hs = [
                model.get_submodule(n).register_forward_hook(record(n))
                for n in ("blocks.12.0", "blocks.12.3")
            ]
            model(x)
            for h in hs:
                h.remove()
    assert seen["clean/blocks.12.3"].abs().sum() > 0
    assert torch.count_nonzero(seen["blocks.12.3"]) == 0
    assert torch.equal(seen["blocks.12.0"], seen["clean/blocks.12.0"])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(weight_rate=-0.1), "weight_rate"),
        (dict(weight_rate=1.5), "weight_rate"),
        (dict(fmap_rate=2.0), "fmap_rate"),
        (dict(kind="stuck"), "zero"),
        (dict(layers=["nope"]), "features.0"),
        (dict(layers="features.0"), "list"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        transient_errors(_tiny(), **kwargs)


def test_no_layer_found():
    with pytest.raises(ValueError, match="Conv2d / Linear"):
        transient_errors(nn.Sequential(nn.ReLU()), 0.1)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_follows_model():
    model = _tiny().cuda()
    x = _x().cuda()
    snap = _snapshot(model)
    with torch.no_grad():
        ref = model(x)
        with transient_errors(model, 0.05, 0.05, kind="bitflip", seed=0) as inj:
            a = model(x)
        with transient_errors(model, 0.05, 0.05, kind="bitflip", seed=0):
            b = model(x)
        out = model(x)
        assert torch.equal(out.isnan(), ref.isnan()) and torch.equal(out.nan_to_num(0.0), ref.nan_to_num(0.0))
    # bit flips make NaN and inf: equal means equal where numbers, NaN at the same places
    assert (
        a.is_cuda and torch.equal(a.isnan(), b.isnan()) and torch.equal(a.nan_to_num(0.0), b.nan_to_num(0.0))
    )
    assert inj.stats.weights_replaced > 0
    _assert_clean(model, snap)
