"""Who ran a run, as whom, under which ticket, with what; and the batch control totals."""

from __future__ import annotations

import platform
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

import bulkrevoke
from bulkrevoke.ledger import Ledger
from bulkrevoke.report.summary import control_totals
from bulkrevoke.report.summary_text import format_summary
from bulkrevoke.sandbox import FaultProfile

from .conftest import (
    CREDENTIALS,
    PASSWORD,
    USERNAME,
    make_badges,
    read_report,
    read_summary,
    run_cli,
    write_input,
)


def test_the_summary_names_operator_principal_ticket_and_what_ran(tmp_path, sandbox_for):
    badges = make_badges(60, seed=41)
    sandbox = sandbox_for(badges)
    source = write_input(tmp_path / "in.csv", badges + badges[:3], extra_rows=[["", "1", "a" * 24, ""]])
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
        "--ticket",
        "CHG-42",
        env={**CREDENTIALS, "LOGNAME": "auditor-7"},
    )
    assert result.returncode == 1, result.stderr
    summary = read_summary(out)
    assert (summary["operator"], summary["principal"], summary["ticket"]) == ("auditor-7", USERNAME, "CHG-42")
    assert summary["pythonVersion"] == platform.python_version()
    assert summary["version"] == bulkrevoke.__version__
    assert summary["settingsDigest"].startswith("sha256:") and len(summary["settingsDigest"]) == 71
    assert summary["settings"]["host"] == sandbox.url and summary["settings"]["maxAttempts"] == 6
    assert "operator auditor-7, principal till-7, ticket CHG-42" in result.stderr
    counts = Counter(r["status"] for r in read_report(out))
    rows = summary["controls"]["rows"]
    assert rows["holds"] and rows["figures"] == {
        "rows": 64,
        "invalid": counts["invalid"],
        "duplicate": 3,
        "sent": counts["revoked"] + counts["already_inactive"],
        "notSent": 0,
    }
    assert summary["controls"]["sent"]["holds"]
    assert summary["controls"]["sent"]["figures"]["revoked"] == counts["revoked"]
    for path in out.iterdir():  # the password is in no file (the workbook is checked unzipped
        assert PASSWORD.encode() not in path.read_bytes()  # in test_security)


def test_an_oauth_run_names_its_client_key_as_principal(tmp_path, sandbox_for):
    badges = make_badges(5, seed=42)
    sandbox = sandbox_for(
        badges, username=None, password=None, client_key="key-audit-1", client_secret="secret-audit-1"
    )
    out = tmp_path / "run"
    result = run_cli(
        "run",
        str(write_input(tmp_path / "in.csv", badges)),
        "--host",
        sandbox.url,
        "--rate",
        "unlimited",
        "--out",
        str(out),
        env={"BULKREVOKE_CLIENT_KEY": "key-audit-1", "BULKREVOKE_CLIENT_SECRET": "secret-audit-1"},
    )
    assert result.returncode == 0, result.stderr
    assert read_summary(out)["principal"] == "key-audit-1"


def test_the_settings_digest_changes_with_the_settings_and_only_with_them(tmp_path):
    source = write_input(tmp_path / "in.csv", make_badges(3, seed=43))
    digests = []
    for name, extra in (("a", ()), ("b", ()), ("c", ("--max-attempts", "3"))):
        result = run_cli("run", str(source), "--dry-run", "--out", str(tmp_path / name), *extra)
        assert result.returncode == 0, result.stderr
        digests.append(read_summary(tmp_path / name)["settingsDigest"])
    assert digests[0] == digests[1] != digests[2]
    assert read_summary(tmp_path / "a")["principal"] is None  # a dry run sends as no one


