import pandas as pd
import pytest

from fatlib.core import models
from fatlib.fat import replication


def test_channel_macs_of_cnv():
    net = models.cnv(1, 1, width=0.25)
    costs = replication.channel_macs(net)
    assert sorted(costs["layer"].unique()) == list(range(8))
    first = costs[costs.layer == 0].iloc[0]
    assert first.macs == 30 * 30 * 3 * 9 and first.outputs == 900  # 32x32 valid 3x3 conv from RGB
    l1 = costs[costs.layer == 1].iloc[0]
    assert l1.macs == 28 * 28 * 16 * 9
    fc = costs[costs.layer == 6].iloc[0]
    assert fc.macs == 64 and fc.outputs == 1
    assert len(costs) == 16 + 16 + 32 + 32 + 64 + 64 + 128 + 128


def test_frontier_golden():
    campaign = pd.DataFrame(
        {
            "layer": [0, 0, 0, 0, 1, 1],
            "channel": [0, 0, 1, 1, 0, 0],
            "value": [-1.0, 1.0, -1.0, 1.0, -1.0, 1.0],
            "accuracy": [80.0, 70.0, 85.0, 88.0, 60.0, 90.0],
        }
    )
    costs = pd.DataFrame(
        {"layer": [0, 0, 1], "channel": [0, 1, 0], "macs": [10, 10, 20], "outputs": [2, 2, 1]}
    )
    f = replication.tmr_frontier(campaign, costs, voter_cost=1.0)
    assert f["triplicated"].tolist() == [0, 1, 2, 3]
    # most critical first: (1,0) worst 60, then (0,0) worst 70, then (0,1) worst 85
    assert f["worst_accuracy"].tolist() == [60.0, 70.0, 85.0, 100.0]
    assert f["layer"].tolist()[1:] == [1, 0, 0] and f["channel"].tolist()[1:] == [0, 0, 1]
    base = 40.0
    assert f["cost"].tolist() == pytest.approx(
        [1.0, 1 + 41 / base, 1 + (41 + 22) / base, 1 + (41 + 22 + 22) / base]
    )
    assert replication.channels_needed(f, 30.0) == {"channels": 1, "cost": pytest.approx(1 + 41 / base)}
    assert replication.channels_needed(f, 40.0)["channels"] == 0
    with_clean = replication.tmr_frontier(campaign, costs, error_free=92.0)
    assert with_clean["worst_accuracy"].iloc[-1] == 92.0  # all protected: the clean network remains


def test_bad_inputs():
    with pytest.raises(ValueError, match="columns"):
        replication.tmr_frontier(pd.DataFrame({"layer": [0]}), pd.DataFrame())
    with pytest.raises(ValueError, match="CNV"):
        replication.channel_macs(models.vgg16(width=0.125))
