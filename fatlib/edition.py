"""Editions: the executed output of one full rendering, kept beside the source so that reading the
book costs nothing and rerunning is a choice (issue #20).

``editions/<profile>/`` holds every executed notebook of the toc (outputs and figures kept), the
results tables (``results/<page>/*.csv``, the scoreboard among them) and ``manifest.json``: the
commit it was rendered from, the profile, device and CPU, torch / brevitas / Python versions, the
date, the wall time of each notebook, and SHA-256 hashes of each notebook's source, of its
executed copy and of every library file the notebook imports (followed through fatlib's own
imports). One edition per profile, replaced as a whole when rendered again::

    python -m fatlib.book --profile cpu --save-edition   # render, then keep it as the cpu edition
    python -m fatlib.book --edition cpu                  # render the HTML book from the edition
                                                         # (nothing executed, trained or campaigned)

A page whose notebook, or a library file it imports, changed since the edition's commit gets a
visible "rendered from older code" note; the first page says which edition the reader is
looking at.
"""

from __future__ import annotations

import ast
import csv
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

from fatlib.core.files import atomic_dir

__all__ = [
    "EDITIONS",
    "MANIFEST",
    "MAX_BYTES",
    "library_files",
    "save_edition",
    "load_manifest",
    "stale_pages",
    "render_edition",
    "check_edition",
]

#: where editions live, relative to the book root
EDITIONS = Path("editions")
MANIFEST = "manifest.json"
#: the most an edition may weigh (issue #20)
MAX_BYTES = 15 * 1024 * 1024
#: the note a page rendered from older code carries (its markdown starts with this)
STALE_NOTE = "```{note}\nRendered from older code"
EDITION_NOTE = "```{note}\nYou are reading the"


def _library_root(root: Path) -> Path:
    """Where the library files of a book root are: its own ``fatlib/`` (a checkout), else the
    installed package's folder."""
    return root if (root / "fatlib" / "__init__.py").is_file() else SOURCE_ROOT


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _imports(source: str) -> set[str]:
    """The fatlib modules an AST imports (``import fatlib.x``, ``from fatlib.x import y`` — y
    counted as a module when it is one), anywhere in it (lazy imports in functions too)."""
    out: set[str] = set()
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return out
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.split(".")[0] == "fatlib")
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] == "fatlib":
                out.add(node.module)
                out.update(f"{node.module}.{a.name}" for a in node.names)
    return out


def _module_file(root: Path, module: str) -> Path | None:
    base = root / Path(*module.split("."))
    for cand in (base.with_suffix(".py"), base / "__init__.py"):
        if cand.is_file():
            return cand
    return None


#: the folder that holds the fatlib package (library files are named relative to it)
SOURCE_ROOT = Path(__file__).resolve().parents[1]


#: modules whose own imports a page does not depend on unless it imports them itself
_LEAVES = {"fatlib.cli", "fatlib.__main__"}


def library_files(notebook: str | os.PathLike, root: str | os.PathLike = SOURCE_ROOT) -> list[str]:
    """The library files (paths relative to ``root``, the folder holding the fatlib package) a
    notebook imports, followed through fatlib's own imports (each package's ``__init__.py``
    included; imports inside functions too), sorted."""
    root = Path(root)
    nb = json.loads(Path(notebook).read_text())
    code = "\n".join(
        "".join(c.get("source", [])) for c in nb.get("cells", []) if c.get("cell_type") == "code"
    )
    todo = {m for m in _imports(code)}
    direct = set(todo)
    seen: set[Path] = set()
    while todo:
        module = todo.pop()
        parts = module.split(".")
        prefixes = {".".join(parts[:i]) for i in range(1, len(parts) + 1)}
        if prefixes & _LEAVES and not prefixes & direct & _LEAVES:
            continue  # the command line reaches every module; a page that does not call it does not
        parts = module.split(".")
        for i in range(1, len(parts) + 1):  # the packages on the way, then the module
            path = _module_file(root, ".".join(parts[:i]))
            if path is None or path in seen:
                continue
            seen.add(path)
            todo |= _imports(path.read_text())
    return sorted(p.relative_to(root).as_posix() for p in seen)


def _git(root: Path, *args: str) -> str:
    try:
        r = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True)
        return r.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _device_line() -> str:
    import torch

    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)} (CUDA {torch.version.cuda})"
    return f"CPU only, {os.cpu_count()} cores"


