"""Faults of the machine: the real CLI with its run directory on a small filesystem (a
size-limited tmpfs, or a file size limit), read-only, or under a stalled ledger; checked
against the sandbox's ground truth."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from .conftest import (
    CREDENTIALS,
    cli_env,
    make_badges,
    read_report,
    read_summary,
    run_cli,
    start_cli,
    write_input,
)
from .test_crash_resume import _wait_for_requests

FLAGS = ("--rate", "unlimited", "--concurrency", "16", "--no-progress")


@pytest.fixture
def small_fs(tmp_path):
    """``mount(size, read_only=False)``: a tmpfs of that size at a fresh directory, and
    ``grow(path, size)`` to remount it larger; all unmounted after the test."""
    mounted = []

    def mount(size, *, read_only=False):
        point = tmp_path / f"fs{len(mounted)}"
        point.mkdir()
        options = f"size={size}" + (",ro" if read_only else "")
        try:
            subprocess.run(
                ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)], check=True, capture_output=True
            )
        except (OSError, subprocess.CalledProcessError) as exc:
            pytest.skip(f"mounting a size-limited tmpfs needs root with CAP_SYS_ADMIN ({exc})")
        mounted.append(point)
        return point

    def grow(point, size):
        subprocess.run(["mount", "-o", f"remount,size={size}", str(point)], check=True)

    mount.grow = grow
    yield mount
    for point in mounted:
        subprocess.run(["umount", "-l", str(point)], check=False)


def _run(tmp_path, sandbox, out, *extra, **kwargs):
    return run_cli(
        "run",
        str(tmp_path / "in.csv"),
        "--host",
        sandbox.url,
        "--out",
        str(out),
        *FLAGS,
        *extra,
        env=CREDENTIALS,
        **kwargs,
    )


def _one_line(stderr, *words):
    """stderr is one line saying the run directory's fault, without a traceback."""
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    for word in words:
        assert word in lines[0], stderr
    return lines[0]


def _ledger(out):
    """{row: (status, in_doubt)} of the rows the ledger has an outcome or an intent for,
    and its request counter."""
    with sqlite3.connect(out / "ledger.sqlite") as db:
        rows = {
            row: (status, doubt)
            for row, status, doubt in db.execute("SELECT row, status, in_doubt FROM outcomes")
        }
        requests = dict(db.execute("SELECT name, value FROM counters")).get("requests", 0)
    return rows, int(requests)


def _check_resumed(badges, report, sandbox, before):
    """Every row once; a row final before is not sent again; the only rows not as a clean
    run would say are rows that were in doubt, and they are revoked_unconfirmed."""
    truth = sandbox.truth()
    assert [int(r["row"]) for r in report] == list(range(1, len(badges) + 1))
    unconfirmed = 0
    for badge, line in zip(badges, report, strict=True):
        state = truth.badges[badge.key]
        status_before, doubt = before.get(int(line["row"]), (None, 0))
        if status_before is not None:
            assert state.requests == 1 and line["status"] == status_before, line
        if state.applied:
            assert line["status"] in ("revoked", "revoked_unconfirmed"), line
        if line["status"] != ("revoked" if badge.active else "already_inactive"):
            assert line["status"] == "revoked_unconfirmed" and doubt, line
            unconfirmed += 1
        assert state.requests <= 2
    return unconfirmed


