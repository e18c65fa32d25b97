"""The notebooks and the book: conventions of every notebook, and a smoke-profile run of the
whole book (every notebook executed with papermill, then `jupyter-book build -W -n`) in a
temporary copy of the repository, checking the glued results."""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
from glued_fat import GLUED as GLUED_FAT
from glued_ftd import GLUED as GLUED_FTD

from fatlib import book
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


@pytest.fixture(scope="session")
def smoke_book(tmp_path_factory):
    """Execute every notebook at the smoke profile and build the book, in a copy of the repo."""
    root = tmp_path_factory.mktemp("book")
    for item in ("_config.yml", "_toc.yml"):
        shutil.copy(ROOT / item, root / item)
    shutil.copytree(ROOT / "notebooks", root / "notebooks")
    shutil.copytree(ROOT / "book", root / "book", ignore=shutil.ignore_patterns("generated"))
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
