"""Arrays built from their buffers: the same as pyarrow's own, and never past their offsets."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from bulkrevoke._arrays import MAX_STRING_BYTES, repeated, string_offsets, strings


def test_strings_and_repeated_equal_pyarrows_own_arrays() -> None:
    values = ["698dae82d30c4f6b3da9dc06", None, "", "jane@example.com", "naïve ✓"]
    assert strings(values).equals(pa.array(values, pa.string()))
    assert repeated("814", 3).equals(pa.array(["814"] * 3, pa.string()))
    assert strings([]).equals(pa.array([], pa.string()))


def test_offsets_up_to_the_limit_are_exact() -> None:
    lengths = np.array([2**30, 2**30 - 1, 0], np.int64)  # 2 GiB less a byte, in all
    assert string_offsets(lengths).tolist() == [0, 2**30, MAX_STRING_BYTES, MAX_STRING_BYTES]
    assert string_offsets(np.array([], np.int64)).tolist() == [0]


def test_offsets_past_the_limit_are_refused_not_wrapped() -> None:
    # Only the lengths: nothing of 2 GiB is allocated.
    with pytest.raises(OverflowError, match="2,147,483,648 bytes of text in one string array"):
        string_offsets(np.array([2**30, 2**30], np.int64))


def test_a_repeated_value_past_the_limit_is_refused_before_its_text_is_built() -> None:
    with pytest.raises(OverflowError, match="at most 2,147,483,647"):
        repeated("ab", 2**30)  # 2 GiB: refused before b"ab" * 2**30 is made
    assert len(repeated("ab", 2**20)) == 2**20
