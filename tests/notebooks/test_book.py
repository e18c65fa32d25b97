"""The notebooks and the book: conventions of every notebook, and a smoke-profile run of the
whole book (every notebook executed with papermill, then `jupyter-book build -W -n`) in a
temporary copy of the repository, checking the glued results."""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import os
import pkgutil
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
from glued_fat import GLUED as GLUED_FAT
from glued_ftd import GLUED as GLUED_FTD

import fatlib
from fatlib import book, cluster
from fatlib.core.profiles import PROFILES

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = book.toc_notebooks(ROOT)
REQUIRED = {"PROFILE", "DEVICE", "SEED", "DATA_DIR", "OUTPUT_DIR"}

#: what each notebook must glue: key -> check on the value
GLUED = {
    "sat-training": {
        "sat_error_free": lambda v: 0.0 <= v <= 100.0,
        "sat_profile": lambda v: v == "smoke",
        "sat_paper_error_free": lambda v: v == 84.57,
        "sat_learning_curve": lambda v: "image/png" in v,
        "sat_images_per_second": lambda v: v > 0,
        # FAT §V's recipe and CIFAR-10's sizes (fatlib/core/paper_tables/quotes.csv)
        "sat_paper_epochs": lambda v: v == 1000,
        "sat_paper_lr": lambda v: v == 0.02,
        "sat_paper_lr_step": lambda v: v == 40,
        "sat_paper_batch_size": lambda v: v == 100,
        "sat_cifar10_train_images": lambda v: v == 50000,
        "sat_cifar10_test_images": lambda v: v == 10000,
        "sat_paper_profile_epochs_w1a1": lambda v: v == PROFILES["paper"].epochs_w1a1,
        "sat_paper_profile_epochs_other": lambda v: v == PROFILES["paper"].epochs_other,
    },
    "fat-fig02-error-models": {
        "fig02_error_models": lambda v: "image/png" in v,
        "fig02_channel_constant": lambda v: v is True,
        "fig02_pixels_total": lambda v: v > 0,
    },
    "fat-fig04-injection-layer": {
        "fig04_figure": lambda v: "image/png" in v,
        "fig04_grad_zero_where_replaced": lambda v: v is True,
        "fig04_grad_unchanged_elsewhere": lambda v: v is True,
        "fig04_replaced": lambda v: 0 < v < 12,
    },
    "fat-fig05-cnv-injection-sites": {
        "fig05_graph": lambda v: "image/png" in v,
        "fig05_injection_layers": lambda v: v == 8,
        "fig05_removed_cleanly": lambda v: v is True,
    },
    "reproducing": {
        "book_profile": lambda v: v == "smoke",
        "book_total_minutes": lambda v: v > 0,
        "book_paper_epochs_w1a1": lambda v: v == PROFILES["paper"].epochs_w1a1,
        "book_paper_epochs_other": lambda v: v == PROFILES["paper"].epochs_other,
        # the offline copy holds the first 1,017; a downloaded one all 10,000; none found: 0
        "book_cifar10_test_images": lambda v: isinstance(v, int) and 0 <= v <= 10000,
        "book_cifar10_official_test_images": lambda v: v == 10000,
    },
    "index": {
        "score_profile": lambda v: v == "smoke",
        # the smoke book runs on synthetic stand-ins only where data is missing; counted claims
        # are the ones on real data
        "score_claims": lambda v: isinstance(v, int) and v >= 0,
        "score_holds": lambda v: isinstance(v, int) and v >= 0,
        "score_does_not_hold": lambda v: isinstance(v, int) and v >= 0,
        "score_inconclusive": lambda v: isinstance(v, int) and v >= 0,
        "score_not_run": lambda v: isinstance(v, int) and v >= 0,
        "score_pages": lambda v: v >= 12,  # every page with claims
        "score_fat_seeds": lambda v: v == PROFILES["smoke"].fat_seeds,
    },
    **GLUED_FAT,
    **GLUED_FTD,
}


