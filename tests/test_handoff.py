"""The handoff end to end: `bulkrevoke verify`, `run --verify` and `--notify`, with the real
CLI against the sandbox and a loopback webhook."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from bulkrevoke.sandbox import FaultProfile

from .conftest import (
    CREDENTIALS,
    ROOT,
    failed_run,
    make_badges,
    read_report,
    read_summary,
    run_cli,
    write_input,
)

HOOK_PATH = "/services/T01/B02/hush-hush-9f3"


def _failed_run(tmp_path: Path, sandbox_for):
    faults = FaultProfile(seed=8, server_error=0.25, drop=0.1)
    return failed_run(tmp_path, sandbox_for, count=80, seed=81, faults=faults)


def test_verify_settles_failed_rows_as_the_server_has_them(tmp_path, sandbox_for):
    badges, sandbox, out = _failed_run(tmp_path, sandbox_for)
    # The host comes from the run itself; only the credentials are needed.
    result = run_cli("verify", str(out), "--sample", "5", "--no-progress", env=CREDENTIALS)
    assert result.returncode == 1, result.stderr  # failed rows remain failed
    assert "verified" in result.stderr
    report = read_report(out)
    truth = sandbox.truth()
    for row, badge in zip(report, badges, strict=True):
        if row["status"] == "failed":
            active = truth.badges[badge.key].active
            assert row["verified"] == ("active" if active else "inactive"), row
            assert row["verifiedAt"].endswith("Z")
        elif row["status"] == "revoked" and row["verified"]:
            assert row["verified"] == "inactive"
    summary = read_summary(out)
    verification = summary["verification"]
    counted = {
        v: sum(1 for r in report if r["verified"] == v) for v in ("inactive", "active", "unverifiable")
    }
    assert {k: verification[k] for k in counted} == counted
    assert verification["checked"] == sum(counted.values())
    assert verification["sample"] == 5 and verification["revokedFoundActive"] == 0
    assert sum(1 for r in report if r["status"] == "revoked" and r["verified"]) == 5


def test_a_revoked_row_found_active_is_an_alarm(tmp_path, sandbox_for):
    badges = make_badges(12, seed=82, inactive_share=0)
    sandbox = sandbox_for(badges)
    out = tmp_path / "run"
    source = write_input(tmp_path / "in.csv", badges)
    assert (
        run_cli(
            "run",
            str(source),
            "--host",
            sandbox.url,
            "--rate",
            "unlimited",
            "--out",
            str(out),
            env=CREDENTIALS,
        ).returncode
        == 0
    )
    sandbox.reactivate(badges[3].key)  # someone re-issues the badge behind the run's back
    result = run_cli("verify", str(out), "--all", "--host", sandbox.url, env=CREDENTIALS)
    assert result.returncode == 1, result.stderr
    assert result.stderr.splitlines()[0].startswith("ALARM: 1 rows reported revoked")
    assert read_report(out)[3]["verified"] == "active"
    assert read_summary(out)["verification"]["revokedFoundActive"] == 1


def test_run_with_verify_on_the_sandbox(tmp_path):
    out = tmp_path / "run"
    result = run_cli(
        "run",
        str(ROOT / "sample_inputs" / "revocations.csv"),
        "--sandbox",
        "--verify",
        "--sample",
        "3",
        "--no-progress",
        "--out",
        str(out),
    )
    assert result.returncode == 1, result.stderr  # the sample holds invalid rows on purpose
    summary = read_summary(out)
    assert summary["verification"]["revokedFoundActive"] == 0
    assert summary["verification"]["checked"] >= 3
    report = read_report(out)
    assert {r["verified"] for r in report if r["status"] in ("invalid", "duplicate")} == {""}


class _Webhook:
    def __init__(self) -> None:
        self.messages: list[dict] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                hook.messages.append({"path": self.path, "body": json.loads(self.rfile.read(length))})
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}{HOOK_PATH}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def webhook():
    hook = _Webhook()
    yield hook
    hook.close()


def test_one_message_per_run_and_the_url_is_kept_secret(tmp_path, webhook):
    out = tmp_path / "run"
    result = run_cli(
        "run",
        str(ROOT / "sample_inputs" / "revocations.csv"),
        "--sandbox",
        "--no-progress",
        "-v",
        "--out",
        str(out),
        env={"BULKREVOKE_NOTIFY_URL": webhook.url},
    )
    assert result.returncode == 1, result.stderr
    assert len(webhook.messages) == 1
    message = webhook.messages[0]
    assert message["path"] == HOOK_PATH
    body = message["body"]
    assert body["exitCode"] == 1 and body["runDir"] == str(out)
    assert body["counts"] == {k: v for k, v in read_summary(out)["counts"].items() if v}
    assert "\n" not in body["text"] and body["text"].startswith(f"bulkrevoke run {out.name}")
    assert "hush-hush" not in result.stderr + result.stdout
    for file in out.iterdir():
        assert b"hush-hush" not in file.read_bytes(), file.name


def test_a_run_that_ends_before_sending_still_notifies(tmp_path, webhook):
    result = run_cli(
        "run",
        str(tmp_path / "missing.csv"),
        "--sandbox",
        "--notify",
        webhook.url,
        "--out",
        str(tmp_path / "run"),
    )
    assert result.returncode == 2, result.stderr
    assert len(webhook.messages) == 1
    assert webhook.messages[0]["body"]["exitCode"] == 2
    assert "ended before sending" in webhook.messages[0]["body"]["text"]
