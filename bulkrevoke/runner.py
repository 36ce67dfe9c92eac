"""One run, start to end: ingest → send → reconcile (see docs/design.md).

1. ingest: one streaming pass validates every record into the ledger (and hashes the
   input), so a file that can't be read to its end stops the run before any request.
2. send: pending rows go through the engine; a signal or a safety stop ends it early.
3. reconcile: the report files are written from the ledger.

The run directory is checked before ingest (created, writable, room for the ledger of the
input). A write to it that fails later is a storage fault: before anything was sent it
ends the run with ``StorageError`` (exit 2); after, it stops sending at once (stop reason
``storage``, exit 3), and if the report can't be written either, ``StorageStop`` says so.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bulkrevoke import rundir, storage
from bulkrevoke._version import __version__
from bulkrevoke.config import RunConfig
from bulkrevoke.errors import (
    BulkRevokeError,
    InputError,
    RunDirError,
    StorageError,
    StorageStop,
)
from bulkrevoke.failpoints import failpoint
from bulkrevoke.ingest.phase import ingest
from bulkrevoke.ingest.reader import open_source
from bulkrevoke.ledger import Ledger
from bulkrevoke.logs import FILE_ONLY, RunLogFile, run_logging
from bulkrevoke.model import StopReason, is_dataframe
from bulkrevoke.progress import Progress
from bulkrevoke.report.identity import run_identity
from bulkrevoke.report.reconcile import write_reports
from bulkrevoke.send.auth import require_credentials
from bulkrevoke.send.engine import FLUSH_ROWS, INTENT_BATCH, Engine
from bulkrevoke.send.throttle import Throttle
from bulkrevoke.send.verify import read_back
from bulkrevoke.signals import SignalWatch
from bulkrevoke.values import MAX_CONCURRENCY, Credentials, RateLimit

log = logging.getLogger("bulkrevoke")


@dataclass
class RunResult:
    """What a run leaves: its directory, summary and exit code; the report on demand."""

    run_dir: Path
    summary: dict[str, Any]
    exit_code: int
    stop_message: str = ""
    _report: Any = field(default=None, repr=False)

    @property
    def report(self) -> Any:
        """The report as a pandas DataFrame (read from report.parquet on first use), with
        nullable dtypes: integers stay integers and booleans booleans where cells are empty."""
        if self._report is None:
            import pandas as pd

            self._report = pd.read_parquet(self.run_dir / "report.parquet", dtype_backend="numpy_nullable")
        return self._report


async def run(
    config: RunConfig, *, progress_stream: Any = None, install_signal_handlers: bool = True
) -> RunResult:
    """A whole run; with ``--notify``, one message when it ends, whatever the exit code."""
    try:
        result = await _run_in_directory(config, progress_stream, install_signal_handlers)
    except BulkRevokeError as exc:
        await _notify(config, None, exit_code=exc.exit_code, error=str(exc))
        raise
    await _notify(config, result, exit_code=result.exit_code)
    return result


async def _notify(
    config: RunConfig, result: RunResult | None, *, exit_code: int, error: str | None = None
) -> None:
    if config.notify is None:
        return
    from bulkrevoke.send import notify

    payload = notify.message(
        result.summary if result else None,
        result.run_dir if result else None,
        exit_code=exit_code,
        stop_reason=result.summary.get("stopReason") if result else None,
        error=error,
    )
    await notify.send(config.notify.url, payload, proxy=config.notify.proxy, ca_bundle=config.ca_bundle)


async def _run_in_directory(
    config: RunConfig, progress_stream: Any, install_signal_handlers: bool
) -> RunResult:
    now = datetime.now(timezone.utc)
    if config.resume and not config.out:
        raise RunDirError("--resume needs --out DIR: the run directory to continue")
    run_dir = (
        rundir.prepare(config.out, resume=config.resume)
        if config.out
        else rundir.create_unique(rundir.DEFAULT_ROOT, rundir.run_id_for(config.source, now.astimezone()))
    )
    if not config.resume:
        storage.check_room(run_dir, storage.ledger_estimate(config.source) + _reserve(config))
    with rundir.RunLock(run_dir), Ledger(run_dir / rundir.LEDGER) as ledger:
        meta = ledger.meta()
        run_id = meta.get("run_id") or run_dir.name
        with run_logging(
            run_dir, run_id, log_format=config.log_format, verbosity=config.verbosity
        ) as run_log:
            progress = Progress(enabled=config.progress, stream=progress_stream)
            watch = SignalWatch(timeout=config.retry.timeout, run_dir=run_dir)
            try:
                return await _run(
                    config,
                    ledger,
                    run_dir,
                    run_id,
                    now,
                    progress,
                    watch if install_signal_handlers else None,
                    run_log,
                )
            finally:
                progress.close()


async def _run(
    config: RunConfig,
    ledger: Ledger,
    run_dir: Path,
    run_id: str,
    now: datetime,
    progress: Progress,
    watch: SignalWatch | None,
    run_log: RunLogFile,
) -> RunResult:
    meta = ledger.meta()
    started = time.monotonic()
    if config.resume and meta.get("ingest_complete"):
        _check_resume(config, meta)
        in_doubt, pending = ledger.in_doubt_count(), ledger.pending_count()
        ledger.add_resume(iso(now), in_doubt, pending)
        ledger.set_meta(stop_reason=None, ticket=meta.get("ticket") or config.ticket)
        log.info("resuming %s: %d rows pending, %d of them in doubt", run_id, pending, in_doubt)
    else:
        ledger.set_meta(
            run_id=run_id,
            version=__version__,
            input=_describe(config.source),
            dry_run=config.dry_run,
            started=iso(now),
            host=_host_label(config),
            rate=str(config.rate),
            mask_pii=config.mask_pii,
            stop_reason=None,
            ingest_complete=False,
            **run_identity(config, _host_label(config)),
        )
        with storage.writing("the run directory", run_dir):  # spool and spill files
            ingest(config, ledger, run_dir, progress)
        failpoint("after-ingest")
    if run_log.fault is not None:
        raise storage.fault("the log", run_dir, run_log.fault)
    stop_message = ""
    pending = 0 if config.dry_run else ledger.pending_count()
    sent = pending > 0 or bool(ledger.counters().get("requests"))
    if pending:  # held for the send phase only: ingest's spill files needed the room
        ledger.hold_reserve(_reserve(config))
    with watch or contextlib.nullcontext():
        fault: StorageError | None = None
        try:
            if pending or (config.verify and not config.dry_run):
                stop_message, fault = await _send(config, ledger, run_dir, pending, progress, watch, run_log)
            summary = _reconcile(config, ledger, run_dir, started)
        except StorageError as exc:  # the report (or the stop reason) could not be written
            error = fault or exc
            log.error("%s", error, extra=FILE_ONLY)
            raise (StorageStop(str(error)) if sent else error) from None
    log.info(
        "run %s finished: exit %d, counts %s",
        run_id,
        summary["exitCode"],
        {k: v for k, v in summary["counts"].items() if v},
    )
    return RunResult(
        run_dir=run_dir, summary=summary, exit_code=summary["exitCode"], stop_message=stop_message
    )


def _reconcile(config: RunConfig, ledger: Ledger, run_dir: Path, started: float) -> dict[str, Any]:
    finished = datetime.now(timezone.utc)
    ledger.set_meta(
        finished=iso(finished),
        duration_seconds=float(ledger.meta().get("duration_seconds") or 0.0) + time.monotonic() - started,
    )
    ledger.release_reserve()  # its room is the report's now
    return write_reports(ledger, run_dir, pii_key=config.pii_key)


def _reserve(config: RunConfig) -> int:
    """Room for what the send phase may hold unwritten: the journal, and the rows queued
    and in flight (a cap each, the queue INTENT_BATCH at the least)."""
    in_flight = config.concurrency or MAX_CONCURRENCY
    queued = max(in_flight, INTENT_BATCH)
    return 0 if config.dry_run else storage.reserve_bytes(FLUSH_ROWS + in_flight + queued)


def _check_resume(config: RunConfig, meta: dict[str, Any]) -> None:
    if meta.get("dry_run") != config.dry_run:
        raise RunDirError(
            "--resume: that run directory holds a dry run; start a new run instead"
            if meta.get("dry_run")
            else "--resume: that run directory holds a real run, not a dry run"
        )
    if config.ticket and meta.get("ticket") not in (None, config.ticket):
        raise RunDirError(
            f"--resume: this run was started under ticket {meta['ticket']!r}; "
            "leave --ticket out or give the same one"
        )
    if is_dataframe(config.source):
        digest = open_source(config.source, columns=config.columns).sha256
    elif str(config.source) == "-":
        raise RunDirError("--resume needs the input file itself, not standard input")
    else:
        try:
            digest = storage.file_sha256(Path(config.source))
        except OSError as exc:
            raise InputError(f"{config.source}: cannot read ({exc.strerror})") from None
    if digest != meta.get("input_sha256"):
        raise RunDirError(
            f"--resume: {config.source} is not the input this run started with "
            f"(SHA-256 {digest[:12]}… differs from {str(meta.get('input_sha256'))[:12]}…)"
        )


async def _send(
    config: RunConfig,
    ledger: Ledger,
    run_dir: Path,
    pending: int,
    progress: Progress,
    watch: SignalWatch | None,
    run_log: RunLogFile,
) -> tuple[str, StorageError | None]:
    """The send phase; its stop message, and the storage fault that stopped it if one did."""
    started = time.monotonic()
    async with api_target(config) as (base_url, credentials):
        from bulkrevoke.send.client import CapillaryClient

        client = CapillaryClient(
            base_url,
            credentials,
            timeout=config.retry.timeout,
            concurrency=config.concurrency or MAX_CONCURRENCY,
            ca_bundle=config.ca_bundle,
            proxy=None if config.sandbox else config.proxy,
        )
        async with client:
            throttle = Throttle(config.rate)
            engine: Engine

            def on_outcome(outcome: Any) -> None:
                progress.throttled = engine.stats.throttled
                progress.outcome(outcome)

            engine = Engine(ledger, client, throttle, config, on_outcome=on_outcome)
            progress.start("send", pending)
            log.info(
                "sending %d rows to %s at %s with %s in flight%s",
                pending,
                _host_label(config),
                config.rate,
                config.concurrency or "auto",
                f" through the proxy {config.proxy.label} (from {config.proxy.source})"
                if config.proxy and not config.sandbox
                else "",
            )
            with _stoppable(engine, watch, run_log, run_dir):
                await engine.run()
            progress.close()
            send_seconds = time.monotonic() - started
            if config.verify and engine.stop_reason is None:
                await read_back(config, ledger, client, throttle, now=lambda: iso(datetime.now(timezone.utc)))
    try:
        ledger.record([], {"send_seconds": send_seconds})
        discovered = throttle.discovered_rate
        ledger.set_meta(
            stop_reason=engine.stop_reason,
            median_latency_ms=(engine.cap.median_milliseconds()),
            largest_concurrency=max(engine.cap.largest, int(ledger.meta().get("largest_concurrency") or 0)),
            discovered_rate=str(RateLimit(discovered)) if discovered else None,
        )
    except StorageError as exc:
        engine.storage_fault(exc)
        ledger.set_meta(stop_reason=engine.stop_reason)  # in the room the reserve left
    return engine.stop_message, engine.storage_error


@contextlib.contextmanager
def _stoppable(engine: Engine, watch: SignalWatch | None, run_log: RunLogFile, run_dir: Path) -> Any:
    """While the engine runs: a signal stops it (a second one at once), and so does a line
    that can't be written to run.log."""

    def on_signal(name: str) -> None:
        engine.request_stop(
            StopReason.SIGNAL, f"{name} received: finishing requests in flight (signal again to stop at once)"
        )

    def on_log_fault(exc: OSError) -> None:
        engine.storage_fault(storage.fault("the log", run_dir, exc))

    if watch is not None:
        watch.on_first, watch.on_second = on_signal, engine.abort
    run_log.on_fault = on_log_fault
    try:
        yield
    finally:
        run_log.on_fault = None
        if watch is not None:
            watch.on_first = watch.on_second = None


