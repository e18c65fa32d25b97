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
from typing import TYPE_CHECKING

from fatlib.core.files import atomic_file, output_dir
from fatlib.core.verdicts import CLAIM_COLUMNS

if TYPE_CHECKING:
    import pandas as pd

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
    "toc_root",
    "scoreboard",
    "SCOREBOARD_COLUMNS",
    "scoreboard_html",
    "page_parameters",
    "WORK_FILE",
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


def toc_root(root: str | os.PathLike = ".") -> str | None:
    """The toc's root page when it is a notebook the runner executes (``book/generated/<name>``:
    the book's first page, the scoreboard) — executed last, after every page it sums up."""
    import yaml

    toc_path = Path(root) / "_toc.yml"
    if not toc_path.is_file():
        raise FileNotFoundError(f"{toc_path} not found: run from the repository root or pass --root")
    first = (yaml.safe_load(toc_path.read_text()) or {}).get("root", "")
    prefix = GENERATED.as_posix() + "/"
    return first[len(prefix) :].removesuffix(".ipynb") if str(first).startswith(prefix) else None


#: the columns of a claims table the scoreboard leaves to the pages (how each verdict was reached)
_PAGE_ONLY = ("relation", "tolerance", "evidence")
#: the columns of the book's scoreboard (:func:`scoreboard`): where each claim is, then the claims
#: table's own columns (:data:`fatlib.core.verdicts.CLAIM_COLUMNS`) but the page-only ones
SCOREBOARD_COLUMNS = (
    ["page", "title", "paper_name"] + [c for c in CLAIM_COLUMNS if c not in _PAGE_ONLY] + ["profile"]
)


def _page_title(notebook: Path) -> str:
    try:
        nb = json.loads(notebook.read_text())
    except (OSError, ValueError):
        return notebook.stem
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "markdown":
            text = "".join(cell.get("source", []))
            for line in text.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return notebook.stem


def scoreboard(root: str | os.PathLike = ".", results: str | os.PathLike = "results") -> pd.DataFrame:
    """Every claim of both papers in this rendering, one row each (:data:`SCOREBOARD_COLUMNS`):
    the page (toc name), its title and paper, the claim, the paper's figure, ours with its 95 %
    interval and the verdict — read from each page's ``<results>/<page>/claims.csv`` in toc
    order, the profile from ``book/generated/runtimes.csv``. A page that was not executed, or
    wrote no claims, adds nothing; a page executed at another profile than the others is kept
    and its profile shown."""
    import pandas as pd

    root = Path(root)
    results = root / results if not Path(results).is_absolute() else Path(results)
    prof: dict[str, str] = {}
    runtimes = root / GENERATED / RUNTIMES
    if runtimes.is_file():
        with runtimes.open() as f:
            prof = {r["notebook"]: r["profile"] for r in csv.DictReader(f)}
    parts = []
    for name in toc_notebooks(root):
        path = results / name / "claims.csv"
        if not path.is_file():
            continue
        t = pd.read_csv(path)
        if t.empty:
            continue
        t.insert(0, "page", name)
        t.insert(1, "title", _page_title(root / "notebooks" / f"{name}.ipynb"))
        t.insert(2, "paper_name", "FAT" if name.startswith(("fat-", "sat-")) else "FT-DeepNets")
        t["profile"] = prof.get(name, "")
        parts.append(t)
    if not parts:
        return pd.DataFrame(columns=SCOREBOARD_COLUMNS)
    board = pd.concat(parts, ignore_index=True)
    for col in SCOREBOARD_COLUMNS:
        if col not in board:
            board[col] = "" if col not in ("synthetic",) else False
    board["synthetic"] = board["synthetic"].fillna(False).astype(bool)
    board["kind"] = board["kind"].fillna("claim")
    return board[SCOREBOARD_COLUMNS]


def scoreboard_html(board: pd.DataFrame) -> str:
    """The scoreboard as an HTML table for the book's first page: page (linked to it), claim,
    the paper's figure, ours with its 95 % interval, verdict; observations and rows on synthetic
    data marked as such (they are shown, never counted)."""
    import html

    colour = {"holds": "#1a7f37", "does not hold": "#cf222e", "inconclusive": "#9a6700", "not run": "#6e7781"}
    rows = []
    for r in board.itertuples():
        note = []
        if r.kind == "observation":
            note.append("observation, not a claim of the paper")
        if bool(r.synthetic):
            note.append("synthetic data: not counted")
        verdict = html.escape(str(r.verdict)) + (f"<br><small>({'; '.join(note)})</small>" if note else "")
        rows.append(
            "<tr>"
            f'<td><a href="{html.escape(r.page)}.html">{html.escape(str(r.title))}</a></td>'
            f"<td>{html.escape(str(r.claim))}</td>"
            f"<td>{html.escape('' if str(r.paper) == 'nan' else str(r.paper))}</td>"
            f"<td>{html.escape(str(r.ours))}</td>"
            f'<td style="color:{colour.get(str(r.verdict), "inherit")};font-weight:600">{verdict}</td>'
            "</tr>"
        )
    head = "".join(f"<th>{h}</th>" for h in ("Page", "Claim", "The paper", "Ours (95 % interval)", "Verdict"))
    return (
        '<div class="fatlib-wide"><table class="fatlib-scoreboard"><thead><tr>'
        + head
        + "</tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table></div>"
    )


