"""pyarrow arrays to and from Python values, without importing pandas.

``pa.array()``, ``pa.scalar()`` and ``Array.to_numpy()`` first ask pandas whether their
argument is one of its types, and so import it (pyarrow's pandas shim): 0.2 to 0.8 s on the
first call, depending on the machine and its disk cache, which a 20,000-row run would feel.
These build the same arrays from their buffers instead.

When to delete this module: once the oldest pyarrow that ``pyproject.toml`` accepts no
longer imports pandas in those three calls. That is not so yet: pyarrow 26.0.1, the newest
release when this was checked, still imports pandas in all three (pandas is a dependency,
so it is always there to import), and the project accepts pyarrow 14 and newer. To check a
version::

    python -c "import sys, pyarrow as pa; pa.array(['x']); print('pandas' in sys.modules)"

Then call pyarrow directly; ``test_a_run_never_imports_pandas`` (tests/test_operator.py)
fails if a run imports pandas after all.

String arrays have 32-bit offsets, so one array holds at most ``MAX_STRING_BYTES`` of
text. Past that, ``OverflowError`` is raised before anything is built: the offsets never
wrap around into an array that reads back other text. (``large_string`` would hold more,
but every schema downstream, the ledger's and the report's, is ``string``. The arrays built
here hold one batch's ids, codes and messages, far below the limit: only a sheet of 65,536
rows of full 32,767-character cells of non-ASCII text would reach it.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

#: The most bytes of text one string array holds: its offsets are 32-bit signed integers.
MAX_STRING_BYTES = 2**31 - 1


def string_offsets(lengths: Any) -> Any:
    """The int32 offsets of string values of these byte *lengths* (a numpy int64 array):
    0, then each value's end. ``OverflowError`` if they would pass ``MAX_STRING_BYTES``."""
    ends = np.cumsum(lengths, dtype=np.int64)
    _check_total(int(ends[-1]) if len(ends) else 0)
    offsets = np.zeros(len(ends) + 1, np.int32)
    offsets[1:] = ends
    return offsets


def strings(values: Sequence[str | None]) -> Any:
    """A string array of *values* (None is null)."""
    encoded = [b"" if v is None else v.encode("utf-8") for v in values]
    offsets = string_offsets(np.fromiter(map(len, encoded), np.int64, len(encoded)))
    validity, nulls = _validity([v is None for v in values])
    return pa.StringArray.from_buffers(
        len(encoded), pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded)), validity, nulls
    )


def repeated(value: str, count: int) -> Any:
    """*value* *count* times, as a string array."""
    data = value.encode("utf-8")
    _check_total(len(data) * count)  # before the text is built
    offsets = np.arange(count + 1, dtype=np.int64) * len(data)
    return pa.StringArray.from_buffers(
        count, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(data * count)
    )


def _check_total(size: int) -> None:
    if size > MAX_STRING_BYTES:
        raise OverflowError(
            f"{size:,} bytes of text in one string array; its 32-bit offsets "
            f"hold at most {MAX_STRING_BYTES:,}"
        )


def scalar(value: str) -> Any:
    """A string scalar, for compute functions (a bare str would go through pa.scalar())."""
    return strings([value])[0]


def mask_at(positions: Sequence[int], count: int) -> Any:
    """A boolean array of *count* values, true at *positions*."""
    where = np.zeros(count, np.bool_)
    where[list(positions)] = True
    return mask_from_numpy(where)


def mask_from_numpy(where: Any) -> Any:
    """A numpy bool array as a pyarrow boolean array."""
    return pa.Array.from_buffers(
        pa.bool_(), len(where), [None, pa.py_buffer(np.packbits(where, bitorder="little"))]
    )


def true_only(mask: Any) -> Any:
    """A boolean array with its nulls made false."""
    import pyarrow.compute as pc

    return pc.fill_null(mask, bools([False])[0]) if mask.null_count else mask


def int64s(values: Sequence[int | None]) -> Any:
    data = np.fromiter((0 if v is None else v for v in values), np.int64, len(values))
    validity, nulls = _validity([v is None for v in values])
    return pa.Array.from_buffers(pa.int64(), len(values), [validity, pa.py_buffer(data)], nulls)


def int64_from_numpy(values: Any) -> Any:
    data = np.ascontiguousarray(values, np.int64)
    return pa.Array.from_buffers(pa.int64(), len(data), [None, pa.py_buffer(data)])


def int_range(first: int, count: int) -> Any:
    """first, first + 1, …, as an int64 array."""
    return pa.Array.from_buffers(
        pa.int64(), count, [None, pa.py_buffer(np.arange(first, first + count, dtype=np.int64))]
    )


def bools(values: Sequence[bool | None]) -> Any:
    bits = np.packbits(np.fromiter((bool(v) for v in values), np.bool_, len(values)), bitorder="little")
    validity, nulls = _validity([v is None for v in values])
    return pa.Array.from_buffers(pa.bool_(), len(values), [validity, pa.py_buffer(bits)], nulls)


def true_positions(mask: Any) -> Any:
    """The positions where a boolean array is true (nulls count as false), as numpy int64."""
    import pyarrow.compute as pc

    if isinstance(mask, pa.ChunkedArray):
        mask = mask.combine_chunks()
    positions = pc.indices_nonzero(mask)
    return np.frombuffer(positions.buffers()[1], np.uint64, len(positions)).astype(np.int64)


def int64_view(array: Any) -> Any:
    """An int64 array without nulls, as a read-only numpy view."""
    assert array.null_count == 0 and array.type == pa.int64()
    return np.frombuffer(array.buffers()[1], np.int64, len(array), array.offset * 8)


def _validity(missing: Sequence[bool]) -> tuple[Any, int]:
    nulls = sum(missing)
    if not nulls:
        return None, 0
    bits = np.packbits(~np.fromiter(missing, np.bool_, len(missing)), bitorder="little")
    return pa.py_buffer(bits), nulls
