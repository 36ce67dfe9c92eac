"""What an operator sees while a run moves: a tqdm bar on a terminal, or a log line
every ten seconds when nobody watches (a scheduler's log shows the run moving)."""

from __future__ import annotations

import logging
import sys
import time
from collections import Counter
from typing import Any

from bulkrevoke.model import Outcome, Status

log = logging.getLogger("bulkrevoke")
LOG_EVERY = 10.0


class Progress:
    """One phase at a time (``ingest``, ``send``); cheap to update per row."""

    def __init__(self, *, enabled: bool, stream: Any = None, log_every: float = LOG_EVERY) -> None:
        self._stream = stream if stream is not None else sys.stderr
        self._bar_wanted = enabled and _is_terminal(self._stream)
        self._log_every = log_every
        self._bar: Any = None
        self._phase = ""
        self._total = 0
        self._done = 0
        self._started = 0.0
        self._next_log = 0.0
        self.counts: Counter[str] = Counter()
        self.throttled = 0

    def start(self, phase: str, total: int | None) -> None:
        """Begin a phase; *total* is None where it isn't known (ingest reads a stream)."""
        self.close()
        self._phase, self._total, self._done = phase, total or 0, 0
        self._started = time.monotonic()
        self._next_log = self._started + self._log_every
        self.counts.clear()
        if self._bar_wanted:
            from tqdm import tqdm

            self._bar = tqdm(
                total=total,
                desc=phase,
                unit="row",
                file=self._stream,
                dynamic_ncols=True,
                mininterval=0.2,
                smoothing=0.1,
            )

    def advance(self, rows: int = 1) -> None:
        self._done += rows
        if self._bar is not None:
            self._bar.update(rows)
        elif time.monotonic() >= self._next_log:
            self._log_line()

    def outcome(self, outcome: Outcome) -> None:
        self.counts[outcome.status.value] += 1
        self._done += 1
        bar = self._bar
        if bar is not None:
            bar.update(1)
            if self._done % 50 == 0 or self._done == self._total:
                bar.set_postfix_str(self.postfix(), refresh=False)
        elif time.monotonic() >= self._next_log:
            self._log_line()

    def postfix(self) -> str:
        c = self.counts
        return (
            f"revoked={c[Status.REVOKED.value]} inactive={c[Status.ALREADY_INACTIVE.value]} "
            f"failed={c[Status.FAILED.value]} throttled={self.throttled}"
        )

    def _log_line(self) -> None:
        elapsed = max(time.monotonic() - self._started, 1e-9)
        rate = self._done / elapsed
        left = (self._total - self._done) / rate if rate > 0 and self._total else None
        eta = "?" if left is None else f"{left:.0f}s"
        log.info(
            "progress %s: %d/%d rows, %.1f rows/s, eta %s, %s",
            self._phase,
            self._done,
            self._total,
            rate,
            eta,
            self.postfix(),
            extra={"phase": self._phase, "done": self._done, "total": self._total},
        )
        self._next_log = time.monotonic() + self._log_every

    def close(self) -> None:
        if self._bar is not None:
            if self._phase == "send":
                self._bar.set_postfix_str(self.postfix(), refresh=True)
            self._bar.close()
            self._bar = None


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
