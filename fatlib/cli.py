"""The ``fatlib`` command, every subcommand in one place:

* ``fatlib book``     — execute the book's notebooks with papermill and render the Jupyter Book
  (also ``python -m fatlib.book``);
* ``fatlib campaign`` — exhaustive stuck-at campaign of a checkpoint (FAT Algorithm 1);
* ``fatlib train``    — train (or reuse) CNV at a scale profile and print its metrics;
* ``fatlib export``   — write a trained CNV as a QONNX graph for FINN (``fatlib[export]``).

Each parser only reads arguments and calls the library: the work is in :mod:`fatlib.book`,
:mod:`fatlib.fat.campaign` and :mod:`fatlib.core.training`.

Errors: every subcommand checks its inputs before any work, and a user-facing error (bad
argument, missing or unreadable file, wrong data) prints one line, ``fatlib COMMAND: error:
MESSAGE``, to stderr and exits with status 2. ``--debug`` (before or after the command) shows
the full traceback instead.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fatlib.core.schemes import CHANNEL, PATTERNS, SCHEMES

USAGE = """usage: fatlib [--debug] COMMAND [ARGS]

commands:
  book      execute the book's notebooks with papermill and render the Jupyter Book
  plan      list the trainings and campaigns a profile's pages need (for the Dask runner)
  campaign  exhaustive stuck-at campaign of a checkpoint (FAT Algorithm 1)
  train     train (or reuse) CNV at a scale profile and print its metrics
  export    write a trained CNV as a QONNX graph for FINN (needs fatlib[export])

`fatlib COMMAND --help` describes each; --debug shows full tracebacks on errors."""

#: errors that come from bad input (arguments, files, data): one line on stderr, exit status 2
USER_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,
    FileNotFoundError,
    KeyError,
    OSError,
    RuntimeError,
    json.JSONDecodeError,
)


def _message(err: BaseException) -> str:
    """``err`` as one line (a KeyError without its quotes; a failed notebook as its error; newlines
    folded)."""
    import re

    if hasattr(err, "ename") and hasattr(err, "evalue"):  # papermill: a notebook cell raised
        evalue = re.sub(r"\x1b\[[0-9;]*m", "", str(err.evalue))
        cell = getattr(err, "exec_count", None)
        text = (
            f"a notebook raised {err.ename}: {evalue} (cell [{cell}]); its output so far is kept "
            "beside it as <name>.failed.ipynb, --debug shows the traceback"
        )
    elif isinstance(err, KeyError) and len(err.args) == 1:
        text = str(err.args[0])
    else:
        text = str(err)
    text = " ".join(part.strip() for part in text.splitlines() if part.strip())
    return text or type(err).__name__


def _book_errors() -> tuple[type[BaseException], ...]:
    """The book's own failures: a notebook that raised, a failed ``jupyter-book build``."""
    import subprocess

    out: list[type[BaseException]] = [subprocess.CalledProcessError]
    try:
        from papermill.exceptions import PapermillExecutionError

        out.append(PapermillExecutionError)
    except ImportError:  # pragma: no cover - papermill is a book dependency
        pass
    return tuple(out)


#: a subcommand's entry point: ``argv`` (None: ``sys.argv[1:]``) → exit status
Main = Callable[[list[str] | None], int]


def user_errors(
    command: str, extra: Callable[[], tuple[type[BaseException], ...]] | None = None
) -> Callable[[Main], Main]:
    """Decorate ``COMMAND_main(argv)``: a :data:`USER_ERRORS` error (or one of ``extra()``) prints
    ``fatlib COMMAND: error: MESSAGE`` on one line to stderr and returns 2; with ``--debug`` in
    ``argv`` it propagates with its traceback."""

    def wrap(body: Main) -> Main:
        @functools.wraps(body)
        def run(argv: list[str] | None = None) -> int:
            args = list(sys.argv[1:] if argv is None else argv)
            caught = USER_ERRORS + (extra() if extra is not None else ())
            try:
                return body(args)
            except caught as err:
                if "--debug" in args:
                    raise
                print(f"fatlib {command}: error: {_message(err)}", file=sys.stderr)
                return 2

        return run

    return wrap


