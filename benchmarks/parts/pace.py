"""Pace: how closely the real CLI keeps to ``--rate`` from 100 to 2,000/s, and at what CPU.

Each run sends 20 × R rows (quick: 10 × R; at least 1,000), one customer each, with the
default flags but ``--rate R/s``, to a zero-latency sandbox. Targets: achieved (sandbox
arrivals, first to last) ≥ 99 % of ``--rate`` at every rate; no 1-s window above R + 1 %;
whole-process CPU per row (user + sys from wait4: start-up, ingest, send, report) at
1,000/s ≤ 300 µs (goal 250).
"""

from __future__ import annotations

import math

from benchmarks.bench import Bench, sandbox_round
from benchmarks.inputs import max_in_window
from benchmarks.report import Figure, at_least, at_most

CPU_RATE, CPU_TARGET, CPU_GOAL = 1000.0, 300.0, 250.0
INTRO = (
    "`bulkrevoke run … --rate R/s` with the default flags against a zero-latency "
    "`bulkrevoke sandbox` process. Achieved: sandbox arrivals, (n − 1) / (last − first)."
)


def run(bench: Bench) -> None:
    seconds = 10.0 if bench.settings.quick else 20.0
    figures = {rate: _figures(bench, rate) for rate in bench.settings.pace_rates}
    for number in bench.rounds():  # rounds outside rates: a busy spell spreads over all rates
        for rate, (achieved, window, cpu) in figures.items():
            rows = max(1000, round(rate * seconds))
            got = sandbox_round(
                bench,
                f"pace {rate:g}/s",
                number,
                bench.csv(rows),
                rows,
                ["--rate", f"{rate:g}/s"],
                timeout=rows / rate * 3 + 60,
            )
            if got:
                achieved.add(got.rate / rate * 100)
                window.add(max_in_window(got.arrivals, 1.0))
                cpu.add(got.cpu_per_row_us)
                bench.report.section("Pace, per run", INTRO).append(
                    f"- {rate:g}/s, round {number}: {got.describe()}; most in 1 s "
                    f"{max_in_window(got.arrivals, 1.0)}"
                )


def _figures(bench: Bench, rate: float) -> tuple[Figure, Figure, Figure]:
    part = f"pace {rate:g}/s"
    figure = bench.report.figure
    return (
        figure(part, "achieved / --rate (arrivals)", "%", target=at_least(99), digits=1),
        figure(part, "most requests in any 1-s window", "req", target=at_most(math.floor(rate * 1.01))),
        figure(
            part,
            "CPU per row (whole process)",
            "µs/row",
            target=at_most(CPU_TARGET, CPU_GOAL) if rate == CPU_RATE else None,
        ),
    )
