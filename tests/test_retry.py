import random

import pytest

from bulkrevoke.model import ErrorSource, Outcome, Status
from bulkrevoke.send.reply import Reply, ReplyKind, classify_response, parse_retry_after
from bulkrevoke.send.retry import Retry, StopRun, backoff, decide, doubt_after
from bulkrevoke.values import RetryPolicy

POLICY = RetryPolicy(max_attempts=4, base_delay=0.5, max_delay=8.0, row_deadline=60.0)


def _decide(reply, attempt=1, doubt=None, elapsed=0.0, policy=POLICY):
    return decide(
        reply,
        attempt=attempt,
        doubt=doubt,
        elapsed=elapsed,
        policy=policy,
        rng=random.Random(1),
        completed_at="2026-01-01T00:00:00.000Z",
    )


def body(code, message="m"):
    return b'{"data":null,"errors":[{"code":%d,"message":"%s","reference":null}],"warnings":null}' % (
        code,
        message.encode(),
    )


SUCCESS = (
    b'{"data":{"badgeMetaId":"a","customerId":1,"earnedBadgeId":"b","isActive":false},'
    b'"errors":[],"warnings":[]}'
)


@pytest.mark.parametrize(
    "status, payload, kind",
    [
        (200, SUCCESS, ReplyKind.SUCCESS),
        (200, body(814), ReplyKind.NOT_ACTIVE),
        (400, body(814), ReplyKind.NOT_ACTIVE),
        (400, body(813), ReplyKind.REJECTED),
        (400, body(715), ReplyKind.REJECTED),
        (200, body(813), ReplyKind.REJECTED),
        (401, body(401), ReplyKind.UNAUTHORIZED),
        (403, b"", ReplyKind.UNAUTHORIZED),
        (429, body(429), ReplyKind.THROTTLED),
        (429, b"too many", ReplyKind.THROTTLED),
        (500, b"", ReplyKind.SERVER_ERROR),
        (503, b"<html>", ReplyKind.SERVER_ERROR),
        (520, body(520), ReplyKind.SERVER_ERROR),
        (200, body(521), ReplyKind.SERVER_ERROR),
        (521, body(521), ReplyKind.SERVER_ERROR),
        (502, b"bad gateway", ReplyKind.GATEWAY_ERROR),
        (504, b"", ReplyKind.GATEWAY_ERROR),
        (200, b'{"data": {"isAct', ReplyKind.LOST),
        (200, b"", ReplyKind.LOST),
        (200, b'{"data":{"isActive":true},"errors":[]}', ReplyKind.UNEXPECTED),
        (302, b"", ReplyKind.REDIRECT),
        (404, b"not found", ReplyKind.HTTP_ERROR),  # a gateway's, not the API's
        (400, b"<html>Bad Request</html>", ReplyKind.HTTP_ERROR),
        (405, b"", ReplyKind.HTTP_ERROR),
        (404, body(813), ReplyKind.REJECTED),  # the API's envelope decides
        (408, b"", ReplyKind.NOT_SENT),  # not read: safe to send again
        (408, b"<html>timeout</html>", ReplyKind.NOT_SENT),
    ],
)
def test_classification_reads_the_body_before_the_status(status, payload, kind):
    assert classify_response(status, payload, "rid-1").kind is kind


def test_body_error_keeps_code_message_and_request_id():
    reply = classify_response(400, body(813, "EarnId is mandatory"), "rid-7")
    assert (reply.error_code, reply.error_message, reply.request_id, reply.source) == (
        "813",
        "EarnId is mandatory",
        "rid-7",
        ErrorSource.API,
    )
    http_only = classify_response(500, b"", "rid-8")
    assert (http_only.error_code, http_only.source) == ("500", ErrorSource.HTTP)


def test_retry_after_seconds_and_http_date():
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == 10.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412490.0) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


