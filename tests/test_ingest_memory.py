"""A million rows through the real CLI (dry run): memory stays flat.

docs/design.md, *Invariants*: memory does not grow with the input's size. The peak RSS of the
child process (its own ``ru_maxrss``, from ``os.wait4``) must stay under 400 MB: generous
(the target is ~200 MB, and the report phase alone peaks near 290 MB today), yet a run
that kept every row as Python objects would go past it.
"""

from __future__ import annotations

import contextlib
import csv
import math
import os
import random
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bulkrevoke.ingest.phase import STORE_ROWS

ROWS = 1_000_000
PEAK_RSS_LIMIT_MB = 400


def _write_input(path: Path) -> None:
    """A million valid, distinct rows."""
    rng = random.Random(5)
    meta = [f"{rng.getrandbits(96):024x}" for _ in range(50)]
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("badgeMetaId,customerId,earnedBadgeId\n")
        lines = (f"{meta[i % 50]},{100_000_000 + i},{i:024x}\n" for i in range(ROWS))
        out.writelines(lines)


def _run_measured(command: list[str], log: Path) -> tuple[int, float, float]:
    """Exit code, seconds and peak RSS in MB of *command*, from its own rusage (wait4),
    so that other children of the test process don't count."""
    started = time.monotonic()
    with log.open("wb") as output:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)  # Popen must not wait again
    seconds = time.monotonic() - started
    # ru_maxrss is in KiB on Linux and in bytes on macOS.
    peak = usage.ru_maxrss / (1 << 20) if sys.platform == "darwin" else usage.ru_maxrss / 1024
    return process.returncode, seconds, peak


@pytest.mark.slow
def test_a_million_rows_dry_run_in_flat_memory(tmp_path: Path) -> None:
    source = tmp_path / "million.csv"
    _write_input(source)
    out, log = tmp_path / "run", tmp_path / "output.txt"
    code, seconds, peak = _run_measured(
        [
            sys.executable,
            "-m",
            "bulkrevoke",
            "run",
            str(source),
            "--dry-run",
            "--out",
            str(out),
            "--no-progress",
        ],
        log,
    )
    print(f"\n1M-row dry run: {seconds:.1f} s, {ROWS / seconds:,.0f} rows/s, peak RSS {peak:.0f} MB")
    assert code == 0, log.read_text(errors="replace")[-2000:]
    with (out / "report.csv").open(encoding="utf-8", newline="") as report:
        reader = csv.reader(report)
        assert next(reader)[:1] == ["row"]
        count = sum(1 for _ in reader)
    assert count == ROWS
    assert peak < PEAK_RSS_LIMIT_MB  # report.xlsx included: it is written as a stream
    assert (out / "report.xlsx").stat().st_size > 0
    # The rows went to the ledger 32,768 or more to a BLOB (the last one excepted), not a
    # row per insert.
    with contextlib.closing(sqlite3.connect(out / "ledger.sqlite")) as ledger:
        (blobs,) = ledger.execute("SELECT COUNT(*) FROM row_batches").fetchone()
    assert 1 <= blobs <= math.ceil(ROWS / STORE_ROWS)