def _add_debug(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--debug", action="store_true", help="show the full traceback on errors")


def check_device(device: str | None) -> None:
    """ValueError for a device string torch cannot read or that is not on this machine (``cudax``,
    ``cuda`` without CUDA): "use cpu, cuda or cuda:N"."""
    if device is None or device == "auto":
        return
    from fatlib.core.torch_utils import parse_device

    parse_device(device)


def check_out_file(path: str | Path, what: str = "--out") -> Path:
    """Before any work: ``path`` must not be a folder and its folder must be writable
    (:func:`fatlib.core.files.check_writable`; created when missing). ValueError naming it."""
    from fatlib.core.files import check_writable

    out = Path(path).expanduser()
    if out.is_dir():
        raise ValueError(f"{what} {out} is a folder: give a file path, e.g. {out / 'results.parquet'}")
    check_writable(out.parent if str(out.parent) else Path("."), f"{what} folder")
    return out


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
    group.add_argument(
        "--edition",
        metavar="PROFILE",
        help="render the book from editions/PROFILE (its executed notebooks): nothing is executed",
    )
    ap.add_argument(
        "--save-edition",
        action="store_true",
        help="after rendering, keep it as editions/<profile> (replacing the previous one)",
    )
    _add_cluster(ap)
    _add_debug(ap)
    return ap


def _add_cluster(ap: argparse.ArgumentParser) -> None:
    dask = ap.add_mutually_exclusive_group()
    dask.add_argument(
        "--workers",
        type=int,
        default=None,
        help="run trainings, campaigns and pages on a local Dask cluster of N worker processes",
    )
    dask.add_argument("--scheduler", default=None, help="run them on the Dask scheduler at this address")
    ap.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads per local worker (default: the cores divided among the workers)",
    )


def _check_cluster(args: argparse.Namespace) -> None:
    if args.workers is not None and args.workers < 1:
        raise ValueError(f"--workers {args.workers}: give at least 1 worker")
    if args.threads is not None and args.threads < 1:
        raise ValueError(f"--threads {args.threads}: give at least 1 thread per worker")
    if args.threads is not None and args.workers is None:
        raise ValueError("--threads sets the threads of each local Dask worker: give --workers N too")


@user_errors("book", extra=_book_errors)
def book_main(argv: list[str] | None = None) -> int:
    """``fatlib book [--profile P] [--only NAME ...] [--no-build | --build-only | --edition P]
    [--save-edition]``."""
    from fatlib.book import run_book
    from fatlib.core.data import asks_synthetic, named_data_dir

    args = book_parser().parse_args(argv)
    if args.edition:
        from fatlib.edition import render_edition

        if args.save_edition or args.only:
            raise ValueError("--edition renders a saved edition: it takes no --save-edition or --only")
        render_edition(args.root, args.edition)
        return 0
    check_device(args.device)
    _check_cluster(args)
    if not asks_synthetic(args.data_dir):
        named_data_dir(args.data_dir)  # a mistyped --data-dir (or $FATLIB_DATA) fails here
    run_book(
        args.root,
        args.profile,
        only=args.only,
        device=args.device,
        data_dir=args.data_dir,
        execute=not args.build_only,
        build=not args.no_build,
        workers=args.workers,
        scheduler=args.scheduler,
        threads=args.threads,
    )
    if args.save_edition:
        from fatlib.edition import save_edition

        print(f"[fatlib.book] edition: {save_edition(args.root, args.profile)}")
    return 0


# ------------------------------------------------------------------------------------------
# fatlib plan
# ------------------------------------------------------------------------------------------


def plan_parser() -> argparse.ArgumentParser:
    """Arguments of ``fatlib plan``."""
    ap = argparse.ArgumentParser(
        prog="fatlib plan",
        description="The trainings and campaigns a profile's pages need, found by the pages "
        "themselves (executed in plan mode: nothing is trained or written to the book)",
    )
    ap.add_argument("--profile", default="cpu", help="scale profile: smoke, cpu or paper")
    ap.add_argument("--root", default=".", help="book root (holds _toc.yml); default: .")
    ap.add_argument("--only", nargs="+", help="plan only these notebooks (by name)")
    ap.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    ap.add_argument("--data-dir", default="", help="data folder (default: $FATLIB_DATA or cache)")
    ap.add_argument("--out", default=None, help="also write the table here (.csv)")
    _add_cluster(ap)
    _add_debug(ap)
    return ap


