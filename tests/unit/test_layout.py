"""The package's shape: one folder per paper beside the core, no module reaching into another
module's private names, and fatlib 0.1's flat module names still importing."""

from __future__ import annotations

import ast
import importlib
import json
from pathlib import Path

import pytest

import fatlib

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "fatlib"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def private_uses(source: str, module: str) -> list[str]:
    """Every place where code of ``module`` (dotted name, "" for a script) uses a private name of
    *another* fatlib module: ``from fatlib.x import _name``, or ``x._name`` where ``x`` was bound
    to a fatlib module by an import. A package's own ``__init__`` counts as the same module."""
    tree = ast.parse(source)
    found, aliases = [], {}
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.ImportFrom)
            and node.module
            and node.level == 0
            and node.module.split(".")[0] == "fatlib"
        ):
            for a in node.names:
                if _is_private(a.name) and node.module != module:
                    found.append(f"line {node.lineno}: from {node.module} import {a.name}")
                else:
                    aliases[a.asname or a.name] = f"{node.module}.{a.name}"
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "fatlib" and a.asname:
                    aliases[a.asname] = a.name
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in aliases
            and _is_private(node.attr)
        ):
            target = aliases[node.value.id]
            if target != module:
                found.append(f"line {node.lineno}: {node.value.id}.{node.attr} ({target})")
    return found


LIBRARY = sorted(p for p in PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", LIBRARY, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_uses_another_modules_private_names(path):
    assert private_uses(path.read_text(), _module_name(path)) == []


def test_scripts_and_notebooks_use_public_names_only():
    bad = {}
    for path in sorted((ROOT / "benchmarks").glob("*.py")):
        bad[str(path)] = private_uses(path.read_text(), "")
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        bad[str(path)] = private_uses(code, "")
    assert {k: v for k, v in bad.items() if v} == {}


def test_the_private_name_check_can_fail():
    src = (
        "from fatlib.ftd.ranking import _convs\nfrom fatlib.fat import campaign as C\n"
        "import fatlib.core.data as D\nC._Engine\nD._read_npz\nC.stuck_at_campaign\n"
    )
    assert private_uses(src, "fatlib.ftd.duplication") == [
        "line 1: from fatlib.ftd.ranking import _convs",
        "line 4: C._Engine (fatlib.fat.campaign)",
        "line 5: D._read_npz (fatlib.core.data)",
    ]
    assert private_uses("from fatlib.fat.campaign import _x\n", "fatlib.fat.campaign") == []


def test_layout_has_one_folder_per_paper_beside_the_core():
    top = sorted(
        p.name
        for p in PACKAGE.iterdir()
        if p.suffix == ".py" or (p.is_dir() and (p / "__init__.py").exists())
    )
    # the runner (book, its editions, its Dask cluster, the command line) beside one folder per
    # paper and the core
    assert top == [
        "__init__.py",
        "__main__.py",
        "book.py",
        "cli.py",
        "cluster.py",
        "core",
        "edition.py",
        "fat",
        "ftd",
    ]


@pytest.mark.parametrize("old,new", sorted(fatlib.MOVED.items()))
def test_old_import_paths_are_the_moved_modules(old, new):
    moved = importlib.import_module(new)
    assert importlib.import_module(old) is moved
    assert moved.__spec__.name == new  # the alias never replaces the real module's spec
    leaf = old.rsplit(".", 1)[1]
    assert getattr(importlib.import_module("fatlib"), leaf) is moved


def test_old_from_imports_keep_working():
    from fatlib.campaign import main, stuck_at_campaign
    from fatlib.cli import campaign_main
    from fatlib.fat.campaign import stuck_at_campaign as new

    assert stuck_at_campaign is new and main is campaign_main


def test_moved_plot_functions_keep_their_old_names():
    from fatlib.ftd import plots
    from fatlib.ftd_experiments import plot_latency

    assert plot_latency is plots.plot_latency
    with pytest.raises(AttributeError):
        getattr(importlib.import_module("fatlib.ftd_experiments"), "plot_nothing")  # noqa: B009


def test_dependency_floors_have_no_known_code_execution_bugs():
    """torch < 2.6 runs code from crafted files even with weights_only=True; pyarrow 14.0.0 while
    reading Parquet; tqdm < 4.66.3 evaluates CLI arguments."""
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    Requirement = pytest.importorskip("packaging.requirements").Requirement
    Version = pytest.importorskip("packaging.version").Version

    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    floors = {}
    for dep in map(Requirement, deps):
        lows = [Version(s.version) for s in dep.specifier if s.operator in (">=", "==")]
        floors[dep.name] = max(lows) if lows else None
    assert floors["torch"] >= Version("2.6")
    assert floors["pyarrow"] >= Version("14.0.1")
    assert floors["tqdm"] >= Version("4.66.3")
