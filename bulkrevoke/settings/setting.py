"""What one setting is (``Setting``), and how help text and the README show its default."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from bulkrevoke.values import RateLimit, as_is

#: Raw value and the flag to name in an error → the setting's value.
Parser = Callable[[Any, str], Any]
Action = Literal["store", "store_true", "store_false", "count", "append"]

RUN: tuple[str, ...] = ("run",)
VERIFY: tuple[str, ...] = ("verify",)
BOTH: tuple[str, ...] = ("run", "verify")

WHERE, PACE, OUTPUT, INPUT = "where to send", "pace and retries", "output", "input"
MODE, VERIFICATION = "run", "verification"


def always(value: Any) -> bool:
    return True


def holds_password(value: Any) -> bool:
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