@user_errors("plan", extra=_book_errors)
def plan_main(argv: list[str] | None = None) -> int:
    """``fatlib plan [--profile P] [--only NAME ...] [--workers N | --scheduler ADDR] [--out F]``."""
    import pandas as pd

    from fatlib.book import page_parameters, toc_notebooks, toc_root
    from fatlib.cluster import connect, plan_book
    from fatlib.core.profiles import get_profile

    args = plan_parser().parse_args(argv)
    get_profile(args.profile)
    check_device(args.device)
    _check_cluster(args)
    out = check_out_file(args.out) if args.out else None
    root = Path(args.root).resolve()
    first = toc_root(root)
    names = [n for n in toc_notebooks(root) if n != first]
    if args.only:
        unknown = sorted(set(args.only) - set(names))
        if unknown:
            raise ValueError(f"--only {unknown}: not in the toc; notebooks are {names}")
        names = [n for n in names if n in args.only]
    client, close = None, None
    if args.workers is not None or args.scheduler:
        client, close, _ = connect(args.workers, args.scheduler, args.threads)
    try:
        table = plan_book(
            root,
            names,
            lambda n: page_parameters(n, args.profile, args.device, args.data_dir, first),
            client=client,
        )
    finally:
        if close is not None:
            close()
    with pd.option_context("display.max_rows", None, "display.width", 200, "display.max_colwidth", 40):
        print(
            table.drop(columns=["key", "train_key"]).to_string(index=False)
            if len(table)
            else "no trainings or campaigns"
        )
    todo = table[~table["stored"]]
    minutes = pd.to_numeric(todo["est_minutes"], errors="coerce")
    trainings = todo.drop_duplicates("train_key") if "train_key" in todo else todo
    image_epochs = int(pd.to_numeric(trainings["train_image_epochs"], errors="coerce").fillna(0).sum())
    print(
        f"\n{len(table)} unit(s), {len(todo)} to run ({image_epochs} "
        f"image-epochs of training; {minutes.sum():.0f} min estimated for the {minutes.notna().sum()} "
        f"with a throughput on record); pages without trainings or campaigns: "
        f"{', '.join(table.attrs['pages_without_work']) or 'none'}"
    )
    if out is not None:
        from fatlib.core.files import atomic_file

        with atomic_file(out, suffix=".csv.part") as tmp:
            table.to_csv(tmp, index=False)
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
    p.add_argument(
        "--device", default=None, help="cpu, cuda, cuda:1 ... (default or auto: cuda when available)"
    )
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
    _add_debug(p)
    return p


def check_classes(ds: Any, model: Any, config: dict, name: str) -> None:
    """Before the campaign: the dataset's classes must be the model's output classes
    (``config["num_classes"]``, else the model's ``num_classes``) and every label one of them."""
    from fatlib.core.data import DATASETS

    n_model = config.get("num_classes", getattr(model, "num_classes", None))
    if n_model is None:
        return
    n_model = int(n_model)
    trained_on = config.get("dataset")
    hint = (
        f"use --dataset {trained_on} (the dataset the checkpoint was trained on)"
        if trained_on and trained_on != name
        else "evaluate the checkpoint on the dataset it was trained on"
    )
    if name in DATASETS and ds.num_classes != n_model:
        raise ValueError(
            f"dataset {name} has {ds.num_classes} classes but the model outputs {n_model}: {hint}"
        )
    if len(ds) and int(ds.labels.max()) >= n_model:
        raise ValueError(
            f"dataset {name} has labels up to {int(ds.labels.max())} but the model outputs {n_model} "
            f"classes (0..{n_model - 1}): {hint}"
        )


