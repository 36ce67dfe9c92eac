#!/usr/bin/env python3
"""bulkrevoke benchmarks: one command, one table, one RESULTS.md.

    python benchmarks/run.py                        # every part (about 30 minutes)
    python benchmarks/run.py --quick                # fewer rounds, no 10 M rows, no 100/min
    python benchmarks/run.py --parts pace,customers # some parts

Run it with the Python that has bulkrevoke installed (the CLI is the ``bulkrevoke`` script
beside that interpreter). benchmarks/README.md says what each part measures and its
targets. Scratch files live in benchmarks/work/ (git-ignored); every process started here
is stopped at the end, also on failure or on SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

if not __package__:  # run as a script: make the ``benchmarks`` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.bench import Bench, checked_run
from benchmarks.harness import Harness, log
from benchmarks.machine import machine_info, package_snapshot
from benchmarks.parts import BY_NAME, PARTS, Part
from benchmarks.report import Report, print_table, results_markdown
from benchmarks.servers import FixedServer
from benchmarks.settings import HERE, SERVER_CPU, Settings


def numbers(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give numbers separated by commas") from None
    if not values or min(values) <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: give positive numbers")
    return values


def parse_args(argv: Sequence[str]) -> Settings:
    parser = argparse.ArgumentParser(description="bulkrevoke benchmarks (see benchmarks/README.md)")
    names = ",".join(p.name for p in PARTS)
    parser.add_argument("--parts", default=names, help=f"comma-separated parts (default: {names})")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="fewer rounds and shorter runs; no 10 M-row dry run, no 100/min run",
    )
    parser.add_argument("--rounds", type=int, help="rounds of every part (default: each part's own)")
    parser.add_argument(
        "--retry-wait",
        type=float,
        help="seconds before the one retry of a failed measurement (default 60, quick 10)",
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        help="before each measured run, wait up to this many seconds for other "
        "processes to leave the machine idle (default 30, quick 15; 0: don't)",
    )
    parser.add_argument(
        "--pace-rates",
        type=numbers,
        default=Settings.pace_rates,
        metavar="R,R",
        help="the pace part's rates per second (default: 100,500,1000,2000)",
    )
    parser.add_argument(
        "--latencies",
        type=numbers,
        default=(20.0, 250.0, 500.0),
        metavar="MS,MS",
        help="the latency part's sandbox latencies in ms (default: 20,250,500)",
    )
    parser.add_argument(
        "--results",
        type=Path,
        default=HERE / "RESULTS.md",
        metavar="FILE",
        help="where to write the results (default: benchmarks/RESULTS.md)",
    )
    parser.add_argument("--no-results", action="store_true", help="print the table only")
    args = parser.parse_args(argv)
    parts = tuple(name.strip() for name in args.parts.split(",") if name.strip())
    if unknown := sorted(set(parts) - set(BY_NAME)):
        parser.error(f"unknown part(s): {', '.join(unknown)} (known: {names})")
    quick = args.quick
    return Settings(
        parts=parts,
        quick=quick,
        rounds=args.rounds,
        retry_wait=args.retry_wait if args.retry_wait is not None else (10.0 if quick else 60.0),
        quiet_wait=args.quiet_wait if args.quiet_wait is not None else (15.0 if quick else 30.0),
        pace_rates=args.pace_rates,
        latencies=tuple(ms / 1000 for ms in args.latencies),
        results=None if args.no_results else args.results,
    )


def run_parts(bench: Bench, parts: list[Part]) -> None:
    """Run *parts* in order; the fixed-response server is up exactly while they need it."""
    server = FixedServer(bench.harness)
    try:
        for part in parts:
            if part.fixed_server and not server.proc:
                try:
                    bench.fixed_url = server.start()
                    bench.report.info["fixed server"] = server.label
                    log(f"fixed server: {server.label} at {bench.fixed_url}")
                except Exception as exc:
                    bench.report.note(f"no fixed-response server could be started: {exc}")
            elif not part.fixed_server and server.proc:
                server.stop()
                bench.fixed_url = None
            bench.harness.part = part.name
            log(f"== {part.name}")
            part.run(bench)
    finally:
        server.stop()


def warm_up(bench: Bench) -> None:
    """A dry run first: compiles the package's bytecode, fills the page cache."""
    data, out = bench.csv(1_000), bench.out_dir("warm-up")
    bench.harness.attempt(
        "warm-up dry run",
        lambda: checked_run(
            bench,
            bench.run_cmd(data, None, out, ["--dry-run"]),
            out,
            rows=1_000,
            status="would_revoke",
            timeout=120,
        ),
    )


def on_signal(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    settings = parse_args(argv)
    settings.work.mkdir(exist_ok=True)
    report = Report()
    harness = Harness(settings, report.note)
    bench = Bench(settings, harness, report)
    if harness.pinning:  # this process is mostly idle; the client's core stays the client's
        os.sched_setaffinity(0, {SERVER_CPU})
    else:
        report.note("no CPU pinning: fewer than 2 cores or taskset missing")
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    started, snapshot = time.perf_counter(), package_snapshot()
    report.info = machine_info(quick=settings.quick, pinning=harness.pinning, snapshot=snapshot)
    status = 0
    try:
        log(f"bulkrevoke: {' '.join(harness.bulkrevoke)}; work dir {settings.work}")
        warm_up(bench)
        run_parts(bench, [part for part in PARTS if part.name in settings.parts])
    except KeyboardInterrupt as exc:
        report.note(f"benchmark interrupted ({exc or 'SIGINT'}); figures are partial")
        status = 130
    finally:
        harness.cleanup()
        for leftover in settings.work.glob("*.csv"):
            if leftover.stat().st_size > 10_000_000:
                leftover.unlink(missing_ok=True)
        if (end := package_snapshot()) != snapshot:
            report.info["bulkrevoke"] += f" → at the end: {end}"
            report.note(
                "the package's sources changed while the benchmarks ran: later parts "
                "measured newer code than earlier ones"
            )
        print_table(report)
        if settings.results is not None:
            command = shlex.join(["python", "benchmarks/run.py", *argv])
            settings.results.write_text(
                results_markdown(
                    report,
                    command=command,
                    minutes=(time.perf_counter() - started) / 60,
                    background=dict(harness.background),
                    busy_cores=settings.busy_cores,
                    quiet_wait=settings.quiet_wait,
                )
            )
            log(f"wrote {settings.results}")
    return status


if __name__ == "__main__":
    sys.exit(main())
