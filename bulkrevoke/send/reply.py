"""What one attempt's answer means: a typed ``Reply``, from the server's answer or from
the exception aiohttp raised instead.

``classify_response`` reads the body first (Capillary can put an error in a 200) and
judges an answer without the API's JSON envelope by its status alone, never as a verdict
on the row. ``reply_for_exception`` is the one place where aiohttp's exceptions are
mapped to "not sent" or "sent, perhaps applied". How to act on a reply is
``retry.decide``'s job.
"""

from __future__ import annotations

import asyncio
import email.utils
import enum
import json
import re
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from bulkrevoke.model import ErrorSource

try:  # the speed extra: orjson parses answers several times faster
    import orjson

    _json_loads: Callable[[bytes], Any] = orjson.loads
except ImportError:  # pragma: no cover - depends on the extra
    _json_loads = json.loads


class ReplyKind(enum.Enum):
    """What one attempt's answer means (how to act on it is ``retry.decide``'s job)."""

    SUCCESS = "success"  # revoked by this request
    NOT_ACTIVE = "not_active"  # 814: nothing active to revoke
    REJECTED = "rejected"  # the API's own validation error: the row is wrong
    HTTP_ERROR = "http_error"  # a 4xx that is not the API's: says nothing of the row
    UNAUTHORIZED = "unauthorized"  # 401/403
    PROXY_REFUSED = "proxy_refused"  # 407: the proxy wants other credentials
    THROTTLED = "throttled"  # 429
    SERVER_ERROR = "server_error"  # 500/503/520/521…: answered, not applied
    GATEWAY_ERROR = "gateway_error"  # 502/504: the upstream may have applied it
    NOT_SENT = "not_sent"  # failed before the request left (connect, DNS, 408)
    TLS_ERROR = "tls_error"  # the host's certificate was not trusted: nothing sent
    LOST = "lost"  # sent, but no usable answer (timeout, drop, garbage)
    REDIRECT = "redirect"  # 3xx: not followed, credentials stay here
    UNEXPECTED = "unexpected"  # a 2xx that says neither success nor error


class Reply(NamedTuple):
    """One attempt's answer, as the engine and the retry policy read it. (A NamedTuple:
    as immutable as a frozen dataclass, and several times cheaper to build, which shows
    once per attempt.) ``foreign``: the answer is not shaped like the Badges API's (an
    HTML page, a 4xx without its JSON envelope), as a wrong ``--host`` gives."""

    kind: ReplyKind
    http_status: int | None = None
    request_id: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    retry_after: float | None = None
    source: ErrorSource | None = None
    foreign: bool = False


_SERVER_CODES = frozenset({500, 503, 520, 521})
_GATEWAY_CODES = frozenset({502, 504})


def classify_response(
    status: int, body: bytes, request_id: str | None, retry_after: float | None = None, content_type: str = ""
) -> Reply:
    """Read the body first: an error code in the API's envelope wins over the HTTP status.
    An answer without the envelope is judged by its status alone, and never makes a row
    invalid: only the API's own codes and local checks do that."""
    payload = parse_json(body)
    envelope = isinstance(payload, dict) and ("errors" in payload or "data" in payload)
    errors = payload.get("errors") if envelope else None
    if isinstance(errors, list) and errors:
        first = errors[0] if isinstance(errors[0], dict) else {}
        code = first.get("code")
        message = first.get("message")
        code_text = None if code is None else str(code)
        kind = _kind_for_code(code_text, status)
        return Reply(
            kind,
            status,
            request_id,
            code_text or str(status),
            None if message is None else str(message)[:500],
            retry_after,
            ErrorSource.API,
        )
    html = "html" in content_type.lower() or body.lstrip()[:1] == b"<"
    if 300 <= status < 400:
        return Reply(
            ReplyKind.REDIRECT,
            status,
            request_id,
            str(status),
            "redirect not followed",
            source=ErrorSource.HTTP,
        )
    if 200 <= status < 300:
        data = payload.get("data") if isinstance(payload, dict) else None
        if payload is None:
            return Reply(
                ReplyKind.LOST,
                status,
                request_id,
                "malformed_body",
                "HTTP 2xx with a body that is not JSON",
                source=ErrorSource.HTTP,
                foreign=html,
            )
        if isinstance(data, dict) and data.get("isActive") is False:
            return Reply(ReplyKind.SUCCESS, status, request_id)
        return Reply(
            ReplyKind.UNEXPECTED,
            status,
            request_id,
            "unexpected_body",
            "HTTP 2xx without isActive=false and without errors",
            source=ErrorSource.HTTP,
            foreign=not envelope,
        )
    what = f"HTTP {status}" + (" (an HTML page, not the API's JSON)" if html else "")
    if status == 408:  # the server (or a load balancer) says it never read the request
        return Reply(
            ReplyKind.NOT_SENT,
            status,
            request_id,
            "408",
            "HTTP 408: the request was not read",
            source=ErrorSource.HTTP,
        )
    kind = _kind_for_code(None, status)
    if kind is ReplyKind.REJECTED:
        kind = ReplyKind.HTTP_ERROR
    foreign = kind is ReplyKind.HTTP_ERROR or (html and kind is not ReplyKind.THROTTLED and status < 500)
    return Reply(kind, status, request_id, str(status), what, retry_after, ErrorSource.HTTP, foreign)


def _kind_for_code(code: str | None, status: int) -> ReplyKind:
    numeric = int(code) if code is not None and code.isdigit() else None
    for value in (numeric, status):
        if value == 814:
            return ReplyKind.NOT_ACTIVE
        if value in (401, 403):
            return ReplyKind.UNAUTHORIZED
        if value == 429:
            return ReplyKind.THROTTLED
        if value in _GATEWAY_CODES:
            return ReplyKind.GATEWAY_ERROR
        if value in _SERVER_CODES or (value is not None and 500 <= value < 600):
            return ReplyKind.SERVER_ERROR
    if 300 <= status < 400:
        return ReplyKind.REDIRECT
    return ReplyKind.REJECTED


