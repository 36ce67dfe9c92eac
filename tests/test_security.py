"""Credentials and customer data stay where they belong."""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import threading
import zipfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from aiohttp import web

from bulkrevoke.sandbox import FaultProfile
from bulkrevoke.sandbox import auth as sandbox_auth

from .conftest import (
    Badge,
    make_badges,
    read_report,
    read_summary,
    run_cli,
    write_input,
)

SECRET_PASSWORD = "Zq9-pw-UNIQUE-7731"
SECRET_CLIENT = "Cs4-secret-UNIQUE-0452"


def _leak_patterns(user: str, secret: str, tokens: list[str]) -> list[bytes]:
    digest = hashlib.md5(secret.encode()).hexdigest()
    basic = base64.b64encode(f"{user}:{digest}".encode()).decode()
    return [p.encode() for p in (secret, digest, basic, *tokens)]


def _everything_written(result: subprocess.CompletedProcess, run_dir: Path) -> bytes:
    blobs = [result.stdout.encode(), result.stderr.encode()]
    blobs += [p.read_bytes() for p in sorted(run_dir.rglob("*")) if p.is_file()]
    workbook = run_dir / "report.xlsx"  # a zip: its parts are compressed
    assert workbook.exists()
    with zipfile.ZipFile(workbook) as parts:
        blobs += [parts.read(name) for name in parts.namelist()]
    return b"\n".join(blobs)


@pytest.fixture
def issued_tokens(monkeypatch):
    tokens: list[str] = []
    original = sandbox_auth._jwt_lookalike

    def recording(*args, **kwargs):
        token = original(*args, **kwargs)
        tokens.append(token)
        return token

    monkeypatch.setattr(sandbox_auth, "_jwt_lookalike", recording)
    return tokens


FAULTY = FaultProfile(seed=5, server_error=0.1, drop=0.05, throttle_bare=0.05)


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_basic_secrets_never_written_anywhere(tmp_path, sandbox_for, log_format):
    badges = make_badges(150, seed=31)
    user = "till-leakcheck"
    sandbox = sandbox_for(badges, username=user, password=SECRET_PASSWORD, faults=FAULTY)
    source = write_input(tmp_path / "in.csv", badges)
    env = {"BULKREVOKE_USERNAME": user, "BULKREVOKE_PASSWORD": SECRET_PASSWORD}
    out = tmp_path / "run"
    result = run_cli(
        "run",
        str(source),
        "--host",
        sandbox.url,
        "--rate",
        "unlimited",
        "--backoff",
        "0.01",
        "--out",
        str(out),
        "-vv",
        "--log-format",
        log_format,
        env=env,
    )
    assert result.returncode in (0, 1), result.stderr
    assert read_summary(out)["retries"] > 0
    written = _everything_written(result, out)
    for pattern in _leak_patterns(user, SECRET_PASSWORD, []):
        assert pattern not in written
    # A safety stop with a wrong (equally secret) password leaks nothing either.
    wrong = "Wr0ng-UNIQUE-pass-9981"
    stop_out = tmp_path / "stop"
    stopped = run_cli(
        "run",
        str(source),
        "--host",
        sandbox.url,
        "--out",
        str(stop_out),
        "-vv",
        env={**env, "BULKREVOKE_PASSWORD": wrong},
    )
    assert stopped.returncode == 3
    written = _everything_written(stopped, stop_out)
    for pattern in _leak_patterns(user, wrong, []):
        assert pattern not in written


def test_oauth_secrets_and_tokens_never_written_anywhere(tmp_path, sandbox_for, issued_tokens):
    badges = make_badges(120, seed=32)
    sandbox = sandbox_for(
        badges,
        username=None,
        password=None,
        client_key="key-leakcheck",
        client_secret=SECRET_CLIENT,
        token_ttl=0.4,
        faults=FAULTY,
    )
    env = {"BULKREVOKE_CLIENT_KEY": "key-leakcheck", "BULKREVOKE_CLIENT_SECRET": SECRET_CLIENT}
    out = tmp_path / "run"
    result = run_cli(
        "run",
        str(write_input(tmp_path / "in.csv", badges)),
        "--host",
        sandbox.url,
        "--rate",
        "150/s",
        "--backoff",
        "0.01",
        "--out",
        str(out),
        "-vv",
        "--log-format",
        "json",
        env=env,
    )
    assert result.returncode in (0, 1), result.stderr
    assert len(issued_tokens) >= 2
    written = _everything_written(result, out)
    for pattern in _leak_patterns("key-leakcheck", SECRET_CLIENT, issued_tokens):
        assert pattern not in written


