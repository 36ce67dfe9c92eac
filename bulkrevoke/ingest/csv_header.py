"""The header line of a CSV input, and the file as bytes on the way to it.

Opening: a plain or gzip file (sniffed by its magic bytes, not trusted to its name), hashed
as it is read (``HashingReader``). The header line: the first line that is not blank, BOM
removed, ending at its first line break outside double quotes; what is clearly not CSV text
(a workbook, Parquet, UTF-16) is refused here, before pyarrow sees it. The dialect: the
delimiter, forced or detected from the header line. And, on the error path only, where the
first byte that is not UTF-8 is. The records themselves are ``csv_source``'s job.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import gzip
import hashlib
import io
import re
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from bulkrevoke.errors import InputError
from bulkrevoke.ingest.source import (
    BLOCK_SIZE,
    CSV_DELIMITERS,
    MAX_COLUMNS,
    MAX_HEADER_BYTES,
    error_reason,
)


class HashingReader(io.RawIOBase):
    """Reads a binary file and hashes every byte it hands out."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self.digest = hashlib.sha256()
        self._drained = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._raw.read(len(buffer))
        self.digest.update(data)
        buffer[: len(data)] = data
        return len(data)

    def step(self) -> None:
        """Hash the next block of the file (to keep pace with a reader of the text)."""
        if not self._drained:
            self.digest.update(self._raw.read(BLOCK_SIZE))

    def drain(self) -> None:
        if not self._drained:
            while chunk := self._raw.read(1 << 20):
                self.digest.update(chunk)
            self._drained = True


READ_ERRORS = (OSError, EOFError, zlib.error)  # gzip.BadGzipFile is an OSError


@contextlib.contextmanager
def csv_stream(path: Path, name: str) -> Iterator[tuple[BinaryIO, HashingReader]]:
    """The file's text (unpacked if gzip), and the hash of the bytes on disk read so far."""
    raw = open_binary(path, name)
    try:
        hashing = HashingReader(raw)
        stream: Any = (
            gzip.GzipFile(fileobj=hashing, mode="rb")
            if is_gzip(path)
            else io.BufferedReader(hashing, 1 << 20)
        )
        yield stream, hashing
    except READ_ERRORS as exc:
        raise InputError(f"{name}: cannot read ({error_reason(exc)})") from None
    finally:
        raw.close()


def open_binary(path: Path, name: str) -> BinaryIO:
    try:
        return path.open("rb")
    except OSError as exc:
        raise InputError(f"{name}: cannot read ({error_reason(exc)})") from None


def is_gzip(path: Path) -> bool:
    # Sniffed, not trusted to the name: a .csv that is really gzip is read as gzip, and a
    # .csv.gz that was already unpacked is read as text.
    with path.open("rb") as probe:
        return probe.read(2) == b"\x1f\x8b"


# Whole lines of nothing but spaces, tabs and delimiters before the header are skipped.
_BLANK_LINES = re.compile(rb"(?:[ \t,;|]*(?:\r\n|\r|\n))*")
_LINE_BREAK = re.compile(rb"[\r\n]")
_UTF16 = "is UTF-16 text (byte order mark at byte offset 0), not UTF-8; save it as CSV UTF-8"
_NOT_CSV = {
    b"PK\x03\x04": "is a zip archive (an Excel workbook?), not CSV text; name a workbook .xlsx",
    b"PAR1": "is a Parquet file, not CSV text; name it .parquet",
    codecs.BOM_UTF16_LE: _UTF16,
    codecs.BOM_UTF16_BE: _UTF16,
}


