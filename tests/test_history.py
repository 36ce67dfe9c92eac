"""bulkrevoke history: the runs in a reports folder, newest first."""

from __future__ import annotations

import json
import shutil

from .conftest import ROOT, make_badges, run_cli, write_input

SAMPLE = ROOT / "sample_inputs" / "revocations.csv"


def test_history_lists_every_run_newest_first_and_survives_broken_ones(tmp_path):
    reports = tmp_path / "reports"
    source = write_input(tmp_path / "small.csv", make_badges(3, seed=51))
    assert run_cli("run", str(SAMPLE), "--sandbox", "--ticket", "CHG-42", "-q", cwd=tmp_path).returncode == 1
    assert run_cli("run", str(source), "--dry-run", "-q", cwd=tmp_path).returncode == 0
    runs = sorted(reports.iterdir(), key=lambda p: "small" in p.name)  # the sandbox run first
    assert len(runs) == 2 and runs[0].name.endswith("-revocations")
    # A run that died before its report (a ledger, no summary), a summary that can't be
    # read, a folder that holds no run and a stray file.
    crashed = reports / "20200101-000000-crashed"
    crashed.mkdir()
    shutil.copy(runs[0] / "ledger.sqlite", crashed / "ledger.sqlite")
    broken = reports / "broken"
    broken.mkdir()
    (broken / "summary.json").write_text("{not json")
    (reports / "notes").mkdir()
    (reports / "README.txt").write_text("hello")

    listed = run_cli("history", "--json", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    entries = json.loads(listed.stdout)
    by_dir = {e["directory"].rsplit("/", 1)[-1]: e for e in entries}
    assert set(by_dir) == {runs[0].name, runs[1].name, crashed.name, "broken"}
    started = [e["started"] or "" for e in entries]
    assert started == sorted(started, reverse=True)
    sandbox_run = by_dir[runs[0].name]
    assert sandbox_run["host"] == "sandbox" and sandbox_run["exitCode"] == 1
    assert sandbox_run["counts"]["revoked"] == 24 and sandbox_run["rows"] == 38
    assert sandbox_run["operator"] and sandbox_run["verified"] is False
    assert sandbox_run["input"].endswith("revocations.csv")
    assert by_dir[crashed.name]["state"].startswith("no report yet")
    assert by_dir[crashed.name]["ticket"] == "CHG-42" and by_dir[crashed.name]["exitCode"] is None
    assert by_dir["broken"]["state"] == "summary.json unreadable"

    table = run_cli("history", str(reports))
    assert table.returncode == 0 and "Traceback" not in table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split()[:4] == ["RUN", "STARTED", "OPERATOR", "TICKET"]
    assert len(lines) == 1 + 4
    assert any("CHG-42" in line and "38 rows: 24 revoked" in line for line in lines)


def test_history_of_a_missing_folder_is_one_line_and_exit_2(tmp_path):
    result = run_cli("history", str(tmp_path / "nowhere"))
    assert result.returncode == 2
    assert result.stderr == f"bulkrevoke: error: {tmp_path / 'nowhere'}: no such folder\n"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run_cli("history", str(empty)).stdout == "no runs here\n"
