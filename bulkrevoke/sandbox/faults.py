"""Fault injection: which requests the sandbox answers badly, decided reproducibly.

Each decision is a pure function of (seed, badge key, how many earlier requests for that key
got past auth and the rate limit). Hashing those three — rather than drawing from one shared
random stream — keeps a run's faults the same however concurrent workers interleave their
requests, so a failing test can be replayed.

At most one of the *exclusive* faults hits a request, picked by cumulative probability in
the order the knobs are listed below. ``slow`` and ``inactive_400`` are independent draws
that only change how an answer is delivered.
"""

from __future__ import annotations

import enum
import hashlib
import struct
from dataclasses import dataclass, fields
from typing import NamedTuple

from bulkrevoke.sandbox.state import BadgeKey


class Fault(enum.Enum):
    """The exclusive faults; the value is the FaultProfile knob that sets its probability."""

    THROTTLE = "throttle"  # 429 with Retry-After; not applied
    THROTTLE_BARE = "throttle_bare"  # 429 without Retry-After; not applied
    SERVER_ERROR = "server_error"  # 500, 502, 503 or 504; not applied
    BUSY = "busy"  # 521 "Multiple actions are running..."; not applied
    DROP = "drop"  # applied, then the connection is closed without an answer
    HANG = "hang"  # applied, then no answer for hang_seconds
    MALFORMED = "malformed"  # applied, then HTTP 200 with a truncated JSON body
    NOT_READ = "not_read"  # 408 with Connection: close, as a load balancer sends; not applied
    GATEWAY_PAGE = "gateway_page"  # a gateway's HTML 404 page; not applied


@dataclass(frozen=True, slots=True)
class FaultProfile:
    """How often each fault happens (probabilities 0..1, per request) and its parameters.

    The exclusive probabilities (see ``Fault``) must add up to at most 1.
    """

    seed: int = 0
    throttle: float = 0
    throttle_bare: float = 0
    retry_after: int = 1  # seconds, sent in Retry-After by the throttle fault
    server_error: float = 0
    busy: float = 0
    drop: float = 0
    hang: float = 0
    hang_seconds: float = 30  # how long a hung request waits before its connection is closed
    malformed: float = 0
    inactive_400: float = 0  # an 814 answer comes with HTTP 400 instead of 200
    slow: float = 0  # an answer is delayed by an extra slow_seconds
    slow_seconds: float = 0.5
    not_read: float = 0
    gateway_page: float = 0
    gzip: bool = False  # answers are gzip-encoded when the client accepts it
    retry_after_date: bool = False  # Retry-After is sent as an HTTP-date, not seconds

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            # Written so that NaN fails too.
            if field.name in _PROBABILITIES and not 0 <= value <= 1:
                raise ValueError(f"fault probability {field.name} must be in 0..1, not {value}")
        exclusive = sum(getattr(self, fault.value) for fault in Fault)
        if exclusive > 1 + 1e-9:
            names = ", ".join(fault.value for fault in Fault)
            raise ValueError(f"fault probabilities ({names}) add up to {exclusive:g}, over 1")
        if self.retry_after < 0 or self.hang_seconds < 0 or self.slow_seconds < 0:
            raise ValueError("retry_after, hang_seconds and slow_seconds must not be negative")


_PROBABILITIES = frozenset({fault.value for fault in Fault} | {"inactive_400", "slow"})

NO_FAULTS = FaultProfile()

SERVER_ERROR_STATUSES = (500, 502, 503, 504)


class Decision(NamedTuple):
    """What happens to one request."""

    fault: Fault | None
    slow: bool
    inactive_400: bool
    server_status: int  # the status a SERVER_ERROR fault answers with


QUIET = Decision(None, False, False, 500)

_FOUR_UINT64 = struct.Struct(">4Q")
_SEP = b"\x1f"


class FaultPicker:
    """Turns a FaultProfile into per-request Decisions.

    The cumulative thresholds are computed once; with no faults configured ``decide``
    returns a constant without hashing, so the benchmark path stays cheap.
    """

    __slots__ = ("_inactive_400", "_quiet", "_seed", "_slow", "_thresholds")

    def __init__(self, profile: FaultProfile) -> None:
        thresholds: list[tuple[float, Fault]] = []
        total = 0.0
        for fault in Fault:
            probability = float(getattr(profile, fault.value))
            if probability > 0:
                total += probability
                thresholds.append((total, fault))
        self._thresholds = tuple(thresholds)
        self._slow = profile.slow
        self._inactive_400 = profile.inactive_400
        self._seed = str(profile.seed).encode()
        self._quiet = not thresholds and profile.slow == 0 and profile.inactive_400 == 0

    def decide(self, key: BadgeKey, attempt: int) -> Decision:
        """The decision for the ``attempt``-th (0-based) request for ``key``."""
        if self._quiet:
            return QUIET
        u_fault, u_slow, u_400, u_status = uniform_draws(self._seed, key, attempt)
        fault = None
        for threshold, candidate in self._thresholds:
            if u_fault < threshold:
                fault = candidate
                break
        status = SERVER_ERROR_STATUSES[int(u_status * len(SERVER_ERROR_STATUSES))]
        return Decision(fault, u_slow < self._slow, u_400 < self._inactive_400, status)


def uniform_draws(seed: bytes, key: BadgeKey, attempt: int) -> tuple[float, float, float, float]:
    """Four independent floats in [0, 1) derived from the seed, the key and the attempt."""
    message = _SEP.join((seed, *(part.encode() for part in key), str(attempt).encode()))
    digest = hashlib.blake2b(message, digest_size=32).digest()
    a, b, c, d = _FOUR_UINT64.unpack(digest)
    # Keep 53 bits: a float holds them exactly, so the result is never rounded up to 1.0.
    scale = 2.0**-53
    return (a >> 11) * scale, (b >> 11) * scale, (c >> 11) * scale, (d >> 11) * scale