@pytest.mark.slow
def test_disk_full_while_sending_stops_at_once_and_resume_settles_every_row(tmp_path, sandbox_for, small_fs):
    badges = make_badges(6000, seed=41)
    write_input(tmp_path / "in.csv", badges)
    sandbox = sandbox_for(badges)
    disk = small_fs("600k")
    out = disk / "run"
    result = _run(tmp_path, sandbox, out, timeout=60)
    assert result.returncode == 3, result.stderr
    _one_line(result.stderr, "cannot write", str(out), "No space left on device", "--resume")
    before, requests = _ledger(out)
    in_doubt = sum(1 for status, doubt in before.values() if status is None and doubt)
    done = sum(1 for status, _ in before.values() if status)
    assert 0 < done < len(badges)
    assert in_doubt <= 16  # at most the requests in flight
    # Nothing left that was not written down: every request sent is recorded or in doubt.
    assert sandbox.truth().requests == requests <= done + in_doubt
    small_fs.grow(disk, "8m")
    resumed = _run(tmp_path, sandbox, out, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert _check_resumed(badges, read_report(out), sandbox, before) <= 16
    summary = read_summary(out)
    assert summary["rows"] == len(badges) and summary["resumes"][0]["rowsInDoubt"] == in_doubt


def test_a_disk_too_small_for_the_input_is_refused_before_anything_is_sent(tmp_path, sandbox_for, small_fs):
    badges = make_badges(6000, seed=42)
    write_input(tmp_path / "in.csv", badges)
    sandbox = sandbox_for(badges)
    out = small_fs("120k") / "run"
    result = _run(tmp_path, sandbox, out)
    assert result.returncode == 2, result.stderr
    _one_line(result.stderr, "not enough room", str(out))
    assert sandbox.truth().requests == 0


def test_disk_full_during_ingest_exits_2_and_resume_starts_over(tmp_path, sandbox_for, small_fs):
    badges = make_badges(6000, seed=43)
    write_input(tmp_path / "in.csv", badges)
    sandbox = sandbox_for(badges)
    disk = small_fs("460k")  # passes the estimate; the ledger and its spill files don't fit
    out = disk / "run"
    result = _run(tmp_path, sandbox, out)
    assert result.returncode == 2, result.stderr
    _one_line(result.stderr, "cannot write", str(out), "No space left on device", "--resume")
    assert sandbox.truth().requests == 0
    assert not (out / "duplicates.spill").exists()  # the spill files gave their room back
    small_fs.grow(disk, "8m")
    resumed = _run(tmp_path, sandbox, out, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert _check_resumed(badges, read_report(out), sandbox, {}) == 0


def test_disk_full_while_writing_the_report_exits_3_and_resume_writes_it(tmp_path, sandbox_for, small_fs):
    # A few rows to send and many invalid ones: a small ledger, a large report.
    badges = make_badges(40, seed=44)
    invalid = [[badges[0].badge_meta_id, "566135941", "not-an-id", ""]] * 5000
    write_input(tmp_path / "in.csv", badges, invalid)
    sandbox = sandbox_for(badges)
    disk = small_fs("600k")  # the ledger and the reserve fit, the report does not
    out = disk / "run"
    result = _run(tmp_path, sandbox, out)
    assert result.returncode == 3, result.stderr
    _one_line(result.stderr, "cannot write the report", str(out), "No space left on device")
    # No report file, whole or half, and the temporary ones gave their room back.
    assert not [
        p.name
        for p in out.iterdir()
        if p.name.startswith(("report", "failed", "summary")) or p.suffix == ".tmp"
    ]
    before, _ = _ledger(out)
    assert sum(1 for status, _ in before.values() if status) == len(badges)
    assert sandbox.truth().requests == len(badges)
    small_fs.grow(disk, "8m")
    resumed = _run(tmp_path, sandbox, out, "--resume")
    assert resumed.returncode == 1, resumed.stderr  # the invalid rows
    assert sandbox.truth().requests == len(badges)  # nothing sent again
    assert len(read_report(out)) == len(badges) + len(invalid)
    counts = read_summary(out)["counts"]
    assert counts["invalid"] == len(invalid)
    assert counts["revoked"] + counts["already_inactive"] == len(badges)


def test_a_read_only_run_directory_exits_2_with_one_line(tmp_path, small_fs):
    write_input(tmp_path / "in.csv", make_badges(20, seed=45))
    out = small_fs("100k", read_only=True) / "run"
    result = run_cli("run", str(tmp_path / "in.csv"), "--dry-run", "--out", str(out))
    assert result.returncode == 2, result.stderr
    _one_line(result.stderr, f"cannot create the run directory {out}", "Read-only file system")


def test_a_run_directory_under_a_file_exits_2_with_one_line(tmp_path):
    write_input(tmp_path / "in.csv", make_badges(20, seed=46))
    out = tmp_path / "in.csv" / "run"
    result = run_cli("run", str(tmp_path / "in.csv"), "--dry-run", "--out", str(out))
    assert result.returncode == 2, result.stderr
    _one_line(result.stderr, f"cannot create the run directory {out}", "Not a directory")


def _with_file_size_limit(limit, *args):
    """The CLI under RLIMIT_FSIZE, set by a Python that then becomes it (exec keeps the
    limit; Python ignores SIGXFSZ, so a write past it fails with EFBIG)."""
    code = (
        "import os, resource, sys; "
        f"resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit})); "
        "os.execv(sys.executable, [sys.executable, '-m', 'bulkrevoke', *sys.argv[1:]])"
    )
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        env=cli_env(CREDENTIALS),
        text=True,
        capture_output=True,
        timeout=60,
    )


@pytest.mark.slow
def test_a_file_size_limit_while_sending_stops_with_exit_3_and_resume_completes(tmp_path, sandbox_for):
    # Needs no privilege: the ledger's write-ahead log outgrows RLIMIT_FSIZE mid-send.
    badges = make_badges(3000, seed=47)
    write_input(tmp_path / "in.csv", badges)
    sandbox = sandbox_for(badges)
    out = tmp_path / "run"
    result = _with_file_size_limit(
        260_000, "run", str(tmp_path / "in.csv"), "--host", sandbox.url, "--out", str(out), *FLAGS
    )
    assert result.returncode == 3, result.stderr
    _one_line(result.stderr, "cannot write the ledger", "File too large", "ulimit -f")
    # Nothing can be written past the limit, so the outcomes held in memory are lost: their
    # rows are in doubt, and the resume settles them.
    before, _ = _ledger(out)
    assert 0 < sandbox.truth().requests < len(badges)
    resumed = _run(tmp_path, sandbox, out, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    _check_resumed(badges, read_report(out), sandbox, before)


@pytest.mark.slow
@pytest.mark.parametrize("signals", [1, 2])
def test_a_stalled_ledger_still_ends_on_a_signal(tmp_path, sandbox_for, signals):
    badges = make_badges(300, seed=48)
    write_input(tmp_path / "in.csv", badges)
    sandbox = sandbox_for(badges, latency=0.02)
    out = tmp_path / "run"
    process = start_cli(
        "run",
        str(tmp_path / "in.csv"),
        "--host",
        sandbox.url,
        "--out",
        str(out),
        *FLAGS,
        "--timeout",
        "0.5",
        env={**CREDENTIALS, "BULKREVOKE_FAILPOINT": "ledger-record:stall"},
    )
    _wait_for_requests(sandbox, 1, process)
    for _ in range(signals):
        process.send_signal(signal.SIGTERM)
        time.sleep(0.2)  # two signals pending at once are delivered as one
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 130, stderr
    # (The first signal may be logged before the ledger stalls; the last line ends it.)
    assert "Traceback" not in stderr
    last = stderr.strip().splitlines()[-1]
    assert (
        "interrupted twice" if signals == 2 else "SIGTERM received and the run did not end within 3.5 s"
    ) in last, stderr
    assert str(out) in last and "--resume" in last
    before, _ = _ledger(out)
    resumed = _run(tmp_path, sandbox, out, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    _check_resumed(badges, read_report(out), sandbox, before)
    assert json.loads((out / "summary.json").read_text())["resumes"][0]["rowsInDoubt"] > 0
