"""Duplicates are found by spilled, sorted keys: exact equality of the four fields, the
first row named, across batches and buckets, with the spill files private and removed."""

import stat

from bulkrevoke import dedupe
from bulkrevoke.dedupe import DuplicateFinder
from bulkrevoke.ledger import row_batch

META = "698dae82d30c4f6b3da9dc06"


def _batch(rows):
    return row_batch([(row, meta, customer, id_type, earned, code, None)
                      for row, meta, customer, id_type, earned, code in rows])


def _find(tmp_path, batches):
    finder = DuplicateFinder(tmp_path / "spill")
    try:
        for batch in batches:
            finder.add([batch])
        modes = {stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "spill").iterdir()}
        assert modes <= {0o600}
        assert stat.S_IMODE((tmp_path / "spill").stat().st_mode) == 0o700
        return sorted(pair for pairs in finder.duplicates() for pair in pairs)
    finally:
        finder.close()
        assert not (tmp_path / "spill").exists()


def test_equal_rows_point_at_the_first_and_near_misses_do_not(tmp_path):
    a, b = "a" * 24, "b" * 24
    pairs = _find(tmp_path, [
        _batch([(1, META, "1", "id", a, None), (2, META, "1", "id", b, None),
                (3, META, "1", "id", a, None), (4, META, "2", "id", a, None)]),
        _batch([(5, META, "1", "mobile", a, None), (6, META.upper(), "1", "id", a, None),
                (7, META, "1", "id", a, None), (8, META, "1", "id", a, "malformed_id"),
                (9, META, "2", "id", a, None), (10, META, "1", "id", "A" * 24, None)]),
    ])
    assert pairs == [(3, 1), (7, 1), (9, 4)]


def test_many_rows_across_every_bucket(tmp_path):
    # 3,000 distinct earned ids, each three times, spread over batches of 1,000 rows.
    rows = [(i + 1, META, str(i % 3000), "id", f"{i % 3000:024x}", None) for i in range(9000)]
    pairs = _find(tmp_path, [_batch(rows[i:i + 1000]) for i in range(0, 9000, 1000)])
    assert pairs == sorted((row, row - 3000 * ((row - 1) // 3000))
                           for row in range(3001, 9001))
    earned = row_batch([(r[0], r[1], r[2], r[3], r[4], None, None) for r in rows[:3000]])
    buckets = dedupe._bucket_of(earned.column(1), earned.column(4))
    assert len(set(buckets.tolist())) == dedupe.BUCKETS  # the hash spreads them all


def test_a_batch_of_only_invalid_rows_spills_nothing(tmp_path):
    assert _find(tmp_path, [_batch([(1, "", "1", "id", "x", "715"),
                                    (2, "", "1", "id", "x", "715")])]) == []
