"""Settings as small frozen values, resolved once: flag > environment > config file > default.

``resolve_config`` is the only place that reads flags, the environment and the
TOML file; everything downstream receives a ``RunConfig``.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
import stat
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bulkrevoke.errors import ConfigError
from bulkrevoke.model import FIELDS, IDENTIFIER_TYPES, canonical_identifier
from bulkrevoke.proxies import Proxy, choose_proxy

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

CLUSTERS = {
    "apac": "https://apac.api.capillarytech.com",
    "apac2": "https://apac2.api.capillarytech.com",
    "eu": "https://eu.api.capillarytech.com",
    "us": "https://us.api.capillarytech.com",
}
LOG_FORMATS = ("text", "json")
#: The most requests in flight that --concurrency (or auto) allows.
MAX_CONCURRENCY = 256


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
class RunConfig:
    """Everything one run needs to know, fixed before the first row is read."""

    source: Any
    out: Path | None = None
    sandbox: bool = False
    sandbox_state: Path | None = None
    host: str | None = None
    rate: RateLimit = DEFAULT_REAL_RATE
    concurrency: int | None = None  # None: auto, sized from the rate and the latency
    retry: RetryPolicy = DEFAULT_RETRY
    identifier: str = "id"
    columns: Mapping[str, str] = field(default_factory=dict)
    dry_run: bool = False
    resume: bool = False
    max_error_rate: float = 0.5
    delimiter: str | None = None
    ca_bundle: Path | None = None
    proxy: Proxy | None = None
    mask_pii: bool = False
    pii_key: bytes | None = field(default=None, repr=False)
    progress: bool = True
    log_format: str = "text"
    verbosity: int = 0
    credentials: Credentials = field(default_factory=Credentials)
    ticket: str | None = None
    verify: bool = False  # read rows back from the server when sending ends
    verify_all: bool = False  # check every sent row, not only those in question and a sample
    sample: int = 100  # revoked rows checked at random
    notify: Webhook | None = None


def parse_rate(text: str | float | int) -> RateLimit:
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
            cap = raw[len("auto:"):].strip()
            if cap in ("unlimited", "none", "0") or cap.startswith("auto"):
                raise ConfigError(f"--rate: {text!r}: give auto, or auto:MAX with MAX a rate "
                                  "such as 300/s")
            return RateLimit(parse_rate(cap).per_second, auto=True)
        match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(?:/\s*(s|sec|second|m|min|minute|h|hour))?", raw)
        if not match:
            raise ConfigError(f"--rate: {text!r} is not a rate; use N/s, N/min, a number per "
                              "second, unlimited, auto or auto:MAX")
        value = float(match.group(1))
        per = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60,
               "h": 3600, "hour": 3600}[match.group(2) or "s"]
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"--rate: {text!r} must be a positive rate")
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


def resolve_host(value: str) -> str:
    """A cluster name or base URL → a base URL without a trailing slash; refuses plain
    http to anything but loopback, so credentials never cross a network unencrypted."""
    raw = value.strip()
    if raw.lower() in CLUSTERS:
        return CLUSTERS[raw.lower()]
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        names = ", ".join(CLUSTERS)
        raise ConfigError(f"--host: {value!r} is neither a cluster ({names}) nor an http(s) URL")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ConfigError(f"--host: plain http is refused for {parts.hostname}; use https")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ConfigError("--host: give a base URL without user, query or fragment")
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0 and parts.netloc.rsplit("]", 1)[-1].count(":"):
        raise ConfigError(f"--host: {value!r} has no valid port (a number from 1 to 65535)")
    if not parts.path.isascii() or any(ch.isspace() or ord(ch) < 32 for ch in parts.path):
        raise ConfigError(f"--host: the path of {value!r} must be plain ASCII without spaces "
                          "or control characters (percent-encode the rest)")
    try:
        parts.hostname.encode("idna")
    except UnicodeError:
        raise ConfigError(f"--host: {parts.hostname!r} is not a valid host name") from None
    return raw.rstrip("/")


def check_ca_bundle(path: Path) -> Path:
    """Load *path* as CA certificates now, so that a bad file ends the run before ingest."""
    import ssl

    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cafile=str(path))
    except FileNotFoundError:
        raise ConfigError(f"--ca-bundle: {path}: no such file") from None
    except (ssl.SSLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or "unreadable"
        raise ConfigError(f"--ca-bundle: {path}: not a PEM file of CA certificates "
                          f"({str(reason).lower().replace('_', ' ')})") from None
    return path


def parse_columns(value: Mapping[str, str] | list[str] | tuple[str, ...] | None) -> dict[str, str]:
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
                raise ConfigError(f"--column: {item!r} is not FIELD=HEADER")
            pairs.append((field_name.strip(), header))
    by_key = {f.lower(): f for f in FIELDS}
    result: dict[str, str] = {}
    for field_name, header in pairs:
        canonical = by_key.get(field_name.lower())
        if canonical is None:
            raise ConfigError(f"--column: unknown field {field_name!r}; fields are {', '.join(FIELDS)}")
        result[canonical] = header
    return result


def parse_identifier(value: str) -> str:
    canonical = canonical_identifier(value)
    if canonical is None:
        raise ConfigError(f"--identifier: {value!r} is not one of {', '.join(IDENTIFIER_TYPES)}")
    return canonical


def load_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a TOML config; a file holding secrets must be private to its owner."""
    file = Path(path)
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"--config: {file}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--config: {file}: cannot read ({exc.__class__.__name__})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"--config: {file}: not valid TOML ({exc})") from None
    data = dict(data.get("bulkrevoke", data))
    known = set(_FILE_KEYS) | set(_SECRET_KEYS)
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"--config: {file}: unknown setting(s) {', '.join(unknown)}")
    holds_proxy_password = "@" in str(data.get("proxy", ""))
    if holds_proxy_password or any(key in data for key in _SECRET_KEYS):
        mode = file.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(
                f"--config: {file} holds credentials but others may read it; "
                f"run: chmod 600 {file}"
            )
    return data


