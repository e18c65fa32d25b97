"""The book on Dask against the serial runner (issue #15): wall time of the same pages at the
same profile from an empty store, run serially (``python -m fatlib.book``) and on a local Dask
cluster of ``--workers`` workers (``--workers N``), one after the other in this process; then
the ratio, and whether their results tables agree.

Each run gets its own copy of the book's sources and its own empty store, so both train and
campaign everything their pages need. The serial run uses torch's default thread count, the
workers ``--threads`` each (default: the cores divided among them) — the configuration a user
gets; with other thread counts the weights differ slightly (README, "What is repeatable"), so
the results are compared for information only (the test suite checks equality at equal thread
counts). Nothing is rendered (``--no-build``): rendering is the same serial step in both.

    python benchmarks/dask_book.py --profile cpu --pages fat-fig06-method1 fat-fig07-method2
    python benchmarks/dask_book.py --profile smoke            # every page, a few minutes

Writes a tidy table (``--out``, CSV): mode, workers, threads, seconds, pages, units.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fatlib import book  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def copy_sources(root: Path) -> Path:
    root.mkdir(parents=True)
    for item in ("_config.yml", "_toc.yml"):
        shutil.copy(ROOT / item, root / item)
    shutil.copytree(ROOT / "notebooks", root / "notebooks")
    shutil.copytree(ROOT / "book", root / "book", ignore=shutil.ignore_patterns("generated"))
    return root


def run(root: Path, store: Path, profile: str, pages: list[str] | None, workers: int | None, threads):
    os.environ["FATLIB_STORE"] = str(store)
    start = time.perf_counter()
    book.run_book(
        root, profile=profile, only=pages, build=False, workers=workers, threads=threads, log=lambda *_: None
    )
    return time.perf_counter() - start


def tables_agree(a: Path, b: Path) -> tuple[int, list[str]]:
    paths = sorted(p.relative_to(a) for p in (a / "results").rglob("*.csv"))
    differ = []
    for rel in paths:
        try:
            pd.testing.assert_frame_equal(pd.read_csv(a / rel), pd.read_csv(b / rel), check_exact=True)
        except (AssertionError, FileNotFoundError):
            differ.append(str(rel))
    return len(paths), differ


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="smoke")
    ap.add_argument("--pages", nargs="+", default=None, help="pages (default: every page of the toc)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=None, help="threads per worker (default: cores / workers)")
    ap.add_argument("--out", default=None, help="also write the table here (.csv)")
    args = ap.parse_args()
    threads = args.threads or max(1, (os.cpu_count() or 1) // args.workers)
    with tempfile.TemporaryDirectory(prefix="fatlib-dask-bench-") as tmp:
        tmp = Path(tmp)
        serial_root, dask_root = copy_sources(tmp / "serial"), copy_sources(tmp / "dask")
        rows = []
        t = run(serial_root, tmp / "store-serial", args.profile, args.pages, None, None)
        rows.append({"mode": "serial", "workers": 1, "threads": "default", "seconds": round(t, 1)})
        print(f"serial: {t:.1f} s", flush=True)
        t = run(dask_root, tmp / "store-dask", args.profile, args.pages, args.workers, threads)
        units = pd.read_csv(dask_root / book.GENERATED / book.WORK_FILE)
        rows.append({"mode": "dask", "workers": args.workers, "threads": threads, "seconds": round(t, 1)})
        print(
            f"dask, {args.workers} workers x {threads} thread(s): {t:.1f} s ({len(units)} units)", flush=True
        )
        n, differ = tables_agree(serial_root, dask_root)
    table = pd.DataFrame(rows).assign(profile=args.profile, pages=" ".join(args.pages or ["(all)"]))
    print(table.to_string(index=False))
    print(f"speed-up (serial / dask): {rows[0]['seconds'] / rows[1]['seconds']:.2f}x")
    print(f"results tables: {n - len(differ)} of {n} identical" + (f"; differ: {differ}" if differ else ""))
    if args.out:
        part = Path(args.out).with_suffix(".csv.part")
        table.to_csv(part, index=False)
        part.replace(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
