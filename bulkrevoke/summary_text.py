"""The end-of-run summary an operator reads on stderr: short, aligned, actionable."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

_ORDER = ("revoked", "already_inactive", "revoked_unconfirmed", "duplicate", "invalid",
          "failed", "not_attempted", "would_revoke")


def format_summary(summary: dict[str, Any], run_dir: Path, *, rerun_args: list[str],
                   input_arg: str | None, stop_message: str = "") -> str:
    counts = summary["counts"]
    width = max(len(name) for name in _ORDER)
    lines = [f"bulkrevoke {'dry run' if summary.get('dryRun') else 'run'} "
             f"{summary.get('runId')}: {summary['rows']:,} rows"]
    for name in _ORDER:
        if counts.get(name):
            lines.append(f"  {name:<{width}}  {counts[name]:>10,}")
    codes = summary.get("errorCodes") or {}
    if codes:
        lines.append("  top error codes:")
        messages = summary.get("errorMessages") or {}
        for code, count in list(codes.items())[:5]:
            lines.append(f"    {code:<20} {count:>8,}  {messages.get(code, '')[:70]}")
    lines.append(
        f"  duration {summary['durationSeconds']:.1f}s, {summary['requestsSent']:,} requests, "
        f"{summary['achievedRequestsPerSecond']:.1f} req/s, {summary['throttled']:,} throttled, "
        f"{summary['retries']:,} retries")
    lines.append(f"  run directory: {run_dir}")
    if stop_message:
        lines.append(f"  stopped: {stop_message}")
    if counts.get("not_attempted") and input_arg is not None and input_arg != "-":
        command = ["bulkrevoke", "run", input_arg, "--out", str(run_dir), "--resume", *rerun_args]
        lines.append(f"  resume with: {shlex.join(command)}")
    elif counts.get("failed"):
        command = ["bulkrevoke", "run", str(run_dir / "failed.csv"), *rerun_args]
        lines.append(f"  re-run the failed rows with: {shlex.join(command)}")
    return "\n".join(lines)
