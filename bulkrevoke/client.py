"""The only code that speaks HTTP to Capillary: one call, one typed ``Reply``.

It builds the request (auth header, identifier header, JSON body), reads the body
before the status (Capillary can put an error in a 200), keeps ``X-Cap-Requestid``,
and turns every aiohttp exception into a ``Reply`` in one place. It never retries
(except the one token renewal that OAuth asks for); that is the engine's job.
"""

from __future__ import annotations

import email.utils
import enum
import json
import ssl
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from ._version import __version__
from .auth import OAuthTokens, TokenUnavailable, basic_authorization
from .config import Credentials
from .ledger import PendingRow
from .outcome import ErrorSource

REVOKE_PATH = "/api_gateway/v1/badges/customer/revokeEarn"

# A JSON string literal, escaped (C speed: this runs three times per row).
_json_string = json.encoder.encode_basestring_ascii
try:  # the speed extra: orjson parses answers several times faster
    import orjson

    _json_loads: Callable[[bytes], Any] = orjson.loads
except ImportError:  # pragma: no cover - depends on the extra
    _json_loads = json.loads


class ReplyKind(enum.Enum):
    """What one attempt's answer means (how to act on it is ``retry.decide``'s job)."""

    SUCCESS = "success"              # revoked by this request
    NOT_ACTIVE = "not_active"        # 814: nothing active to revoke
    REJECTED = "rejected"            # validation error or other 4xx: the request is wrong
    UNAUTHORIZED = "unauthorized"    # 401/403
    THROTTLED = "throttled"          # 429
    SERVER_ERROR = "server_error"    # 500/503/520/521…: answered, not applied
    GATEWAY_ERROR = "gateway_error"  # 502/504: the upstream may have applied it
    NOT_SENT = "not_sent"            # failed before the request left (connect, DNS)
    TLS_ERROR = "tls_error"          # the host's certificate was not trusted: nothing sent
    LOST = "lost"                    # sent, but no usable answer (timeout, drop, garbage)
    REDIRECT = "redirect"            # 3xx: not followed, credentials stay here
    UNEXPECTED = "unexpected"        # a 2xx that says neither success nor error


class Reply(NamedTuple):
    """One attempt's answer, as the engine and the retry policy read it. (A NamedTuple:
    as immutable as a frozen dataclass, and several times cheaper to build, which shows
    once per attempt.)"""

    kind: ReplyKind
    http_status: int | None = None
    request_id: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    retry_after: float | None = None
    source: ErrorSource | None = None


class Revoker(Protocol):
    """The seam in front of the network: tests may hand in any object with this method."""

    async def revoke_earned_badge(self, row: PendingRow) -> Reply: ...


_SERVER_CODES = frozenset({500, 503, 520, 521})
_GATEWAY_CODES = frozenset({502, 504})


def classify_response(status: int, body: bytes, request_id: str | None,
                      retry_after: float | None = None) -> Reply:
    """Read the body first: an error code in it wins over the HTTP status."""
    payload = _parse(body)
    errors = payload.get("errors") if isinstance(payload, dict) else None
    if isinstance(errors, list) and errors:
        first = errors[0] if isinstance(errors[0], dict) else {}
        code = first.get("code")
        message = first.get("message")
        code_text = None if code is None else str(code)
        kind = _kind_for_code(code_text, status)
        return Reply(kind, status, request_id, code_text or str(status),
                     None if message is None else str(message)[:500], retry_after, ErrorSource.API)
    if 300 <= status < 400:
        return Reply(ReplyKind.REDIRECT, status, request_id, str(status), "redirect not followed",
                     source=ErrorSource.HTTP)
    if 200 <= status < 300:
        data = payload.get("data") if isinstance(payload, dict) else None
        if payload is None:
            return Reply(ReplyKind.LOST, status, request_id, "malformed_body",
                         "HTTP 2xx with a body that is not JSON", source=ErrorSource.HTTP)
        if isinstance(data, dict) and data.get("isActive") is False:
            return Reply(ReplyKind.SUCCESS, status, request_id)
        return Reply(ReplyKind.UNEXPECTED, status, request_id, "unexpected_body",
                     "HTTP 2xx without isActive=false and without errors", source=ErrorSource.HTTP)
    kind = _kind_for_code(None, status)
    return Reply(kind, status, request_id, str(status), f"HTTP {status}", retry_after,
                 ErrorSource.HTTP)


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


def _parse(body: bytes) -> Any:
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
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(when.timestamp() - (time.time() if now is None else now), 0.0)


