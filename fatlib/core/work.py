"""Work: the trainings and campaigns a page of the book needs, as *units* a scheduler can run
before the page does (issue #15: the book on Dask, :mod:`fatlib.cluster`).

The pages themselves are the one source of truth for their work: nothing lists it by hand.
A page is executed in *plan mode* (environment variable :data:`PLAN_ENV` naming a folder);
there, :func:`fatlib.core.training.train` and a stored
:func:`fatlib.fat.campaign.stuck_at_campaign` raise :class:`Planned` instead of working when
their artifact is not in the store (mode ``"missing"``), or always (mode ``"list"``, for
``fatlib plan``). The library's work functions are marked :func:`unit` (``train_cnv``,
``train_ftd``, one seed of ``evaluate_cnv``, ...): the outermost unit a :class:`Planned`
passes through becomes the :class:`Unit` — the call with its arguments, picklable, runnable on
any worker — and :func:`gather` runs a batch of independent calls, collecting every unit the
batch needs before it stops the page. The units found are written to the plan folder
(:func:`load_units`); the page stops with ``Planned``, and runs again once the units ran.

Outside plan mode :func:`gather` is a plain loop and :func:`unit` adds nothing: the serial book
runs exactly the code it ran before.
"""

from __future__ import annotations

import contextvars
import functools
import hashlib
import importlib
import os
import pickle
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fatlib.core.files import atomic_write_bytes

__all__ = [
    "PLAN_ENV",
    "PLAN_MODE_ENV",
    "UNITS_FILE",
    "Planned",
    "Unit",
    "planning",
    "listing",
    "plan_mode",
    "unit",
    "gather",
    "load_units",
]

#: plan mode is on when this names a folder; the units found are written there
PLAN_ENV = "FATLIB_PLAN"
#: ``missing`` (default): stop for work the store lacks; ``list``: stop for all work (``fatlib plan``)
PLAN_MODE_ENV = "FATLIB_PLAN_MODE"
#: the file in the plan folder that holds the units found (a pickled list of :class:`Unit`)
UNITS_FILE = "units.pkl"
_MODES = ("missing", "list")

# how many work constructs (units, gathers) the current call is inside: only the outermost records
_depth: contextvars.ContextVar[int] = contextvars.ContextVar("fatlib_work_depth", default=0)


def planning() -> bool:
    """Whether this process is in plan mode (:data:`PLAN_ENV` set)."""
    return bool(os.environ.get(PLAN_ENV))


def listing() -> bool:
    """Whether plan mode stops for every unit, stored or not (``fatlib plan``)."""
    mode = os.environ.get(PLAN_MODE_ENV, "missing") or "missing"
    if mode not in _MODES:
        raise ValueError(f"{PLAN_MODE_ENV}={mode!r}: use one of {_MODES}")
    return planning() and mode == "list"


@contextmanager
def plan_mode(folder: str | os.PathLike | None, mode: str = "missing") -> Iterator[Path | None]:
    """Set (``folder`` given) or clear (None) plan mode for this process and the kernels it starts,
    restoring the previous environment on exit."""
    if mode not in _MODES:
        raise ValueError(f"mode={mode!r}: use one of {_MODES}")
    saved = {k: os.environ.get(k) for k in (PLAN_ENV, PLAN_MODE_ENV)}
    try:
        if folder is None:
            os.environ.pop(PLAN_ENV, None)
            os.environ.pop(PLAN_MODE_ENV, None)
        else:
            Path(folder).mkdir(parents=True, exist_ok=True)
            os.environ[PLAN_ENV] = str(folder)
            os.environ[PLAN_MODE_ENV] = mode
        yield None if folder is None else Path(folder)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class Planned(Exception):
    """Raised in plan mode where work would start: ``need`` says what the lowest level found
    (``kind`` "train" or "campaign", its store key, whether it is ``stored``, its size);
    ``units`` the calls that do it (:func:`unit`, :func:`gather`)."""

    def __init__(self, need: dict[str, Any] | None = None, units: Sequence[Unit] = ()) -> None:
        self.need = dict(need or {})
        self.units = list(units)
        what = self.need.get("kind", "work")
        super().__init__(f"plan mode: {len(self.units) or 1} unit(s) of {what} to run before this page")


