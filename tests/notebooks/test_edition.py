"""Editions (fatlib.edition, issue #20): an executed rendering kept beside the source, checked
against its manifest and rendered without executing anything."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from fatlib import book, edition

ROOT = Path(__file__).resolve().parents[2]


def test_every_committed_edition_is_complete_and_matches_its_manifest():
    for folder in sorted((ROOT / edition.EDITIONS).glob("*")):
        if not folder.is_dir():
            continue
        assert edition.check_edition(ROOT, folder.name) == [], folder.name
        m = edition.load_manifest(ROOT, folder.name)
        for key in (
            "commit",
            "profile",
            "device",
            "cpu",
            "torch",
            "brevitas",
            "python",
            "date",
            "total_seconds",
        ):
            assert m.get(key) not in (None, ""), f"{folder.name}: manifest lacks {key}"
        assert set(m["pages"]) == set(book.toc_notebooks(ROOT))
        assert all(p["seconds"] is not None and p["library"] for p in m["pages"].values())


def test_library_files_follow_fatlib_imports():
    files = edition.library_files(ROOT / "notebooks" / "fat-fig07-method2.ipynb")
    assert "fatlib/fat/experiments.py" in files and "fatlib/core/verdicts.py" in files
    assert "fatlib/fat/__init__.py" in files and all(f.startswith("fatlib/") for f in files)
    ftd = edition.library_files(ROOT / "notebooks" / "ftd-fig07-kr-vs-fmr.ipynb")
    assert "fatlib/ftd/experiments.py" in ftd and "fatlib/cli.py" not in ftd
    assert "fatlib/fat/export.py" not in ftd  # FT-DeepNets' pages do not depend on FAT's export


@pytest.fixture
def rendered(tmp_path):
    """A book root whose pages were "executed" at the smoke profile (copies of the sources)."""
    for item in ("_config.yml", "_toc.yml"):
        shutil.copy(ROOT / item, tmp_path / item)
    shutil.copytree(ROOT / "notebooks", tmp_path / "notebooks")
    gen = tmp_path / book.GENERATED
    gen.mkdir(parents=True)
    names = book.toc_notebooks(tmp_path)
    for name in names:
        shutil.copy(tmp_path / "notebooks" / f"{name}.ipynb", gen / f"{name}.ipynb")
        (tmp_path / "results" / name).mkdir(parents=True)
        (tmp_path / "results" / name / "claims.csv").write_text("claim,verdict\nc,holds\n")
    with (gen / book.RUNTIMES).open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=book.RUNTIME_FIELDS)
        w.writeheader()
        w.writerows({"notebook": n, "profile": "smoke", "seconds": "1.5", "finished": "now"} for n in names)
    return tmp_path


def test_save_check_and_render_an_edition(rendered, monkeypatch):
    root = rendered
    out = edition.save_edition(root, "smoke")
    assert out == root / "editions" / "smoke" and edition.check_edition(root, "smoke") == []
    m = edition.load_manifest(root, "smoke")
    assert m["profile"] == "smoke" and m["total_seconds"] == pytest.approx(1.5 * len(m["pages"]))
    assert (out / "results" / "fat-fig07-method2" / "claims.csv").is_file()
    assert edition.stale_pages(root, "smoke") == {}
    # a page whose source changed is rendered with a visible note; the first page names the edition
    src = root / "notebooks" / "fat-fig06-method1.ipynb"
    nb = json.loads(src.read_text())
    nb["cells"][0]["source"].append("\nedited")
    src.write_text(json.dumps(nb, indent=1))
    assert edition.stale_pages(root, "smoke") == {"fat-fig06-method1": ["notebooks/fat-fig06-method1.ipynb"]}
    shutil.rmtree(root / book.GENERATED)
    edition.render_edition(root, "smoke", build=False, log=lambda *_: None)
    page = (root / book.GENERATED / "fat-fig06-method1.ipynb").read_text()
    assert "Rendered from older code" in page and "notebooks/fat-fig06-method1.ipynb" in page
    assert "Rendered from older code" not in (root / book.GENERATED / "fat-fig07-method2.ipynb").read_text()
    assert "You are reading the" in (root / book.GENERATED / "index.ipynb").read_text()
    # an altered copy is refused, and so is rendering it
    copy = root / "editions" / "smoke" / "notebooks" / "fat-fig07-method2.ipynb"
    copy.write_text(copy.read_text() + " ")
    assert any("does not match" in p for p in edition.check_edition(root, "smoke"))
    with pytest.raises(ValueError, match="incomplete or altered"):
        edition.render_edition(root, "smoke", build=False)


def test_edition_refuses_bad_input_and_keeps_the_old_one(rendered, monkeypatch):
    root = rendered
    with pytest.raises(FileNotFoundError, match="no 'cpu' edition"):
        edition.load_manifest(root, "cpu")
    with pytest.raises(ValueError, match="another profile"):
        edition.save_edition(root, "cpu")  # the pages ran at smoke
    edition.save_edition(root, "smoke")
    before = (root / "editions" / "smoke" / edition.MANIFEST).read_text()
    monkeypatch.setattr(edition, "MAX_BYTES", 1000)
    with pytest.raises(ValueError, match="would weigh"):
        edition.save_edition(root, "smoke")
    assert (root / "editions" / "smoke" / edition.MANIFEST).read_text() == before  # untouched
    assert not list((root / "editions").glob(".*part*"))
    (root / book.GENERATED / "reproducing.ipynb").unlink()
    with pytest.raises(FileNotFoundError, match="not executed yet"):
        edition.save_edition(root, "smoke")
