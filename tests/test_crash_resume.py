"""Crash safety: kill the real CLI at several points, resume, and check every row
against the sandbox's ground truth and against what a clean run would report."""

from __future__ import annotations

import json
import signal
import sqlite3
import time

import pytest

from .conftest import (
    CREDENTIALS,
    make_badges,
    read_report,
    read_summary,
    run_cli,
    start_cli,
    write_input,
)

ROWS = 600
FLAGS = ("--rate", "400/s", "--concurrency", "16", "--no-progress")


def _start(tmp_path, sandbox, out, *extra, env=None):
    return start_cli(
        "run",
        str(tmp_path / "in.csv"),
        "--host",
        sandbox.url,
        "--out",
        str(out),
        *FLAGS,
        *extra,
        env={**CREDENTIALS, **(env or {})},
    )


def _wait_for_requests(sandbox, count, process, limit=30.0):
    deadline = time.monotonic() + limit
    while sandbox.truth().requests < count:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the run did not get going"
        time.sleep(0.01)


def _ledger_rows(out):
    """(status, in_doubt) of every row, read from the ledger file itself: a row without an
    ``outcomes`` entry is untouched. (This input has no invalid or duplicate rows.)"""
    with sqlite3.connect(out / "ledger.sqlite") as db:
        (rows,) = db.execute("SELECT value FROM meta WHERE key = 'rows'").fetchone()
        outcomes = {
            row: (status, in_doubt)
            for row, status, in_doubt in db.execute("SELECT row, status, in_doubt FROM outcomes")
        }
        assert not db.execute("SELECT COUNT(*) FROM duplicates").fetchone()[0]
    return {row: outcomes.get(row, (None, 0)) for row in range(1, json.loads(rows) + 1)}


def _resume(tmp_path, sandbox, out):
    result = run_cli(
        "run",
        str(tmp_path / "in.csv"),
        "--host",
        sandbox.url,
        "--out",
        str(out),
        "--resume",
        *FLAGS,
        env=CREDENTIALS,
    )
    assert result.returncode == 0, result.stderr
    return read_report(out)


def _check_against_truth(badges, report, sandbox, before):
    """Every row once; final rows not sent again; every revocation reported; the rest as
    a clean run would say, except rows that were in doubt at the crash."""
    truth = sandbox.truth()
    assert [int(r["row"]) for r in report] == list(range(1, len(badges) + 1))
    for badge, line in zip(badges, report, strict=True):
        row = int(line["row"])
        state = truth.badges[badge.key]
        status_before, in_doubt = before.get(row, (None, 0))
        if status_before is not None:
            assert state.requests == 1, f"row {row} was final before the crash, sent again"
            assert line["status"] == status_before
        if state.applied:
            assert line["status"] in ("revoked", "revoked_unconfirmed"), line
        clean = "revoked" if badge.active else "already_inactive"
        if line["status"] != clean:
            assert line["status"] == "revoked_unconfirmed" and in_doubt, line
        assert state.requests <= 2  # once, or once more for a row in doubt
    return truth


@pytest.fixture
def crash_setup(tmp_path, sandbox_for):
    badges = make_badges(ROWS, seed=21, inactive_share=0.2)
    write_input(tmp_path / "in.csv", badges)
    sandbox = sandbox_for(badges, latency=0.03)
    return badges, sandbox


@pytest.mark.slow
@pytest.mark.parametrize("point", ["after-ingest", "mid-send", "before-report-rename"])
def test_sigkill_then_resume(tmp_path, crash_setup, point):
    badges, sandbox = crash_setup
    out = tmp_path / "run"
    env = {} if point == "mid-send" else {"BULKREVOKE_FAILPOINT": point}
    process = _start(tmp_path, sandbox, out, env=env)
    if point == "mid-send":
        _wait_for_requests(sandbox, ROWS // 3, process)
        process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL
    before = _ledger_rows(out)
    if point == "after-ingest":
        assert sandbox.truth().requests == 0
    if point == "mid-send":
        assert any(status for status, _ in before.values())
        assert any(status is None for status, _ in before.values())
    if point == "before-report-rename":
        assert not (out / "report.csv").exists() and all(s for s, _ in before.values())
    report = _resume(tmp_path, sandbox, out)
    _check_against_truth(badges, report, sandbox, before)
    summary = read_summary(out)
    assert len(summary["resumes"]) == 1
    assert summary["resumes"][0]["rowsInDoubt"] == sum(
        1 for status, doubt in before.values() if doubt and status is None
    )


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_graceful_signal_exits_130_then_resume_completes(tmp_path, crash_setup, signum):
    badges, sandbox = crash_setup
    out = tmp_path / "run"
    process = _start(tmp_path, sandbox, out)
    _wait_for_requests(sandbox, ROWS // 4, process)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 130, stderr
    assert "--resume" in stderr
    report = read_report(out)
    statuses = {r["status"] for r in report}
    assert "not_attempted" in statuses and "revoked" in statuses
    before = _ledger_rows(out)
    assert not any(doubt for _, doubt in before.values()), "in-flight rows finished"
    sent_before = sandbox.truth().requests
    assert sent_before < ROWS
    report = _resume(tmp_path, sandbox, out)
    truth = _check_against_truth(badges, report, sandbox, before)
    assert truth.requests == ROWS  # nothing sent twice
    assert "revoked_unconfirmed" not in {r["status"] for r in report}


@pytest.mark.slow
def test_second_signal_stops_at_once_and_the_ledger_stays_consistent(tmp_path, crash_setup):
    badges, sandbox = crash_setup
    out = tmp_path / "run"
    process = _start(tmp_path, sandbox, out, "--timeout", "20")
    _wait_for_requests(sandbox, ROWS // 4, process)
    process.send_signal(signal.SIGTERM)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 130, stderr
    before = _ledger_rows(out)
    report = _resume(tmp_path, sandbox, out)
    _check_against_truth(badges, report, sandbox, before)


def test_one_run_per_directory(tmp_path, crash_setup):
    _, sandbox = crash_setup
    out = tmp_path / "run"
    process = _start(tmp_path, sandbox, out)
    try:
        _wait_for_requests(sandbox, 10, process)
        second = run_cli(
            "run",
            str(tmp_path / "in.csv"),
            "--host",
            sandbox.url,
            "--out",
            str(out),
            "--resume",
            env=CREDENTIALS,
        )
        assert second.returncode == 2
        assert "in use by another bulkrevoke run" in second.stderr
        report = run_cli("report", str(out))
        assert report.returncode == 2 and "in use" in report.stderr
    finally:
        process.send_signal(signal.SIGKILL)
        process.communicate()
    # The lock died with the process: the directory is usable again at once.
    assert _resume(tmp_path, sandbox, out)


def test_resume_refuses_another_input(tmp_path, crash_setup):
    badges, _ = crash_setup
    out = tmp_path / "run"
    first = run_cli("run", str(tmp_path / "in.csv"), "--dry-run", "--out", str(out))
    assert first.returncode == 0, first.stderr
    write_input(tmp_path / "other.csv", badges[:10])
    result = run_cli("run", str(tmp_path / "other.csv"), "--dry-run", "--out", str(out), "--resume")
    assert result.returncode == 2 and "SHA-256" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
