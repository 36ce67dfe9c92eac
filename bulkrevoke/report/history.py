"""``bulkrevoke history``: the runs in a reports folder, newest first.

Each run directory is described by its summary.json; a directory without one (a run
still going, or one that died before its report) by its ledger's meta, read without
writing to it; anything else in the folder is left out. Nothing in a broken directory
stops the listing: it is shown with what could be read.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bulkrevoke import rundir
from bulkrevoke.errors import ConfigError
from bulkrevoke.logs import printable

_COUNT_ORDER = (
    "revoked",
    "already_inactive",
    "revoked_unconfirmed",
    "duplicate",
    "invalid",
    "failed",
    "not_attempted",
    "would_revoke",
)


def list_runs(reports_dir: Path) -> list[dict[str, Any]]:
    """One entry per run directory under *reports_dir*, newest first."""
    try:
        children = sorted(p for p in reports_dir.iterdir() if p.is_dir())
    except FileNotFoundError:
        raise ConfigError(f"{reports_dir}: no such folder") from None
    except NotADirectoryError:
        raise ConfigError(f"{reports_dir}: not a folder") from None
    except OSError as exc:
        raise ConfigError(f"{reports_dir}: cannot read ({exc.strerror})") from None
    runs = [entry for entry in map(describe_run, children) if entry is not None]
    runs.sort(key=lambda e: (e["started"] or "", e["runId"] or ""), reverse=True)
    return runs


def describe_run(run_dir: Path) -> dict[str, Any] | None:
    """A run directory as a history entry, or None if it holds no run."""
    summary_path, ledger = run_dir / "summary.json", run_dir / rundir.LEDGER
    summary = _read_summary(summary_path)
    if summary is not None:
        return _entry(run_dir, summary, state="finished")
    unreadable = "summary.json unreadable" if summary_path.exists() else None
    if not ledger.exists():
        return None if unreadable is None else _entry(run_dir, {}, state=unreadable)
    from bulkrevoke.ledger import read_meta

    try:
        meta = read_meta(ledger)
    except (sqlite3.Error, ValueError, OSError):
        return _entry(run_dir, {}, state=unreadable or "ledger unreadable")
    return _entry(
        run_dir,
        {
            "runId": meta.get("run_id"),
            "started": meta.get("started"),
            "operator": meta.get("operator"),
            "ticket": meta.get("ticket"),
            "input": meta.get("input"),
            "host": meta.get("host"),
            "dryRun": meta.get("dry_run"),
        },
        state=unreadable or "no report yet (running, or stopped before its report)",
    )


def _read_summary(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _entry(run_dir: Path, found: Mapping[str, Any], *, state: str) -> dict[str, Any]:
    counts = found.get("counts")
    return {
        "runId": _string(found.get("runId")) or run_dir.name,
        "directory": str(run_dir),
        "state": state,
        "started": _string(found.get("started")),
        "operator": _string(found.get("operator")),
        "ticket": _string(found.get("ticket")),
        "input": _string(found.get("input")),
        "host": _string(found.get("host")),
        "dryRun": bool(found.get("dryRun")),
        "rows": found.get("rows") if isinstance(found.get("rows"), int) else None,
        "counts": (
            {k: v for k, v in counts.items() if isinstance(v, int) and v} if isinstance(counts, dict) else {}
        ),
        "exitCode": found.get("exitCode") if isinstance(found.get("exitCode"), int) else None,
        "verified": isinstance(found.get("verification"), dict),
    }


def _string(value: Any) -> str | None:
    return None if value is None else str(value)


def format_history(runs: list[dict[str, Any]]) -> str:
    """A table for a terminal: one line per run, values escaped."""
    if not runs:
        return "no runs here"
    header = ("RUN", "STARTED", "OPERATOR", "TICKET", "INPUT", "HOST", "EXIT", "VERIFIED", "COUNTS")
    lines = [header]
    for run in runs:
        lines.append(
            (
                run["runId"],
                run["started"] or "-",
                run["operator"] or "-",
                run["ticket"] or "-",
                Path(run["input"]).name if run["input"] else "-",
                run["host"] or "-",
                "-" if run["exitCode"] is None else str(run["exitCode"]),
                "yes" if run["verified"] else "no",
                _counts(run) if run["state"] == "finished" else run["state"],
            )
        )
    cells = [[printable(c) for c in line] for line in lines]
    widths = [min(max(len(row[i]) for row in cells), 40) for i in range(len(header) - 1)]
    return "\n".join(
        "  ".join(c[:40].ljust(w) for c, w in zip(row, widths, strict=False)) + "  " + row[-1]
        for row in cells
    )


def _counts(run: Mapping[str, Any]) -> str:
    counts = run["counts"]
    shown = [f"{counts[name]:,} {name}" for name in _COUNT_ORDER if counts.get(name)]
    rows = f"{run['rows']:,} rows" if run["rows"] is not None else "rows unknown"
    return rows + (": " + ", ".join(shown) if shown else "")


def print_history(reports_dir: Path, *, as_json: bool) -> int:
    runs = list_runs(reports_dir)
    if as_json:
        print(json.dumps(runs, indent=2))
    else:
        print(format_history(runs))
    return 0
