"""The settings table against everything that spells a setting: the run and verify flags,
the config file's keys, the library's keywords and the README's flag table. Also pins
today's surface, so that a table edit can't drop a flag, a key or an environment variable
unnoticed."""

from __future__ import annotations

import argparse
import os
import re
from dataclasses import fields
from pathlib import Path

import pytest

import bulkrevoke
from bulkrevoke.api import _normalise
from bulkrevoke.cli import build_parser
from bulkrevoke.config import RunConfig, load_config_file, resolve_config
from bulkrevoke.errors import ConfigError
from bulkrevoke.settings import (
    ALIASES,
    BY_NAME,
    DEFAULTS,
    FILE_KEYS,
    KEYWORDS,
    SETTINGS,
    default_text,
    for_command,
    help_text,
)

README = Path(__file__).resolve().parent.parent / "README.md"
SAMPLE = Path(__file__).resolve().parent.parent / "sample_inputs" / "revocations.csv"


def _options(command: str) -> dict[str, argparse.Action]:
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {a.dest: a for a in commands.choices[command]._actions if a.option_strings and a.dest != "help"}


@pytest.mark.parametrize("command", ["run", "verify"])
def test_the_flags_are_the_table(command):
    options = _options(command)
    table = for_command(command)
    assert list(options) == [s.name for s in table]
    for setting in table:
        action = options[setting.name]
        assert tuple(action.option_strings) == setting.flags
        assert action.default is None  # not given: the environment, the file or the default speak
        assert action.help == help_text(setting).replace("%", "%%")  # argparse expands %
        assert action.metavar == setting.metavar
        assert action.choices == setting.choices
        if default_text(setting):
            assert f"(default: {default_text(setting)})" in action.help


def test_a_flag_passes_its_text_on_unparsed():
    # Parsing is resolve_config's, so that a bad value is one ConfigError naming the flag.
    args = build_parser().parse_args(
        ["run", "in.csv", "--max-attempts", "3", "--no-progress", "-vv", "--column", "a=b", "--column", "c=d"]
    )
    assert (args.max_attempts, args.progress, args.verbosity) == ("3", False, 2)
    assert args.column == ["a=b", "c=d"] and args.rate is None and args.sandbox is None


def test_defaults_are_declared_once():
    """A RunConfig built directly, one resolved from nothing and the table agree."""
    resolved = resolve_config("x.csv", {"host": "eu"}, {})
    direct = RunConfig(source="x.csv")
    on_retry = {
        "max_attempts": "max_attempts",
        "timeout": "timeout",
        "backoff": "base_delay",
        "backoff_cap": "max_delay",
        "retry_after_cap": "retry_after_cap",
        "row_deadline": "row_deadline",
    }
    for name, attribute in on_retry.items():
        assert getattr(resolved.retry, attribute) == getattr(direct.retry, attribute) == DEFAULTS[name]
    for field in fields(RunConfig):
        if field.name in BY_NAME and field.name != "host":
            assert getattr(resolved, field.name) == getattr(direct, field.name) == DEFAULTS[field.name]
    assert resolved.columns == direct.columns == DEFAULTS["column"] == {}


def test_the_config_file_takes_the_table_keys(tmp_path):
    file = tmp_path / "c.toml"
    file.write_text("".join(f'{key} = "x"\n' for key in sorted(FILE_KEYS)))
    os.chmod(file, 0o600)
    assert set(load_config_file(file)) == FILE_KEYS
    for name in sorted(set(BY_NAME) - FILE_KEYS):
        file.write_text(f"{name} = true\n")
        with pytest.raises(ConfigError, match=f"unknown setting\\(s\\) {name}$"):
            load_config_file(file)


