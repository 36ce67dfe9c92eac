"""The only code that speaks HTTP to Capillary: one call, one typed ``Reply``.

Every request of a run (revocations and OAuth token calls) goes through one tuned
``aiohttp.ClientSession``: aiohttp owns the wire (HTTP/1.1 parsing, TLS, proxies, happy
eyeballs, gzip/deflate bodies), this module configures it and reads its answers. It
builds the request (auth header, identifier header, JSON body), reads the body before
the status (Capillary can put an error in a 200), keeps ``X-Cap-Requestid``, and turns
aiohttp's exceptions into a ``Reply`` in one place (``reply_for_exception``). It never
retries (except the one token renewal that OAuth asks for): that is the engine's job.

The session's settings and why:
- at most ``concurrency`` connections (one per request in flight), plus two for tokens;
- idle connections are dropped after ``IDLE_SECONDS``, below the 5 seconds that servers
  and load balancers commonly keep one open, and below a ``Keep-Alive: timeout=`` the
  server announces: a request never goes out on a socket the server is about to close;
- no cookie jar, no redirects followed (credentials stay on the configured host), no
  ``~/.netrc`` or proxy variables read by aiohttp (``trust_env=False``: the proxy is
  chosen once, before ingest, by ``proxies.choose_proxy``).
"""

from __future__ import annotations

import asyncio
import email.utils
import enum
import json
import re
import ssl
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from ._version import __version__
from .auth import OAuthTokens, TokenUnavailable, basic_authorization
from .config import IDENTIFIER_TYPES, Credentials
from .errors import SafetyStop
from .ledger import PendingRow
from .outcome import ErrorSource
from .proxies import Proxy

if TYPE_CHECKING:
    import aiohttp

REVOKE_PATH = "/api_gateway/v1/badges/customer/revokeEarn"
#: Idle keep-alive connections are closed after this long (seconds).
IDLE_SECONDS = 4.0
#: The shortest idle time a server's ``Keep-Alive: timeout=`` can bring it down to.
MIN_IDLE_SECONDS = 0.5

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
    REJECTED = "rejected"            # the API's own validation error: the row is wrong
    HTTP_ERROR = "http_error"        # a 4xx that is not the API's: says nothing of the row
    UNAUTHORIZED = "unauthorized"    # 401/403
    PROXY_REFUSED = "proxy_refused"  # 407: the proxy wants other credentials
    THROTTLED = "throttled"          # 429
    SERVER_ERROR = "server_error"    # 500/503/520/521…: answered, not applied
    GATEWAY_ERROR = "gateway_error"  # 502/504: the upstream may have applied it
    NOT_SENT = "not_sent"            # failed before the request left (connect, DNS, 408)
    TLS_ERROR = "tls_error"          # the host's certificate was not trusted: nothing sent
    LOST = "lost"                    # sent, but no usable answer (timeout, drop, garbage)
    REDIRECT = "redirect"            # 3xx: not followed, credentials stay here
    UNEXPECTED = "unexpected"        # a 2xx that says neither success nor error


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


class Revoker(Protocol):
    """The seam in front of the network: tests may hand in any object with this method."""

    async def revoke_earned_badge(self, row: PendingRow) -> Reply: ...


_SERVER_CODES = frozenset({500, 503, 520, 521})
_GATEWAY_CODES = frozenset({502, 504})


