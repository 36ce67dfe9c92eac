"""Scale: ``bulkrevoke run FILE --dry-run`` on 100,000 rows and (full mode) 10,000,000 rows:
whole-process rows/s (ingest, validation, ledger, report; ≥ 200,000) and peak RSS (≤ 150 MB
at 10 M and ≤ 1.25 × the 100,000-row peak)."""

from __future__ import annotations

import time
from pathlib import Path

from benchmarks.bench import Bench, checked_run
from benchmarks.harness import Proc, log
from benchmarks.inputs import generate_csv
from benchmarks.report import at_least, at_most

PART = "scale (dry run)"
SMALL, BIG = 100_000, 10_000_000


def dry_run(bench: Bench, data: Path, rows: int, timeout: float) -> Proc:
    cmd = bench.run_cmd(data, None, bench.out_dir("scale"), ["--dry-run"])
    return checked_run(bench, cmd, bench.out_dir("scale"), rows=rows, status="would_revoke", timeout=timeout)[
        0
    ]


def run(bench: Bench) -> None:
    figure = bench.report.figure
    small_rate = figure(PART, "100,000 rows: rows/s (whole process)", "rows/s", target=at_least(200_000))
    small_rss = figure(PART, "100,000 rows: peak RSS", "MB", digits=1)
    data = bench.csv(SMALL)
    rounds = bench.settings.rounds_for(5, 3)
    for number in range(1, rounds + 1):
        log(f"scale 100k round {number}/{rounds}")
        proc = bench.harness.attempt(f"scale 100k round {number}", lambda: dry_run(bench, data, SMALL, 300))
        if proc:
            small_rate.add(SMALL / proc.wall)
            small_rss.add(proc.maxrss_mb)
    if not bench.settings.quick:
        _big(bench, small_rss.median)


def _big(bench: Bench, small_rss: float | None) -> None:
    figure = bench.report.figure
    big_rate = figure(PART, "10,000,000 rows: rows/s (whole process)", "rows/s", target=at_least(200_000))
    big_rss = figure(PART, "10,000,000 rows: peak RSS", "MB", target=at_most(150), digits=1)
    ratio = figure(PART, "peak RSS 10 M / 100,000", "×", target=at_most(1.25), digits=2)
    big = bench.settings.work / "scale-10m.csv"
    try:
        log("generating the 10,000,000-row input")
        started = time.perf_counter()
        generate_csv(big, BIG)
        log(f"  written in {time.perf_counter() - started:.1f}s ({big.stat().st_size / 1e6:,.0f} MB)")
        proc = bench.harness.attempt("scale 10M", lambda: dry_run(bench, big, BIG, 1800))
        if proc:
            big_rate.add(BIG / proc.wall)
            big_rss.add(proc.maxrss_mb)
            if small_rss:
                ratio.add(proc.maxrss_mb / small_rss)
            bench.report.section("Scale, details").append(
                f"- 10 M dry run: wall {proc.wall:.1f}s, CPU {proc.cpu:.1f}s (user {proc.user:.1f}s, "
                f"sys {proc.sys:.1f}s), peak RSS {proc.maxrss_mb:.1f} MB"
            )
    finally:
        big.unlink(missing_ok=True)
