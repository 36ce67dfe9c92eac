"""Faults of the machine: a write to the run directory that fails, said in one line.

A full disk, an exhausted quota, a file size limit, a filesystem remounted read-only or a
failing disk reach us as an ``OSError`` (files) or a ``sqlite3`` error (the ledger).
``writing()`` turns either into a ``StorageError`` that names what could not be written,
where, why, and what to do; the runner decides what that means for the run (exit 2 before
anything was sent, a stop with reason ``storage`` after).

``Reserve`` is a little disk space set aside beside the ledger and given back when the
disk fills, so the outcomes the send phase holds in memory can still be written: the rows
a full disk leaves in doubt are at most those in flight. ``check_room`` is the run
directory's check before ingest: room for at least the ledger of the input.
``PrivateFile`` writes a new file that only its owner can read, hashed as it is written.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import os
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bulkrevoke.errors import StorageError
from bulkrevoke.model import is_dataframe

RESUME = "run again with --resume"
#: Below this much free space, SQLite's "database or disk is full" means the disk is full.
NEARLY_FULL = 1 << 20
#: The reserve: enough for one flush of outcomes (measured: a 512-row flush appends about
#: 80 KB to the ledger's write-ahead log), the intents of the rows never sent, the stop
#: reason and a log line.
RESERVE_BASE = 48 << 10
RESERVE_PER_ROW = 128

_REMEDIES = {
    errno.ENOSPC: "free space",
    errno.EDQUOT: "free space or raise the quota",
    errno.EFBIG: "raise the file size limit (ulimit -f)",
    errno.EROFS: "make the filesystem writable",
    errno.EACCES: "make it writable",
    errno.EPERM: "make it writable",
    errno.EIO: "check the disk",
    errno.ENOTDIR: "the path runs through a file",
    errno.EEXIST: "a file is in the way",
}
# SQLite's result codes (or, before Python 3.11, its messages) as the errno they stand for.
_SQLITE = (
    ("SQLITE_FULL", "disk is full", errno.ENOSPC),
    ("SQLITE_READONLY", "readonly database", errno.EROFS),
    ("SQLITE_IOERR", "disk I/O error", errno.EIO),
    ("SQLITE_CANTOPEN", "unable to open database", errno.EACCES),
    ("SQLITE_PERM", "access permission denied", errno.EACCES),
    ("SQLITE_CORRUPT", "malformed", 0),
    ("SQLITE_NOTADB", "not a database", 0),
)


@contextlib.contextmanager
def writing(what: str, where: Path, *, then: str = RESUME) -> Iterator[None]:
    """Inside the block, a failed write of *what* (``"the ledger"``) in the directory
    *where* raises ``StorageError`` with one line saying so. (Other ``sqlite3`` errors are
    bugs, not faults of the machine: they pass.)"""
    try:
        yield
    except (OSError, sqlite3.Error) as exc:
        if describe(exc, where) is None:
            raise
        raise fault(what, where, exc, then=then) from None


def fault(what: str, where: Path, exc: BaseException, *, then: str = RESUME) -> StorageError:
    """The ``StorageError`` that the failed write *exc* means."""
    cause, remedy = describe(exc, where) or (str(exc), "check the disk")
    return StorageError(line(f"cannot write {what} in {where}: {cause}", remedy, then))


def line(problem: str, remedy: str, then: str) -> str:
    return f"{problem} — {remedy}, then {then}" if then else f"{problem} — {remedy}"


def describe(exc: BaseException, where: Path) -> tuple[str, str] | None:
    """(cause, remedy) of a storage fault in the directory *where*, or None."""
    if isinstance(exc, OSError):
        code = exc.errno
        text = os.strerror(code) if code else (str(exc).splitlines() or [type(exc).__name__])[0]
        return text, _REMEDIES.get(code or 0, "check the disk")
    if type(exc) not in (sqlite3.OperationalError, sqlite3.DatabaseError):
        return None
    name = getattr(exc, "sqlite_errorname", "")
    message = str(exc)
    for prefix, words, code in _SQLITE:
        if name.startswith(prefix) or words in message:
            if code in (errno.ENOSPC, errno.EIO) and _at_file_size_limit(where):
                code = errno.EFBIG  # SQLite does not pass the errno on; this is the cause
            elif code == errno.ENOSPC and free_bytes(where) >= NEARLY_FULL:
                return f"{message} (SQLite)", "free space or raise the quota"
            if not code:  # damaged: the disk, or something else wrote into the file
                return f"{message} (SQLite)", "check the disk"
            return os.strerror(code), _REMEDIES[code]
    return None


def _at_file_size_limit(where: Path) -> bool:
    """A file in *where* is within a page of the process's file size limit (ulimit -f)."""
    import resource

    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    if limit == resource.RLIM_INFINITY:
        return False
    try:
        largest = max((entry.stat().st_size for entry in os.scandir(where) if entry.is_file()), default=0)
    except OSError:
        return False
    return largest + NEARLY_FULL >= limit