def classify_response(status: int, body: bytes, request_id: str | None,
                      retry_after: float | None = None, content_type: str = "") -> Reply:
    """Read the body first: an error code in the API's envelope wins over the HTTP status.
    An answer without the envelope is judged by its status alone, and never makes a row
    invalid: only the API's own codes and local checks do that."""
    payload = _parse(body)
    envelope = isinstance(payload, dict) and ("errors" in payload or "data" in payload)
    errors = payload.get("errors") if envelope else None
    if isinstance(errors, list) and errors:
        first = errors[0] if isinstance(errors[0], dict) else {}
        code = first.get("code")
        message = first.get("message")
        code_text = None if code is None else str(code)
        kind = _kind_for_code(code_text, status)
        return Reply(kind, status, request_id, code_text or str(status),
                     None if message is None else str(message)[:500], retry_after, ErrorSource.API)
    html = "html" in content_type.lower() or body.lstrip()[:1] == b"<"
    if 300 <= status < 400:
        return Reply(ReplyKind.REDIRECT, status, request_id, str(status), "redirect not followed",
                     source=ErrorSource.HTTP)
    if 200 <= status < 300:
        data = payload.get("data") if isinstance(payload, dict) else None
        if payload is None:
            return Reply(ReplyKind.LOST, status, request_id, "malformed_body",
                         "HTTP 2xx with a body that is not JSON", source=ErrorSource.HTTP,
                         foreign=html)
        if isinstance(data, dict) and data.get("isActive") is False:
            return Reply(ReplyKind.SUCCESS, status, request_id)
        return Reply(ReplyKind.UNEXPECTED, status, request_id, "unexpected_body",
                     "HTTP 2xx without isActive=false and without errors", source=ErrorSource.HTTP,
                     foreign=not envelope)
    what = f"HTTP {status}" + (" (an HTML page, not the API's JSON)" if html else "")
    if status == 408:  # the server (or a load balancer) says it never read the request
        return Reply(ReplyKind.NOT_SENT, status, request_id, "408",
                     "HTTP 408: the request was not read", source=ErrorSource.HTTP)
    kind = _kind_for_code(None, status)
    if kind is ReplyKind.REJECTED:
        kind = ReplyKind.HTTP_ERROR
    foreign = kind is ReplyKind.HTTP_ERROR or (html and kind is not ReplyKind.THROTTLED
                                               and status < 500)
    return Reply(kind, status, request_id, str(status), what, retry_after, ErrorSource.HTTP,
                 foreign)


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


def tls_context(ca_bundle: Path | None) -> ssl.SSLContext:
    """Verification always on: the system's CAs, plus *ca_bundle* where given. Raises
    ``ssl.SSLError`` or ``OSError`` for a bundle that can't be loaded."""
    context = ssl.create_default_context()
    if ca_bundle is not None:
        context.load_verify_locations(cafile=str(ca_bundle))
    return context