@dataclass(frozen=True)
class Unit:
    """One call of a library work function (``module:qualname`` with its arguments): a training,
    or a training and its campaign. ``need`` describes it (network, scheme, p, seed, store key,
    whether it is stored, its size) for ``fatlib plan``."""

    function: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any] = field(hash=False)
    need: dict[str, Any] = field(hash=False, compare=False)

    @property
    def key(self) -> str:
        """Identity of the call: equal for the same function and arguments on every page."""
        text = repr((self.function, self.args, sorted(self.kwargs.items())))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def train_key(self) -> str | None:
        """The store key of the training this unit needs (None: not known or already stored)."""
        return self.need.get("train_key")

    def run(self) -> Any:
        """Call the function (plan mode off for the call)."""
        module, _, name = self.function.partition(":")
        fn: Any = importlib.import_module(module)
        for part in name.split("."):
            fn = getattr(fn, part)
        with plan_mode(None):
            return fn(*self.args, **self.kwargs)

    def describe(self) -> dict[str, Any]:
        """A row of ``fatlib plan``: the function, what it trains and campaigns, and its cost."""
        n = self.need
        kw = self.kwargs
        return {
            "function": self.function.split(":")[-1].lstrip("_"),
            "network": n.get("network", ""),
            "dataset": n.get("dataset", ""),
            "scheme": n.get("scheme", ""),
            "p": n.get("p", ""),
            "seed": n.get("seed", ""),
            "campaign": kw.get("campaign_pattern", "") if "campaign_pattern" in kw else n.get("campaign", ""),
            "stored": bool(n.get("stored", False)),
            "train_image_epochs": n.get("train_image_epochs", ""),
            "key": self.key,
        }

    def __repr__(self) -> str:
        d = self.describe()
        return (
            f"Unit({d['function']}: {d['network']} {d['scheme']} p={d['p']} seed={d['seed']}"
            f"{' campaign=' + str(d['campaign']) if d['campaign'] else ''})"
        )


def _record(units: Sequence[Unit]) -> None:
    """Add ``units`` to the plan folder's list (deduplicated by key; written atomically)."""
    folder = os.environ.get(PLAN_ENV)
    if not folder or not units:
        return
    known = load_units(folder)
    keys = {u.key for u in known}
    new = [u for u in units if u.key not in keys and not keys.add(u.key)]  # type: ignore[func-returns-value]
    Path(folder).mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(Path(folder) / UNITS_FILE, pickle.dumps(known + new), fsync=False)


def load_units(folder: str | os.PathLike) -> list[Unit]:
    """The units a page executed in plan mode with ``folder`` found (empty: none)."""
    path = Path(folder) / UNITS_FILE
    if not path.is_file():
        return []
    return list(pickle.loads(path.read_bytes()))


def unit(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a module-level work function: in plan mode, a :class:`Planned` raised inside a call
    becomes that call's :class:`Unit` (the outermost marked call wins: an evaluation, not the
    training inside it) and, when no outer construct will, is recorded. Outside plan mode the
    call is unchanged."""
    name = f"{fn.__module__}:{fn.__qualname__}"

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not planning():
            return fn(*args, **kwargs)
        outermost = _depth.get() == 0
        token = _depth.set(_depth.get() + 1)
        try:
            return fn(*args, **kwargs)
        except Planned as planned:
            planned.units = [Unit(name, tuple(args), dict(kwargs), dict(planned.need))]
            if outermost:
                _record(planned.units)
            raise
        finally:
            _depth.reset(token)

    return wrapper


def gather(calls: Sequence[Callable[[], Any]]) -> list[Any]:
    """Run independent calls in order and return their results — in plan mode, run every call
    and collect the units of those that stop (:class:`Planned`); when any did (or in ``list``
    mode), record them and stop with one :class:`Planned` holding all of them, so that a page's
    whole batch is planned at once."""
    if not planning():
        return [call() for call in calls]
    outermost = _depth.get() == 0
    token = _depth.set(_depth.get() + 1)
    try:
        results: list[Any] = []
        found: list[Unit] = []
        needs: list[dict[str, Any]] = []
        for call in calls:
            try:
                results.append(call())
            except Planned as planned:
                found.extend(planned.units)
                needs.append(planned.need)
        if not found and not needs:
            return results
        if outermost:
            _record(found)
        raise Planned({"kind": "batch", "needs": len(needs)}, found)
    finally:
        _depth.reset(token)
