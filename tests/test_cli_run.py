"""The whole run, as a user runs it: the real CLI against the real sandbox."""

from __future__ import annotations

import hashlib
import shutil
from collections import Counter

import pyarrow.parquet as pq
import pytest

from bulkrevoke.report.render import REPORT_COLUMNS

from .conftest import (
    CREDENTIALS,
    ROOT,
    make_badges,
    read_report,
    read_summary,
    run_cli,
    write_input,
)

SAMPLE = ROOT / "sample_inputs"
EXPECTED_SAMPLE = {"revoked": 24, "already_inactive": 5, "duplicate": 2, "invalid": 7}


@pytest.mark.parametrize("name", ["revocations.csv", "revocations.parquet"])
def test_readme_main_job_on_the_samples(tmp_path, name):
    out = tmp_path / "run"
    result = run_cli("run", str(SAMPLE / name), "--sandbox", "--out", str(out))
    assert result.returncode == 1, result.stderr  # the samples hold invalid rows on purpose
    assert "revoked" in result.stderr and str(out) in result.stderr
    report = read_report(out)
    assert list(report[0]) == list(REPORT_COLUMNS)
    assert [int(r["row"]) for r in report] == list(range(1, 39))
    counts = Counter(r["status"] for r in report)
    assert counts == EXPECTED_SAMPLE
    summary = read_summary(out)
    assert summary["rows"] == 38 == sum(summary["counts"].values())
    assert {k: v for k, v in summary["counts"].items() if v} == EXPECTED_SAMPLE
    assert summary["exitCode"] == 1
    invalid = {r["errorCode"] for r in report if r["status"] == "invalid"}
    assert invalid == {
        "715",
        "813",
        "missing_customer_id",
        "malformed_id",
        "spreadsheet_number",
        "bad_identifier_type",
        "bad_customer_id",
    }
    assert {r["identifierType"] for r in report if r["status"] == "revoked"} >= {"id", "email", "mobile"}
    for name_, entry in summary["files"].items():
        assert hashlib.sha256((out / name_).read_bytes()).hexdigest() == entry["sha256"]
    parquet = pq.read_table(out / "report.parquet").to_pandas()
    assert list(parquet.columns) == list(REPORT_COLUMNS) and len(parquet) == 38


def test_report_matches_the_sandboxs_ground_truth(tmp_path, sandbox_for):
    badges = make_badges(300, seed=2, inactive_share=0.2)
    sandbox = sandbox_for(badges)
    source = write_input(tmp_path / "in.csv", badges + badges[:5], extra_rows=[["", "1", "a" * 24, ""]])
    out = tmp_path / "run"
    result = run_cli(
        "run",
        str(source),
        "--host",
        sandbox.url,
        "--rate",
        "unlimited",
        "--out",
        str(out),
        "--no-progress",
        env=CREDENTIALS,
    )
    assert result.returncode == 1, result.stderr
    report = read_report(out)
    assert len(report) == 306
    truth = sandbox.truth()
    for badge, line in zip(badges, report[:300], strict=True):
        state = truth.badges[badge.key]
        expected = "revoked" if badge.active else "already_inactive"
        assert line["status"] == expected
        assert line["isActive"] == "false" and not state.active
        assert state.requests == 1 and state.applied == int(badge.active)
        assert line["requestId"]
    assert [r["status"] for r in report[300:305]] == ["duplicate"] * 5
    assert [r["duplicateOf"] for r in report[300:305]] == ["1", "2", "3", "4", "5"]
    assert report[305]["status"] == "invalid" and report[305]["errorCode"] == "715"
    assert truth.requests == 300  # nothing for duplicates, nothing for invalid rows
    summary = read_summary(out)
    assert summary["requestsSent"] == 300 and summary["host"] == sandbox.url