_FILE_KEYS = (
    "host", "rate", "concurrency", "max_attempts", "timeout", "identifier", "column",
    "max_error_rate", "delimiter", "ca_bundle", "proxy", "mask_pii", "log_format", "out",
    "retry_after_cap", "row_deadline", "backoff", "backoff_cap", "ticket", "verify", "sample",
)
_SECRET_KEYS = ("username", "password", "client_key", "client_secret", "notify")
_ENV_SECRETS = {
    "username": "BULKREVOKE_USERNAME",
    "password": "BULKREVOKE_PASSWORD",
    "client_key": "BULKREVOKE_CLIENT_KEY",
    "client_secret": "BULKREVOKE_CLIENT_SECRET",
}


def resolve_config(
    source: Any, settings: Mapping[str, Any], environ: Mapping[str, str] | None = None
) -> RunConfig:
    """Build the ``RunConfig``: a flag (a non-None entry of *settings*) wins over the
    environment, which wins over the config file, which wins over the defaults."""
    env = os.environ if environ is None else environ
    unknown = sorted(set(settings) - set(_SETTING_NAMES))
    if unknown:
        raise ConfigError(f"unknown setting(s): {', '.join(unknown)}")
    given = {k: v for k, v in settings.items() if v is not None}
    file = load_config_file(given["config"]) if "config" in given else {}

    def pick(name: str, env_name: str | None = None) -> Any:
        if name in given:
            return given[name]
        if env_name and env.get(env_name):
            return env[env_name]
        return file.get(name)

    sandbox = bool(given.get("sandbox", False))
    host_value = pick("host", "BULKREVOKE_HOST")
    if sandbox and "host" in given:
        raise ConfigError("--sandbox and --host can't be used together")
    host = None if sandbox else (resolve_host(str(host_value)) if host_value else None)
    dry_run = bool(given.get("dry_run", False))
    if host is None and not sandbox and not dry_run:
        raise ConfigError("no API host: give --host CLUSTER_OR_URL (or BULKREVOKE_HOST), or --sandbox")
    rate_value = pick("rate")
    rate = parse_rate(rate_value) if rate_value is not None else (
        DEFAULT_SANDBOX_RATE if sandbox else DEFAULT_REAL_RATE)
    retry = RetryPolicy(
        max_attempts=_positive_int("max_attempts", pick("max_attempts"), DEFAULT_RETRY.max_attempts),
        timeout=_positive_float("timeout", pick("timeout"), DEFAULT_RETRY.timeout),
        retry_after_cap=_positive_float(
            "retry_after_cap", pick("retry_after_cap"), DEFAULT_RETRY.retry_after_cap),
        row_deadline=_positive_float("row_deadline", pick("row_deadline"), DEFAULT_RETRY.row_deadline),
        base_delay=_nonnegative_float("backoff", pick("backoff"), DEFAULT_RETRY.base_delay),
        max_delay=_nonnegative_float("backoff_cap", pick("backoff_cap"), DEFAULT_RETRY.max_delay),
    )
    max_error_rate = float(pick("max_error_rate") if pick("max_error_rate") is not None else 0.5)
    if not 0 <= max_error_rate <= 1:
        raise ConfigError(f"--max-error-rate: {max_error_rate} is not a fraction between 0 and 1")
    delimiter = pick("delimiter")
    if delimiter is not None:
        delimiter = {"\\t": "\t", "tab": "\t"}.get(str(delimiter), str(delimiter))
        if len(delimiter) != 1 or delimiter in "\"\r\n":
            raise ConfigError(f"--delimiter: {delimiter!r} must be a single character")
    log_format = str(pick("log_format") or "text")
    if log_format not in LOG_FORMATS:
        raise ConfigError(f"--log-format: {log_format!r} is not text or json")
    ca_bundle = pick("ca_bundle")
    if ca_bundle is not None:
        if not Path(ca_bundle).is_file():
            raise ConfigError(f"--ca-bundle: {ca_bundle}: no such file")
        check_ca_bundle(Path(ca_bundle))
    # The sandbox is on loopback, in this process: no proxy can reach it.
    proxy = choose_proxy(host, pick("proxy"), env) if host is not None else None
    mask_pii = bool(pick("mask_pii") or False)
    pii_key = env.get("BULKREVOKE_PII_KEY")
    if mask_pii and not pii_key:
        raise ConfigError("--mask-pii needs a secret key in BULKREVOKE_PII_KEY to hash identifiers")
    credentials = Credentials(**{
        name: (env.get(env_name) or file.get(name)) for name, env_name in _ENV_SECRETS.items()
    })
    out = pick("out")
    state = given.get("sandbox_state")
    return RunConfig(
        source=source,
        out=Path(out) if out is not None else None,
        sandbox=sandbox,
        sandbox_state=Path(state) if state is not None else None,
        host=host,
        rate=rate,
        concurrency=_concurrency(pick("concurrency")),
        retry=retry,
        identifier=parse_identifier(str(pick("identifier") or "id")),
        columns=parse_columns(pick("column")),
        dry_run=dry_run,
        resume=bool(given.get("resume", False)),
        max_error_rate=max_error_rate,
        delimiter=delimiter,
        ca_bundle=Path(ca_bundle) if ca_bundle is not None else None,
        proxy=proxy,
        mask_pii=mask_pii,
        pii_key=pii_key.encode() if mask_pii and pii_key else None,
        progress=bool(given.get("progress", True)),
        log_format=log_format,
        verbosity=int(given.get("verbosity", 0)),
        credentials=credentials,
        ticket=parse_ticket(pick("ticket")),
        verify=bool(pick("verify") or False),
        verify_all=bool(given.get("verify_all", False)),
        sample=_count("sample", pick("sample"), 100),
        notify=parse_webhook(pick("notify", "BULKREVOKE_NOTIFY_URL"), pick("proxy"), env),
    )


