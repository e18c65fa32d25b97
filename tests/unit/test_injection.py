import math

import pytest
import torch

from fatlib.core import data, models, training
from fatlib.fat import injection
from fatlib.fat.injection import ErrorInjection


def _bound(n, p, sigmas=5.0):
    return sigmas * math.sqrt(n * p * (1 - p))


@pytest.mark.parametrize("pattern", ["channel", "pixel", "element"])
@pytest.mark.parametrize("levels", [(-1.0, 1.0), (-1.0, 0.0, 1.0)])
def test_rate_and_level_frequencies(pattern, levels):
    g = torch.Generator().manual_seed(0)
    layer = ErrorInjection(pattern, 0.3, levels, generator=g)
    x = torch.full((64, 16, 8, 8), 7.0)  # 7 is no level: replaced sites are recognisable
    out = layer(x)
    mask = layer.last_mask
    n = mask.numel()
    replaced = int(mask.sum())
    assert abs(replaced - 0.3 * n) <= _bound(n, 0.3)
    k = len(levels)
    for v in levels:
        count = int(((out == v) & mask.expand_as(out)).sum() / (out.numel() / n))
        assert abs(count - 0.3 / k * n) <= _bound(n, 0.3 / k), (v, count)
    assert torch.equal(out != 7.0, mask.expand_as(out))


def test_channel_masks_constant_over_space_pixel_masks_over_channels():
    x = torch.full((8, 6, 5, 5), 3.0)
    ch = ErrorInjection("channel", 0.5, (-1.0, 1.0), generator=torch.Generator().manual_seed(1))(x)
    assert torch.equal(ch, ch[:, :, :1, :1].expand_as(ch))
    px = ErrorInjection("pixel", 0.5, (-1.0, 1.0), generator=torch.Generator().manual_seed(1))(x)
    assert torch.equal(px, px[:, :1].expand_as(px))
    assert (ch != 3).any() and (ch == 3).any() and (px != 3).any() and (px == 3).any()


def test_fc_inputs_channel_means_neuron_and_pixel_is_refused():
    x = torch.zeros(500, 40)
    out = ErrorInjection("channel", 0.5, (-1.0, 1.0), generator=torch.Generator().manual_seed(0))(x)
    rows_mixed = ((out != 0).any(1) & (out == 0).any(1)).float().mean()
    assert rows_mixed > 0.9  # neurons of one sample are drawn independently
    with pytest.raises(ValueError, match="pixel"):
        ErrorInjection("pixel", 0.5, (-1.0, 1.0))(x)


def test_gradient_zero_where_replaced_and_unchanged_elsewhere():
    layer = ErrorInjection("element", 0.4, (-1.0, 0.0, 1.0), generator=torch.Generator().manual_seed(2))
    x = torch.randn(16, 4, 6, 6, requires_grad=True)
    upstream = torch.randn(16, 4, 6, 6)
    layer(x).backward(upstream)
    mask = layer.last_mask
    assert torch.all(x.grad[mask] == 0)
    assert torch.equal(x.grad[~mask], upstream[~mask])  # no rescaling (Eq. 3, unlike dropout)


def test_disabled_is_identity():
    layer = ErrorInjection("channel", 0.9, (-1.0, 1.0), enabled=False)
    x = torch.randn(4, 3, 5, 5, requires_grad=True)
    out = layer(x)
    assert out is x
    layer.enabled = True
    layer.eval()  # eval mode does not switch it off: the trainer does
    assert not torch.equal(layer(x), x)


def test_seeded_generator_repeats_and_fresh_draws_differ():
    x = torch.zeros(32, 8, 4, 4)
    a = ErrorInjection("channel", 0.5, (-1.0, 1.0), generator=torch.Generator().manual_seed(5))
    b = ErrorInjection("channel", 0.5, (-1.0, 1.0), generator=torch.Generator().manual_seed(5))
    first = a(x)
    assert torch.equal(first, b(x))
    assert not torch.equal(first, a(x))


