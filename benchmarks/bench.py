"""What a part is handed (``Bench``: the settings, the harness, the report) and the measured
``bulkrevoke run`` it calls, against any server or against a fresh sandbox.

A run is the real CLI as a user types it, ``bulkrevoke run INPUT --host URL --no-progress
-q --out DIR …`` on the client core. Its summary.json is read and its counts checked;
against the sandbox, the sandbox's ground truth comes back with it.
"""

from __future__ import annotations

import collections
import functools
import json
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from benchmarks.harness import BenchError, Harness, Proc, log
from benchmarks.inputs import generate_csv, rate_over_run
from benchmarks.report import Report
from benchmarks.servers import sandbox
from benchmarks.settings import CLIENT_CPU, Settings


@dataclass
class Bench:
    settings: Settings
    harness: Harness
    report: Report
    fixed_url: str | None = None  # the fixed-response server, while one runs

    def csv(self, rows: int) -> Path:
        """A generated input of *rows* rows, one customer each (reused across parts)."""
        return generate_csv(self.settings.work / f"rows-{rows}.csv", rows)

    def out_dir(self, label: str) -> Path:
        return self.settings.work / (re.sub(r"[^A-Za-z0-9]+", "-", label).strip("-") + "-run")

    def rounds(self, full: int = 3, quick: int = 1) -> range:
        """Round numbers, from 1: ``--rounds`` when given, else *full* or *quick*."""
        return range(1, self.settings.rounds_for(full, quick) + 1)

    def run_cmd(self, data: Path, host: str | None, out: Path, args: Sequence[str]) -> list[str]:
        """The ``bulkrevoke run`` command line, pinned to the client core."""
        where = ["--host", host] if host else []
        return self.harness.pinned(
            [
                *self.harness.bulkrevoke,
                "run",
                str(data),
                *where,
                "--no-progress",
                "-q",
                "--out",
                str(out),
                *args,
            ],
            CLIENT_CPU,
        )


def summary_of(out: Path) -> dict[str, Any]:
    try:
        summary: dict[str, Any] = json.loads((out / "summary.json").read_text())
    except (OSError, ValueError) as exc:
        raise BenchError(f"no readable summary.json in {out}: {exc}") from None
    return summary


def checked_run(
    bench: Bench, cmd: list[str], out: Path, *, rows: int, status: str, timeout: float
) -> tuple[Proc, dict[str, Any]]:
    """Run *cmd*; it must exit 0 with all *rows* in *status*. The run directory is removed."""
    shutil.rmtree(out, ignore_errors=True)
    try:
        proc = bench.harness.run(cmd, timeout=timeout)
        if proc.rc != 0:
            raise BenchError(f"exit {proc.rc} (expected 0): {proc.tail()}")
        summary = summary_of(out)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    got = summary.get("counts", {}).get(status)
    if summary.get("rows") != rows or got != rows:
        raise BenchError(
            f"summary says rows={summary.get('rows')}, {status}={got}; "
            f"expected {rows} (counts {summary.get('counts')})"
        )
    return proc, summary


@dataclass
class SandboxRun:
    """One CLI run against a sandbox: the process, its summary and the sandbox's truth."""

    proc: Proc
    summary: dict[str, Any]
    truth: dict[str, Any]
    rows: int
    statuses: collections.Counter[int] = field(init=False)

    def __post_init__(self) -> None:
        self.statuses = collections.Counter(int(status) for _, status in self.truth["request_log"])

    @cached_property
    def arrivals(self) -> list[float]:
        return sorted(float(t) for t, _ in self.truth["request_log"])

    @property
    def rate(self) -> float:
        """Requests per second at the sandbox, first arrival to last."""
        return rate_over_run(self.arrivals)

    @property
    def cpu_per_row_us(self) -> float:
        return self.proc.cpu / self.rows * 1e6

    def describe(self) -> str:
        """One line of details: requests and answers, pace, what the summary says, cost."""
        summary = self.summary
        counts = {k: v for k, v in summary.get("counts", {}).items() if v}
        return (
            f"{self.rows:,} rows, {len(self.arrivals):,} requests, answers "
            f"{dict(self.statuses)}, quota throttled {self.truth.get('quota_throttled')}; "
            f"{self.rate:,.1f} req/s first to last (summary "
            f"{summary.get('achievedRequestsPerSecond')}); largest concurrency "
            f"{summary.get('largestConcurrency')}, median latency "
            f"{summary.get('medianLatencyMs')} ms; rows {counts}; wall {self.proc.wall:.1f} s, "
            f"{self.cpu_per_row_us:,.0f} µs/row; background {self.proc.background:.2f} cores"
        )


def sandbox_run(
    bench: Bench,
    label: str,
    data: Path,
    rows: int,
    args: Sequence[str],
    *,
    sandbox_flags: Sequence[str] = (),
    timeout: float,
    exact: bool = True,
) -> SandboxRun:
    """Run the CLI over *data* against a fresh sandbox started with *sandbox_flags*.

    ``exact``: exit 0, every row revoked, one request per row. Otherwise (a quota that
    answers 429s) exit 0 or 1 with the summary counting every row."""
    out = bench.out_dir(label)
    shutil.rmtree(out, ignore_errors=True)
    with sandbox(bench.harness, sandbox_flags) as box:
        cmd = bench.run_cmd(data, box.url, out, args)
        try:
            proc = bench.harness.run(cmd, timeout=timeout)
            summary = summary_of(out) if proc.rc in (0, 1) else {}
        finally:
            shutil.rmtree(out, ignore_errors=True)
        truth = box.truth()
    run = SandboxRun(proc, summary, truth, rows)
    revoked = summary.get("counts", {}).get("revoked")
    if proc.rc not in ((0,) if exact else (0, 1)) or summary.get("rows") != rows:
        raise BenchError(f"exit {proc.rc}, summary rows {summary.get('rows')} of {rows}: {proc.tail()}")
    if exact and (revoked != rows or len(run.arrivals) != rows):
        raise BenchError(
            f"{revoked} of {rows} rows revoked with {len(run.arrivals)} requests "
            f"(answers {dict(run.statuses)})"
        )
    return run


def sandbox_round(
    bench: Bench, label: str, number: int, data: Path, rows: int, args: Sequence[str], **options: Any
) -> SandboxRun | None:
    """Round *number* of *label*: ``sandbox_run`` logged, a failure noted and retried once
    (None when both attempts failed)."""
    log(f"{label}, round {number}")
    measure = functools.partial(sandbox_run, bench, label, data, rows, args, **options)
    return bench.harness.attempt(f"{label}, round {number}", measure)
