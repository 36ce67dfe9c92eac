"""summary.json: what a run did, who ran it and why, and the batch control totals.

The control totals compare two independent counts: the left side of each rule is
counted in the ledger (the records stored at ingest, the rows with a final sent
outcome), the right side in the report just written. They hold unless a row was lost
or doubled between the two.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bulkrevoke._version import __version__
from bulkrevoke.ledger import Ledger
from bulkrevoke.model import Status, exit_code

#: The statuses of rows that were sent and settled (the "sent" of the control totals).
SENT_STATUSES = ("revoked", "already_inactive", "revoked_unconfirmed", "failed")
_NOT_SENT_STATUSES = ("not_attempted", "would_revoke")


def build_summary(
    ledger: Ledger,
    meta: dict[str, Any],
    statuses: Mapping[str, int],
    error_codes: Sequence[tuple[str, int, str | None]],
    files: dict[str, str],
) -> dict[str, Any]:
    """The summary of the report just written: *statuses* counts its rows by status,
    *error_codes* holds (code, count, first message), *files* each file's SHA-256."""
    counters = ledger.counters()
    codes = sorted(error_codes, key=lambda c: (-c[1], c[0]))
    send_seconds = counters.get("send_seconds", 0.0)
    requests = int(counters.get("requests", 0))
    final = ledger.final_counts()
    verification = verification_summary(ledger, meta)
    summary = {
        "runId": meta.get("run_id"),
        "version": __version__,
        "operator": meta.get("operator"),
        "principal": meta.get("principal"),
        "ticket": meta.get("ticket"),
        "machine": meta.get("machine"),
        "pythonVersion": meta.get("python_version"),
        "settingsDigest": meta.get("settings_digest"),
        "settings": meta.get("settings"),
        "input": meta.get("input"),
        "inputSha256": meta.get("input_sha256"),
        "dryRun": bool(meta.get("dry_run")),
        "host": meta.get("host"),
        "rows": sum(statuses.values()),
        "counts": {s.value: statuses.get(s.value, 0) for s in Status},
        "controls": control_totals(
            statuses, rows=ledger.row_count(), sent=sum(final.get(s, 0) for s in SENT_STATUSES)
        ),
        "errorCodes": {code: count for code, count, _ in codes},
        "errorMessages": {code: message for code, _, message in sorted(codes) if message},
        "started": meta.get("started"),
        "finished": meta.get("finished"),
        "durationSeconds": round(float(meta.get("duration_seconds") or 0.0), 3),
        "sendSeconds": round(send_seconds, 3),
        "requestsSent": requests,
        "retries": int(counters.get("retries", 0)),
        "throttled": int(counters.get("throttled", 0)),
        "achievedRequestsPerSecond": round(requests / send_seconds, 2) if send_seconds else 0.0,
        "rate": meta.get("rate"),
        "discoveredRate": meta.get("discovered_rate"),
        "largestConcurrency": meta.get("largest_concurrency"),
        "medianLatencyMs": meta.get("median_latency_ms"),
        "stopReason": meta.get("stop_reason"),
        "resumes": ledger.resumes(),
        "exitCode": exit_code(
            statuses,
            dry_run=bool(meta.get("dry_run")),
            stop_reason=meta.get("stop_reason"),
            revoked_found_active=bool(verification and verification["revokedFoundActive"]),
        ),
        "files": {name: {"sha256": digest} for name, digest in files.items()},
    }
    if verification is not None:
        summary["verification"] = verification
    return summary


def verification_summary(ledger: Ledger, meta: Mapping[str, Any]) -> dict[str, Any] | None:
    """The read-back's counts, once a verification has run: rows checked, verdicts, the
    sample of revoked rows (its size and seed), and revoked rows found still active."""
    plan = meta.get("verification")
    if not isinstance(plan, dict):
        return None
    counts = ledger.verification_counts()
    verdicts = {name: int(counts.get(name, 0)) for name in ("inactive", "active", "unverifiable")}
    return {
        "checked": sum(verdicts.values()),
        **verdicts,
        "sample": plan.get("sample"),
        "sampleSeed": plan.get("seed"),
        "everySentRow": bool(plan.get("every")),
        "revokedFoundActive": int(counts.get("revoked_active", 0)),
        "verifiedAt": meta.get("verified_at"),
    }


def control_totals(statuses: Mapping[str, int], *, rows: int, sent: int) -> dict[str, Any]:
    """The batch control totals: *rows* and *sent* as the ledger counts them, against
    the report's counts by status."""
    count = {
        name: int(statuses.get(name, 0))
        for name in ("invalid", "duplicate", *SENT_STATUSES, *_NOT_SENT_STATUSES)
    }
    not_sent = sum(count[s] for s in _NOT_SENT_STATUSES)
    return {
        "rows": {
            "rule": "rows = invalid + duplicate + sent + not sent",
            "figures": {
                "rows": rows,
                "invalid": count["invalid"],
                "duplicate": count["duplicate"],
                "sent": sent,
                "notSent": not_sent,
            },
            "holds": rows == count["invalid"] + count["duplicate"] + sent + not_sent,
        },
        "sent": {
            "rule": "sent = revoked + already_inactive + revoked_unconfirmed + failed",
            "figures": {"sent": sent, **{s: count[s] for s in SENT_STATUSES}},
            "holds": sent == sum(count[s] for s in SENT_STATUSES),
        },
    }


def controls_hold(summary: Mapping[str, Any]) -> bool:
    return all(c.get("holds") for c in (summary.get("controls") or {}).values())


def identity_rows(summary: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """Who, what, why and when, as (label, value) rows for the page and the workbook."""
    return [
        ("Run", summary.get("runId")),
        ("Operator", summary.get("operator")),
        ("API principal", summary.get("principal")),
        ("Ticket", summary.get("ticket")),
        ("Machine", summary.get("machine")),
        ("Input", summary.get("input")),
        ("Input SHA-256", summary.get("inputSha256")),
        ("Host", summary.get("host")),
        ("Dry run", summary.get("dryRun")),
        ("Started", summary.get("started")),
        ("Finished", summary.get("finished")),
        ("Duration (s)", summary.get("durationSeconds")),
        ("Rate", summary.get("rate")),
        ("Stop reason", summary.get("stopReason")),
        ("Exit code", summary.get("exitCode")),
        ("bulkrevoke version", summary.get("version")),
        ("Python version", summary.get("pythonVersion")),
        ("Settings digest", summary.get("settingsDigest")),
    ]
