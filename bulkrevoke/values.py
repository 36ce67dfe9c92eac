"""The settings' values: small frozen types with module-level defaults, and the parsers
that turn what an operator wrote (a flag, an environment variable, a config-file entry)
into one of them.

Every parser takes the raw value and the flag it answers to, and fails with a
``ConfigError`` that starts with that flag, whatever the value's source: the operator
finds the setting in ``--help`` and the README under that name. The settings table
(``bulkrevoke.settings``) says which parser each setting uses.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from bulkrevoke.errors import ConfigError
from bulkrevoke.model import FIELDS, IDENTIFIER_TYPES, canonical_identifier

if TYPE_CHECKING:  # proxies imports urllib.request: 20 ms that `bulkrevoke --help` needn't pay
    from bulkrevoke.proxies import Proxy

CLUSTERS = {
    "apac": "https://apac.api.capillarytech.com",
    "apac2": "https://apac2.api.capillarytech.com",
    "eu": "https://eu.api.capillarytech.com",
    "us": "https://us.api.capillarytech.com",
}
LOG_FORMATS = ("text", "json")
#: The most requests in flight that --concurrency (or auto) allows.
MAX_CONCURRENCY = 256
TICKET_MAX = 200


@dataclass(frozen=True, slots=True)
class RateLimit:
    """Requests per second; ``None`` means no client-side limit.

    ``auto``: discover the server's limit (``--rate auto``); ``per_second`` is then the most
    the discovered rate may reach (``auto:MAX``), or None for no cap.
    """

    per_second: float | None
    auto: bool = False

    @property
    def interval(self) -> float:
        return 0.0 if self.per_second is None else 1.0 / self.per_second

    def __str__(self) -> str:
        if self.auto:
            return "auto" if self.per_second is None else f"auto:{_pace(self.per_second)}"
        if self.per_second is None:
            return "unlimited"
        return _pace(self.per_second)


def _pace(per_second: float) -> str:
    """``N/s``, or ``N/min`` below one a second or when that is the whole number
    (``100/min``, not ``1.66667/s``), so that ``parse_rate(str(rate)) == rate``."""
    per_minute = per_second * 60
    whole_minute = round(per_minute)
    if per_second != int(per_second) and abs(per_minute - whole_minute) < 1e-9:
        return f"{whole_minute}/min"
    if per_second < 1:
        return f"{per_minute:.12g}/min"
    return f"{per_second:.12g}/s"


DEFAULT_REAL_RATE = RateLimit(100 / 60)
DEFAULT_SANDBOX_RATE = RateLimit(500.0)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently one row is tried (times in seconds)."""

    max_attempts: int = 6
    timeout: float = 30.0
    base_delay: float = 0.5
    max_delay: float = 30.0
    retry_after_cap: float = 300.0
    row_deadline: float = 900.0


DEFAULT_RETRY = RetryPolicy()


@dataclass(frozen=True, slots=True)
class Credentials:
    """Secrets from the environment or a private config file; never printed."""

    username: str | None = None
    password: str | None = field(default=None, repr=False)
    client_key: str | None = None
    client_secret: str | None = field(default=None, repr=False)

    @property
    def uses_oauth(self) -> bool:
        return bool(self.client_key and self.client_secret)

    @property
    def uses_basic(self) -> bool:
        return bool(self.username and self.password)

    def __repr__(self) -> str:
        kind = "oauth" if self.uses_oauth else "basic" if self.uses_basic else "none"
        return f"Credentials(kind={kind!r})"


@dataclass(frozen=True, slots=True)
class Webhook:
    """Where the end-of-run message goes. The URL is a secret: never shown."""

    url: str = field(repr=False)
    proxy: Proxy | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        return "Webhook(<hidden>)"


