"""Duplicate rows (CONTRACT §3): a valid row whose four fields equal an earlier valid row's.

Found with memory that does not grow with the input. During ingest, each valid row's key
(its four fields, joined) and row number go to one of ``BUCKETS`` private spill files,
chosen by a hash of the two 24-digit ids, so equal keys always meet in one bucket. After
ingest each bucket is sorted by (key, row) on its own: a row whose key equals the one
before it is a duplicate of the first row of that run of equal keys.

(A bucket holds the rows of one earned badge id together: an input that repeats one
earned badge id a million times makes one large bucket, and only then does memory grow.)
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

_BUCKET_BITS = 6
BUCKETS = 1 << _BUCKET_BITS
_KEY_SEPARATOR = "\x1f"
# Odd 64-bit constants for the multiplicative hash of the ids' bytes.
_MIX = np.array([0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9,
                 0xD6E8FEB86659FD93, 0xFF51AFD7ED558CCD, 0xC4CEB9FE1A85EC53], np.uint64)


class DuplicateFinder:
    """Spill valid rows' keys while ingesting (``add``), then list the duplicates
    (``duplicates``). The spill directory is private and removed by ``close``."""

    def __init__(self, spill_dir: Path) -> None:
        shutil.rmtree(spill_dir, ignore_errors=True)  # left by a run that died
        spill_dir.mkdir(mode=0o700)
        self._dir = spill_dir
        self._writers: dict[int, Any] = {}
        self._files: dict[int, Any] = {}

    def add(self, batches: list[Any]) -> None:
        """Spill the keys of the valid rows of ledger row batches (in row order)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        from .arrays import int64_from_numpy, scalar

        if not batches:
            return
        rows = pa.Table.from_batches(batches).combine_chunks()
        valid = rows.filter(pc.is_null(rows.column("error_code")))
        if not valid.num_rows:
            return
        meta = valid.column("badge_meta_id").chunk(0)
        earned = valid.column("earned_badge_id").chunk(0)
        keys = pc.binary_join_element_wise(meta, earned, valid.column("identifier_type").chunk(0),
                                           valid.column("customer_id").chunk(0),
                                           scalar(_KEY_SEPARATOR))
        buckets = _bucket_of(meta, earned)
        order = np.argsort(buckets, kind="stable")
        ends = np.searchsorted(buckets[order], np.arange(1, BUCKETS + 1, dtype=np.uint64))
        spilled = pa.record_batch([keys, valid.column("row").chunk(0)],
                                  names=["key", "row"]).take(int64_from_numpy(order))
        start = 0
        for bucket, end in enumerate(ends.tolist()):
            if end > start:
                self._writer(bucket, spilled.schema).write_batch(spilled.slice(start, end - start))
            start = end

    def duplicates(self) -> Iterator[list[tuple[int, int]]]:
        """(row, first row with the same key), a bucket at a time."""
        import pyarrow as pa
        import pyarrow.compute as pc

        from .arrays import int64_view, true_positions

        for writer in self._writers.values():
            writer.close()
        for file in self._files.values():
            file.close()
        for bucket in sorted(self._files):
            path = self._path(bucket)
            with pa.OSFile(str(path)) as stream:
                table = pa.ipc.open_stream(stream).read_all()
            order = pc.sort_indices(table, sort_keys=[("key", "ascending"), ("row", "ascending")])
            keys = table.column("key").take(order)
            rows = int64_view(table.column("row").take(order).combine_chunks())
            del table
            repeats = true_positions(pc.equal(keys[1:], keys[:-1])) + 1
            if not len(repeats):
                continue
            starts = np.arange(len(rows))
            starts[repeats] = 0
            run_start = np.maximum.accumulate(starts)  # where each row's run of equal keys begins
            yield list(zip(rows[repeats].tolist(), rows[run_start[repeats]].tolist(), strict=True))

    def close(self) -> None:
        for file in self._files.values():
            file.close()
        shutil.rmtree(self._dir, ignore_errors=True)

    def _writer(self, bucket: int, schema: Any) -> Any:
        import pyarrow as pa

        writer = self._writers.get(bucket)
        if writer is None:
            fd = os.open(self._path(bucket), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
            self._files[bucket] = os.fdopen(fd, "wb", buffering=1 << 16)
            writer = self._writers[bucket] = pa.ipc.new_stream(self._files[bucket], schema)
        return writer

    def _path(self, bucket: int) -> Path:
        return self._dir / f"bucket-{bucket:02d}.arrow"


def _bucket_of(meta: Any, earned: Any) -> Any:
    """A bucket number for each row, from the bytes of its two ids (24 ASCII bytes each
    on a valid row), as numpy uint64."""
    words = np.concatenate([_fixed_words(meta), _fixed_words(earned)], axis=1)
    mixed = np.bitwise_xor.reduce(words * _MIX, axis=1)
    mixed ^= mixed >> np.uint64(31)
    mixed *= _MIX[0]
    return mixed >> np.uint64(64 - _BUCKET_BITS)


def _fixed_words(array: Any) -> Any:
    """A string array whose every value is 24 bytes long, as three uint64 words a value."""
    count = len(array)
    offsets = np.frombuffer(array.buffers()[1], np.int32, count + 1, array.offset * 4)
    start = int(offsets[0])
    if int(offsets[-1]) - start != 24 * count:
        raise ValueError("ids of a valid row are 24 characters")
    return np.frombuffer(array.buffers()[2], np.uint8, 24 * count, start).view("<u8").reshape(
        count, 3)
