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

import json
import ssl
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol
from urllib.parse import quote

from bulkrevoke._version import __version__
from bulkrevoke.errors import SafetyStop
from bulkrevoke.model import IDENTIFIER_TYPES, ErrorSource, PendingRow
from bulkrevoke.proxies import Proxy
from bulkrevoke.send.auth import OAuthTokens, TokenUnavailable, basic_authorization
from bulkrevoke.send.reply import (
    Reply,
    ReplyKind,
    classify_response,
    keep_alive_timeout,
    parse_json,
    parse_retry_after,
    reply_for_exception,
)
from bulkrevoke.values import Credentials

if TYPE_CHECKING:
    import aiohttp

REVOKE_PATH = "/api_gateway/v1/badges/customer/revokeEarn"
READ_PATH = "/api_gateway/v1/badges/management/{customer}/badge/{badge_meta_id}"
#: Idle keep-alive connections are closed after this long (seconds).
IDLE_SECONDS = 4.0
#: The shortest idle time a server's ``Keep-Alive: timeout=`` can bring it down to.
MIN_IDLE_SECONDS = 0.5

# A JSON string literal, escaped (C speed: this runs three times per row).
_json_string = json.encoder.encode_basestring_ascii


class BadgeReading(NamedTuple):
    """What the read endpoint says of one customer's earned badges of one badge meta id.
    ``reply`` is SUCCESS when the API answered with data; ``states`` maps each earned badge
    id that an item names to whether it is active; ``active_count`` is
    ``data.activeEarnedCount``."""

    reply: Reply
    states: dict[str, bool]
    active_count: int | None


class Revoker(Protocol):
    """The seam in front of the network: tests may hand in any object with this method."""

    async def revoke_earned_badge(self, row: PendingRow) -> Reply: ...


def tls_context(ca_bundle: Path | None) -> ssl.SSLContext:
    """Verification always on: the system's CAs, plus *ca_bundle* where given. Raises
    ``ssl.SSLError`` or ``OSError`` for a bundle that can't be loaded."""
    context = ssl.create_default_context()
    if ca_bundle is not None:
        context.load_verify_locations(cafile=str(ca_bundle))
    return context


def open_session(
    base_url: str, *, timeout: float, connections: int, ca_bundle: Path | None, resolver: Any = None
) -> aiohttp.ClientSession:
    """The aiohttp session of a run (see the module's docstring for each setting)."""
    import aiohttp

    # Loading the system's CA store is costly: only when the host speaks TLS (plain http
    # is loopback-only anyway).
    context: ssl.SSLContext | bool = tls_context(ca_bundle) if base_url.startswith("https:") else False
    connector = aiohttp.TCPConnector(
        limit=connections, keepalive_timeout=IDLE_SECONDS, ssl=context, resolver=resolver
    )
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(
            total=timeout,
            # Below the total, so that a slow connect is told apart from a lost answer.
            sock_connect=min(timeout / 2, 10.0),
        ),
        cookie_jar=aiohttp.DummyCookieJar(),
        trust_env=False,
        auto_decompress=True,
        raise_for_status=False,
    )


