"""Selective channel triplication (FAT §V-C, Fig. 9; Gambardella et al.).

Hardware model: a fully unrolled network, one processing element per multiply-accumulate (MAC).
The cost of an output channel is the MACs that compute it: for a convolution
``H_out · W_out · C_in · k_h · k_w``, for a fully connected neuron ``in_features``. Triplicating a
channel (TMR) adds two copies of its MACs plus a majority voter per output value
(``voter_cost`` MAC-equivalents each). A triplicated channel no longer fails under a single
stuck@ fault, so the worst-case accuracy is the minimum over the faults of the channels left
unprotected. The frontier triplicates the most critical remaining channel next (the one whose
worst stuck@ value gives the lowest accuracy).
"""

from __future__ import annotations

import pandas as pd
import torch
from torch import nn

__all__ = ["channel_macs", "tmr_frontier", "channels_needed"]


@torch.no_grad()
def channel_macs(model: nn.Module, input_size: int = 32) -> pd.DataFrame:
    """MACs and output values of every output channel of CNV's eight layers that feed the
    activation sites 0–7 (FAT §V-C's hardware cost): columns ``layer``, ``channel``, ``macs``,
    ``outputs``."""
    from brevitas.nn import QuantConv2d, QuantLinear

    from fatlib.core.models import CNV, output_shapes

    if not isinstance(model, CNV):
        raise ValueError(f"channel_macs needs a fatlib CNV, got {type(model).__name__}")
    layers = [
        m
        for m in list(model.conv_features) + list(model.linear_features)
        if isinstance(m, (QuantConv2d, QuantLinear))
    ][:8]
    shapes = output_shapes(model, layers, input_size)
    rows = []
    for i, m in enumerate(layers):
        shape = shapes[id(m)]
        if isinstance(m, QuantConv2d):
            positions = shape[1] * shape[2]
            per_out = (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]
            count = m.out_channels
        else:
            positions, per_out, count = 1, m.in_features, m.out_features
        rows += [
            {"layer": i, "channel": c, "macs": positions * per_out, "outputs": positions}
            for c in range(count)
        ]
    return pd.DataFrame(rows)


def tmr_frontier(
    campaign: pd.DataFrame, costs: pd.DataFrame, voter_cost: float = 1.0, error_free: float | None = None
) -> pd.DataFrame:
    """Worst-case error against normalized hardware cost when the most critical remaining
    channel is triplicated next (FAT Fig. 9).

    ``campaign`` is a channel stuck@ campaign table (``layer``, ``channel``, ``value``,
    ``accuracy``; see :func:`fatlib.fat.campaign.stuck_at_campaign`), ``costs`` is
    :func:`channel_macs`. Returns one row per number of triplicated channels (0 … all):
    ``triplicated``, ``layer`` / ``channel`` (the one added at this step), ``cost`` (normalized:
    1 = the unprotected network), ``worst_accuracy`` and ``worst_error`` (percent) over the
    faults still possible. Once every channel is triplicated no single fault remains and the worst
    case is the error-free accuracy (``error_free``; 100 when not given)."""
    need = {"layer", "channel", "value", "accuracy"}
    if not need <= set(campaign.columns):
        raise ValueError(f"campaign table needs columns {sorted(need)} (a channel stuck@ campaign)")
    per_channel = (
        campaign.groupby(["layer", "channel"], as_index=False)["accuracy"]
        .min()
        .rename(columns={"accuracy": "worst"})
    )
    merged = per_channel.merge(costs, on=["layer", "channel"], how="left")
    if merged["macs"].isna().any():
        raise ValueError(
            "campaign has channels that the cost table lacks: were they made from the same network?"
        )
    merged = merged.sort_values(["worst", "layer", "channel"], kind="stable").reset_index(drop=True)
    base = float(costs["macs"].sum())
    extra = (2 * merged["macs"] + voter_cost * merged["outputs"]).cumsum() / base
    # worst accuracy after protecting the first k channels = min over the rest
    remaining_worst = merged["worst"][::-1].cummin()[::-1].shift(-1)
    top = error_free if error_free is not None else 100.0
    rows = [
        {
            "triplicated": 0,
            "layer": None,
            "channel": None,
            "cost": 1.0,
            "worst_accuracy": float(merged["worst"].iloc[0]) if len(merged) else top,
        }
    ]
    for k in range(len(merged)):
        worst = remaining_worst.iloc[k]
        rows.append(
            {
                "triplicated": k + 1,
                "layer": int(merged["layer"].iloc[k]),
                "channel": int(merged["channel"].iloc[k]),
                "cost": 1.0 + float(extra.iloc[k]),
                "worst_accuracy": float(worst) if pd.notna(worst) else top,
            }
        )
    out = pd.DataFrame(rows)
    out["worst_error"] = 100.0 - out["worst_accuracy"]
    return out


def channels_needed(frontier: pd.DataFrame, worst_error: float) -> dict[str, float]:
    """The fewest triplicated channels (and their normalized cost) for a worst-case error at most
    ``worst_error`` percent — FAT §V-C's example: 13.84 % needs 278 channels under SAT, 2 under
    FAT. ``nan`` when even full triplication does not reach it."""
    ok = frontier[frontier["worst_error"] <= worst_error + 1e-9]
    if ok.empty:
        return {"channels": float("nan"), "cost": float("nan")}
    first = ok.iloc[0]
    return {"channels": int(first["triplicated"]), "cost": float(first["cost"])}
