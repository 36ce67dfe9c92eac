"""Profiles: where a row's CPU goes, no target.

The overhead scenario (bulkrevoke and the baseline against the fixed server, 20,000 rows)
and a dry run (1,000,000 rows; quick 100,000) under py-spy (sampling, ``--format raw``, when
installed) and cProfile: components and functions by self time, bulkrevoke's functions by
inclusive time, calls per row. py-spy's shares are CPU samples of the whole process (imports
included); cProfile's are of profiled time (idle ``epoll`` waits included) and overstate
small, frequent calls.
"""

from __future__ import annotations

import collections
import functools
import pstats
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from benchmarks.bench import Bench
from benchmarks.harness import BenchError, log
from benchmarks.parts.profile_tables import component, cprofile_table, pyspy_table, short_path
from benchmarks.settings import CLIENT_CPU, HERE

PYSPY_RATE = 250
_PYSPY_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*)\)$")
INTRO = (
    "Where a row's CPU goes. py-spy samples the running process (little distortion, idle "
    "time excluded); cProfile counts calls exactly (calls/row) but inflates the cost of "
    "many small calls. Percentages are of the profiled process's total."
)


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    script: list[str]  # after the interpreter: ["-m", "bulkrevoke", ...] or [path, ...]
    rows: int
    focus: str | None  # functions whose inclusive time is listed


def scenarios(bench: Bench) -> list[Scenario]:
    found = []
    out = str(bench.out_dir("profile"))
    if bench.fixed_url:
        data = str(bench.csv(20_000))
        found += [
            Scenario(
                "overhead-bulkrevoke",
                "bulkrevoke run, 20,000 rows against the fixed server",
                [
                    "-m",
                    "bulkrevoke",
                    "run",
                    data,
                    "--host",
                    bench.fixed_url,
                    "--rate",
                    "unlimited",
                    "--concurrency",
                    "64",
                    "--no-progress",
                    "-q",
                    "--out",
                    out,
                ],
                20_000,
                "bulkrevoke/",
            ),
            Scenario(
                "overhead-baseline",
                "baseline_client.py, same rows, same server",
                [str(HERE / "baseline_client.py"), data, "--host", bench.fixed_url, "--concurrency", "64"],
                20_000,
                None,
            ),
        ]
    rows = 100_000 if bench.settings.quick else 1_000_000
    found.append(
        Scenario(
            "scale-dry-run",
            f"bulkrevoke run --dry-run, {rows:,} rows",
            [
                "-m",
                "bulkrevoke",
                "run",
                str(bench.csv(rows)),
                "--dry-run",
                "--no-progress",
                "-q",
                "--out",
                out,
            ],
            rows,
            "bulkrevoke/",
        )
    )
    return found


def find_pyspy() -> str | None:
    here = Path(sys.executable).parent / "py-spy"
    return shutil.which("py-spy") or (str(here) if here.exists() else None)


def run(bench: Bench) -> None:
    lines = bench.report.section("Profiles", INTRO)
    spy = find_pyspy()
    if spy is None:
        bench.report.note("profile: py-spy is not installed (pip install py-spy): cProfile only")
    for scenario in scenarios(bench):
        lines.append(f"\n### {scenario.title}\n")
        tools = {"py-spy": functools.partial(pyspy, bench, scenario, spy)} if spy else {}
        tools["cProfile"] = functools.partial(cprofile, bench, scenario)
        for tool, measure in tools.items():
            log(f"profiling {scenario.name} with {tool}")
            table = bench.harness.attempt(f"profile {scenario.name} ({tool})", measure)
            shutil.rmtree(bench.out_dir("profile"), ignore_errors=True)
            lines += table or [f"_{tool}: failed (see notes)._", ""]


def pyspy(bench: Bench, scenario: Scenario, spy: str) -> list[str]:
    raw = bench.settings.work / f"profile-{scenario.name}.pyspy.txt"
    raw.unlink(missing_ok=True)
    record = ["record", "--rate", str(PYSPY_RATE), "--nolineno", "--format", "raw"]
    cmd = [spy, *record, "--output", str(raw), "--", sys.executable, *scenario.script]
    proc = bench.harness.run(bench.harness.pinned(cmd, CLIENT_CPU), timeout=900)
    if proc.rc != 0 or not raw.exists():
        raise BenchError(f"py-spy exit {proc.rc}: {proc.tail()}")
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    components: collections.Counter[str] = collections.Counter()
    text = raw.read_text(errors="replace")
    raw.unlink()
    for line in text.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame(text) for text in stack.split(";")]
        own[frames[-1][0]] += count
        components[component(frames[-1][1], frames[-1][2])] += count
        for label in {frame[0] for frame in frames}:
            inclusive[label] += count
    table = pyspy_table(own, inclusive, components, rows=scenario.rows, hz=PYSPY_RATE, focus=scenario.focus)
    return [f"**py-spy** (profiled run: {proc.wall:.1f}s wall)", "", *table, ""]


def _frame(text: str) -> tuple[str, str, str]:
    """(label, file, function) of one py-spy frame, "func (file)"."""
    match = _PYSPY_FRAME.match(text)
    func, file = (match["func"], match["file"]) if match else (text, "")
    return f"{func} ({short_path(file)})", file, func


def cprofile(bench: Bench, scenario: Scenario) -> list[str]:
    out = bench.settings.work / f"profile-{scenario.name}.pstats"
    out.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "cProfile", "-o", str(out), *scenario.script]
    proc = bench.harness.run(bench.harness.pinned(cmd, CLIENT_CPU), timeout=900)
    if proc.rc != 0 or not out.exists():
        raise BenchError(f"cProfile run exit {proc.rc}: {proc.tail()}")
    stats = pstats.Stats(str(out))
    out.unlink()
    head = f"**cProfile** (profiled run: {proc.wall:.1f}s wall)"
    return [head, "", *cprofile_table(stats, rows=scenario.rows), ""]