def test_toc_lists_every_notebook_and_only_those():
    on_disk = sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))
    assert sorted(NOTEBOOKS) == on_disk
    assert NOTEBOOKS[-1] == "reproducing"  # runs last: it reports the others' runtimes
    assert set(GLUED) == set(NOTEBOOKS), "every notebook needs its glued results checked here"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_conventions(name):
    nb = json.loads((ROOT / "notebooks" / f"{name}.ipynb").read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    params = [c for c in code if "parameters" in c["metadata"].get("tags", [])]
    assert len(params) == 1, "exactly one cell tagged 'parameters'"
    src = "".join(params[0]["source"])
    names = set()
    for line in src.splitlines():
        m = re.match(r"^([A-Z][A-Z0-9_]*): (int|float|str|bool) = .+  # \S", line)
        assert m, f"parameter line must read 'NAME: type = value  # comment': {line!r}"
        names.add(m.group(1))
    assert REQUIRED <= names
    for cell in code:
        tree = ast.parse("".join(cell["source"]))
        assert not any(isinstance(n, (ast.FunctionDef, ast.ClassDef)) for n in ast.walk(tree)), (
            "notebooks narrate, fatlib works: no def/class in notebooks"
        )
        assert not cell.get("outputs"), "source notebooks are committed without outputs"


#: the library's reference (an appendix of the book): automodule / autodata directives per page
REFERENCE = ROOT / "book" / "reference"
#: a MyST cross-reference to a Python object: {py:func}`~fatlib.x.f` or {py:func}`title <fatlib.x.f>`
PY_ROLE = re.compile(r"\{py:(\w+)\}`(?:[^`<]*<)?~?([\w.]+)>?`")


def reference_modules() -> dict[str, tuple[set[str], set[str]]]:
    """module -> (its automodule options, the names it excludes), from book/reference/*.md."""
    modules = {}
    for page in sorted(REFERENCE.glob("*.md")):
        for m in re.finditer(r"^\.\. automodule:: (\S+)\n((?:   :.*\n)*)", page.read_text(), re.M):
            options = dict(re.findall(r"^   :([\w-]+):(.*)$", m.group(2), re.M))
            excluded = {n.strip() for n in options.get("exclude-members", "").split(",") if n.strip()}
            modules[m.group(1)] = (set(options), excluded)
    return modules


def documented_in_reference(target: str) -> bool:
    """Whether the reference has an entry for the fatlib module or object ``target``."""
    modules = reference_modules()
    if target in modules:
        return True
    modname, name = target.rsplit(".", 1)
    if modname not in modules:
        return False
    _, excluded = modules[modname]
    return name in getattr(importlib.import_module(modname), "__all__", []) and name not in excluded


def fatlib_calls(nb: dict) -> list[str]:
    """The fatlib functions and classes a notebook calls, each as ``module.name`` where it is
    defined when the module it is called through only re-exports it."""
    src = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    tree = ast.parse(src)
    alias = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("fatlib"):
            alias.update({a.asname or a.name: f"{node.module}.{a.name}" for a in node.names})
        elif isinstance(node, ast.Import):
            alias.update({a.asname or a.name: a.name for a in node.names if a.name.startswith("fatlib")})
    called = set()
    for node in ast.walk(tree):
        f = node.func if isinstance(node, ast.Call) else None
        if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id in alias:
            called.add(f"{alias[f.value.id]}.{f.attr}")
        elif isinstance(f, ast.Name) and f.id in alias:
            called.add(alias[f.id])
    out = []
    for name in sorted(called):
        modname, attr = name.rsplit(".", 1)
        obj = getattr(importlib.import_module(modname), attr)
        home = getattr(obj, "__module__", modname)
        out.append(f"{home}.{attr}" if home in reference_modules() else name)
    return out


def test_reference_documents_every_public_module_and_name():
    """The appendix leaves no public module or name out: every fatlib module with an ``__all__``
    has its automodule (the campaign package's own modules are documented through its exports),
    and every name of an ``__all__`` gets an entry: a function or class, or a constant with a
    ``#:`` comment, through ``:members:``; another constant through an ``autodata``; a name the
    module only re-exports where it is defined, linked from the page."""
    from sphinx.pycode import ModuleAnalyzer

    modules = reference_modules()
    text = "\n".join(p.read_text() for p in sorted(REFERENCE.glob("*.md")))
    autodata = set(re.findall(r"^\.\. autodata:: (\S+)$", text, re.M))
    public = []
    for info in pkgutil.walk_packages(fatlib.__path__, "fatlib."):
        if info.name.endswith("__main__") or info.name.startswith("fatlib.fat.campaign."):
            continue
        if hasattr(importlib.import_module(info.name), "__all__"):
            public.append(info.name)
    assert set(public) <= set(modules), f"not in the reference: {sorted(set(public) - set(modules))}"
    for modname, (options, excluded) in modules.items():
        mod = importlib.import_module(modname)  # every module named there exists
        names = getattr(mod, "__all__", None)
        if names is None:
            continue
        assert {"members", "undoc-members"} <= options, modname
        assert excluded <= set(names), f"{modname} excludes names it does not export"
        attr_docs = ModuleAnalyzer.for_module(modname).find_attr_docs()
        for name in names:
            obj = getattr(mod, name)
            if name in excluded:
                homes = [
                    other
                    for other, (_, other_excluded) in modules.items()
                    if other != modname
                    and name in getattr(importlib.import_module(other), "__all__", [])
                    and name not in other_excluded
                    and getattr(importlib.import_module(other), name) is obj
                ]
                assert homes, f"{modname}.{name} is left out but documented nowhere else"
                assert f"{homes[0]}.{name}`" in text, f"the {modname} section should link {name}"
            elif not (inspect.isclass(obj) or inspect.isfunction(obj) or ("", name) in attr_docs):
                assert f"{modname}.{name}" in autodata, f"{modname}.{name}: autodoc's :members: skips it"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_ends_with_links_to_the_reference(name):
    """Each page's closing note says how to rerun it and links the reference entry of every
    fatlib function and class the notebook calls."""
    nb = json.loads((ROOT / "notebooks" / f"{name}.ipynb").read_text())
    markdown = [c for c in nb["cells"] if c["cell_type"] == "markdown"]
    last = "".join(markdown[-1]["source"])
    targets = {t for _, t in PY_ROLE.findall(last) if t.startswith("fatlib.")}
    assert targets, f"{name}: the last markdown cell links to no fatlib reference entry"
    for target in targets:
        assert documented_in_reference(target), f"{name} links {target}, which the reference lacks"
    missing = [c for c in fatlib_calls(nb) if c not in targets]
    assert not missing, f"{name} calls these without linking them in its last cell: {missing}"


def copy_book(root: Path) -> Path:
    """The book's sources (toc, config, notebooks, pages) copied to ``root``, nothing executed."""
    root.mkdir(parents=True, exist_ok=True)
    for item in ("_config.yml", "_toc.yml"):
        shutil.copy(ROOT / item, root / item)
    shutil.copytree(ROOT / "notebooks", root / "notebooks")
    shutil.copytree(ROOT / "book", root / "book", ignore=shutil.ignore_patterns("generated"))
    return root


@pytest.fixture(scope="session")
def smoke_book(tmp_path_factory):
    """Execute every notebook at the smoke profile and build the book, in a copy of the repo."""
    root = tmp_path_factory.mktemp("book")
    copy_book(root)
    old = os.environ.get("FATLIB_STORE")
    os.environ["FATLIB_STORE"] = str(root / "store")
    try:
        times = book.run_book(root, profile="smoke", build=True)
    finally:
        if old is None:
            os.environ.pop("FATLIB_STORE", None)
        else:
            os.environ["FATLIB_STORE"] = old
    return root, times


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_smoke_run_glues_its_results(smoke_book, name):
    root, times = smoke_book
    assert name in times and times[name] > 0
    glued = book.read_glue(root / book.GENERATED / f"{name}.ipynb")
    for key, check in GLUED[name].items():
        assert key in glued, f"{name} did not glue {key!r}"
        assert check(glued[key]), f"{name}: {key} = {glued[key]!r}"


@pytest.mark.slow
def test_book_renders_every_page_with_glued_numbers(smoke_book):
    root, _ = smoke_book
    html = root / "_build" / "html"
    for name in NOTEBOOKS:
        page = html / "book" / "generated" / f"{name}.html"
        assert page.is_file(), name
    intro = (html / "book" / "generated" / "index.html").read_text()
    glued = book.read_glue(root / book.GENERATED / "sat-training.ipynb")
    assert f"{glued['sat_error_free']:.2f}" in intro  # the intro's number comes from the notebook
    # the first page's scoreboard: every claim of every page, linked, counted as the CSV says
    board = pd.read_csv(root / "results" / "index" / "scoreboard.csv")
    claims = pd.concat(
        [pd.read_csv(p) for p in sorted((root / "results").glob("*/claims.csv"))], ignore_index=True
    )
    assert len(board) == len(claims) and set(board["claim"]) == set(claims["claim"])
    assert set(board["verdict"]) <= {"holds", "does not hold", "inconclusive", "not run"}
    assert 'href="fat-fig07-method2.html"' in intro and "fatlib-scoreboard" in intro
    score = book.read_glue(root / book.GENERATED / "index.ipynb")
    counted = board[(board["kind"] == "claim") & ~board["synthetic"]]
    assert score["score_claims"] == len(counted)
    assert score["score_inconclusive"] == int((counted["verdict"] == "inconclusive").sum())
    assert "mathjax/tex-svg.js" in (html / "book" / "methods.html").read_text()
    # the library's reference, generated from the docstrings, and a page's links into it
    reference = html / "book" / "reference" / "fat.html"
    assert reference.is_file() and 'id="fatlib.fat.experiments.method_figure"' in reference.read_text()
    fig06 = (html / "book" / "generated" / "fat-fig06-method1.html").read_text()
    assert 'href="../reference/fat.html#fatlib.fat.experiments.method_figure"' in fig06
    sat = (html / "book" / "generated" / "sat-training.html").read_text()
    assert "<img" in sat  # the learning curve is a picture, not text
    runtimes = pd.read_csv(root / book.GENERATED / "runtimes.csv")
    assert set(runtimes["notebook"]) == set(NOTEBOOKS)
    assert list(runtimes.columns) == book.RUNTIME_FIELDS
    assert runtimes["new_models"].ge(0).all() and runtimes["new_campaigns"].ge(0).all()
    assert runtimes["new_models"].sum() >= 1  # the smoke book trains networks unit tests never do
    assert runtimes.set_index("notebook").loc["reproducing", "new_models"] == 0


def test_first_page_sums_up_the_others_and_shows_no_code(tmp_path):
    """The toc's root is the scoreboard notebook: the runner executes it last, and its code
    (the parameters papermill injects included) stays off the page."""
    assert book.toc_root(ROOT) == "index" and NOTEBOOKS[0] == "index"
    nb = json.loads((ROOT / "notebooks" / "index.ipynb").read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all({"remove-cell", "remove-input"} & set(c["metadata"].get("tags", [])) for c in code)
    executed = tmp_path / "nb.ipynb"
    executed.write_text(
        json.dumps(
            {
                "cells": [
                    {"cell_type": "code", "metadata": {"tags": ["parameters", "remove-cell"]}, "source": ""},
                    {"cell_type": "code", "metadata": {"tags": ["injected-parameters"]}, "source": ""},
                ]
            }
        )
    )
    book._hide_injected_like_parameters(executed)
    assert json.loads(executed.read_text())["cells"][1]["metadata"]["tags"] == [
        "injected-parameters",
        "remove-cell",
    ]


def test_scoreboard_reads_every_page_in_toc_order(tmp_path):
    from fatlib.core import verdicts

    shutil.copy(ROOT / "_toc.yml", tmp_path / "_toc.yml")
    (tmp_path / "notebooks").mkdir()
    for name, verdict in (("fat-fig07-method2", "holds"), ("ftd-table2-memory", "inconclusive")):
        out = tmp_path / "results" / name
        out.mkdir(parents=True)
        c = verdicts.compare(
            "c " + name, "Fig.", verdicts.Estimate(1.0), ">" if verdict == "holds" else "~", 2.0
        )
        verdicts.claims_table([c]).to_csv(out / "claims.csv", index=False)
    board = book.scoreboard(tmp_path)
    assert board["page"].tolist() == ["fat-fig07-method2", "ftd-table2-memory"]
    assert (
        board["paper_name"].tolist() == ["FAT", "FT-DeepNets"]
        and list(board.columns) == book.SCOREBOARD_COLUMNS
    )
    assert verdicts.verdict_counts(board) == {"holds": 2, "does not hold": 0, "inconclusive": 0, "not run": 0}
    assert 'href="ftd-table2-memory.html"' in book.scoreboard_html(board)


@pytest.mark.slow
def test_an_edition_of_the_smoke_book_renders_without_executing(smoke_book, tmp_path, monkeypatch):
    """Kept as an edition and rendered from it against an empty store: nothing is trained or
    campaigned, every page renders, and the first page names the edition (issue #20)."""
    from fatlib import edition

    root, _ = smoke_book
    edition.save_edition(root, "smoke")
    assert edition.check_edition(root, "smoke") == []
    store = tmp_path / "empty-store"
    monkeypatch.setenv("FATLIB_STORE", str(store))
    html = edition.render_edition(root, "smoke", log=lambda *_: None)
    assert html.is_file() and book.store_contents(store) == (set(), set())
    first = (root / "_build" / "html" / "book" / "generated" / "index.html").read_text()
    assert "You are reading the" in first and "smoke edition" in first
    for name in NOTEBOOKS:
        assert (root / "_build" / "html" / "book" / "generated" / f"{name}.html").is_file(), name


#: results that are measurements of time (latency, frames per second, runtimes): they differ
#: between any two runs, serial or not, and are left out of the comparison below — tables (by
#: page or file name), columns (by name) and rows (by any of their texts) that are timings
TIMED = re.compile(r"second|latency|fps|images/s|throughput|per_s|_ms\b|finished|speed|time", re.IGNORECASE)
TIMED_ROW = re.compile(r"latency|fps|images/s|speed|faster|slower", re.IGNORECASE)


def comparable(path: Path) -> pd.DataFrame:
    """A results table without its timings (:data:`TIMED`, :data:`TIMED_ROW`)."""
    t = pd.read_csv(path)
    t = t[[c for c in t.columns if not TIMED.search(str(c))]]
    timed = t.apply(lambda row: any(isinstance(v, str) and TIMED_ROW.search(v) for v in row), axis=1)
    return t[~timed.astype(bool)].reset_index(drop=True) if len(t) else t


def compare_results(a: Path, b: Path) -> tuple[int, int, list[str]]:
    """Every results table of the book at ``a`` against ``b``'s (timings left out): how many
    tables and rows were compared, and the differences."""
    tables = sorted(p.relative_to(a) for p in (a / "results").rglob("*.csv"))
    assert tables == sorted(p.relative_to(b) for p in (b / "results").rglob("*.csv"))
    differ, rows = [], 0
    compared = [rel for rel in tables if not TIMED.search(str(rel))]
    for rel in compared:
        ta, tb = comparable(a / rel), comparable(b / rel)
        rows += len(ta)
        try:
            pd.testing.assert_frame_equal(ta, tb, check_exact=True)
        except AssertionError as err:
            differ.append(f"{rel}: {str(err).splitlines()[0:3]}")
    return len(compared), rows, differ


@pytest.mark.slow
def test_the_book_on_dask_gives_the_results_of_the_serial_run(smoke_book, tmp_path, monkeypatch):
    """Issue #15: the smoke book on a local Dask cluster of 2 workers, each with the serial run's
    thread count, from an empty store: every page runs, each training and campaign runs once
    as a unit before its pages, and every results table equals the serial run's."""
    pytest.importorskip("distributed")
    import torch

    serial, _ = smoke_book
    root = copy_book(tmp_path / "book")
    monkeypatch.setenv("FATLIB_STORE", str(tmp_path / "store"))
    times = book.run_book(root, profile="smoke", build=False, workers=2, threads=torch.get_num_threads())
    assert set(times) == set(NOTEBOOKS)
    assert not list((root / book.GENERATED).glob("*.failed.ipynb"))
    units = pd.read_csv(root / book.GENERATED / book.WORK_FILE)
    assert len(units) >= 10 and units["key"].is_unique and set(units["worker"].astype(str)) == {"0", "1"}
    models, _ = book.store_contents(tmp_path / "store")
    serial_models, _ = book.store_contents(serial / "store")
    assert models == serial_models  # the same trainings, by key
    tables, rows, differ = compare_results(root, serial)
    assert tables > 40 and rows > 500, (tables, rows)
    assert not differ, "\n".join(differ)


@pytest.mark.slow
def test_plan_lists_what_the_pages_need_without_doing_it(tmp_path, monkeypatch):
    """``fatlib plan`` (issue #15): the pages find their own work; one row per unit, a training
    shared by pages is one training; nothing trained, nothing written to the book."""
    from fatlib import cli

    store = tmp_path / "store"
    monkeypatch.setenv("FATLIB_STORE", str(store))
    pages = ["sat-training", "fat-fig06-method1", "ftd-fig02-error-location"]
    before = sorted((ROOT / "results").rglob("*")) if (ROOT / "results").exists() else []
    out = tmp_path / "plan.csv"
    assert (
        cli.main(["plan", "--profile", "smoke", "--root", str(ROOT), "--only", *pages, "--out", str(out)])
        == 0
    )
    plan = pd.read_csv(out, keep_default_na=False)
    assert list(plan.columns) == cluster.PLAN_COLUMNS
    fig06 = plan[plan["pages"] == "fat-fig06-method1"]
    p_values = [float(p) / 100 for p in "5, 2.5, 1.5".split(",")]
    assert sorted(fig06["p"].astype(float)) == sorted([0.0, *p_values])  # SAT and FAT m1 at each p
    assert set(fig06["campaign"]) == {"channel"} and set(fig06["network"]) == {"CNVW1A1"}
    ftd = plan[plan["pages"] == "ftd-fig02-error-location"]
    assert sorted(ftd["network"]) == ["MOBILENET_V1", "VGG16"]
    sat = plan[(plan["scheme"] == "sat") & (plan["network"] == "CNVW1A1")]
    assert len(sat) == 2 and sat["train_key"].nunique() == 1  # sat-training's and Fig. 6's: one training
    assert not plan["stored"].astype(str).eq("True").any()
    assert book.store_contents(store) == (set(), set())
    assert (sorted((ROOT / "results").rglob("*")) if (ROOT / "results").exists() else []) == before


def test_runtimes_record_cold_and_warm_work(tmp_path, monkeypatch):
    """runtimes.csv says what each notebook trained or campaigned itself, and keeps older rows
    (written before the new_* columns existed) readable."""
    store = tmp_path / "store"
    monkeypatch.setenv("FATLIB_STORE", str(store))
    assert book.store_contents() == (set(), set())
    (store / "cnv-a" / "campaign-channel-x").mkdir(parents=True)
    (store / "cnv-a" / "config.json").write_text("{}")
    (store / ".cnv-b.part-1").mkdir()  # an artifact still being written
    (store / ".cnv-b.part-1" / "config.json").write_text("{}")
    assert book.store_contents() == ({"cnv-a"}, {"cnv-a/campaign-channel-x"})
    gen = tmp_path / "gen"
    gen.mkdir()
    (gen / "runtimes.csv").write_text("notebook,profile,seconds,finished\nold,cpu,12.5,2026-01-01 00:00:00\n")
    book._record_runtime(gen, "new", "cpu", 3.25, 2, 1)
    book._record_runtime(gen, "old", "cpu", 1.0, 0, 0)  # a warm re-run replaces the row
    t = pd.read_csv(gen / "runtimes.csv").set_index("notebook")
    assert list(t.reset_index().columns) == book.RUNTIME_FIELDS
    assert t.loc["new", ["seconds", "new_models", "new_campaigns"]].tolist() == [3.2, 2, 1]
    assert t.loc["old", ["seconds", "new_models", "new_campaigns"]].tolist() == [1.0, 0, 0]
    assert not list(gen.glob("*.part"))


def test_runner_rejects_unknown_notebooks_and_profiles(tmp_path):
    with pytest.raises(ValueError, match="not in the toc"):
        book.run_book(ROOT, profile="smoke", only=["no-such-notebook"], build=False)
    with pytest.raises(ValueError, match="profile"):
        book.run_book(ROOT, profile="huge", build=False)
    with pytest.raises(FileNotFoundError, match="_toc.yml"):
        book.toc_notebooks(tmp_path)


def test_failed_notebook_leaves_previous_output_untouched(tmp_path):
    bad = {
        "cells": [
            {
                "cell_type": "code",
                "id": "a",
                "metadata": {"tags": ["parameters"]},
                "outputs": [],
                "execution_count": None,
                "source": ["PROFILE = 'smoke'"],
            },
            {
                "cell_type": "code",
                "id": "b",
                "metadata": {},
                "outputs": [],
                "execution_count": None,
                "source": ["raise RuntimeError('boom')"],
            },
        ],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    src = tmp_path / "bad.ipynb"
    src.write_text(json.dumps(bad))
    target = tmp_path / "out" / "bad.ipynb"
    target.parent.mkdir()
    target.write_text("previous")
    with pytest.raises(Exception, match="boom"):
        book.execute_notebook(src, target, {"PROFILE": "smoke"}, cwd=tmp_path)
    assert target.read_text() == "previous"
    assert (tmp_path / "out" / "bad.failed.ipynb").is_file()
    assert not list((tmp_path / "out").glob(".bad*"))
