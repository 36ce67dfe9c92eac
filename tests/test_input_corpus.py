"""The input corpus (tests/corpus/make_corpus.py) through the real CLI, one process per file.

`bulkrevoke run FILE --dry-run` must end a file-level problem with exit 2 and a single
stderr line naming the file, and otherwise report every record with the expected status
and errorCode. The processes run a few at a time, so the whole corpus costs seconds.
"""

from __future__ import annotations

import csv
import importlib.util
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest


def _load_corpus() -> Any:
    path = Path(__file__).parent / "corpus" / "make_corpus.py"
    spec = importlib.util.spec_from_file_location("make_corpus", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while building
    spec.loader.exec_module(module)
    return module


corpus = _load_corpus()
CASES = corpus.cases()


@dataclass
class Outcome:
    path: Path
    out: Path
    process: subprocess.CompletedProcess[str]


def _run(case: Any, directory: Path) -> Outcome:
    path = corpus.write(case, directory)
    out = directory / f"run-{case.name}"
    command = [
        sys.executable,
        "-m",
        "bulkrevoke",
        "run",
        "-" if case.stdin else str(path),
        "--dry-run",
        "--out",
        str(out),
        "--no-progress",
        *case.args,
    ]
    process = subprocess.run(
        command,
        input=path.read_text("utf-8") if case.stdin else None,
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        timeout=case.timeout,
        stdin=None if case.stdin else subprocess.DEVNULL,
    )
    return Outcome(path, out, process)


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome]:
    directory = tmp_path_factory.mktemp("corpus")
    with ThreadPoolExecutor(max_workers=4) as pool:
        runs = {case.name: pool.submit(_run, case, directory) for case in CASES}
        return {name: run.result() for name, run in runs.items()}


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_case(case: Any, outcomes: dict[str, Outcome]) -> None:
    outcome = outcomes[case.name]
    process = outcome.process
    assert process.returncode == case.exit_code, process.stderr
    if case.exit_code == 2:
        _check_error_line(case, outcome)
    else:
        _check_report(case, outcome)


def _check_error_line(case: Any, outcome: Outcome) -> None:
    lines = outcome.process.stderr.splitlines()
    assert len(lines) == 1, outcome.process.stderr
    line = lines[0]
    assert line.startswith("bulkrevoke: error: ")
    assert ("<stdin>" if case.stdin else str(outcome.path)) in line
    assert case.error in line
    if case.secret:
        assert case.secret not in line
    assert not (outcome.out / "report.csv").exists()  # nothing went further than ingest


def _check_report(case: Any, outcome: Outcome) -> None:
    with (outcome.out / "report.csv").open(encoding="utf-8", newline="") as report:
        rows = list(csv.DictReader(report))
    assert [int(r["row"]) for r in rows] == list(range(1, len(rows) + 1))
    got = [(r["status"], r["errorCode"]) for r in rows]
    assert got == list(case.rows)
    for r in rows:
        if r["status"] == "invalid":
            assert r["errorSource"] == "local" and r["errorMessage"]
            # Long enough not to be a substring of the message by chance ("3" in "813").
            assert len(r["customerId"]) < 5 or r["customerId"] not in r["errorMessage"]
