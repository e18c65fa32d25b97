"""Channel ranking (fatlib.ftd.ranking, FT-DeepNets §3.1, §3.3)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset

from fatlib.core.models import mobilenet_v1, vgg16
from fatlib.ftd.ranking import (
    check_ratio,
    conv_layers,
    depthwise_pairs,
    next_convs,
    overlap,
    rank_channels,
    top_channels,
)


class ThreeConv(nn.Module):
    """conv1 (2→3) → ReLU → conv2 (3→2) → ReLU → conv3 (2→2) → pool → linear."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(2, 3, 1, bias=False)
        self.conv2 = nn.Conv2d(3, 2, 1, bias=False)
        self.conv3 = nn.Conv2d(2, 2, 3, padding=1, bias=False)
        self.fc = nn.Linear(2, 3)
        with torch.no_grad():
            # conv2 weight[out, in]: |.| column sums are 1+4=5, 2+5=7, 3+6=9
            self.conv2.weight.copy_(torch.tensor([[1.0, -2.0, 3.0], [-4.0, 5.0, -6.0]]).view(2, 3, 1, 1))
            # conv3 weight: filter 0 all 0.5, filter 1 all -1 (in channel 0) / 2 (in channel 1)
            w3 = torch.empty(2, 2, 3, 3)
            w3[0] = 0.5
            w3[1, 0] = -1.0
            w3[1, 1] = 2.0
            self.conv3.weight.copy_(w3)

    def forward(self, x):
        x = F.relu(self.conv2(F.relu(self.conv1(x))))
        x = F.adaptive_avg_pool2d(self.conv3(x), 1).flatten(1)
        return self.fc(x)


def test_weight_sum_by_hand():
    s = rank_channels(ThreeConv(), "weight_sum")
    assert list(s) == ["conv1", "conv2", "conv3"]
    # conv1 channel i is read by column i of conv2 (Eq. 2)
    assert torch.equal(s["conv1"], torch.tensor([5.0, 7.0, 9.0]))
    # conv2 channel i is read by conv3[:, i]: ch0: 9·0.5 + 9·1 = 13.5, ch1: 9·0.5 + 9·2 = 22.5
    assert torch.equal(s["conv2"], torch.tensor([13.5, 22.5]))
    # conv3 has no next conv: its own filters, 18·0.5 = 9 and 9·1 + 9·2 = 27
    assert torch.equal(s["conv3"], torch.tensor([9.0, 27.0]))


class Reordered(nn.Module):
    """Registered b, a but executed a → b: registration order would be wrong."""

    def __init__(self) -> None:
        super().__init__()
        self.b = nn.Conv2d(4, 4, 1, bias=False)
        self.a = nn.Conv2d(3, 4, 1, bias=False)

    def forward(self, x):
        return self.b(torch.relu(self.a(x)))


def test_next_conv_follows_the_traced_graph_not_registration_order():
    torch.manual_seed(0)
    m = Reordered()
    assert next_convs(m) == {"b": [], "a": ["b"]}
    s = rank_channels(m, "weight_sum")
    assert torch.allclose(s["a"], m.b.weight.detach().abs().sum(dim=(0, 2, 3)))


def test_vgg_chain():
    m = vgg16(width=0.125)
    g = next_convs(m)
    convs = [n for n, mod in m.named_modules() if isinstance(mod, nn.Conv2d)]
    assert g == {a: [b] for a, b in zip(convs, convs[1:])} | {convs[-1]: []}
    assert depthwise_pairs(m) == {}


def test_mobilenet_depthwise_pointwise_pairing():
    torch.manual_seed(0)
    m = mobilenet_v1(width=0.25)
    pairs = depthwise_pairs(m)
    assert pairs == {f"blocks.{i}.0": f"blocks.{i}.3" for i in range(13)}
    s = rank_channels(m, "weight_sum")
    col = lambda conv: conv.weight.detach().abs().sum(dim=(0, 2, 3))  # noqa: E731
    b = m.blocks
    # depthwise channel i feeds column i of its pointwise kernel (Fig. 5)
    assert torch.allclose(s["blocks.3.0"], col(b[3][3]))
    # a pointwise conv is read by the next *pointwise* conv, skipping the depthwise one
    assert torch.allclose(s["blocks.3.3"], col(b[4][3]))
    assert torch.allclose(s["stem.0"], col(b[0][3]))
    # last pointwise conv: own filters
    assert torch.allclose(s["blocks.12.3"], b[12][3].weight.detach().abs().sum(dim=(1, 2, 3)))


def _data(n=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 2, 5, 5, generator=g), torch.randint(0, 3, (n,), generator=g)


