"""The ``fatlib`` command, every subcommand in one place:

* ``fatlib book``     — execute the book's notebooks with papermill and render the Jupyter Book
  (also ``python -m fatlib.book``);
* ``fatlib campaign`` — exhaustive stuck-at campaign of a checkpoint (FAT Algorithm 1);
* ``fatlib train``    — train (or reuse) CNV at a scale profile and print its metrics.

Each parser only reads arguments and calls the library: the work is in :mod:`fatlib.book`,
:mod:`fatlib.fat.campaign` and :mod:`fatlib.core.training`.
"""

from __future__ import annotations

import argparse
import json
import sys

from fatlib.core.schemes import CHANNEL, PATTERNS, SCHEMES

USAGE = """usage: fatlib COMMAND [ARGS]

commands:
  book      execute the book's notebooks with papermill and render the Jupyter Book
  campaign  exhaustive stuck-at campaign of a checkpoint (FAT Algorithm 1)
  train     train (or reuse) CNV at a scale profile and print its metrics

`fatlib COMMAND --help` describes each."""


# ------------------------------------------------------------------------------------------
# fatlib book
# ------------------------------------------------------------------------------------------


def book_parser() -> argparse.ArgumentParser:
    """Arguments of ``fatlib book`` / ``python -m fatlib.book``."""
    from fatlib import book

    ap = argparse.ArgumentParser(prog="fatlib book", description=book.__doc__.splitlines()[0])
    ap.add_argument("--profile", default="cpu", help="scale profile: smoke, cpu or paper")
    ap.add_argument("--root", default=".", help="book root (holds _toc.yml); default: .")
    ap.add_argument("--only", nargs="+", help="execute only these notebooks (by name)")
    ap.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    ap.add_argument("--data-dir", default="", help="data folder (default: $FATLIB_DATA or cache)")
    group = ap.add_mutually_exclusive_group()
    group.add_argument("--no-build", action="store_true", help="execute only, do not render")
    group.add_argument("--build-only", action="store_true", help="render without executing")
    return ap


def book_main(argv: list[str] | None = None) -> int:
    """``fatlib book [--profile P] [--only NAME ...] [--no-build | --build-only]``."""
    from fatlib.book import run_book

    args = book_parser().parse_args(argv)
    run_book(
        args.root,
        args.profile,
        only=args.only,
        device=args.device,
        data_dir=args.data_dir,
        execute=not args.build_only,
        build=not args.no_build,
    )
    return 0


# ------------------------------------------------------------------------------------------
# fatlib campaign
# ------------------------------------------------------------------------------------------