def save_edition(
    root: str | os.PathLike = ".", profile: str = "cpu", results: str | os.PathLike = "results"
) -> Path:
    """Keep the current rendering (``book/generated/*.ipynb`` of every toc page, executed at
    ``profile``, and the CSV tables under ``results/``) as ``editions/<profile>/``, replacing
    the previous one atomically. Raises FileNotFoundError when a page was not executed and
    ValueError when a page was executed at another profile or the edition would exceed
    :data:`MAX_BYTES`."""
    from fatlib.book import GENERATED, RUNTIMES, toc_notebooks
    from fatlib.core.profiles import get_profile

    get_profile(profile)
    root = Path(root).resolve()
    names = toc_notebooks(root)
    gen = root / GENERATED
    missing = [n for n in names if not (gen / f"{n}.ipynb").is_file()]
    if missing:
        raise FileNotFoundError(
            f"not executed yet: {missing}; run `python -m fatlib.book --profile {profile}` first"
        )
    rows: dict[str, dict[str, str]] = {}
    if (gen / RUNTIMES).is_file():
        with (gen / RUNTIMES).open() as f:
            rows = {r["notebook"]: r for r in csv.DictReader(f)}
    other = {n: rows[n]["profile"] for n in names if n in rows and rows[n]["profile"] != profile}
    if other:
        raise ValueError(
            f"pages executed at another profile than {profile!r}: {other}; render them at {profile} first"
        )
    import torch

    try:
        import brevitas

        brevitas_version = brevitas.__version__
    except ImportError:  # pragma: no cover - brevitas is a dependency
        brevitas_version = None
    results = root / results
    target = root / EDITIONS / profile
    with atomic_dir(target, replace=True) as tmp:
        tmp = Path(tmp)
        (tmp / "notebooks").mkdir(parents=True)
        pages = {}
        for name in names:
            shutil.copy2(gen / f"{name}.ipynb", tmp / "notebooks" / f"{name}.ipynb")
            source = root / "notebooks" / f"{name}.ipynb"
            lib_root = _library_root(root)
            libs = library_files(source, lib_root)
            for csv_file in sorted((results / name).glob("*.csv")) if (results / name).is_dir() else []:
                dest = tmp / "results" / name / csv_file.name
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(csv_file, dest)
            pages[name] = {
                "seconds": float(rows[name]["seconds"]) if name in rows else None,
                "finished": rows.get(name, {}).get("finished"),
                "source_sha256": _sha256(source),
                "executed_sha256": _sha256(tmp / "notebooks" / f"{name}.ipynb"),
                "library": {f: _sha256(lib_root / f) for f in libs},
            }
        manifest = {
            "format": "fatlib-edition/1",
            "profile": profile,
            "commit": _git(root, "rev-parse", "HEAD"),
            "dirty": bool(_git(root, "status", "--porcelain", "--untracked-files=no")),
            "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "device": _device_line(),
            "cpu": _cpu_model(),
            "threads": torch.get_num_threads(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "brevitas": brevitas_version,
            "total_seconds": sum(p["seconds"] or 0.0 for p in pages.values()),
            "pages": pages,
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        size = sum(p.stat().st_size for p in tmp.rglob("*") if p.is_file())
        if size > MAX_BYTES:
            raise ValueError(
                f"the {profile} edition would weigh {size / 2**20:.1f} MB, over {MAX_BYTES / 2**20:.0f} MB: "
                "lower the figures' resolution or leave large results out"
            )
    return target


def load_manifest(root: str | os.PathLike = ".", profile: str = "cpu") -> dict:
    """An edition's manifest; FileNotFoundError naming the editions that exist when it is absent."""
    path = Path(root) / EDITIONS / profile / MANIFEST
    if not path.is_file():
        have = sorted(p.parent.name for p in (Path(root) / EDITIONS).glob(f"*/{MANIFEST}"))
        raise FileNotFoundError(
            f"no {profile!r} edition at {path.parent} (editions here: {have or 'none'}); render one with "
            f"`python -m fatlib.book --profile {profile} --save-edition`"
        )
    return json.loads(path.read_text())


def stale_pages(root: str | os.PathLike = ".", profile: str = "cpu") -> dict[str, list[str]]:
    """Pages whose notebook or imported library files changed since the edition: page -> the
    files that differ (a library file a page imports now but did not then counts too)."""
    root = Path(root)
    manifest = load_manifest(root, profile)
    out = {}
    for name, page in manifest["pages"].items():
        source = root / "notebooks" / f"{name}.ipynb"
        changed = []
        if not source.is_file() or _sha256(source) != page["source_sha256"]:
            changed.append(f"notebooks/{name}.ipynb")
        lib_root = _library_root(root)
        now = library_files(source, lib_root) if source.is_file() else []
        for f in sorted(set(now) | set(page["library"])):
            here = lib_root / f
            if f not in page["library"] or not here.is_file() or _sha256(here) != page["library"][f]:
                changed.append(f)
        if changed:
            out[name] = changed
    return out


def check_edition(root: str | os.PathLike = ".", profile: str = "cpu") -> list[str]:
    """What is wrong with an edition (empty: nothing): a toc page without its executed copy, a
    copy whose hash differs from the manifest's, an edition over :data:`MAX_BYTES`."""
    from fatlib.book import toc_notebooks

    root = Path(root)
    manifest = load_manifest(root, profile)
    folder = root / EDITIONS / profile
    problems = []
    for name in toc_notebooks(root):
        copy = folder / "notebooks" / f"{name}.ipynb"
        if not copy.is_file():
            problems.append(f"{name}: no executed copy in {folder / 'notebooks'}")
        elif name not in manifest["pages"]:
            problems.append(f"{name}: not in the manifest")
        elif _sha256(copy) != manifest["pages"][name]["executed_sha256"]:
            problems.append(f"{name}: its executed copy does not match the manifest's hash")
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    if size > MAX_BYTES:
        problems.append(f"the edition weighs {size / 2**20:.1f} MB, over {MAX_BYTES / 2**20:.0f} MB")
    return problems


def _markdown_cell(text: str, cell_id: str) -> dict:
    return {"cell_type": "markdown", "id": cell_id, "metadata": {}, "source": text.splitlines(keepends=True)}


def render_edition(
    root: str | os.PathLike = ".", profile: str = "cpu", build: bool = True, log=print
) -> Path:
    """Render the HTML book from ``editions/<profile>/`` without executing anything: its executed
    notebooks go to ``book/generated/`` (with a note on the first page saying which edition
    this is, and on every page rendered from older code), its results to ``results/``, then
    ``jupyter-book build``. Returns the HTML index (or ``book/generated`` when not ``build``)."""
    from fatlib.book import GENERATED, build_html, toc_notebooks, toc_root

    root = Path(root).resolve()
    problems = check_edition(root, profile)
    if problems:
        raise ValueError(f"the {profile} edition is incomplete or altered: " + "; ".join(problems))
    manifest = load_manifest(root, profile)
    folder = root / EDITIONS / profile
    stale = stale_pages(root, profile)
    first = toc_root(root)
    gen = root / GENERATED
    gen.mkdir(parents=True, exist_ok=True)
    short = manifest["commit"][:10] or "unknown"
    minutes = manifest["total_seconds"] / 60
    for name in toc_notebooks(root):
        nb = json.loads((folder / "notebooks" / f"{name}.ipynb").read_text())
        notes = []
        if name == first:
            notes.append(
                f"{EDITION_NOTE} **{profile} edition**: rendered at profile `{profile}` on "
                f"{manifest['device']} ({manifest['cpu']}), from commit `{short}` on {manifest['date']}, "
                f"in {minutes:.0f} minutes of execution; torch {manifest['torch']}, brevitas "
                f"{manifest['brevitas']}, Python {manifest['python']}. Nothing was executed to show it; "
                f"`make book` reruns it.\n```\n"
            )
        if name in stale:
            files = ", ".join(f"`{f}`" for f in stale[name][:6]) + (" …" if len(stale[name]) > 6 else "")
            notes.append(
                f"{STALE_NOTE} (the {profile} edition's commit `{short}`): {files} changed since. "
                "Rerun this page to see what the current code gives.\n```\n"
            )
        if notes:
            at = 1 if nb["cells"] and nb["cells"][0].get("cell_type") == "markdown" else 0
            nb["cells"][at:at] = [_markdown_cell(n, f"fatlib-edition-note-{i}") for i, n in enumerate(notes)]
        (gen / f"{name}.ipynb").write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
        log(f"[fatlib.book] {name}: from the {profile} edition" + (" (older code)" if name in stale else ""))
    if (folder / "results").is_dir():
        shutil.copytree(folder / "results", root / "results", dirs_exist_ok=True)
    if not build:
        return gen
    return build_html(root)


if __name__ == "__main__":  # pragma: no cover
    sys.exit("use python -m fatlib.book --edition PROFILE or --save-edition")
