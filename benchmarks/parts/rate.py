"""Rate fidelity at low rates, from the sandbox's arrival times.

``--rate 200/s --concurrency 16`` over 4,000 rows: the most requests in any 1-s window
(≤ 201), the achieved rate (≥ 99 % of 200/s) and the first second's count (no start-up
burst). Full mode also runs ``--rate 100/min`` over 300 rows (3 minutes): ≤ 2 in any 1 s,
≤ 101 in any 60 s, ≥ 99/min.
"""

from __future__ import annotations

import itertools
import statistics

from benchmarks.bench import Bench, sandbox_round
from benchmarks.inputs import max_in_window
from benchmarks.report import at_least, at_most

SECTION = "Rate fidelity at low rates, details"
INTRO = "Arrival times from the sandbox's `/_sandbox/truth` request log."


def per_second_and_minute(bench: Bench) -> None:
    per_second(bench)
    if not bench.settings.quick:
        per_minute(bench)


def per_second(bench: Bench) -> None:
    rows, rate = 4_000, 200
    part = "rate 200/s"
    figure = bench.report.figure
    max1s = figure(part, "most requests in any 1-s window", "req", target=at_most(rate + 1))
    achieved = figure(part, "achieved rate (arrivals)", "req/s", target=at_least(rate * 0.99), digits=1)
    first = figure(part, "requests in the first second", "req", target=at_most(rate + 1))
    summary = figure(part, "summary.json achievedRequestsPerSecond", "req/s", digits=1)
    data = bench.csv(rows)
    for number in bench.rounds():
        got = sandbox_round(
            bench,
            "rate 200/s",
            number,
            data,
            rows,
            ["--rate", f"{rate}/s", "--concurrency", "16"],
            timeout=180,
        )
        if not got:
            continue
        times = got.arrivals
        max1s.add(max_in_window(times, 1.0))
        achieved.add(got.rate)
        first.add(sum(1 for t in times if t - times[0] < 1.0))
        summary.add(got.summary.get("achievedRequestsPerSecond", 0.0))
        gaps = sorted(b - a for a, b in itertools.pairwise(times))
        bench.report.section(SECTION, INTRO).append(
            f"- 200/s round {number}: {len(times)} requests over {times[-1] - times[0]:.2f}s, "
            f"answers {dict(got.statuses)}; gaps median {statistics.median(gaps) * 1000:.2f} ms, "
            f"p99 {gaps[int(len(gaps) * 0.99)] * 1000:.2f} ms (ideal 5.00 ms); "
            f"background load {got.proc.background:.2f} cores"
        )


def per_minute(bench: Bench) -> None:
    rows = 300
    part = "rate 100/min"
    figure = bench.report.figure
    first = figure(part, "requests in the first second", "req", target=at_most(2))
    max1s = figure(part, "most requests in any 1-s window", "req", target=at_most(2))
    max60s = figure(part, "most requests in any 60-s window", "req", target=at_most(101))
    achieved = figure(part, "achieved rate (arrivals)", "req/min", target=at_least(99), digits=1)
    got = sandbox_round(
        bench,
        "rate 100/min",
        1,
        bench.csv(rows),
        rows,
        ["--rate", "100/min", "--concurrency", "16"],
        timeout=420,
    )
    if got:
        times = got.arrivals
        first.add(sum(1 for t in times if t - times[0] < 1.0))
        max1s.add(max_in_window(times, 1.0))
        max60s.add(max_in_window(times, 60.0))
        achieved.add(got.rate * 60)
        gaps = [b - a for a, b in itertools.pairwise(times)]
        bench.report.section(SECTION, INTRO).append(
            f"- 100/min: {len(times)} requests over {times[-1] - times[0]:.1f}s, answers "
            f"{dict(got.statuses)}; gaps min {min(gaps):.3f}s, median "
            f"{statistics.median(gaps):.3f}s, max {max(gaps):.3f}s (ideal 0.600s)"
        )
