"""The run directory: where it is, who may read it, and who holds it.

Created 0700 (its files hold customer identifiers), and found writable before anything
else happens. One run at a time: an exclusive ``flock`` on ``run.lock`` that the kernel
releases when the process dies, so a crash leaves no stale lock behind.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from bulkrevoke.errors import RunDirError, StorageError
from bulkrevoke.model import is_dataframe
from bulkrevoke.storage import RESUME, describe, line, writing

LEDGER = "ledger.sqlite"
LOCK = "run.lock"
LOG = "run.log"
DEFAULT_ROOT = Path("reports")


def run_id_for(source: Any, now: datetime) -> str:
    return f"{now:%Y%m%d-%H%M%S}-{input_stem(source)}"


def input_stem(source: Any) -> str:
    if is_dataframe(source):
        return "dataframe"
    if str(source) == "-":
        return "stdin"
    name = Path(str(source)).name
    for suffix in (".gz", ".csv", ".tsv", ".txt", ".parquet", ".xlsx", ".xlsm"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name) or "input"


def prepare(path: Path, *, resume: bool) -> Path:
    """Create (or, with resume, reopen) the run directory, private to its owner, and make
    sure a file can be written in it."""
    ledger = path / LEDGER
    if resume:
        if not ledger.exists():
            raise RunDirError(f"--resume: {path} holds no run to resume (no {LEDGER})")
    elif ledger.exists():
        raise RunDirError(f"{path} already holds a run; continue it with --resume, or choose another --out")
    existed = path.is_dir()
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(path, 0o700)
    except OSError as exc:
        problem = "cannot write in" if existed else "cannot create"
        raise _unusable(f"{problem} the run directory {path}", exc, resume) from None
    try:
        with tempfile.TemporaryFile(dir=path) as probe:
            probe.write(b"\0")
            probe.flush()
    except OSError as exc:
        raise _unusable(f"cannot write in the run directory {path}", exc, resume) from None
    return path


def create_unique(root: Path, run_id: str) -> Path:
    """A new run directory under *root* named *run_id*, or *run_id*-2, -3… when that name
    is taken (two runs started in the same second on the same input stem). ``mkdir`` is
    atomic, so two processes racing for one name each get their own."""
    for attempt in range(1, 10_000):
        path = root / (run_id if attempt == 1 else f"{run_id}-{attempt}")
        try:
            root.mkdir(parents=True, exist_ok=True)
            path.mkdir(mode=0o700)
        except FileExistsError:
            continue
        except OSError as exc:
            raise _unusable(f"cannot create the run directory {path}", exc, False) from None
        return prepare(path, resume=False)  # made private, and a file written in it
    raise RunDirError(f"{root}: no free run directory name for {run_id}; choose one with --out")


def _unusable(problem: str, exc: OSError, resume: bool) -> StorageError:
    cause, remedy = describe(exc, Path()) or (str(exc), "check the disk")
    if resume:
        return StorageError(line(f"{problem}: {cause}", remedy, RESUME))
    return StorageError(line(f"{problem}: {cause}", f"{remedy} or choose another --out", "run again"))


class RunLock:
    """An exclusive lock on the run directory for the life of this process's run."""

    def __init__(self, run_dir: Path) -> None:
        self._path = run_dir / LOCK
        self._fd: int | None = None

    def __enter__(self) -> RunLock:
        import fcntl

        with writing("the lock file", self._path.parent):
            fd = os.open(self._path, os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RunDirError(
                f"{self._path.parent} is in use by another bulkrevoke run "
                "(wait for it to finish, or use another --out)"
            ) from None
        self._fd = fd
        with contextlib.suppress(OSError):  # who holds it, for a person; the flock is the lock
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
