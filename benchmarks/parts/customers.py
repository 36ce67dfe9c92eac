"""Customers: a fraud export's shape, 3,000 rows of 50 customers with 60 badges each, sorted
by customer, at ``--rate 300/s`` (default flags otherwise) against a sandbox with 30 ms of
latency that answers 521 when two requests for one customer overlap (as Capillary does).

Targets: no overlap at all (the sandbox's ``busy_overlap`` is zero), and the achieved rate
(sandbox arrivals, first to last) ≥ 90 % of 300/s (goal 97 %): with one request per customer
in flight, the client has to look past each customer's run of rows to keep the pace.
"""

from __future__ import annotations

from benchmarks.bench import Bench, sandbox_round
from benchmarks.inputs import generate_grouped_csv
from benchmarks.report import at_least, at_most

CUSTOMERS, PER_CUSTOMER, RATE, LATENCY = 50, 60, 300, 0.03
ROWS = CUSTOMERS * PER_CUSTOMER
PART = f"customers: {CUSTOMERS} × {PER_CUSTOMER} badges, {RATE}/s, {LATENCY * 1000:g} ms"
INTRO = (
    f"`bulkrevoke run customers.csv --rate {RATE}/s` (default flags otherwise) against "
    f"`bulkrevoke sandbox --latency {LATENCY:g}` (busy-on-overlap on)."
)


def run(bench: Bench) -> None:
    figure = bench.report.figure
    overlap = figure(PART, "521s for overlapping requests (busy_overlap)", "req", target=at_most(0))
    achieved = figure(PART, f"achieved / --rate {RATE}/s (arrivals)", "%", target=at_least(90, 97), digits=1)
    cpu = figure(PART, "CPU per row (whole process)", "µs/row")
    data = generate_grouped_csv(bench.settings.work / "customers.csv", CUSTOMERS, PER_CUSTOMER)
    for number in bench.rounds():
        got = sandbox_round(
            bench,
            "customers",
            number,
            data,
            ROWS,
            ["--rate", f"{RATE}/s"],
            sandbox_flags=["--latency", f"{LATENCY:g}"],
            timeout=ROWS / RATE * 6 + 60,
            exact=False,
        )
        if got:
            overlap.add(got.truth["busy_overlap"])
            achieved.add(got.rate / RATE * 100)
            cpu.add(got.cpu_per_row_us)
            bench.report.section("Customers, per round", INTRO).append(
                f"- round {number}: {got.describe()}, busy_overlap {got.truth['busy_overlap']}"
            )
