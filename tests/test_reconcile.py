import csv
from collections import Counter

import pytest

from bulkrevoke.ledger import Ledger, row_batch
from bulkrevoke.model import Outcome, Status, exit_code
from bulkrevoke.report.reconcile import write_reports
from bulkrevoke.report.render import REPORT_COLUMNS, Masker

META = "698dae82d30c4f6b3da9dc06"


@pytest.mark.parametrize(
    "counts, dry_run, stop, code",
    [
        ({"revoked": 3, "already_inactive": 1, "duplicate": 1, "revoked_unconfirmed": 1}, False, None, 0),
        ({"revoked": 3, "invalid": 1}, False, None, 1),
        ({"revoked": 3, "failed": 1}, False, None, 1),
        ({"revoked": 3, "not_attempted": 2}, False, "auth", 3),
        ({"revoked": 3, "not_attempted": 2}, False, "error_rate", 3),
        ({"revoked": 3, "not_attempted": 2}, False, "signal", 130),
        ({"revoked": 3, "not_attempted": 2}, False, None, 1),  # a crash, rebuilt by `report`
        ({"would_revoke": 3, "duplicate": 1}, True, None, 0),
        ({"would_revoke": 3, "invalid": 1}, True, None, 1),
    ],
)
def test_exit_codes(counts, dry_run, stop, code):
    assert exit_code(Counter(counts), dry_run=dry_run, stop_reason=stop) == code


def test_masker_is_keyed_and_leaves_numeric_ids():
    mask = Masker(b"k1")
    assert mask("email", "a@b.co").startswith("hmac:")
    assert mask("email", "a@b.co") == Masker(b"k1")("email", "a@b.co")
    assert mask("email", "a@b.co") != Masker(b"k2")("email", "a@b.co")
    assert mask("id", "42") == "42" and Masker(None)("email", "a@b.co") == "a@b.co"


def _rows(first, last):
    return row_batch([(i, META, str(i), "id", f"{i:024x}", None, None) for i in range(first, last + 1)])


def _read_csv(path):
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def test_pending_rows_render_as_not_attempted_and_in_doubt(tmp_path):
    with Ledger(tmp_path / "ledger.sqlite") as ledger:
        ledger.ingest(
            [
                row_batch(
                    [
                        *((i, META, str(i), "id", f"{i:024x}", None, None) for i in range(1, 4)),
                        (4, "", "4", "id", f"{4:024x}", "715", "badgeMetaId is missing"),
                        (5, META, "1", "id", f"{1:024x}", None, None),
                    ]
                )
            ]
        )
        ledger.add_duplicates([(5, 1)])
        ledger.mark_intent([2])
        ledger.record(
            [
                (
                    1,
                    Outcome(
                        Status.REVOKED,
                        1,
                        is_active=False,
                        http_status=200,
                        request_id="r1",
                        completed_at="2026-01-01T00:00:00.000Z",
                    ),
                )
            ],
            {},
        )
        ledger.set_meta(stop_reason="signal", dry_run=False)
        summary = write_reports(ledger, tmp_path)
    header, *lines = _read_csv(tmp_path / "report.csv")
    assert tuple(header) == REPORT_COLUMNS
    assert lines[0][5:15] == [
        "revoked",
        "false",
        "",
        "",
        "",
        "200",
        "1",
        "r1",
        "",
        "2026-01-01T00:00:00.000Z",
    ]
    assert lines[1][5:9] == ["not_attempted", "", "in_doubt", "run"]
    assert "--resume will settle it" in lines[1][9]
    assert lines[2][5:9] == ["not_attempted", "", "", "run"]
    assert "before this row was sent" in lines[2][9]
    assert lines[3][5:12] == ["invalid", "", "715", "local", "badgeMetaId is missing", "", "0"]
    assert lines[4][5:14] == ["duplicate", "", "", "", "", "", "0", "", "1"]
    assert summary["counts"]["not_attempted"] == 2 and summary["exitCode"] == 130
    assert summary["errorCodes"] == {"715": 1, "in_doubt": 1}
    assert summary["errorMessages"]["715"] == "badgeMetaId is missing"
    failed = _read_csv(tmp_path / "failed.csv")
    assert failed == [
        ["badgeMetaId", "customerId", "earnedBadgeId", "identifierType"],
        [META, "2", f"{2:024x}", "id"],
        [META, "3", f"{3:024x}", "id"],
    ]
    import pyarrow.parquet as pq

    table = pq.read_table(tmp_path / "report.parquet")
    assert table.column("isActive").to_pylist() == [False, None, None, None, None]
    assert table.column("httpStatus").to_pylist() == [200, None, None, None, None]
    assert table.column("errorCode").to_pylist() == [None, "in_doubt", None, "715", None]
    assert table.column("duplicateOf").to_pylist() == [None, None, None, None, 1]


def test_customer_ids_are_masked_by_type_in_the_report_but_not_in_failed_csv(tmp_path):
    with Ledger(tmp_path / "ledger.sqlite") as ledger:
        ledger.ingest(
            [
                row_batch(
                    [
                        (1, META, "a@b.co", "email", f"{1:024x}", None, None),
                        (2, META, "42", "id", f"{2:024x}", None, None),
                    ]
                )
            ]
        )
        ledger.set_meta(dry_run=False)
        write_reports(ledger, tmp_path, pii_key=b"k1")
    lines = _read_csv(tmp_path / "report.csv")[1:]
    assert lines[0][2] == Masker(b"k1")("email", "a@b.co") and lines[1][2] == "42"
    assert [line[1] for line in _read_csv(tmp_path / "failed.csv")[1:]] == ["a@b.co", "42"]


def test_parquet_row_groups_are_gathered_from_the_stored_batches(tmp_path, monkeypatch):
    # The Parquet writer keeps every row group's metadata until it closes: one row group
    # per small batch would make its memory grow with the report. Each group but the last
    # holds at least PARQUET_GROUP_ROWS rows, and the file equals report.csv row by row.
    import pyarrow.parquet as pq

    from bulkrevoke.report import reconcile

    monkeypatch.setattr(reconcile, "PARQUET_GROUP_ROWS", 3_000)
    rows = 20_000
    with Ledger(tmp_path / "ledger.sqlite") as ledger:
        for first in range(1, rows + 1, 1_000):
            ledger.ingest([_rows(first, first + 499), _rows(first + 500, first + 999)])
        ledger.set_meta(dry_run=True)
        write_reports(ledger, tmp_path)
    meta = pq.ParquetFile(tmp_path / "report.parquet").metadata
    sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
    assert sum(sizes) == rows and len(sizes) > 1
    assert all(size >= 3_000 for size in sizes[:-1])
    table = pq.read_table(tmp_path / "report.parquet")
    assert table.column("row").to_pylist() == list(range(1, rows + 1))
    assert table.column("customerId").to_pylist() == [str(i) for i in range(1, rows + 1)]
    lines = _read_csv(tmp_path / "report.csv")[1:]
    assert [line[2] for line in lines] == table.column("customerId").to_pylist()
    assert {line[5] for line in lines} == {"would_revoke"}