def test_second_order_matches_manual_autograd():
    torch.manual_seed(0)
    m = ThreeConv()
    x, y = _data()
    s = rank_channels(m, "second_order", (x, y), batch_size=4)  # two batches, averaged
    o1 = m.conv1(x)
    o2 = m.conv2(F.relu(o1))
    o3 = m.conv3(F.relu(o2))
    logits = m.fc(F.adaptive_avg_pool2d(o3, 1).flatten(1))
    loss = F.cross_entropy(logits, y, reduction="sum")
    grads = torch.autograd.grad(loss, [o1, o2, o3])
    for name, o, g in zip(["conv1", "conv2", "conv3"], [o1, o2, o3], grads):
        expected = (0.5 * o.detach() ** 2 * g**2).sum(dim=(0, 2, 3)) / len(x)  # Eq. 6
        assert torch.allclose(s[name], expected, rtol=1e-5, atol=1e-12), name
    assert all(p.grad is None for p in m.parameters())


def test_entropy_matches_manual():
    torch.manual_seed(0)
    m = ThreeConv()
    x, y = _data()
    s = rank_channels(m, "entropy", (x, y))
    o1 = m.conv1(x).detach()
    p = torch.softmax(o1.flatten(2).double(), dim=2)  # Eq. 8
    h = -(p * p.log()).sum(dim=2)  # Eq. 7
    assert torch.allclose(s["conv1"].double(), -h.mean(dim=0), rtol=1e-6)  # Eq. 9
    # a constant map has the maximal entropy log(H·W) -> the lowest score
    assert s["conv1"].max() <= -0.0 and s["conv1"].min() >= -math.log(25) - 1e-5


def test_data_methods_accept_datasets_and_are_deterministic():
    torch.manual_seed(0)
    m = ThreeConv()
    x, y = _data(8)
    a = rank_channels(m, "second_order", TensorDataset(x, y), batch_size=3)
    b = rank_channels(m, "second_order", (x, y), batch_size=8)
    for n in a:
        assert torch.allclose(a[n], b[n], rtol=1e-5)
    c = rank_channels(m, "second_order", (x, y), batch_size=4, batches=1)
    d = rank_channels(m, "second_order", (x[:4], y[:4]))
    assert all(torch.equal(c[n], d[n]) for n in c)


def test_mode_restored_after_ranking():
    m = ThreeConv().train()
    rank_channels(m, "entropy", _data())
    assert m.training and all(mod.training for mod in m.modules())


def test_random_ranking_is_seeded():
    m = vgg16(width=0.125)
    a, b = rank_channels(m, "random", seed=1), rank_channels(m, "random", seed=1)
    c = rank_channels(m, "random", seed=2)
    assert all(torch.equal(a[n], b[n]) for n in a)
    assert not all(torch.equal(a[n], c[n]) for n in a)


def test_top_channels_ties_and_counts():
    scores = {"l": torch.tensor([1.0, 3.0, 3.0, 0.5, 3.0, 2.0])}
    assert top_channels(scores, 0.5)["l"].tolist() == [1, 2, 4]
    assert top_channels(scores, 2 / 6)["l"].tolist() == [1, 2]
    assert top_channels(scores, 0.0)["l"].tolist() == []
    assert top_channels(scores, 1.0)["l"].tolist() == [1, 2, 4, 5, 0, 3]
    assert top_channels({"l": torch.ones(5)}, 0.5)["l"].tolist() == [0, 1, 2]  # 2.5 -> 3


def test_overlap():
    a = {"l": torch.tensor([4.0, 3.0, 2.0, 1.0])}
    b = {"l": torch.tensor([4.0, 1.0, 3.0, 2.0])}
    t = overlap(a, b, 0.5).set_index("layer").loc["l"]
    assert t["k"] == 2 and t["common"] == 1
    assert t["fraction"] == 0.5 and t["jaccard"] == pytest.approx(1 / 3)
    assert overlap(a, a, 0.5)["jaccard"].iloc[0] == 1.0


@pytest.mark.parametrize("method", ["second_order", "entropy"])
def test_data_methods_need_data(method):
    with pytest.raises(ValueError, match="needs data"):
        rank_channels(ThreeConv(), method)


def test_bad_arguments():
    with pytest.raises(ValueError, match="weight_sum"):
        rank_channels(ThreeConv(), "magnitude")
    with pytest.raises(ValueError, match="Conv2d"):
        rank_channels(nn.Linear(2, 2), "weight_sum")
    with pytest.raises(ValueError, match="ratio"):
        top_channels({"l": torch.ones(3)}, 1.5)
    with pytest.raises(ValueError, match="pair of tensors"):
        rank_channels(ThreeConv(), "entropy", data=[1, 2, 3])


def test_conv_layers_and_check_ratio():
    """The two helpers fatlib.ftd.duplication shares with ranking."""
    m = ThreeConv()
    assert conv_layers(m) == {"conv1": m.conv1, "conv2": m.conv2, "conv3": m.conv3}
    for ok in (0, 0.5, 1.0):
        check_ratio(ok)
    for bad in (-0.1, 1.5, "0.5"):
        with pytest.raises(ValueError, match="ratio"):
            check_ratio(bad)
