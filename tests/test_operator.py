"""What operators, schedulers and notebooks see: progress, summary, logs, help, library."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import bulkrevoke
from bulkrevoke.model import Outcome, Status
from bulkrevoke.progress import Progress
from bulkrevoke.report.render import REPORT_COLUMNS
from bulkrevoke.report.summary_text import format_summary

from .conftest import ROOT, cli_env, make_badges, read_report, run_cli, write_input

SAMPLE = ROOT / "sample_inputs" / "revocations.csv"


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_on_a_terminal_shows_counts():
    stream = FakeTerminal()
    progress = Progress(enabled=True, stream=stream)
    progress.start("send", 120)
    for i in range(120):
        progress.outcome(Outcome(Status.REVOKED if i % 4 else Status.FAILED, 1))
    progress.throttled = 3
    progress.close()
    text = stream.getvalue()
    assert "send" in text and "120/120" in text
    assert "revoked=90" in text and "failed=30" in text and "throttled=3" in text


def test_no_bar_without_a_terminal_but_a_log_line(caplog):
    stream = io.StringIO()
    progress = Progress(enabled=True, stream=stream, log_every=0.0)
    with caplog.at_level(logging.INFO, logger="bulkrevoke"):
        progress.start("send", 10)
        progress.outcome(Outcome(Status.REVOKED, 1))
    assert stream.getvalue() == ""
    assert any(re.search(r"progress send: 1/10 rows, .* rows/s, eta", r.getMessage()) for r in caplog.records)


def test_no_progress_disables_the_bar():
    stream = FakeTerminal()
    progress = Progress(enabled=False, stream=stream, log_every=3600)
    progress.start("send", 5)
    progress.outcome(Outcome(Status.REVOKED, 1))
    progress.close()
    assert stream.getvalue() == ""


def _summary(**counts):
    base = {s.value: 0 for s in Status}
    base.update(counts)
    return {
        "runId": "r1",
        "rows": sum(counts.values()),
        "counts": base,
        "dryRun": False,
        "errorCodes": {"503": 4},
        "errorMessages": {"503": "HTTP 503"},
        "durationSeconds": 12.5,
        "requestsSent": 20,
        "achievedRequestsPerSecond": 1.6,
        "throttled": 2,
        "retries": 4,
    }


def test_summary_text_counts_codes_and_the_resume_command():
    text = format_summary(
        _summary(revoked=10, failed=4, not_attempted=6),
        Path("reports/r1"),
        rerun_args=["--host", "eu"],
        input_arg="list.csv",
        stop_message="authentication failed",
    )
    assert re.search(r"revoked\s+10", text) and re.search(r"not_attempted\s+6", text)
    assert "503" in text and "HTTP 503" in text and "12.5s" in text and "2 throttled" in text
    assert "bulkrevoke run list.csv --out reports/r1 --resume --host eu" in text
    assert "stopped: authentication failed" in text


def test_summary_text_offers_to_rerun_failed_rows():
    text = format_summary(
        _summary(revoked=10, failed=4), Path("reports/r1"), rerun_args=["--host", "eu"], input_arg="list.csv"
    )
    assert "bulkrevoke run reports/r1/failed.csv --host eu" in text


def test_json_logs_parse_line_by_line(tmp_path):
    out = tmp_path / "run"
    result = run_cli("run", str(SAMPLE), "--sandbox", "--out", str(out), "--log-format", "json", "-v")
    assert result.returncode == 1
    file_lines = (out / "run.log").read_text().splitlines()
    stderr_json = [line for line in result.stderr.splitlines() if line.startswith("{")]
    assert file_lines and stderr_json
    for line in file_lines + stderr_json:
        entry = json.loads(line)
        assert {"timestamp", "level", "event", "run_id"} <= set(entry)
        assert entry["run_id"] == "run"


def test_quiet_prints_nothing_on_success(tmp_path):
    result = run_cli("run", str(SAMPLE), "--dry-run", "--out", str(tmp_path / "r"), "-q")
    assert result.returncode == 1 and result.stderr == ""


DOCUMENTED_FLAGS = [
    "--out",
    "--sandbox",
    "--host",
    "--rate",
    "--concurrency",
    "--max-attempts",
    "--timeout",
    "--identifier",
    "--column",
    "--dry-run",
    "--resume",
    "--max-error-rate",
    "--delimiter",
    "--config",
    "--ca-bundle",
    "--mask-pii",
    "--no-progress",
    "--log-format",
    "-v",
    "-q",
    "--sandbox-state",
    "--backoff",
    "--backoff-cap",
    "--retry-after-cap",
    "--row-deadline",
]


def test_every_flag_has_help_and_examples():
    from bulkrevoke.cli import build_parser

    run_help = run_cli("run", "--help").stdout
    for flag in DOCUMENTED_FLAGS:
        assert re.search(rf"(^|\s|,){re.escape(flag)}[\s,]", run_help), flag
    assert "examples:" in run_help and "exit codes:" in run_help
    parser = build_parser()
    for action in parser._subparsers._group_actions[0].choices.values():
        for option in action._actions:
            assert option.help, option.option_strings
    assert "--latency" in run_cli("sandbox", "--help").stdout
    assert "RUN_DIR" in run_cli("report", "--help").stdout
    version = run_cli("--version")
    assert version.stdout.strip() == f"bulkrevoke {bulkrevoke.__version__}"


def test_library_on_a_dataframe_outside_a_loop(tmp_path):
    badges = make_badges(30, seed=41, inactive_share=0)
    frame = pd.DataFrame(
        {
            "badge_meta_id": [b.badge_meta_id for b in badges],
            "cust": [int(b.customer_id) if b.identifier_type == "id" else b.customer_id for b in badges],
            "earnedBadgeId": [b.earned_badge_id for b in badges],
            "identifierType": [b.identifier_type for b in badges],
        }
    )
    result = bulkrevoke.revoke(
        frame, sandbox=True, out=tmp_path / "run", column={"customerId": "cust"}, no_progress=True
    )
    assert result.exit_code == 0
    report = result.report
    assert list(report.columns) == list(REPORT_COLUMNS)
    assert len(report) == 30 and set(report["status"]) == {"revoked"}
    assert str(report["row"].dtype) == "Int64" and str(report["httpStatus"].dtype) == "Int64"
    assert str(report["isActive"].dtype) == "boolean"
    assert str(report["duplicateOf"].dtype) == "Int64"  # empty cells, still not floats
    assert report["isActive"].tolist() == [False] * 30
    assert result.summary["counts"]["revoked"] == 30
    assert report["customerId"].tolist()[:1] == [badges[0].customer_id]


async def test_library_inside_a_running_loop(tmp_path):
    with pytest.raises(bulkrevoke.BulkRevokeError, match="revoke_async"):
        bulkrevoke.revoke(str(SAMPLE), sandbox=True)
    result = await bulkrevoke.revoke_async(str(SAMPLE), sandbox=True, out=tmp_path / "run", no_progress=True)
    assert result.exit_code == 1
    assert result.summary["counts"]["revoked"] == 24
    assert result.run_dir == tmp_path / "run"
    assert asyncio.get_running_loop().is_running()


def test_library_errors_are_the_exception_tree(tmp_path):
    with pytest.raises(bulkrevoke.InputError, match="no such file"):
        bulkrevoke.revoke(str(tmp_path / "missing.csv"), dry_run=True, out=tmp_path / "r")
    with pytest.raises(bulkrevoke.ConfigError, match="--rate"):
        bulkrevoke.revoke(str(SAMPLE), sandbox=True, rate="fast")
    with pytest.raises(bulkrevoke.ConfigError, match="unknown setting"):
        bulkrevoke.revoke(str(SAMPLE), sandbox=True, sped=3)


def test_config_file_settings_reach_the_run(tmp_path):
    config = tmp_path / "bulkrevoke.toml"
    config.write_text('rate = "1000/s"\nconcurrency = 3\n[column]\ncustomerId = "cust"\n')
    source = tmp_path / "in.csv"
    source.write_text(SAMPLE.read_text().replace("customerId", "cust", 1))
    out = tmp_path / "run"
    result = run_cli(
        "run",
        str(source),
        "--sandbox",
        "--config",
        str(config),
        "--out",
        str(out),
        "--sandbox-state",
        str(ROOT / "sample_inputs" / "revocations.state.csv"),
    )
    assert result.returncode == 1, result.stderr
    assert len(read_report(out)) == 38
    log = (out / "run.log").read_text()
    assert "at 1000/s with 3 in flight" in log


def test_a_run_never_imports_pandas(tmp_path):
    # pandas takes 0.4 to 0.8 s to import, and pyarrow imports it behind the scenes for
    # pa.array(), pa.scalar() and to_numpy(): a run (ingest, send, report) uses none of them.
    script = (
        "import sys\n"
        "from bulkrevoke.cli import main\n"
        f"code = main(['run', {str(SAMPLE)!r}, '--sandbox', '--no-progress', '-q', "
        f"'--out', {str(tmp_path / 'run')!r}])\n"
        "print(code, 'pandas' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.stdout.split() == ["1", "False"], result.stderr


def test_a_dry_run_never_imports_the_network_stack(tmp_path):
    # Nothing is sent in a dry run: aiohttp (0.15 s to import) is loaded only to send.
    badges = make_badges(30, seed=5)
    write_input(tmp_path / "in.csv", badges)
    script = (
        "import sys\n"
        "from bulkrevoke.cli import main\n"
        f"code = main(['run', {str(tmp_path / 'in.csv')!r}, '--dry-run', "
        f"'--no-progress', '-q', '--out', {str(tmp_path / 'run')!r}])\n"
        "print(code, 'aiohttp' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=cli_env()
    )
    assert result.stdout.split() == ["0", "False"], result.stderr
    assert {r["status"] for r in read_report(tmp_path / "run")} == {"would_revoke"}
