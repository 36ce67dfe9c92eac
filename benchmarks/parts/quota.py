"""Quotas: two parts against a rate-limited sandbox.

- ``minute``: ``--rate 1200/min`` over 1,500 rows against 1,200 requests per clock minute
  (``--rate-limit 1200 --rate-window 60 --rate-limit-kind fixed``): a limiter at exactly
  the quota must cross the minute boundaries without a single 429 (target: zero throttled).
- ``auto``: ``--rate auto`` over 6,000 rows against a 150/s token bucket (30 ms latency, 429s
  without Retry-After): the time until every 5-s window of admitted requests holds ≥ 90 % of
  the limit (≤ 30 s), the admitted rate over the last 20 s (≥ 90 % of the limit) and the
  throttled share of all requests (≤ 2 %).
"""

from __future__ import annotations

from benchmarks.bench import Bench, SandboxRun, sandbox_round
from benchmarks.inputs import max_in_window
from benchmarks.report import at_least, at_most

MINUTE_RATE, MINUTE_ROWS = 1200, 1500
MINUTE_FLAGS = ["--rate-limit", str(MINUTE_RATE), "--rate-window", "60", "--rate-limit-kind", "fixed"]
AUTO_LIMIT, AUTO_ROWS = 150, 6000
AUTO_FLAGS = [
    "--rate-limit",
    str(AUTO_LIMIT),
    "--rate-limit-kind",
    "bucket",
    "--no-limit-retry-after",
    "--latency",
    "0.03",
]
SECTION = "Quotas, per run"


def run_minute(bench: Bench) -> None:
    part = f"minute: --rate {MINUTE_RATE}/min vs {MINUTE_RATE}/clock minute"
    figure = bench.report.figure
    throttled = figure(part, "throttled (sandbox quota_throttled)", "req", target=at_most(0))
    most = figure(part, "most requests in any sliding 60 s", "req")
    achieved = figure(part, "achieved / --rate (arrivals)", "%", digits=1)
    data = bench.csv(MINUTE_ROWS)
    for number in bench.rounds():
        got = sandbox_round(
            bench,
            "minute",
            number,
            data,
            MINUTE_ROWS,
            ["--rate", f"{MINUTE_RATE}/min"],
            sandbox_flags=MINUTE_FLAGS,
            timeout=MINUTE_ROWS / MINUTE_RATE * 60 * 3 + 60,
            exact=False,
        )
        if got:
            throttled.add(got.truth["quota_throttled"])
            most.add(max_in_window(got.arrivals, 60.0))
            achieved.add(got.rate * 60 / MINUTE_RATE * 100)
            bench.report.section(SECTION).append(f"- minute, round {number}: {got.describe()}")


def auto_figures(got: SandboxRun) -> tuple[float, float, float]:
    """Seconds until every later 5-s window admits ≥ 90 % of the limit, the admitted rate
    over the last 20 s as a share of the limit, and the throttled share of all requests."""
    admitted = sorted(float(t) for t, status in got.truth["request_log"] if status != 429)
    start, end = got.arrivals[0], got.arrivals[-1]
    converged = end - start
    t = end - 5.0
    while t >= start and sum(t <= a < t + 5 for a in admitted) >= 0.9 * AUTO_LIMIT * 5:
        converged = t - start
        t -= 1.0
    last = sum(a >= end - 20 for a in admitted) / 20 / AUTO_LIMIT
    return converged, last, got.truth["quota_throttled"] / len(got.arrivals)


def run_auto(bench: Bench) -> None:
    part = f"auto: --rate auto vs a {AUTO_LIMIT}/s bucket"
    figure = bench.report.figure
    converged = figure(part, "converged after", "s", target=at_most(30))
    last = figure(part, "admitted over the last 20 s / limit", "%", target=at_least(90), digits=1)
    throttled = figure(part, "throttled share", "%", target=at_most(2), digits=2)
    data = bench.csv(AUTO_ROWS)
    for number in bench.rounds():
        # The slowest the run may go for its timeout: 20/s.
        got = sandbox_round(
            bench,
            "auto",
            number,
            data,
            AUTO_ROWS,
            ["--rate", "auto"],
            sandbox_flags=AUTO_FLAGS,
            timeout=AUTO_ROWS / 20 * 3 + 60,
            exact=False,
        )
        if got:
            seconds, share, throttled_share = auto_figures(got)
            converged.add(seconds)
            last.add(share * 100)
            throttled.add(throttled_share * 100)
            bench.report.section(SECTION).append(
                f"- auto, round {number}: {got.describe()}, discovered rate "
                f"{got.summary.get('discoveredRate')}"
            )
