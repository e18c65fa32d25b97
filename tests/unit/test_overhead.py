"""Latency and memory overhead of KR / FMR (fatlib.ftd.overhead, FT-DeepNets §4.3)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from fatlib.core.models import mobilenet_v1, vgg16
from fatlib.ftd.duplication import duplicate, duplication_summary
from fatlib.ftd.overhead import (
    compute_overhead,
    fmr_latency_bound,
    latency_summary,
    measure_latency,
    memory_overhead,
)
from fatlib.ftd.ranking import rank_channels

SHAPE = (2, 3, 32, 32)


def _net(arch: str) -> nn.Module:
    torch.manual_seed(0)
    return (vgg16 if arch == "vgg16" else mobilenet_v1)(width=0.125).eval()


@pytest.mark.parametrize("arch", ["vgg16", "mobilenet_v1"])
@pytest.mark.parametrize("method", ["kr", "fmr"])
def test_memory_measured_equals_analytic(arch, method):
    m = _net(arch)
    table = memory_overhead(m, 0.5, method, SHAPE).set_index("quantity")
    assert list(table.index) == ["kernels", "activations", "total"]
    assert (table["measured_overhead_bytes"] == table["analytic_overhead_bytes"]).all()
    scores = rank_channels(m, "weight_sum")
    dup_params = duplication_summary(duplicate(m, 0.5, scores, method))["duplicated_params"].sum()
    assert table.loc["kernels", "analytic_overhead_bytes"] == 4 * dup_params
    act = table.loc["activations", "analytic_overhead_bytes"]
    if method == "kr":
        assert act == 0  # KR computes one map from the averaged kernel
    else:
        assert act > 0
    assert table.loc["total", "measured_overhead_mb"] == pytest.approx(
        table.loc["total", "measured_overhead_bytes"] / 1e6
    )


def test_fmr_activation_overhead_by_hand():
    torch.manual_seed(0)
    # conv 3->4 (stride 1, pad 1) then conv 4->6: at ratio 0.5 FMR adds 2 and 3 maps of 8×8
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 6, 3, padding=1))
    table = memory_overhead(model, 0.5, "fmr", (1, 3, 8, 8)).set_index("quantity")
    assert table.loc["activations", "measured_overhead_bytes"] == (2 + 3) * 64 * 4
    # duplicated kernels: 2 filters of 3·3·3 + bias, 3 filters of 4·3·3 + bias
    assert table.loc["kernels", "analytic_overhead_bytes"] == (2 * 28 + 3 * 37) * 4


def test_compute_overhead_and_fmr_bound():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 6, 3, padding=1))
    table = compute_overhead(model, 0.5, (1, 3, 8, 8)).set_index("layer")
    assert table.loc["0", "macs"] == 4 * 64 * 27 and table.loc["2", "macs"] == 6 * 64 * 36
    assert table.loc["0", "fmr_extra_macs"] == 2 * 64 * 27
    bound = fmr_latency_bound(model, 0.5, (1, 3, 8, 8))
    assert bound == pytest.approx((4 * 27 + 6 * 36 + 2 * 27 + 3 * 36) / (4 * 27 + 6 * 36))
    vgg = _net("vgg16")
    assert fmr_latency_bound(vgg, 0.0, SHAPE) == 1.0
    assert 1.0 < fmr_latency_bound(vgg, 0.5, SHAPE) < 1.5  # the Linear layer is not duplicated
    # MobileNet: paired depthwise kernels are duplicated whole, so more than half is added
    mob = _net("mobilenet_v1")
    t = compute_overhead(mob, 0.5, SHAPE)
    dw = t[t["layer"].str.endswith(".0") & t["layer"].str.startswith("blocks")]
    assert (dw["fmr_extra_macs"] == dw["macs"]).all()


def test_measure_latency_table():
    m = _net("vgg16")
    scores = rank_channels(m, "weight_sum")
    models = {"original": m, "kr": duplicate(m, 0.5, scores, "kr")}
    m.train()  # measured in eval mode, the mode is restored after
    lat = measure_latency(models, (1, 3, 32, 32), min_run_time=0.02, rounds=2)
    assert m.training
    assert list(lat.columns) == [
        "model",
        "round",
        "median_ms",
        "mean_ms",
        "iqr_ms",
        "measurements",
        "batch",
        "device",
        "threads",
    ]
    assert list(lat["model"]) == ["original", "kr", "original", "kr"]  # interleaved
    assert (lat["median_ms"] > 0).all() and (lat["device"] == "cpu").all()
    summary = latency_summary(lat).set_index("model")
    assert summary.loc["original", "ratio"] == 1.0
    assert summary.loc["kr", "ratio"] > 0
    with pytest.raises(ValueError, match="baseline"):
        latency_summary(lat, baseline="fmr")


def test_bad_arguments():
    m = _net("vgg16")
    with pytest.raises(ValueError, match="models is empty"):
        measure_latency({}, SHAPE)
    with pytest.raises(ValueError, match="input_shape"):
        measure_latency({"a": m}, (3, 0))
    with pytest.raises(ValueError, match="move it"):  # the check runs before any device use
        measure_latency({"a": m}, SHAPE, device="cuda")
    with pytest.raises(ValueError, match="kr"):
        memory_overhead(m, 0.5, "both", SHAPE)
    with pytest.raises(ValueError, match="original"):
        memory_overhead(duplicate(m, 0.5, rank_channels(m, "weight_sum")), 0.5, "kr", SHAPE)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_latency():
    m = _net("vgg16")
    lat = measure_latency({"a": m.cuda()}, SHAPE, min_run_time=0.02, rounds=1)
    assert lat["device"].iloc[0].startswith("cuda")