def test_no_flag_accepts_a_secret():
    # Every flag of every command, from the parser itself: an empty help text (a command
    # that failed) must not pass for a clean one.
    from bulkrevoke.cli import build_parser

    commands = build_parser()._subparsers._group_actions[0].choices
    flags = {
        flag for command in commands.values() for action in command._actions for flag in action.option_strings
    }
    assert {"--host", "--proxy", "--notify", "--ca-bundle", "--tls-cert"} <= flags
    words = ("password", "secret", "username", "client-key", "pii-key", "insecure", "no-verify")
    assert sorted(f for f in flags if f == "--token" or any(w in f for w in words)) == []


def test_run_directory_is_private(tmp_path):
    out = tmp_path / "run"
    run_cli(
        "run",
        str(Path(__file__).parent.parent / "sample_inputs" / "revocations.csv"),
        "--sandbox",
        "--out",
        str(out),
        "-q",
    )
    assert oct(out.stat().st_mode & 0o777) == "0o700"
    files = [p for p in out.iterdir() if p.is_file()]
    assert {p.name for p in files} >= {
        "report.csv",
        "report.parquet",
        "failed.csv",
        "summary.json",
        "ledger.sqlite",
        "run.log",
    }
    for path in files:
        assert oct(path.stat().st_mode & 0o777) == "0o600", path.name


def test_mask_pii_hashes_identifiers_in_reports_but_resume_data_stays(tmp_path):
    sample = Path(__file__).parent.parent / "sample_inputs" / "revocations.csv"
    out = tmp_path / "run"
    env = {"BULKREVOKE_PII_KEY": "pii-key-1"}
    result = run_cli("run", str(sample), "--sandbox", "--mask-pii", "--out", str(out), env=env)
    assert result.returncode == 1, result.stderr
    report = read_report(out)
    emails = [r for r in report if r["identifierType"] == "email"]
    mobiles = [r for r in report if r["identifierType"] == "mobile"]
    assert emails and mobiles
    for line in emails + mobiles:
        assert line["customerId"].startswith("hmac:")
    for blob in ((out / "report.csv").read_bytes(), (out / "report.parquet").read_bytes()):
        assert b"@example.com" not in blob and b"919845012345" not in blob
    ids = [r for r in report if r["identifierType"] == "id" and r["status"] == "revoked"]
    assert ids[0]["customerId"].isdigit()  # numeric ids are not personal data here
    # The same key gives the same hash: reports of two runs can be joined.
    again = tmp_path / "again"
    run_cli("run", str(sample), "--sandbox", "--mask-pii", "--out", str(again), env=env)
    assert [r["customerId"] for r in read_report(again)] == [r["customerId"] for r in report]
    rebuilt = run_cli("report", str(out), env=env)
    assert rebuilt.returncode == 0 and read_report(out) == report


class _Server:
    """A loopback HTTP server in a thread, counting its requests."""

    def __init__(self, handler, ssl_context=None):
        self.hits = 0
        self.hosts = set()
        self._handler = handler
        self._ssl = ssl_context
        self._ready = threading.Event()
        import asyncio

        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        import asyncio

        asyncio.set_event_loop(self._loop)

        async def handle(request):
            self.hits += 1
            self.hosts.add(request.headers.get("Host"))
            return await self._handler(request)

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handle)
        self._runner = web.AppRunner(app, access_log=None)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self._ssl)
        self._loop.run_until_complete(site.start())
        self.port = self._runner.addresses[0][1]
        self._ready.set()
        self._loop.run_forever()

    def __enter__(self):
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc):
        import asyncio

        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


