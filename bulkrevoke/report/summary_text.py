"""The end-of-run summary an operator reads on stderr: short, aligned, actionable.

Values that came from the input, the API or the environment (error messages, the ticket,
the operator, paths) are printed with their control characters escaped, so they can't
repaint the terminal or fake a line of this summary.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from bulkrevoke.logs import printable
from bulkrevoke.report.summary import controls_hold

_ORDER = (
    "revoked",
    "already_inactive",
    "revoked_unconfirmed",
    "duplicate",
    "invalid",
    "failed",
    "not_attempted",
    "would_revoke",
)


def format_summary(
    summary: dict[str, Any],
    run_dir: Path,
    *,
    rerun_args: list[str],
    input_arg: str | None,
    stop_message: str = "",
) -> str:
    counts = summary["counts"]
    width = max(len(name) for name in _ORDER)
    lines = [
        f"bulkrevoke {'dry run' if summary.get('dryRun') else 'run'} "
        f"{printable(str(summary.get('runId')))}: {summary['rows']:,} rows"
    ]
    if not controls_hold(summary):
        lines.insert(0, 'CONTROL TOTALS DO NOT HOLD: see summary.json "controls"')
    verification = summary.get("verification") or {}
    if verification.get("revokedFoundActive"):
        lines.insert(
            0,
            f"ALARM: {verification['revokedFoundActive']:,} rows reported revoked "
            "are still active on the server (see the verified column of report.xlsx)",
        )
    lines.append(
        "  "
        + ", ".join(
            f"{label} {printable(str(summary.get(key) or '-'))}"
            for label, key in (("operator", "operator"), ("principal", "principal"), ("ticket", "ticket"))
        )
    )
    for name in _ORDER:
        if counts.get(name):
            lines.append(f"  {name:<{width}}  {counts[name]:>10,}")
    codes = summary.get("errorCodes") or {}
    if codes:
        lines.append("  top error codes:")
        messages = summary.get("errorMessages") or {}
        for code, count in list(codes.items())[:5]:
            message = printable(messages.get(code) or "")[:70]
            lines.append(f"    {printable(code):<20} {count:>8,}  {message}")
    lines.append(
        f"  duration {summary['durationSeconds']:.1f}s, {summary['requestsSent']:,} requests, "
        f"{summary['achievedRequestsPerSecond']:.1f} req/s, {summary['throttled']:,} throttled, "
        f"{summary['retries']:,} retries"
    )
    if verification:
        lines.append(
            f"  verified {verification['checked']:,} rows against the server: "
            f"{verification['inactive']:,} inactive, {verification['active']:,} active, "
            f"{verification['unverifiable']:,} unverifiable"
        )
    if summary.get("discoveredRate"):
        lines.append(
            f"  the server's limit held at {summary['discoveredRate']}: pin it in the "
            f"next run with --rate {summary['discoveredRate']}"
        )
    lines.append(f"  run directory: {printable(str(run_dir))}")
    files = summary.get("files") or {}
    if "report.xlsx" in files:
        lines.append(
            "  for finance: open report.xlsx in a spreadsheet (never report.csv); "
            "summary.html is the one-page summary"
        )
    elif "summary.html" in files:
        lines.append("  summary.html is the one-page summary (report.xlsx needs openpyxl)")
    if stop_message:
        lines.append(f"  stopped: {printable(stop_message)}")
    if counts.get("not_attempted") and input_arg is not None and input_arg != "-":
        command = ["bulkrevoke", "run", input_arg, "--out", str(run_dir), "--resume", *rerun_args]
        lines.append(f"  resume with: {printable(shlex.join(command))}")
    elif counts.get("failed"):
        command = ["bulkrevoke", "run", str(run_dir / "failed.csv"), *rerun_args]
        lines.append(f"  re-run the failed rows with: {printable(shlex.join(command))}")
    return "\n".join(lines)
