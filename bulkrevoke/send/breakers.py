"""The send phase's circuit breakers: when to stop a run that can no longer do good.

- ``ErrorRateBreaker``: more than ``--max-error-rate`` of the last ``WINDOW`` finished rows
  failed (a cluster that is down, a key that lost its rights mid-run).
- ``NotTheApi``: ``LIMIT`` answers in a row that are not shaped like the Badges API's (HTML
  pages, 4xx without its JSON envelope): a wrong ``--host`` prefix or a gateway in front
  of something else, which no number of retries will fix.

Each returns the one-line reason to stop, or None.
"""

from __future__ import annotations

from collections import deque

from bulkrevoke.model import StopReason
from bulkrevoke.send.reply import Reply


class ErrorRateBreaker:
    WINDOW = 100

    def __init__(self, max_error_rate: float) -> None:
        self._max = max_error_rate
        self._recent: deque[bool] = deque(maxlen=self.WINDOW)
        self._failed = 0

    def record(self, failed: bool) -> str | None:
        if len(self._recent) == self.WINDOW and self._recent[0]:
            self._failed -= 1
        self._recent.append(failed)
        self._failed += failed
        if self._failed > self._max * self.WINDOW:
            return (
                f"{self._failed} of the last {len(self._recent)} rows failed "
                f"(more than --max-error-rate {self._max:g})"
            )
        return None


class NotTheApi:
    LIMIT = 20

    def __init__(self) -> None:
        self._in_a_row = 0

    def observe(self, reply: Reply) -> str | None:
        if reply.foreign:
            self._in_a_row += 1
            if self._in_a_row >= self.LIMIT:
                return (
                    f"the host does not answer like the Badges API ({self._in_a_row} "
                    f"answers in a row like {describe(reply)}): check --host"
                )
        elif reply.http_status is not None:
            self._in_a_row = 0
        return None


def describe(reply: Reply) -> str:
    """An answer in a few words, for the log: the code, and what it meant."""
    if reply.http_status is None:
        return f"{reply.error_code} ({reply.error_message})"
    if reply.error_message and reply.error_message != f"HTTP {reply.http_status}":
        return f"HTTP {reply.http_status} {reply.error_code} ({reply.error_message})"
    return f"HTTP {reply.http_status}"


def stop_message(reason: str, reply: Reply) -> str:
    """The line a StopRun decision stops the run with."""
    if reason == StopReason.AUTH:
        return (
            f"authentication failed (HTTP {reply.http_status}, code {reply.error_code}): "
            "check the credentials in the environment"
        )
    return f"{reply.error_message}"