@pytest.mark.parametrize(
    "kind, status",
    [
        (ReplyKind.SUCCESS, Status.REVOKED),
        (ReplyKind.NOT_ACTIVE, Status.ALREADY_INACTIVE),
        (ReplyKind.REJECTED, Status.INVALID),
        (ReplyKind.REDIRECT, Status.FAILED),
        (ReplyKind.UNEXPECTED, Status.FAILED),
        (ReplyKind.HTTP_ERROR, Status.FAILED),
    ],
)
def test_final_replies(kind, status):
    outcome = _decide(Reply(kind, 200, "rid", "x", "y"))
    assert isinstance(outcome, Outcome) and outcome.status is status
    assert outcome.request_id == "rid" and outcome.attempts == 1


def test_814_after_a_maybe_applied_attempt_is_unconfirmed():
    reply = Reply(
        ReplyKind.NOT_ACTIVE, 200, "rid", "814", "Active earn instance is not present", source=ErrorSource.API
    )
    lost = Reply(ReplyKind.LOST, None, None, "connection_lost", "connection reset")
    doubt = doubt_after(lost, 1)
    outcome = _decide(reply, attempt=2, doubt=doubt)
    assert outcome.status is Status.REVOKED_UNCONFIRMED and outcome.is_active is False
    assert outcome.error_code == "814" and outcome.error_source is ErrorSource.API
    assert outcome.error_message == "814 after attempt 1's answer was lost: connection reset"


def test_only_answers_that_may_have_been_applied_leave_doubt():
    assert doubt_after(Reply(ReplyKind.NOT_SENT, None, None, "connect_error", "refused"), 1) is None
    assert doubt_after(Reply(ReplyKind.SERVER_ERROR, 500, None, "500", "HTTP 500"), 1) is None
    assert doubt_after(Reply(ReplyKind.GATEWAY_ERROR, 504, None, "504", "HTTP 504"), 3) == (
        "attempt 3 got HTTP 504 from a gateway"
    )


def test_revoked_carries_no_error():
    outcome = _decide(Reply(ReplyKind.SUCCESS, 200, "rid"))
    assert outcome.error_code is None and outcome.is_active is False


@pytest.mark.parametrize(
    "kind",
    [
        ReplyKind.THROTTLED,
        ReplyKind.SERVER_ERROR,
        ReplyKind.GATEWAY_ERROR,
        ReplyKind.NOT_SENT,
        ReplyKind.LOST,
    ],
)
def test_retryable_replies_retry_until_attempts_run_out(kind):
    reply = Reply(kind, None, None, "e", "m")
    assert isinstance(_decide(reply, attempt=1), Retry)
    last = _decide(reply, attempt=POLICY.max_attempts)
    assert isinstance(last, Outcome) and last.status is Status.FAILED
    assert last.attempts == POLICY.max_attempts and last.error_code == "e"


def test_unauthorized_and_untrusted_tls_stop_the_run():
    assert _decide(Reply(ReplyKind.UNAUTHORIZED, 401)) == StopRun("auth")
    assert _decide(Reply(ReplyKind.TLS_ERROR, None)) == StopRun("tls")
    assert _decide(Reply(ReplyKind.PROXY_REFUSED, None)) == StopRun("proxy_auth")


def test_throttled_with_retry_after_leaves_the_wait_to_the_shared_pause():
    decision = _decide(Reply(ReplyKind.THROTTLED, 429, retry_after=5.0))
    assert decision == Retry(0.0)


def test_deadline_ends_retries():
    reply = Reply(ReplyKind.SERVER_ERROR, 503, None, "503", "HTTP 503", retry_after=30.0)
    decision = _decide(reply, attempt=1, elapsed=40.0)
    assert isinstance(decision, Outcome) and decision.status is Status.FAILED


def test_full_jitter_backoff_is_bounded_and_grows():
    rng = random.Random(3)
    for attempt in range(1, 10):
        ceiling = min(POLICY.max_delay, POLICY.base_delay * 2 ** (attempt - 1))
        samples = [backoff(attempt, POLICY, rng) for _ in range(200)]
        assert all(0 <= s <= ceiling for s in samples)
        assert max(samples) > ceiling * 0.8  # full jitter spreads over the whole range
