"""Duplicates: a hash of the ids narrows the search, the four fields decide; the first
row is named, across batches and buckets, and the spill files are private and removed."""

import stat

import numpy as np
import pytest

from bulkrevoke.ingest import dedupe
from bulkrevoke.ingest.dedupe import DuplicateFinder
from bulkrevoke.ledger import row_batch

META = "698dae82d30c4f6b3da9dc06"
A, B = "a" * 24, "b" * 24


def _batch(rows):
    return row_batch(
        [
            (row, meta, customer, id_type, earned, code, None)
            for row, meta, customer, id_type, earned, code in rows
        ]
    )


def _find(tmp_path, batches):
    finder = DuplicateFinder(tmp_path / "spill")
    reads = []

    def stored():
        reads.append(1)
        return iter(batches)

    try:
        for batch in batches:
            finder.add([batch])
        modes = {stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "spill").iterdir()}
        assert modes <= {0o600}
        assert stat.S_IMODE((tmp_path / "spill").stat().st_mode) == 0o700
        pairs = sorted(pair for pairs in finder.duplicates(stored) for pair in pairs)
        return pairs, len(reads)
    finally:
        finder.close()
        assert not (tmp_path / "spill").exists()


NEAR_MISSES = [
    _batch(
        [
            (1, META, "1", "id", A, None),
            (2, META, "1", "id", B, None),
            (3, META, "1", "id", A, None),
            (4, META, "2", "id", A, None),
        ]
    ),
    _batch(
        [
            (5, META, "1", "mobile", A, None),
            (6, META.upper(), "1", "id", A, None),
            (7, META, "1", "id", A, None),
            (8, META, "1", "id", A, "malformed_id"),
            (9, META, "2", "id", A, None),
            (10, META, "1", "id", "A" * 24, None),
        ]
    ),
]


def test_equal_rows_point_at_the_first_and_near_misses_do_not(tmp_path):
    assert _find(tmp_path, NEAR_MISSES)[0] == [(3, 1), (7, 1), (9, 4)]


@pytest.mark.parametrize("how", ["every hash equal", "too many candidates"])
def test_the_fields_decide_not_the_hash(tmp_path, monkeypatch, how):
    if how == "every hash equal":
        monkeypatch.setattr(dedupe, "_id_hash", lambda valid: np.zeros(valid.num_rows, np.uint64))
    else:
        monkeypatch.setattr(dedupe, "MAX_CANDIDATES", 1)
    assert _find(tmp_path, NEAR_MISSES)[0] == [(3, 1), (7, 1), (9, 4)]


def test_without_candidates_the_rows_are_not_read_again(tmp_path):
    rows = [(i, META, str(i), "id", f"{i:024x}", None) for i in range(1, 5001)]
    assert _find(tmp_path, [_batch(rows[:2500]), _batch(rows[2500:])]) == ([], 0)


def test_many_rows_across_every_bucket(tmp_path):
    # 3,000 distinct earned ids, each three times, spread over batches of 1,000 rows.
    rows = [(i + 1, META, str(i % 3000), "id", f"{i % 3000:024x}", None) for i in range(9000)]
    pairs, reads = _find(tmp_path, [_batch(rows[i : i + 1000]) for i in range(0, 9000, 1000)])
    assert pairs == sorted((row, row - 3000 * ((row - 1) // 3000)) for row in range(3001, 9001))
    assert reads == 1
    hashes = dedupe._id_hash(_batch(rows[:3000]))
    for buckets in (dedupe.HASH_BUCKETS, dedupe.KEY_BUCKETS):  # the hash spreads them all
        shift = np.uint64(64 - (buckets.bit_length() - 1))
        assert len(set((hashes >> shift).tolist())) == buckets


def test_a_batch_of_only_invalid_rows_spills_nothing(tmp_path):
    assert _find(tmp_path, [_batch([(1, "", "1", "id", "x", "715"), (2, "", "1", "id", "x", "715")])]) == (
        [],
        0,
    )