def test_bad_inputs():
    with pytest.raises(ValueError, match="pattern"):
        ErrorInjection("row", 0.1, (-1.0, 1.0))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        ErrorInjection("channel", 5, (-1.0, 1.0))
    with pytest.raises(ValueError, match="empty"):
        ErrorInjection("channel", 0.1, [])
    net = models.cnv(1, 1, width=0.125)
    with pytest.raises(ValueError, match="cannot be output"):
        injection.insert_injection(net, "channel", 0.1, levels=(0.0,))
    with pytest.raises(ValueError, match="pattern"):
        injection.insert_injection(net, "diagonal", 0.1)


def test_insert_after_every_site_and_remove_restores():
    net = models.cnv(1, 2, width=0.125).eval()
    x = torch.rand(4, 3, 32, 32)
    golden = net(x)
    keys = set(net.state_dict())
    layers = injection.insert_injection(net, "channel", 0.5)
    assert len(layers) == 8 and all(l.levels.tolist() == [-1.0, 0.0, 1.0] for l in layers)
    assert set(net.state_dict()) == keys  # the deployed network's weights are unchanged
    assert not torch.equal(net(x), golden)
    with pytest.raises(ValueError, match="already"):
        injection.insert_injection(net, "channel", 0.5)
    injection.remove_injection(net)
    assert torch.equal(net(x), golden) and injection.injection_layers(net) == []
    assert len(injection.insert_injection(net, "pixel", 0.5)) == 6  # conv sites only
    injection.remove_injection(net)
    with injection.injected(net, "channel", 1.0) as layers:
        assert len(layers) == 8
    assert torch.equal(net(x), golden)


def test_injection_sits_after_the_quantizer():
    net = models.cnv(1, 1, width=0.125).eval()
    sites = models.activation_sites(net)
    seen = []
    pool = net.conv_features[list(net.conv_features).index(sites[1]) + 1]
    pool.register_forward_hook(lambda m, i, o: seen.append(i[0]))
    layers = injection.insert_injection(net, "channel", 1.0, levels=(1.0,))
    net(torch.rand(2, 3, 32, 32))
    assert layers[1].last_mask.all()
    assert torch.all(seen[0] == 1.0)  # the pool after site 1 sees the stuck values
    assert models.activation_levels(sites[0]).tolist() == [-1.0, 1.0]  # probing bypasses injection


def test_method2_enables_exactly_one_layer_per_epoch_and_all_over_time():
    net = models.cnv(1, 1, width=0.125)
    cfg = training.TrainConfig(scheme="fat-m2", pattern="channel", p=0.05, width=0.125)
    scheme = injection.TrainingScheme.attach(net, cfg)
    g = torch.Generator().manual_seed(0)
    chosen = []
    for epoch in range(200):
        scheme.on_epoch(epoch, g)
        enabled = [l.enabled for l in scheme.layers]
        assert sum(enabled) == 1
        chosen.append(enabled.index(True))
        scheme.on_eval()
        assert not any(l.enabled for l in scheme.layers)
    assert set(chosen) == set(range(8))


def test_method1_and_dropout_schemes():
    net = models.cnv(1, 1, width=0.125)
    m1 = injection.TrainingScheme.attach(
        net, training.TrainConfig(scheme="fat-m1", pattern="pixel", p=0.05, width=0.125)
    )
    m1.on_epoch(0, torch.Generator())
    assert len(m1.layers) == 6 and all(l.enabled for l in m1.layers)
    m1.export(net)
    d2 = injection.TrainingScheme.attach(net, training.TrainConfig(scheme="dropout2d", p=0.025, width=0.125))
    assert [type(l).__name__ for l in d2.layers] == ["Dropout2d"] * 6 + ["Dropout"] * 2
    assert all(l.p == 0.025 for l in d2.layers)