def campaign_parser() -> argparse.ArgumentParser:
    """Arguments of ``fatlib campaign``."""
    from fatlib.fat.campaign import DEFAULT_BATCH_SIZE
    from fatlib.fat.campaign import PATTERNS as CAMPAIGN_PATTERNS

    p = argparse.ArgumentParser(
        prog="fatlib campaign",
        description="Exhaustive single stuck-at campaign of a CNV checkpoint (FAT Algorithm 1; "
        "Tables I-IV). Writes one row per fault to --out (Parquet).",
    )
    p.add_argument("checkpoint", help="checkpoint file or store artifact directory")
    p.add_argument(
        "--pattern",
        choices=CAMPAIGN_PATTERNS,
        default=CHANNEL,
        help="channel stuck@ (default) or same pixel in all channels stuck@",
    )
    p.add_argument("--out", required=True, help="result table (.parquet)")
    p.add_argument(
        "--levels",
        type=float,
        nargs="+",
        default=None,
        help="stuck-at values (default: every level of each site's quantizer)",
    )
    p.add_argument(
        "--layers",
        type=int,
        nargs="+",
        default=None,
        help="activation sites 0-7 (default: all; for --pattern pixel the conv sites whose "
        "map has more than one position, 0-4 on CNV)",
    )
    p.add_argument(
        "--batch-size", type=int, default=None, help=f"images per batch (default {DEFAULT_BATCH_SIZE})"
    )
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda when available)")
    p.add_argument("--store", default=None, help="directory that persists progress; re-run to resume")
    p.add_argument("--shard", default=None, help="i/n: evaluate this process's share of the faults")
    p.add_argument("--sample", type=int, default=None, help="evaluate N faults drawn uniformly")
    p.add_argument("--seed", type=int, default=0, help="seed of --sample (default 0)")
    p.add_argument("--data-dir", default=None, help="data directory (default $FATLIB_DATA or the cache)")
    p.add_argument("--dataset", default=None, help="dataset name (default: the checkpoint's, else cifar10)")
    p.add_argument("--split", default="test", choices=("train", "test"), help="data split (default test)")
    p.add_argument(
        "--images", type=int, default=None, help="evaluate a seeded subset of this many images (default: all)"
    )
    p.add_argument(
        "--memory-budget",
        type=float,
        default=None,
        help="MiB for stacked faulty copies (default: half the free GPU memory / 256 on CPU)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def campaign_main(argv: list[str] | None = None) -> int:
    """``fatlib campaign CHECKPOINT --pattern channel --out results.parquet [...]``."""
    import pandas as pd
    import torch

    from fatlib.core.data import load_dataset, subset
    from fatlib.core.store import load_checkpoint
    from fatlib.fat.campaign import overall, save_results, stuck_at_campaign, summarize

    args = campaign_parser().parse_args(argv)
    try:
        model, config = load_checkpoint(args.checkpoint)
        device = args.device
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        name = args.dataset or config.get("dataset") or "cifar10"
        ds = load_dataset(name, args.split, data_dir=args.data_dir)
        if args.images is not None:
            ds = subset(ds, args.images, seed=0)
        budget = None if args.memory_budget is None else int(args.memory_budget * 2**20)
        df = stuck_at_campaign(
            model,
            ds,
            pattern=args.pattern,
            levels=args.levels,
            layers=args.layers,
            batch_size=args.batch_size,
            device=device,
            store=args.store,
            shard=args.shard,
            sample=args.sample,
            seed=args.seed,
            progress=not args.no_progress,
            memory_budget=budget,
        )
        df.attrs["campaign"]["checkpoint"] = str(args.checkpoint)
        df.attrs["campaign"]["dataset"] = f"{name}/{args.split}"
        save_results(df, args.out)
    except (ValueError, FileNotFoundError, RuntimeError) as err:
        print(f"fatlib campaign: error: {err}", file=sys.stderr)
        return 2
    with pd.option_context("display.width", 120, "display.max_rows", 200):
        print(summarize(df).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
        o = overall(df)
        print(
            f"\n{len(df)} faults on {df['total'].iloc[0] if len(df) else 0} images: error-free "
            f"{o['error_free']:.2f}%, min {o['min']:.2f}% (layer {o['worst_layer']}, "
            f"{o['worst_where']}, value {o['worst_value']:g}), variance {o['var']:.3f}"
        )
    print(f"wrote {args.out}")
    return 0


# ------------------------------------------------------------------------------------------
# fatlib train
# ------------------------------------------------------------------------------------------


def train_parser() -> argparse.ArgumentParser:
    """Arguments of ``fatlib train``."""
    ap = argparse.ArgumentParser(prog="fatlib train", description=train_main.__doc__)
    ap.add_argument("--profile", default="cpu")
    ap.add_argument("--weight-bits", type=int, default=1)
    ap.add_argument("--act-bits", type=int, default=1)
    ap.add_argument("--dataset", default="cifar10")
    ap.add_argument("--scheme", default="sat", choices=SCHEMES)
    ap.add_argument("--pattern", default=None, choices=PATTERNS)
    ap.add_argument("--p", type=float, default=0.0, help="probability in [0, 1]")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--store", default=None, help="artifact store root (default $FATLIB_STORE)")
    return ap


def train_main(argv: list[str] | None = None) -> int:
    """``fatlib train``: train CNV W*w*A*a* with a scheme at a profile (artifact store reuse)."""
    from fatlib.core.training import train_cnv

    args = train_parser().parse_args(argv)
    result = train_cnv(
        args.profile,
        args.weight_bits,
        args.act_bits,
        dataset=args.dataset,
        scheme=args.scheme,
        pattern=args.pattern,
        p=args.p,
        seed=args.seed,
        data_dir=args.data_dir,
        device=args.device,
        store=args.store,
    )
    summary = {k: v for k, v in result.metrics.items() if k != "history"}
    print(json.dumps({"artifact": str(result.path), "reused": result.reused, **summary}, indent=2))
    return 0


COMMANDS = {"book": book_main, "campaign": campaign_main, "train": train_main}


def main(argv: list[str] | None = None) -> int:
    """``fatlib COMMAND [ARGS]``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"fatlib: unknown command {command!r}\n\n{USAGE}", file=sys.stderr)
        return 2
    return COMMANDS[command](rest)


if __name__ == "__main__":
    sys.exit(main())