@contextlib.asynccontextmanager
async def api_target(config: RunConfig) -> AsyncIterator[tuple[str, Credentials]]:
    """The real host and the environment's credentials, or an in-process sandbox with
    one-off credentials of its own."""
    if not config.sandbox:
        assert config.host is not None
        require_credentials(config.credentials)
        yield config.host, config.credentials
        return
    from bulkrevoke.sandbox import Sandbox, SandboxSettings, load_state

    username, password = "sandbox", secrets.token_urlsafe(18)
    state_file = config.sandbox_state or _state_beside(config.source)
    state = load_state(state_file) if state_file is not None else {}
    settings = SandboxSettings(username=username, password=password, unknown_badges="active", state=state)
    async with Sandbox(settings) as sandbox:
        log.info(
            "sandbox listening on %s%s", sandbox.url, f" (state from {state_file})" if state_file else ""
        )
        yield sandbox.url, Credentials(username=username, password=password)


def _state_beside(source: Any) -> Path | None:
    if is_dataframe(source) or str(source) == "-":
        return None
    path = Path(str(source))
    candidate = path.with_name(rundir.input_stem(source) + ".state.csv")
    return candidate if candidate.exists() else None


def _describe(source: Any) -> str:
    if is_dataframe(source):
        return "<DataFrame>"
    return "<stdin>" if str(source) == "-" else str(source)


def _host_label(config: RunConfig) -> str | None:
    if config.sandbox:
        return "sandbox"
    return config.host


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