def test_failed_rows_csv_is_a_valid_input(tmp_path, sandbox_for):
    badges = make_badges(40, seed=3, inactive_share=0)
    from bulkrevoke.sandbox import FaultProfile

    sandbox = sandbox_for(badges, faults=FaultProfile(seed=4, server_error=0.3))
    out = tmp_path / "run"
    run_cli(
        "run",
        str(write_input(tmp_path / "in.csv", badges)),
        "--host",
        sandbox.url,
        "--rate",
        "unlimited",
        "--max-attempts",
        "1",
        "--out",
        str(out),
        "--no-progress",
        env=CREDENTIALS,
    )
    failed = [r for r in read_report(out) if r["status"] == "failed"]
    assert failed, "the fault profile should fail some rows on a single attempt"
    again = tmp_path / "again"
    result = run_cli(
        "run",
        str(out / "failed.csv"),
        "--host",
        sandbox.url,
        "--rate",
        "unlimited",
        "--max-attempts",
        "20",
        "--backoff",
        "0.01",
        "--out",
        str(again),
        "--no-progress",
        env=CREDENTIALS,
    )
    assert result.returncode == 0, result.stderr
    rerun = read_report(again)
    assert len(rerun) == len(failed)
    assert {r["earnedBadgeId"] for r in rerun} == {r["earnedBadgeId"] for r in failed}
    assert {r["status"] for r in rerun} == {"revoked"}


def test_report_command_rebuilds_identical_files(tmp_path):
    out = tmp_path / "run"
    run_cli("run", str(SAMPLE / "revocations.csv"), "--sandbox", "--out", str(out), "-q")
    before = {
        p.name: p.read_bytes()
        for p in out.iterdir()
        if p.name
        in ("report.csv", "report.parquet", "failed.csv", "report.xlsx", "summary.html", "summary.json")
    }
    assert len(before) == 6
    for name in before:
        (out / name).unlink()
    result = run_cli("report", str(out))
    assert result.returncode == 0, result.stderr
    for name, data in before.items():
        assert (out / name).read_bytes() == data, name


def test_input_error_exits_2_with_one_line_and_sends_nothing(tmp_path, sandbox_for):
    sandbox = sandbox_for([])
    source = tmp_path / "bad.csv"
    source.write_text("badge_meta_id,customer,earned_badge_id\n1,2,3\n")
    result = run_cli("run", str(source), "--host", sandbox.url, "--out", str(tmp_path / "o"), env=CREDENTIALS)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(source) in lines[0] and "customerId" in lines[0]
    assert "Traceback" not in result.stderr
    assert sandbox.truth().requests == 0


def test_stdin_input_and_dry_run(tmp_path):
    text = (SAMPLE / "revocations.csv").read_text()
    out = tmp_path / "dry"
    result = run_cli("run", "-", "--dry-run", "--out", str(out), stdin=text)
    assert result.returncode == 1, result.stderr  # invalid rows in a dry run: exit 1
    counts = Counter(r["status"] for r in read_report(out))
    assert counts == {"would_revoke": 29, "duplicate": 2, "invalid": 7}
    # Nothing failed and nothing was left unsent: failed.csv holds its header only.
    assert (out / "failed.csv").read_text().splitlines() == [
        "badgeMetaId,customerId,earnedBadgeId,identifierType"
    ]
    assert not list(out.glob("stdin-*")), "the spooled copy of stdin is removed"


def test_a_run_directory_is_not_reused_without_resume(tmp_path):
    out = tmp_path / "run"
    assert run_cli("run", str(SAMPLE / "revocations.csv"), "--dry-run", "--out", str(out)).returncode == 1
    again = run_cli("run", str(SAMPLE / "revocations.csv"), "--dry-run", "--out", str(out))
    assert again.returncode == 2 and "--resume" in again.stderr


def test_missing_credentials_is_a_config_error(tmp_path):
    result = run_cli(
        "run", str(SAMPLE / "revocations.csv"), "--host", "http://127.0.0.1:9", "--out", str(tmp_path / "o")
    )
    assert result.returncode == 2 and "BULKREVOKE_USERNAME" in result.stderr


def test_default_run_directory_under_reports(tmp_path):
    shutil.copy(SAMPLE / "revocations.csv", tmp_path / "list.csv")
    result = run_cli("run", "list.csv", "--dry-run", "-q", cwd=tmp_path)
    assert result.returncode == 1
    (run_dir,) = (tmp_path / "reports").iterdir()
    assert run_dir.name.endswith("-list") and (run_dir / "report.csv").exists()
    assert oct(run_dir.stat().st_mode & 0o777) == "0o700"