def parse_rate(text: str | float | int, flag: str = "--rate") -> RateLimit:
    """``"100/min"``, ``"50/s"``, ``"20"`` (per second), ``"unlimited"``, or ``"auto"`` /
    ``"auto:MAX"`` (find the server's limit, at most MAX)."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value, per = float(text), 1.0
    else:
        raw = str(text).strip().lower()
        if raw in ("unlimited", "none", "0"):
            return RateLimit(None)
        if raw == "auto":
            return RateLimit(None, auto=True)
        if raw.startswith("auto:"):
            cap = raw[len("auto:") :].strip()
            if cap in ("unlimited", "none", "0") or cap.startswith("auto"):
                raise ConfigError(f"{flag}: {text!r}: give auto, or auto:MAX with MAX a rate such as 300/s")
            return RateLimit(parse_rate(cap, flag).per_second, auto=True)
        match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(?:/\s*(s|sec|second|m|min|minute|h|hour))?", raw)
        if not match:
            raise ConfigError(
                f"{flag}: {text!r} is not a rate; use N/s, N/min, a number per "
                "second, unlimited, auto or auto:MAX"
            )
        value = float(match.group(1))
        per = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600}[
            match.group(2) or "s"
        ]
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{flag}: {text!r} must be a positive rate")
    return RateLimit(value / per)


def is_loopback(hostname: str | None) -> bool:
    if not hostname:
        return False
    if hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(hostname.strip("[]")).is_loopback
    except ValueError:
        return False


def resolve_host(value: Any, flag: str = "--host") -> str:
    """A cluster name or base URL → a base URL without a trailing slash; refuses plain
    http to anything but loopback, so credentials never cross a network unencrypted."""
    text = str(value)
    raw = text.strip()
    if raw.lower() in CLUSTERS:
        return CLUSTERS[raw.lower()]
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        names = ", ".join(CLUSTERS)
        raise ConfigError(f"{flag}: {text!r} is neither a cluster ({names}) nor an http(s) URL")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ConfigError(f"{flag}: plain http is refused for {parts.hostname}; use https")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ConfigError(f"{flag}: give a base URL without user, query or fragment")
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0 and parts.netloc.rsplit("]", 1)[-1].count(":"):
        raise ConfigError(f"{flag}: {text!r} has no valid port (a number from 1 to 65535)")
    if not parts.path.isascii() or any(ch.isspace() or ord(ch) < 32 for ch in parts.path):
        raise ConfigError(
            f"{flag}: the path of {text!r} must be plain ASCII without spaces "
            "or control characters (percent-encode the rest)"
        )
    try:
        parts.hostname.encode("idna")
    except UnicodeError:
        raise ConfigError(f"{flag}: {parts.hostname!r} is not a valid host name") from None
    return raw.rstrip("/")


def parse_ca_bundle(value: Any, flag: str = "--ca-bundle") -> Path:
    """A file of CA certificates that exists and loads."""
    if not Path(value).is_file():
        raise ConfigError(f"{flag}: {value}: no such file")
    return check_ca_bundle(Path(value), flag)


def check_ca_bundle(path: Path, flag: str = "--ca-bundle") -> Path:
    """Load *path* as CA certificates now, so that a bad file ends the run before ingest."""
    import ssl

    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cafile=str(path))
    except FileNotFoundError:
        raise ConfigError(f"{flag}: {path}: no such file") from None
    except (ssl.SSLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or "unreadable"
        raise ConfigError(
            f"{flag}: {path}: not a PEM file of CA certificates ({str(reason).lower().replace('_', ' ')})"
        ) from None
    return path


def parse_columns(
    value: Mapping[str, str] | list[str] | tuple[str, ...] | None, flag: str = "--column"
) -> dict[str, str]:
    """``["badgeMetaId=meta_id"]`` or a mapping → ``{"badgeMetaId": "meta_id"}``."""
    if not value:
        return {}
    pairs: list[tuple[str, str]] = []
    if isinstance(value, Mapping):
        pairs = [(str(k), str(v)) for k, v in value.items()]
    else:
        for item in value:
            field_name, sep, header = str(item).partition("=")
            if not sep or not header:
                raise ConfigError(f"{flag}: {item!r} is not FIELD=HEADER")
            pairs.append((field_name.strip(), header))
    by_key = {f.lower(): f for f in FIELDS}
    result: dict[str, str] = {}
    for field_name, header in pairs:
        canonical = by_key.get(field_name.lower())
        if canonical is None:
            raise ConfigError(f"{flag}: unknown field {field_name!r}; fields are {', '.join(FIELDS)}")
        result[canonical] = header
    return result


def parse_identifier(value: Any, flag: str = "--identifier") -> str:
    text = str(value)
    canonical = canonical_identifier(text)
    if canonical is None:
        raise ConfigError(f"{flag}: {text!r} is not one of {', '.join(IDENTIFIER_TYPES)}")
    return canonical


def parse_ticket(value: Any, flag: str = "--ticket") -> str | None:
    """The change ticket or approval reference: one line of printable text."""
    if value is None:
        return None
    text = str(value).strip()
    if not text or len(text) > TICKET_MAX or not text.isprintable():
        raise ConfigError(
            f"{flag}: give one line of printable text, at most {TICKET_MAX} characters (e.g. CHG-42)"
        )
    return text


def parse_webhook(value: Any, proxy_flag: Any, environ: Mapping[str, str]) -> Webhook | None:
    """``--notify URL``: http(s) to a named host (plain http only to loopback), with the
    proxy that ``--proxy`` or the environment names for it. Errors never quote the URL."""
    if not value:
        return None
    url = str(value).strip()
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise ConfigError("--notify: not a valid URL (check its port)") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError("--notify: give an https URL (an incoming-webhook address)")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ConfigError("--notify: plain http is refused for a remote host; use https")
    if not url.isascii() or any(ch.isspace() or ord(ch) < 32 for ch in url):
        raise ConfigError("--notify: the URL holds spaces, control or non-ASCII characters")
    from bulkrevoke.proxies import choose_proxy

    return Webhook(url, choose_proxy(url, str(proxy_flag) if proxy_flag else None, environ))


def parse_concurrency(value: Any, flag: str = "--concurrency") -> int | None:
    """A whole number up to MAX_CONCURRENCY, or ``auto`` (None: sized as the run goes)."""
    if str(value).strip().lower() == "auto":
        return None
    number = positive_int(value, flag)
    if number > MAX_CONCURRENCY:
        raise ConfigError(f"{flag}: {value!r} is more than {MAX_CONCURRENCY}")
    return number


def parse_fraction(value: Any, flag: str) -> float:
    """A share from 0 to 1."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{flag}: {value!r} is not a fraction between 0 and 1") from None
    if not 0 <= number <= 1:
        raise ConfigError(f"{flag}: {number} is not a fraction between 0 and 1")
    return number


