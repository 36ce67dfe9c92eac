"""``bulkrevoke sandbox``: its flags, how they become settings, and running until a signal.

Credentials come only from the environment, never from flags, so they don't show up in
``ps`` or shell history.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import signal
import sys
from collections.abc import Callable, Mapping
from dataclasses import fields
from typing import TypeVar

from bulkrevoke import loops
from bulkrevoke.errors import ConfigError
from bulkrevoke.sandbox.faults import NO_FAULTS, FaultProfile
from bulkrevoke.sandbox.ratelimit import LIMIT_KINDS
from bulkrevoke.sandbox.settings import READ_SHAPES, SandboxSettings
from bulkrevoke.sandbox.state import load_state

DEFAULT_PORT = 8080
_DEFAULTS = SandboxSettings()

_Number = TypeVar("_Number", int, float)

# (knob, help) for each fault probability flag, in FaultProfile's order.
_FAULT_FLAGS = (
    ("throttle", "answer 429 with Retry-After, not applied"),
    ("throttle_bare", "answer 429 without Retry-After, not applied"),
    ("server_error", "answer 500/502/503/504, not applied"),
    ("busy", "answer 521 'Multiple actions are running', not applied"),
    ("drop", "apply, then close the connection without an answer"),
    ("hang", "apply, then never answer (see --hang-seconds)"),
    ("malformed", "apply, then answer 200 with a truncated JSON body"),
    ("not_read", "answer 408 with Connection: close (a load balancer's), not applied"),
    ("gateway_page", "answer a gateway's HTML 404 page, not applied"),
    ("inactive_400", "deliver an 814 answer with HTTP 400 instead of 200"),
    ("slow", "delay an answer by an extra --slow-seconds"),
)


def add_sandbox_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the sandbox's flags (server, latency, rate limit, faults) to ``parser``."""
    server = parser.add_argument_group("server")
    server.add_argument(
        "--host",
        default=_DEFAULTS.host,
        help="address to listen on; anything but loopback lets others in (default: %(default)s)",
    )
    server.add_argument(
        "--port",
        type=_port,
        default=DEFAULT_PORT,
        help="port to listen on, 0 for any free port (default: %(default)s)",
    )
    server.add_argument(
        "--state",
        metavar="FILE",
        help="CSV of known earned badges: badgeMetaId, customerId, [identifierType,] "
        "earnedBadgeId, active (default: none known, every revoke answers 814)",
    )
    server.add_argument(
        "--unknown-badges",
        choices=("absent", "active"),
        default=_DEFAULTS.unknown_badges,
        help="how to treat a badge not in --state (default: %(default)s)",
    )
    server.add_argument(
        "--token-ttl",
        type=_positive,
        default=_DEFAULTS.token_ttl,
        metavar="SECONDS",
        help="lifetime of issued OAuth tokens (default: %(default)s)",
    )
    server.add_argument(
        "--tls-cert",
        metavar="FILE",
        help="serve https with this PEM certificate (chain), to rehearse --ca-bundle",
    )
    server.add_argument("--tls-key", metavar="FILE", help="the private key of --tls-cert")
    behaviour = parser.add_argument_group("latency, rate limit, overlap and reads")
    behaviour.add_argument(
        "--latency",
        type=_seconds,
        default=_DEFAULTS.latency,
        metavar="SECONDS",
        help="delay of every revokeEarn answer (default: %(default)s)",
    )
    behaviour.add_argument(
        "--latency-jitter",
        type=_seconds,
        default=_DEFAULTS.latency_jitter,
        metavar="SECONDS",
        help="extra uniform random delay, 0 to this (default: %(default)s)",
    )
    _add_limit_arguments(behaviour)
    _add_fault_arguments(parser.add_argument_group("faults (probabilities 0..1 per request)"))


def _add_limit_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--rate-limit",
        type=_rate_limit,
        default=None,
        metavar="N",
        help="answer 429 beyond N requests (revokeEarn and reads) per --rate-window (default: unlimited)",
    )
    group.add_argument(
        "--rate-window",
        type=_positive,
        default=_DEFAULTS.rate_window,
        metavar="SECONDS",
        help="the window of --rate-limit (default: %(default)s)",
    )
    group.add_argument(
        "--rate-limit-kind",
        choices=LIMIT_KINDS,
        default=_DEFAULTS.rate_limit_kind,
        help="sliding: at most N in any window; fixed: N per window aligned to the clock "
        "(60 s: per clock minute, as Capillary counts); bucket: a token bucket refilled "
        "with N per window (default: %(default)s)",
    )
    group.add_argument(
        "--rate-burst",
        type=_positive_at_least_one,
        default=None,
        metavar="N",
        help="tokens the bucket of --rate-limit-kind bucket holds (default: N of --rate-limit)",
    )
    group.add_argument(
        "--limit-retry-after",
        action=argparse.BooleanOptionalAction,
        default=_DEFAULTS.limit_retry_after,
        help="send Retry-After with the rate limit's 429s (default: send it)",
    )
    group.add_argument(
        "--busy-on-overlap",
        action=argparse.BooleanOptionalAction,
        default=_DEFAULTS.busy_on_overlap,
        help="answer 521 to a request for a customer while another one for that customer is "
        "being handled, as the real service does (default: on)",
    )
    group.add_argument(
        "--read-shape",
        choices=READ_SHAPES,
        default=_DEFAULTS.read_shape,
        help="how the badge read names an earned badge: standard (earnedBadgeId, isActive), "
        "counts (no ids, only counts tell) or alternate (id; active or status) "
        "(default: %(default)s)",
    )