def free_bytes(where: Path) -> int:
    try:
        return shutil.disk_usage(where).free
    except OSError:
        return 0


def reserve_bytes(rows: int) -> int:
    """The reserve for a send phase that may hold *rows* outcomes and intents unwritten."""
    return RESERVE_BASE + RESERVE_PER_ROW * rows


class Reserve:
    """A file of *size* bytes that holds disk space for the ledger until ``release``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.held = False

    def hold(self, size: int) -> None:
        # Written, not fallocated: a compressing filesystem would keep zeros in no space.
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
            try:
                view = memoryview(os.urandom(size))
                while view:
                    view = view[os.write(fd, view) :]
            finally:
                os.close(fd)
        except OSError:
            self.path.unlink(missing_ok=True)
            raise
        self.held = True

    def release(self) -> None:
        """Give the space back (safe to call at any time, and more than once; it also
        removes a reserve that a killed run left behind)."""
        self.held = False
        with contextlib.suppress(OSError):
            self.path.unlink()


def ledger_estimate(source: Any) -> int:
    """About how many bytes the ledger of *source* takes once ingested, from its size on
    disk: LZ4 barely shrinks hex ids, so a CSV's ledger is about 0.8 of the file (6,000 rows:
    403 KB of CSV, 332 KB of ledger); a compressed input's is larger than the file. Zero
    where the size is not known (standard input, a DataFrame, a file that can't be read:
    ingest says why)."""
    if is_dataframe(source) or str(source) == "-":
        return 0
    path = Path(str(source))
    try:
        size = path.stat().st_size
    except OSError:
        return 0
    name = path.name.lower()
    factor = 2.0 if name.endswith((".gz", ".parquet", ".xlsx", ".xlsm")) else 0.8
    return int(size * factor)


def check_room(run_dir: Path, needed: int) -> None:
    """The exit-2 line when the filesystem of *run_dir* has less than *needed* bytes free."""
    free = free_bytes(run_dir)
    if free < needed:
        raise StorageError(
            line(
                f"not enough room in {run_dir}: {_size(free)} free, this input needs at least "
                f"{_size(needed)} for its ledger",
                "free space or choose another --out",
                "run again",
            )
        )


def _size(count: int) -> str:
    return f"{count / 1024:,.0f} KiB" if count < 1 << 20 else f"{count / (1 << 20):,.1f} MiB"


def temp_name(path: Path) -> Path:
    """Where *path* is written before it is renamed into place, whole."""
    return path.with_name(path.name + ".tmp")


class PrivateFile:
    """A new binary file readable by its owner only; what is written to it is hashed on the
    way (the summary's SHA-256s, without reading the files again)."""

    def __init__(self, path: Path) -> None:
        self._path = path

    def __enter__(self) -> HashingWriter:
        self._path.unlink(missing_ok=True)
        fd = os.open(self._path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
        self._file = HashingWriter(os.fdopen(fd, "wb"))
        return self._file

    def __exit__(self, *exc: object) -> None:
        self._file.close()


class HashingWriter(io.RawIOBase):
    def __init__(self, raw: Any) -> None:
        self._raw = raw
        self.digest = hashlib.sha256()

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.digest.update(data)
        return int(self._raw.write(data))

    def flush(self) -> None:
        self._raw.flush()

    def tell(self) -> int:
        return int(self._raw.tell())

    def close(self) -> None:
        if not self.closed:
            try:
                super().close()  # flushes
            finally:
                self._raw.close()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
