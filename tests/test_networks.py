"""The real CLI on the networks it will meet: a real forward proxy (proxy.py) in front of
the sandbox serving TLS, gateways that answer 408s and HTML pages, gzipped answers,
HTTP-date Retry-After, TLS handshakes that fail for reasons other than trust, and
configuration that must be refused before anything is sent."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from bulkrevoke.model import PendingRow
from bulkrevoke.sandbox import FaultProfile
from bulkrevoke.send.client import CapillaryClient
from bulkrevoke.send.reply import ReplyKind
from bulkrevoke.values import Credentials

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

PROXY_USER, PROXY_PASSWORD = "egress", "Pr0xy-s3cret"


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A certificate for localhost and 127.0.0.1, and its key."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
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
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,DNS:api.test,IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class ForwardProxy:
    """proxy.py in a child process, on loopback; its access log shows each CONNECT."""

    def __init__(self, folder: Path, *extra: str) -> None:
        self.log = folder / "proxy.log"
        port_file = folder / "proxy.port"
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "proxy",
                "--hostname",
                "127.0.0.1",
                "--port",
                "0",
                "--port-file",
                str(port_file),
                "--num-workers",
                "1",
                "--num-acceptors",
                "1",
                "--log-level",
                "i",
                "--log-file",
                str(self.log),
                *extra,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while not (port_file.exists() and port_file.read_text().strip()):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError(f"proxy.py did not start: {self.log.read_text()[-500:]}")
            time.sleep(0.05)
        self.port = int(port_file.read_text())

    def connects(self) -> list[str]:
        return [line for line in self.log.read_text().splitlines() if " CONNECT " in line]

    def close(self) -> None:
        self._process.terminate()
        try:
            self._process.wait(10)
        except subprocess.TimeoutExpired:
            self._process.kill()


def _proxy(tmp_path_factory: pytest.TempPathFactory, *extra: str) -> Iterator[ForwardProxy]:
    pytest.importorskip("proxy", reason="the proxy.py package (the test extra) is not installed")
    proxy = ForwardProxy(tmp_path_factory.mktemp("proxy"), *extra)
    yield proxy
    proxy.close()


@pytest.fixture(scope="module")
def open_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ForwardProxy]:
    yield from _proxy(tmp_path_factory)


@pytest.fixture(scope="module")
def guarded_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ForwardProxy]:
    yield from _proxy(tmp_path_factory, "--basic-auth", f"{PROXY_USER}:{PROXY_PASSWORD}")


def _tls_run(
    tmp_path: Path, sandbox_for, tls_files, *args: str, env=None, count: int = 12, host: str = "localhost"
):
    cert, key = tls_files
    badges = make_badges(count, seed=61, inactive_share=0)
    sandbox = sandbox_for(badges, tls_cert=str(cert), tls_key=str(key))
    port = sandbox.url.rsplit(":", 1)[1]
    out = tmp_path / "run"
    result = run_cli(
        "run",
        str(write_input(tmp_path / "in.csv", badges)),
        "--host",
        f"https://{host}:{port}",
        "--ca-bundle",
        str(cert),
        "--rate",
        "unlimited",
        "--no-progress",
        "--out",
        str(out),
        *args,
        env={**CREDENTIALS, **(env or {})},
    )
    return result, sandbox, out, port


def test_https_proxy_from_the_environment_carries_the_run(tmp_path, sandbox_for, tls_files, open_proxy):
    before = len(open_proxy.connects())
    result, sandbox, out, port = _tls_run(
        tmp_path, sandbox_for, tls_files, "-v", env={"HTTPS_PROXY": f"http://127.0.0.1:{open_proxy.port}"}
    )
    assert result.returncode == 0, result.stderr
    assert {r["status"] for r in read_report(out)} == {"revoked"}
    assert sandbox.truth().requests == 12
    assert any(f"CONNECT localhost:{port}" in line for line in open_proxy.connects()[before:])
    assert f"through the proxy http://127.0.0.1:{open_proxy.port}" in result.stderr


def test_no_proxy_bypasses_it(tmp_path, sandbox_for, tls_files, open_proxy):
    before = len(open_proxy.connects())
    result, sandbox, _out, _ = _tls_run(
        tmp_path,
        sandbox_for,
        tls_files,
        env={"https_proxy": f"http://127.0.0.1:{open_proxy.port}", "NO_PROXY": "example.com,localhost"},
    )
    assert result.returncode == 0, result.stderr
    assert sandbox.truth().requests == 12
    assert open_proxy.connects()[before:] == []


def test_proxy_credentials_are_used_and_never_written(tmp_path, sandbox_for, tls_files, guarded_proxy):
    proxy_url = f"http://{PROXY_USER}:{PROXY_PASSWORD}@127.0.0.1:{guarded_proxy.port}"
    # --proxy wins over the environment's (dead) proxy.
    result, sandbox, out, port = _tls_run(
        tmp_path,
        sandbox_for,
        tls_files,
        "--proxy",
        proxy_url,
        "-vv",
        env={"HTTPS_PROXY": f"http://127.0.0.1:{_free_port()}"},
    )
    assert result.returncode == 0, result.stderr
    assert sandbox.truth().requests == 12
    assert any(f"CONNECT localhost:{port}" in line for line in guarded_proxy.connects())
    assert PROXY_PASSWORD not in result.stderr + result.stdout
    for file in out.iterdir():
        assert PROXY_PASSWORD.encode() not in file.read_bytes(), file.name


def test_proxy_that_refuses_its_credentials_stops_the_run(tmp_path, sandbox_for, tls_files, guarded_proxy):
    result, sandbox, _out, _ = _tls_run(
        tmp_path,
        sandbox_for,
        tls_files,
        env={"HTTPS_PROXY": f"http://{PROXY_USER}:wrong@127.0.0.1:{guarded_proxy.port}"},
    )
    assert result.returncode == 3, result.stderr
    assert "proxy refused its credentials" in result.stderr
    assert "Traceback" not in result.stderr and "wrong" not in result.stderr
    assert sandbox.truth().requests == 0


def test_a_dead_proxy_ends_the_run_without_a_traceback_and_nothing_sent(tmp_path, sandbox_for, tls_files):
    result, sandbox, out, _ = _tls_run(
        tmp_path,
        sandbox_for,
        tls_files,
        "--max-attempts",
        "2",
        "--backoff",
        "0",
        env={"HTTPS_PROXY": f"http://127.0.0.1:{_free_port()}"},
    )
    assert result.returncode in (1, 3), result.stderr
    assert "Traceback" not in result.stderr
    assert sandbox.truth().requests == 0
    report = read_report(out)
    assert {r["errorCode"] for r in report if r["status"] == "failed"} == {"proxy_unreachable"}
    assert all(r["status"] in ("failed", "not_attempted") for r in report)


class _Loopback(AbstractResolver):
    """Resolves every name to 127.0.0.1, and remembers the names it was asked for."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.asked.append(host)
        return [
            ResolveResult(
                hostname=host,
                host="127.0.0.1",
                port=port,
                family=socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
        ]

    async def close(self) -> None:
        return None


async def test_a_host_with_a_trailing_dot_is_verified_without_it(sandbox_for, tls_files):
    cert, key = tls_files
    badges = make_badges(1, seed=60, inactive_share=0)
    sandbox = sandbox_for(badges, tls_cert=str(cert), tls_key=str(key))
    port = sandbox.url.rsplit(":", 1)[1]
    resolver = _Loopback()
    badge = badges[0]
    row = PendingRow(
        1, badge.badge_meta_id, badge.customer_id, badge.identifier_type, badge.earned_badge_id, False
    )
    async with CapillaryClient(
        f"https://api.test.:{port}",
        Credentials(USERNAME, PASSWORD),
        timeout=5,
        concurrency=1,
        ca_bundle=cert,
        resolver=resolver,
    ) as client:
        reply = await client.revoke_earned_badge(row)
    assert reply.kind is ReplyKind.SUCCESS, reply
    assert resolver.asked == ["api.test."]  # looked up as the FQDN, verified as api.test


def _sandbox_run(tmp_path: Path, sandbox_for, faults: FaultProfile, *args: str, count: int = 200):
    badges = make_badges(count, seed=62, inactive_share=0.2)
    sandbox = sandbox_for(badges, faults=faults)
    out = tmp_path / "run"
    result = run_cli(
        "run",
        str(write_input(tmp_path / "in.csv", badges)),
        "--host",
        sandbox.url,
        "--rate",
        "unlimited",
        "--backoff",
        "0.01",
        "--no-progress",
        "--out",
        str(out),
        *args,
        env=CREDENTIALS,
    )
    return result, sandbox, out, badges


def test_load_balancer_408s_are_sent_again(tmp_path, sandbox_for):
    result, sandbox, out, badges = _sandbox_run(tmp_path, sandbox_for, FaultProfile(seed=3, not_read=0.05))
    assert result.returncode == 0, result.stderr
    report = read_report(out)
    truth = sandbox.truth()
    assert sum(1 for _, status in truth.request_log if status == 408) > 0
    for row, badge in zip(report, badges, strict=True):
        assert row["status"] == ("revoked" if badge.active else "already_inactive"), row
        assert truth.badges[badge.key].active is False


def test_a_host_that_is_not_the_api_stops_the_run_quickly(tmp_path, sandbox_for):
    result, sandbox, out, _ = _sandbox_run(tmp_path, sandbox_for, FaultProfile(gateway_page=1.0), count=400)
    assert result.returncode == 3, result.stderr
    assert "does not answer like the Badges API" in result.stderr and "--host" in result.stderr
    assert "Traceback" not in result.stderr
    assert sandbox.truth().requests <= 40
    summary = read_summary(out)
    assert summary["stopReason"] == "not_api"
    assert summary["counts"]["invalid"] == 0  # a gateway's 404 says nothing of the rows
    failed = [r for r in read_report(out) if r["status"] == "failed"]
    assert failed and {(r["errorCode"], r["errorSource"]) for r in failed} == {("404", "http")}


def test_gzipped_answers_and_http_date_retry_after(tmp_path, sandbox_for):
    faults = FaultProfile(seed=4, throttle=0.1, retry_after=1, gzip=True, retry_after_date=True)
    result, sandbox, out, _badges = _sandbox_run(tmp_path, sandbox_for, faults, count=60)
    assert result.returncode == 0, result.stderr
    assert sandbox.truth().throttled > 0
    assert read_summary(out)["throttled"] == sandbox.truth().throttled
    assert {r["status"] for r in read_report(out)} <= {"revoked", "already_inactive"}


def test_an_unconfirmed_row_says_why_and_verbose_logs_every_retry(tmp_path, sandbox_for):
    result, _sandbox, out, _ = _sandbox_run(
        tmp_path, sandbox_for, FaultProfile(seed=5, drop=0.3), "-v", "--timeout", "2", "--max-attempts", "12"
    )
    assert result.returncode == 0, result.stderr
    unconfirmed = [r for r in read_report(out) if r["status"] == "revoked_unconfirmed"]
    assert unconfirmed
    for row in unconfirmed:
        assert row["errorMessage"].startswith("814 after attempt "), row
        assert "answer was lost" in row["errorMessage"]
    retries = [line for line in result.stderr.splitlines() if "retrying in" in line]
    assert len(retries) == read_summary(out)["retries"]
    assert all("connection_lost" in line for line in retries)


@pytest.mark.parametrize(
    "flags, says",
    [
        (["--host", "https://localhost:99999"], "--host"),
        (["--host", "https://localhost:8443/ä"], "--host"),
        (["--host", "https://localhost:8443", "--proxy", "socks5://127.0.0.1:1080"], "--proxy"),
        (["--host", "https://localhost:8443", "--proxy", "http://127.0.0.1:99999"], "--proxy"),
    ],
)
def test_configuration_is_refused_before_ingest(tmp_path, flags, says):
    result = run_cli(
        "run", str(tmp_path / "missing.csv"), *flags, "--out", str(tmp_path / "o"), env=CREDENTIALS
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and says in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "o").exists()


def test_a_junk_ca_bundle_is_refused_before_anything_is_sent(tmp_path, sandbox_for):
    junk = tmp_path / "ca.pem"
    junk.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    badges = make_badges(5, seed=63)
    sandbox = sandbox_for(badges)
    result = run_cli(
        "run",
        str(write_input(tmp_path / "in.csv", badges)),
        "--host",
        sandbox.url,
        "--ca-bundle",
        str(junk),
        "--out",
        str(tmp_path / "o"),
        env=CREDENTIALS,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("bulkrevoke: error: --ca-bundle:")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert sandbox.truth().requests == 0


class _RawTlsPeer:
    """A loopback server that answers a TLS ClientHello with fixed bytes, then closes."""

    def __init__(self, answer: bytes) -> None:
        self._answer = answer
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self.hellos = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                connection, _ = self._server.accept()
                with connection:
                    if connection.recv(4096).startswith(b"\x16\x03"):  # a handshake record
                        self.hellos += 1
                    connection.sendall(self._answer)

    def close(self) -> None:
        self._server.close()


@pytest.mark.parametrize(
    "answer, says",
    [
        (b"\x15\x03\x03\x00\x02\x02\x50", "internal_error alert"),  # fatal alert 80
        (b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n", "protocol mismatch"),
    ],
)
def test_tls_handshake_failures_other_than_trust_are_retried(tmp_path, answer, says):
    peer = _RawTlsPeer(answer)
    badges = make_badges(3, seed=64)
    try:
        result = run_cli(
            "run",
            str(write_input(tmp_path / "in.csv", badges)),
            "--host",
            f"https://127.0.0.1:{peer.port}",
            "--max-attempts",
            "2",
            "--backoff",
            "0",
            "--rate",
            "unlimited",
            "--out",
            str(tmp_path / "o"),
            env=CREDENTIALS,
        )
    finally:
        peer.close()
    assert result.returncode == 1, result.stderr  # failed rows, not a safety stop
    report = read_report(tmp_path / "o")
    assert {(r["status"], r["errorCode"], r["attempts"]) for r in report} == {
        ("failed", "tls_handshake", "2")
    }
    assert all(says in r["errorMessage"] for r in report), report[0]["errorMessage"]
    assert peer.hellos == 6


def test_library_runs_in_one_second_get_their_own_directories(tmp_path, monkeypatch):
    import bulkrevoke

    monkeypatch.chdir(tmp_path)
    write_input(tmp_path / "in.csv", make_badges(4, seed=65))
    runs = [bulkrevoke.revoke(str(tmp_path / "in.csv"), dry_run=True, no_progress=True) for _ in range(3)]
    directories = {result.run_dir.resolve() for result in runs}
    assert len(directories) == 3
    assert all(d.parent == (tmp_path / "reports").resolve() for d in directories)
    assert all(result.exit_code == 0 for result in runs)


def test_no_answer_from_a_blackholed_proxy_is_bounded(tmp_path, sandbox_for, tls_files):
    # A proxy that accepts and never answers the CONNECT: the attempt times out as not sent.
    silent = socket.create_server(("127.0.0.1", 0))
    try:
        result, sandbox, out, _ = _tls_run(
            tmp_path,
            sandbox_for,
            tls_files,
            "--max-attempts",
            "1",
            "--timeout",
            "1",
            env={"HTTPS_PROXY": f"http://127.0.0.1:{silent.getsockname()[1]}"},
            count=2,
        )
    finally:
        silent.close()
    assert result.returncode == 1, result.stderr
    assert sandbox.truth().requests == 0
    assert {r["status"] for r in read_report(out)} == {"failed"}
