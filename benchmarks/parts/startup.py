"""Start-up: ``bulkrevoke --help`` wall time (target ≤ 0.3 s), and spawn → first request
arriving at the sandbox on a 20,000-row input (a reference)."""

from __future__ import annotations

from benchmarks.bench import Bench, sandbox_round
from benchmarks.harness import BenchError, Proc
from benchmarks.report import at_most
from benchmarks.settings import CLIENT_CPU

PART = "start-up"
HELP_RUNS = 10
ROWS = 20_000


def run(bench: Bench) -> None:
    help_time = bench.report.figure(PART, "`bulkrevoke --help` wall time", "s", target=at_most(0.3), digits=3)
    for _ in range(HELP_RUNS):
        proc = bench.harness.attempt("--help", lambda: _help_once(bench))
        if proc:
            help_time.add(proc.wall)
    first = bench.report.figure(PART, f"spawn → first request at the sandbox ({ROWS:,} rows)", "s", digits=3)
    data = bench.csv(ROWS)
    for number in bench.rounds():
        got = sandbox_round(
            bench,
            "first request",
            number,
            data,
            ROWS,
            ["--rate", "unlimited", "--concurrency", "64"],
            timeout=300,
        )
        if got:
            first.add(got.arrivals[0] - got.proc.spawn_mono)


def _help_once(bench: Bench) -> Proc:
    proc = bench.harness.run(
        bench.harness.pinned([*bench.harness.bulkrevoke, "--help"], CLIENT_CPU), timeout=60
    )
    if proc.rc != 0:
        raise BenchError(f"--help exit {proc.rc}: {proc.tail()}")
    return proc