def parse_delimiter(value: Any, flag: str) -> str:
    """One character; ``tab`` or ``\\t`` for a tab."""
    delimiter = {"\\t": "\t", "tab": "\t"}.get(str(value), str(value))
    if len(delimiter) != 1 or delimiter in '"\r\n':
        raise ConfigError(f"{flag}: {delimiter!r} must be a single character")
    return delimiter


def parse_log_format(value: Any, flag: str) -> str:
    text = str(value)
    if text not in LOG_FORMATS:
        raise ConfigError(f"{flag}: {text!r} is not {' or '.join(LOG_FORMATS)}")
    return text


def nonnegative_int(value: Any, flag: str) -> int:
    """A whole number >= 0."""
    return 0 if str(value).strip() == "0" else positive_int(value, flag)


def positive_int(value: Any, flag: str) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = 0
    if number < 1 or str(number) != str(value).strip():
        raise ConfigError(f"{flag}: {value!r} is not a whole number >= 1")
    return number


def positive_seconds(value: Any, flag: str) -> float:
    number = seconds(value, flag)
    if number <= 0:
        raise ConfigError(f"{flag}: {value!r} must be greater than 0")
    return number


def seconds(value: Any, flag: str) -> float:
    """A number of seconds >= 0."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = -1.0
    if not math.isfinite(number) or number < 0:
        raise ConfigError(f"{flag}: {value!r} is not a number of seconds")
    return number


def as_bool(value: Any, flag: str) -> bool:
    return bool(value)


def as_int(value: Any, flag: str) -> int:
    return int(value)


def as_path(value: Any, flag: str) -> Path:
    return Path(value)


def as_is(value: Any, flag: str) -> Any:
    """Kept raw: resolved together with other settings (a proxy needs the host)."""
    return value
