"""fatlib — reproducing FAT (Zahid et al., 2020) and FT-DeepNets (Baek et al., WACV 2022).

The package has one folder per paper beside the shared core:

* :mod:`fatlib.core` — what both papers use: scale profiles, data, networks, the artifact store,
  the training loop, the papers' own numbers and claims tables, small torch helpers.
* :mod:`fatlib.fat` — FAT: the error-injection layer, the stuck-at campaign (Algorithm 1),
  selective channel triplication, one function per figure or table and its claims, plots.
* :mod:`fatlib.ftd` — FT-DeepNets: transient errors, channel ranking, KR / FMR duplication,
  overhead, one function per figure or table and its claims, plots.
* :mod:`fatlib.book` (the notebook runner) and :mod:`fatlib.cli` (the ``fatlib`` command).

Submodules are imported on use so that ``import fatlib`` stays fast. The flat module names of
fatlib 0.1 (``fatlib.campaign``, ``fatlib.ftd_experiments``, ...) still import: each is the moved
module itself (see :data:`MOVED`).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import logging
import sys
import types

__version__ = "0.1.0"

#: fatlib 0.1's module names → where each module lives now
MOVED: dict[str, str] = {
    "fatlib.profiles": "fatlib.core.profiles",
    "fatlib.data": "fatlib.core.data",
    "fatlib.models": "fatlib.core.models",
    "fatlib.store": "fatlib.core.store",
    "fatlib.training": "fatlib.core.training",
    "fatlib.paper": "fatlib.core.paper",
    "fatlib.injection": "fatlib.fat.injection",
    "fatlib.campaign": "fatlib.fat.campaign",
    "fatlib.replication": "fatlib.fat.replication",
    "fatlib.experiments": "fatlib.fat.experiments",
    "fatlib.plots": "fatlib.fat.plots",
    "fatlib.faults": "fatlib.ftd.errors",
    "fatlib.ranking": "fatlib.ftd.ranking",
    "fatlib.duplication": "fatlib.ftd.duplication",
    "fatlib.overhead": "fatlib.ftd.overhead",
    "fatlib.ftd_experiments": "fatlib.ftd.experiments",
}


class _MovedLoader(importlib.abc.Loader):
    """Loads an old module name as the moved module object itself (same identity, so patches and
    ``isinstance`` checks see one module)."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.spec: importlib.machinery.ModuleSpec | None = None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        module = importlib.import_module(self.target)
        self.spec = module.__spec__
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        module.__spec__ = self.spec  # the import system set the alias' spec; keep the real one


class _MovedFinder(importlib.abc.MetaPathFinder):
    def find_spec(
        self, fullname: str, path: object, target: object = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in MOVED:
            return None
        return importlib.machinery.ModuleSpec(fullname, _MovedLoader(MOVED[fullname]))


if not any(isinstance(f, _MovedFinder) for f in sys.meta_path):
    sys.meta_path.insert(0, _MovedFinder())


def _no_cuda_home_notice(record: logging.LogRecord) -> bool:
    """False for torch's import-time notice that a CUDA build found no CUDA runtime: on a CPU-only
    machine it is expected, and it would stand as stray stderr on every page of the book."""
    return not str(record.msg).startswith("No CUDA runtime is found")


# the logger exists before torch.utils.cpp_extension is imported, which then uses the same object
logging.getLogger("torch.utils.cpp_extension").addFilter(_no_cuda_home_notice)
