"""Authentication as Capillary does it: MD5-hashed Basic credentials, or OAuth tokens.

Basic: ``Authorization: Basic base64(username + ":" + md5_hex(password))`` — the password
is hashed *before* Base64, which is the detail a client most easily gets wrong, so the
sandbox insists on it. OAuth: ``POST /v3/oauth/token/generate`` trades key and secret for
a token that ``X-CAP-API-OAUTH-TOKEN`` carries until it expires.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable, Mapping

from bulkrevoke.sandbox.settings import SandboxSettings

OAUTH_HEADER = "X-CAP-API-OAUTH-TOKEN"

INVALID_CREDENTIALS = "Invalid Credentials"
TOKEN_EXPIRED = "Token expired"


def basic_credentials(username: str, password: str) -> str:
    """The Base64 part of Capillary's Basic header for these credentials."""
    # MD5 is Capillary's choice, not ours; usedforsecurity=False keeps FIPS builds working.
    digest = hashlib.md5(password.encode(), usedforsecurity=False).hexdigest()
    return base64.b64encode(f"{username}:{digest}".encode()).decode("ascii")


class Authenticator:
    """Checks each request's credentials and issues OAuth tokens.

    The clock is injectable so token expiry can be tested without waiting.
    """

    __slots__ = ("_basic", "_clock", "_key", "_open", "_secret", "_tokens", "_ttl")

    def __init__(self, settings: SandboxSettings, clock: Callable[[], float] = time.monotonic) -> None:
        self._basic = (
            basic_credentials(settings.username, settings.password)
            if settings.username is not None and settings.password is not None
            else None
        )
        self._key = settings.client_key
        self._secret = settings.client_secret
        # With no credentials at all the sandbox is open, and hands a token to anyone
        # who asks, so an OAuth client works against it unchanged.
        self._open = self._basic is None and self._key is None
        self._ttl = settings.token_ttl
        self._tokens: dict[str, float] = {}  # token -> expiry on self._clock
        self._clock = clock

    def check(self, headers: Mapping[str, str]) -> str | None:
        """None if the request may proceed, else the message of the 401 to send."""
        if self._open:
            return None
        if self._basic is not None:
            scheme, _, credentials = headers.get("Authorization", "").partition(" ")
            if scheme.lower() == "basic" and hmac.compare_digest(
                credentials.strip().encode(), self._basic.encode()
            ):
                return None
        if self._key is not None:
            token = headers.get(OAUTH_HEADER)
            if token is not None:
                expiry = self._tokens.get(token.strip())
                if expiry is not None:
                    return None if self._clock() < expiry else TOKEN_EXPIRED
        return INVALID_CREDENTIALS

    def issue_token(self, key: str, secret: str) -> str | None:
        """A new token for the right key and secret, else None."""
        if not self._open:
            if self._key is None or self._secret is None:
                return None
            good_key = hmac.compare_digest(key.encode(), self._key.encode())
            good_secret = hmac.compare_digest(secret.encode(), self._secret.encode())
            if not (good_key and good_secret):
                return None
        now = self._clock()
        self._forget_expired(now)
        token = _jwt_lookalike(key, self._ttl)
        self._tokens[token] = now + self._ttl
        return token

    @property
    def ttl(self) -> float:
        return self._ttl

    def _forget_expired(self, now: float) -> None:
        # Done when issuing, not per request, so checking stays O(1); an expired token
        # that lingers here is still refused by check().
        for token in [token for token, expiry in self._tokens.items() if expiry <= now]:
            del self._tokens[token]


def _jwt_lookalike(key: str, ttl: float) -> str:
    """An opaque token shaped like a JWT (header.payload.signature), unique per call."""
    issued = int(time.time())
    header = {"alg": "HS256", "typ": "JWT"}
    payload = {"sub": key, "iat": issued, "exp": issued + int(ttl), "jti": secrets.token_hex(8)}
    parts = (_b64url(json.dumps(header).encode()), _b64url(json.dumps(payload).encode()))
    return ".".join((*parts, _b64url(secrets.token_bytes(32))))


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")