def parse_json(body: bytes) -> Any:
    try:
        return _json_loads(body) if body else None
    except ValueError:  # orjson.JSONDecodeError is a ValueError too
        return None


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP-date)."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(seconds, 0.0) if seconds == seconds else None  # NaN is no answer
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(when.timestamp() - (time.time() if now is None else now), 0.0)


_KEEP_ALIVE_TIMEOUT = re.compile(r"(?:^|[,;\s])timeout\s*=\s*(\d+(?:\.\d+)?)", re.IGNORECASE)


def keep_alive_timeout(header: str | None) -> float | None:
    """The ``timeout=`` of a ``Keep-Alive`` header, in seconds."""
    match = _KEEP_ALIVE_TIMEOUT.search(header or "")
    return float(match.group(1)) if match else None


def reply_for_exception(exc: BaseException, timeout: float) -> Reply:
    """What an aiohttp failure says about the request: not sent (certificate, connector,
    proxy, connect timeout), or sent and perhaps applied (disconnect, payload or parser
    error, read timeout). Order matters: aiohttp's connector errors are ``OSError``s too,
    and its parser errors are ``ClientResponseError``s with a status of 400 that the
    server never sent. Anything not from the network is re-raised: it is a bug."""
    import aiohttp

    def not_sent(code: str, message: str) -> Reply:
        return Reply(ReplyKind.NOT_SENT, None, None, code, message, source=ErrorSource.NETWORK)

    def lost(code: str, message: str) -> Reply:
        return Reply(ReplyKind.LOST, None, None, code, message, source=ErrorSource.NETWORK)

    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return Reply(
            ReplyKind.TLS_ERROR,
            None,
            None,
            "tls_untrusted",
            f"TLS certificate not trusted ({_certificate_problem(exc)}); "
            "trust the host's CA with --ca-bundle",
            source=ErrorSource.NETWORK,
        )
    if isinstance(exc, aiohttp.ClientConnectorSSLError | aiohttp.ClientSSLError):
        return not_sent("tls_handshake", f"TLS handshake failed: {_tls_problem(exc)}")
    if isinstance(exc, aiohttp.ClientProxyConnectionError):
        return not_sent("proxy_unreachable", f"could not connect to the proxy ({_os_reason(exc)})")
    if isinstance(exc, aiohttp.ClientHttpProxyError):
        if exc.status == 407:
            return Reply(
                ReplyKind.PROXY_REFUSED,
                None,
                None,
                "proxy_auth",
                "the proxy refused its credentials (HTTP 407): check the proxy URL's user and password",
                source=ErrorSource.NETWORK,
            )
        return not_sent("proxy_refused", f"the proxy refused the tunnel (HTTP {exc.status})")
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return not_sent("dns_error", f"could not resolve the host ({_os_reason(exc)})")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return not_sent("connect_error", f"could not connect ({_os_reason(exc)})")
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return not_sent("connect_timeout", "no connection within the connect timeout")
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return lost("connection_lost", "the server closed the connection without an answer")
    if isinstance(exc, aiohttp.ClientPayloadError):
        return lost(
            "answer_cut_short", f"the answer's body was cut short or undecodable ({_first_line(exc)})"
        )
    if isinstance(exc, aiohttp.ClientResponseError):  # the parser's, not the server's
        return lost("malformed_answer", f"the answer was not valid HTTP ({_first_line(exc.message)})")
    if isinstance(exc, aiohttp.ClientOSError | aiohttp.ClientConnectionError):
        return lost("connection_lost", f"the connection failed after sending ({_os_reason(exc)})")
    if isinstance(exc, asyncio.TimeoutError):  # ServerTimeoutError (sock_read) is one too
        return lost("timeout", f"no answer within {timeout:g}s")
    raise exc


def _first_line(what: BaseException | str) -> str:
    text = str(what).strip().splitlines()
    return (text[0] if text else type(what).__name__)[:200]


def _os_reason(exc: BaseException) -> str:
    os_error = getattr(exc, "os_error", None)
    if isinstance(os_error, OSError) and os_error.strerror:
        return os_error.strerror
    return _first_line(exc)


def _certificate_problem(exc: BaseException) -> str:
    certificate_error = getattr(exc, "certificate_error", None)
    reason = getattr(certificate_error, "verify_message", None) or _first_line(certificate_error or exc)
    return str(reason)


_TLS_REASONS = {
    "WRONG_VERSION_NUMBER": "the server does not speak TLS on this port (protocol mismatch)",
    "UNSUPPORTED_PROTOCOL": "no TLS version in common with the server",
    "NO_PROTOCOLS_AVAILABLE": "no TLS version in common with the server",
    "SSLV3_ALERT_HANDSHAKE_FAILURE": "the server sent a handshake_failure alert",
    "TLSV1_ALERT_INTERNAL_ERROR": "the server sent an internal_error alert",
    "TLSV1_ALERT_PROTOCOL_VERSION": "the server sent a protocol_version alert",
    "UNEXPECTED_EOF_WHILE_READING": "the server closed the connection during the handshake",
}


def _tls_problem(exc: BaseException) -> str:
    inner = getattr(exc, "os_error", None) or exc.__cause__ or exc
    reason = getattr(inner, "reason", None)
    if isinstance(reason, str):
        if reason in _TLS_REASONS:
            return _TLS_REASONS[reason]
        if "ALERT" in reason:
            return f"the server sent an alert ({reason.lower()})"
        return reason.lower().replace("_", " ")
    return _os_reason(exc)