@pytest.mark.parametrize(
    "line, secret",
    [
        ('username = "u"', True),
        ('password = "p"', True),
        ('client_key = "k"', True),
        ('client_secret = "s"', True),
        ('notify = "https://hooks.example/T0/B0"', True),
        ('proxy = "http://user:pw@proxy.example:3128"', True),
        ('proxy = "http://proxy.example:3128"', False),
        ('host = "eu"', False),
    ],
)
def test_a_file_holding_a_secret_must_be_private(tmp_path, line, secret):
    file = tmp_path / "c.toml"
    file.write_text(line + "\n")
    os.chmod(file, 0o644)
    if secret:
        with pytest.raises(ConfigError, match="chmod 600"):
            load_config_file(file)
    else:
        assert load_config_file(file)
    os.chmod(file, 0o600)
    assert load_config_file(file)


def test_environment_beats_file_and_flag_beats_environment_for_notify(tmp_path):
    file = tmp_path / "c.toml"
    file.write_text('notify = "https://file.example/hook"\n')
    os.chmod(file, 0o600)
    settings = {"host": "eu", "config": str(file)}
    env = {"BULKREVOKE_NOTIFY_URL": "https://env.example/hook"}
    assert resolve_config("x.csv", settings, {}).notify.url == "https://file.example/hook"
    assert resolve_config("x.csv", settings, env).notify.url == "https://env.example/hook"
    flagged = resolve_config("x.csv", {**settings, "notify": "https://flag.example/h"}, env)
    assert flagged.notify.url == "https://flag.example/h"


def test_library_keywords_are_the_settings_and_the_run_flags():
    run_flags = {
        f.lstrip("-").replace("-", "_")
        for s in for_command("run")
        if s.keyword
        for f in s.flags
        if f.startswith("--")
    }
    assert run_flags <= KEYWORDS | set(ALIASES)
    normalised = _normalise({"dry_run": True, "no_progress": True, "verbose": 1, "max_attempts": 3})
    assert normalised == {"dry_run": True, "progress": False, "verbosity": 1, "max_attempts": 3}
    config = resolve_config("x.csv", normalised, {})
    assert (config.progress, config.verbosity, config.retry.max_attempts) == (False, 1, 3)
    for secret in ("username", "password", "client_key", "client_secret", "pii_key", "quiet"):
        with pytest.raises(ConfigError, match=f"unknown setting\\(s\\): {secret}"):
            resolve_config("x.csv", {"dry_run": True, secret: "x"}, {})


def test_the_library_runs_with_flag_spellings(tmp_path):
    result = bulkrevoke.revoke(str(SAMPLE), dry_run=True, no_progress=True, verbose=1, out=tmp_path / "run")
    assert result.exit_code == 1  # the sample holds invalid rows on purpose
    assert result.summary["counts"]["would_revoke"] > 0


