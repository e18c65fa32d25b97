import pytest
import torch
from brevitas.nn import QuantConv2d, QuantLinear

from fatlib.core import models


@pytest.mark.parametrize("w,a", [(1, 1), (1, 2), (1, 3), (1, 4), (2, 2)])
def test_levels_of_every_precision(w, a):
    net = models.cnv(w, a, width=0.125)
    sites = models.activation_sites(net)
    assert len(sites) == 8
    expected = {1: [-1.0, 1.0], 2: [-1.0, 0.0, 1.0]}.get(a)
    for site in sites:
        levels = models.activation_levels(site)
        assert levels.numel() == (2 if a == 1 else 2**a - 1)
        assert torch.all(levels[1:] > levels[:-1])
        assert levels[0] == -1.0 and levels[-1] == 1.0
        if expected:
            assert levels.tolist() == expected
        else:  # evenly spaced, symmetric, contains 0
            step = 2.0 / (levels.numel() - 1)
            assert torch.allclose(levels, torch.linspace(-1, 1, levels.numel()), atol=1e-6)
            assert abs(step - (levels[1] - levels[0])) < 1e-6


def test_topology_of_paper_cnv():
    net = models.cnv(1, 1)
    convs = [m for m in net.conv_features if isinstance(m, QuantConv2d)]
    fcs = [m for m in net.linear_features if isinstance(m, QuantLinear)]
    assert [c.out_channels for c in convs] == [64, 64, 128, 128, 256, 256]
    assert all(c.kernel_size == (3, 3) and c.padding == (0, 0) and c.bias is None for c in convs)
    assert [(f.in_features, f.out_features) for f in fcs] == [(256, 512), (512, 512), (512, 10)]
    pools = [i for i, m in enumerate(net.conv_features) if isinstance(m, torch.nn.MaxPool2d)]
    assert len(pools) == 2
    assert isinstance(net.linear_features[-1], models.TensorNorm)
    out = net.eval()(torch.rand(2, 3, 32, 32))
    assert out.shape == (2, 10)
    assert "W1A1" in repr(net)


def test_width_scales_channels():
    net = models.cnv(2, 2, width=0.25, num_classes=43)
    convs = [m.out_channels for m in net.conv_features if isinstance(m, QuantConv2d)]
    assert convs == [16, 16, 32, 32, 64, 64]
    assert net.eval()(torch.rand(3, 3, 32, 32)).shape == (3, 43)


def test_matches_brevitas_bnn_pynq_cnv_bit_for_bit():
    """Golden reference: brevitas' own bnn_pynq CNV with the same weights gives the same logits."""
    ref_mod = pytest.importorskip("brevitas_examples.bnn_pynq.models.CNV")
    for w, a in [(1, 1), (2, 2)]:
        torch.manual_seed(0)
        ref = ref_mod.CNV(num_classes=10, weight_bit_width=w, act_bit_width=a, in_bit_width=8, in_ch=3)
        ours = models.cnv(w, a)
        ours.load_state_dict(ref.state_dict())
        x = torch.rand(4, 3, 32, 32)
        ref.eval(), ours.eval()
        assert torch.equal(ref(x), ours(x))


def test_bad_arguments():
    with pytest.raises(ValueError, match="weight_bits"):
        models.cnv(3, 1)
    with pytest.raises(ValueError, match="act_bits"):
        models.cnv(1, 8)
    with pytest.raises(ValueError, match="width"):
        models.cnv(1, 1, width=0)
    with pytest.raises(ValueError, match="CNV"):
        models.activation_sites(models.vgg16(width=0.125))
    with pytest.raises(ValueError, match="arch"):
        models.build_model("resnet")


def test_clip_weights():
    net = models.cnv(1, 1, width=0.125)
    for m in net.modules():
        if isinstance(m, QuantConv2d):
            m.weight.data.mul_(5)
    models.clip_weights(net)
    assert all(m.weight.abs().max() <= 1 for m in net.modules() if isinstance(m, (QuantConv2d, QuantLinear)))


def test_ftd_standins_shapes():
    for net in (models.vgg16(width=0.125), models.mobilenet_v1(width=0.125)):
        assert net.eval()(torch.rand(2, 3, 32, 32)).shape == (2, 10)
