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
from types import MappingProxyType
from typing import Any

from bulkrevoke.settings.setting import Setting, default_text, help_text
from bulkrevoke.settings.table import SETTINGS

__all__ = [
    "ALIASES",
    "BY_NAME",
    "DEFAULTS",
    "FILE_KEYS",
    "KEYWORDS",
    "SETTINGS",
    "Setting",
    "default_text",
    "for_command",
    "help_text",
]

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
