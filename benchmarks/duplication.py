"""Latency of kernel recovery (KR) and feature-map recovery (FMR) — FT-DeepNets §4.3, Table 1.

From ONE process, with the six networks timed interleaved (``fatlib.ftd.overhead.measure_latency``),
prints for VGG-16 and MobileNetV1 the ratios KR / original and FMR / original at the given
duplication ratio (default 50 %, weight-sum ranking), plus the analytic FMR bound
``(MACs + duplicated MACs) / MACs``. Networks are randomly initialised: latency does not depend
on the weights. Example::

    python benchmarks/duplication.py --width 0.5 --batch 32 --device cpu
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

try:
    import fatlib  # noqa: F401
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandas as pd
import torch

from fatlib.core.models import mobilenet_v1, vgg16
from fatlib.ftd.duplication import duplicate
from fatlib.ftd.overhead import fmr_latency_bound, latency_summary, measure_latency
from fatlib.ftd.ranking import rank_channels


def main(argv: list[str] | None = None) -> pd.DataFrame:
    """Run the benchmark and print one row per network; returns that table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--width", type=float, default=0.5, help="channel multiplier (paper: 1.0)")
    ap.add_argument("--batch", type=int, default=32, help="images per forward")
    ap.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    ap.add_argument("--ratio", type=float, default=0.5, help="duplication ratio (paper: 0.5)")
    ap.add_argument(
        "--min-run-time", type=float, default=0.6, help="seconds per blocked_autorange measurement"
    )
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = ap.parse_args(argv)

    torch.manual_seed(0)
    device = torch.device(args.device)
    shape = (args.batch, 3, 32, 32)
    models, bounds = {}, {}
    for arch, build in (("vgg16", vgg16), ("mobilenet_v1", mobilenet_v1)):
        net = build(width=args.width).eval().to(device)
        scores = rank_channels(net, "weight_sum")
        models[f"{arch}/original"] = net
        models[f"{arch}/kr"] = duplicate(net, args.ratio, scores, "kr").eval()
        models[f"{arch}/fmr"] = duplicate(net, args.ratio, scores, "fmr").eval()
        bounds[arch] = fmr_latency_bound(net, args.ratio, shape, scores)

    t0 = time.perf_counter()
    lat = measure_latency(
        models,
        shape,
        device=device,
        min_run_time=args.min_run_time,
        rounds=args.rounds,
        num_threads=args.threads,
    )
    elapsed = time.perf_counter() - t0
    rows = []
    for arch in bounds:
        part = lat[lat["model"].str.startswith(arch + "/")].copy()
        part["model"] = part["model"].str.split("/").str[1]
        summ = latency_summary(part, baseline="original").set_index("model")
        rows.append(
            {
                "network": arch,
                "original_ms": summ.loc["original", "median_ms"],
                "kr_ms": summ.loc["kr", "median_ms"],
                "fmr_ms": summ.loc["fmr", "median_ms"],
                "kr_ratio": summ.loc["kr", "ratio"],
                "fmr_ratio": summ.loc["fmr", "ratio"],
                "fmr_bound": bounds[arch],
            }
        )
    table = pd.DataFrame(rows)
    threads = int(lat["threads"].iloc[0])
    print(
        f"FT-DeepNets Table 1 on this machine: width={args.width}, batch={args.batch}, "
        f"device={device}, threads={threads}, duplication ratio={args.ratio}, "
        f"{args.rounds} interleaved rounds, {elapsed:.0f} s"
    )
    with pd.option_context("display.width", 120, "display.float_format", "{:.3f}".format):
        print(table.to_string(index=False))
    return table


if __name__ == "__main__":
    main()