class CapillaryClient:
    """Requests to one host with one set of credentials, on one aiohttp session."""

    def __init__(self, base_url: str, credentials: Credentials, *, timeout: float,
                 concurrency: int, ca_bundle: Path | None = None, proxy: Proxy | None = None,
                 resolver: Any = None) -> None:
        self._base_url = base_url
        self._credentials = credentials
        self._timeout = timeout
        self._concurrency = concurrency
        self._ca_bundle = ca_bundle
        self._proxy = proxy
        self._resolver = resolver  # a test seam: an aiohttp resolver instead of DNS
        self._session: aiohttp.ClientSession | None = None
        self._connector: aiohttp.TCPConnector | None = None
        self._tokens = (OAuthTokens(base_url, credentials.client_key or "",
                                    credentials.client_secret or "")
                        if credentials.uses_oauth else None)
        self._headers: dict[str, dict[str, str]] = {}
        self._url: Any = None
        self._idle = IDLE_SECONDS

    async def __aenter__(self) -> CapillaryClient:
        import aiohttp
        from yarl import URL

        # Loading the system's CA store is costly: only when the host speaks TLS (plain
        # http is loopback-only anyway).
        context: ssl.SSLContext | bool = (tls_context(self._ca_bundle)
                                          if self._base_url.startswith("https:") else False)
        self._connector = aiohttp.TCPConnector(
            limit=self._concurrency + 2, keepalive_timeout=IDLE_SECONDS, ssl=context,
            resolver=self._resolver)
        self._session = aiohttp.ClientSession(
            connector=self._connector,
            timeout=aiohttp.ClientTimeout(
                total=self._timeout,
                # Below the total, so that a slow connect is told apart from a lost answer.
                sock_connect=min(self._timeout / 2, 10.0)),
            cookie_jar=aiohttp.DummyCookieJar(), trust_env=False, auto_decompress=True,
            raise_for_status=False)
        self._url = URL(self._base_url + REVOKE_PATH)
        base = {"Content-Type": "application/json", "Accept": "application/json",
                "User-Agent": f"bulkrevoke/{__version__}"}
        if self._credentials.uses_basic and self._tokens is None:
            base["Authorization"] = basic_authorization(
                self._credentials.username or "", self._credentials.password or "")
        for kind in IDENTIFIER_TYPES:
            self._headers[kind] = (base if kind == "id"
                                   else {**base, "X-CAP-CUSTOMER-IDENTIFIER": kind})
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
            token_header = await self._tokens.header(self._token_call)
            reply = await self._post(body, {**headers, **token_header})
            if reply.kind is ReplyKind.UNAUTHORIZED:
                # One renewal, then the same request again: a token may expire early.
                await self._tokens.renew(self._token_call, token_header["X-CAP-API-OAUTH-TOKEN"])
                token_header = await self._tokens.header(self._token_call)
                reply = await self._post(body, {**headers, **token_header})
        except TokenUnavailable as exc:
            return Reply(ReplyKind.NOT_SENT, None, None, "token_unavailable", str(exc),
                         source=ErrorSource.NETWORK)
        return reply

    async def _token_call(self, url: str, payload: dict[str, str]) -> tuple[int, Any]:
        """POST *payload* to the token endpoint: (status, parsed JSON body or None)."""
        assert self._session is not None
        try:
            async with self._session.post(url, json=payload, allow_redirects=False,
                                          proxy=self._proxy_url) as response:
                return response.status, _parse(await response.read())
        except Exception as exc:  # mapped, or re-raised as a bug, in one place
            reply = reply_for_exception(exc, self._timeout)
            if reply.kind in (ReplyKind.TLS_ERROR, ReplyKind.PROXY_REFUSED):
                raise SafetyStop(f"token endpoint: {reply.error_message}") from None
            raise TokenUnavailable(f"token endpoint unreachable: {reply.error_message}") from None

    @property
    def _proxy_url(self) -> str | None:
        return None if self._proxy is None else self._proxy.url

    async def _post(self, body: bytes, headers: dict[str, str]) -> Reply:
        assert self._session is not None
        try:
            async with self._session.post(self._url, data=body, headers=headers,
                                          allow_redirects=False,
                                          proxy=self._proxy_url) as response:
                payload = await response.read()
                status, answer_headers = response.status, response.headers
        except Exception as exc:  # mapped, or re-raised as a bug, in one place
            return reply_for_exception(exc, self._timeout)
        self._honour_keep_alive(answer_headers.get("Keep-Alive"))
        request_id = answer_headers.get("X-Cap-Requestid")
        if 300 <= status < 400:
            location = answer_headers.get("Location", "")
            return Reply(ReplyKind.REDIRECT, status, request_id, str(status),
                         f"redirect to {location[:200]!r} not followed", source=ErrorSource.HTTP)
        retry_after = (parse_retry_after(answer_headers.get("Retry-After"))
                       if status in (429, 503) else None)
        return classify_response(status, payload, request_id, retry_after,
                                 answer_headers.get("Content-Type", ""))

    def _honour_keep_alive(self, header: str | None) -> None:
        """Keep idle connections for less than the server said it keeps them. aiohttp's
        connector has one idle limit for all its connections and no public setter: the
        limit is the connector's ``_keepalive_timeout`` (tests check that it takes)."""
        if header is None:
            return
        announced = keep_alive_timeout(header)
        if announced is None or announced - 1.0 >= self._idle:
            return
        self._idle = max(announced - 1.0, MIN_IDLE_SECONDS)
        if self._connector is not None and hasattr(self._connector, "_keepalive_timeout"):
            self._connector._keepalive_timeout = self._idle


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
        return Reply(ReplyKind.TLS_ERROR, None, None, "tls_untrusted",
                     f"TLS certificate not trusted ({_certificate_problem(exc)}); "
                     "trust the host's CA with --ca-bundle", source=ErrorSource.NETWORK)
    if isinstance(exc, aiohttp.ClientConnectorSSLError | aiohttp.ClientSSLError):
        return not_sent("tls_handshake", f"TLS handshake failed: {_tls_problem(exc)}")
    if isinstance(exc, aiohttp.ClientProxyConnectionError):
        return not_sent("proxy_unreachable", f"could not connect to the proxy ({_os_reason(exc)})")
    if isinstance(exc, aiohttp.ClientHttpProxyError):
        if exc.status == 407:
            return Reply(ReplyKind.PROXY_REFUSED, None, None, "proxy_auth",
                         "the proxy refused its credentials (HTTP 407): check the proxy URL's "
                         "user and password", source=ErrorSource.NETWORK)
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
        return lost("answer_cut_short", f"the answer's body was cut short or undecodable "
                                        f"({_first_line(exc)})")
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
    reason = getattr(certificate_error, "verify_message", None) or _first_line(
        certificate_error or exc)
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