def test_fat_training_runs_and_stores_plain_network(tmp_path):
    ds = data.synthetic_dataset(n=128)
    cfg = training.TrainConfig(
        weight_bits=1,
        act_bits=1,
        width=0.125,
        epochs=3,
        batch_size=32,
        scheme="fat-m2",
        pattern="channel",
        p=0.05,
        augment=False,
    )
    res = training.train(cfg, ds, ds, store=tmp_path, progress=False)
    assert injection.injection_layers(res.model) == []
    assert all(h["active_site"] in range(8) for h in res.history)
    sat = training.train(
        training.TrainConfig(weight_bits=1, act_bits=1, width=0.125, epochs=3, batch_size=32, augment=False),
        ds,
        ds,
        store=tmp_path,
        progress=False,
    )
    assert sat.path != res.path  # the key covers scheme, pattern and p


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_injection_on_cuda():
    layer = ErrorInjection("channel", 0.5, (-1.0, 1.0)).cuda()
    out = layer(torch.zeros(8, 4, 3, 3, device="cuda"))
    assert out.device.type == "cuda" and (out != 0).any()


def test_callers_tensor_is_never_modified_and_graph_tensors_work():
    layer = ErrorInjection("channel", 0.5, (-1.0, 1.0), generator=torch.Generator().manual_seed(3))
    x = torch.zeros(8, 4, 3, 3)
    out = layer(x)
    assert torch.all(x == 0) and (out != 0).any()
    # inside a graph the activation is replaced in place, and gradients still follow Eq. 3
    w = torch.ones(1, requires_grad=True)
    h = torch.zeros(8, 4, 3, 3) + w  # produced by an autograd op
    layer(h).sum().backward()
    kept = (~layer.last_mask).expand(8, 4, 3, 3).sum()
    assert w.grad.item() == kept.item()


def test_site_table_reads_fig5_from_the_model():
    net = models.cnv(1, 2, width=0.25)
    table = injection.site_table(net)
    assert table["kind"].tolist().count("inject") == 8 and table["kind"].tolist().count("conv") == 6
    kinds = table["kind"].tolist()
    for i, k in enumerate(kinds):  # every injection layer sits right after an activation
        if k == "inject":
            assert kinds[i - 1] == "act" and table["site"][i] == table["site"][i - 1]
    assert table[table.kind == "conv"]["shape"].tolist()[0] == "16×30×30"
    assert table[table.kind == "pool"]["shape"].tolist() == ["16×14×14", "32×5×5"]
    assert injection.site_table(net, "pixel")["kind"].tolist().count("inject") == 6


@pytest.mark.parametrize(
    "pattern,shape",
    [
        ("channel", (6, 5, 7, 3)),
        ("pixel", (6, 5, 7, 3)),
        ("element", (6, 5, 7, 3)),
        ("channel", (9, 11)),
        ("element", (9, 11)),
        ("channel", (4, 3, 1, 1)),
        ("pixel", (4, 1, 2, 5)),
        ("channel", (4, 1, 2, 5)),
    ],
)
@pytest.mark.parametrize("channels_last", [False, True])
def test_indexed_write_equals_where_and_masked_fill(pattern, shape, channels_last):
    """The CPU path (copy + indexed write) gives the values and gradients of the CUDA path
    (torch.where forward, masked_fill backward), bit for bit, for every pattern and odd shapes."""
    if channels_last and len(shape) != 4:
        pytest.skip("channels-last needs 4-D")
    g = torch.Generator().manual_seed(3)
    x = torch.randn(shape, generator=g)
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    x.requires_grad_(True)
    layer = ErrorInjection(pattern, 0.5, [-1.0, 0.0, 1.0], generator=torch.Generator().manual_seed(1))
    y = layer(x)
    up = torch.randn(shape, generator=g)
    (gx,) = torch.autograd.grad(y, x, up)
    mask = layer.last_mask
    value = layer.levels[layer.last_index]
    assert mask.any() and not mask.all()
    assert torch.equal(y, torch.where(mask, value, x.detach()))
    assert torch.equal(gx, up.masked_fill(mask, 0.0))
