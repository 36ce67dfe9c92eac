"""``bulkrevoke verify RUN_DIR``: read a finished run's rows back from the server, then
write its report again with the verdicts (the send phase's read-back, then the report
phase)."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from bulkrevoke import rundir, storage
from bulkrevoke.config import RunConfig
from bulkrevoke.errors import RunDirError
from bulkrevoke.ledger import Ledger
from bulkrevoke.logs import run_logging
from bulkrevoke.report.reconcile import write_reports
from bulkrevoke.runner import RunResult, api_target, iso
from bulkrevoke.send.concurrency import UNLIMITED_CAP
from bulkrevoke.send.throttle import Throttle
from bulkrevoke.send.verify import read_back


async def verify_run(config: RunConfig, run_dir: Path) -> RunResult:
    """``bulkrevoke verify RUN_DIR``: read the run's rows back, then write its report again."""
    if not (run_dir / rundir.LEDGER).exists():
        raise RunDirError(f"{run_dir}: no {rundir.LEDGER} here; is this a run directory?")
    with rundir.RunLock(run_dir), Ledger(run_dir / rundir.LEDGER) as ledger:
        meta = ledger.meta()
        if meta.get("dry_run"):
            raise RunDirError(f"{run_dir} holds a dry run: nothing was sent to verify")
        if meta.get("host") == "sandbox":
            raise RunDirError(
                f"{run_dir} ran against the in-process sandbox, which ended with "
                "it: verify such a run with run --sandbox --verify"
            )
        with run_logging(
            run_dir,
            str(meta.get("run_id") or run_dir.name),
            log_format=config.log_format,
            verbosity=config.verbosity,
        ):
            async with api_target(config) as (base_url, credentials):
                from bulkrevoke.send.client import CapillaryClient

                async with CapillaryClient(
                    base_url,
                    credentials,
                    timeout=config.retry.timeout,
                    concurrency=config.concurrency or UNLIMITED_CAP,
                    ca_bundle=config.ca_bundle,
                    proxy=config.proxy,
                ) as client:
                    await read_back(
                        config,
                        ledger,
                        client,
                        Throttle(config.rate),
                        now=lambda: iso(datetime.now(timezone.utc)),
                    )
            pii = config.pii_key if meta.get("mask_pii") else None
            with storage.writing("the report", run_dir):
                summary = write_reports(ledger, run_dir, pii_key=pii)
    return RunResult(run_dir=run_dir, summary=summary, exit_code=summary["exitCode"])