class CapillaryClient:
    """Requests to one host with one set of credentials: the revocations on lean
    keep-alive connections (``http1``), OAuth token calls on an aiohttp session."""

    def __init__(self, base_url: str, credentials: Credentials, *, timeout: float,
                 concurrency: int, ca_bundle: Path | None = None) -> None:
        self._base_url = base_url
        self._credentials = credentials
        self._timeout = timeout
        self._concurrency = concurrency
        self._ca_bundle = ca_bundle
        self._session: Any = None
        self._pool: Any = None
        self._tokens = (OAuthTokens(base_url, credentials.client_key or "",
                                    credentials.client_secret or "")
                        if credentials.uses_oauth else None)
        self._headers: dict[str, dict[str, str]] = {}
        self._heads: dict[str, bytes] = {}

    async def __aenter__(self) -> CapillaryClient:
        from .http1 import ConnectionPool

        context: ssl.SSLContext | None = None
        if self._base_url.startswith("https:"):
            # Verification always on; loading the system's CA store is costly, so it is
            # done only when the host speaks TLS (plain http is loopback-only anyway).
            context = ssl.create_default_context()
            if self._ca_bundle is not None:
                context.load_verify_locations(cafile=str(self._ca_bundle))
        self._pool = ConnectionPool(self._base_url, ssl_context=context,
                                    connect_timeout=min(self._timeout, 10.0))
        if self._tokens is not None:
            import aiohttp  # only for OAuth's token calls: a Basic run never loads it

            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=2, ssl=context or True),
                timeout=aiohttp.ClientTimeout(total=self._timeout,
                                              connect=min(self._timeout, 10.0)),
                cookie_jar=aiohttp.DummyCookieJar())
        base = {"Content-Type": "application/json", "Accept": "application/json",
                "User-Agent": f"bulkrevoke/{__version__}"}
        if self._credentials.uses_basic and self._tokens is None:
            base["Authorization"] = basic_authorization(
                self._credentials.username or "", self._credentials.password or "")
        for kind in ("id", "mobile", "email", "externalId", "cardNumber"):
            headers = base if kind == "id" else {**base, "X-CAP-CUSTOMER-IDENTIFIER": kind}
            self._headers[kind] = headers
            self._heads[kind] = self._pool.prepare(REVOKE_PATH, headers)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.close()
        if self._session is not None:
            await self._session.close()

    async def revoke_earned_badge(self, row: PendingRow) -> Reply:
        # customerId is a JSON number for type id (validated as digits), a string otherwise.
        customer = (str(int(row.customer_id)) if row.identifier_type == "id"
                    else _json_string(row.customer_id))
        body = (f'{{"badgeMetaId":{_json_string(row.badge_meta_id)},"customerId":{customer},'
                f'"earnedBadgeId":{_json_string(row.earned_badge_id)}}}').encode()
        if self._tokens is None:
            return await self._post(body, self._heads[row.identifier_type])
        headers = self._headers[row.identifier_type]
        try:
            token_header = await self._tokens.header(self._session)
            reply = await self._post(body, self._pool.prepare(REVOKE_PATH,
                                                              {**headers, **token_header}))
            if reply.kind is ReplyKind.UNAUTHORIZED:
                # One renewal, then the same request again: a token may expire early.
                await self._tokens.renew(self._session, token_header["X-CAP-API-OAUTH-TOKEN"])
                token_header = await self._tokens.header(self._session)
                reply = await self._post(body, self._pool.prepare(REVOKE_PATH,
                                                                  {**headers, **token_header}))
        except TokenUnavailable as exc:
            return Reply(ReplyKind.NOT_SENT, None, None, "token_unavailable", str(exc),
                         source=ErrorSource.NETWORK)
        return reply

    async def _post(self, body: bytes, head: bytes) -> Reply:
        from .http1 import AnswerLost, AnswerTimeout, ConnectError, TlsError

        try:
            response = await self._pool.post(head, body, self._timeout)
        except TlsError as exc:
            return Reply(ReplyKind.TLS_ERROR, None, None, "tls_error",
                         f"TLS verification failed ({exc}); trust the host's CA with --ca-bundle",
                         source=ErrorSource.NETWORK)
        except ConnectError as exc:
            return Reply(ReplyKind.NOT_SENT, None, None, "connect_error",
                         f"could not connect ({exc})", source=ErrorSource.NETWORK)
        except AnswerTimeout:
            return Reply(ReplyKind.LOST, None, None, "timeout",
                         f"no answer within {self._timeout:g}s", source=ErrorSource.NETWORK)
        except AnswerLost as exc:
            return Reply(ReplyKind.LOST, None, None, "connection_lost", str(exc),
                         source=ErrorSource.NETWORK)
        status, headers = response.status, response.headers
        request_id = headers.get("x-cap-requestid")
        if 300 <= status < 400:
            location = headers.get("location", "")
            return Reply(ReplyKind.REDIRECT, status, request_id, str(status),
                         f"redirect to {location[:200]!r} not followed", source=ErrorSource.HTTP)
        retry_after = (parse_retry_after(headers.get("retry-after"))
                       if status in (429, 503) else None)
        return classify_response(status, response.body, request_id, retry_after)