def read_header_line(stream: BinaryIO, name: str) -> tuple[bytes, int]:
    """The first line that is not blank (BOM removed), and the offset in the text where
    the records start, just past its line break.

    The line ends at the first line break outside double quotes, so a quoted header
    holding a line break stays one header."""
    buffer, skipped = _read_start(stream, name)
    eof = False
    while True:
        blank = _BLANK_LINES.match(buffer)
        if blank and blank.end():
            buffer = buffer[blank.end() :]
            skipped += blank.end()
        end = _line_end(buffer)
        if end >= 0:
            after = end + (2 if buffer[end : end + 2] == b"\r\n" else 1)
            return buffer[:end], skipped + after
        if eof:
            if buffer.count(b'"') % 2:
                raise InputError(f"{name}: the header line has an unclosed double quote")
            return (buffer if buffer.strip(b" \t\r\n,;|") else b""), skipped + len(buffer)
        if len(buffer) > MAX_HEADER_BYTES:
            raise InputError(
                f"{name}: the header line is longer than {MAX_HEADER_BYTES >> 20} MiB; is this a CSV file?"
            )
        chunk = stream.read(64 << 10)
        eof = not chunk
        buffer += chunk


def _read_start(stream: BinaryIO, name: str) -> tuple[bytes, int]:
    """The first bytes of the text without a UTF-8 BOM, and the BOM's length; refuses
    what is clearly not CSV."""
    start = stream.read(64 << 10)
    while len(start) < 4 and (more := stream.read(64 << 10)):
        start += more
    for magic, problem in _NOT_CSV.items():
        if start.startswith(magic):
            raise InputError(f"{name}: {problem}")
    bom = len(codecs.BOM_UTF8) if start.startswith(codecs.BOM_UTF8) else 0
    return start[bom:], bom


def _line_end(data: bytes) -> int:
    """Where the first line ends: its first line break outside double quotes, or -1."""
    quotes, searched = 0, 0
    for match in _LINE_BREAK.finditer(data):
        quotes += data.count(b'"', searched, match.start())
        searched = match.start()
        if quotes % 2 == 0:
            return match.start()
    return -1


def parse_header(header_bytes: bytes, name: str, path: Path, delimiter: str | None) -> tuple[str, list[str]]:
    """The delimiter (forced, or detected from the header line) and the headers."""
    if b"\x00" in header_bytes:
        raise InputError(
            f"{name}: the header line holds NUL bytes; is this UTF-16 or a binary file? save it as CSV UTF-8"
        )
    try:
        text = header_bytes.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(utf8_error_message(name, path)) from None
    chosen = delimiter or _detect_delimiter(text)
    try:
        headers = next(csv.reader(io.StringIO(text, newline=""), delimiter=chosen), [])
    except csv.Error as exc:
        raise InputError(f"{name}: cannot read the header line ({exc})") from None
    if not any(h.strip() for h in headers):
        raise InputError(f"{name}: the file is empty (no header line)")
    if len(headers) > MAX_COLUMNS:
        raise InputError(
            f"{name}: the header has {len(headers):,} columns (at most {MAX_COLUMNS:,}); "
            "is this the right file?"
        )
    return chosen, headers


def _detect_delimiter(header: str) -> str:
    """The candidate that splits the header into the most fields, outside quotes."""
    unquoted = re.sub(r'"[^"]*"', "", header)
    counts = {d: unquoted.count(d) for d in CSV_DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def utf8_error_message(name: str, path: Path) -> str:
    """Find the first byte that is not UTF-8 (only on the error path: a second read)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0  # of the chunk about to be read
    gzipped = is_gzip(path)
    opener: Any = gzip.open if gzipped else open
    try:
        with opener(path, "rb") as stream:
            while True:
                chunk = stream.read(1 << 20)
                # The decoder holds back the start of a sequence cut by the chunk's end;
                # an error's position counts from those bytes.
                held = decoder.getstate()[0]
                try:
                    decoder.decode(chunk, final=not chunk)
                except UnicodeDecodeError as exc:
                    data = held + chunk
                    return (
                        f"{name}: not UTF-8 text (invalid byte 0x{data[exc.start]:02x} at "
                        f"byte offset {offset - len(held) + exc.start:,}"
                        f"{' of the unpacked text' if gzipped else ''}); save the file as "
                        "UTF-8"
                    )
                if not chunk:
                    break
                offset += len(chunk)
    except READ_ERRORS as exc:
        return f"{name}: cannot read ({error_reason(exc)})"
    return f"{name}: not UTF-8 text; save the file as UTF-8"
