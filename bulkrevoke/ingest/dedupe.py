"""Duplicate rows (README.md, *Input*): a valid row whose four fields equal an earlier valid row's.

Found with memory that does not grow with the input, in two steps:

1. While ingesting, a 64-bit hash of each valid row's two ids and its row number
   (16 bytes) go to one of ``HASH_BUCKETS`` spill files, chosen by the hash's top bits.
   After ingest each bucket is sorted by hash: rows whose hash is not unique are
   candidates. Equal rows have equal ids, so every duplicate and the row it repeats are
   among them; usually there are none, and nothing more is read.
2. The candidates' exact keys (their four fields, joined), read again from the ledger,
   go to ``KEY_BUCKETS`` spill files chosen by the same hash, so equal keys meet in one
   bucket. Each bucket sorted by (key, row): a row whose key equals the one before it is
   a duplicate of the first row of that run of equal keys. The hash only narrows the
   search; equality is decided on the keys themselves.

(Rows with one pair of ids share a bucket: an input that repeats one earned badge id a
million times makes one large bucket, and only then does memory grow.)
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

HASH_BUCKETS = 32
KEY_BUCKETS = 64
#: More candidates than this and every valid row is a candidate (their row numbers would
#: be held in memory, 8 bytes each).
MAX_CANDIDATES = 2_000_000
_KEY_SEPARATOR = "\x1f"
_SPILL_RECORD = np.dtype([("hash", "<u8"), ("row", "<i8")])
# Odd 64-bit constants for the multiplicative hash of the ids' bytes.
_MIX = np.array(
    [
        0x9E3779B97F4A7C15,
        0xC2B2AE3D27D4EB4F,
        0x165667B19E3779F9,
        0xD6E8FEB86659FD93,
        0xFF51AFD7ED558CCD,
        0xC4CEB9FE1A85EC53,
    ],
    np.uint64,
)


class DuplicateFinder:
    """Spill valid rows' hashes while ingesting (``add``), then list the duplicates
    (``duplicates``). The spill directory is private and removed by ``close``."""

    def __init__(self, spill_dir: Path) -> None:
        shutil.rmtree(spill_dir, ignore_errors=True)  # left by a run that died
        spill_dir.mkdir(mode=0o700)
        self._dir = spill_dir
        self._hashes = _Spill(spill_dir, "hashes", HASH_BUCKETS)
        self._keys = _Spill(spill_dir, "keys", KEY_BUCKETS)

    def add(self, batches: list[Any]) -> None:
        """Spill the hashes of the valid rows of ledger row batches."""
        for batch in batches:
            valid = _valid(batch)
            if valid.num_rows:
                records = np.empty(valid.num_rows, _SPILL_RECORD)
                records["hash"] = _id_hash(valid)
                records["row"] = _rows(valid)
                self._hashes.write(records["hash"], records.take)

    def duplicates(self, stored: Callable[[], Iterable[Any]]) -> Iterator[list[tuple[int, int]]]:
        """(row, the first row with the same four fields), a bucket at a time. *stored*
        gives the ledger's row batches again, if there are candidates to check."""
        from bulkrevoke._arrays import mask_from_numpy

        candidates = self._candidates()
        if candidates is not None and not len(candidates):
            return
        for batch in stored():
            valid = _valid(batch)
            if candidates is not None and valid.num_rows:
                valid = valid.filter(mask_from_numpy(np.isin(_rows(valid), candidates)))
            if valid.num_rows:
                self._spill_keys(valid)
        yield from self._duplicates_by_key()

    def close(self) -> None:
        try:
            self._hashes.close()
            self._keys.close()
        finally:
            shutil.rmtree(self._dir, ignore_errors=True)

    def _candidates(self) -> Any:
        """Sorted row numbers of the rows whose hash is not unique, or None for "every
        valid row" (more than MAX_CANDIDATES)."""
        found: list[Any] = []
        total = 0
        for data in self._hashes.read_all():
            records = np.frombuffer(data, _SPILL_RECORD)
            order = np.argsort(records["hash"])
            hashes, rows = records["hash"][order], records["row"][order]
            same = hashes[1:] == hashes[:-1]
            shared = np.zeros(len(hashes), np.bool_)
            shared[1:] |= same
            shared[:-1] |= same
            found.append(rows[shared])
            total += int(shared.sum())
            if total > MAX_CANDIDATES:
                return None
        return np.sort(np.concatenate(found)) if found else np.empty(0, np.int64)

    def _spill_keys(self, valid: Any) -> None:
        import pyarrow as pa
        import pyarrow.compute as pc

        from bulkrevoke._arrays import int64_from_numpy, scalar

        keys = pc.binary_join_element_wise(
            valid.column("badge_meta_id"),
            valid.column("earned_badge_id"),
            valid.column("identifier_type"),
            valid.column("customer_id"),
            scalar(_KEY_SEPARATOR),
        )
        spilled = pa.record_batch([keys, valid.column("row")], names=["key", "row"])
        # Each write is one Arrow IPC message (a record batch without its schema).
        self._keys.write(
            _id_hash(valid), lambda order: spilled.take(int64_from_numpy(order)).serialize().to_pybytes()
        )

    def _duplicates_by_key(self) -> Iterator[list[tuple[int, int]]]:
        import pyarrow as pa
        import pyarrow.compute as pc

        from bulkrevoke._arrays import int64_view, true_positions

        schema = pa.schema([("key", pa.string()), ("row", pa.int64())])
        for data in self._keys.read_all():
            messages = pa.ipc.MessageReader.open_stream(pa.py_buffer(data))
            table = pa.Table.from_batches(
                [pa.ipc.read_record_batch(message, schema) for message in messages], schema
            )
            order = pc.sort_indices(table, sort_keys=[("key", "ascending"), ("row", "ascending")])
            keys = table.column("key").take(order).combine_chunks()
            rows = int64_view(table.column("row").take(order).combine_chunks())
            del table
            repeats = true_positions(pc.equal(keys[1:], keys[:-1])) + 1
            if not len(repeats):
                continue
            starts = np.arange(len(rows))
            starts[repeats] = 0
            run_start = np.maximum.accumulate(starts)  # where each row's run of equal keys begins
            yield list(zip(rows[repeats].tolist(), rows[run_start[repeats]].tolist(), strict=True))


