"""Writing files so that nothing half-written is ever left behind: everything is written to a
temporary name beside its target and renamed into place only once complete (``os.replace`` is
atomic on one filesystem); on failure the temporary is removed (or kept under a name that says it
failed). With ``fsync`` the data and the folder entry reach the disk before the call returns."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_file", "atomic_dir", "atomic_write_bytes", "fsync_dir", "output_dir"]


def fsync_dir(path: str | os.PathLike) -> None:
    """Flush a folder's entries to disk (where the OS allows; a no-op elsewhere)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_file(
    path: str | os.PathLike,
    suffix: str = ".part",
    fsync: bool = False,
    keep_failed: str | os.PathLike | None = None,
) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block succeeds it becomes ``path``.

    On an exception the temporary file is deleted — or moved to ``keep_failed`` for inspection —
    and ``path`` is left as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        if fsync:
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
        if fsync:
            fsync_dir(path.parent)
    except BaseException:
        if keep_failed is not None and tmp.exists():
            os.replace(tmp, keep_failed)
        else:
            tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes, fsync: bool = True) -> None:
    """Write ``data`` to ``path`` atomically (and durably when ``fsync``)."""
    with atomic_file(path, fsync=fsync) as tmp:
        tmp.write_bytes(data)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, replace: bool = False) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; when the block succeeds it becomes ``path``
    (an existing ``path`` is replaced only when ``replace``). On failure it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.part-"))
    try:
        yield tmp
        if path.exists():
            if not replace:
                raise FileExistsError(f"{path} already exists")
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def output_dir(path: str | os.PathLike, default_name: str) -> Path:
    """A notebook's output folder: ``path`` when given, else ``results/<default_name>``; created."""
    out = Path(path) if str(path) else Path("results") / default_name
    out.mkdir(parents=True, exist_ok=True)
    return out
