import sqlite3

from bulkrevoke.ledger import Ledger
from bulkrevoke.outcome import Outcome, Status

META = "698dae82d30c4f6b3da9dc06"


def _record(row, earned, valid=1, customer="1"):
    status = None if valid else "invalid"
    return (row, META, customer, "id", earned, valid, status, None if valid else "malformed_id",
            None if valid else "local", None)


def test_ledger_is_private_and_duplicates_point_at_the_first(tmp_path):
    path = tmp_path / "ledger.sqlite"
    with Ledger(path) as ledger:
        ledger.ingest([_record(1, "a" * 24), _record(2, "b" * 24), _record(3, "a" * 24),
                       _record(4, "a" * 24, customer="2"), _record(5, "x", valid=0),
                       _record(6, "x", valid=0), _record(7, "a" * 24)])
        assert ledger.mark_duplicates() == 2
    with sqlite3.connect(path) as db:
        rows = {r[0]: r[1:] for r in db.execute("SELECT row, status, duplicate_of FROM rows")}
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert rows[3] == ("duplicate", 1) and rows[7] == ("duplicate", 1)
    assert rows[4] == (None, None)          # another customer: not a duplicate
    assert rows[6] == ("invalid", None)     # invalid rows are each reported, never folded


def test_pending_pages_in_row_order_and_skips_final_rows(tmp_path):
    with Ledger(tmp_path / "l.sqlite") as ledger:
        ledger.ingest([_record(i, f"{i:024x}") for i in range(1, 1001)])
        ledger.record([(5, Outcome(Status.REVOKED, 1))], {"requests": 1})
        seen = [r.row for batch in ledger.pending(batch=64) for r in batch]
        assert seen == [i for i in range(1, 1001) if i != 5]
        assert ledger.counters() == {"requests": 1.0}


def test_intent_marks_rows_in_doubt_until_an_outcome(tmp_path):
    with Ledger(tmp_path / "l.sqlite") as ledger:
        ledger.ingest([_record(i, f"{i:024x}") for i in range(1, 4)])
        ledger.mark_intent(1, 3)
        ledger.record([(1, Outcome(Status.REVOKED, 1))], {})
        ledger.clear_intent([3])
        assert ledger.in_doubt_count() == 1
        (pending,) = list(ledger.pending())
        assert [(r.row, r.in_doubt) for r in pending] == [(2, True), (3, False)]
