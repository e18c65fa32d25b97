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

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["toc_notebooks", "execute_notebook", "run_book", "main", "GENERATED", "read_glue",
           "output_dir", "build_html", "store_contents", "RUNTIME_FIELDS"]

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
    return [f[len(prefix):].removesuffix(".ipynb") for f in files if f.startswith(prefix)]


def execute_notebook(source: Path, target: Path, parameters: dict[str, object], cwd: Path,
                     kernel: str | None = None) -> float:
    """Execute ``source`` with papermill into ``target`` atomically; returns seconds taken.

    The notebook is executed into a temporary file beside ``target`` and renamed on success; on
    failure the temporary file is kept as ``<target>.failed.ipynb`` for inspection and the
    previous ``target`` (if any) is left untouched."""
    import papermill as pm

    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.stem}.", suffix=".ipynb")
    os.close(fd)
    start = time.perf_counter()
    try:
        pm.execute_notebook(str(source), tmp, parameters=parameters, cwd=str(cwd),
                            kernel_name=kernel, progress_bar=False, log_output=False)
    except BaseException:
        failed = target.with_suffix(".failed.ipynb")
        if Path(tmp).exists():
            os.replace(tmp, failed)
        raise
    seconds = time.perf_counter() - start
    os.replace(tmp, target)
    return seconds


#: the columns of ``book/generated/runtimes.csv``; ``new_models`` / ``new_campaigns`` count what the
#: notebook trained or campaigned itself (0 and 0: it found everything in the store, a warm run)
RUNTIME_FIELDS = ["notebook", "profile", "seconds", "new_models", "new_campaigns", "finished"]


def store_contents(root: str | os.PathLike | None = None) -> tuple[set[str], set[str]]:
    """The trained models (artifact folders) and campaign stores (``<model>/campaign-*``) in the
    artifact store (``$FATLIB_STORE``, else the per-user cache) — to tell a cold run from a warm one."""
    from .store import default_store_dir

    base = Path(root) if root is not None else default_store_dir()
    if not base.is_dir():
        return set(), set()
    models = {d.name for d in base.iterdir()
              if d.is_dir() and not d.name.startswith(".") and (d / "config.json").is_file()}
    campaigns = {f"{m}/{c.name}" for m in models for c in (base / m).glob("campaign-*") if c.is_dir()}
    return models, campaigns


def _record_runtime(gen_dir: Path, name: str, profile: str, seconds: float,
                    new_models: int | None = None, new_campaigns: int | None = None) -> None:
    path = gen_dir / RUNTIMES
    rows = []
    if path.is_file():
        with path.open() as f:
            rows = [r for r in csv.DictReader(f) if r["notebook"] != name]
    rows.append({"notebook": name, "profile": profile, "seconds": f"{seconds:.1f}",
                 "new_models": "" if new_models is None else new_models,
                 "new_campaigns": "" if new_campaigns is None else new_campaigns,
                 "finished": time.strftime("%Y-%m-%d %H:%M:%S")})
    fd, tmp = tempfile.mkstemp(dir=gen_dir, suffix=".csv.part")
    with os.fdopen(fd, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=RUNTIME_FIELDS, restval="", extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


def build_html(root: str | os.PathLike = ".") -> Path:
    """Render the book: ``jupyter-book build ROOT -W -n --keep-going`` (warnings are errors)."""
    root = Path(root).resolve()
    jb = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(jb)] if jb.exists() else [sys.executable, "-m", "jupyter_book"]
    cmd += ["build", str(root), "-W", "-n", "--keep-going"]
    subprocess.run(cmd, check=True, cwd=root)
    return root / "_build" / "html" / "index.html"


def run_book(root: str | os.PathLike = ".", profile: str = "cpu", only: list[str] | None = None,
             device: str = "auto", data_dir: str = "", execute: bool = True, build: bool = True,
             kernel: str | None = None, log=print) -> dict[str, float]:
    """Execute the toc's notebooks at ``profile`` (when ``execute``) and render the book (when
    ``build``). Returns the seconds each notebook took. Raises on the first failing notebook
    (keeping its partial output as ``<name>.failed.ipynb``) and when the build fails."""
    from .profiles import get_profile

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
        params = {"PROFILE": profile, "DEVICE": device, "DATA_DIR": data_dir,
                  "OUTPUT_DIR": f"results/{name}"}
        log(f"[fatlib.book] {name}: executing at profile {profile} ...")
        models, campaigns = store_contents()
        seconds = execute_notebook(source, gen_dir / f"{name}.ipynb", params, cwd=root, kernel=kernel)
        models_after, campaigns_after = store_contents()
        new_models, new_campaigns = len(models_after - models), len(campaigns_after - campaigns)
        _record_runtime(gen_dir, name, profile, seconds, new_models, new_campaigns)
        times[name] = seconds
        log(f"[fatlib.book] {name}: done in {seconds:.1f} s ({new_models} model(s) trained, "
            f"{new_campaigns} campaign(s) started here)")
    if build:
        missing = [n for n in toc_notebooks(root) if not (gen_dir / f"{n}.ipynb").is_file()]
        if missing:
            raise FileNotFoundError(f"not executed yet: {missing}; run `fatlib book` without "
                                    "--only / --build-only first")
        html = build_html(root)
        log(f"[fatlib.book] HTML: {html}")
    return times


def read_glue(notebook: str | os.PathLike) -> dict[str, object]:
    """The values glued in an executed notebook (``application/papermill.record/*`` outputs):
    JSON-decoded ``text/plain`` for scalars, the raw bundle's mime types for figures."""
    import ast

    nb = json.loads(Path(notebook).read_text())
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


def output_dir(path: str | os.PathLike, default_name: str) -> Path:
    """The notebook's output folder: ``path`` when given, else ``results/<default_name>``; created."""
    out = Path(path) if str(path) else Path("results") / default_name
    out.mkdir(parents=True, exist_ok=True)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="fatlib book", description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="cpu", help="scale profile: smoke, cpu or paper")
    ap.add_argument("--root", default=".", help="book root (holds _toc.yml); default: .")
    ap.add_argument("--only", nargs="+", help="execute only these notebooks (by name)")
    ap.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    ap.add_argument("--data-dir", default="", help="data folder (default: $FATLIB_DATA or cache)")
    group = ap.add_mutually_exclusive_group()
    group.add_argument("--no-build", action="store_true", help="execute only, do not render")
    group.add_argument("--build-only", action="store_true", help="render without executing")
    args = ap.parse_args(argv)
    run_book(args.root, args.profile, only=args.only, device=args.device, data_dir=args.data_dir,
             execute=not args.build_only, build=not args.no_build)
    return 0


if __name__ == "__main__":
    sys.exit(main())
