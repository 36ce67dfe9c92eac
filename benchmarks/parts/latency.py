"""Latency: two parts.

- ``latency``: the default flags (``--concurrency auto``) at ``--rate 300/s`` against a
  sandbox answering after 20, 250 and 500 ms: the achieved rate (sandbox arrivals, first
  to last) must be ≥ 97 % of ``--rate``, so auto concurrency has to keep rate × latency
  requests in flight.
- ``hiding``: ``--concurrency 64 --rate unlimited`` against a 50 ms sandbox: ≥ 95 % of the
  64 / 0.05 s = 1,280/s bound. Controls: ``baseline_client.py`` against the same sandbox
  (what the one-threaded sandbox can serve), and both clients against nginx with
  ``echo_sleep 0.05``, a server that is not the bottleneck.
"""

from __future__ import annotations

from benchmarks.bench import Bench, checked_run, sandbox_round
from benchmarks.harness import log
from benchmarks.parts.overhead import baseline_once
from benchmarks.report import at_least
from benchmarks.servers import FixedServer, sandbox

LATENCY_RATE, LATENCY_ROWS = 300, 6_000
HIDING_ROWS, HIDING_LATENCY, HIDING_WORKERS = 6_000, 0.05, 64
HIDING_BOUND = HIDING_WORKERS / HIDING_LATENCY


def run_latency(bench: Bench) -> None:
    data = bench.csv(LATENCY_ROWS)
    details = bench.report.section(
        "Latency with the default flags, per run",
        f"`bulkrevoke run … --rate {LATENCY_RATE}/s` ({LATENCY_ROWS:,} rows, default concurrency) "
        "against `bulkrevoke sandbox --latency S`. Achieved: sandbox arrivals, "
        "(n − 1) / (last − first).",
    )
    for number in bench.rounds():
        for latency in bench.settings.latencies:
            part = f"latency {latency * 1000:g} ms"
            share = bench.report.figure(
                part, f"achieved / --rate {LATENCY_RATE}/s", "%", target=at_least(97), digits=1
            )
            cpu = bench.report.figure(part, "CPU per row (whole process)", "µs/row")
            got = sandbox_round(
                bench,
                part,
                number,
                data,
                LATENCY_ROWS,
                ["--rate", f"{LATENCY_RATE}/s"],
                sandbox_flags=["--latency", f"{latency:g}"],
                timeout=LATENCY_ROWS / LATENCY_RATE * 4 + 60,
            )
            if got:
                share.add(got.rate / LATENCY_RATE * 100)
                cpu.add(got.cpu_per_row_us)
                details.append(f"- {part}, round {number}: {got.describe()}")


def run_hiding(bench: Bench) -> None:
    part = "latency hiding"
    figure = bench.report.figure
    achieved = figure(
        part,
        f"achieved, {HIDING_WORKERS} workers × 50 ms (arrivals)",
        "req/s",
        target=at_least(0.95 * HIDING_BOUND),
    )
    share = figure(part, f"share of the {HIDING_BOUND:,.0f}/s bound", "%", target=at_least(95), digits=1)
    cpu = figure(part, "bulkrevoke CPU per row (whole process)", "µs/row")
    control = figure(part, "control: baseline_client.py, same sandbox (arrivals)", "req/s")
    data = bench.csv(HIDING_ROWS)
    args = ["--rate", "unlimited", "--concurrency", str(HIDING_WORKERS)]
    flags = ["--latency", f"{HIDING_LATENCY:g}"]
    for number in bench.rounds():
        got = sandbox_round(
            bench, "hiding", number, data, HIDING_ROWS, args, sandbox_flags=flags, timeout=300
        )
        if got:
            achieved.add(got.rate)
            share.add(got.rate / HIDING_BOUND * 100)
            cpu.add(got.cpu_per_row_us)
        base = bench.harness.attempt(
            f"hiding control, round {number}", lambda: _baseline_on_sandbox(bench, flags)
        )
        if base is not None:
            control.add(base)
    _hiding_nginx(bench)
    if control.median and control.median < 0.95 * HIDING_BOUND:
        bench.report.note(
            f"latency hiding: the bare loop reaches only {control.median:,.0f} "
            "req/s against the same sandbox, so the sandbox (one Python thread) "
            "is a limit here too; compare bulkrevoke with that control"
        )


def _baseline_on_sandbox(bench: Bench, flags: list[str]) -> float:
    with sandbox(bench.harness, flags) as box:
        baseline_once(bench, str(bench.csv(HIDING_ROWS)), box.url, HIDING_WORKERS)
        arrivals = sorted(float(t) for t, _ in box.truth()["request_log"])
    return (len(arrivals) - 1) / (arrivals[-1] - arrivals[0])


def _hiding_nginx(bench: Bench) -> None:
    """The same load against nginx + echo_sleep, a server that is not the bottleneck."""
    part = "latency hiding"
    bk = bench.report.figure(
        part,
        "bulkrevoke against nginx echo_sleep 50 ms (send phase)",
        "req/s",
        target=at_least(0.95 * HIDING_BOUND),
    )
    base = bench.report.figure(part, "control: baseline_client.py, same nginx (send phase)", "req/s")
    server = FixedServer(bench.harness, latency=HIDING_LATENCY)
    try:
        url = server.start_delayed()
    except Exception as exc:
        bench.report.note(f"latency hiding against nginx skipped: {exc}")
        server.stop()
        return
    data, out = bench.csv(HIDING_ROWS), bench.out_dir("hiding-nginx")
    cmd = bench.run_cmd(data, url, out, ["--rate", "unlimited", "--concurrency", str(HIDING_WORKERS)])
    try:
        for number in bench.rounds():
            log(f"hiding vs nginx, round {number}")
            got = bench.harness.attempt(
                f"hiding vs nginx round {number}",
                lambda: checked_run(bench, cmd, out, rows=HIDING_ROWS, status="revoked", timeout=300),
            )
            if got:
                bk.add(got[1]["requestsSent"] / got[1]["sendSeconds"])
            control = bench.harness.attempt(
                f"hiding control vs nginx round {number}",
                lambda: baseline_once(bench, str(data), url, HIDING_WORKERS),
            )
            if control:
                base.add(HIDING_ROWS / control[1]["sendSeconds"])
    finally:
        server.stop()
