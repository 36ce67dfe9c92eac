"""Ground truth: what the sandbox really did, for tests to hold a client's report against.

The server mutates ``TruthRecorder`` (plain counters, no locks: it lives on one event
loop); readers get a ``GroundTruth`` snapshot, which is immutable and can travel as JSON
(``GET /_sandbox/truth``) when the sandbox runs in another process.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from bulkrevoke.sandbox.state import BadgeKey

# Request-log status for a request that got no HTTP answer (dropped, hung, or the client
# had gone by the time the answer was ready).
NO_ANSWER = 0


@dataclass(frozen=True, slots=True)
class BadgeTruth:
    """One badge's story.

    ``initially_active`` is None for a badge the server did not know at start (it answers
    814 for those unless ``unknown_badges="active"``). ``applied`` is 0 or 1: whether this
    server turned the badge inactive. ``lost_answers`` counts requests that were processed
    (applied or not) but whose answer never reached the client intact; ``gateway_errors``
    counts 502/504 answers, which a client must treat as "maybe applied".
    """

    initially_active: bool | None
    active: bool
    requests: int = 0
    applied: int = 0
    successes: int = 0
    lost_answers: int = 0
    gateway_errors: int = 0


@dataclass(frozen=True, slots=True)
class GroundTruth:
    """A snapshot of everything the sandbox recorded.

    ``request_log`` holds ``(arrival time.monotonic(), HTTP status)`` for every API request
    (revokeEarn and badge reads: one quota counts both) in the order the answers were decided
    (status 0: no answer was sent). ``requests`` counts revokeEarn requests, ``reads`` badge
    reads; ``throttled`` (429s) and ``unauthorized`` (401s) count both kinds.
    ``quota_throttled`` is the part of ``throttled`` that the rate limit answered (the rest
    are injected faults). 521s come in two kinds: ``busy_overlap``, answered because another
    request for the same customer was being handled, and ``busy_injected``, the random fault.
    """

    badges: dict[BadgeKey, BadgeTruth] = field(default_factory=dict)
    request_log: list[tuple[float, int]] = field(default_factory=list)
    requests: int = 0
    throttled: int = 0
    unauthorized: int = 0
    tokens_issued: int = 0
    reads: int = 0
    quota_throttled: int = 0
    busy_overlap: int = 0
    busy_injected: int = 0

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (pass it to ``json.dumps``); ``from_json`` reverses it."""
        return {
            **{name: getattr(self, name) for name in _COUNTERS},
            "badges": [{"key": _key_to_json(key), **asdict(badge)} for key, badge in self.badges.items()],
            "request_log": [list(entry) for entry in self.request_log],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> GroundTruth:
        """Rebuild a snapshot from ``to_json()``'s output (e.g. read from /_sandbox/truth)."""
        badges = {}
        for item in data["badges"]:
            fields_ = dict(item)
            key = _key_from_json(fields_.pop("key"))
            badges[key] = BadgeTruth(**fields_)
        return cls(
            badges=badges,
            request_log=[(float(t), int(status)) for t, status in data["request_log"]],
            # .get: a sandbox of an older version may not send the newer counters.
            **{name: int(data.get(name, 0)) for name in _COUNTERS},
        )


# The plain counters of GroundTruth and TruthRecorder, in the order to_json writes them.
_COUNTERS = (
    "requests",
    "throttled",
    "unauthorized",
    "tokens_issued",
    "reads",
    "quota_throttled",
    "busy_overlap",
    "busy_injected",
)


def _key_to_json(key: BadgeKey) -> dict[str, str]:
    return {
        "badgeMetaId": key.badge_meta_id,
        "identifierType": key.identifier_type,
        "customerId": key.customer_id,
        "earnedBadgeId": key.earned_badge_id,
    }


def _key_from_json(data: dict[str, str]) -> BadgeKey:
    return BadgeKey(data["badgeMetaId"], data["identifierType"], data["customerId"], data["earnedBadgeId"])


@dataclass(slots=True)
class BadgeRecord:
    """The mutable record behind a BadgeTruth.

    ``decisions`` counts the requests that reached the fault decision; it is the attempt
    number the fault picker hashes, kept apart from ``requests`` so that server-side 429s
    (which depend on timing) don't shift later faults.
    """

    initially_active: bool | None
    active: bool
    requests: int = 0
    decisions: int = 0
    applied: int = 0
    successes: int = 0
    lost_answers: int = 0
    gateway_errors: int = 0
    revoked_at: float | None = None  # wall-clock time this server turned it inactive

    def freeze(self) -> BadgeTruth:
        return BadgeTruth(
            initially_active=self.initially_active,
            active=self.active,
            requests=self.requests,
            applied=self.applied,
            successes=self.successes,
            lost_answers=self.lost_answers,
            gateway_errors=self.gateway_errors,
        )


class TruthRecorder:
    """The live counters the request handlers update."""

    __slots__ = (
        "_customers",
        "_index",
        "_unknown_active",
        "badges",
        "request_log",
        *_COUNTERS,
    )

    def __init__(self, state: dict[BadgeKey, bool], *, unknown_active: bool) -> None:
        self.badges = {key: BadgeRecord(active, active) for key, active in state.items()}
        self._unknown_active = unknown_active
        self.request_log: list[tuple[float, int]] = []
        self.requests = self.throttled = self.unauthorized = self.tokens_issued = 0
        self.reads = self.quota_throttled = self.busy_overlap = self.busy_injected = 0
        # For reads: the badges of each (badgeMetaId, identifier type, customer), built on the
        # first read, so that a run without reads pays nothing for it.
        self._index: dict[tuple[str, str, str], list[BadgeKey]] | None = None
        self._customers: set[tuple[str, str]] = set()

    def record_for(self, key: BadgeKey) -> BadgeRecord:
        """The key's record, created on first sight of an unknown badge."""
        record = self.badges.get(key)
        if record is None:
            active = self._unknown_active
            record = BadgeRecord(True if active else None, active)
            self.badges[key] = record
            if self._index is not None:
                self._add_to_index(key, record)
        return record

    def earned_badges(
        self, badge_meta_id: str, identifier_type: str, customer_id: str
    ) -> list[BadgeKey] | None:
        """The earned badges of this meta id the customer has (or had), or None if the
        sandbox knows no badge of the customer at all.

        A badge the server never had (a revoke of an unknown badge, answered 814) is not
        the customer's: it is left out.
        """
        if self._index is None:
            self._index = {}
            for key, record in self.badges.items():
                self._add_to_index(key, record)
        if (identifier_type, customer_id) not in self._customers:
            return None
        return self._index.get((badge_meta_id, identifier_type, customer_id), [])

    def _add_to_index(self, key: BadgeKey, record: BadgeRecord) -> None:
        if record.initially_active is None:
            return
        assert self._index is not None
        self._customers.add((key.identifier_type, key.customer_id))
        group = (key.badge_meta_id, key.identifier_type, key.customer_id)
        self._index.setdefault(group, []).append(key)

    def snapshot(self) -> GroundTruth:
        return GroundTruth(
            badges={key: record.freeze() for key, record in self.badges.items()},
            request_log=list(self.request_log),
            **{name: getattr(self, name) for name in _COUNTERS},
        )
