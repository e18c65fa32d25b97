"""Writing files so that nothing half-written is ever left behind: everything is written to a
temporary name beside its target and renamed into place only once complete (``os.replace`` is
atomic on one filesystem); on failure the temporary is removed (or kept under a name that says it
failed). With ``fsync`` the data and the folder entry reach the disk before the call returns.
:func:`writer_lock` lets one process at a time write a target that several may want (the store
under concurrent workers, issue #15)."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "atomic_file",
    "atomic_dir",
    "atomic_write_bytes",
    "fsync_dir",
    "output_dir",
    "check_writable",
    "remove_stale_parts",
    "writer_lock",
    "LOCK_STALE_AFTER",
]

#: a lock whose holder stopped refreshing it this many seconds ago is stale (its holder died)
LOCK_STALE_AFTER = 120.0


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
    tmp = _new_temp(path.parent, f".{path.name}.", suffix, folder=False)
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
def atomic_dir(path: str | os.PathLike, replace: bool = False, fsync: bool = False) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; when the block succeeds it becomes ``path``
    (an existing ``path`` is replaced only when ``replace``). On failure it is removed. With
    ``fsync`` every file written into it, the folder and its parent reach the disk first."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _new_temp(path.parent, f".{path.name}.part-", "", folder=True)
    try:
        yield tmp
        if fsync:
            for f in tmp.rglob("*"):
                if f.is_file():
                    with open(f, "rb+") as fh:
                        os.fsync(fh.fileno())
            fsync_dir(tmp)
        if path.exists():
            if not replace:
                raise FileExistsError(f"{path} already exists")
            shutil.rmtree(path)
        os.replace(tmp, path)
        if fsync:
            fsync_dir(path.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def remove_stale_parts(path: str | os.PathLike) -> list[Path]:
    """Remove the temporary folders and files that :func:`atomic_dir` / :func:`atomic_file` left
    beside ``path`` when a process was killed while writing it (``.<name>.part-*``,
    ``.<name>.*.part``); returns what was removed. Call it only where no other process writes
    ``path`` at the same time."""
    path = Path(path)
    removed = []
    if not path.parent.is_dir():
        return removed
    for stale in sorted(path.parent.glob(f".{path.name}.*")):
        if ".part" not in stale.name:
            continue
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)
        removed.append(stale)
    return removed


def check_writable(path: str | os.PathLike, what: str = "output") -> Path:
    """Fail fast, before any work: ``path`` (a folder, created if missing) must be a folder this
    process can write. Raises ValueError naming the path (and what it is for)."""
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise ValueError(f"{what} {path} is a file, not a folder: give a folder path")
    try:
        path.mkdir(parents=True, exist_ok=True)
        _new_temp(path, ".fatlib-write-check-", "", folder=False).unlink()
    except OSError as err:
        raise ValueError(
            f"{what} {path} is not writable ({err.strerror or err}): choose a folder you "
            "can write, or fix its permissions"
        ) from None
    return path


def _new_temp(parent: Path, prefix: str, suffix: str, folder: bool) -> Path:
    """Create a new, uniquely named file or folder in ``parent``. Unlike ``mkstemp`` / ``mkdtemp``
    (0600 / 0700) its mode follows the user's umask, so a store shared by a group stays readable;
    the umask itself is never changed (that would race with other threads)."""
    for _ in range(100):
        tmp = parent / f"{prefix}{secrets.token_hex(6)}{suffix}"
        try:
            if folder:
                os.mkdir(tmp, 0o777)
            else:
                os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
        except FileExistsError:
            continue
        return tmp
    raise FileExistsError(f"could not create a temporary name in {parent}")


def output_dir(path: str | os.PathLike, default_name: str) -> Path:
    """A notebook's output folder: ``path`` when given, else ``results/<default_name>``; created and
    checked writable before the notebook does any work (:func:`check_writable`)."""
    out = Path(path) if str(path) else Path("results") / default_name
    return check_writable(out, "OUTPUT_DIR")


def _lock_owner(lock: Path) -> dict:
    try:
        return json.loads(lock.read_text())
    except (OSError, ValueError):
        return {}


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def _lock_is_stale(lock: Path, stale_after: float) -> bool:
    """Stale: its holder is a dead process on this host, or it was not refreshed for ``stale_after``
    seconds (a holder on another host that died; holders refresh it every ``stale_after / 4``)."""
    owner = _lock_owner(lock)
    if owner.get("host") == socket.gethostname() and isinstance(owner.get("pid"), int):
        if not _pid_alive(owner["pid"]):
            return True
    try:
        age = time.time() - lock.stat().st_mtime
    except FileNotFoundError:
        return False
    return age > stale_after


@contextlib.contextmanager
def writer_lock(
    path: str | os.PathLike,
    stale_after: float = LOCK_STALE_AFTER,
    poll: float = 0.5,
    timeout: float | None = None,
    log=None,
) -> Iterator[Path]:
    """Hold the lock of ``path`` (the file ``.<name>.lock`` beside it) while writing ``path``, so
    that of several processes — on one machine or on a shared filesystem — one writes and the
    others wait, then find the result. The lock file is created with ``O_EXCL`` (atomic on local
    filesystems and NFSv3+), names its holder (host, pid) and is refreshed while held; a lock left
    by a killed holder is taken over (dead pid on this host, or not refreshed for
    ``stale_after`` seconds). ``timeout`` (None: wait as long as the holder lives) raises
    TimeoutError naming the holder. ``log`` (a callable) is told once when waiting starts."""
    path = Path(path)
    lock = path.parent / f".{path.name}.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    me = {"host": socket.gethostname(), "pid": os.getpid(), "since": time.time()}
    start = time.monotonic()
    told = False
    while True:
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
        except FileExistsError:
            if _lock_is_stale(lock, stale_after):
                grave = lock.with_name(f"{lock.name}.stale-{secrets.token_hex(4)}")
                try:
                    os.replace(lock, grave)  # only one taker wins the rename
                    grave.unlink(missing_ok=True)
                except FileNotFoundError:
                    pass
                continue
            if timeout is not None and time.monotonic() - start > timeout:
                raise TimeoutError(
                    f"{path} is being written by {_lock_owner(lock) or 'another process'} "
                    f"(lock {lock}); waited {timeout:.0f} s. Remove the lock file only if that "
                    "process is gone"
                ) from None
            if not told and log is not None:
                log(f"{path.name}: waiting for {_lock_owner(lock) or 'another process'} to finish it")
                told = True
            time.sleep(poll)
            continue
        with os.fdopen(fd, "w") as fh:
            json.dump(me, fh)
        break
    stop = threading.Event()

    def refresh() -> None:
        while not stop.wait(stale_after / 4):
            try:
                os.utime(lock)
            except OSError:
                return

    beat = threading.Thread(target=refresh, name=f"lock:{path.name}", daemon=True)
    beat.start()
    try:
        yield path
    finally:
        stop.set()
        beat.join()
        if _lock_owner(lock).get("pid") == me["pid"] and _lock_owner(lock).get("host") == me["host"]:
            lock.unlink(missing_ok=True)