def execute_notebook(
    source: Path, target: Path, parameters: dict[str, object], cwd: Path, kernel: str | None = None
) -> float:
    """Execute ``source`` with papermill into ``target`` atomically; returns seconds taken.

    The notebook is executed into a temporary file beside ``target`` and renamed on success; on
    failure the temporary file is kept as ``<target>.failed.ipynb`` for inspection and the
    previous ``target`` (if any) is left untouched. The cell papermill injects with the
    parameters is shown or hidden as the notebook's ``parameters`` cell is (its ``remove-cell``
    tag: the book's first page shows no code)."""
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
        _hide_injected_like_parameters(Path(tmp))
    return time.perf_counter() - start


def _hide_injected_like_parameters(path: Path) -> None:
    nb = json.loads(path.read_text())
    tags = lambda c: c.get("metadata", {}).get("tags", [])  # noqa: E731
    params = next((c for c in nb.get("cells", []) if "parameters" in tags(c)), None)
    if params is None or "remove-cell" not in tags(params):
        return
    for cell in nb["cells"]:
        if "injected-parameters" in tags(cell) and "remove-cell" not in tags(cell):
            cell.setdefault("metadata", {}).setdefault("tags", []).append("remove-cell")
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")


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


def _write_work(gen_dir: Path, units: list[dict[str, object]]) -> None:
    fields = ["unit", "key", "seconds", "worker"]
    with atomic_file(gen_dir / WORK_FILE, suffix=".csv.part") as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(
            {**u, "seconds": f"{float(u['seconds']):.1f}"}
            for u in units  # type: ignore[arg-type]
        )


def build_html(root: str | os.PathLike = ".") -> Path:
    """Render the book: ``jupyter-book build ROOT -W -n --keep-going`` (warnings are errors)."""
    root = Path(root).resolve()
    jb = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(jb)] if jb.exists() else [sys.executable, "-m", "jupyter_book"]
    cmd += ["build", str(root), "-W", "-n", "--keep-going"]
    subprocess.run(cmd, check=True, cwd=root)
    return root / "_build" / "html" / "index.html"


def page_parameters(
    name: str, profile: str, device: str = "auto", data_dir: str = "", first: str | None = None
) -> dict[str, object]:
    """The papermill parameters the runner gives page ``name`` (the same for the serial runner,
    the Dask runner and ``fatlib plan``); the book's first page ``first`` also reads every
    page's results."""
    params: dict[str, object] = {
        "PROFILE": profile,
        "DEVICE": device,
        "DATA_DIR": data_dir,
        "OUTPUT_DIR": f"results/{name}",
    }
    if name == first:
        params["RESULTS_DIR"] = "results"
    return params


#: the units of work the Dask runner ran (:mod:`fatlib.cluster`), one row each
WORK_FILE = "work.csv"


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
    workers: int | None = None,
    scheduler: str | None = None,
    threads: int | None = None,
) -> dict[str, float]:
    """Execute the toc's notebooks at ``profile`` (when ``execute``) and render the book (when
    ``build``). Returns the seconds each notebook took. Raises on the first failing notebook
    (keeping its partial output as ``<name>.failed.ipynb``) and when the build fails.

    With ``workers`` (a local Dask cluster of that many processes, ``threads`` threads each) or
    ``scheduler`` (a running Dask scheduler's address) the pages' trainings and campaigns run
    as Dask tasks first, and the pages side by side (:mod:`fatlib.cluster`); the units run are
    listed in ``book/generated/work.csv``. Without them nothing changes."""
    from fatlib.core.profiles import get_profile

    get_profile(profile)  # validate early
    root = Path(root).resolve()
    names = toc_notebooks(root)
    first = toc_root(root)
    if first in names:  # the first page sums up the others: it runs last
        names = [n for n in names if n != first] + [first]
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
    if execute and (workers is not None or scheduler):
        from fatlib.cluster import run_on_dask

        start = time.perf_counter()
        times, units = run_on_dask(
            root,
            [n for n in names if n != first],
            lambda n: page_parameters(n, profile, device, data_dir, first),
            lambda n, s: _record_runtime(gen_dir, n, profile, s),
            workers=workers,
            scheduler=scheduler,
            threads=threads,
            kernel=kernel,
            log=log,
        )
        _write_work(gen_dir, units)
        log(f"[fatlib.book] dask: every page but the first done in {time.perf_counter() - start:.1f} s")
        names = [n for n in names if n == first]  # the first page: here, last
    for name in names if execute else []:
        source = root / "notebooks" / f"{name}.ipynb"
        params = page_parameters(name, profile, device, data_dir, first)
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