def _readme_flag_rows() -> list[tuple[list[str], str]]:
    """(the flags cell's `--flag METAVAR` spans, the default cell) per row of the README's
    run flag table."""
    text = README.read_text(encoding="utf-8")
    table = text[text.index("`bulkrevoke run` flags") :]
    table = table[table.index("| flag |") :]
    rows = []
    for line in table.split("\n\n", 1)[0].splitlines()[2:]:
        cells = [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        rows.append((re.findall(r"`([^`]+)`", cells[0]), cells[1].replace("`", "")))
    return rows


def test_the_readme_flag_table_agrees_with_the_table():
    settings = {flag: s for s in for_command("run") for flag in s.flags}
    documented = set()
    for spans, default in _readme_flag_rows():
        flags = [span.split(" ", 1)[0] for span in spans]
        assert all(flag in settings for flag in flags), f"README names an unknown flag: {spans}"
        setting = settings[flags[0]]
        assert {settings[flag].name for flag in flags} == {setting.name}, spans
        assert setting.name not in documented, f"two README rows for {setting.flag}"
        documented.add(setting.name)
        assert default == (default_text(setting) or setting.env or ""), setting.flag
        for span in spans:
            _, _, metavar = span.partition(" ")
            if metavar:
                assert metavar == (setting.metavar or "|".join(setting.choices or ())), span
    missing = {s.flag for s in for_command("run")} - {BY_NAME[n].flag for n in documented}
    assert missing == set(), f"README's run flag table lacks {sorted(missing)}"


def test_verify_only_flags_are_in_the_readme():
    text = README.read_text(encoding="utf-8")
    run = {s.name for s in for_command("run")}
    for setting in (s for s in for_command("verify") if s.name not in run):
        for flag in setting.flags:
            assert f"[{flag}]" in text, flag


# Today's surface, as the README and the contract promise it. Changing a line here is
# changing what operators and scripts rely on.
RUN_FLAGS = {
    "--sandbox",
    "--sandbox-state",
    "--host",
    "--ca-bundle",
    "--proxy",
    "--rate",
    "--concurrency",
    "--max-attempts",
    "--timeout",
    "--retry-after-cap",
    "--row-deadline",
    "--backoff",
    "--backoff-cap",
    "--max-error-rate",
    "--config",
    "--no-progress",
    "--log-format",
    "-v",
    "--verbose",
    "-q",
    "--quiet",
    "--identifier",
    "--column",
    "--delimiter",
    "--out",
    "--dry-run",
    "--resume",
    "--verify",
    "--sample",
    "--notify",
    "--ticket",
    "--mask-pii",
}
VERIFY_FLAGS = {
    "--all",
    "--sample",
    "--host",
    "--ca-bundle",
    "--proxy",
    "--rate",
    "--concurrency",
    "--max-attempts",
    "--timeout",
    "--retry-after-cap",
    "--row-deadline",
    "--backoff",
    "--backoff-cap",
    "--max-error-rate",
    "--config",
    "--no-progress",
    "--log-format",
    "-v",
    "--verbose",
    "-q",
    "--quiet",
}
FILE_SETTINGS = {
    "host",
    "rate",
    "concurrency",
    "max_attempts",
    "timeout",
    "identifier",
    "column",
    "max_error_rate",
    "delimiter",
    "ca_bundle",
    "proxy",
    "mask_pii",
    "log_format",
    "out",
    "retry_after_cap",
    "row_deadline",
    "backoff",
    "backoff_cap",
    "ticket",
    "verify",
    "sample",
    "username",
    "password",
    "client_key",
    "client_secret",
    "notify",
}
LIBRARY_KEYWORDS = {
    "out",
    "sandbox",
    "sandbox_state",
    "host",
    "rate",
    "concurrency",
    "max_attempts",
    "timeout",
    "identifier",
    "column",
    "dry_run",
    "resume",
    "max_error_rate",
    "delimiter",
    "config",
    "ca_bundle",
    "proxy",
    "mask_pii",
    "progress",
    "log_format",
    "verbosity",
    "retry_after_cap",
    "row_deadline",
    "backoff",
    "backoff_cap",
    "ticket",
    "verify",
    "verify_all",
    "sample",
    "notify",
    "no_progress",
    "verbose",
}
ENVIRONMENT = {
    "host": "BULKREVOKE_HOST",
    "notify": "BULKREVOKE_NOTIFY_URL",
    "username": "BULKREVOKE_USERNAME",
    "password": "BULKREVOKE_PASSWORD",
    "client_key": "BULKREVOKE_CLIENT_KEY",
    "client_secret": "BULKREVOKE_CLIENT_SECRET",
    "pii_key": "BULKREVOKE_PII_KEY",
}


def test_the_surface_is_unchanged():
    assert {f for s in for_command("run") for f in s.flags} == RUN_FLAGS
    assert {f for s in for_command("verify") for f in s.flags} == VERIFY_FLAGS
    assert FILE_KEYS == FILE_SETTINGS
    assert KEYWORDS | set(ALIASES) == LIBRARY_KEYWORDS
    assert {s.name: s.env for s in SETTINGS if s.env} == ENVIRONMENT
    assert not any(
        s.flags
        for s in SETTINGS
        if s.name in ("username", "password", "client_key", "client_secret", "pii_key")
    )