@user_errors("campaign")
def campaign_main(argv: list[str] | None = None) -> int:
    """``fatlib campaign CHECKPOINT --pattern channel --out results.parquet [...]``."""
    import pandas as pd
    import torch

    from fatlib.core.data import load_dataset, subset
    from fatlib.core.files import check_writable
    from fatlib.core.store import load_checkpoint
    from fatlib.fat.campaign import overall, save_results, stuck_at_campaign, summarize

    args = campaign_parser().parse_args(argv)
    # every input is checked before the campaign runs
    if args.device == "auto":
        args.device = None
    check_device(args.device)
    check_out_file(args.out)
    if args.store is not None:
        check_writable(args.store, "--store")
    if args.images is not None and args.images < 1:
        raise ValueError(f"--images {args.images}: give a positive number of images")
    if not Path(args.checkpoint).expanduser().exists():
        raise FileNotFoundError(f"checkpoint {args.checkpoint} not found")
    model, config = load_checkpoint(args.checkpoint)
    device = args.device
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    name = args.dataset or config.get("dataset") or "cifar10"
    ds = load_dataset(name, args.split, data_dir=args.data_dir)
    check_classes(ds, model, config, name)
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
    _add_debug(ap)
    return ap


@user_errors("train")
def train_main(argv: list[str] | None = None) -> int:
    """``fatlib train``: train CNV W*w*A*a* with a scheme at a profile (artifact store reuse)."""
    from fatlib.core.training import train_cnv

    args = train_parser().parse_args(argv)
    check_device(args.device)
    if not 0.0 <= args.p <= 1.0:
        raise ValueError(f"--p {args.p}: give a probability in [0, 1] (e.g. 0.05 for 5 %)")
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


# ------------------------------------------------------------------------------------------
# fatlib export
# ------------------------------------------------------------------------------------------


def export_parser() -> argparse.ArgumentParser:
    """Arguments of ``fatlib export``."""
    ap = argparse.ArgumentParser(
        prog="fatlib export",
        description="Write a trained CNV as a cleaned-up QONNX graph, the file FINN's flow starts from "
        "(injection and dropout layers are not in it).",
    )
    ap.add_argument(
        "model", help="checkpoint file, store artifact folder, or store key (a folder name in $FATLIB_STORE)"
    )
    ap.add_argument("out", help="the .onnx file to write")
    ap.add_argument("--batch", type=int, default=1, help="the graph's fixed batch size (default 1)")
    ap.add_argument("--store", default=None, help="artifact store root for a key (default $FATLIB_STORE)")
    _add_debug(ap)
    return ap


def resolve_model(model: str, store: str | None = None) -> Path:
    """A checkpoint file or artifact folder given by path, else the store folder of that key."""
    from fatlib.core.store import ArtifactStore

    path = Path(model).expanduser()
    if path.exists():
        return path
    folder = ArtifactStore(store).root / model
    if folder.is_dir():
        return folder
    raise FileNotFoundError(
        f"{model} is neither a checkpoint file, an artifact folder nor a key of the store {folder.parent}"
    )


@user_errors("export")
def export_main(argv: list[str] | None = None) -> int:
    """``fatlib export CHECKPOINT_OR_STORE_KEY OUT.onnx [--batch N]``."""
    import pandas as pd

    from fatlib.core.store import load_checkpoint
    from fatlib.fat import export

    args = export_parser().parse_args(argv)
    if args.batch < 1:
        raise ValueError(f"--batch {args.batch}: give a positive batch size")
    out = check_out_file(args.out)
    model, config = load_checkpoint(resolve_model(args.model, args.store))
    export.to_qonnx(model, out, input_shape=(args.batch, model.in_channels, 32, 32))
    with pd.option_context("display.width", 120):
        print(export.graph_summary(out).to_string(index=False))
        q = export.quantizers(out)
        print(
            q.groupby(["kind", "bit_width"]).size().rename("quantizers").reset_index().to_string(index=False)
        )
    print(f"wrote {out}")
    return 0


COMMANDS = {
    "book": book_main,
    "plan": plan_main,
    "campaign": campaign_main,
    "train": train_main,
    "export": export_main,
}


def main(argv: list[str] | None = None) -> int:
    """``fatlib COMMAND [ARGS]``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = bool(argv) and argv[0] == "--debug"
    if debug:
        argv = argv[1:]
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"fatlib: unknown command {command!r}\n\n{USAGE}", file=sys.stderr)
        return 2
    if debug and "--debug" not in rest:
        rest.append("--debug")
    return COMMANDS[command](rest)


if __name__ == "__main__":
    sys.exit(main())
