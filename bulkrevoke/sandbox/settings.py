"""The sandbox's configuration: one frozen value, built once, handed to the server."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from bulkrevoke.sandbox.faults import NO_FAULTS, FaultProfile
from bulkrevoke.sandbox.ratelimit import LIMIT_KINDS, LimitKind
from bulkrevoke.sandbox.state import BadgeKey

# How the read endpoint shapes an earns[] item (see bulkrevoke.sandbox.reads).
ReadShape = Literal["standard", "counts", "alternate"]
READ_SHAPES: tuple[ReadShape, ...] = ("standard", "counts", "alternate")


@dataclass(frozen=True, slots=True)
class SandboxSettings:
    """Where the sandbox listens, whom it lets in, what it knows and how it misbehaves.

    Credentials: with ``username``/``password`` it wants Basic auth, with
    ``client_key``/``client_secret`` it issues and checks OAuth tokens (both may be set);
    with neither it checks nothing. ``state`` gives each known badge's initial activity;
    a badge not in it is absent (814) or, with ``unknown_badges="active"``, active on first
    sight. Every answer waits ``latency`` seconds plus a uniform jitter of up to
    ``latency_jitter``.

    Quota: ``rate_limit`` (None: unlimited) requests per ``rate_window`` seconds, counted over
    revokeEarn and reads alike, the way ``rate_limit_kind`` says: ``sliding`` (at most that
    many in any window), ``fixed`` (per window aligned to the clock: 60 s is the clock's
    minute, as Capillary counts) or ``bucket`` (a token bucket refilled at that pace, holding
    ``rate_burst`` tokens, default ``rate_limit``). Its 429s carry ``Retry-After`` unless
    ``limit_retry_after`` is False.

    ``busy_on_overlap``: answer 521 to a request for a customer while another request for
    that customer is being handled, as the real service does. ``read_shape``: how the read
    endpoint names an earned badge and its state.
    """

    host: str = "127.0.0.1"
    port: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)  # repr=False: never logged
    client_key: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    token_ttl: float = 300
    unknown_badges: Literal["absent", "active"] = "absent"
    state: Mapping[BadgeKey, bool] = field(default_factory=dict, repr=False)  # may be huge
    latency: float = 0
    latency_jitter: float = 0
    rate_limit: float | None = None
    rate_window: float = 1.0
    rate_limit_kind: LimitKind = "sliding"
    rate_burst: float | None = None
    limit_retry_after: bool = True
    busy_on_overlap: bool = True
    read_shape: ReadShape = "standard"
    faults: FaultProfile = NO_FAULTS
    tls_cert: str | None = None  # PEM certificate chain: serve https, to rehearse --ca-bundle
    tls_key: str | None = None

    def __post_init__(self) -> None:
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password must be given together")
        if (self.client_key is None) != (self.client_secret is None):
            raise ValueError("client_key and client_secret must be given together")
        if self.unknown_badges not in ("absent", "active"):
            raise ValueError(f"unknown_badges must be 'absent' or 'active', not {self.unknown_badges!r}")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be in 0..65535, not {self.port}")
        if not self.token_ttl > 0:
            raise ValueError("token_ttl must be positive")
        if not (self.latency >= 0 and self.latency_jitter >= 0):
            raise ValueError("latency and latency_jitter must not be negative")
        if self.rate_limit is not None and not self.rate_limit >= 1:
            raise ValueError("rate_limit must be at least 1 request per window")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key must be given together")
        if not self.rate_window > 0:
            raise ValueError("rate_window must be positive")
        if self.rate_limit_kind not in LIMIT_KINDS:
            raise ValueError(
                f"rate_limit_kind must be one of {', '.join(LIMIT_KINDS)}, not {self.rate_limit_kind!r}"
            )
        if self.rate_burst is not None and not self.rate_burst >= 1:
            raise ValueError("rate_burst must be at least 1")
        if self.read_shape not in READ_SHAPES:
            raise ValueError(f"read_shape must be one of {', '.join(READ_SHAPES)}, not {self.read_shape!r}")

    @property
    def basic_auth(self) -> bool:
        return self.username is not None

    @property
    def oauth(self) -> bool:
        return self.client_key is not None
