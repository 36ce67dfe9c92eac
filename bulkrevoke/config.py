"""Settings as small frozen values, resolved once: flag > environment > config file > default.

``resolve_config`` is the only place that reads flags, the environment and the
TOML file; everything downstream receives a ``RunConfig``. Which settings there are,
where each may come from, how it is parsed and what it defaults to is the settings
table's to say (``bulkrevoke.settings``); the value types and parsers are in
``bulkrevoke.values``.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bulkrevoke.errors import ConfigError
from bulkrevoke.proxies import Proxy, choose_proxy
from bulkrevoke.settings import BY_NAME, DEFAULTS, FILE_KEYS, KEYWORDS, SETTINGS
from bulkrevoke.values import (
    DEFAULT_RETRY,
    DEFAULT_SANDBOX_RATE,
    Credentials,
    RateLimit,
    RetryPolicy,
    Webhook,
    parse_webhook,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib


@dataclass(frozen=True, slots=True)
class RunConfig:
    """Everything one run needs to know, fixed before the first row is read. (Defaults
    are the settings table's, for code that builds one directly.)"""

    source: Any
    out: Path | None = None
    sandbox: bool = False
    sandbox_state: Path | None = None
    host: str | None = None
    rate: RateLimit = DEFAULTS["rate"]
    concurrency: int | None = None  # None: auto, sized from the rate and the latency
    retry: RetryPolicy = DEFAULT_RETRY
    identifier: str = DEFAULTS["identifier"]
    columns: Mapping[str, str] = field(default_factory=dict)
    dry_run: bool = False
    resume: bool = False
    max_error_rate: float = DEFAULTS["max_error_rate"]
    delimiter: str | None = None
    ca_bundle: Path | None = None
    proxy: Proxy | None = None
    mask_pii: bool = False
    pii_key: bytes | None = field(default=None, repr=False)
    progress: bool = DEFAULTS["progress"]
    log_format: str = DEFAULTS["log_format"]
    verbosity: int = DEFAULTS["verbosity"]
    credentials: Credentials = field(default_factory=Credentials)
    ticket: str | None = None
    verify: bool = False  # read rows back from the server when sending ends
    verify_all: bool = False  # check every sent row, not only those in question and a sample
    sample: int = DEFAULTS["sample"]  # revoked rows checked at random
    notify: Webhook | None = None


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
    unknown = sorted(set(data) - FILE_KEYS)
    if unknown:
        raise ConfigError(f"--config: {file}: unknown setting(s) {', '.join(unknown)}")
    if any(s.secret is not None and s.secret(data[s.name]) for s in SETTINGS if s.name in data):
        mode = file.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(
                f"--config: {file} holds credentials but others may read it; run: chmod 600 {file}"
            )
    return data


class _Sources:
    """Each setting from the first place that gives it: a flag (or library keyword), the
    environment, the config file; else the table's default. Read on demand, so that
    resolve_config checks settings in its own order and skips those a run doesn't use."""

    def __init__(self, given: Mapping[str, Any], env: Mapping[str, str], file: Mapping[str, Any]) -> None:
        self.given, self.env, self.file = given, env, file

    def raw(self, name: str) -> Any:
        """What the operator wrote, or None."""
        setting = BY_NAME[name]
        if name in self.given:
            return self.given[name]
        if setting.env and self.env.get(setting.env):
            return self.env[setting.env]
        return self.file.get(name) if setting.file else None

    def value(self, name: str) -> Any:
        """The parsed value, or the default."""
        setting, raw = BY_NAME[name], self.raw(name)
        if raw is None or (setting.empty_is_unset and not raw):
            return setting.default
        return setting.parse(raw, setting.flag)


def resolve_config(
    source: Any, settings: Mapping[str, Any], environ: Mapping[str, str] | None = None
) -> RunConfig:
    """Build the ``RunConfig``: a flag (a non-None entry of *settings*) wins over the
    environment, which wins over the config file, which wins over the defaults."""
    env = os.environ if environ is None else environ
    unknown = sorted(set(settings) - KEYWORDS)
    if unknown:
        raise ConfigError(f"unknown setting(s): {', '.join(unknown)}")
    given = {k: v for k, v in settings.items() if v is not None}
    values = _Sources(given, env, load_config_file(given["config"]) if "config" in given else {})
    value = values.value

    sandbox: bool = value("sandbox")
    if sandbox and "host" in given:
        raise ConfigError("--sandbox and --host can't be used together")
    host: str | None = None if sandbox else value("host")
    dry_run: bool = value("dry_run")
    if host is None and not sandbox and not dry_run:
        raise ConfigError("no API host: give --host CLUSTER_OR_URL (or BULKREVOKE_HOST), or --sandbox")
    unset_rate = values.raw("rate") is None
    rate = DEFAULT_SANDBOX_RATE if sandbox and unset_rate else value("rate")
    retry = RetryPolicy(
        max_attempts=value("max_attempts"),
        timeout=value("timeout"),
        retry_after_cap=value("retry_after_cap"),
        row_deadline=value("row_deadline"),
        base_delay=value("backoff"),
        max_delay=value("backoff_cap"),
    )
    max_error_rate, delimiter = value("max_error_rate"), value("delimiter")
    log_format, ca_bundle = value("log_format"), value("ca_bundle")
    # The sandbox is on loopback, in this process: no proxy can reach it.
    proxy = choose_proxy(host, values.raw("proxy"), env) if host is not None else None
    mask_pii, pii_key = value("mask_pii"), value("pii_key")
    if mask_pii and not pii_key:
        raise ConfigError("--mask-pii needs a secret key in BULKREVOKE_PII_KEY to hash identifiers")
    credentials = Credentials(
        username=value("username"),
        password=value("password"),
        client_key=value("client_key"),
        client_secret=value("client_secret"),
    )
    return RunConfig(
        source=source,
        out=value("out"),
        sandbox=sandbox,
        sandbox_state=value("sandbox_state"),
        host=host,
        rate=rate,
        concurrency=value("concurrency"),
        retry=retry,
        identifier=value("identifier"),
        columns=value("column"),
        dry_run=dry_run,
        resume=value("resume"),
        max_error_rate=max_error_rate,
        delimiter=delimiter,
        ca_bundle=ca_bundle,
        proxy=proxy,
        mask_pii=mask_pii,
        pii_key=pii_key.encode() if mask_pii and pii_key else None,
        progress=value("progress"),
        log_format=log_format,
        verbosity=value("verbosity"),
        credentials=credentials,
        ticket=value("ticket"),
        verify=value("verify"),
        verify_all=value("verify_all"),
        sample=value("sample"),
        notify=parse_webhook(values.raw("notify"), values.raw("proxy"), env),
    )
