"""Overhead, a reference: bulkrevoke at ``--rate unlimited --concurrency 64`` on 20,000 rows
against the fixed-response server, interleaved with ``baseline_client.py`` (a bare aiohttp
loop), alternating which goes first. No target: a real run is paced by the API key's quota,
and CPU per row at a given rate is the pace part's figure."""

from __future__ import annotations

import json
import statistics
import sys
from typing import Any

from benchmarks.bench import Bench, checked_run
from benchmarks.harness import BenchError, Proc, log
from benchmarks.report import Figure
from benchmarks.settings import CLIENT_CPU, HERE

PART = "overhead (reference)"
ROWS = 20_000
WORKERS = 64
INTRO = (
    "Whole-process wall time from spawn to exit of `bulkrevoke run … --rate unlimited "
    "--concurrency 64 --no-progress -q --out DIR` (20,000 valid rows, report written) and of "
    "`baseline_client.py` (64 workers, no limiter), interleaved, alternating which goes first. "
    "Send rows/s: bulkrevoke's summary.json `requestsSent / sendSeconds`; the baseline's own "
    "timer around its worker pool. CPU: user+sys of the process (wait4)."
)
HEADER = [
    "| round | order | bulkrevoke wall s | bulkrevoke rows/s | bulkrevoke send rows/s "
    "| bulkrevoke CPU µs/row | baseline wall s | baseline rows/s | baseline send rows/s "
    "| baseline CPU µs/row | ratio | background load (cores) |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|",
]
# (name, unit, digits), in the order of the figures table.
FIGURES = [
    ("bulkrevoke whole-process rows/s", "rows/s", 0),
    ("bulkrevoke send-phase rows/s", "rows/s", 0),
    ("bulkrevoke time outside the send phase", "s", 2),
    ("bulkrevoke CPU per row (whole process)", "µs/row", 0),
    ("bulkrevoke peak RSS", "MB", 0),
    ("baseline whole-process rows/s", "rows/s", 0),
    ("baseline send-phase rows/s", "rows/s", 0),
    ("baseline CPU per row (whole process)", "µs/row", 0),
    ("ratio bulkrevoke / baseline (whole-process rows/s)", "×", 3),
]


def baseline_once(bench: Bench, data: str, url: str, workers: int) -> tuple[Proc, dict[str, Any]]:
    """One run of the bare aiohttp loop; its own JSON result line."""
    cmd = bench.harness.pinned(
        [
            sys.executable,
            str(HERE / "baseline_client.py"),
            data,
            "--host",
            url,
            "--concurrency",
            str(workers),
        ],
        CLIENT_CPU,
    )
    proc = bench.harness.run(cmd, timeout=300)
    try:
        result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise BenchError(f"baseline printed no result (exit {proc.rc}): {proc.tail()}") from None
    if proc.rc != 0 or result.get("ok") != result.get("rows"):
        raise BenchError(f"baseline exit {proc.rc}, {result.get('ok')} of {result.get('rows')} ok")
    return proc, result


def run(bench: Bench) -> None:
    url = bench.fixed_url
    if url is None:
        bench.report.note("overhead: no fixed-response server, part skipped")
        return
    for name, unit, digits in FIGURES:
        bench.report.figure(PART, name, unit, digits=digits)
    data = bench.csv(ROWS)
    out = bench.out_dir("overhead")
    cmd = bench.run_cmd(data, url, out, ["--rate", "unlimited", "--concurrency", str(WORKERS)])
    measure = {
        "bulkrevoke": lambda: checked_run(bench, cmd, out, rows=ROWS, status="revoked", timeout=300),
        "baseline": lambda: baseline_once(bench, str(data), url, WORKERS),
    }
    table = bench.report.section("Overhead, per round", INTRO)
    table += HEADER
    rounds = bench.settings.rounds_for(7, 5)
    for number in range(1, rounds + 1):
        order = ("bulkrevoke", "baseline") if number % 2 else ("baseline", "bulkrevoke")
        got = {}
        for who in order:
            log(f"overhead round {number}/{rounds}: {who}")
            got[who] = bench.harness.attempt(f"overhead round {number} {who}", measure[who])
        table.append(_record(bench, number, order, got["bulkrevoke"], got["baseline"]))
    ratios = bench.report.figure(PART, FIGURES[-1][0], "×").values
    if ratios:
        table.append(
            f"\nMedian ratio: **{statistics.median(ratios):.3f}** over {len(ratios)} "
            "rounds (1.0 = as fast as the bare loop)."
        )


def _record(
    bench: Bench,
    number: int,
    order: tuple[str, str],
    bk: tuple[Proc, dict[str, Any]] | None,
    base: tuple[Proc, dict[str, Any]] | None,
) -> str:
    """Add one round to the figures; its row of the per-round table."""

    def figure(name: str) -> Figure:
        return bench.report.figure(PART, name, "")

    cells = [str(number), " → ".join(order)]
    if bk:
        proc, summary = bk
        send = summary["requestsSent"] / summary["sendSeconds"] if summary.get("sendSeconds") else 0.0
        figure("bulkrevoke whole-process rows/s").add(ROWS / proc.wall)
        figure("bulkrevoke send-phase rows/s").add(send)
        figure("bulkrevoke time outside the send phase").add(proc.wall - summary.get("sendSeconds", 0.0))
        figure("bulkrevoke CPU per row (whole process)").add(proc.cpu / ROWS * 1e6)
        figure("bulkrevoke peak RSS").add(proc.maxrss_mb)
        cells += [
            f"{proc.wall:.2f}",
            f"{ROWS / proc.wall:,.0f}",
            f"{send:,.0f}",
            f"{proc.cpu / ROWS * 1e6:,.0f}",
        ]
    else:
        cells += ["failed"] * 4
    if base:
        proc_b, result = base
        send_b = ROWS / result["sendSeconds"]
        figure("baseline whole-process rows/s").add(ROWS / proc_b.wall)
        figure("baseline send-phase rows/s").add(send_b)
        figure("baseline CPU per row (whole process)").add(proc_b.cpu / ROWS * 1e6)
        cells += [
            f"{proc_b.wall:.2f}",
            f"{ROWS / proc_b.wall:,.0f}",
            f"{send_b:,.0f}",
            f"{proc_b.cpu / ROWS * 1e6:,.0f}",
        ]
    else:
        cells += ["failed"] * 4
    if bk and base:
        ratio = base[0].wall / bk[0].wall
        figure("ratio bulkrevoke / baseline (whole-process rows/s)").add(ratio)
        cells.append(f"{ratio:.3f}")
    else:
        cells.append("—")
    loads = [x[0].background for x in (bk, base) if x]
    busy = bench.settings.busy_cores
    cells.append(f"{max(loads):.2f}" + (" (disturbed)" if max(loads) > busy else "") if loads else "—")
    return "| " + " | ".join(cells) + " |"
