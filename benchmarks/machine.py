"""The particulars a RESULTS file records: date, machine, versions, event loop, pinning,
and a fingerprint of the package's sources (the package may be edited while benchmarks
run, so the fingerprint is taken at the start and again at the end)."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from benchmarks.settings import CLIENT_CPU, SERVER_CPU


def package_snapshot() -> str:
    try:
        import bulkrevoke

        root = Path(bulkrevoke.__file__).resolve().parent
    except Exception as exc:  # the package is being edited: say so, measure what runs
        return f"unavailable ({exc.__class__.__name__})"
    digest = hashlib.sha256()
    newest = 0.0
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
        newest = max(newest, path.stat().st_mtime)
    stamp = dt.datetime.fromtimestamp(newest).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    return f"commit {commit(root)}, sources sha256 {digest.hexdigest()[:12]}, newest file {stamp}"


def commit(root: Path) -> str:
    """The commit of the checkout holding *root*, with "+ changes" when files under *root* differ."""
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "-uno", "--", "."],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (head or "unknown") + (" + changes" if dirty else "")


def version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor()


def machine_info(*, quick: bool, pinning: bool, snapshot: str) -> dict[str, str]:
    uvloop = version("uvloop")
    loop = (
        f"uvloop {uvloop} (bulkrevoke's speed extra; the baseline follows the same rule)"
        if uvloop != "not installed"
        else "asyncio (uvloop not installed)"
    )
    return {
        "date": dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "mode": "quick (--quick)" if quick else "full",
        "machine": f"{os.cpu_count()} cores, CPU {cpu_model()}, {platform.system()} {platform.release()}",
        "python": f"{platform.python_version()} ({sys.executable})",
        "aiohttp / pyarrow / openpyxl": " / ".join(version(n) for n in ("aiohttp", "pyarrow", "openpyxl")),
        "bulkrevoke": f"{version('bulkrevoke')} ({snapshot})",
        "event loop": loop,
        "sandbox": "`bulkrevoke sandbox` process, one per run",
        "pinning": (
            f"servers (sandbox, nginx) on core {SERVER_CPU}, clients on core {CLIENT_CPU}"
            if pinning
            else "none (fewer than 2 cores or no taskset)"
        ),
    }
