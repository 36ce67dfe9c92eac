#!/usr/bin/env python3
"""How close the real CLI keeps to ``--rate``, at what CPU per row, whether it fits a
per-minute quota exactly, and how fast ``--rate auto`` finds a limit.

    python benchmarks/pace.py                   # 100, 500, 1,000, 2,000/s, per-minute, auto
    python benchmarks/pace.py --rates 1000 --rounds 1 --no-minute --no-auto
    python benchmarks/pace.py --write benchmarks/PACE_RESULTS.md

Every measurement starts a standalone ``bulkrevoke sandbox`` process (zero latency; on core 0
when ``taskset`` and two cores are there) and runs the real CLI against it as a user would,
``bulkrevoke run INPUT --host URL --rate R --no-progress -q --out DIR`` (on core 1), over
``--seconds`` times R fresh rows (unique customers). Figures per run:

* achieved / --rate: arrivals at the sandbox (its ``/_sandbox/truth`` request log),
  (n - 1) / (last - first), over the rate asked for; and summary.json's
  ``achievedRequestsPerSecond`` (requests / send phase, start-up included) beside it;
* the most arrivals in any one-second window;
* the CLI's whole-process CPU (user + sys from ``wait4``: start-up, ingest, send, report) per row;
* the background load: CPU other processes used meanwhile, in cores (the machine may be shared).

The per-minute check runs ``--rate 1200/min`` over 1,500 rows against a sandbox limited to
1,200 requests per clock minute (``--rate-limit 1200 --rate-window 60 --rate-limit-kind
fixed``): the target is zero throttled answers across the window boundaries it crosses.

The auto check runs ``--rate auto`` over 6,000 rows against a sandbox with a token bucket of
150/s (``--rate-limit 150 --rate-limit-kind bucket --no-limit-retry-after``, 30 ms latency):
the time until every 5-s window of admitted requests holds at least 90 % of the limit, the
admitted rate over the last 20 s, and the throttled share (targets: within 30 s, >= 90 %,
<= 2 %).

Medians over ``--rounds`` rounds, with min - max. Inputs and run directories live in a
temporary directory that is removed at the end; every process started here is stopped, also
on failure.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from run import generate_csv, max_in_window, rate_over_run  # the harness's own helpers

USERNAME, PASSWORD = "pace", "pace-password"
SERVER_CPU, CLIENT_CPU = 0, 1
MINUTE_RATE, MINUTE_ROWS = "1200/min", 1500
AUTO_LIMIT, AUTO_ROWS = 150, 6000
AUTO_SANDBOX = ["--rate-limit", str(AUTO_LIMIT), "--rate-limit-kind", "bucket",
                "--no-limit-retry-after", "--latency", "0.03"]


@dataclass
class Measurement:
    rate: float  # requests per second asked for
    rows: int
    wall: float
    cpu: float
    arrivals: list[float]
    statuses: dict[int, int]
    log: list[tuple[float, int]]  # (arrival, status) of every request, as the sandbox saw it
    summary: dict[str, object]
    quota_throttled: int
    background: float

    @property
    def achieved(self) -> float:
        return rate_over_run(self.arrivals) / self.rate

    @property
    def cpu_per_row_us(self) -> float:
        return self.cpu / self.rows * 1e6


def machine_busy() -> float:
    """CPU-seconds every process has used so far (user + nice + system)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:4]
    return sum(int(x) for x in fields) / os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int) -> float:
    with contextlib.suppress(OSError, IndexError, ValueError):
        parts = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")
    return 0.0


def pinned(cmd: Sequence[str], cpu: int, pin: bool) -> list[str]:
    return ["taskset", "-c", str(cpu), *cmd] if pin else list(cmd)


