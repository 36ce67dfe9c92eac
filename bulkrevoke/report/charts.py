"""The inline SVG charts of summary.html: rows by status as one stacked bar, and what was
finished and throttled over time as bars. Plain SVG elements and numbers only: no text
from data goes inside an SVG (labels are HTML around it, escaped there)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

#: Status colours, dark enough for white text and distinct in print; every segment also
#: has its name and count in the table beside it, so colour is never the only cue.
STATUS_COLOURS = {
    "revoked": "#2e7d32",
    "already_inactive": "#00796b",
    "revoked_unconfirmed": "#9e7700",
    "duplicate": "#757575",
    "invalid": "#6a1b9a",
    "failed": "#c62828",
    "not_attempted": "#e65100",
    "would_revoke": "#1565c0",
}
MAX_BARS = 120
_WIDTH = 1000


def status_bar(counts: dict[str, int]) -> str:
    """One bar, a segment per status in proportion to its count."""
    total = sum(counts.values())
    parts = [
        f'<svg class="bar" viewBox="0 0 {_WIDTH} 32" preserveAspectRatio="none" '
        'role="img" aria-label="rows by status">'
    ]
    x = 0.0
    for status, count in counts.items():
        if not count or not total:
            continue
        width = _WIDTH * count / total
        colour = STATUS_COLOURS.get(status, "#999999")
        parts.append(
            f'<rect x="{x:.2f}" y="0" width="{width:.2f}" height="32" fill="{colour}">'
            f"<title>{status}: {count}</title></rect>"
        )
        x += width
    if not total:
        parts.append(f'<rect x="0" y="0" width="{_WIDTH}" height="32" fill="#e0e0e0"/>')
    parts.append("</svg>")
    return "".join(parts)


@dataclass(frozen=True)
class Series:
    """The timeline gathered into at most MAX_BARS bars of equal length."""

    start: int  # epoch seconds
    bar_seconds: int
    finished: tuple[int, ...]
    failed: tuple[int, ...]
    throttled: tuple[int, ...]

    @property
    def end(self) -> int:
        return self.start + self.bar_seconds * len(self.finished)


def gather(timeline: Sequence[tuple[int, int, int, int, int]], bucket: int) -> Series | None:
    """(start, finished, failed, requests, throttled) buckets of *bucket* seconds → bars.
    Buckets with nothing (a pause, the hours between a stop and its resume) count as
    zero, so the bars keep time."""
    if not timeline:
        return None
    start, last = timeline[0][0], timeline[-1][0]
    slots = (last - start) // bucket + 1
    group = max(1, math.ceil(slots / MAX_BARS))
    bars = math.ceil(slots / group)
    finished, failed, throttled = [0] * bars, [0] * bars, [0] * bars
    for at, done, bad, _, slowed in timeline:
        index = (at - start) // bucket // group
        finished[index] += done
        failed[index] += bad
        throttled[index] += slowed
    return Series(start, bucket * group, tuple(finished), tuple(failed), tuple(throttled))


def bars(
    values: Sequence[float],
    *,
    colour: str,
    overlay: Sequence[float] = (),
    overlay_colour: str = "#c62828",
    label: str,
) -> str:
    """Vertical bars scaled to the largest value; *overlay* is drawn over them (the part
    of each bar that failed)."""
    height = 120
    top = max(values, default=0) or 1
    width = _WIDTH / max(len(values), 1)
    parts = [
        f'<svg class="chart" viewBox="0 0 {_WIDTH} {height}" preserveAspectRatio="none" '
        f'role="img" aria-label="{label}">',
        f'<line x1="0" y1="{height}" x2="{_WIDTH}" y2="{height}" stroke="#9e9e9e"/>',
    ]
    for index, value in enumerate(values):
        parts.append(_column(index * width, width, value / top * height, height, colour))
        if overlay and overlay[index]:
            parts.append(_column(index * width, width, overlay[index] / top * height, height, overlay_colour))
    parts.append("</svg>")
    return "".join(parts)


def _column(x: float, width: float, size: float, height: int, colour: str) -> str:
    gap = min(1.0, width / 4)
    return (
        f'<rect x="{x + gap:.2f}" y="{height - size:.2f}" width="{width - 2 * gap:.2f}" '
        f'height="{size:.2f}" fill="{colour}"/>'
    )
