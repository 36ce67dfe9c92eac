#!/usr/bin/env python3
"""bulkrevoke benchmarks: one command, one table, one RESULTS.md.

    python benchmarks/run.py            # full run (about 15 minutes; includes the 10 M-row
                                        # dry run and the 3-minute 100/min fidelity run)
    python benchmarks/run.py --quick    # a few minutes: fewer rounds, no 10 M, no 100/min
    python benchmarks/run.py --only overhead,profile   # some parts only (for debugging)

Run it with the Python that has bulkrevoke installed (the sandbox is imported from it;
the CLI is the ``bulkrevoke`` script beside that interpreter). See benchmarks/README.md
for what each part measures and the targets. Temporary files live in benchmarks/work/
(git-ignored); big ones are deleted as soon as they have been used. Every subprocess has
a timeout and every server started here is stopped at the end, also on failure or on
SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import datetime as dt
import itertools
import json
import os
import platform
import pstats
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import traceback
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
WORK = HERE / "work"
RESULTS = HERE / "RESULTS.md"
PY = sys.executable
USERNAME, PASSWORD = "bench", "bench-password"
REVOKE_PATH = "/api_gateway/v1/badges/customer/revokeEarn"
FIXED_BODY = '{"data":{"isActive":false},"errors":[],"warnings":[]}'
HEADER = b"badgeMetaId,customerId,earnedBadgeId\n"
BADGE_META = b"5f0c1a2b3c4d5e6f70819203"  # 24 hex digits, the same for every row

SERVER_CPU, CLIENT_CPU = 0, 1
PARTS = ("startup", "overhead", "latency", "rate", "scale", "profile")


# --- bookkeeping ----------------------------------------------------------------------------

class BenchError(Exception):
    """A measurement that could not be taken (bad exit code, wrong counts, timeout)."""


@dataclass
class Figure:
    part: str
    name: str
    unit: str
    values: list[float] = field(default_factory=list)
    target: tuple[str, float] | None = None  # ("<=", 201.0) or (">=", 198.0)
    digits: int = 0
    note: str = ""

    @property
    def median(self) -> float | None:
        return statistics.median(self.values) if self.values else None

    def met(self) -> str:
        if self.target is None:
            return ""
        if not self.values:
            return "n/a"
        op, bound = self.target
        value = self.median
        assert value is not None
        return "yes" if (value <= bound if op == "<=" else value >= bound) else "NO"

    def fmt(self, value: float | None) -> str:
        if value is None:
            return "—"
        return f"{value:,.{self.digits}f}"

    def target_text(self) -> str:
        if self.target is None:
            return ""
        op, bound = self.target
        return f"{'≤' if op == '<=' else '≥'} {self.fmt(bound)}"


class Report:
    def __init__(self) -> None:
        self.figures: dict[str, Figure] = {}
        self.notes: list[str] = []
        self.sections: dict[str, list[str]] = collections.defaultdict(list)
        self.info: dict[str, str] = {}

    def figure(self, key: str, part: str, name: str, unit: str, *, target: Any = None,
               digits: int = 0, note: str = "") -> Figure:
        if key not in self.figures:
            self.figures[key] = Figure(part, name, unit, target=target, digits=digits, note=note)
        return self.figures[key]

    def add(self, key: str, value: float) -> None:
        self.figures[key].values.append(value)

    def note(self, text: str) -> None:
        self.notes.append(text)
        log("NOTE: " + text)


REPORT = Report()


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


# --- processes ------------------------------------------------------------------------------

_RUNNING: set[int] = set()  # process groups started here and not yet reaped
_CLEANUPS: list[Callable[[], None]] = []


@dataclass
class Proc:
    cmd: list[str]
    rc: int
    wall: float
    user: float
    sys: float
    maxrss_mb: float
    stdout: str
    stderr: str
    spawn_mono: float
    timed_out: bool
    background: float = 0.0  # cores kept busy by other processes during the run

    @property
    def busy(self) -> bool:
        return self.background > BUSY_CORES

    @property
    def cpu(self) -> float:
        return self.user + self.sys

    def tail(self, lines: int = 6) -> str:
        text = (self.stderr.strip() or self.stdout.strip()).splitlines()[-lines:]
        return " | ".join(text)


_counter = itertools.count()
_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
BUSY_CORES = 0.25  # a run with more background load than this is flagged as disturbed
_SERVER_PGIDS: set[int] = set()
BACKGROUND: dict[str, list[float]] = collections.defaultdict(list)  # part → load per run
CURRENT_PART = ["setup"]


def machine_busy_seconds() -> float:
    """CPU-seconds all processes have spent (user+nice+system). Interrupt time (loopback
    networking's softirqs, which belong to no process) and steal are left out."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
        user, nice, system = (int(x) for x in fields[:3])
        return (user + nice + system) / _TICK
    except (OSError, ValueError):
        return 0.0


def own_seconds() -> float:
    """CPU-seconds of this process (all threads: the sandbox) and of the servers started
    here (their whole process groups)."""
    total = time.process_time()
    if _SERVER_PGIDS:
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                parts = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(parts[2]) in _SERVER_PGIDS:  # field 5: pgrp
                total += (int(parts[11]) + int(parts[12])) / _TICK  # utime, stime
    return total


def wait_for_quiet() -> float:
    """Wait (up to QUIET_WAIT s) until other processes leave the machine nearly idle, so
    that CI runs or other tests sharing the machine disturb fewer measurements.
    Returns the background load (cores) last seen."""
    deadline = time.monotonic() + QUIET_WAIT
    announced = False
    while True:
        busy0, own0 = machine_busy_seconds(), own_seconds()
        time.sleep(0.5)
        load = max(0.0, (machine_busy_seconds() - busy0) - (own_seconds() - own0)) / 0.5
        if load <= BUSY_CORES or time.monotonic() >= deadline:
            if announced:
                log(f"  background load now {load:.2f} cores")
            return load
        if not announced:
            log(f"  other processes keep {load:.2f} cores busy: waiting up to "
                f"{QUIET_WAIT:g}s for quiet")
            announced = True


def run_measured(cmd: Sequence[str], *, timeout: float, env: dict[str, str] | None = None
                 ) -> Proc:
    """Spawn *cmd* and reap it with wait4: exact wall time from spawn to exit, plus the
    child's own CPU time and peak RSS (taskset execs, so the pid is the program's)."""
    n = next(_counter)
    out_path, err_path = WORK / f".proc-{n}.out", WORK / f".proc-{n}.err"
    if QUIET_WAIT > 0:
        wait_for_quiet()
    busy0, own0 = machine_busy_seconds(), own_seconds()
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        spawn_mono = time.monotonic()
        started = time.perf_counter()
        proc = subprocess.Popen(list(cmd), stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                env=env or ENV, cwd=WORK, start_new_session=True)
    _RUNNING.add(proc.pid)
    done: dict[str, Any] = {}

    def reap() -> None:
        _, status, usage = os.wait4(proc.pid, 0)
        done.update(ended=time.perf_counter(), status=status, usage=usage)

    reaper = threading.Thread(target=reap, daemon=True)
    reaper.start()
    reaper.join(timeout)
    timed_out = reaper.is_alive()
    if timed_out:
        _kill_group(proc.pid)
        reaper.join(30)
    _RUNNING.discard(proc.pid)
    busy = machine_busy_seconds() - busy0
    mine = own_seconds() - own0
    status = done.get("status", 9)
    proc.returncode = os.waitstatus_to_exitcode(status) if "status" in done else -9
    usage = done.get("usage")
    result = Proc(
        cmd=list(cmd), rc=proc.returncode, wall=done.get("ended", time.perf_counter()) - started,
        user=usage.ru_utime if usage else 0.0, sys=usage.ru_stime if usage else 0.0,
        maxrss_mb=(usage.ru_maxrss / 1024) if usage else 0.0,
        stdout=out_path.read_text(errors="replace"), stderr=err_path.read_text(errors="replace"),
        spawn_mono=spawn_mono, timed_out=timed_out)
    if result.wall > 0:
        result.background = max(0.0, busy - mine - result.cpu) / result.wall
    BACKGROUND[CURRENT_PART[0]].append(result.background)
    out_path.unlink(missing_ok=True)
    err_path.unlink(missing_ok=True)
    if timed_out:
        raise BenchError(f"timed out after {timeout:g}s and was killed: {' '.join(cmd[:6])} …")
    return result


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def cleanup() -> None:
    while _CLEANUPS:
        fn = _CLEANUPS.pop()
        with contextlib.suppress(Exception):
            fn()
    for pgid in list(_RUNNING):
        _kill_group(pgid)
        _RUNNING.discard(pgid)


def pinned(cmd: Sequence[str], cpu: int) -> list[str]:
    if PINNING:
        return ["taskset", "-c", str(cpu), *cmd]
    return list(cmd)


def bulkrevoke_cmd() -> list[str]:
    script = Path(PY).parent / "bulkrevoke"
    return [str(script)] if script.exists() else [PY, "-m", "bulkrevoke"]


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


# --- servers --------------------------------------------------------------------------------

class FixedServer:
    """A fixed-response revokeEarn server in its own process (nginx, else aiohttp)."""

    def __init__(self, latency: float = 0.0) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.label = ""
        self.latency = latency
        self.dir = WORK / ("server" if not latency else "server-latency")

    def start_delayed(self) -> str:
        """nginx with the echo module's echo_sleep: a server that waits *latency* before
        answering and is not itself the bottleneck (there is no fallback for this one)."""
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        if not Path(nginx).exists():
            raise BenchError("nginx is not installed")
        return self._start_nginx(nginx)

    def start(self) -> str:
        nginx = shutil.which("nginx") or next(
            (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).exists()), None)
        if nginx is None:
            REPORT.note("nginx is not installed (apt-get install -y nginx-light): using the "
                        "aiohttp fallback server, which is much slower than nginx and shares "
                        "its core with nothing else; ratios are then less meaningful")
        else:
            try:
                return self._start_nginx(nginx)
            except BenchError as exc:
                REPORT.note(f"nginx did not start ({exc}); using the aiohttp fallback server")
                self.stop()
        return self._start_aiohttp()

    def _start_nginx(self, nginx: str) -> str:
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir.mkdir(parents=True)
        version = subprocess.run([nginx, "-V"], capture_output=True, text=True, timeout=10)
        build = version.stderr
        temp_paths = [f"client_body_temp_path {self.dir}/body;"]
        for module in ("proxy", "fastcgi", "uwsgi", "scgi"):
            if f"--without-http_{module}_module" not in build:
                temp_paths.append(f"{module}_temp_path {self.dir}/{module};")
        port = free_port()
        conf = self.dir / "nginx.conf"
        load, answer = "", f"return 200 '{FIXED_BODY}';"
        if self.latency:
            module = next((m for m in ("/usr/lib/nginx/modules/ngx_http_echo_module.so",
                                       "/usr/lib64/nginx/modules/ngx_http_echo_module.so")
                           if Path(m).exists()), None)
            if module is None:
                raise BenchError("the nginx echo module (libnginx-mod-http-echo) is missing")
            load = f"load_module {module};"
            answer = f"echo_sleep {self.latency:g}; echo -n '{FIXED_BODY}';"
        conf.write_text(f"""\
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
""")
        cmd = pinned([nginx, "-p", f"{self.dir}/", "-c", str(conf), "-e",
                      str(self.dir / "error.log")], SERVER_CPU)
        self._spawn(cmd, port)
        first_line = build.strip().splitlines()[0] if build.strip() else "nginx"
        self.label = (f"{first_line.replace('nginx version: ', '')} "
                      f"{'(echo_sleep %gs, ' % self.latency if self.latency else '('}1 worker, "
                      f"{'taskset -c %d' % SERVER_CPU if PINNING else 'not pinned'})")
        return self.url

    def _start_aiohttp(self) -> str:
        port = free_port()
        self._spawn(pinned([PY, str(HERE / "fixed_server.py"), "--port", str(port)], SERVER_CPU),
                    port)
        self.label = (f"aiohttp fixed-response fallback (benchmarks/fixed_server.py, "
                      f"{'taskset -c %d' % SERVER_CPU if PINNING else 'not pinned'})")
        return self.url

    def _spawn(self, cmd: list[str], port: int) -> None:
        log_file = open(WORK / "server.log", "ab")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(cmd, stdout=log_file, stderr=log_file,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        log_file.close()
        _RUNNING.add(self.proc.pid)
        _SERVER_PGIDS.add(self.proc.pid)
        _CLEANUPS.append(self.stop)
        error = ""
        try:
            wait_for_port(port, self.proc)
        except BenchError as exc:
            error = str(exc)
        if error:
            tail = ""
            with contextlib.suppress(OSError):
                tail = (self.dir / "error.log").read_text()[-400:]
            raise BenchError(error + (f"; error.log: {tail.strip()}" if tail.strip() else ""))
        self.url = f"http://127.0.0.1:{port}"
        self._check()

    def _check(self) -> None:
        request = urllib.request.Request(
            self.url + REVOKE_PATH, data=b'{"badgeMetaId":"x"}', method="POST",
            headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=5) as response:
            body = response.read().decode()
            if response.status != 200 or body != FIXED_BODY:
                raise BenchError(f"fixed server answered {response.status} {body!r}")
            if not response.headers.get("X-Cap-Requestid"):
                raise BenchError("fixed server sends no X-Cap-Requestid header")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGQUIT if "nginx" in " ".join(map(str, proc.args))
                                 else signal.SIGTERM)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                _kill_group(proc.pid)
                proc.wait(5)
        _kill_group(proc.pid)  # a worker left behind by its master, if any
        _RUNNING.discard(proc.pid)
        _SERVER_PGIDS.discard(proc.pid)


