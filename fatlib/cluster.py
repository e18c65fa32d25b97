"""The book on Dask (issue #15): the trainings and campaigns of a profile's pages as tasks, on
one machine or a cluster, before the pages run.

    python -m fatlib.book --profile cpu --workers 2            # a local cluster of 2 workers
    python -m fatlib.book --profile paper --scheduler tcp://host:8786
    fatlib plan --profile cpu                                   # the work, listed up front

Where the work comes from: the pages themselves (:mod:`fatlib.core.work`). Each page runs as a
Dask task in *plan mode*; a page whose trainings and campaigns are all in the store simply
runs to its end (its executed notebook is the page), and a page that needs work stops and
hands back its units. Each unit runs once as a Dask task however many pages need it (SAT W1A1
is one unit for all the pages that evaluate it) — a unit needing a training after the first
unit that trains the same key, trainings ahead of campaigns — and a page runs again as soon as
the units it waits for are done, while other pages plan or run beside it. A page whose next
batch of work depends on its first needs more executions; after :data:`MAX_ROUNDS` a page
runs outside plan mode. The book's first page (the scoreboard) runs last, in the calling
process, and the book is rendered. The store is the meeting point: one process trains a key
while others wait (:func:`fatlib.core.files.writer_lock`), nothing half-written is read, and a
unit retried after its worker died resumes its training from the checkpoint.

Workers: a local cluster of ``workers`` processes (one task each at a time), each with
``threads`` torch / OpenMP threads (default: the cores divided among them); every worker of a
GPU machine uses its GPU (several per GPU is the user's choice), on a machine with several GPUs
worker *i* uses GPU *i* mod *n*. With ``scheduler`` an existing cluster is used; its workers
must see the book root, the store (``$FATLIB_STORE``) and the data on a shared filesystem.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fatlib.core import work

__all__ = ["PagePlan", "plan_page", "plan_book", "run_on_dask", "connect", "PLAN_COLUMNS", "MAX_ROUNDS"]

#: executions of a page in plan mode before it runs outside it (then it does its remaining work itself)
MAX_ROUNDS = 4
#: the columns of ``fatlib plan``'s table
PLAN_COLUMNS = [
    "pages",
    "function",
    "network",
    "dataset",
    "scheme",
    "p",
    "seed",
    "campaign",
    "stored",
    "train_image_epochs",
    "est_minutes",
    "train_key",
    "key",
]


@dataclass
class PagePlan:
    """What executing one page in plan mode gave: ``done`` (it ran to its end, in ``seconds``),
    ``planned`` (it stopped for ``units``) or ``failed`` (``error``)."""

    page: str
    status: str
    seconds: float = 0.0
    units: list[work.Unit] = field(default_factory=list)
    error: str = ""


def _worker_setup(threads: int | None) -> None:
    """Per task on a worker: torch's thread count, and the GPU of this worker on a machine with
    several (its kernels see only that one)."""
    import torch

    if threads:
        torch.set_num_threads(int(threads))
    try:
        from distributed import get_worker

        name = get_worker().name
    except (ImportError, ValueError):
        return
    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if n > 1 and str(name).isdigit() and "FATLIB_USER_CUDA_VISIBLE_DEVICES" not in os.environ:
        torch.cuda.set_device(int(name) % n)
        os.environ["CUDA_VISIBLE_DEVICES"] = str(int(name) % n)


def plan_page(
    root: str | os.PathLike,
    name: str,
    parameters: dict[str, object],
    folder: str | os.PathLike,
    mode: str = "missing",
    keep: bool = True,
    kernel: str | None = None,
    threads: int | None = None,
) -> PagePlan:
    """Execute page ``name`` of the book at ``root`` in plan mode (:mod:`fatlib.core.work`,
    ``mode`` "missing" or "list"), its units written to ``folder``. With ``keep`` a page that
    runs to its end is kept as the executed page (``book/generated/<name>.ipynb``; in plan mode a
    page that needs nothing runs exactly as it runs outside it); else it is executed into
    ``folder`` and dropped."""
    from papermill.exceptions import PapermillExecutionError

    from fatlib.book import GENERATED, execute_notebook

    _worker_setup(threads)
    root, folder = Path(root), Path(folder)
    shutil.rmtree(folder, ignore_errors=True)
    source = root / "notebooks" / f"{name}.ipynb"
    target = root / GENERATED / f"{name}.ipynb" if keep else folder / f"{name}.ipynb"
    with work.plan_mode(folder, mode):
        try:
            seconds = execute_notebook(source, target, parameters, cwd=root, kernel=kernel)
        except PapermillExecutionError as err:
            if err.ename == "Planned":  # not a failure: the page waits for its units
                target.with_suffix(".failed.ipynb").unlink(missing_ok=True)
                return PagePlan(name, "planned", units=work.load_units(folder))
            return PagePlan(name, "failed", error=f"{err.ename}: {err.evalue}")
    if not keep:
        target.unlink(missing_ok=True)
    units = work.load_units(folder)
    if units:  # it ran to its end although it found work (something caught the stop): run again
        if keep:
            target.unlink(missing_ok=True)
        return PagePlan(name, "planned", units=units)
    return PagePlan(name, "done", seconds=seconds)


def _run_page(
    root: str, name: str, parameters: dict[str, object], kernel: str | None, threads: int | None
) -> float:
    """Execute a page outside plan mode (the last resort after :data:`MAX_ROUNDS`)."""
    from fatlib.book import GENERATED, execute_notebook

    _worker_setup(threads)
    with work.plan_mode(None):
        return execute_notebook(
            Path(root) / "notebooks" / f"{name}.ipynb",
            Path(root) / GENERATED / f"{name}.ipynb",
            parameters,
            cwd=Path(root),
            kernel=kernel,
        )


def _run_unit(unit: work.Unit, threads: int | None, after: Any = None) -> dict[str, Any]:
    """Run one unit on a worker; returns its timing (never the trained model)."""
    _worker_setup(threads)
    start = time.perf_counter()
    unit.run()
    try:
        from distributed import get_worker

        worker = str(get_worker().name)
    except (ImportError, ValueError):
        worker = ""
    return {"key": unit.key, "seconds": time.perf_counter() - start, "worker": worker}


def connect(
    workers: int | None = None, scheduler: str | None = None, threads: int | None = None
) -> tuple[Any, Callable[[], None], int | None]:
    """A Dask client: to the scheduler at ``scheduler``, else to a new local cluster of ``workers``
    worker processes with ``threads`` threads each (default: the cores divided among them).
    Returns ``(client, close, threads)``."""
    try:
        import dask
        from distributed import Client, LocalCluster
    except ImportError:
        raise ImportError(
            "the book on Dask needs dask's distributed scheduler: pip install 'fatlib[dask]'"
        ) from None
    if scheduler:
        client = Client(scheduler)
        return client, client.close, threads
    if workers is None or int(workers) < 1:
        raise ValueError(f"workers={workers!r}: give at least 1 worker (or a scheduler address)")
    workers = int(workers)
    if threads is None:
        threads = max(1, (os.cpu_count() or 1) // workers)
    if int(threads) < 1:
        raise ValueError(f"threads={threads!r}: give at least 1 thread per worker")
    env = {k: str(threads) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    if "CUDA_VISIBLE_DEVICES" in os.environ:
        env["FATLIB_USER_CUDA_VISIBLE_DEVICES"] = os.environ["CUDA_VISIBLE_DEVICES"]
    # workers start kernels and, on large data, torch data-loader processes: not daemons
    with dask.config.set({"distributed.worker.daemon": False}):
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            env=env,
            silence_logs=logging.ERROR,  # not the nannies' notes on stopping their workers
        )
    client = Client(cluster)

    def close() -> None:
        client.close()
        cluster.close()

    return client, close, int(threads)


def _rates() -> dict[str, float]:
    """Median training throughput (images/s) per architecture of the trainings in the store —
    what this machine measured — for the estimated minutes of ``fatlib plan``."""
    import statistics

    from fatlib.core.store import ArtifactStore

    seen: dict[str, list[float]] = {}
    for entry in ArtifactStore().entries():
        rate = entry["metrics"].get("images_per_second")
        if rate:
            seen.setdefault(str(entry["config"].get("arch", "")).upper(), []).append(float(rate))
    return {arch: statistics.median(r) for arch, r in seen.items()}


def _plan_rows(plans: Sequence[PagePlan]) -> list[dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    rates = _rates()
    for plan in plans:
        for unit in plan.units:
            if unit.key in rows:
                rows[unit.key]["pages"] += f" {plan.page}"
                continue
            d = unit.describe()
            rate = next((r for a, r in rates.items() if a and str(d["network"]).startswith(a)), None)
            epochs = d["train_image_epochs"]
            est = "" if d["stored"] or not epochs or not rate else round(float(epochs) / rate / 60, 1)
            rows[unit.key] = {
                "pages": plan.page,
                **d,
                "est_minutes": 0.0 if d["stored"] else est,
                "train_key": unit.need.get("train_key", ""),
            }
    return list(rows.values())


def plan_book(
    root: str | os.PathLike,
    names: Sequence[str],
    parameters: Callable[[str], dict[str, object]],
    client: Any = None,
    kernel: str | None = None,
    log: Callable[[str], None] = print,
) -> Any:
    """``fatlib plan``: the trainings and campaigns the pages ``names`` need, found by executing
    each in plan mode ``list`` (it stops at its first batch of work; nothing is trained, nothing
    written to the book) — on ``client``'s workers when given. A tidy table
    (:data:`PLAN_COLUMNS`): one row per unit, the pages that need it, whether its training is in
    the store, and its cost (image-epochs; minutes at the median throughput this machine's store
    recorded for the architecture, empty when it recorded none)."""
    import tempfile

    import pandas as pd

    with tempfile.TemporaryDirectory(prefix="fatlib-plan-") as tmp:
        # each page's outputs go to the temporary folder too: planning writes nothing to the book
        args = [
            (
                root,
                n,
                {**parameters(n), "OUTPUT_DIR": str(Path(tmp) / n / "results")},
                Path(tmp) / n,
                "list",
                False,
                kernel,
            )
            for n in names
        ]
        if client is None:
            plans = [plan_page(*a) for a in args]
        else:
            plans = client.gather([client.submit(plan_page, *a, pure=False) for a in args])
    failed = [p for p in plans if p.status == "failed"]
    for p in failed:
        log(f"[fatlib plan] {p.page}: failed in plan mode ({p.error})")
    table = pd.DataFrame(_plan_rows(plans), columns=PLAN_COLUMNS)
    table.attrs["pages_without_work"] = [p.page for p in plans if p.status == "done"]
    return table


def _submit_unit(client: Any, unit: work.Unit, threads: int | None, after: Any = None) -> Any:
    """Submit one unit: after ``after`` (the unit that trains the same key first: this one then
    finds the training in the store), trainings ahead of campaigns. A unit whose worker dies is
    run again by Dask (its training resumes from its checkpoint); one that raises is retried
    twice."""
    return client.submit(
        _run_unit,
        unit,
        threads,
        after,
        key=f"unit-{unit.key}",
        retries=2,
        pure=False,
        priority=1 if unit.need.get("kind") == "train" else 0,
    )


def _run_units(
    client: Any, units: Sequence[work.Unit], threads: int | None, log: Callable[[str], None]
) -> list:
    """Run ``units`` on the cluster and wait for them (one per training key first, the others after
    it); one timing row per unit."""
    first_of: dict[str, Any] = {}
    futures = []
    for unit in units:
        fut = _submit_unit(client, unit, threads, first_of.get(unit.train_key) if unit.train_key else None)
        if unit.train_key and unit.train_key not in first_of:
            first_of[unit.train_key] = fut
        futures.append(fut)
    log(f"[fatlib.book] dask: {len(units)} unit(s) of work")
    rows = []
    for unit, fut in zip(units, futures, strict=True):
        try:
            rows.append({**fut.result(), "unit": repr(unit)})
        except Exception as err:
            raise RuntimeError(f"{unit!r} failed on the cluster: {type(err).__name__}: {err}") from err
    return rows


def run_on_dask(
    root: str | os.PathLike,
    names: Sequence[str],
    parameters: Callable[[str], dict[str, object]],
    record: Callable[[str, float], None],
    workers: int | None = None,
    scheduler: str | None = None,
    threads: int | None = None,
    kernel: str | None = None,
    log: Callable[[str], None] = print,
) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """Execute the pages ``names`` (the book's first page excluded: the caller runs it last) on
    Dask as the module says. ``parameters(name)`` gives a page's papermill parameters,
    ``record(name, seconds)`` is called for each page done. Returns the seconds of each page's
    final execution and one row per unit run (its key, seconds, worker)."""
    root = Path(root).resolve()
    from distributed import as_completed

    from fatlib.book import GENERATED

    client, close, threads = connect(workers, scheduler, threads)
    plan_root = root / GENERATED / ".plan"
    times: dict[str, float] = {}
    unit_rows: list[dict[str, Any]] = []
    rounds: dict[str, int] = dict.fromkeys(names, 0)
    what: dict[Any, tuple[str, Any]] = {}  # future -> ("page", name) | ("unit", Unit) | ("last", name)
    unit_futures: dict[str, Any] = {}  # unit key -> its future (each unit runs once for all pages)
    first_of: dict[str, Any] = {}  # training key -> the first unit that trains it
    done_units: set[str] = set()
    waiting: dict[str, set[str]] = {}  # page -> the units it waits for
    pending = as_completed()

    done_before: dict[str, set[str]] = {}  # page -> the units done when its execution started

    def submit_page(name: str) -> None:
        rounds[name] += 1
        done_before[name] = set(done_units)
        if rounds[name] > MAX_ROUNDS:  # as the serial runner does, whatever it still needs
            fut = client.submit(_run_page, str(root), name, parameters(name), kernel, threads, pure=False)
            what[fut] = ("last", name)
        else:
            fut = client.submit(
                plan_page,
                str(root),
                name,
                parameters(name),
                str(plan_root / name),
                "missing",
                True,
                kernel,
                threads,
                key=f"page-{name}-{rounds[name]}-{time.time_ns()}",
                pure=False,
            )
            what[fut] = ("page", name)
        pending.add(fut)

    try:
        for name in names:
            submit_page(name)
        for fut in pending:
            kind, item = what.pop(fut)
            if kind == "unit":
                try:
                    unit_rows.append({**fut.result(), "unit": repr(item)})
                except Exception as err:
                    raise RuntimeError(
                        f"{item!r} failed on the cluster: {type(err).__name__}: {err}"
                    ) from err
                done_units.add(item.key)
                for name in [n for n, keys in waiting.items() if keys <= done_units]:
                    del waiting[name]
                    submit_page(name)
                continue
            if kind == "last":
                times[item] = fut.result()
                record(item, times[item])
                continue
            plan: PagePlan = fut.result()
            if plan.status == "failed":
                raise RuntimeError(
                    f"{plan.page} failed ({plan.error}): see book/generated/{plan.page}.failed.ipynb"
                )
            if plan.status == "done":
                times[plan.page] = plan.seconds
                record(plan.page, plan.seconds)
                log(
                    f"[fatlib.book] {plan.page}: done in {plan.seconds:.1f} s (execution {rounds[plan.page]})"
                )
                continue
            again = sorted(u.key for u in plan.units if u.key in done_before[plan.page])
            if again:
                raise RuntimeError(
                    f"{plan.page}: units {again} ran but the page still needs them: the store did not "
                    "keep their results (is $FATLIB_STORE the same folder on every worker?)"
                )
            log(f"[fatlib.book] {plan.page}: needs {len(plan.units)} unit(s) of work")
            for unit in plan.units:
                if unit.key not in unit_futures:
                    after = first_of.get(unit.train_key) if unit.train_key else None
                    ufut = _submit_unit(client, unit, threads, after)
                    if unit.train_key and unit.train_key not in first_of:
                        first_of[unit.train_key] = ufut
                    unit_futures[unit.key] = ufut
                    what[ufut] = ("unit", unit)
                    pending.add(ufut)
            if not plan.units:  # stopped with nothing to run: run it as the serial runner does
                rounds[plan.page] = MAX_ROUNDS
            keys = {u.key for u in plan.units}
            if keys <= done_units:  # its units finished while it was being planned
                submit_page(plan.page)
            else:
                waiting[plan.page] = keys
    finally:
        close()
        shutil.rmtree(plan_root, ignore_errors=True)
    return times, unit_rows
