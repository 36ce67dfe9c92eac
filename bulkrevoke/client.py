"""The only code that speaks HTTP to Capillary: one call, one typed ``Reply``.

It builds the request (auth header, identifier header, JSON body), reads the body
before the status (Capillary can put an error in a 200), keeps ``X-Cap-Requestid``,
and turns every aiohttp exception into a ``Reply`` in one place. It never retries
(except the one token renewal that OAuth asks for); that is the engine's job.
"""

from __future__ import annotations

import asyncio
import email.utils
import enum
import json
import ssl
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ._version import __version__
from .auth import OAuthTokens, TokenUnavailable, basic_authorization
from .config import Credentials
from .ledger import PendingRow
from .outcome import ErrorSource

REVOKE_PATH = "/api_gateway/v1/badges/customer/revokeEarn"

# A JSON string literal, escaped (C speed: this runs three times per row).
_json_string = json.encoder.encode_basestring_ascii
try:  # the speed extra: orjson parses answers several times faster
    from orjson import loads as _json_loads
except ImportError:  # pragma: no cover - depends on the extra
    from json import loads as _json_loads


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


@dataclass(frozen=True, slots=True)
class Reply:
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
    """An aiohttp session bound to one host and one set of credentials."""

    def __init__(self, base_url: str, credentials: Credentials, *, timeout: float,
                 concurrency: int, ca_bundle: Path | None = None) -> None:
        self._base_url = base_url
        self._url_text = base_url + REVOKE_PATH
        self._url: Any = None
        self._credentials = credentials
        self._timeout = timeout
        self._concurrency = concurrency
        self._ca_bundle = ca_bundle
        self._session: Any = None
        self._tokens = (OAuthTokens(base_url, credentials.client_key or "",
                                    credentials.client_secret or "")
                        if credentials.uses_oauth else None)
        self._headers: dict[str, Any] = {}

    async def __aenter__(self) -> CapillaryClient:
        import aiohttp

        context: ssl.SSLContext | bool = True
        if self._url_text.startswith("https:"):
            # Verification always on; loading the system's CA store is costly, so it is
            # done only when the host speaks TLS (plain http is loopback-only anyway).
            context = ssl.create_default_context()
            if self._ca_bundle is not None:
                context.load_verify_locations(cafile=str(self._ca_bundle))
        from multidict import CIMultiDict
        from yarl import URL

        connector = aiohttp.TCPConnector(limit=self._concurrency + 1, ssl=context)
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=self._timeout, connect=min(self._timeout, 10.0)),
            # No cookies: the API needs none, and a jar costs work on every request.
            cookie_jar=aiohttp.DummyCookieJar(),
        )
        self._url = URL(self._url_text)  # parsed once, not per request
        base = {"Content-Type": "application/json", "Accept": "application/json",
                "User-Agent": f"bulkrevoke/{__version__}"}
        if self._credentials.uses_basic and self._tokens is None:
            base["Authorization"] = basic_authorization(
                self._credentials.username or "", self._credentials.password or "")
        self._headers = {
            kind: CIMultiDict(base if kind == "id" else {**base, "X-CAP-CUSTOMER-IDENTIFIER": kind})
            for kind in ("id", "mobile", "email", "externalId", "cardNumber")
        }
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    async def revoke_earned_badge(self, row: PendingRow) -> Reply:
        # customerId is a JSON number for type id (validated as digits), a string otherwise.
        customer = (str(int(row.customer_id)) if row.identifier_type == "id"
                    else _json_string(row.customer_id))
        body = (f'{{"badgeMetaId":{_json_string(row.badge_meta_id)},"customerId":{customer},'
                f'"earnedBadgeId":{_json_string(row.earned_badge_id)}}}').encode()
        headers = self._headers[row.identifier_type]
        if self._tokens is None:
            return await self._post(body, headers)
        try:
            token_header = await self._tokens.header(self._session)
            reply = await self._post(body, {**headers, **token_header})
            if reply.kind is ReplyKind.UNAUTHORIZED:
                # One renewal, then the same request again: a token may expire early.
                await self._tokens.renew(self._session, token_header["X-CAP-API-OAUTH-TOKEN"])
                token_header = await self._tokens.header(self._session)
                reply = await self._post(body, {**headers, **token_header})
        except TokenUnavailable as exc:
            return Reply(ReplyKind.NOT_SENT, None, None, "token_unavailable", str(exc),
                         source=ErrorSource.NETWORK)
        return reply

    async def _post(self, body: bytes, headers: dict[str, str]) -> Reply:
        import aiohttp

        try:
            async with self._session.post(self._url, data=body, headers=headers,
                                          allow_redirects=False) as response:
                payload = await response.read()
                status = response.status
                request_id = response.headers.get("X-Cap-Requestid")
                retry_after = (parse_retry_after(response.headers.get("Retry-After"))
                               if status in (429, 503) else None)
                if 300 <= status < 400:
                    location = response.headers.get("Location", "")
                    return Reply(ReplyKind.REDIRECT, status, request_id, str(status),
                                 f"redirect to {location[:200]!r} not followed",
                                 source=ErrorSource.HTTP)
        except aiohttp.ClientError as exc:
            return _network_reply(exc)
        except asyncio.TimeoutError:
            return Reply(ReplyKind.LOST, None, None, "timeout",
                         f"no answer within {self._timeout:g}s", source=ErrorSource.NETWORK)
        return classify_response(status, payload, request_id, retry_after)


def _network_reply(exc: Exception) -> Reply:
    """Translate aiohttp's exceptions: did the request leave, or may it have landed?"""
    import aiohttp

    name = exc.__class__.__name__
    if isinstance(exc, (aiohttp.ClientConnectorCertificateError, aiohttp.ClientSSLError)):
        return Reply(ReplyKind.TLS_ERROR, None, None, "tls_error",
                     f"TLS verification failed ({name}); trust the host's CA with --ca-bundle",
                     source=ErrorSource.NETWORK)
    if isinstance(exc, (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError)):
        return Reply(ReplyKind.NOT_SENT, None, None, "connect_error", f"could not connect ({name})",
                     source=ErrorSource.NETWORK)
    if isinstance(exc, asyncio.TimeoutError):
        return Reply(ReplyKind.LOST, None, None, "timeout", f"no answer in time ({name})",
                     source=ErrorSource.NETWORK)
    return Reply(ReplyKind.LOST, None, None, "connection_lost", f"connection lost ({name})",
                 source=ErrorSource.NETWORK)
