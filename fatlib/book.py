"""The book runner: execute every notebook of the table of contents with papermill, then render
the Jupyter Book.

    python -m fatlib.book --profile cpu          # or: fatlib book --profile cpu

Source notebooks live in ``notebooks/`` and are committed without outputs. The runner executes
``notebooks/<name>.ipynb`` for every toc entry ``book/generated/<name>`` into
``book/generated/<name>.ipynb`` (executed to a temporary file, moved into place only on
success), records each runtime in ``book/generated/runtimes.csv``, and finally runs
``jupyter-book build . -W -n --keep-going``. Executed notebooks are build outputs: they are not
committed (``.gitignore``), so the book is always rendered from the current fatlib.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from fatlib.core.files import atomic_file, output_dir

__all__ = [
    "toc_notebooks",
    "execute_notebook",
    "run_book",
    "main",
    "GENERATED",
    "read_glue",
    "output_dir",
    "build_html",
    "store_contents",
    "RUNTIME_FIELDS",
]

#: where executed notebooks go, relative to the book root (the toc names them there)
GENERATED = Path("book") / "generated"
RUNTIMES = "runtimes.csv"


def toc_notebooks(root: str | os.PathLike = ".") -> list[str]:
    """Names of the notebooks the toc lists under ``book/generated/``, in toc order."""
    import yaml

    root = Path(root)
    toc_path = root / "_toc.yml"
    if not toc_path.is_file():
        raise FileNotFoundError(f"{toc_path} not found: run from the repository root or pass --root")
    toc = yaml.safe_load(toc_path.read_text())
    files: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key in ("root", "file"):
                if isinstance(node.get(key), str):
                    files.append(node[key])
            for value in node.values():
                if isinstance(value, (list, dict)):
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(toc)
    prefix = GENERATED.as_posix() + "/"
    return [f[len(prefix) :].removesuffix(".ipynb") for f in files if f.startswith(prefix)]


def execute_notebook(
    source: Path, target: Path, parameters: dict[str, object], cwd: Path, kernel: str | None = None
) -> float:
    """Execute ``source`` with papermill into ``target`` atomically; returns seconds taken.

    The notebook is executed into a temporary file beside ``target`` and renamed on success; on
    failure the temporary file is kept as ``<target>.failed.ipynb`` for inspection and the
    previous ``target`` (if any) is left untouched."""
    import papermill as pm

    start = time.perf_counter()
    with atomic_file(target, suffix=".ipynb", keep_failed=target.with_suffix(".failed.ipynb")) as tmp:
        pm.execute_notebook(
            str(source),
            str(tmp),
            parameters=parameters,
            cwd=str(cwd),
            kernel_name=kernel,
            progress_bar=False,
            log_output=False,
        )
    return time.perf_counter() - start


#: the columns of ``book/generated/runtimes.csv``; ``new_models`` / ``new_campaigns`` count what the
#: notebook trained or campaigned itself (0 and 0: it found everything in the store, a warm run)
RUNTIME_FIELDS = ["notebook", "profile", "seconds", "new_models", "new_campaigns", "finished"]


def store_contents(root: str | os.PathLike | None = None) -> tuple[set[str], set[str]]:
    """The trained models (artifact folders) and campaign stores (``<model>/campaign-*``) in the
    artifact store (``$FATLIB_STORE``, else the per-user cache) — to tell a cold run from a warm one."""
    from fatlib.core.store import default_store_dir

    base = Path(root) if root is not None else default_store_dir()
    if not base.is_dir():
        return set(), set()
    models = {
        d.name
        for d in base.iterdir()
        if d.is_dir() and not d.name.startswith(".") and (d / "config.json").is_file()
    }
    campaigns = {f"{m}/{c.name}" for m in models for c in (base / m).glob("campaign-*") if c.is_dir()}
    return models, campaigns


def _record_runtime(
    gen_dir: Path,
    name: str,
    profile: str,
    seconds: float,
    new_models: int | None = None,
    new_campaigns: int | None = None,
) -> None:
    path = gen_dir / RUNTIMES
    rows = []
    if path.is_file():
        with path.open() as f:
            rows = [r for r in csv.DictReader(f) if r["notebook"] != name]
    rows.append(
        {
            "notebook": name,
            "profile": profile,
            "seconds": f"{seconds:.1f}",
            "new_models": "" if new_models is None else new_models,
            "new_campaigns": "" if new_campaigns is None else new_campaigns,
            "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
    )
    with atomic_file(path, suffix=".csv.part") as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=RUNTIME_FIELDS, restval="", extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def build_html(root: str | os.PathLike = ".") -> Path:
    """Render the book: ``jupyter-book build ROOT -W -n --keep-going`` (warnings are errors)."""
    root = Path(root).resolve()
    jb = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(jb)] if jb.exists() else [sys.executable, "-m", "jupyter_book"]
    cmd += ["build", str(root), "-W", "-n", "--keep-going"]
    subprocess.run(cmd, check=True, cwd=root)
    return root / "_build" / "html" / "index.html"


def run_book(
    root: str | os.PathLike = ".",
    profile: str = "cpu",
    only: list[str] | None = None,
    device: str = "auto",
    data_dir: str = "",
    execute: bool = True,
    build: bool = True,
    kernel: str | None = None,
    log=print,
) -> dict[str, float]:
    """Execute the toc's notebooks at ``profile`` (when ``execute``) and render the book (when
    ``build``). Returns the seconds each notebook took. Raises on the first failing notebook
    (keeping its partial output as ``<name>.failed.ipynb``) and when the build fails."""
    from fatlib.core.profiles import get_profile

    get_profile(profile)  # validate early
    root = Path(root).resolve()
    names = toc_notebooks(root)
    if only:
        unknown = sorted(set(only) - set(names))
        if unknown:
            raise ValueError(f"--only {unknown}: not in the toc; notebooks are {names}")
        names = [n for n in names if n in only]
    gen_dir = root / GENERATED
    times: dict[str, float] = {}
    for name in names if execute else []:
        source = root / "notebooks" / f"{name}.ipynb"
        if not source.is_file():
            raise FileNotFoundError(f"{source} missing: the toc lists book/generated/{name}")
        params = {"PROFILE": profile, "DEVICE": device, "DATA_DIR": data_dir, "OUTPUT_DIR": f"results/{name}"}
        log(f"[fatlib.book] {name}: executing at profile {profile} ...")
        models, campaigns = store_contents()
        seconds = execute_notebook(source, gen_dir / f"{name}.ipynb", params, cwd=root, kernel=kernel)
        models_after, campaigns_after = store_contents()
        new_models, new_campaigns = len(models_after - models), len(campaigns_after - campaigns)
        _record_runtime(gen_dir, name, profile, seconds, new_models, new_campaigns)
        times[name] = seconds
        log(
            f"[fatlib.book] {name}: done in {seconds:.1f} s ({new_models} model(s) trained, "
            f"{new_campaigns} campaign(s) started here)"
        )
    if build:
        missing = [n for n in toc_notebooks(root) if not (gen_dir / f"{n}.ipynb").is_file()]
        if missing:
            raise FileNotFoundError(
                f"not executed yet: {missing}; run `fatlib book` without --only / --build-only first"
            )
        html = build_html(root)
        log(f"[fatlib.book] HTML: {html}")
    return times


def read_glue(notebook: str | os.PathLike) -> dict[str, object]:
    """The values glued in an executed notebook (``application/papermill.record/*`` outputs):
    JSON-decoded ``text/plain`` for scalars, the raw bundle's mime types for figures."""
    import ast

    try:
        nb = json.loads(Path(notebook).read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{notebook} is not a notebook (invalid JSON: {err}); execute it again") from None
    values: dict[str, object] = {}
    for cell in nb.get("cells", []):
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            key = out.get("metadata", {}).get("scrapbook", {}).get("name")
            if key is None:
                continue
            text = data.get("application/papermill.record/text/plain")
            if isinstance(text, list):
                text = "".join(text)
            mimes = [m.split("/", 2)[-1] for m in data if m.startswith("application/papermill.record/")]
            if text is not None and not any(m.startswith("image/") for m in mimes):
                try:
                    values[key] = ast.literal_eval(text)
                except (ValueError, SyntaxError):
                    values[key] = text
            else:
                values[key] = mimes
    return values


def main(argv: list[str] | None = None) -> int:
    """``python -m fatlib.book ...``: the same as ``fatlib book ...`` (:func:`fatlib.cli.book_main`)."""
    from fatlib.cli import book_main

    return book_main(argv)


if __name__ == "__main__":
    sys.exit(main())
