"""The figures a run collects, the table printed at the end and the RESULTS file.

A ``Figure`` is one named quantity with its values over the rounds, an optional target
(which decides the "met" column) and an optional goal (a better value worth aiming at,
shown beside the target). Parts also add free-form detail sections (per-round lines,
profiles); the background load of every measured run comes from the harness.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from benchmarks.harness import log

HEADERS = ["part", "figure", "median", "min – max", "n", "target", "met"]


@dataclass(frozen=True)
class Target:
    """``value <= bound`` (``op="<="``) or ``value >= bound``; ``goal`` is the same test's
    more ambitious bound, shown but not required."""

    op: str
    bound: float
    goal: float | None = None

    def holds(self, value: float, bound: float | None = None) -> bool:
        limit = self.bound if bound is None else bound
        return value <= limit if self.op == "<=" else value >= limit


def at_most(bound: float, goal: float | None = None) -> Target:
    return Target("<=", bound, goal)


def at_least(bound: float, goal: float | None = None) -> Target:
    return Target(">=", bound, goal)


@dataclass
class Figure:
    part: str
    name: str
    unit: str
    target: Target | None = None
    digits: int = 0
    values: list[float] = field(default_factory=list)

    def add(self, value: float) -> None:
        self.values.append(value)

    @property
    def median(self) -> float | None:
        return statistics.median(self.values) if self.values else None

    def met(self) -> str:
        if self.target is None:
            return ""
        value = self.median
        if value is None:
            return "n/a"
        if not self.target.holds(value):
            return "NO"
        goal = self.target.goal
        if goal is None:
            return "yes"
        return "yes, goal too" if self.target.holds(value, goal) else "yes, not the goal"

    def fmt(self, value: float | None) -> str:
        return "—" if value is None else f"{value:,.{self.digits}f}"

    def target_text(self) -> str:
        if self.target is None:
            return ""
        sign = "≤" if self.target.op == "<=" else "≥"
        goal = self.target.goal
        return f"{sign} {self.fmt(self.target.bound)}" + (
            f" (goal {self.fmt(goal)})" if goal is not None else ""
        )

    def row(self) -> list[str]:
        values = self.values
        span = f"{self.fmt(min(values))} – {self.fmt(max(values))}" if len(values) > 1 else ""
        median = f"{self.fmt(self.median)} {self.unit}" if values else "failed / not run"
        return [self.part, self.name, median, span, str(len(values)), self.target_text(), self.met()]


@dataclass
class Section:
    title: str
    intro: str
    lines: list[str] = field(default_factory=list)


class Report:
    """Everything a run found: figures, detail sections, notes and the run's particulars."""

    def __init__(self) -> None:
        self.figures: dict[tuple[str, str], Figure] = {}
        self.sections: dict[str, Section] = {}
        self.notes: list[str] = []
        self.info: dict[str, str] = {}

    def figure(
        self, part: str, name: str, unit: str, *, target: Target | None = None, digits: int = 0
    ) -> Figure:
        """The figure *name* of *part*, made on first use (rounds add to the same one)."""
        key = (part, name)
        if key not in self.figures:
            self.figures[key] = Figure(part, name, unit, target=target, digits=digits)
        return self.figures[key]

    def section(self, title: str, intro: str = "") -> list[str]:
        """The lines of the detail section *title*, made on first use."""
        return self.sections.setdefault(title, Section(title, intro)).lines

    def note(self, text: str) -> None:
        self.notes.append(text)
        log("NOTE: " + text)

    def table_rows(self) -> list[list[str]]:
        return [figure.row() for figure in self.figures.values()]


def print_table(report: Report) -> None:
    rows = [HEADERS, *report.table_rows()]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADERS))]
    print()
    for index, row in enumerate(rows):
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
        if index == 0:
            print("  ".join("-" * w for w in widths))
    print()
    for note in report.notes:
        print("note: " + note)


def results_markdown(
    report: Report,
    *,
    command: str,
    minutes: float,
    background: dict[str, list[float]],
    busy_cores: float,
    quiet_wait: float,
) -> str:
    """The RESULTS file: particulars, the figures table, detail sections, load, notes."""
    lines = [
        "# bulkrevoke benchmark results",
        "",
        f"Written by `{command}` in {minutes:.1f} min. What each figure means, how it is "
        "measured and how to run each part: [README.md](README.md).",
        "",
        "| | |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in report.info.items()),
        "",
        "## Figures",
        "",
        "Median over the rounds, with min – max when there was more than one.",
        "",
        "| " + " | ".join(HEADERS) + " |",
        "|" + "---|" * len(HEADERS),
        *("| " + " | ".join(row) + " |" for row in report.table_rows()),
    ]
    for section in report.sections.values():
        lines += ["", f"## {section.title}", ""]
        lines += [section.intro, ""] if section.intro else []
        lines += section.lines
    if background:
        lines += ["", *background_table(background, busy_cores, quiet_wait)]
    lines += ["", "## Notes", ""]
    lines += [f"- {note}" for note in report.notes] or ["- none: every measurement succeeded first time."]
    return "\n".join(lines).rstrip() + "\n"


def background_table(background: dict[str, list[float]], busy_cores: float, quiet_wait: float) -> list[str]:
    lines = [
        "## Background load",
        "",
        "This machine is shared. Before each measured run the harness waits (up to "
        f"{quiet_wait:g} s) for other processes to go quiet, and it records the CPU they "
        "used during the run: machine busy time (/proc/stat) minus the measured process, "
        f"the harness and the servers it started. Runs above {busy_cores:g} busy cores "
        "are counted as disturbed; their figures are kept (medians absorb a few).",
        "",
        "| part | runs | median load (cores) | max | disturbed runs |",
        "|---|---|---|---|---|",
    ]
    for part, loads in background.items():
        disturbed = sum(1 for load in loads if load > busy_cores)
        lines.append(
            f"| {part} | {len(loads)} | {statistics.median(loads):.2f} | {max(loads):.2f} | {disturbed} |"
        )
    return lines


def spread(values: list[float], digits: int = 0) -> str:
    """ "median (min – max)" of *values*, or the one value."""
    fmt = f",.{digits}f"
    median = format(statistics.median(values), fmt)
    if len(values) == 1:
        return median
    return f"{median} ({format(min(values), fmt)} – {format(max(values), fmt)})"
