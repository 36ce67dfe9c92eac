"""Shared helpers: the real CLI in a subprocess, the real sandbox on loopback.

The sandbox (aiohttp and its server) is imported only by the helpers that start one, so a
test that needs none (most unit tests) does not pay for it, and collecting this file stays
cheap."""

from __future__ import annotations

import csv
import json
import os
import random
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from bulkrevoke.sandbox import BadgeKey, SandboxSettings, SandboxThread

ROOT = Path(__file__).resolve().parent.parent
USERNAME, PASSWORD = "till-7", "Pw-test-4f1d"
CREDENTIALS = {"BULKREVOKE_USERNAME": USERNAME, "BULKREVOKE_PASSWORD": PASSWORD}
HEADER = ["badgeMetaId", "customerId", "earnedBadgeId", "identifierType"]


def cli_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BULKREVOKE_")}
    env.update(extra or {})
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_cli(
    *args: str,
    env: dict[str, str] | None = None,
    timeout: float = 180,
    stdin: str | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """The real entry point, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "bulkrevoke", *args],
        env=cli_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        input=stdin,
        cwd=cwd,
    )


def start_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "bulkrevoke", *args],
        env=cli_env(env),
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


@dataclass(frozen=True)
class Badge:
    badge_meta_id: str
    customer_id: str
    earned_badge_id: str
    identifier_type: str = "id"
    active: bool = True

    @property
    def key(self) -> BadgeKey:
        from bulkrevoke.sandbox import BadgeKey

        return BadgeKey(self.badge_meta_id, self.identifier_type, self.customer_id, self.earned_badge_id)

    def row(self) -> list[str]:
        return [
            self.badge_meta_id,
            self.customer_id,
            self.earned_badge_id,
            "" if self.identifier_type == "id" else self.identifier_type,
        ]


def make_badges(count: int, *, seed: int = 1, inactive_share: float = 0.1) -> list[Badge]:
    rng = random.Random(seed)
    metas = [f"{rng.getrandbits(96):024x}" for _ in range(5)]
    badges = []
    for i in range(count):
        kind = rng.choice(["id", "id", "id", "email", "mobile"])
        customer = {"id": str(500000000 + i), "email": f"member{i}@example.com", "mobile": f"9198{i:08d}"}[
            kind
        ]
        badges.append(
            Badge(
                rng.choice(metas),
                customer,
                f"{i:08x}{rng.getrandbits(64):016x}",
                kind,
                rng.random() >= inactive_share,
            )
        )
    return badges


def write_input(path: Path, badges: list[Badge], extra_rows: list[list[str]] = ()) -> Path:
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(HEADER)
        writer.writerows([b.row() for b in badges])
        writer.writerows(extra_rows)
    return path


def sandbox_settings(badges: list[Badge], **overrides) -> SandboxSettings:
    from bulkrevoke.sandbox import SandboxSettings

    overrides.setdefault("username", USERNAME)
    overrides.setdefault("password", PASSWORD)
    return SandboxSettings(state={b.key: b.active for b in badges}, **overrides)


def read_report(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "report.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def read_summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


@pytest.fixture
def sandbox_for():
    """Start a real sandbox on loopback for a list of badges; stopped after the test."""
    from bulkrevoke.sandbox import SandboxThread

    started: list[SandboxThread] = []

    def start(badges: list[Badge], **overrides) -> SandboxThread:
        thread = SandboxThread(sandbox_settings(badges, **overrides))
        thread.__enter__()
        started.append(thread)
        return thread

    yield start
    for thread in started:
        thread.__exit__(None, None, None)


def failed_run(tmp_path: Path, sandbox_for, *, count: int, seed: int, **sandbox_options):
    """A run against a faulty sandbox with one attempt per row, so that some rows fail
    (for the read-back's tests): its badges, the sandbox and the run directory."""
    badges = make_badges(count, seed=seed, inactive_share=0.2)
    sandbox = sandbox_for(badges, **sandbox_options)
    out = tmp_path / "run"
    result = run_cli(
        "run",
        str(write_input(tmp_path / "in.csv", badges)),
        "--host",
        sandbox.url,
        "--rate",
        "unlimited",
        "--max-attempts",
        "1",
        "--timeout",
        "2",
        "--no-progress",
        "--out",
        str(out),
        env=CREDENTIALS,
    )
    assert result.returncode == 1, result.stderr
    return badges, sandbox, out
