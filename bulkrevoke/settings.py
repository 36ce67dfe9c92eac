"""Every setting of ``run`` and ``verify``, declared once.

One ``Setting`` says all there is to know about a setting: its name (the library keyword
and the config-file key), its flags, parser, default, help text, argparse group, the
commands that take it, and whether the environment or the config file may give it. The
CLI builds its flags from this table, ``config.resolve_config`` reads values and
defaults from it, ``load_config_file`` its known and secret keys, and the library its
keywords; tests/test_settings.py holds the README's flag table against it.

Adding a setting is one entry here plus its use (a ``RunConfig`` field, set in
``resolve_config``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

from bulkrevoke.model import IDENTIFIER_TYPES
from bulkrevoke.values import (
    CLUSTERS,
    DEFAULT_REAL_RATE,
    DEFAULT_RETRY,
    DEFAULT_SANDBOX_RATE,
    LOG_FORMATS,
    MAX_CONCURRENCY,
    TICKET_MAX,
    RateLimit,
    as_bool,
    as_int,
    as_is,
    as_path,
    nonnegative_int,
    parse_ca_bundle,
    parse_columns,
    parse_concurrency,
    parse_delimiter,
    parse_fraction,
    parse_identifier,
    parse_log_format,
    parse_rate,
    parse_ticket,
    positive_int,
    positive_seconds,
    resolve_host,
    seconds,
)

#: Raw value and the flag to name in an error → the setting's value.
Parser = Callable[[Any, str], Any]
Action = Literal["store", "store_true", "store_false", "count", "append"]

RUN: tuple[str, ...] = ("run",)
VERIFY: tuple[str, ...] = ("verify",)
BOTH: tuple[str, ...] = ("run", "verify")

WHERE, PACE, OUTPUT, INPUT = "where to send", "pace and retries", "output", "input"
MODE, VERIFICATION = "run", "verification"


def _always(value: Any) -> bool:
    return True


def _holds_password(value: Any) -> bool:
    return "@" in str(value)  # a proxy URL with user:password@


@dataclass(frozen=True, slots=True)
class Setting:
    """One setting: where it may come from, how it is read, what it defaults to."""

    name: str  # the library keyword, the config-file key, the argparse dest
    help: str  # without the default: help_text() adds it
    flags: tuple[str, ...] = ()  # none: only the environment or the config file give it
    metavar: str | None = None
    action: Action = "store"  # argparse's
    choices: tuple[str, ...] | None = None
    group: str = ""  # argparse group title
    commands: tuple[str, ...] = ()
    default: Any = None
    shown: str | None = None  # how help and README show the default, where its value can't
    parse: Parser = as_is
    file: bool = True  # the config file may give it
    env: str | None = None  # the environment may give it (it beats the file)
    secret: Callable[[Any], bool] | None = None  # true: a file holding it must be private
    keyword: bool = True  # the library (and resolve_config) take it
    empty_is_unset: bool = False  # "" means: not given

    @property
    def flag(self) -> str:
        """The spelling errors name, whatever the value's source."""
        long = [f for f in self.flags if f.startswith("--")]
        return long[0] if long else "--" + self.name.replace("_", "-")


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "sandbox",
        "run against the embedded Badges API emulator (no credentials)",
        ("--sandbox",),
        action="store_true",
        group=WHERE,
        commands=RUN,
        default=False,
        parse=as_bool,
        file=False,
    ),
    Setting(
        "sandbox_state",
        "the emulator's initial state",
        ("--sandbox-state",),
        "FILE",
        group=WHERE,
        commands=RUN,
        shown="INPUT_STEM.state.csv beside the input, when present",
        parse=as_path,
        file=False,
    ),
    Setting(
        "host",
        f"{', '.join(CLUSTERS)} or an https base URL",
        ("--host",),
        "URL_OR_CLUSTER",
        group=WHERE,
        commands=BOTH,
        parse=resolve_host,
        env="BULKREVOKE_HOST",
        empty_is_unset=True,
    ),
    Setting(
        "ca_bundle",
        "extra trusted CA certificates (PEM)",
        ("--ca-bundle",),
        "FILE",
        group=WHERE,
        commands=BOTH,
        parse=parse_ca_bundle,
    ),
    Setting(
        "proxy",
        "forward proxy, http://[user:password@]host:port",
        ("--proxy",),
        "URL",
        group=WHERE,
        commands=BOTH,
        shown="HTTPS_PROXY / HTTP_PROXY unless NO_PROXY names the host",
        secret=_holds_password,
    ),
    Setting(
        "rate",
        "N/s, N/min or N per second; unlimited; auto or auto:MAX finds the server's limit",
        ("--rate",),
        "RATE",
        group=PACE,
        commands=BOTH,
        default=DEFAULT_REAL_RATE,
        shown=f"{DEFAULT_REAL_RATE}, {DEFAULT_SANDBOX_RATE} with --sandbox",
        parse=parse_rate,
    ),
    Setting(
        "concurrency",
        f"requests in flight at most, 1 to {MAX_CONCURRENCY}; auto sizes it "
        "from the rate and the observed latency",
        ("--concurrency",),
        "N|auto",
        group=PACE,
        commands=BOTH,
        shown="auto",
        parse=parse_concurrency,
    ),
    Setting(
        "max_attempts",
        "attempts per row, the first included",
        ("--max-attempts",),
        "N",
        group=PACE,
        commands=BOTH,
        default=DEFAULT_RETRY.max_attempts,
        parse=positive_int,
    ),
    Setting(
        "timeout",
        "per attempt",
        ("--timeout",),
        "SECONDS",
        group=PACE,
        commands=BOTH,
        default=DEFAULT_RETRY.timeout,
        parse=positive_seconds,
    ),
    Setting(
        "retry_after_cap",
        "longest Retry-After honoured",
        ("--retry-after-cap",),
        "SECONDS",
        group=PACE,
        commands=BOTH,
        default=DEFAULT_RETRY.retry_after_cap,
        parse=positive_seconds,
    ),
    Setting(
        "row_deadline",
        "give a row up after this long",
        ("--row-deadline",),
        "SECONDS",
        group=PACE,
        commands=BOTH,
        default=DEFAULT_RETRY.row_deadline,
        parse=positive_seconds,
    ),
    Setting(
        "backoff",
        "first retry's backoff ceiling, doubled each attempt",
        ("--backoff",),
        "SECONDS",
        group=PACE,
        commands=BOTH,
        default=DEFAULT_RETRY.base_delay,
        parse=seconds,
    ),
    Setting(
        "backoff_cap",
        "largest backoff ceiling; waits are full-jitter",
        ("--backoff-cap",),
        "SECONDS",
        group=PACE,
        commands=BOTH,
        default=DEFAULT_RETRY.max_delay,
        parse=seconds,
    ),
    Setting(
        "max_error_rate",
        "stop when more than this share of the last 100 rows failed",
        ("--max-error-rate",),
        "FRACTION",
        group=PACE,
        commands=BOTH,
        default=0.5,
        parse=parse_fraction,
    ),
    Setting(
        "config",
        "TOML settings; precedence: flag > environment > file > default",
        ("--config",),
        "FILE",
        group=PACE,
        commands=BOTH,
        file=False,
    ),
    Setting(
        "progress",
        "no progress bar (a progress line is logged every 10 s instead)",
        ("--no-progress",),
        action="store_false",
        group=OUTPUT,
        commands=BOTH,
        default=True,
        parse=as_bool,
        file=False,
    ),
    Setting(
        "log_format",
        "run.log and stderr format",
        ("--log-format",),
        choices=LOG_FORMATS,
        group=OUTPUT,
        commands=BOTH,
        default="text",
        parse=parse_log_format,
        empty_is_unset=True,
    ),
    Setting(
        "verbosity",
        "more detail on stderr",
        ("-v", "--verbose"),
        action="count",
        group=OUTPUT,
        commands=BOTH,
        default=0,
        parse=as_int,
        file=False,
    ),
    # Not a setting of its own: the CLI turns it into verbosity -1 and prints no summary.
    Setting(
        "quiet",
        "only errors on stderr",
        ("-q", "--quiet"),
        action="store_true",
        group=OUTPUT,
        commands=BOTH,
        file=False,
        keyword=False,
    ),
    Setting(
        "identifier",
        f"identifier type for rows without an identifierType: {', '.join(IDENTIFIER_TYPES)}",
        ("--identifier",),
        "TYPE",
        choices=IDENTIFIER_TYPES,
        group=INPUT,
        commands=RUN,
        default="id",
        parse=parse_identifier,
        empty_is_unset=True,
    ),
    Setting(
        "column",
        "map a field to the input's header (repeatable), e.g. --column badgeMetaId=meta_id",
        ("--column",),
        "FIELD=HEADER",
        action="append",
        group=INPUT,
        commands=RUN,
        default=MappingProxyType({}),
        parse=parse_columns,
    ),
    Setting(
        "delimiter",
        "force the CSV delimiter",
        ("--delimiter",),
        "CHAR",
        group=INPUT,
        commands=RUN,
        shown="detected from the header",
        parse=parse_delimiter,
    ),
    Setting(
        "out",
        "run directory",
        ("--out",),
        "DIR",
        group=MODE,
        commands=RUN,
        shown="reports/YYYYmmdd-HHMMSS-INPUT_STEM",
        parse=as_path,
    ),
    Setting(
        "dry_run",
        "validate and report, send nothing",
        ("--dry-run",),
        action="store_true",
        group=MODE,
        commands=RUN,
        default=False,
        parse=as_bool,
        file=False,
    ),
    Setting(
        "resume",
        "continue the run in --out DIR (same input required)",
        ("--resume",),
        action="store_true",
        group=MODE,
        commands=RUN,
        default=False,
        parse=as_bool,
        file=False,
    ),
    Setting(
        "notify",
        "post one JSON message to this webhook when the run ends; the URL is kept secret",
        ("--notify",),
        "URL",
        group=MODE,
        commands=RUN,
        env="BULKREVOKE_NOTIFY_URL",
        secret=_always,
    ),
    Setting(
        "ticket",
        f"the change ticket or approval reference (one line, up to {TICKET_MAX} "
        "characters), recorded in the summary",
        ("--ticket",),
        "TEXT",
        group=MODE,
        commands=RUN,
        parse=parse_ticket,
    ),
    Setting(
        "mask_pii",
        "reports carry a keyed hash (key: BULKREVOKE_PII_KEY) instead of "
        "email, mobile and cardNumber identifiers",
        ("--mask-pii",),
        action="store_true",
        group=MODE,
        commands=RUN,
        default=False,
        parse=as_bool,
    ),
    Setting(
        "verify",
        "when sending ends, read the rows in question and a sample of revoked "
        "rows back from the server (see bulkrevoke verify)",
        ("--verify",),
        action="store_true",
        group=VERIFICATION,
        commands=RUN,
        default=False,
        parse=as_bool,
    ),
    Setting(
        "verify_all",
        "check every sent row, not only a sample",
        ("--all",),
        action="store_true",
        group=VERIFICATION,
        commands=VERIFY,
        default=False,
        parse=as_bool,
        file=False,
    ),
    Setting(
        "sample",
        "revoked rows that verify (or run --verify) checks at random",
        ("--sample",),
        "N",
        group=VERIFICATION,
        commands=BOTH,
        default=100,
        parse=nonnegative_int,
    ),
    # Secrets: from the environment or a private config file, never from a flag (a flag
    # shows up in ps and in shell history).
    Setting("username", "Basic auth user", env="BULKREVOKE_USERNAME", secret=_always, keyword=False),
    Setting("password", "Basic auth password", env="BULKREVOKE_PASSWORD", secret=_always, keyword=False),
    Setting("client_key", "OAuth client key", env="BULKREVOKE_CLIENT_KEY", secret=_always, keyword=False),
    Setting(
        "client_secret", "OAuth client secret", env="BULKREVOKE_CLIENT_SECRET", secret=_always, keyword=False
    ),
    Setting(
        "pii_key", "the key of --mask-pii's keyed hash", env="BULKREVOKE_PII_KEY", file=False, keyword=False
    ),
)