class CapillaryClient:
    """Requests to one host with one set of credentials, on one aiohttp session."""

    def __init__(
        self,
        base_url: str,
        credentials: Credentials,
        *,
        timeout: float,
        concurrency: int,
        ca_bundle: Path | None = None,
        proxy: Proxy | None = None,
        resolver: Any = None,
    ) -> None:
        self._base_url = base_url
        self._credentials = credentials
        self._timeout = timeout
        self._concurrency = concurrency
        self._ca_bundle = ca_bundle
        self._proxy = proxy
        self._resolver = resolver  # a test seam: an aiohttp resolver instead of DNS
        self._session: aiohttp.ClientSession | None = None
        self._connector: aiohttp.BaseConnector | None = None
        self._tokens = (
            OAuthTokens(base_url, credentials.client_key or "", credentials.client_secret or "")
            if credentials.uses_oauth
            else None
        )
        self._headers: dict[str, dict[str, str]] = {}
        self._url: Any = None
        self._idle = IDLE_SECONDS

    async def __aenter__(self) -> CapillaryClient:
        from yarl import URL

        self._session = open_session(
            self._base_url,
            timeout=self._timeout,
            connections=self._concurrency + 2,
            ca_bundle=self._ca_bundle,
            resolver=self._resolver,
        )
        self._connector = self._session.connector
        self._url = URL(self._base_url + REVOKE_PATH)
        base = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": f"bulkrevoke/{__version__}",
        }
        if self._credentials.uses_basic and self._tokens is None:
            base["Authorization"] = basic_authorization(
                self._credentials.username or "", self._credentials.password or ""
            )
        for kind in IDENTIFIER_TYPES:
            self._headers[kind] = base if kind == "id" else {**base, "X-CAP-CUSTOMER-IDENTIFIER": kind}
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    async def revoke_earned_badge(self, row: PendingRow) -> Reply:
        # customerId is a JSON number for type id (validated as digits), a string otherwise.
        customer = str(int(row.customer_id)) if row.identifier_type == "id" else _json_string(row.customer_id)
        body = (
            f'{{"badgeMetaId":{_json_string(row.badge_meta_id)},"customerId":{customer},'
            f'"earnedBadgeId":{_json_string(row.earned_badge_id)}}}'
        ).encode()
        reply, _ = await self._authorized("POST", self._url, body, self._headers[row.identifier_type])
        return reply

    async def read_earned_badges(
        self, customer_id: str, identifier_type: str, badge_meta_id: str
    ) -> BadgeReading:
        """The customer's earned badges of *badge_meta_id*, with their states. Input values
        go into the path percent-encoded, every character of them."""
        from yarl import URL

        path = READ_PATH.format(
            customer=quote(customer_id, safe=""), badge_meta_id=quote(badge_meta_id, safe="")
        )
        url = URL(self._base_url + path + "?includeStatistics=true", encoded=True)
        headers = {k: v for k, v in self._headers[identifier_type].items() if k != "Content-Type"}
        reply, payload = await self._authorized("GET", url, None, headers)
        data = payload.get("data") if isinstance(payload, dict) else None
        if reply.kind is not ReplyKind.UNEXPECTED or not isinstance(data, dict):
            return BadgeReading(reply, {}, None)
        count = data.get("activeEarnedCount")
        return BadgeReading(
            reply._replace(kind=ReplyKind.SUCCESS),
            earned_states(data),
            count if isinstance(count, int) and not isinstance(count, bool) else None,
        )

    async def _authorized(
        self, method: str, url: Any, body: bytes | None, headers: dict[str, str]
    ) -> tuple[Reply, Any]:
        """One exchange with the auth header, and with OAuth one renewal after a 401."""
        if self._tokens is None:
            return await self._exchange(method, url, body, headers)
        try:
            token_header = await self._tokens.header(self._token_call)
            reply, payload = await self._exchange(method, url, body, {**headers, **token_header})
            if reply.kind is ReplyKind.UNAUTHORIZED:
                # One renewal, then the same request again: a token may expire early.
                await self._tokens.renew(self._token_call, token_header["X-CAP-API-OAUTH-TOKEN"])
                token_header = await self._tokens.header(self._token_call)
                reply, payload = await self._exchange(method, url, body, {**headers, **token_header})
        except TokenUnavailable as exc:
            return Reply(
                ReplyKind.NOT_SENT, None, None, "token_unavailable", str(exc), source=ErrorSource.NETWORK
            ), None
        return reply, payload

    async def _token_call(self, url: str, payload: dict[str, str]) -> tuple[int, Any]:
        """POST *payload* to the token endpoint: (status, parsed JSON body or None)."""
        assert self._session is not None
        try:
            async with self._session.post(
                url, json=payload, allow_redirects=False, proxy=self._proxy_url
            ) as response:
                return response.status, parse_json(await response.read())
        except Exception as exc:  # mapped, or re-raised as a bug, in one place
            reply = reply_for_exception(exc, self._timeout)
            if reply.kind in (ReplyKind.TLS_ERROR, ReplyKind.PROXY_REFUSED):
                raise SafetyStop(f"token endpoint: {reply.error_message}") from None
            raise TokenUnavailable(f"token endpoint unreachable: {reply.error_message}") from None

    @property
    def _proxy_url(self) -> str | None:
        return None if self._proxy is None else self._proxy.url

    async def _exchange(
        self, method: str, url: Any, body: bytes | None, headers: dict[str, str]
    ) -> tuple[Reply, Any]:
        """One request: its Reply, and its body parsed as JSON (None if it is not)."""
        assert self._session is not None
        try:
            async with self._session.request(
                method, url, data=body, headers=headers, allow_redirects=False, proxy=self._proxy_url
            ) as response:
                payload = await response.read()
                status, answer_headers = response.status, response.headers
        except Exception as exc:  # mapped, or re-raised as a bug, in one place
            return reply_for_exception(exc, self._timeout), None
        self._honour_keep_alive(answer_headers.get("Keep-Alive"))
        request_id = answer_headers.get("X-Cap-Requestid")
        if 300 <= status < 400:
            location = answer_headers.get("Location", "")
            return Reply(
                ReplyKind.REDIRECT,
                status,
                request_id,
                str(status),
                f"redirect to {location[:200]!r} not followed",
                source=ErrorSource.HTTP,
            ), None
        retry_after = parse_retry_after(answer_headers.get("Retry-After")) if status in (429, 503) else None
        return (
            classify_response(
                status, payload, request_id, retry_after, answer_headers.get("Content-Type", "")
            ),
            parse_json(payload),
        )

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


_ACTIVE_WORDS = frozenset({"ACTIVE", "EARNED", "ISSUED", "ENABLED"})
_INACTIVE_WORDS = frozenset({"INACTIVE", "REVOKED", "EXPIRED", "DISABLED", "DELETED"})


def earned_states(data: dict[str, Any]) -> dict[str, bool]:
    """Earned badge id → active, for each ``data.earnDetails.earns[]`` item that names its
    id (``earnedBadgeId`` or ``id``) and its state (``isActive`` or ``active`` as a boolean,
    or ``status``/``state`` as a word). Items that name neither are left out: Capillary's
    public docs do not show the item's shape, so nothing is guessed."""
    details = data.get("earnDetails")
    earns = details.get("earns") if isinstance(details, dict) else None
    states: dict[str, bool] = {}
    for item in earns if isinstance(earns, list) else ():
        if not isinstance(item, dict):
            continue
        ident = item.get("earnedBadgeId", item.get("id"))
        state = _item_state(item)
        if isinstance(ident, str) and state is not None:
            states[ident] = state
    return states


def _item_state(item: dict[str, Any]) -> bool | None:
    for key in ("isActive", "active"):
        if isinstance(item.get(key), bool):
            return bool(item[key])
    for key in ("status", "state"):
        word = item.get(key)
        if isinstance(word, str) and word.strip().upper() in _ACTIVE_WORDS:
            return True
        if isinstance(word, str) and word.strip().upper() in _INACTIVE_WORDS:
            return False
    return None
