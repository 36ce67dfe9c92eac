import sqlite3

import pytest

from bulkrevoke.errors import RunDirError
from bulkrevoke.ledger import Ledger, row_batch
from bulkrevoke.model import Outcome, Status

META = "698dae82d30c4f6b3da9dc06"


def _rows(first, last, invalid=()):
    return [
        row_batch(
            [
                (i, META, str(i), "id", f"{i:024x}", "malformed_id" if i in invalid else None, None)
                for i in range(first, last + 1)
            ]
        )
    ]


def test_ledger_is_private_and_stores_rows_in_batches(tmp_path):
    path = tmp_path / "ledger.sqlite"
    with Ledger(path) as ledger:
        ledger.ingest(_rows(1, 500, invalid={7}))
        ledger.ingest(_rows(501, 700) + _rows(701, 1000))  # one BLOB, two batches
        batches = list(ledger.row_batches())
        assert [b.num_rows for b in batches] == [500, 200, 300]
        assert [r for b in batches for r in b.column("row").to_pylist()] == list(range(1, 1001))
        assert batches[0].column("error_code")[6].as_py() == "malformed_id"
        assert ledger.pending_count() == 999
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    with sqlite3.connect(path) as db:  # a few BLOBs, not a row each
        assert db.execute("SELECT COUNT(*) FROM row_batches").fetchone()[0] == 2


def test_pending_skips_invalid_duplicate_and_final_rows_in_row_order(tmp_path):
    with Ledger(tmp_path / "l.sqlite") as ledger:
        ledger.ingest(_rows(1, 600, invalid={3}))
        ledger.ingest(_rows(601, 1000))
        ledger.add_duplicates([(4, 1), (700, 2)])
        ledger.record([(5, Outcome(Status.REVOKED, 1))], {"requests": 1})
        seen = [r.row for batch in ledger.pending(batch=64) for r in batch]
        assert seen == [i for i in range(1, 1001) if i not in (3, 4, 5, 700)]
        assert ledger.pending_count() == len(seen)
        assert ledger.counters() == {"requests": 1.0}


def test_intent_marks_rows_in_doubt_until_an_outcome(tmp_path):
    with Ledger(tmp_path / "l.sqlite") as ledger:
        ledger.ingest(_rows(1, 3))
        ledger.mark_intent([1, 2, 3])
        ledger.record([(1, Outcome(Status.REVOKED, 1))], {})
        ledger.clear_intent([3])
        assert ledger.in_doubt_count() == 1
        (pending,) = list(ledger.pending())
        assert [(r.row, r.in_doubt) for r in pending] == [(2, True), (3, False)]
        assert [o[:3] for o in ledger.outcomes_between(1, 3)] == [(1, "revoked", 0), (2, None, 1)]


def test_a_ledger_of_another_schema_is_refused(tmp_path):
    path = tmp_path / "ledger.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    with pytest.raises(RunDirError, match=r"another version of bulkrevoke .ledger schema 1,"):
        Ledger(path)