BY_NAME: Mapping[str, Setting] = MappingProxyType({s.name: s for s in SETTINGS})
DEFAULTS: Mapping[str, Any] = MappingProxyType({s.name: s.default for s in SETTINGS})
#: What resolve_config and the library take (besides the flag spellings in ALIASES).
KEYWORDS = frozenset(s.name for s in SETTINGS if s.keyword)
FILE_KEYS = frozenset(s.name for s in SETTINGS if s.file)


def for_command(command: str) -> tuple[Setting, ...]:
    """The settings that *command* (run, verify) takes as flags, in help order."""
    return tuple(s for s in SETTINGS if s.flags and command in s.commands)


# The value a flag's action stores → the setting's value, for a keyword spelled as a flag.
_FROM_FLAG: Mapping[str, Callable[[Any], Any]] = {"store_false": lambda value: not value, "count": int}


def _aliases() -> dict[str, tuple[str, Callable[[Any], Any]]]:
    """``run`` flags spelled unlike their setting (``--no-progress``, ``--verbose``): the
    library takes them too, as the README promises ("the run flags with - turned into _")."""
    aliases = {}
    for setting in for_command("run"):
        for flag in setting.flags:
            keyword = flag.lstrip("-").replace("-", "_")
            if setting.keyword and flag.startswith("--") and keyword != setting.name:
                aliases[keyword] = (setting.name, _FROM_FLAG.get(setting.action, _same))
    return aliases


def _same(value: Any) -> Any:
    return value


#: Library keyword → (setting, conversion).
ALIASES: Mapping[str, tuple[str, Callable[[Any], Any]]] = MappingProxyType(_aliases())


def default_text(setting: Setting) -> str:
    """The default as help and the README show it; "" when a switch or unset means off."""
    if setting.shown is not None:
        return setting.shown
    value = setting.default
    if value is None or isinstance(value, (bool, Mapping)) or setting.action == "count":
        return ""
    if isinstance(value, float):
        return f"{value:g}"
    return str(value) if isinstance(value, (int, str, RateLimit)) else repr(value)


def help_text(setting: Setting) -> str:
    """The help line: the text, then the default and the environment variable, if any."""
    parts = [setting.help]
    if default := default_text(setting):
        parts.append(f"(default: {default})")
    if setting.env:
        parts.append(f"(env {setting.env})")
    return " ".join(parts)