@contextlib.contextmanager
def sandbox(**overrides: Any) -> Iterator[Any]:
    """bulkrevoke's own sandbox, in a thread of this (core-0 pinned) process."""
    try:
        from bulkrevoke.sandbox import SandboxSettings, SandboxThread
    except Exception as exc:  # the package is being edited: a broken import is a failed part
        raise BenchError(f"cannot import bulkrevoke.sandbox: {exc!r}") from None
    settings = SandboxSettings(username=USERNAME, password=PASSWORD, unknown_badges="active",
                               **overrides)
    thread = SandboxThread(settings)
    thread.start()
    _CLEANUPS.append(thread.stop)
    try:
        yield thread
    finally:
        thread.stop()
        with contextlib.suppress(ValueError):
            _CLEANUPS.remove(thread.stop)


# --- inputs ---------------------------------------------------------------------------------

def generate_csv(path: Path, rows: int, block: int = 100_000) -> Path:
    """Valid rows, fast: a numpy block of fixed-width lines whose earnedBadgeId prefix is
    rewritten per block (f"{block:018x}{j:06x}", so every earnedBadgeId is unique)."""
    import numpy as np

    if path.exists() and path.stat().st_size == len(HEADER) + 60 * rows:
        return path
    width = 60  # 24 meta + , + 9 digits + , + 24 earned + \n
    j = np.arange(block)
    lines = np.empty((block, width), dtype=np.uint8)
    lines[:, 0:24] = np.frombuffer(BADGE_META, np.uint8)
    lines[:, 24] = lines[:, 34] = ord(",")
    customers = b"".join(b"%09d" % (100_000_000 + k) for k in range(block))
    lines[:, 25:34] = np.frombuffer(customers, np.uint8).reshape(block, 9)
    suffixes = b"".join(b"%06x" % k for k in range(block))
    lines[:, 53:59] = np.frombuffer(suffixes, np.uint8).reshape(block, 6)
    lines[:, 59] = ord("\n")
    del j
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as out:
        out.write(HEADER)
        for number in range((rows + block - 1) // block):
            lines[:, 35:53] = np.frombuffer(b"%018x" % number, np.uint8)
            count = min(block, rows - number * block)
            out.write(lines[:count].tobytes())
    tmp.replace(path)
    return path


def summary_of(out_dir: Path) -> dict[str, Any]:
    try:
        return json.loads((out_dir / "summary.json").read_text())
    except (OSError, ValueError) as exc:
        raise BenchError(f"no readable summary.json in {out_dir}: {exc}") from None


def checked_run(cmd: list[str], out_dir: Path, *, rows: int, status: str, timeout: float,
                expect_rc: int = 0) -> tuple[Proc, dict[str, Any]]:
    shutil.rmtree(out_dir, ignore_errors=True)
    proc = run_measured(cmd, timeout=timeout)
    if proc.rc != expect_rc:
        raise BenchError(f"exit {proc.rc} (expected {expect_rc}): {proc.tail()}")
    summary = summary_of(out_dir)
    got = summary.get("counts", {}).get(status)
    if summary.get("rows") != rows or got != rows:
        raise BenchError(f"summary says rows={summary.get('rows')}, {status}={got}; "
                         f"expected {rows} (counts {summary.get('counts')})")
    return proc, summary


def attempt(label: str, fn: Callable[[], Any]) -> Any:
    """Run one measurement; on failure note it, wait, retry once (the package is being
    edited while benchmarks run, so a failure may be transient)."""
    for number in (1, 2):
        try:
            return fn()
        except BenchError as exc:
            REPORT.note(f"{label}: attempt {number} failed: {exc}")
        except Exception as exc:  # a bug here or in the package: keep the other parts going
            REPORT.note(f"{label}: attempt {number} raised {exc!r}: "
                        f"{traceback.format_exc(limit=3).splitlines()[-1]}")
        if number == 1:
            log(f"{label}: waiting {RETRY_WAIT:g}s before one retry")
            time.sleep(RETRY_WAIT)
    return None


def max_in_window(times: Sequence[float], width: float) -> int:
    """Most arrivals in any window (t - width, t]: two pointers over sorted times."""
    best = start = 0
    for end, t in enumerate(times):
        while t - times[start] >= width:
            start += 1
        best = max(best, end - start + 1)
    return best


def rate_over_run(times: Sequence[float]) -> float:
    return (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0


# --- part 1: overhead -----------------------------------------------------------------------

def part_overhead(server_url: str) -> None:
    rows = 20_000
    data = generate_csv(WORK / "overhead-20k.csv", rows)
    r = REPORT
    r.figure("oh.bk_wall", "1 overhead", "bulkrevoke whole-process rows/s", "rows/s")
    r.figure("oh.bk_send", "1 overhead", "bulkrevoke send-phase rows/s (requestsSent/sendSeconds)",
             "rows/s")
    r.figure("oh.bk_fixed", "1 overhead", "bulkrevoke time outside the send phase "
             "(wall − sendSeconds)", "s", digits=2)
    r.figure("oh.bk_cpu", "1 overhead", "bulkrevoke CPU per row (user+sys, whole process)",
             "µs/row")
    r.figure("oh.bk_rss", "1 overhead", "bulkrevoke peak RSS", "MB")
    r.figure("oh.base_wall", "1 overhead", "baseline whole-process rows/s", "rows/s")
    r.figure("oh.base_send", "1 overhead", "baseline send-phase rows/s", "rows/s")
    r.figure("oh.base_cpu", "1 overhead", "baseline CPU per row (user+sys, whole process)",
             "µs/row")
    # A reference row, not a bar to beat: a real run is paced by the API key's quota, and
    # its CPU per row at a given rate is measured by pace.py.
    r.figure("oh.ratio", "1 overhead", "ratio bulkrevoke / baseline (whole-process rows/s)", "×",
             digits=3)
    table = r.sections["overhead"]
    table += ["| round | order | bulkrevoke wall s | bulkrevoke rows/s | bulkrevoke send rows/s "
              "| bulkrevoke CPU µs/row | baseline wall s | baseline rows/s | baseline send rows/s "
              "| baseline CPU µs/row | ratio | background load (cores) |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    out = WORK / "overhead-run"

    def bulkrevoke_once() -> tuple[Proc, dict[str, Any]]:
        cmd = pinned([*BULKREVOKE, "run", str(data), "--host", server_url, "--rate", "unlimited",
                      "--concurrency", "64", "--no-progress", "-q", "--out", str(out)], CLIENT_CPU)
        result = checked_run(cmd, out, rows=rows, status="revoked", timeout=300)
        shutil.rmtree(out, ignore_errors=True)
        return result

    def baseline_once() -> tuple[Proc, dict[str, Any]]:
        cmd = pinned([PY, str(HERE / "baseline_client.py"), str(data), "--host", server_url,
                      "--concurrency", "64"], CLIENT_CPU)
        proc = run_measured(cmd, timeout=300)
        try:
            result = json.loads(proc.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise BenchError(f"baseline printed no result (exit {proc.rc}): {proc.tail()}"
                             ) from None
        if proc.rc != 0 or result.get("ok") != rows:
            raise BenchError(f"baseline exit {proc.rc}, {result.get('ok')} of {rows} ok")
        return proc, result

    for number in range(1, ROUNDS_OVERHEAD + 1):
        order = ("bulkrevoke", "baseline") if number % 2 else ("baseline", "bulkrevoke")
        got: dict[str, Any] = {}
        for who in order:
            log(f"overhead round {number}/{ROUNDS_OVERHEAD}: {who}")
            got[who] = attempt(f"overhead round {number} {who}",
                               bulkrevoke_once if who == "bulkrevoke" else baseline_once)
        bk, base = got.get("bulkrevoke"), got.get("baseline")
        cells = [str(number), " → ".join(order)]
        if bk:
            proc, summary = bk
            send = summary["requestsSent"] / summary["sendSeconds"] if summary.get(
                "sendSeconds") else 0.0
            r.add("oh.bk_wall", rows / proc.wall)
            r.add("oh.bk_send", send)
            r.add("oh.bk_fixed", proc.wall - summary.get("sendSeconds", 0.0))
            r.add("oh.bk_cpu", proc.cpu / rows * 1e6)
            r.add("oh.bk_rss", proc.maxrss_mb)
            cells += [f"{proc.wall:.2f}", f"{rows / proc.wall:,.0f}", f"{send:,.0f}",
                      f"{proc.cpu / rows * 1e6:,.0f}"]
        else:
            cells += ["failed"] * 4
        if base:
            proc_b, result = base
            r.add("oh.base_wall", rows / proc_b.wall)
            r.add("oh.base_send", rows / result["sendSeconds"])
            r.add("oh.base_cpu", proc_b.cpu / rows * 1e6)
            cells += [f"{proc_b.wall:.2f}", f"{rows / proc_b.wall:,.0f}",
                      f"{rows / result['sendSeconds']:,.0f}", f"{proc_b.cpu / rows * 1e6:,.0f}"]
        else:
            cells += ["failed"] * 4
        if bk and base:
            ratio = (rows / bk[0].wall) / (rows / base[0].wall)
            r.add("oh.ratio", ratio)
            cells.append(f"{ratio:.3f}")
            log(f"  round {number}: bulkrevoke {rows / bk[0].wall:,.0f} rows/s, baseline "
                f"{rows / base[0].wall:,.0f} rows/s, ratio {ratio:.3f}")
        else:
            cells.append("—")
        loads = [x[0].background for x in (bk, base) if x]
        cells.append(f"{max(loads):.2f}" + (" (disturbed)" if max(loads) > BUSY_CORES else "")
                     if loads else "—")
        table.append("| " + " | ".join(cells) + " |")
    ratios = r.figures["oh.ratio"].values
    if ratios:
        table.append(f"\nMedian ratio bulkrevoke/baseline (whole-process rows/s): "
                     f"**{statistics.median(ratios):.3f}** over {len(ratios)} rounds "
                     "(1.0 = as fast as the minimal loop; lower = slower).")


# --- parts 2 and 3: the sandbox ---------------------------------------------------------------

def sandbox_run(label: str, data: Path, rows: int, args: list[str], *, timeout: float,
                **settings: Any) -> tuple[Proc, dict[str, Any], list[float], collections.Counter[int]]:
    out = WORK / f"{label}-run"
    with sandbox(**settings) as box:
        cmd = pinned([*BULKREVOKE, "run", str(data), "--host", box.url, "--no-progress", "-q",
                      "--out", str(out), *args], CLIENT_CPU)
        proc, summary = checked_run(cmd, out, rows=rows, status="revoked", timeout=timeout)
        truth = box.truth()
    shutil.rmtree(out, ignore_errors=True)
    times = sorted(t for t, _ in truth.request_log)
    statuses = collections.Counter(status for _, status in truth.request_log)
    if len(times) != rows:
        raise BenchError(f"the sandbox saw {len(times)} requests for {rows} rows ({statuses})")
    return proc, summary, times, statuses


def part_rate_per_second() -> None:
    rows, rate = 4_000, 200
    data = generate_csv(WORK / "rate-4k.csv", rows)
    r = REPORT
    r.figure("rate.max1s", "2 rate 200/s", "most requests in any 1-s window", "req",
             target=("<=", rate + 1))
    r.figure("rate.achieved", "2 rate 200/s", "achieved rate over the run (arrivals)", "req/s",
             target=(">=", rate * 0.99), digits=1)
    r.figure("rate.first", "2 rate 200/s", "requests in the first second", "req",
             target=("<=", rate + 1))
    r.figure("rate.summary", "2 rate 200/s", "summary.json achievedRequestsPerSecond", "req/s",
             digits=1)
    for number in range(1, ROUNDS_RATE + 1):
        log(f"rate 200/s round {number}/{ROUNDS_RATE} ({rows} rows, ~{rows / rate:.0f}s)")
        got = attempt(f"rate 200/s round {number}", lambda: sandbox_run(
            "rate200", data, rows, ["--rate", f"{rate}/s", "--concurrency", "16"], timeout=180))
        if got:
            proc, summary, times, statuses = got
            r.add("rate.max1s", max_in_window(times, 1.0))
            r.add("rate.achieved", rate_over_run(times))
            r.add("rate.first", sum(1 for t in times if t - times[0] < 1.0))
            r.add("rate.summary", summary.get("achievedRequestsPerSecond", 0.0))
            gaps = sorted(b - a for a, b in itertools.pairwise(times))
            r.sections["rate"].append(
                f"- 200/s round {number}: {len(times)} requests over {times[-1] - times[0]:.2f}s, "
                f"answers {dict(statuses)}; gaps between arrivals median "
                f"{statistics.median(gaps) * 1000:.2f} ms, p99 "
                f"{gaps[int(len(gaps) * 0.99)] * 1000:.2f} ms (ideal 5.00 ms); 1-s window max "
                f"{max_in_window(times, 1.0)}; background load {proc.background:.2f} cores")


def part_rate_per_minute() -> None:
    rows = 300
    data = generate_csv(WORK / "rate-300.csv", rows)
    r = REPORT
    part = "2 rate 100/min"
    r.figure("ratem.first", part, "requests in the first second (no start-up burst)", "req",
             target=("<=", 2))
    r.figure("ratem.max1s", part, "most requests in any 1-s window", "req", target=("<=", 2))
    r.figure("ratem.max60s", part, "most requests in any 60-s window", "req", target=("<=", 101))
    r.figure("ratem.achieved", part, "achieved rate over the run (arrivals)", "req/min",
             target=(">=", 99), digits=1)
    log(f"rate 100/min ({rows} rows, ~180s)")
    got = attempt("rate 100/min", lambda: sandbox_run(
        "rate100m", data, rows, ["--rate", "100/min", "--concurrency", "16"], timeout=420))
    if got:
        _, _, times, statuses = got
        r.add("ratem.first", sum(1 for t in times if t - times[0] < 1.0))
        r.add("ratem.max1s", max_in_window(times, 1.0))
        r.add("ratem.max60s", max_in_window(times, 60.0))
        r.add("ratem.achieved", rate_over_run(times) * 60)
        gaps = [b - a for a, b in itertools.pairwise(times)]
        r.sections["rate"].append(
            f"- 100/min: {len(times)} requests over {times[-1] - times[0]:.1f}s, answers "
            f"{dict(statuses)}; gaps between arrivals min {min(gaps):.3f}s, median "
            f"{statistics.median(gaps):.3f}s, max {max(gaps):.3f}s (ideal 0.600s)")


def part_latency() -> None:
    rows, latency, workers = 6_000, 0.05, 64
    bound = workers / latency
    data = generate_csv(WORK / "latency-6k.csv", rows)
    r = REPORT
    part = "3 latency hiding"
    r.figure("lat.achieved", part, f"achieved rate, {workers} workers × {latency * 1000:.0f} ms "
             "(arrivals)", "req/s", target=(">=", 0.95 * bound))
    r.figure("lat.share", part, f"share of the {bound:,.0f}/s bound", "%", target=(">=", 95),
             digits=1)
    r.figure("lat.summary", part, "summary.json achievedRequestsPerSecond", "req/s")
    r.figure("lat.cpu", part, "bulkrevoke CPU per row (user+sys, whole process)", "µs/row")
    r.figure("lat.base", part, "control: baseline_client.py against the same sandbox "
             "(arrivals)", "req/s")

    def baseline_once() -> float:
        with sandbox(latency=latency) as box:
            cmd = pinned([PY, str(HERE / "baseline_client.py"), str(data), "--host", box.url,
                          "--concurrency", str(workers)], CLIENT_CPU)
            proc = run_measured(cmd, timeout=300)
            truth = box.truth()
        if proc.rc != 0:
            raise BenchError(f"baseline exit {proc.rc}: {proc.tail()}")
        return rate_over_run(sorted(t for t, _ in truth.request_log))

    for number in range(1, ROUNDS_LATENCY + 1):
        log(f"latency hiding round {number}/{ROUNDS_LATENCY} ({rows} rows)")
        got = attempt(f"latency round {number}", lambda: sandbox_run(
            "latency", data, rows, ["--rate", "unlimited", "--concurrency", str(workers)],
            timeout=300, latency=latency))
        if got:
            proc, summary, times, _ = got
            achieved = rate_over_run(times)
            r.add("lat.achieved", achieved)
            r.add("lat.share", achieved / bound * 100)
            r.add("lat.summary", summary.get("achievedRequestsPerSecond", 0.0))
            r.add("lat.cpu", proc.cpu / rows * 1e6)
        control = attempt(f"latency control round {number}", baseline_once)
        if control:
            r.add("lat.base", control)
    part_latency_nginx(data, rows, latency, workers, bound)
    control_median = r.figures["lat.base"].median
    if control_median and control_median < 0.95 * bound:
        REPORT.note(f"latency hiding: the minimal baseline client reaches only "
                    f"{control_median:,.0f} req/s ({control_median / bound:.0%} of the bound) "
                    "against the same sandbox, so the sandbox (one Python thread on one core) "
                    "is the limit here, not only the client; compare bulkrevoke with that "
                    "control rather than with the bound")


def part_latency_nginx(data: Path, rows: int, latency: float, workers: int,
                       bound: float) -> None:
    """The same load against nginx + echo_sleep, a server that is not the bottleneck."""
    r = REPORT
    part = "3 latency hiding"
    r.figure("lat.nginx_bk", part, f"bulkrevoke against nginx echo_sleep {latency * 1000:.0f} ms "
             "(send phase: requestsSent/sendSeconds)", "req/s", target=(">=", 0.95 * bound))
    r.figure("lat.nginx_base", part, "control: baseline_client.py against the same nginx "
             "(send phase)", "req/s")
    delayed = FixedServer(latency=latency)
    try:
        url = delayed.start_delayed()
    except Exception as exc:
        REPORT.note(f"latency hiding against nginx skipped: {exc}")
        delayed.stop()
        return
    out = WORK / "latency-nginx-run"
    try:
        for number in range(1, ROUNDS_LATENCY + 1):
            log(f"latency hiding vs nginx round {number}/{ROUNDS_LATENCY}")
            cmd = pinned([*BULKREVOKE, "run", str(data), "--host", url, "--rate", "unlimited",
                          "--concurrency", str(workers), "--no-progress", "-q", "--out",
                          str(out)], CLIENT_CPU)
            got = attempt(f"latency vs nginx round {number}", lambda: checked_run(
                cmd, out, rows=rows, status="revoked", timeout=300))
            shutil.rmtree(out, ignore_errors=True)
            if got:
                summary = got[1]
                r.add("lat.nginx_bk", summary["requestsSent"] / summary["sendSeconds"])

            def baseline_once() -> float:
                proc = run_measured(pinned([PY, str(HERE / "baseline_client.py"), str(data),
                                            "--host", url, "--concurrency", str(workers)],
                                           CLIENT_CPU), timeout=300)
                if proc.rc != 0:
                    raise BenchError(f"baseline exit {proc.rc}: {proc.tail()}")
                return rows / json.loads(proc.stdout.strip().splitlines()[-1])["sendSeconds"]

            control = attempt(f"latency control vs nginx round {number}", baseline_once)
            if control:
                r.add("lat.nginx_base", control)
    finally:
        delayed.stop()


# --- part 4: scale --------------------------------------------------------------------------

def dry_run(data: Path, rows: int, timeout: float) -> Proc:
    out = WORK / "scale-run"
    cmd = pinned([*BULKREVOKE, "run", str(data), "--dry-run", "--no-progress", "-q",
                  "--out", str(out)], CLIENT_CPU)
    try:
        proc, _ = checked_run(cmd, out, rows=rows, status="would_revoke", timeout=timeout)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return proc


def part_scale() -> None:
    r = REPORT
    part = "4 scale (dry run)"
    small_rows = 100_000
    small = generate_csv(WORK / "scale-100k.csv", small_rows)
    r.figure("scale.small_rate", part, "100,000 rows: rows/s (whole process)", "rows/s",
             target=(">=", 200_000))
    r.figure("scale.small_rss", part, "100,000 rows: peak RSS", "MB", digits=1)
    for number in range(1, ROUNDS_SCALE + 1):
        log(f"scale 100k round {number}/{ROUNDS_SCALE}")
        proc = attempt(f"scale 100k round {number}", lambda: dry_run(small, small_rows, 300))
        if proc:
            r.add("scale.small_rate", small_rows / proc.wall)
            r.add("scale.small_rss", proc.maxrss_mb)
    if QUICK:
        return
    big_rows = 10_000_000
    r.figure("scale.big_rate", part, "10,000,000 rows: rows/s (whole process)", "rows/s",
             target=(">=", 200_000))
    r.figure("scale.big_rss", part, "10,000,000 rows: peak RSS", "MB", target=("<=", 150),
             digits=1)
    r.figure("scale.rss_ratio", part, "peak RSS 10 M / 100,000", "×", target=("<=", 1.25),
             digits=2)
    big = WORK / "scale-10m.csv"
    try:
        log("generating the 10,000,000-row input")
        started = time.perf_counter()
        generate_csv(big, big_rows)
        log(f"  written in {time.perf_counter() - started:.1f}s "
            f"({big.stat().st_size / 1e6:,.0f} MB)")
        log("scale 10M dry run")
        proc = attempt("scale 10M", lambda: dry_run(big, big_rows, 1800))
        if proc:
            r.add("scale.big_rate", big_rows / proc.wall)
            r.add("scale.big_rss", proc.maxrss_mb)
            r.sections["scale"].append(
                f"- 10 M dry run: wall {proc.wall:.1f}s, CPU {proc.cpu:.1f}s "
                f"(user {proc.user:.1f}s, sys {proc.sys:.1f}s), peak RSS {proc.maxrss_mb:.1f} MB")
            small_rss = r.figures["scale.small_rss"].median
            if small_rss:
                r.add("scale.rss_ratio", proc.maxrss_mb / small_rss)
    finally:
        big.unlink(missing_ok=True)


# --- part 5: start-up -----------------------------------------------------------------------

def part_startup_help() -> None:
    r = REPORT
    r.figure("start.help", "5 start-up", "`bulkrevoke --help` wall time", "s",
             target=("<=", 0.3), digits=3)
    for _ in range(10):
        proc = attempt("--help", lambda: _help_once())
        if proc:
            r.add("start.help", proc.wall)


def _help_once() -> Proc:
    proc = run_measured(pinned([*BULKREVOKE, "--help"], CLIENT_CPU), timeout=60)
    if proc.rc != 0:
        raise BenchError(f"--help exit {proc.rc}: {proc.tail()}")
    return proc


def part_startup_first_request() -> None:
    rows = 20_000
    data = generate_csv(WORK / "overhead-20k.csv", rows)
    r = REPORT
    r.figure("start.first", "5 start-up", "spawn → first request at the sandbox (20,000 rows)",
             "s", digits=3)
    for number in range(1, ROUNDS_FIRST + 1):
        log(f"time to first request round {number}/{ROUNDS_FIRST}")
        got = attempt(f"first request round {number}", lambda: sandbox_run(
            "first", data, rows, ["--rate", "unlimited", "--concurrency", "64"], timeout=300))
        if got:
            proc, _, times, _ = got
            r.add("start.first", times[0] - proc.spawn_mono)


# --- part 6: profiles -----------------------------------------------------------------------

PYSPY_RATE = 250
_PYSPY_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*)\)$")


def short_path(path: str) -> str:
    for marker in ("site-packages/", "/work/main/", "/benchmarks/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return re.sub(r"^.*/lib/python3\.\d+/", "", path)


def component(path: str, func: str = "") -> str:
    p = path.replace("\\", "/")
    if "/bulkrevoke/" in p or p.startswith("bulkrevoke/"):
        module = p.split("bulkrevoke/", 1)[1].removesuffix(".py").replace("/", ".")
        return "bulkrevoke." + module
    if "baseline_client" in p:
        return "baseline_client"
    for lib in ("aiohttp", "yarl", "multidict", "aiolimiter", "pyarrow", "pandas", "numpy",
                "asyncio", "json", "sqlite3", "logging", "importlib", "frozenlist",
                "propcache", "aiohappyeyeballs", "tqdm", "email", "http", "re", "csv",
                "hashlib", "datetime", "ssl", "encodings", "argparse"):
        if f"/{lib}/" in p or f"/{lib}.py" in p or p.startswith(f"{lib}/") or p == f"{lib}.py":
            return lib
    if "<frozen" in p:
        return "import machinery"
    if p == "~":  # cProfile's built-ins: name the C function's owner
        for lib in ("sqlite3", "select", "json", "_asyncio", "_ssl", "socket", "pyarrow",
                    "_hashlib", "posix", "io"):
            if lib in func:
                return {"select": "epoll wait (idle)", "_asyncio": "asyncio"}.get(lib, lib)
        return "builtins"
    return "other stdlib"


def profile_pyspy(name: str, cmd: list[str], rows: int) -> dict[str, Any] | None:
    pyspy = shutil.which("py-spy") or (str(Path(PY).parent / "py-spy")
                                       if (Path(PY).parent / "py-spy").exists() else None)
    if pyspy is None:
        return None
    raw = WORK / f"profile-{name}.pyspy.txt"
    raw.unlink(missing_ok=True)
    proc = run_measured(pinned([pyspy, "record", "--rate", str(PYSPY_RATE), "--nolineno", "--format", "raw",
                                "--output", str(raw), "--", *cmd], CLIENT_CPU), timeout=900)
    if proc.rc != 0 or not raw.exists():
        raise BenchError(f"py-spy exit {proc.rc}: {proc.tail()}")
    self_counts: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    components: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        total += count
        names = []
        for frame in frames:
            match = _PYSPY_FRAME.match(frame)
            func, file = (match["func"], match["file"]) if match else (frame, "")
            names.append((f"{func} ({short_path(file)})", file, func))
        self_counts[names[-1][0]] += count
        components[component(names[-1][1], names[-1][2])] += count
        for label in {n[0] for n in names}:
            incl[label] += count
    return {"tool": "py-spy", "total": total, "self": self_counts, "incl": incl,
            "components": components, "rows": rows, "wall": proc.wall}


def profile_cprofile(name: str, script: list[str], rows: int) -> dict[str, Any]:
    """script: ["-m", "bulkrevoke", ...] or [path, ...]"""
    out = WORK / f"profile-{name}.pstats"
    out.unlink(missing_ok=True)
    proc = run_measured(pinned([PY, "-m", "cProfile", "-o", str(out), *script], CLIENT_CPU),
                        timeout=900)
    if proc.rc != 0 or not out.exists():
        raise BenchError(f"cProfile run exit {proc.rc}: {proc.tail()}")
    stats = pstats.Stats(str(out))
    entries = []
    components: collections.Counter[str] = collections.Counter()
    for (file, line, func), (_cc, nc, tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        label = (f"{func} ({short_path(file)}:{line})" if file != "~" else func)
        entries.append((label, nc, tt, ct, file))
        components[component(file, func)] += tt
    return {"tool": "cProfile", "total": stats.total_tt, "entries": entries,  # type: ignore[attr-defined]
            "components": components, "rows": rows, "wall": proc.wall}


def pyspy_tables(result: dict[str, Any], *, focus: str | None, top: int = 12) -> list[str]:
    total = result["total"] or 1
    per_row = 1e6 / PYSPY_RATE / result["rows"]  # µs of CPU per row for one sample

    def cells(count: int) -> str:
        return f"{count / total:.1%} | {count * per_row:,.1f}"

    lines = [f"py-spy, {result['total']:,} samples at {PYSPY_RATE} Hz (CPU only, idle "
             f"excluded) = {result['total'] * per_row:,.0f} µs of CPU per row under the "
             "profiler, start-up and report included.", "",
             "| component (self time) | share | µs/row |", "|---|---|---|"]
    for comp, count in result["components"].most_common(10):
        lines.append(f"| {comp} | {cells(count)} |")
    lines += ["", "| function (self time) | self | µs/row |", "|---|---|---|"]
    for label, count in result["self"].most_common(top):
        lines.append(f"| `{label}` | {cells(count)} |")
    if focus:
        lines += ["", f"| {focus} function (inclusive time) | inclusive | µs/row |",
                  "|---|---|---|"]
        chosen = [(lab, c) for lab, c in result["incl"].most_common()
                  if focus in lab and not lab.startswith(("<module>", "main ("))][:top]
        for label, count in chosen:
            lines.append(f"| `{label}` | {cells(count)} |")
    return lines


def cprofile_table(result: dict[str, Any], top: int = 12) -> list[str]:
    total = result["total"] or 1
    rows = result["rows"]
    lines = [f"cProfile (deterministic; adds its own per-call overhead; a coroutine's time "
             "is split at each await, so its cumulative column can be off), total "
             f"{result['total']:.2f}s of profiled time.", "",
             "| component (self time) | share |", "|---|---|"]
    for comp, secs in result["components"].most_common(10):
        lines.append(f"| {comp} | {secs / total:.1%} |")
    lines += ["", "| function | calls | calls/row | self | cumulative |", "|---|---|---|---|---|"]
    for label, nc, tt, ct, _ in sorted(result["entries"], key=lambda e: -e[2])[:top]:
        if label.startswith("<method 'poll' of 'select.epoll'") or "select.epoll" in label:
            label += " — idle wait"
        lines.append(f"| `{label}` | {nc:,} | {nc / rows:.2f} | {tt / total:.1%} | "
                     f"{min(ct / total, 9.99):.1%} |")
    return lines


def part_profile(server_url: str | None) -> None:
    sections = REPORT.sections["profile"]
    scenarios: list[tuple[str, str, list[str], list[str], int, str | None]] = []
    if server_url:
        rows = 20_000
        data = generate_csv(WORK / "overhead-20k.csv", rows)
        out = WORK / "profile-run"
        run_args = ["run", str(data), "--host", server_url, "--rate", "unlimited",
                    "--concurrency", "64", "--no-progress", "-q", "--out", str(out)]
        scenarios.append(("overhead-bulkrevoke", "bulkrevoke run, 20,000 rows against the fixed "
                          "server (overhead scenario)", [PY, "-m", "bulkrevoke", *run_args],
                          ["-m", "bulkrevoke", *run_args], rows, "bulkrevoke/"))
        base_args = [str(HERE / "baseline_client.py"), str(data), "--host", server_url,
                     "--concurrency", "64"]
        scenarios.append(("overhead-baseline", "baseline_client.py, same 20,000 rows, same "
                          "server", [PY, *base_args], base_args, rows, None))
    scale_rows = 100_000 if QUICK else 1_000_000
    scale_data = generate_csv(WORK / f"profile-scale-{scale_rows}.csv", scale_rows)
    scale_out = WORK / "profile-run"
    scale_args = ["run", str(scale_data), "--dry-run", "--no-progress", "-q", "--out",
                  str(scale_out)]
    scenarios.append(("scale-dry-run", f"bulkrevoke run --dry-run, {scale_rows:,} rows (scale "
                      "scenario)", [PY, "-m", "bulkrevoke", *scale_args],
                      ["-m", "bulkrevoke", *scale_args], scale_rows, "bulkrevoke/"))
    for name, title, pyspy_cmd, cprofile_script, rows, focus in scenarios:
        sections.append(f"\n### {title}\n")
        for tool in ("py-spy", "cProfile"):
            log(f"profiling {name} with {tool}")

            def once() -> dict[str, Any] | None:
                shutil.rmtree(WORK / "profile-run", ignore_errors=True)
                if tool == "py-spy":
                    return profile_pyspy(name, pyspy_cmd, rows)
                return profile_cprofile(name, cprofile_script, rows)

            result = attempt(f"profile {name} ({tool})", once)
            shutil.rmtree(WORK / "profile-run", ignore_errors=True)
            if result is None:
                sections.append(f"_{tool}: not available or failed (see notes)._\n")
                continue
            sections.append(f"**{tool}** (profiled run: {result['wall']:.1f}s wall)\n")
            sections.extend(pyspy_tables(result, focus=focus) if tool == "py-spy"
                            else cprofile_table(result))
            sections.append("")
    scale_data.unlink(missing_ok=True)


# --- output ---------------------------------------------------------------------------------

def package_snapshot() -> str:
    """A fingerprint of the package's sources (the package is edited while benchmarks run)."""
    import hashlib

    try:
        import bulkrevoke
        root = Path(bulkrevoke.__file__).resolve().parent
    except Exception as exc:
        return f"unavailable ({exc.__class__.__name__})"
    digest = hashlib.sha256()
    newest = 0.0
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
        newest = max(newest, path.stat().st_mtime)
    stamp = dt.datetime.fromtimestamp(newest).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    return f"sources sha256 {digest.hexdigest()[:12]}, newest file {stamp}"


def machine_info(server_label: str) -> dict[str, str]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    nproc = NPROC
    versions = {}
    for mod in ("aiohttp", "pyarrow", "bulkrevoke"):
        try:
            versions[mod] = __import__(mod).__version__
        except Exception as exc:
            versions[mod] = f"unavailable ({exc.__class__.__name__})"
    try:
        import uvloop
        loop = (f"uvloop {uvloop.__version__} (bulkrevoke's speed extra is installed; the "
                "baseline follows the same rule)")
    except ImportError:
        loop = "asyncio (uvloop not installed), for bulkrevoke and the baseline"
    return {
        "date": dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "mode": "quick (--quick)" if QUICK else "full",
        "machine": f"nproc {nproc or os.cpu_count()}, CPU {model or platform.processor()}, "
                   f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_version()} ({PY})",
        "aiohttp / pyarrow": f"{versions['aiohttp']} / {versions['pyarrow']}",
        "bulkrevoke": f"{versions['bulkrevoke']} ({SNAPSHOT_START})",
        "event loop": loop,
        "server (overhead)": server_label or "not started",
        "sandbox (parts 2, 3, 5)": "bulkrevoke.sandbox.SandboxThread in the benchmark process"
                                   + (f" (taskset core {SERVER_CPU})" if PINNING else ""),
        "pinning": (f"servers on core {SERVER_CPU}, clients (CLI, baseline) on core {CLIENT_CPU}"
                    if PINNING else "none (fewer than 2 cores or no taskset)"),
    }


def figure_rows() -> list[list[str]]:
    rows = []
    for fig in REPORT.figures.values():
        span = (f"{fig.fmt(min(fig.values))} – {fig.fmt(max(fig.values))}"
                if len(fig.values) > 1 else "")
        rows.append([fig.part, fig.name, f"{fig.fmt(fig.median)} {fig.unit}" if fig.values
                     else "failed / not run", span, str(len(fig.values)), fig.target_text(),
                     fig.met()])
    return rows


HEADERS = ["part", "figure", "median", "min – max", "n", "target", "met"]


def print_table() -> None:
    rows = [HEADERS, *figure_rows()]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADERS))]
    sep = "  "
    print()
    for index, row in enumerate(rows):
        print(sep.join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
        if index == 0:
            print(sep.join("-" * w for w in widths))
    print()
    if REPORT.notes:
        print("notes:")
        for note in REPORT.notes:
            print("  - " + note)


def write_results(elapsed: float, command: str) -> None:
    lines = ["# bulkrevoke benchmark results", "",
             f"Written by `{command}` in {elapsed / 60:.1f} min. What each figure means and how "
             "it is measured: [README.md](README.md).", "",
             "| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in REPORT.info.items()]
    lines += ["", "## Figures", "",
              "Median over the rounds, with min – max when there was more than one.", "",
              "| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    lines += ["| " + " | ".join(row) + " |" for row in figure_rows()]
    blocks = [
        ("overhead", "## 1. Overhead, per round",
         "Whole-process wall time from spawn to exit of `bulkrevoke run … --rate unlimited "
         "--concurrency 64 --no-progress -q --out DIR` (20,000 valid rows, report written) and of "
         "`baseline_client.py` (64 workers, no limiter), interleaved, alternating which goes "
         "first. Send rows/s: bulkrevoke's summary.json `requestsSent / sendSeconds`; the "
         "baseline's own timer around its worker pool. CPU: user+sys of the process (wait4)."),
        ("rate", "## 2. Rate fidelity, details",
         "Arrival times from the sandbox's `truth().request_log`."),
        ("scale", "## 4. Scale, details", ""),
        ("profile", "## 6. Profiles",
         "Where a row's CPU goes. py-spy samples the running process (little distortion, idle "
         "time excluded); cProfile counts calls exactly (calls/row) but inflates the cost of "
         "many small calls. Percentages are of the profiled process's total."),
    ]
    for key, title, intro in blocks:
        if REPORT.sections.get(key):
            lines += ["", title, ""] + ([intro, ""] if intro else []) + REPORT.sections[key]
    if BACKGROUND:
        lines += ["", "## Background load", "",
                  "This machine may be shared (other tests and CI can run on the same 2 "
                  "cores). Before each measured run the script waits (up to "
                  f"{QUIET_WAIT:g}s) for other processes to go quiet, and it records the CPU "
                  "they used during the run: machine busy time (/proc/stat, steal excluded) "
                  "minus the measured process, this process (sandbox thread) and the server. "
                  f"Runs above {BUSY_CORES} cores are marked disturbed; their figures are "
                  "kept (medians absorb a few).", "",
                  "| part | runs | median load (cores) | max | disturbed runs |", "|---|---|---|---|---|"]
        for part, loads in BACKGROUND.items():
            lines.append(f"| {part} | {len(loads)} | {statistics.median(loads):.2f} | "
                         f"{max(loads):.2f} | {sum(1 for x in loads if x > BUSY_CORES)} |")
    lines += ["", "## Notes", ""]
    lines += [f"- {n}" for n in REPORT.notes] or ["- none: every measurement succeeded first "
                                                   "time."]
    RESULTS.write_text("\n".join(lines).rstrip() + "\n")
    log(f"wrote {RESULTS}")


# --- main -----------------------------------------------------------------------------------

ENV: dict[str, str] = {}
BULKREVOKE: list[str] = []
PINNING = False
NPROC = ""
SNAPSHOT_START = ""
QUICK = False
RETRY_WAIT = 60.0
QUIET_WAIT = 0.0
ROUNDS_OVERHEAD = ROUNDS_RATE = ROUNDS_LATENCY = ROUNDS_SCALE = ROUNDS_FIRST = 1


def main() -> int:
    global ENV, BULKREVOKE, PINNING, QUICK, RETRY_WAIT, NPROC, QUIET_WAIT
    global ROUNDS_OVERHEAD, ROUNDS_RATE, ROUNDS_LATENCY, ROUNDS_SCALE, ROUNDS_FIRST
    parser = argparse.ArgumentParser(description="bulkrevoke benchmarks (see README.md)")
    parser.add_argument("--quick", action="store_true",
                        help="fewer rounds; skip the 10 M-row dry run and the 100/min run")
    parser.add_argument("--only", help=f"comma-separated parts: {','.join(PARTS)}")
    parser.add_argument("--rounds", type=int, help="overhead rounds (default 7, quick 5)")
    parser.add_argument("--retry-wait", type=float,
                        help="seconds to wait before retrying a failed measurement "
                             "(default 60, quick 10)")
    parser.add_argument("--quiet-wait", type=float,
                        help="before each measured run, wait up to this many seconds for other "
                             "processes to leave the machine idle (default 30, quick 15; 0: "
                             "don't wait)")
    args = parser.parse_args()
    QUICK = args.quick
    QUIET_WAIT = args.quiet_wait if args.quiet_wait is not None else (15.0 if QUICK else 30.0)
    RETRY_WAIT = args.retry_wait if args.retry_wait is not None else (10.0 if QUICK else 60.0)
    ROUNDS_OVERHEAD = args.rounds or (5 if QUICK else 7)
    ROUNDS_RATE, ROUNDS_LATENCY, ROUNDS_SCALE, ROUNDS_FIRST = (1, 1, 3, 1) if QUICK else (3, 3, 5, 3)
    parts = set(PARTS if not args.only else args.only.split(","))
    if unknown := parts - set(PARTS):
        parser.error(f"unknown part(s): {', '.join(sorted(unknown))}")

    WORK.mkdir(exist_ok=True)
    ENV = {k: v for k, v in os.environ.items()
           if not k.startswith("BULKREVOKE_") and k not in ("PYTHONPROFILEIMPORTTIME",)}
    ENV.update(BULKREVOKE_USERNAME=USERNAME, BULKREVOKE_PASSWORD=PASSWORD)
    BULKREVOKE = bulkrevoke_cmd()
    with contextlib.suppress(Exception):  # before this process pins itself to one core
        NPROC = subprocess.run(["nproc"], capture_output=True, text=True,
                               timeout=10).stdout.strip()
    PINNING = (os.cpu_count() or 1) >= 2 and shutil.which("taskset") is not None
    if PINNING:
        os.sched_setaffinity(0, {SERVER_CPU})  # the sandbox thread lives in this process
    else:
        REPORT.note("no CPU pinning: fewer than 2 cores or taskset missing")

    def on_signal(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    with contextlib.suppress(AttributeError):
        signal.signal(signal.SIGHUP, on_signal)

    started = time.perf_counter()
    global SNAPSHOT_START
    SNAPSHOT_START = package_snapshot()
    server = FixedServer()
    command = "python benchmarks/run.py" + (" --quick" if QUICK else "") + (
        f" --only {args.only}" if args.only else "")
    status = 0
    try:
        log(f"bulkrevoke: {' '.join(BULKREVOKE)}; work dir {WORK}")
        # warm-up: compile the package's bytecode, fill the page cache
        warm = generate_csv(WORK / "warmup-1k.csv", 1_000)
        attempt("warm-up dry run", lambda: dry_run(warm, 1_000, 120))
        server_url = None
        if parts & {"overhead", "profile"}:
            try:
                server_url = server.start()
                log(f"fixed server: {server.label} at {server_url}")
            except Exception as exc:
                REPORT.note(f"no fixed-response server could be started: {exc}")
        REPORT.info = machine_info(server.label)

        def run_part(name: str, fn: Callable[..., None], *fn_args: Any) -> None:
            CURRENT_PART[0] = name
            log(f"== {name}")
            fn(*fn_args)

        if "startup" in parts:
            run_part("5 start-up (--help)", part_startup_help)
        if "overhead" in parts and server_url:
            run_part("1 overhead", part_overhead, server_url)
        if "profile" in parts:
            run_part("6 profile", part_profile, server_url)
        server.stop()
        if "latency" in parts:
            run_part("3 latency hiding", part_latency)
        if "rate" in parts:
            run_part("2 rate 200/s", part_rate_per_second)
        if "startup" in parts:
            run_part("5 start-up (first request)", part_startup_first_request)
        if "scale" in parts:
            run_part("4 scale", part_scale)
        if "rate" in parts and not QUICK:
            run_part("2 rate 100/min", part_rate_per_minute)
    except KeyboardInterrupt as exc:
        REPORT.note(f"benchmark interrupted ({exc or 'SIGINT'}); figures are partial")
        status = 130
    finally:
        cleanup()
        for leftover in WORK.glob("*.csv"):
            if leftover.stat().st_size > 10_000_000:
                leftover.unlink(missing_ok=True)
        if not REPORT.info:
            REPORT.info = machine_info(server.label)
        snapshot_end = package_snapshot()
        if snapshot_end != SNAPSHOT_START:
            REPORT.info["bulkrevoke"] += f" → at the end: {snapshot_end}"
            REPORT.note("the package's sources changed while the benchmarks ran (other "
                        "edited during the run): later parts measured newer code than earlier ones")
        print_table()
        write_results(time.perf_counter() - started, command)
    return status


if __name__ == "__main__":
    sys.exit(main())
