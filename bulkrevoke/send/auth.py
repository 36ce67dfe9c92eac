"""Capillary authentication: Basic with an MD5-hashed password, or OAuth tokens.

Nothing here logs, prints or puts a secret in an exception message.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from bulkrevoke.errors import ConfigError, SafetyStop
from bulkrevoke.values import Credentials

TOKEN_PATH = "/v3/oauth/token/generate"
#: Renew a token when less than this share of its lifetime is left.
RENEW_FRACTION = 0.2


def basic_authorization(username: str, password: str) -> str:
    """``Basic base64(username:md5_hex(password))``: Capillary hashes the password first."""
    # MD5 is Capillary's choice of scheme, not ours: the header must match what it expects.
    digest = hashlib.md5(password.encode("utf-8")).hexdigest()
    return "Basic " + base64.b64encode(f"{username}:{digest}".encode()).decode("ascii")


class TokenUnavailable(Exception):
    """The token endpoint could not be reached; the row that needed it may be retried."""


#: ``post(url, payload) -> (status, parsed JSON or None)``: the client's token call.
TokenPost = Callable[[str, dict[str, str]], Awaitable[tuple[int, Any]]]
#: What may go into the token header: visible ASCII, no spaces (a JWT is far narrower).
_HEADER_SAFE = re.compile(r"[\x21-\x7e]+")


class OAuthTokens:
    """Holds one access token, renews it before it expires and once after a 401.

    Renewal is serialised so that N workers hitting an expiry cause one request."""

    def __init__(self, base_url: str, key: str, secret: str) -> None:
        self._url = base_url + TOKEN_PATH
        self._body = {"key": key, "secret": secret}
        self._token: str | None = None
        self._renew_at = 0.0
        self._lock = asyncio.Lock()
        self.renewals = 0

    async def header(self, post: TokenPost) -> dict[str, str]:
        if self._token is None or time.monotonic() >= self._renew_at:
            await self.renew(post, self._token)
        assert self._token is not None
        return {"X-CAP-API-OAUTH-TOKEN": self._token}

    def current(self) -> str | None:
        return self._token

    async def renew(self, post: TokenPost, stale: str | None) -> None:
        """Fetch a new token unless another worker already replaced *stale*."""
        async with self._lock:
            if self._token is not None and self._token != stale and time.monotonic() < self._renew_at:
                return
            self._token, ttl = await self._generate(post)
            self._renew_at = time.monotonic() + max(ttl * (1 - RENEW_FRACTION), 0.0)
            self.renewals += 1

    async def _generate(self, post: TokenPost) -> tuple[str, float]:
        status, payload = await post(self._url, self._body)
        if status in (401, 403):
            raise SafetyStop(
                f"authentication failed: the token endpoint refused the client key (HTTP {status})"
            )
        data = payload.get("data") if isinstance(payload, dict) and status == 200 else None
        token = data.get("accessToken") if isinstance(data, dict) else None
        if not isinstance(token, str) or not token:
            raise TokenUnavailable(f"token endpoint gave no token (HTTP {status})")
        if not _HEADER_SAFE.fullmatch(token):
            # Sent as it is, it would break the header (or smuggle another one in).
            raise SafetyStop(
                "the token endpoint returned a token that can't be sent in a "
                "header (spaces, control or non-ASCII characters)"
            )
        ttl = data.get("ttlSeconds", 300) if isinstance(data, dict) else 300
        ttl = float(ttl) if isinstance(ttl, (int, float)) and not isinstance(ttl, bool) else 300.0
        return token, ttl if ttl == ttl and ttl > 0 else 300.0


def require_credentials(credentials: Credentials) -> None:
    if not (credentials.uses_oauth or credentials.uses_basic):
        raise ConfigError(
            "no credentials: set BULKREVOKE_USERNAME and BULKREVOKE_PASSWORD (Basic), or "
            "BULKREVOKE_CLIENT_KEY and BULKREVOKE_CLIENT_SECRET (OAuth)"
        )
