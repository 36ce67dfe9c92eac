"""The servers a client is measured against, each in its own process on the server core.

- ``sandbox(...)``: bulkrevoke's own sandbox (``bulkrevoke sandbox --port 0``) with the
  flags a part asks for (``--latency``, ``--rate-limit``, ...). Its ``/_sandbox/truth``
  says what it saw: every request's arrival (``time.monotonic()``, the same clock as this
  process's) and answer, ``busy_overlap`` and ``quota_throttled``.
- ``FixedServer``: a fixed-response revokeEarn server, nginx with one worker (optionally
  with the echo module's ``echo_sleep``), else ``fixed_server.py`` (aiohttp).
"""

from __future__ import annotations

import contextlib
import json
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.harness import BenchError, Harness
from benchmarks.settings import HERE, SERVER_CPU

REVOKE_PATH = "/api_gateway/v1/badges/customer/revokeEarn"
FIXED_BODY = '{"data":{"isActive":false},"errors":[],"warnings":[]}'
ECHO_MODULES = (
    "/usr/lib/nginx/modules/ngx_http_echo_module.so",
    "/usr/lib64/nginx/modules/ngx_http_echo_module.so",
)


@dataclass(frozen=True)
class Sandbox:
    url: str

    def truth(self) -> dict[str, Any]:
        with urllib.request.urlopen(self.url + "/_sandbox/truth", timeout=60) as answer:
            data: dict[str, Any] = json.load(answer)
        return data


@contextlib.contextmanager
def sandbox(harness: Harness, flags: Sequence[str] = ()) -> Iterator[Sandbox]:
    """A standalone sandbox process that treats unknown badges as active; stopped after."""
    cmd = harness.pinned(
        [sys.executable, "-m", "bulkrevoke", "sandbox", "--port", "0", "--unknown-badges", "active", *flags],
        SERVER_CPU,
    )
    proc = harness.start_server(cmd, stdout=subprocess.PIPE)
    try:
        line = _first_line(proc, timeout=30)
        if not line.startswith("sandbox listening on "):
            raise BenchError(f"the sandbox did not start (exit {proc.poll()}): {line!r}")
        yield Sandbox(line.split()[-1])
    finally:
        harness.stop_server(proc)
        if proc.stdout is not None:
            proc.stdout.close()


def _first_line(proc: subprocess.Popen[bytes], timeout: float) -> str:
    assert proc.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            return f"nothing on stdout within {timeout:g}s"
    return proc.stdout.readline().decode(errors="replace").strip()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"server exited early with status {proc.returncode}")
        with socket.socket() as sock:
            sock.settimeout(0.2)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise BenchError(f"server did not listen on port {port} within {timeout:g}s")


def find_nginx() -> str | None:
    found = shutil.which("nginx")
    candidates = [found] if found else ["/usr/sbin/nginx", "/usr/local/sbin/nginx"]
    return next((p for p in candidates if Path(p).exists()), None)


class FixedServer:
    """A fixed-response revokeEarn server: nginx (one worker), else aiohttp."""

    def __init__(self, harness: Harness, latency: float = 0.0) -> None:
        self.harness = harness
        self.latency = latency
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.label = ""
        self.dir = harness.settings.work / ("server-latency" if latency else "server")

    def start(self) -> str:
        """nginx when it is installed and starts, else the aiohttp fallback (noted)."""
        nginx = find_nginx()
        if nginx is None:
            self.harness.note(
                "nginx is not installed (apt-get install -y nginx-light): using the "
                "aiohttp fallback server, which is much slower than nginx"
            )
        else:
            try:
                return self._start_nginx(nginx)
            except BenchError as exc:
                self.harness.note(f"nginx did not start ({exc}); using the aiohttp fallback")
                self.stop()
        port = free_port()
        self._spawn(
            self.harness.pinned(
                [sys.executable, str(HERE / "fixed_server.py"), "--port", str(port)], SERVER_CPU
            ),
            port,
        )
        self.label = f"aiohttp fixed-response fallback (benchmarks/fixed_server.py, {self._pin()})"
        return self.url

    def start_delayed(self) -> str:
        """nginx with echo_sleep: a server that waits *latency* before answering and is not
        itself the bottleneck (there is no fallback for this one)."""
        nginx = find_nginx()
        if nginx is None:
            raise BenchError("nginx is not installed")
        return self._start_nginx(nginx)

    def _pin(self) -> str:
        return f"taskset -c {SERVER_CPU}" if self.harness.pinning else "not pinned"

    def _start_nginx(self, nginx: str) -> str:
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir.mkdir(parents=True)
        build = subprocess.run([nginx, "-V"], capture_output=True, text=True, timeout=10).stderr
        port = free_port()
        conf = self.dir / "nginx.conf"
        conf.write_text(self._nginx_conf(build, port))
        self._spawn(
            self.harness.pinned(
                [nginx, "-p", f"{self.dir}/", "-c", str(conf), "-e", str(self.dir / "error.log")], SERVER_CPU
            ),
            port,
        )
        version = build.strip().splitlines()[0].replace("nginx version: ", "") if build else "nginx"
        sleep = f"echo_sleep {self.latency:g}s, " if self.latency else ""
        self.label = f"{version} ({sleep}1 worker, {self._pin()})"
        return self.url

    def _nginx_conf(self, build: str, port: int) -> str:
        temp_paths = [f"client_body_temp_path {self.dir}/body;"]
        for module in ("proxy", "fastcgi", "uwsgi", "scgi"):
            if f"--without-http_{module}_module" not in build:
                temp_paths.append(f"{module}_temp_path {self.dir}/{module};")
        load, answer = "", f"return 200 '{FIXED_BODY}';"
        if self.latency:
            echo = next((m for m in ECHO_MODULES if Path(m).exists()), None)
            if echo is None:
                raise BenchError("the nginx echo module (libnginx-mod-http-echo) is missing")
            load = f"load_module {echo};"
            answer = f"echo_sleep {self.latency:g}; echo -n '{FIXED_BODY}';"
        return f"""\
{load}
worker_processes 1;
daemon off;
pid {self.dir}/nginx.pid;
error_log {self.dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    {" ".join(temp_paths)}
    keepalive_requests 100000000;
    keepalive_timeout 600s;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            default_type application/json;
            add_header X-Cap-Requestid $request_id always;
            {answer}
        }}
    }}
}}
"""

    def _spawn(self, cmd: list[str], port: int) -> None:
        self.proc = self.harness.start_server(cmd)
        try:
            wait_for_port(port, self.proc)
        except BenchError as exc:
            tail = ""
            with contextlib.suppress(OSError):
                tail = (self.dir / "error.log").read_text()[-400:].strip()
            raise BenchError(f"{exc}; error.log: {tail}" if tail else str(exc)) from None
        self.url = f"http://127.0.0.1:{port}"
        self._check()

    def _check(self) -> None:
        request = urllib.request.Request(
            self.url + REVOKE_PATH,
            data=b'{"badgeMetaId":"x"}',
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            body = response.read().decode()
            if response.status != 200 or body != FIXED_BODY:
                raise BenchError(f"fixed server answered {response.status} {body!r}")
            if not response.headers.get("X-Cap-Requestid"):
                raise BenchError("fixed server sends no X-Cap-Requestid header")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            is_nginx = "nginx" in " ".join(map(str, proc.args))  # type: ignore[arg-type]
            self.harness.stop_server(proc, signal.SIGQUIT if is_nginx else signal.SIGTERM)