def test_redirects_are_not_followed(tmp_path):
    async def elsewhere(request):
        return web.json_response({"data": {"isActive": False}, "errors": []})

    with _Server(elsewhere) as other:

        async def redirect(request):
            raise web.HTTPFound(f"http://127.0.0.1:{other.port}/steal")

        with _Server(redirect) as api:
            badges = make_badges(5, seed=33)
            out = tmp_path / "run"
            result = run_cli(
                "run",
                str(write_input(tmp_path / "in.csv", badges)),
                "--host",
                f"http://127.0.0.1:{api.port}",
                "--rate",
                "unlimited",
                "--out",
                str(out),
                env={"BULKREVOKE_USERNAME": "u", "BULKREVOKE_PASSWORD": "p"},
            )
    assert result.returncode == 1, result.stderr
    assert other.hits == 0 and api.hits == 5
    assert api.hosts == {f"127.0.0.1:{api.port}"}  # the Host is exactly the configured one
    report = read_report(out)
    assert {(r["status"], r["errorCode"], r["attempts"]) for r in report} == {("failed", "302", "1")}
    assert f"127.0.0.1:{other.port}/steal" in (out / "run.log").read_text()


@pytest.fixture
def self_signed(tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def test_tls_is_verified_and_a_ca_bundle_can_be_trusted(tmp_path, sandbox_for, self_signed):
    cert, key = self_signed
    badges = make_badges(20, seed=34, inactive_share=0)
    sandbox = sandbox_for(badges, tls_cert=str(cert), tls_key=str(key))
    assert sandbox.url.startswith("https://")
    source = write_input(tmp_path / "in.csv", badges)
    env = {"BULKREVOKE_USERNAME": "till-7", "BULKREVOKE_PASSWORD": "Pw-test-4f1d"}
    refused = run_cli("run", str(source), "--host", sandbox.url, "--out", str(tmp_path / "a"), env=env)
    assert refused.returncode == 3, refused.stderr
    assert "--ca-bundle" in refused.stderr
    assert sandbox.truth().requests == 0
    trusted = run_cli(
        "run",
        str(source),
        "--host",
        sandbox.url,
        "--ca-bundle",
        str(cert),
        "--rate",
        "unlimited",
        "--out",
        str(tmp_path / "b"),
        env=env,
    )
    assert trusted.returncode == 0, trusted.stderr
    assert {r["status"] for r in read_report(tmp_path / "b")} == {"revoked"}


def test_plain_http_to_a_remote_host_is_refused(tmp_path):
    result = run_cli(
        "run",
        "x.csv",
        "--host",
        "http://api.example.com",
        "--out",
        str(tmp_path / "o"),
        env={"BULKREVOKE_USERNAME": "u", "BULKREVOKE_PASSWORD": "p"},
    )
    assert result.returncode == 2 and "plain http is refused" in result.stderr


def test_hostile_values_are_data_never_headers_or_sql(tmp_path, sandbox_for):
    meta, earned = "a" * 24, "b" * 24
    tricky = [
        Badge(meta, "x'); DROP TABLE rows;--", "c" * 24, "externalId"),
        Badge(meta, 'quo"te\\slash', "d" * 24, "externalId"),
        Badge(meta, "ünïcødé-ext", "e" * 24, "externalId"),
    ]
    sandbox = sandbox_for(tricky)
    source = write_input(
        tmp_path / "in.csv",
        tricky,
        extra_rows=[
            [meta, "evil\r\nX-Injected: 1", earned, "externalId"],
            [meta, "bad\nline", "f" * 24, "cardNumber"],
            [meta, "bare\rreturn", "9" * 24, "externalId"],  # a lone CR, quoted in the report
        ],
    )
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
        env={"BULKREVOKE_USERNAME": "till-7", "BULKREVOKE_PASSWORD": "Pw-test-4f1d"},
    )
    assert result.returncode == 1, result.stderr
    report = read_report(out)
    assert [r["status"] for r in report] == ["revoked"] * 3 + ["invalid"] * 3
    assert {r["errorCode"] for r in report[3:]} == {"bad_customer_id"}
    customers = [r["customerId"] for r in report]
    assert customers[3:] == ["evil\r\nX-Injected: 1", "bad\nline", "bare\rreturn"]
    parquet = pq.read_table(out / "report.parquet").to_pylist()
    assert [r["customerId"] for r in parquet] == customers
    truth = sandbox.truth()
    for badge in tricky:  # the server saw each value exactly as written
        assert truth.badges[badge.key].applied == 1
    assert truth.requests == 3
    assert os.path.getsize(out / "ledger.sqlite") > 0
