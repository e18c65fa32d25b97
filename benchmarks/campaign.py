"""Benchmark of the stuck-at campaign engine (FAT Algorithm 1, channel stuck@) on CNV W1A1 and
W2A2: fault evaluations per second of

  (a) naive per-fault re-execution (:func:`fatlib.fat.campaign.naive_campaign`: forward hook + full
      brevitas forward per fault),
  (b) PyTorchFI 0.6 with a custom channel-injection function (when installed),
  (c) :func:`fatlib.fat.campaign.stuck_at_campaign`,

the ratio c/a, and the engine's achieved MAC/s against the suffix-MAC lower bound (the MACs of
the layers after each fault's site, summed over faults: what any re-execution that reuses the
golden prefix must still compute).

(a) and (b) cost the same for every fault (a full forward pass), so they run on a few seeded
faults (half before, half after (c), against changing load on a shared machine) and their
per-fault time is extrapolated. (c) runs the whole campaign (``--engine-faults N``: a uniform
sample instead, whose mix of layers - and hence rate - matches the whole campaign's).

The networks are randomly initialised (seeded) with BatchNorm statistics calibrated on the
benchmark images, which are synthetic (fatlib.core.data.synthetic_dataset); training changes the
engine's speed only through how often faults are masked. About 3 minutes on 2 CPU cores at the
defaults. Run:  python benchmarks/campaign.py [--width 1.0] [--images 200] [--device cpu]
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fatlib import campaign as C  # noqa: E402
from fatlib.core.data import synthetic_dataset  # noqa: E402
from fatlib.core.models import activation_sites, cnv  # noqa: E402
from fatlib.core.torch_utils import model_device  # noqa: E402
from fatlib.fat.campaign.engine import Engine  # noqa: E402


def calibrated_cnv(wb: int, ab: int, width: float, images: torch.Tensor, seed: int) -> nn.Module:
    """Seeded random CNV whose BatchNorm statistics are those of ``images`` (balanced
    activations, like a trained network's)."""
    torch.manual_seed(seed)
    model = cnv(wb, ab, width=width)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the pass
    model.train()
    with torch.no_grad():
        for s in range(0, images.shape[0], 100):
            model(images[s : s + 100])
    return model.eval()


class _FaultPoint(nn.Module):
    """Leaf identity placed after an activation site, so that PyTorchFI (which hooks leaf
    modules of chosen types) can reach the site's output. PyTorchFI reads ``.weight.shape`` of
    every hooked layer, hence the empty buffer."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("weight", torch.empty(0), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def _with_fault_points(model: nn.Module) -> nn.Module:
    wrapped = copy.deepcopy(model)
    sites = {id(s) for s in activation_sites(wrapped)}
    for name in ("conv_features", "linear_features"):
        old = getattr(wrapped, name)
        new = nn.ModuleList()
        for m in old:
            new.append(m)
            if id(m) in sites:
                new.append(_FaultPoint())
        setattr(wrapped, name, new)
    return wrapped


def pytorchfi_campaign(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    faults: pd.DataFrame,
    batch: int,
    device: torch.device,
) -> np.ndarray:
    """Channel stuck@ with PyTorchFI 0.6: ``declare_neuron_fi`` with a custom injection
    function that overwrites the whole channel; one corrupted model per fault (PyTorchFI's way)."""
    from pytorchfi.core import fault_injection

    wrapped = _with_fault_points(model).to(device)
    pfi = fault_injection(
        wrapped,
        batch,
        input_shape=list(images.shape[1:]),
        layer_types=[_FaultPoint],
        use_cuda=device.type == "cuda",
    )
    state = {"value": 0.0}

    def stuck_channel(module: nn.Module, inp, output: torch.Tensor) -> None:
        layer = pfi.get_current_layer()
        if layer in pfi.corrupt_layer:
            output[:, pfi.corrupt_dim1[pfi.corrupt_layer.index(layer)]] = state["value"]
        pfi.updateLayer()
        if pfi.get_current_layer() >= pfi.get_total_layers():
            pfi.reset_current_layer()

    correct = np.zeros(len(faults), dtype=np.int64)
    with torch.no_grad():
        for i, (layer, channel, value) in enumerate(
            faults[["layer", "channel", "value"]].itertuples(index=False)
        ):
            state["value"] = float(value)
            spatial = pfi.get_layer_dim(int(layer)) == 4
            corrupted = pfi.declare_neuron_fi(
                function=stuck_channel,
                layer_num=[int(layer)],
                batch=[0],
                dim1=[int(channel)],
                dim2=[0 if spatial else None],
                dim3=[0 if spatial else None],
            )
            corrupted.eval()
            for s in range(0, images.shape[0], batch):
                x, y = images[s : s + batch].to(device), labels[s : s + batch].to(device)
                correct[i] += int((corrupted(x).argmax(1) == y).sum())
    return correct


def bench_network(
    wb: int,
    ab: int,
    args: argparse.Namespace,
    images: torch.Tensor,
    labels: torch.Tensor,
    device: torch.device,
) -> dict:
    name = f"CNV W{wb}A{ab}"
    model = calibrated_cnv(wb, ab, args.width, images, seed=args.seed).to(device)
    data = (images, labels)
    space = C.enumerate_faults(model)
    n_all = len(space)
    macs = C.suffix_macs(model)
    full_macs = macs[0] + _first_layer_macs(model)  # one forward pass per image
    rng = np.random.default_rng(args.seed)
    print(
        f"\n== {name}, width {args.width}, {images.shape[0]} images, {n_all} channel faults "
        f"(every level of every site), {full_macs / 1e6:.1f} MMAC per image forward ==",
        flush=True,
    )
    out = {"net": name, "faults": n_all}

    # (a) naive per-fault re-execution: timed in two halves, before and after (c), so that a
    # change in the load of a shared machine affects both about equally
    pick = np.sort(rng.choice(n_all, size=min(args.naive_faults, n_all), replace=False))
    sub = space.iloc[pick].reset_index(drop=True)
    C.naive_campaign(model, (images[:8], labels[:8]), faults=sub.iloc[:1])  # warm-up
    t = time.perf_counter()
    C.naive_campaign(model, data, faults=sub.iloc[:0], batch_size=args.batch)
    t_setup = time.perf_counter() - t  # enumeration + golden pass, paid once per campaign
    half = (len(sub) + 1) // 2

    def naive_part(part: pd.DataFrame) -> tuple[pd.DataFrame, float]:
        t0 = time.perf_counter()
        res = C.naive_campaign(model, data, faults=part, batch_size=args.batch)
        return res, time.perf_counter() - t0 - t_setup

    naive1, t1 = naive_part(sub.iloc[:half])

    # (b) PyTorchFI
    try:
        import pytorchfi  # noqa: F401
    except ImportError:
        pfi = None
        print("(b) pytorchfi 0.6: not installed (pip install pytorchfi==0.6.0) - skipped")
        out["pfi_fps"] = float("nan")
    else:
        pfi_sub = sub.iloc[: args.pfi_faults]
        t = time.perf_counter()
        pfi = pytorchfi_campaign(model, images, labels, pfi_sub, args.batch, device)
        t_pfi = time.perf_counter() - t

    # (c) this engine
    sample = None if args.engine_faults <= 0 or args.engine_faults >= n_all else args.engine_faults
    budget = None if args.memory_budget is None else int(args.memory_budget * 2**20)
    t = time.perf_counter()
    eng = C.stuck_at_campaign(
        model,
        data,
        sample=sample,
        seed=args.seed,
        progress=False,
        batch_size=args.batch,
        memory_budget=budget,
    )
    t_eng = time.perf_counter() - t

    naive2, t2 = naive_part(sub.iloc[half:])
    naive = pd.concat([naive1, naive2], ignore_index=True)
    t_naive = t1 + t2
    rate_a = len(sub) / t_naive
    out["naive_fps"] = rate_a
    print(
        f"(a) naive re-execution: {len(sub)} faults in {t_naive:.1f} s (+{t_setup:.1f} s setup per campaign) "
        f"-> {rate_a:.3f} faults/s (measured on {len(sub)} seeded faults, {half} before and "
        f"{len(sub) - half} after (c); extrapolated: full campaign {n_all / rate_a / 3600:.2f} h)",
        flush=True,
    )
    if pfi is not None:
        rate_b = len(pfi_sub) / t_pfi
        out["pfi_fps"] = rate_b
        same = bool((pfi == naive["correct"].to_numpy()[: len(pfi_sub)]).all())
        print(
            f"(b) pytorchfi 0.6 (custom channel injection): {len(pfi_sub)} faults in {t_pfi:.1f} s -> "
            f"{rate_b:.3f} faults/s (extrapolated: full campaign {n_all / rate_b / 3600:.2f} h; "
            f"same counts as (a): {same})",
            flush=True,
        )
    rate_c = len(eng) / t_eng
    lower = float(sum(macs[int(L)] for L in eng["layer"])) * images.shape[0]
    out.update({"engine_fps": rate_c, "ratio": rate_c / rate_a, "mac_per_s": lower / t_eng})
    what = "all faults" if sample is None else f"a uniform sample of {len(eng)} faults (seed {args.seed})"
    print(
        f"(c) fatlib engine: {what} in {t_eng:.1f} s -> {rate_c:.2f} faults/s "
        f"(full campaign {n_all / rate_c / 60:.1f} min)",
        flush=True,
    )
    print(
        f"    suffix-MAC lower bound {lower / 1e9:.1f} GMAC -> {lower / t_eng / 1e9:.1f} GMAC/s achieved; "
        f"naive computes {full_macs * images.shape[0] * len(sub) / 1e9:.1f} GMAC for its {len(sub)} faults "
        f"-> {full_macs * images.shape[0] * len(sub) / t_naive / 1e9:.2f} GMAC/s",
        flush=True,
    )
    check = eng.merge(naive, on=["layer", "channel", "value"], suffixes=("", "_naive"))
    if len(check):
        same = bool((check["correct"] == check["correct_naive"]).all())
        print(
            f"    exactness check on the {len(check)} faults both ran: {'identical' if same else 'DIFFERENT'}"
        )
    print(f"ratio c/a = {rate_c / rate_a:.1f}x", flush=True)
    return out


def _first_layer_macs(model: nn.Module) -> int:
    """MACs per image of the layers up to and including the first site (conv 0)."""
    with torch.no_grad():
        eng = Engine(model.eval(), model_device(model), (3, 32, 32), tables=False)
    return eng.stages[0].macs


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--width", type=float, default=1.0, help="CNV width (1.0 = the paper's)")
    p.add_argument("--images", type=int, default=200, help="test images per fault")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--nets", nargs="+", default=["w1a1", "w2a2"], help="networks (w1a1 w1a2 w2a2 ...)")
    p.add_argument(
        "--naive-faults", type=int, default=6, help="faults timed for (a), half before and half after (c)"
    )
    p.add_argument("--pfi-faults", type=int, default=6, help="faults timed for (b) (<= --naive-faults)")
    p.add_argument(
        "--engine-faults",
        type=int,
        default=0,
        help="uniformly sampled faults timed for (c); 0 = the whole campaign",
    )
    p.add_argument(
        "--batch", type=int, default=100, help="images per forward batch (naive, pytorchfi, engine)"
    )
    p.add_argument("--memory-budget", type=float, default=None, help="engine memory budget in MiB")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    device = torch.device(args.device)
    ds = synthetic_dataset(n=args.images, seed=args.seed, split="test")
    images, labels = ds.images.float() / 255.0, ds.labels
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {device}; "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}"
    )
    results = []
    for net in args.nets:
        wb, ab = int(net.lower()[1]), int(net.lower()[3])
        results.append(bench_network(wb, ab, args, images, labels, device))
    print("\nsummary (faults/s):")
    print(
        f"{'network':12} {'faults':>7} {'naive':>9} {'pytorchfi':>10} {'engine':>9} {'c/a':>7} {'GMAC/s':>7}"
    )
    for r in results:
        print(
            f"{r['net']:12} {r['faults']:7d} {r['naive_fps']:9.3f} {r['pfi_fps']:10.3f} "
            f"{r['engine_fps']:9.2f} {r['ratio']:7.1f} {r['mac_per_s'] / 1e9:7.1f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
