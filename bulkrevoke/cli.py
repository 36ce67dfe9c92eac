"""The command line: parse flags, build one RunConfig, call the library, map its
errors to exit codes and one-line messages. No network code lives here."""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bulkrevoke._version import __version__
from bulkrevoke.errors import BulkRevokeError

EPILOG_RUN = """\
examples:
  bulkrevoke run sample_inputs/revocations.csv --sandbox
  bulkrevoke run list.csv --dry-run
  BULKREVOKE_USERNAME=till BULKREVOKE_PASSWORD=... bulkrevoke run list.csv --host eu --rate 100/min
  bulkrevoke run list.csv --host eu --out reports/fraud-42 --resume
  bulkrevoke run reports/fraud-42/failed.csv --host eu

exit codes: 0 all rows done; 1 some rows invalid or failed; 2 usage, input or run-directory
error (nothing sent); 3 safety stop, including a full disk while sending (resumable);
130 interrupted (resumable)
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bulkrevoke",
        description="Revoke earned badges in bulk through Capillary's Badges API.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"bulkrevoke {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_run(commands)
    _add_verify(commands)
    sandbox = commands.add_parser(
        "sandbox", help="serve the Badges API emulator on loopback",
        description="Serve the Badges API emulator (state, auth, faults) until interrupted. "
                    "Credentials come from the same environment variables as for run.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        epilog="example: bulkrevoke sandbox --port 8080 --state sample_inputs/revocations.state.csv"
               " --throttle 0.05 --drop 0.01")
    from .sandbox.args import add_sandbox_arguments

    add_sandbox_arguments(sandbox)
    report = commands.add_parser(
        "report", help="rebuild a run's report files from its ledger",
        description="Write report.csv, report.parquet, failed.csv and summary.json again "
                    "from RUN_DIR/ledger.sqlite.",
        epilog="example: bulkrevoke report reports/20261128-101500-revocations")
    report.add_argument("run_dir", metavar="RUN_DIR", help="the run directory")
    history = commands.add_parser(
        "history", help="list the runs in a reports folder, newest first",
        description="List the runs in REPORTS_DIR, newest first: run id, start, operator, "
                    "ticket, input, host, counts, exit code and whether it was verified.",
        epilog="examples:\n  bulkrevoke history\n  bulkrevoke history /data/bulkrevoke --json",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    history.add_argument("reports_dir", metavar="REPORTS_DIR", nargs="?", default="reports",
                         help="the folder holding run directories (default reports)")
    history.add_argument("--json", action="store_true", help="one JSON array, for programs")
    return parser


def _add_connection(parser: argparse.ArgumentParser, *, sandbox: bool) -> None:
    """Where requests go and at what pace: the flags run and verify share."""
    target = parser.add_argument_group("where to send")
    if sandbox:
        target.add_argument("--sandbox", action="store_true", default=None,
                            help="run against the embedded Badges API emulator (no credentials)")
        target.add_argument("--sandbox-state", metavar="FILE",
                            help="the emulator's initial state (default: INPUT_STEM.state.csv "
                                 "beside the input, when present)")
    target.add_argument("--host", metavar="URL_OR_CLUSTER",
                        help="apac, apac2, eu, us or an https base URL (env BULKREVOKE_HOST)")
    target.add_argument("--ca-bundle", metavar="FILE", help="extra trusted CA certificates (PEM)")
    target.add_argument("--proxy", metavar="URL",
                        help="forward proxy, http://[user:password@]host:port (default: "
                             "HTTPS_PROXY / HTTP_PROXY unless NO_PROXY names the host)")
    pace = parser.add_argument_group("pace and retries")
    pace.add_argument("--rate", metavar="RATE",
                      help="N/s, N/min or N per second; 'unlimited' (default 100/min, "
                           "500/s with --sandbox)")
    pace.add_argument("--concurrency", metavar="N|auto",
                      help="requests in flight at most, 1 to 256 (default auto: sized from "
                           "the rate and the observed latency)")
    pace.add_argument("--max-attempts", metavar="N",
                      help="attempts per row, the first included (default 6)")
    pace.add_argument("--timeout", metavar="SECONDS", help="per attempt (default 30)")
    pace.add_argument("--retry-after-cap", metavar="SECONDS",
                      help="longest Retry-After honoured (default 300)")
    pace.add_argument("--row-deadline", metavar="SECONDS",
                      help="give a row up after this long (default 900)")
    pace.add_argument("--backoff", metavar="SECONDS",
                      help="first retry's backoff ceiling, doubled each attempt (default 0.5)")
    pace.add_argument("--backoff-cap", metavar="SECONDS",
                      help="largest backoff ceiling (default 30); waits are full-jitter")
    pace.add_argument("--max-error-rate", metavar="FRACTION",
                      help="stop when more than this share of the last 100 rows failed "
                           "(default 0.5)")
    pace.add_argument("--config", metavar="FILE",
                      help="TOML settings; precedence: flag > environment > file > default")
    out = parser.add_argument_group("output")
    out.add_argument("--no-progress", action="store_true",
                     help="no progress bar (a progress line is logged every 10 s instead)")
    out.add_argument("--log-format", choices=["text", "json"], help="run.log and stderr format")
    out.add_argument("-v", "--verbose", action="count", default=0, help="more detail on stderr")
    out.add_argument("-q", "--quiet", action="store_true", help="only errors on stderr")


def _add_verify(commands: Any) -> None:
    verify = commands.add_parser(
        "verify", help="read a run's rows back from the server",
        description="Read back from the server each failed, revoked_unconfirmed and "
                    "not_attempted row of RUN_DIR and a random sample of its revoked rows "
                    "(every sent row with --all); write the report again with the verified "
                    "and verifiedAt columns. Exit 1 when a revoked row is still active.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example: bulkrevoke verify reports/fraud-42 --host eu --sample 500")
    verify.add_argument("run_dir", metavar="RUN_DIR", help="the run directory")
    verify.add_argument("--all", dest="verify_all", action="store_true", default=None,
                        help="check every sent row")
    verify.add_argument("--sample", metavar="N",
                        help="revoked rows checked at random (default 100)")
    _add_connection(verify, sandbox=False)


def _add_run(commands: Any) -> None:
    run = commands.add_parser(
        "run", help="revoke the earned badges listed in INPUT",
        description="Read INPUT, validate every row, revoke the valid ones and write the "
                    "per-row report into the run directory.",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG_RUN)
    run.add_argument("input", metavar="INPUT",
                     help=".csv, .csv.gz, .tsv, .parquet or .xlsx file; - reads CSV from stdin")
    _add_connection(run, sandbox=True)
    data = run.add_argument_group("input")
    data.add_argument("--identifier", choices=["id", "mobile", "email", "externalId", "cardNumber"],
                      help="identifier type for rows without an identifierType (default id)")
    data.add_argument("--column", action="append", metavar="FIELD=HEADER",
                      help="map a field to the input's header (repeatable), "
                           "e.g. --column badgeMetaId=meta_id")
    data.add_argument("--delimiter", metavar="CHAR",
                      help="force the CSV delimiter (default: detected from the header)")
    mode = run.add_argument_group("run")
    mode.add_argument("--out", metavar="DIR",
                      help="run directory (default reports/YYYYmmdd-HHMMSS-INPUT_STEM)")
    mode.add_argument("--dry-run", action="store_true", default=None,
                      help="validate and report, send nothing")
    mode.add_argument("--resume", action="store_true", default=None,
                      help="continue the run in --out DIR (same input required)")
    mode.add_argument("--verify", action="store_true", default=None,
                      help="when sending ends, read the rows in question and a sample of "
                           "revoked rows back from the server (see bulkrevoke verify)")
    mode.add_argument("--sample", metavar="N",
                      help="with --verify: revoked rows checked at random (default 100)")
    mode.add_argument("--notify", metavar="URL",
                      help="post one JSON message to this webhook when the run ends (env "
                           "BULKREVOKE_NOTIFY_URL); the URL is kept secret")
    mode.add_argument("--ticket", metavar="TEXT",
                      help="the change ticket or approval reference, recorded in the summary")
    mode.add_argument("--mask-pii", action="store_true", default=None,
                      help="reports carry a keyed hash (key: BULKREVOKE_PII_KEY) instead of "
                           "email, mobile and cardNumber identifiers")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "run":
            return _run(args)
        if args.command == "verify":
            return _verify(args)
        if args.command == "sandbox":
            from .sandbox.args import serve_forever, settings_from_args

            return serve_forever(settings_from_args(args, os.environ))
        if args.command == "report":
            return _report(Path(args.run_dir))
        if args.command == "history":
            from bulkrevoke.report.history import print_history

            return print_history(Path(args.reports_dir), as_json=args.json)
    except BulkRevokeError as exc:
        from bulkrevoke.logs import printable

        print(f"bulkrevoke: error: {printable(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("bulkrevoke: interrupted before sending began; nothing was sent", file=sys.stderr)
        return 130
    parser.print_help(sys.stderr)
    return 2


def _run(args: argparse.Namespace) -> int:
    from bulkrevoke.config import resolve_config
    from bulkrevoke.runner import run

    settings = {
        name: getattr(args, name)
        for name in ("out", "sandbox", "sandbox_state", "host", "rate", "concurrency",
                     "max_attempts", "timeout", "identifier", "column", "dry_run", "resume",
                     "max_error_rate", "delimiter", "config", "ca_bundle", "proxy", "mask_pii",
                     "log_format", "retry_after_cap", "row_deadline", "backoff", "backoff_cap",
                     "ticket", "verify", "sample", "notify")
    }
    config = resolve_config(args.input, {**settings, **_output_settings(args)})
    _lean_memory_pool()
    from bulkrevoke import loops

    result = loops.run(run(config, install_signal_handlers=True))
    if not args.quiet:
        from bulkrevoke.report.summary_text import format_summary

        print(format_summary(result.summary, result.run_dir, rerun_args=_target_args(args),
                             input_arg=args.input, stop_message=result.stop_message),
              file=sys.stderr)
    return int(result.exit_code)


def _output_settings(args: argparse.Namespace) -> dict[str, Any]:
    return {"progress": not args.no_progress, "verbosity": -1 if args.quiet else args.verbose}


def _verify(args: argparse.Namespace) -> int:
    from bulkrevoke import loops
    from bulkrevoke.config import resolve_config
    from bulkrevoke.runner import verify_run

    settings = {name: getattr(args, name)
                for name in ("host", "ca_bundle", "proxy", "rate", "concurrency", "max_attempts",
                             "timeout", "retry_after_cap", "row_deadline", "backoff",
                             "backoff_cap", "max_error_rate", "config", "log_format",
                             "verify_all", "sample")}
    run_dir = Path(args.run_dir)
    if not args.host and not os.environ.get("BULKREVOKE_HOST"):
        settings["host"] = _host_of(run_dir)  # the host the run was sent to
    config = resolve_config(None, {**settings, **_output_settings(args), "verify": True})
    result = loops.run(verify_run(config, run_dir))
    if not args.quiet:
        from bulkrevoke.report.summary_text import format_summary

        print(format_summary(result.summary, result.run_dir, rerun_args=[], input_arg=None),
              file=sys.stderr)
    return int(result.exit_code)


def _host_of(run_dir: Path) -> str | None:
    from bulkrevoke import rundir
    from bulkrevoke.errors import RunDirError
    from bulkrevoke.ledger import read_meta

    try:
        host = read_meta(run_dir / rundir.LEDGER).get("host")
    except (OSError, ValueError, sqlite3.Error):
        raise RunDirError(f"{run_dir}: no readable {rundir.LEDGER} here; is this a run "
                          "directory?") from None
    if host == "sandbox":
        raise RunDirError(f"{run_dir} ran against the in-process sandbox, which ended with it: "
                          "verify such a run with run --sandbox --verify")
    return str(host) if host else None


def _target_args(args: argparse.Namespace) -> list[str]:
    """The flags a resume or a re-run needs to reach the same place."""
    extra: list[str] = []
    if args.sandbox:
        extra.append("--sandbox")
    for flag in ("host", "rate", "config", "ticket"):
        value = getattr(args, flag)
        if value:
            extra += [f"--{flag}", str(value)]
    return extra


def _lean_memory_pool() -> None:
    """Arrow's jemalloc pool for this process, set to hand freed memory back at once,
    unless ARROW_DEFAULT_MEMORY_POOL says otherwise: the default (mimalloc) keeps what
    it freed, 50 to 70 MB more at the peak of a large run. (Only the CLI: a library
    does not change its host's allocator.)"""
    if os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        return
    import pyarrow as pa

    try:
        pa.set_memory_pool(pa.jemalloc_memory_pool())
        pa.jemalloc_set_decay_ms(0)
    except NotImplementedError:  # a pyarrow built without jemalloc
        pass


def _report(run_dir: Path) -> int:
    from bulkrevoke import rundir
    from bulkrevoke.ledger import Ledger
    from bulkrevoke.report.reconcile import write_reports

    if not (run_dir / rundir.LEDGER).exists():
        raise BulkRevokeError(f"{run_dir}: no {rundir.LEDGER} here; is this a run directory?")
    _lean_memory_pool()
    with rundir.RunLock(run_dir), Ledger(run_dir / rundir.LEDGER) as ledger:
        pii = os.environ.get("BULKREVOKE_PII_KEY") if ledger.meta().get("mask_pii") else None
        summary = write_reports(ledger, run_dir, pii_key=pii.encode() if pii else None)
    print(f"bulkrevoke: wrote the report files of {run_dir} ({summary['rows']:,} rows)",
          file=sys.stderr)
    return 0