@dataclass(frozen=True, slots=True)
class Webhook:
    """Where the end-of-run message goes. The URL is a secret: never shown."""

    url: str = field(repr=False)
    proxy: Proxy | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        return "Webhook(<hidden>)"


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
    return Webhook(url, choose_proxy(url, str(proxy_flag) if proxy_flag else None, environ))


_SETTING_NAMES = (
    "out", "sandbox", "sandbox_state", "host", "rate", "concurrency", "max_attempts", "timeout",
    "identifier", "column", "dry_run", "resume", "max_error_rate", "delimiter", "config",
    "ca_bundle", "proxy", "mask_pii", "progress", "log_format", "verbosity", "retry_after_cap",
    "row_deadline", "backoff", "backoff_cap", "ticket", "verify", "verify_all", "sample",
    "notify",
)


def _concurrency(value: Any) -> int | None:
    if value is None or str(value).strip().lower() == "auto":
        return None
    number = _positive_int("concurrency", value, 1)
    if number > MAX_CONCURRENCY:
        raise ConfigError(f"--concurrency: {value!r} is more than {MAX_CONCURRENCY}")
    return number


TICKET_MAX = 200


def parse_ticket(value: Any) -> str | None:
    """The change ticket or approval reference: one line of printable text."""
    if value is None:
        return None
    text = str(value).strip()
    if not text or len(text) > TICKET_MAX or not text.isprintable():
        raise ConfigError(f"--ticket: give one line of printable text, at most {TICKET_MAX} "
                          "characters (e.g. CHG-42)")
    return text


def _count(name: str, value: Any, default: int) -> int:
    """A whole number >= 0."""
    return 0 if str(value).strip() == "0" else _positive_int(name, value, default)


def _positive_int(name: str, value: Any, default: int) -> int:
    if value is None:
        return default
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = 0
    if number < 1 or str(number) != str(value).strip():
        raise ConfigError(f"--{name.replace('_', '-')}: {value!r} is not a whole number >= 1")
    return number


def _positive_float(name: str, value: Any, default: float) -> float:
    number = _nonnegative_float(name, value, default)
    if number <= 0:
        raise ConfigError(f"--{name.replace('_', '-')}: {value!r} must be greater than 0")
    return number


def _nonnegative_float(name: str, value: Any, default: float) -> float:
    if value is None:
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = -1.0
    if not math.isfinite(number) or number < 0:
        raise ConfigError(f"--{name.replace('_', '-')}: {value!r} is not a number of seconds")
    return number