def test_the_ticket_comes_from_a_flag_the_config_file_or_a_keyword(tmp_path):
    source = write_input(tmp_path / "in.csv", make_badges(2, seed=44))
    config = tmp_path / "bulkrevoke.toml"
    config.write_text('ticket = "CHG-7"\n')
    result = run_cli(
        "run", str(source), "--dry-run", "--config", str(config), "--out", str(tmp_path / "file")
    )
    assert result.returncode == 0, result.stderr
    assert read_summary(tmp_path / "file")["ticket"] == "CHG-7"
    frame = pd.read_csv(source, dtype=str).fillna("")
    library = bulkrevoke.revoke(
        frame, dry_run=True, ticket="APPROVAL 2026/11", no_progress=True, out=tmp_path / "lib"
    )
    assert library.summary["ticket"] == "APPROVAL 2026/11"


@pytest.mark.parametrize("ticket", ["CHG-1\nrm -rf", "", "x" * 201, "a\u202eb"])
def test_a_ticket_is_one_line_of_printable_text(tmp_path, ticket):
    source = write_input(tmp_path / "in.csv", make_badges(1, seed=45))
    result = run_cli("run", str(source), "--dry-run", "--ticket", ticket, "--out", str(tmp_path / "o"))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "--ticket: give one line of printable text" in result.stderr
    assert not (tmp_path / "o").exists()


def test_a_resume_keeps_the_ticket_and_refuses_another(tmp_path):
    source = write_input(tmp_path / "in.csv", make_badges(4, seed=46))
    out = tmp_path / "run"
    assert (
        run_cli("run", str(source), "--sandbox", "--out", str(out), "--ticket", "CHG-9", "-q").returncode == 0
    )
    other = run_cli("run", str(source), "--sandbox", "--out", str(out), "--resume", "--ticket", "CHG-10")
    assert other.returncode == 2 and "started under ticket 'CHG-9'" in other.stderr
    same = run_cli("run", str(source), "--sandbox", "--out", str(out), "--resume", "-q")
    assert same.returncode == 0, same.stderr
    assert read_summary(out)["ticket"] == "CHG-9"


def test_control_totals_say_which_rule_fails_and_the_summary_text_leads_with_it():
    counts = {
        "revoked": 5,
        "already_inactive": 1,
        "failed": 1,
        "invalid": 2,
        "duplicate": 1,
        "not_attempted": 1,
    }
    good = control_totals(counts, rows=11, sent=7)
    assert good["rows"]["holds"] and good["sent"]["holds"]
    lost = control_totals(counts, rows=12, sent=7)  # a stored row the report lacks
    assert not lost["rows"]["holds"] and lost["sent"]["holds"]
    doubled = control_totals(counts, rows=11, sent=6)  # the report has a sent row too many
    assert not doubled["sent"]["holds"]
    summary = {
        "runId": "r",
        "rows": 11,
        "counts": counts,
        "controls": lost,
        "durationSeconds": 1,
        "requestsSent": 7,
        "achievedRequestsPerSecond": 7,
        "throttled": 0,
        "retries": 0,
    }
    text = format_summary(summary, Path("r"), rerun_args=[], input_arg=None)
    assert text.startswith("CONTROL TOTALS DO NOT HOLD")


def test_the_timeline_accounts_for_every_request_row_and_throttled_answer(tmp_path, sandbox_for):
    badges = make_badges(300, seed=47)
    sandbox = sandbox_for(badges, faults=FaultProfile(seed=3, throttle=0.1, retry_after=0))
    out = tmp_path / "run"
    result = run_cli(
        "run",
        str(write_input(tmp_path / "in.csv", badges)),
        "--host",
        sandbox.url,
        "--rate",
        "unlimited",
        "--backoff",
        "0",
        "--out",
        str(out),
        env=CREDENTIALS,
    )
    assert result.returncode == 0, result.stderr
    summary = read_summary(out)
    assert summary["throttled"] > 0
    with Ledger(out / "ledger.sqlite") as ledger:
        timeline = ledger.timeline()
    assert all(at % 10 == 0 for at, *_ in timeline)
    assert sum(t[1] for t in timeline) == 300
    assert sum(t[3] for t in timeline) == summary["requestsSent"]
    assert sum(t[4] for t in timeline) == summary["throttled"]
    assert "No answer was throttled" not in (out / "summary.html").read_text()