def _add_fault_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--seed",
        type=int,
        default=NO_FAULTS.seed,
        help="seed of the fault decisions; same seed, same faults (default: %(default)s)",
    )
    for knob, text in _FAULT_FLAGS:
        group.add_argument(
            "--" + knob.replace("_", "-"),
            type=_probability,
            default=getattr(NO_FAULTS, knob),
            metavar="P",
            help=f"{text} (default: %(default)s)",
        )
    group.add_argument(
        "--retry-after",
        type=_whole_seconds,
        default=NO_FAULTS.retry_after,
        metavar="SECONDS",
        help="Retry-After sent by --throttle (default: %(default)s)",
    )
    group.add_argument(
        "--hang-seconds",
        type=_seconds,
        default=NO_FAULTS.hang_seconds,
        metavar="SECONDS",
        help="how long a --hang request waits before its connection is closed (default: %(default)s)",
    )
    group.add_argument(
        "--slow-seconds",
        type=_seconds,
        default=NO_FAULTS.slow_seconds,
        metavar="SECONDS",
        help="extra delay of a --slow answer (default: %(default)s)",
    )
    group.add_argument("--gzip", action="store_true", help="gzip-encode answers when the client accepts it")
    group.add_argument(
        "--retry-after-date", action="store_true", help="send Retry-After as an HTTP-date instead of seconds"
    )


def settings_from_args(ns: argparse.Namespace, environ: Mapping[str, str]) -> SandboxSettings:
    """Settings from parsed flags plus credentials from ``environ``; ConfigError if wrong."""
    username, password = _pair(environ, "BULKREVOKE_USERNAME", "BULKREVOKE_PASSWORD")
    client_key, client_secret = _pair(environ, "BULKREVOKE_CLIENT_KEY", "BULKREVOKE_CLIENT_SECRET")
    state = load_state(ns.state) if ns.state else {}
    try:
        faults = FaultProfile(**{field.name: getattr(ns, field.name) for field in fields(FaultProfile)})
        return SandboxSettings(
            host=ns.host,
            port=ns.port,
            username=username,
            password=password,
            client_key=client_key,
            client_secret=client_secret,
            token_ttl=ns.token_ttl,
            unknown_badges=ns.unknown_badges,
            state=state,
            latency=ns.latency,
            latency_jitter=ns.latency_jitter,
            rate_limit=ns.rate_limit,
            rate_window=ns.rate_window,
            rate_limit_kind=ns.rate_limit_kind,
            rate_burst=ns.rate_burst,
            limit_retry_after=ns.limit_retry_after,
            busy_on_overlap=ns.busy_on_overlap,
            read_shape=ns.read_shape,
            faults=faults,
            tls_cert=ns.tls_cert,
            tls_key=ns.tls_key,
        )
    except ValueError as exc:
        raise ConfigError(f"sandbox: {exc}") from exc


def _pair(environ: Mapping[str, str], first: str, second: str) -> tuple[str | None, str | None]:
    a, b = environ.get(first) or None, environ.get(second) or None
    if (a is None) != (b is None):
        present, absent = (first, second) if a is not None else (second, first)
        raise ConfigError(f"{present} is set but {absent} is not; set both or neither")
    return a, b


def loopback_warning(host: str) -> str | None:
    """The warning to print when ``host`` is reachable from other machines, else None."""
    if host == "localhost":
        return None
    try:
        if ipaddress.ip_address(host).is_loopback:
            return None
    except ValueError:
        pass
    return (
        f"WARNING: the sandbox listens on {host}, not on a loopback address. Anyone who can "
        "reach it can call it and read /_sandbox/truth; it is a test double, not a server."
    )


def serve_forever(settings: SandboxSettings) -> int:
    """Run the sandbox until SIGINT or SIGTERM; print its URL first. Returns exit code 0."""
    # KeyboardInterrupt: where the loop can't install signal handlers (Windows).
    with contextlib.suppress(KeyboardInterrupt):
        loops.run(_serve(settings))
    return 0


async def _serve(settings: SandboxSettings) -> None:
    from bulkrevoke.sandbox.server import Sandbox  # aiohttp only when serving, not for --help

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    async with Sandbox(settings) as sandbox:
        warning = loopback_warning(settings.host)
        if warning is not None:
            print(warning, file=sys.stderr, flush=True)
        print(f"sandbox listening on {sandbox.url}", flush=True)
        await stop.wait()


def _number(
    convert: Callable[[str], _Number], check: Callable[[_Number], bool], what: str
) -> Callable[[str], _Number]:
    """An argparse ``type`` that converts, range-checks and explains a refusal."""

    def parse(text: str) -> _Number:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if not check(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
        return value

    parse.__name__ = what  # argparse names the type in its messages
    return parse


_probability = _number(float, lambda v: 0 <= v <= 1, "a probability between 0 and 1")
_seconds = _number(float, lambda v: 0 <= v < float("inf"), "a number of seconds >= 0")
_positive = _number(float, lambda v: 0 < v < float("inf"), "a positive number")
_positive_at_least_one = _number(float, lambda v: 1 <= v < float("inf"), "a number >= 1")
_rate_limit = _number(int, lambda v: v >= 1, "a whole number >= 1")
_whole_seconds = _number(int, lambda v: v >= 0, "a whole number of seconds >= 0")
_port = _number(int, lambda v: 0 <= v <= 65535, "a port number (0..65535)")