@contextlib.contextmanager
def sandbox(extra: Sequence[str], env: dict[str, str], pin: bool, cwd: Path
            ) -> Iterator[tuple[str, int]]:
    """A standalone sandbox process: yields its URL and pid, stops it afterwards."""
    cmd = pinned([sys.executable, "-m", "bulkrevoke", "sandbox", "--port", "0",
                  "--unknown-badges", "active", *extra], SERVER_CPU, pin)
    # cwd: not the source tree, whose package ``-m`` would pick before the installed one.
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env=env, cwd=cwd, start_new_session=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("sandbox listening on "):
            raise RuntimeError(f"the sandbox did not start: {line!r}")
        yield line.split()[-1], proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_client(cmd: list[str], env: dict[str, str], timeout: float, cwd: Path
               ) -> tuple[int, float, float]:
    """Spawn and reap ``cmd``: exit code, wall seconds, its own CPU seconds (user + sys)."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                            cwd=cwd)
    deadline = started + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return proc.returncode, time.perf_counter() - started, usage.ru_utime + usage.ru_stime
        if time.perf_counter() > deadline:
            proc.kill()
            proc.wait()
            raise RuntimeError(f"timed out after {timeout:g}s: {' '.join(cmd[:8])}")
        time.sleep(0.02)


def measure(rate_text: str, per_second: float, rows: int, sandbox_args: Sequence[str],
            work: Path, env: dict[str, str], pin: bool, client_args: Sequence[str] = ()
            ) -> Measurement:
    data = generate_csv(work / f"rows-{rows}.csv", rows)
    out = work / "run"
    shutil.rmtree(out, ignore_errors=True)
    with sandbox(sandbox_args, env, pin, work) as (url, server_pid):
        cmd = pinned([sys.executable, "-m", "bulkrevoke", "run", str(data), "--host", url,
                      "--rate", rate_text, "--no-progress", "-q", "--out", str(out),
                      *client_args],
                     CLIENT_CPU, pin)
        busy0, server0 = machine_busy(), process_cpu(server_pid)
        rc, wall, cpu = run_client(cmd, env, rows / per_second * 3 + 60, work)
        server_cpu = process_cpu(server_pid) - server0
        background = max(0.0, machine_busy() - busy0 - cpu - server_cpu) / wall
        with urllib.request.urlopen(url + "/_sandbox/truth", timeout=30) as answer:
            truth = json.load(answer)
    summary = json.loads((out / "summary.json").read_text())
    if rc not in (0, 1) or summary.get("rows") != rows:
        raise RuntimeError(f"run exited {rc}, summary rows {summary.get('rows')} of {rows}")
    log = truth["request_log"]
    statuses: dict[int, int] = {}
    for _, status in log:
        statuses[status] = statuses.get(status, 0) + 1
    return Measurement(per_second, rows, wall, cpu, sorted(t for t, _ in log), statuses,
                       [(float(t), int(status)) for t, status in log], summary,
                       int(truth.get("quota_throttled", 0)), background)


def spread(values: Sequence[float], fmt: str) -> str:
    median = statistics.median(values)
    if len(values) == 1:
        return format(median, fmt)
    return f"{format(median, fmt)} ({format(min(values), fmt)} - {format(max(values), fmt)})"


def rate_rows(results: dict[float, list[Measurement]]) -> list[str]:
    lines = [
        "| --rate | rows | achieved / --rate (arrivals) | summary achievedRequestsPerSecond "
        "| most in 1 s | CPU µs/row (whole process) | background cores | rounds |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for rate, runs in sorted(results.items()):
        lines.append(
            f"| {rate:g}/s | {runs[0].rows:,} | {spread([m.achieved * 100 for m in runs], '.1f')} % "
            f"| {spread([float(m.summary['achievedRequestsPerSecond']) for m in runs], '.1f')} "
            f"| {spread([max_in_window(m.arrivals, 1.0) for m in runs], '.0f')} "
            f"| {spread([m.cpu_per_row_us for m in runs], '.0f')} "
            f"| {spread([m.background for m in runs], '.2f')} | {len(runs)} |")
    return lines


def minute_rows(runs: list[Measurement]) -> list[str]:
    lines = [
        "| scenario | throttled (sandbox) | throttled (summary) | most in any 60 s "
        "| achieved / --rate | rounds |",
        "|---|---|---|---|---|---|",
    ]
    lines.append(
        f"| `--rate {MINUTE_RATE}` vs 1,200 per clock minute, {MINUTE_ROWS:,} rows "
        f"| {spread([m.quota_throttled for m in runs], '.0f')} "
        f"| {spread([float(m.summary['throttled']) for m in runs], '.0f')} "
        f"| {spread([max_in_window(m.arrivals, 60.0) for m in runs], '.0f')} "
        f"| {spread([m.achieved * 100 for m in runs], '.1f')} % | {len(runs)} |")
    return lines


def auto_figures(m: Measurement) -> tuple[float, float, float]:
    """Seconds until every later 5-s window admits >= 90 % of the limit, the admitted rate
    over the last 20 s as a share of the limit, and the throttled share of all answers."""
    admitted = sorted(t for t, status in m.log if status != 429)
    start, end = m.arrivals[0], m.arrivals[-1]
    converged = end - start
    t = end - 5.0
    while t >= start and sum(t <= a < t + 5 for a in admitted) >= 0.9 * AUTO_LIMIT * 5:
        converged = t - start
        t -= 1.0
    last = sum(a >= end - 20 for a in admitted) / 20 / AUTO_LIMIT
    return converged, last, m.quota_throttled / len(m.arrivals)


def auto_rows(runs: list[Measurement]) -> list[str]:
    figures = [auto_figures(m) for m in runs]
    discovered = [m.summary.get("discoveredRate") for m in runs]
    shown = ", ".join(f"{d:g}" for d in discovered if isinstance(d, (int, float))) or "-"
    return [
        "| scenario | converged after | admitted over the last 20 s / limit | throttled share "
        "| summary discoveredRate | rounds |",
        "|---|---|---|---|---|---|",
        f"| `--rate auto` vs a {AUTO_LIMIT}/s token bucket, 30 ms, {AUTO_ROWS:,} rows "
        f"| {spread([f[0] for f in figures], '.0f')} s "
        f"| {spread([f[1] * 100 for f in figures], '.1f')} % "
        f"| {spread([f[2] * 100 for f in figures], '.2f')} % | {shown} | {len(runs)} |",
    ]


def event_loop_name() -> str:
    try:
        import uvloop
    except ImportError:
        return "asyncio"
    return f"uvloop {uvloop.__version__}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="100,500,1000,2000",
                        help="requests per second to measure, comma-separated (default: %(default)s)")
    parser.add_argument("--seconds", type=float, default=20.0,
                        help="rows per run = this times the rate (at least 1,000) (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (default: %(default)s)")
    parser.add_argument("--no-minute", action="store_true",
                        help="skip the 75-second per-minute quota check")
    parser.add_argument("--no-auto", action="store_true",
                        help="skip the 45-second --rate auto check")
    parser.add_argument("--client-args", default="", metavar="ARGS",
                        help="more flags for every `bulkrevoke run`, e.g. \"--concurrency 16\"")
    parser.add_argument("--write", metavar="FILE", help="also write the tables to FILE (Markdown)")
    args = parser.parse_args(argv)
    rates = [float(r) for r in args.rates.split(",") if r.strip()]
    client_args = shlex.split(args.client_args)
    pin = (os.cpu_count() or 1) >= 2 and shutil.which("taskset") is not None
    env = {k: v for k, v in os.environ.items() if not k.startswith("BULKREVOKE_")}
    env.update(BULKREVOKE_USERNAME=USERNAME, BULKREVOKE_PASSWORD=PASSWORD)
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    results: dict[float, list[Measurement]] = {rate: [] for rate in rates}
    minute: list[Measurement] = []
    auto: list[Measurement] = []
    with tempfile.TemporaryDirectory(prefix="bulkrevoke-pace-") as tmp:
        work = Path(tmp)
        for round_number in range(1, args.rounds + 1):
            for rate in rates:
                rows = max(1000, round(rate * args.seconds))
                m = measure(f"{rate:g}/s", rate, rows, [], work, env, pin, client_args)
                results[rate].append(m)
                print(f"round {round_number} {rate:g}/s: {m.achieved:.1%} of --rate, "
                      f"{m.cpu_per_row_us:.0f} µs/row, most in 1 s {max_in_window(m.arrivals, 1.0)}, "
                      f"answers {m.statuses}, background {m.background:.2f}", flush=True)
            if not args.no_minute:
                limit = ["--rate-limit", "1200", "--rate-window", "60", "--rate-limit-kind", "fixed"]
                m = measure(MINUTE_RATE, 20.0, MINUTE_ROWS, limit, work, env, pin, client_args)
                minute.append(m)
                print(f"round {round_number} {MINUTE_RATE} vs 1,200/clock minute: "
                      f"{m.quota_throttled} throttled, answers {m.statuses}", flush=True)
            if not args.no_auto:
                # per_second: the slowest the run may go, for its timeout.
                m = measure("auto", 20.0, AUTO_ROWS, AUTO_SANDBOX, work, env, pin, client_args)
                auto.append(m)
                converged, last, throttled = auto_figures(m)
                print(f"round {round_number} auto vs {AUTO_LIMIT}/s bucket: converged after "
                      f"{converged:.0f} s, last 20 s {last:.1%}, throttled {throttled:.2%}",
                      flush=True)
    lines = [f"Measured {started} by `python benchmarks/pace.py"
             f"{' ' + ' '.join(sys.argv[1:]) if sys.argv[1:] else ''}`; {os.cpu_count()} cores, "
             f"{'sandbox on core 0, CLI on core 1' if pin else 'no CPU pinning'}, "
             f"Python {sys.version.split()[0]}, event loop {event_loop_name()}.", "",
             *rate_rows(results)]
    if minute:
        lines += ["", *minute_rows(minute)]
    if auto:
        lines += ["", *auto_rows(auto)]
    text = "\n".join(lines) + "\n"
    print("\n" + text)
    if args.write:
        Path(args.write).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
