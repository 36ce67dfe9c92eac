"""What to do after one attempt — the whole retry classification in one table.

Two questions decide every case: may the server have applied this request (then a
later 814 can't be credited as ``already_inactive``), and is another attempt useful?

| reply          | example                               | applied?   | next step                 |
|----------------|---------------------------------------|------------|---------------------------|
| SUCCESS        | 200, data.isActive = false            | yes        | final: revoked            |
| NOT_ACTIVE     | 814 (with HTTP 200 or 400)            | —          | final: already_inactive, or revoked_unconfirmed if an earlier attempt may have applied it |
| REJECTED       | 813, 715: the API's JSON error envelope | no       | final: invalid            |
| HTTP_ERROR     | a 4xx without the API's envelope (a gateway's HTML 404) | no | final: failed (errorSource http; 20 in a row stop the run) |
| REDIRECT       | 3xx                                   | no         | final: failed (not followed: credentials stay on the host) |
| UNEXPECTED     | 2xx saying neither success nor error  | unknown    | final: failed             |
| UNAUTHORIZED   | 401, 403 (after one OAuth renewal)    | no         | safety stop               |
| PROXY_REFUSED  | 407 from the forward proxy            | no         | safety stop               |
| TLS_ERROR      | certificate not trusted (other handshake failures are NOT_SENT) | no | safety stop |
| THROTTLED      | 429                                   | no         | retry after Retry-After (all workers pause) or full-jitter backoff |
| SERVER_ERROR   | 500, 503, 520, 521                    | no         | retry with backoff        |
| GATEWAY_ERROR  | 502, 504                              | maybe      | retry with backoff        |
| NOT_SENT       | connection refused, DNS, TLS handshake, proxy down, connect timeout, 408 | no | retry with backoff |
| LOST           | timeout, dropped connection, 200 with a broken body | maybe | retry with backoff |

Attempts stop at ``max_attempts`` or when the row's deadline would pass: the row is
then ``failed`` with the last error. Once an attempt may have been applied, the row
carries that *doubt* (which attempt, and what became of its answer): a later 814 is then
``revoked_unconfirmed``, and its ``errorMessage`` says why.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any

from bulkrevoke.model import ErrorSource, Outcome, Status
from bulkrevoke.send.reply import Reply, ReplyKind
from bulkrevoke.values import RetryPolicy


@dataclass(frozen=True, slots=True)
class Rule:
    final: Status | None = None
    may_have_applied: bool = False
    stop: str | None = None


RULES: dict[ReplyKind, Rule] = {
    ReplyKind.SUCCESS: Rule(final=Status.REVOKED, may_have_applied=True),
    ReplyKind.NOT_ACTIVE: Rule(final=Status.ALREADY_INACTIVE),
    ReplyKind.REJECTED: Rule(final=Status.INVALID),
    ReplyKind.HTTP_ERROR: Rule(final=Status.FAILED),
    ReplyKind.REDIRECT: Rule(final=Status.FAILED),
    ReplyKind.UNEXPECTED: Rule(final=Status.FAILED, may_have_applied=True),
    ReplyKind.UNAUTHORIZED: Rule(stop="auth"),
    ReplyKind.TLS_ERROR: Rule(stop="tls"),
    ReplyKind.PROXY_REFUSED: Rule(stop="proxy_auth"),
    ReplyKind.THROTTLED: Rule(),
    ReplyKind.SERVER_ERROR: Rule(),
    ReplyKind.GATEWAY_ERROR: Rule(may_have_applied=True),
    ReplyKind.NOT_SENT: Rule(),
    ReplyKind.LOST: Rule(may_have_applied=True),
}


@dataclass(frozen=True, slots=True)
class Retry:
    """Try the row again after *delay* seconds."""

    delay: float


@dataclass(frozen=True, slots=True)
class StopRun:
    """Nothing can succeed as configured (credentials refused, host not trusted): stop."""

    reason: str


Decision = Outcome | Retry | StopRun


def backoff(attempt: int, policy: RetryPolicy, rng: random.Random) -> float:
    """Full jitter: uniform between 0 and min(base·2^(attempt-1), cap)."""
    ceiling = min(policy.max_delay, policy.base_delay * (2 ** (attempt - 1)))
    return rng.uniform(0, ceiling)


def decide(
    reply: Reply,
    *,
    attempt: int,
    doubt: str | None,
    elapsed: float,
    policy: RetryPolicy,
    rng: random.Random,
    completed_at: str,
) -> Decision:
    """The next step for a row whose *attempt*-th attempt got *reply*.

    *doubt* says why an earlier attempt (in this run or before a crash) may have reached
    the server without its answer being recorded, or is None if none may have."""
    rule = RULES[reply.kind]
    if rule.stop:
        return StopRun(rule.stop)
    if rule.final is not None:
        status = rule.final
        if status is Status.ALREADY_INACTIVE and doubt:
            reply = reply._replace(error_message=f"{reply.error_code} after {doubt}")
            status = Status.REVOKED_UNCONFIRMED
        return _outcome(reply, status, attempt, completed_at)
    if reply.kind is ReplyKind.THROTTLED and reply.retry_after is not None:
        delay = 0.0  # the throttle pauses every worker until Retry-After has passed
    else:
        delay = backoff(attempt, policy, rng)
    wait_for_server = min(reply.retry_after or 0.0, policy.retry_after_cap)
    if attempt >= policy.max_attempts or elapsed + delay + wait_for_server > policy.row_deadline:
        return _outcome(reply, Status.FAILED, attempt, completed_at)
    return Retry(delay)


def doubt_after(reply: Reply, attempt: int) -> str | None:
    """Why *reply* to the *attempt*-th attempt leaves the row in doubt, or None if it
    can't have been applied."""
    if not RULES[reply.kind].may_have_applied or reply.kind is ReplyKind.SUCCESS:
        return None
    if reply.kind is ReplyKind.GATEWAY_ERROR:
        return f"attempt {attempt} got HTTP {reply.http_status} from a gateway"
    return f"attempt {attempt}'s answer was lost: {reply.error_message or reply.error_code}"


#: The doubt of a row sent by an earlier, interrupted run of the same run directory.
DOUBT_FROM_EARLIER_RUN = "a request sent before the run was interrupted got no recorded answer"


def _outcome(reply: Reply, status: Status, attempt: int, completed_at: str) -> Outcome:
    inactive = status in (Status.REVOKED, Status.ALREADY_INACTIVE, Status.REVOKED_UNCONFIRMED)
    keep_error = status is not Status.REVOKED
    return Outcome(
        status=status,
        attempts=attempt,
        is_active=False if inactive else None,
        error_code=reply.error_code if keep_error else None,
        error_source=(reply.source or ErrorSource.HTTP) if keep_error and reply.error_code else None,
        error_message=reply.error_message if keep_error else None,
        http_status=reply.http_status,
        request_id=reply.request_id,
        completed_at=completed_at,
    )


_SECOND: list[Any] = [-1, ""]


def utc_now() -> str:
    """ISO-8601 UTC with milliseconds; the date part is formatted once per second, as this
    runs once per row on the hot path."""
    now = time.time()
    second = int(now)
    if second != _SECOND[0]:
        _SECOND[0] = second
        _SECOND[1] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
    return f"{_SECOND[1]}.{int((now - second) * 1000):03d}Z"
