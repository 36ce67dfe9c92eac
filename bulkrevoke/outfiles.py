"""How a run's output files are written: private to their owner, hashed on the way, and
renamed into place whole (a crash mid-write leaves no half file under the real name)."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path
from typing import Any


class private_file:
    """Create a new binary file readable by its owner only; what is written to it is
    hashed on the way (the summary's SHA-256s, without reading the files again)."""

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
            super().close()  # flushes
            self._raw.close()


def temp_name(path: Path) -> Path:
    """Where *path* is written before it is renamed into place."""
    return path.with_name(path.name + ".tmp")


def write_whole(path: Path, data: bytes) -> str:
    """Write *data* to *path* (private, via a temporary name); return its SHA-256."""
    temp = temp_name(path)
    with private_file(temp) as out:
        out.write(data)
        digest = out.digest.hexdigest()
    os.replace(temp, path)
    return digest

