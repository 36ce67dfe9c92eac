"""Reliability under faults: the real CLI against a misbehaving sandbox, checked row by
row against the sandbox's ground truth."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from bulkrevoke.model import PendingRow
from bulkrevoke.sandbox import FaultProfile, Sandbox, SandboxSettings
from bulkrevoke.send.client import CapillaryClient
from bulkrevoke.send.reply import ReplyKind
from bulkrevoke.values import Credentials

from .conftest import (
    CREDENTIALS,
    make_badges,
    read_report,
    read_summary,
    run_cli,
    write_input,
)

MIXED = FaultProfile(
    seed=11,
    throttle=0.01,
    throttle_bare=0.02,
    retry_after=1,
    server_error=0.04,
    busy=0.02,
    drop=0.02,
    hang=0.01,
    hang_seconds=5,
    malformed=0.02,
    inactive_400=0.5,
    slow=0.02,
    slow_seconds=0.1,
)


@pytest.mark.slow
def test_mixed_faults_every_row_has_one_honest_outcome(tmp_path, sandbox_for):
    badges = make_badges(2500, seed=5, inactive_share=0.15)
    sandbox = sandbox_for(badges, faults=MIXED, rate_limit=400, rate_window=1.0)
    out = tmp_path / "run"
    result = run_cli(
        "run",
        str(write_input(tmp_path / "in.csv", badges)),
        "--host",
        sandbox.url,
        "--rate",
        "unlimited",
        "--concurrency",
        "32",
        "--timeout",
        "0.5",
        "--max-attempts",
        "4",
        "--backoff",
        "0.02",
        "--backoff-cap",
        "0.2",
        "--retry-after-cap",
        "0.2",
        "--max-error-rate",
        "1",
        "--out",
        str(out),
        "--no-progress",
        env=CREDENTIALS,
    )
    assert result.returncode in (0, 1), result.stderr
    report = read_report(out)
    assert [int(r["row"]) for r in report] == list(range(1, len(badges) + 1))
    truth = sandbox.truth()
    statuses = Counter()
    for badge, line in zip(badges, report, strict=True):
        state = truth.badges[badge.key]
        status = line["status"]
        statuses[status] += 1
        uncertain = state.lost_answers + state.gateway_errors
        assert state.successes <= 1 and state.applied <= 1, line
        if status == "revoked":
            assert state.successes == 1 and not state.active, line
        elif status == "revoked_unconfirmed":
            assert uncertain > 0 and not state.active, line
        elif status == "already_inactive":
            assert state.initially_active is False and state.applied == 0, line
        elif status == "failed":
            # Never a hidden revocation: the badge is still active, was inactive before
            # the run (every attempt failed before it could learn that), or an answer was lost.
            assert state.active or state.initially_active is False or uncertain > 0, line
        else:
            pytest.fail(f"unexpected status {status} for row {line['row']}")
        if not state.active and state.initially_active:
            assert status in ("revoked", "revoked_unconfirmed", "failed"), line
    summary = read_summary(out)
    assert {k: v for k, v in summary["counts"].items() if v} == dict(statuses)
    assert summary["rows"] == len(badges)
    # Every kind of fault happened, and was lived through.
    assert statuses["revoked"] > 1500 and statuses["revoked_unconfirmed"] > 10
    assert summary["throttled"] > 0 and summary["retries"] > 100
    assert summary["requestsSent"] == truth.requests  # every attempt reached the server


def test_wrong_password_stops_at_once_with_exit_3(tmp_path, sandbox_for):
    badges = make_badges(500, seed=6)
    sandbox = sandbox_for(badges)
    out = tmp_path / "run"
    env = {**CREDENTIALS, "BULKREVOKE_PASSWORD": "wrong"}
    result = run_cli(
        "run",
        str(write_input(tmp_path / "in.csv", badges)),
        "--host",
        sandbox.url,
        "--rate",
        "unlimited",
        "--concurrency",
        "8",
        "--out",
        str(out),
        "--no-progress",
        env=env,
    )
    assert result.returncode == 3, result.stderr
    truth = sandbox.truth()
    assert truth.unauthorized <= 8
    assert all(state.requests == 0 for state in truth.badges.values())
    assert "authentication failed" in result.stderr and "--resume" in result.stderr
    report = read_report(out)
    assert {r["status"] for r in report} == {"not_attempted"}
    assert all(s.active == s.initially_active for s in truth.badges.values())
    # Resumable: with the right password the same directory finishes the job.
    resumed = run_cli(
        "run",
        str(tmp_path / "in.csv"),
        "--host",
        sandbox.url,
        "--rate",
        "unlimited",
        "--out",
        str(out),
        "--resume",
        "--no-progress",
        env=CREDENTIALS,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert {r["status"] for r in read_report(out)} <= {"revoked", "already_inactive"}


def test_oauth_token_renewed_before_expiry_without_failing_a_row(tmp_path, sandbox_for):
    badges = make_badges(120, seed=7, inactive_share=0)
    oauth = {"BULKREVOKE_CLIENT_KEY": "key-1", "BULKREVOKE_CLIENT_SECRET": "secret-1"}
    sandbox = sandbox_for(
        badges, username=None, password=None, client_key="key-1", client_secret="secret-1", token_ttl=0.5
    )
    out = tmp_path / "run"
    result = run_cli(
        "run",
        str(write_input(tmp_path / "in.csv", badges)),
        "--host",
        sandbox.url,
        "--rate",
        "80/s",
        "--out",
        str(out),
        "--no-progress",
        env=oauth,
    )
    assert result.returncode == 0, result.stderr
    assert {r["status"] for r in read_report(out)} == {"revoked"}
    truth = sandbox.truth()
    assert truth.tokens_issued >= 3 and truth.unauthorized == 0


async def test_oauth_token_refused_once_is_renewed_and_the_request_repeated():
    settings = SandboxSettings(client_key="k", client_secret="s", token_ttl=0.2, unknown_badges="active")
    async with Sandbox(settings) as sandbox:
        client = CapillaryClient(
            sandbox.url, Credentials(client_key="k", client_secret="s"), timeout=5, concurrency=2
        )
        async with client:
            row = PendingRow(1, "a" * 24, "42", "id", "b" * 24, False)
            assert (await client.revoke_earned_badge(row)).kind is ReplyKind.SUCCESS
            client._tokens._renew_at = float("inf")  # the client believes the token is fresh
            await asyncio.sleep(0.25)  # but the server has expired it
            row2 = PendingRow(2, "a" * 24, "43", "id", "c" * 24, False)
            assert (await client.revoke_earned_badge(row2)).kind is ReplyKind.SUCCESS
        assert sandbox.truth().tokens_issued == 2 and sandbox.truth().unauthorized == 1


def test_retry_after_pauses_every_worker(tmp_path, sandbox_for):
    badges = make_badges(60, seed=8, inactive_share=0)
    sandbox = sandbox_for(badges, faults=FaultProfile(seed=3, throttle=0.05, retry_after=1))
    out = tmp_path / "run"
    result = run_cli(
        "run",
        str(write_input(tmp_path / "in.csv", badges)),
        "--host",
        sandbox.url,
        "--rate",
        "unlimited",
        "--concurrency",
        "4",
        "--out",
        str(out),
        "--no-progress",
        env=CREDENTIALS,
    )
    assert result.returncode == 0, result.stderr
    log = sandbox.truth().request_log
    throttled_at = [t for t, status in log if status == 429]
    assert throttled_at, "the fault profile should throttle a few requests"
    for t in throttled_at:
        # Requests already in flight may land just after; then nothing for Retry-After (1 s).
        inside = [u for u, _ in log if t + 0.1 < u < t + 0.95]
        assert not inside, f"{len(inside)} requests during the pause after {t}"
    assert read_summary(out)["throttled"] == len(throttled_at)


def test_rate_is_held_exactly_from_the_first_second(tmp_path, sandbox_for):
    badges = make_badges(150, seed=9, inactive_share=0)
    sandbox = sandbox_for(badges)
    result = run_cli(
        "run",
        str(write_input(tmp_path / "in.csv", badges)),
        "--host",
        sandbox.url,
        "--rate",
        "50/s",
        "--concurrency",
        "16",
        "--out",
        str(tmp_path / "run"),
        "--no-progress",
        env=CREDENTIALS,
    )
    assert result.returncode == 0, result.stderr
    times = sorted(t for t, _ in sandbox.truth().request_log)
    assert len(times) == 150
    most = max(sum(1 for u in times[i:] if u < t + 1.0) for i, t in enumerate(times))
    assert most <= 51
    achieved = (len(times) - 1) / (times[-1] - times[0])
    assert achieved >= 0.95 * 50, achieved


def test_server_side_rate_limit_is_survived(tmp_path, sandbox_for):
    badges = make_badges(200, seed=10, inactive_share=0)
    sandbox = sandbox_for(badges, rate_limit=100, rate_window=1.0)
    out = tmp_path / "run"
    result = run_cli(
        "run",
        str(write_input(tmp_path / "in.csv", badges)),
        "--host",
        sandbox.url,
        "--rate",
        "400/s",
        "--out",
        str(out),
        "--no-progress",
        env=CREDENTIALS,
    )
    assert result.returncode == 0, result.stderr
    assert {r["status"] for r in read_report(out)} == {"revoked"}
    assert read_summary(out)["throttled"] == sandbox.truth().throttled > 0


def test_error_rate_breaker_stops_with_exit_3(tmp_path, sandbox_for):
    badges = make_badges(400, seed=12, inactive_share=0)
    sandbox = sandbox_for(badges, faults=FaultProfile(seed=1, server_error=0.9))
    out = tmp_path / "run"
    result = run_cli(
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
    assert result.returncode == 3, result.stderr
    assert "failed" in result.stderr and "--resume" in result.stderr
    counts = read_summary(out)["counts"]
    assert counts["failed"] > 50 and counts["not_attempted"] > 100
