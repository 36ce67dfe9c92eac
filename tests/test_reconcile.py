from collections import Counter

import pytest

from bulkrevoke.ledger import Ledger
from bulkrevoke.outcome import Outcome, Status
from bulkrevoke.reconcile import Masker, exit_code, write_reports

META = "698dae82d30c4f6b3da9dc06"


@pytest.mark.parametrize("counts, dry_run, stop, code", [
    ({"revoked": 3, "already_inactive": 1, "duplicate": 1, "revoked_unconfirmed": 1}, False, None, 0),
    ({"revoked": 3, "invalid": 1}, False, None, 1),
    ({"revoked": 3, "failed": 1}, False, None, 1),
    ({"revoked": 3, "not_attempted": 2}, False, "auth", 3),
    ({"revoked": 3, "not_attempted": 2}, False, "error_rate", 3),
    ({"revoked": 3, "not_attempted": 2}, False, "signal", 130),
    ({"revoked": 3, "not_attempted": 2}, False, None, 1),   # a crash, rebuilt by `report`
    ({"would_revoke": 3, "duplicate": 1}, True, None, 0),
    ({"would_revoke": 3, "invalid": 1}, True, None, 1),
])
def test_exit_codes(counts, dry_run, stop, code):
    assert exit_code(Counter(counts), dry_run=dry_run, stop_reason=stop) == code


def test_masker_is_keyed_and_leaves_numeric_ids():
    mask = Masker(b"k1")
    assert mask("email", "a@b.co").startswith("hmac:")
    assert mask("email", "a@b.co") == Masker(b"k1")("email", "a@b.co")
    assert mask("email", "a@b.co") != Masker(b"k2")("email", "a@b.co")
    assert mask("id", "42") == "42" and Masker(None)("email", "a@b.co") == "a@b.co"


def test_pending_rows_render_as_not_attempted_and_in_doubt(tmp_path):
    with Ledger(tmp_path / "ledger.sqlite") as ledger:
        ledger.ingest([(i, META, str(i), "id", f"{i:024x}", 1, None, None, None, None)
                       for i in range(1, 4)])
        ledger.mark_intent(2, 2)
        ledger.record([(1, Outcome(Status.REVOKED, 1, is_active=False, http_status=200,
                                   request_id="r1", completed_at="2026-01-01T00:00:00.000Z"))], {})
        ledger.set_meta(stop_reason="signal", dry_run=False)
        summary = write_reports(ledger, tmp_path)
    lines = (tmp_path / "report.csv").read_text().splitlines()
    assert lines[1].split(",")[5:8] == ["revoked", "false", ""]
    assert ",not_attempted,,in_doubt,run," in lines[2]
    assert ",not_attempted,,,run," in lines[3] and "before this row was sent" in lines[3]
    assert summary["counts"]["not_attempted"] == 2 and summary["exitCode"] == 130
    failed = (tmp_path / "failed.csv").read_text().splitlines()
    assert failed[0] == "badgeMetaId,customerId,earnedBadgeId,identifierType"
    assert len(failed) == 3
    import pyarrow.parquet as pq

    table = pq.read_table(tmp_path / "report.parquet")
    assert table.column("isActive").to_pylist() == [False, None, None]
    assert table.column("httpStatus").to_pylist() == [200, None, None]
    assert table.column("errorCode").to_pylist() == [None, "in_doubt", None]


def test_parquet_row_groups_are_gathered_from_the_csv_batches(tmp_path, monkeypatch):
    # The Parquet writer keeps every row group's metadata until it closes: one row group
    # per CSV block would make its memory grow with the report. Each group but the last
    # holds at least PARQUET_GROUP_ROWS rows, and the file equals report.csv row by row.
    import pyarrow.parquet as pq

    from bulkrevoke import reconcile

    monkeypatch.setattr(reconcile, "PARQUET_GROUP_ROWS", 3_000)
    rows = 20_000  # about 2 MB of report.csv: several 256 KiB blocks of ~2,500 rows
    with Ledger(tmp_path / "ledger.sqlite") as ledger:
        ledger.ingest([(i, META, str(i), "id", f"{i:024x}", 1, None, None, None, None)
                       for i in range(1, rows + 1)])
        ledger.set_meta(dry_run=True)
        write_reports(ledger, tmp_path)
    meta = pq.ParquetFile(tmp_path / "report.parquet").metadata
    sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
    assert sum(sizes) == rows and len(sizes) > 1
    assert all(size >= 3_000 for size in sizes[:-1])
    table = pq.read_table(tmp_path / "report.parquet")
    assert table.column("row").to_pylist() == list(range(1, rows + 1))
    assert table.column("customerId").to_pylist() == [str(i) for i in range(1, rows + 1)]
