"""One device check (issue #16): is fatlib correct and how fast is it on this machine's accelerator?

In a few minutes on one GPU it
  1. runs the tests that need CUDA,
  2. compares the campaign engine on the device with ``naive_campaign`` on the CPU, fault by
     fault (W1A1, W2A2, W1A3; channel and pixel stuck@): the correct counts must be identical,
  3. measures training throughput of CNV W1A1 (images/s: eager, compiled, and several trainings
     at once in separate processes) and campaign throughput (faults/s, the exhaustive channel
     campaign),
and prints one table. Without CUDA it runs the CPU part (2 with the engine on the CPU, 3 eager
and campaign on the CPU, at a smaller width) and says what it skipped; CI runs that part.

    .venv/bin/python benchmarks/device_check.py            # full check (GPU) or CPU part
    .venv/bin/python benchmarks/device_check.py --quick    # CPU part at CI sizes
Exit status 1 when an exactness check fails.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from fatlib.core import models, training
from fatlib.fat.campaign import naive_campaign, stuck_at_campaign

ROOT = Path(__file__).resolve().parents[1]
ROWS: list[dict[str, str]] = []


def row(check: str, device: str, result: str, status: str) -> None:
    ROWS.append({"check": check, "device": device, "result": result, "status": status})
    print(f"[device_check] {check} on {device}: {result} ({status})", flush=True)


def exactness(dev: torch.device, width: float, images: int, faults: int) -> bool:
    ok_all = True
    g = torch.Generator().manual_seed(0)
    x = torch.rand(images, 3, 32, 32, generator=g)
    y = torch.randint(0, 10, (images,), generator=g)
    for wb, ab in ((1, 1), (2, 2), (1, 3)):
        torch.manual_seed(wb * 10 + ab)
        cpu_model = models.spread_statistics(models.cnv(wb, ab, width=width), wb + ab)
        for pattern in ("channel", "pixel"):
            fast = stuck_at_campaign(
                cpu_model.to(dev), (x, y), pattern=pattern, sample=faults, seed=1, device=dev, progress=False
            )
            ref = naive_campaign(cpu_model.cpu(), (x, y), pattern=pattern, faults=fast)
            same = np.array_equal(fast["correct"].to_numpy(), ref["correct"].to_numpy())
            ok_all &= same
            row(
                f"engine = naive_campaign, CNVW{wb}A{ab} {pattern}",
                str(dev),
                f"{len(fast)} faults × {images} images, {'identical' if same else 'DIFFERENT'} counts",
                "ok" if same else "FAIL",
            )
    return ok_all


def train_throughput(dev: torch.device, width: float, steps: int, compiled: bool) -> float:
    torch.manual_seed(0)
    model = models.cnv(1, 1, width=width).to(dev).train()
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(100, 3, 32, 32, generator=g).to(dev)
    y = torch.randint(0, 10, (100,), generator=g).to(dev)

    def step() -> torch.Tensor:
        loss = training.sqr_hinge_loss(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        models.clip_weights(model)
        return loss

    run = torch.compile(step) if compiled else step
    for _ in range(3):  # warm-up (and compilation)
        run()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        run()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    return steps * 100 / (time.perf_counter() - t0)


def parallel_throughput(n: int, width: float, steps: int) -> float:
    cmd = [sys.executable, __file__, "--train-worker", str(width), str(steps)]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) for _ in range(n)]
    rates = [
        float(json.loads(p.communicate()[0].strip().splitlines()[-1])["images_per_second"]) for p in procs
    ]
    return sum(rates)


def campaign_throughput(dev: torch.device, width: float, images: int) -> tuple[int, float]:
    torch.manual_seed(0)
    model = models.spread_statistics(models.cnv(1, 1, width=width), 1).to(dev)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(images, 3, 32, 32, generator=g)
    y = torch.randint(0, 10, (images,), generator=g)
    stuck_at_campaign(model, (x[:100], y[:100]), device=dev, progress=False, sample=16)  # warm-up
    if dev.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    df = stuck_at_campaign(model, (x, y), device=dev, progress=False)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    return len(df), len(df) / (time.perf_counter() - t0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="CPU part at CI sizes")
    ap.add_argument("--train-worker", nargs=2, metavar=("WIDTH", "STEPS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    cuda = torch.cuda.is_available()
    if args.train_worker:
        dev = torch.device("cuda" if cuda else "cpu")
        rate = train_throughput(dev, float(args.train_worker[0]), int(args.train_worker[1]), compiled=False)
        print(json.dumps({"images_per_second": rate}))
        return 0
    dev = torch.device("cuda" if cuda else "cpu")
    start = time.perf_counter()
    ok = True
    if cuda:
        r = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-k",
                "cuda or CUDA",
                "tests/unit",
                "-p",
                "no:cacheprovider",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            env={**os.environ, "FATLIB_DEVICE_CHECK": "1"},
        )
        tail = (r.stdout.strip().splitlines() or ["no output"])[-1]
        ok &= r.returncode == 0
        row(
            "tests that need CUDA", torch.cuda.get_device_name(0), tail, "ok" if r.returncode == 0 else "FAIL"
        )
    else:
        row("tests that need CUDA", "cpu", "no CUDA here", "skipped: needs a GPU")
    quick = args.quick or not cuda
    ok &= exactness(
        dev, width=0.25 if quick else 0.5, images=60 if args.quick else 300, faults=12 if args.quick else 60
    )
    width = 0.25 if quick else 1.0
    steps = 5 if args.quick else (20 if quick else 200)
    row(
        "training CNV W1A1, batch 100, eager",
        str(dev),
        f"{train_throughput(dev, width, steps, False):,.0f} images/s (width {width})",
        "measured",
    )
    if cuda:
        row(
            "training, torch.compile",
            str(dev),
            f"{train_throughput(dev, width, steps, True):,.0f} images/s",
            "measured",
        )
        for n in (4, 8):
            row(
                f"training, {n} processes at once",
                str(dev),
                f"{parallel_throughput(n, width, steps):,.0f} images/s together",
                "measured",
            )
    else:
        row("training, torch.compile", "cpu", "not measured on the CPU", "skipped: needs a GPU")
        row("training, several processes at once", "cpu", "not measured on the CPU", "skipped: needs a GPU")
    n, rate = campaign_throughput(dev, width, 100 if args.quick else 1017)
    row(
        "exhaustive channel campaign CNV W1A1",
        str(dev),
        f"{n:,} faults at {rate:,.0f} faults/s (width {width})",
        "measured",
    )
    print()
    w = [max(len(r[k]) for r in ROWS + [{k: k for k in ROWS[0]}]) for k in ROWS[0]]
    for r in [{k: k for k in ROWS[0]}] + ROWS:
        print(" | ".join(str(r[k]).ljust(wi) for k, wi in zip(r, w)))
    verdict = "all exactness checks passed" if ok else "A CHECK FAILED"
    print(f"\n[device_check] {verdict} in {time.perf_counter() - start:.0f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
