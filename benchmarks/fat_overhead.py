"""FAT's training overhead: time per training step of FAT method 1 (injection after all 8
activation sites, channel pattern, p = 5 %) divided by standard training (SAT), CNV W1A1, the
same batches, measured interleaved in one run. Goal: ratio <= 1.05.

    .venv/bin/python benchmarks/fat_overhead.py [--width 1.0] [--batch 100] [--steps 20] [--device auto]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from fatlib.core import models, training
from fatlib.fat import injection


def step_time(model, opt, x, y, device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    out = model(x)
    loss = training.sqr_hinge_loss(out, y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    models.clip_weights(model)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--width", type=float, default=1.0)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--pattern", default="channel")
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    device = training.resolve_device(args.device)
    torch.manual_seed(0)
    sat = models.cnv(1, 1, width=args.width).to(device).train()
    fat = models.cnv(1, 1, width=args.width).to(device).train()
    fat.load_state_dict(sat.state_dict())
    injection.insert_injection(fat, args.pattern, 0.05)
    opts = {
        id(sat): torch.optim.Adam(sat.parameters(), lr=0.02),
        id(fat): torch.optim.Adam(fat.parameters(), lr=0.02),
    }
    gen = torch.Generator().manual_seed(0)
    batches = [
        (
            torch.rand(args.batch, 3, 32, 32, generator=gen).to(device),
            torch.randint(0, 10, (args.batch,), generator=gen).to(device),
        )
        for _ in range(args.steps)
    ]
    times = {"sat": [], "fat": []}
    for i, (x, y) in enumerate(batches + batches[:3]):  # the first 3 are warm-up
        order = [("sat", sat), ("fat", fat)] if i % 2 == 0 else [("fat", fat), ("sat", sat)]
        for name, model in order:
            t = step_time(model, opts[id(model)], x, y, device)
            if i >= 3:
                times[name].append(t)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(
        f"device {device}, CNV W1A1 width {args.width}, batch {args.batch}, "
        f"{args.steps} interleaved steps each"
    )
    print(f"SAT  median step {1000 * med['sat']:.1f} ms")
    print(
        f"FAT  median step {1000 * med['fat']:.1f} ms  (method 1, {args.pattern} pattern, 8 sites, p = 5 %)"
    )
    print(f"ratio FAT / SAT = {med['fat'] / med['sat']:.3f}  (goal <= 1.05)")


if __name__ == "__main__":
    main()