class _Spill:
    """Records appended to one of *buckets* private files by the top bits of a hash."""

    def __init__(self, directory: Path, name: str, buckets: int) -> None:
        self._directory, self._name, self._buckets = directory, name, buckets
        self._shift = np.uint64(64 - (buckets.bit_length() - 1))
        self._files: dict[int, Any] = {}

    def write(self, hashes: Any, encode: Callable[[Any], Any]) -> None:
        """Append, to each bucket, ``encode(positions)`` (bytes, or a numpy array written
        as its bytes) of the records that go there."""
        buckets = (hashes >> self._shift).astype(np.uint8)  # a radix sort, for 8 bits
        order = np.argsort(buckets, kind="stable")
        ends = np.searchsorted(buckets[order], np.arange(1, self._buckets + 1, dtype=np.uint8))
        start = 0
        for bucket, end in enumerate(ends.tolist()):
            if end > start:
                self._file(bucket).write(encode(order[start:end]))
            start = end

    def read_all(self) -> Iterator[bytes]:
        """Each bucket's bytes in turn (then the file is removed)."""
        for file in self._files.values():
            file.close()
        for bucket in sorted(self._files):
            path = self._path(bucket)
            data = path.read_bytes()
            path.unlink()
            yield data
        self._files.clear()

    def close(self) -> None:
        """Let go of the files (``read_all`` closes them before reading: what is left here
        is never read, so a write that fails now, on a full disk, loses nothing)."""
        for file in self._files.values():
            with contextlib.suppress(OSError):
                file.close()

    def _file(self, bucket: int) -> Any:
        file = self._files.get(bucket)
        if file is None:
            fd = os.open(self._path(bucket), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
            file = self._files[bucket] = os.fdopen(fd, "wb", buffering=1 << 16)
        return file

    def _path(self, bucket: int) -> Path:
        return self._directory / f"{self._name}-{bucket:02d}"


def _valid(batch: Any) -> Any:
    import pyarrow.compute as pc

    codes = batch.column("error_code")
    if codes.null_count == len(codes):
        return batch  # every row valid: no copy
    return batch.filter(pc.is_null(codes))


def _rows(batch: Any) -> Any:
    from bulkrevoke._arrays import int64_view

    return int64_view(batch.column("row"))


def _id_hash(valid: Any) -> Any:
    """A 64-bit hash of each valid row's two ids (24 ASCII bytes each), as numpy uint64."""
    words = np.concatenate(
        [_fixed_words(valid.column("badge_meta_id")), _fixed_words(valid.column("earned_badge_id"))], axis=1
    )
    mixed = np.bitwise_xor.reduce(words * _MIX, axis=1)
    mixed ^= mixed >> np.uint64(31)
    mixed *= _MIX[0]
    mixed ^= mixed >> np.uint64(29)
    return mixed


def _fixed_words(array: Any) -> Any:
    """A string array whose every value is 24 bytes long, as three uint64 words a value."""
    count = len(array)
    offsets = np.frombuffer(array.buffers()[1], np.int32, count + 1, array.offset * 4)
    start = int(offsets[0])
    if int(offsets[-1]) - start != 24 * count:
        raise ValueError("ids of a valid row are 24 characters")
    return np.frombuffer(array.buffers()[2], np.uint8, 24 * count, start).view("<u8").reshape(count, 3)
