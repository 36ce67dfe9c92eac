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
from bulkrevoke.settings import BY_NAME, for_command, help_text

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
        "sandbox",
        help="serve the Badges API emulator on loopback",
        description="Serve the Badges API emulator (state, auth, faults) until interrupted. "
        "Credentials come from the same environment variables as for run.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        epilog="example: bulkrevoke sandbox --port 8080 --state sample_inputs/revocations.state.csv"
        " --throttle 0.05 --drop 0.01",
    )
    from .sandbox.args import add_sandbox_arguments

    add_sandbox_arguments(sandbox)
    report = commands.add_parser(
        "report",
        help="rebuild a run's report files from its ledger",
        description="Write report.csv, report.parquet, failed.csv and summary.json again "
        "from RUN_DIR/ledger.sqlite.",
        epilog="example: bulkrevoke report reports/20261128-101500-revocations",
    )
    report.add_argument("run_dir", metavar="RUN_DIR", help="the run directory")
    history = commands.add_parser(
        "history",
        help="list the runs in a reports folder, newest first",
        description="List the runs in REPORTS_DIR, newest first: run id, start, operator, "
        "ticket, input, host, counts, exit code and whether it was verified.",
        epilog="examples:\n  bulkrevoke history\n  bulkrevoke history /data/bulkrevoke --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    history.add_argument(
        "reports_dir",
        metavar="REPORTS_DIR",
        nargs="?",
        default="reports",
        help="the folder holding run directories (default reports)",
    )
    history.add_argument("--json", action="store_true", help="one JSON array, for programs")
    return parser


def _add_verify(commands: Any) -> None:
    verify = commands.add_parser(
        "verify",
        help="read a run's rows back from the server",
        description="Read back from the server each failed, revoked_unconfirmed and "
        "not_attempted row of RUN_DIR and a random sample of its revoked rows "
        "(every sent row with --all); write the report again with the verified "
        "and verifiedAt columns. Exit 1 when a revoked row is still active.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example: bulkrevoke verify reports/fraud-42 --host eu --sample 500",
    )
    verify.add_argument("run_dir", metavar="RUN_DIR", help="the run directory")
    _add_settings(verify, "verify")


def _add_run(commands: Any) -> None:
    run = commands.add_parser(
        "run",
        help="revoke the earned badges listed in INPUT",
        description="Read INPUT, validate every row, revoke the valid ones and write the "
        "per-row report into the run directory.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=EPILOG_RUN,
    )
    run.add_argument(
        "input", metavar="INPUT", help=".csv, .csv.gz, .tsv, .parquet or .xlsx file; - reads CSV from stdin"
    )
    _add_settings(run, "run")


def _add_settings(parser: argparse.ArgumentParser, command: str) -> None:
    """The command's flags, from the settings table. Every default is None, so that a
    flag not given leaves the environment, the config file or the default to speak."""
    groups: dict[str, argparse._ArgumentGroup] = {}
    for setting in for_command(command):
        if setting.group not in groups:
            groups[setting.group] = parser.add_argument_group(setting.group)
        options: dict[str, Any] = {
            "dest": setting.name,
            "action": setting.action,
            "default": None,
            "help": help_text(setting).replace("%", "%%"),
        }
        if setting.action in ("store", "append"):
            options.update(metavar=setting.metavar, choices=setting.choices)
        groups[setting.group].add_argument(*setting.flags, **options)


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

    config = resolve_config(args.input, _settings(args, "run"))
    _lean_memory_pool()
    from bulkrevoke import loops

    result = loops.run(run(config, install_signal_handlers=True))
    if not args.quiet:
        from bulkrevoke.report.summary_text import format_summary

        print(
            format_summary(
                result.summary,
                result.run_dir,
                rerun_args=_target_args(args),
                input_arg=args.input,
                stop_message=result.stop_message,
            ),
            file=sys.stderr,
        )
    return int(result.exit_code)


def _settings(args: argparse.Namespace, command: str) -> dict[str, Any]:
    """The settings *command*'s flags gave (None: not given), for resolve_config."""
    settings = {s.name: getattr(args, s.name) for s in for_command(command) if s.keyword}
    if args.quiet:
        settings["verbosity"] = -1
    return settings


def _verify(args: argparse.Namespace) -> int:
    from bulkrevoke import loops
    from bulkrevoke.config import resolve_config
    from bulkrevoke.readback import verify_run

    settings = _settings(args, "verify")
    run_dir = Path(args.run_dir)
    if not args.host and not os.environ.get(str(BY_NAME["host"].env)):
        settings["host"] = _host_of(run_dir)  # the host the run was sent to
    config = resolve_config(None, {**settings, "verify": True})
    result = loops.run(verify_run(config, run_dir))
    if not args.quiet:
        from bulkrevoke.report.summary_text import format_summary

        print(format_summary(result.summary, result.run_dir, rerun_args=[], input_arg=None), file=sys.stderr)
    return int(result.exit_code)


def _host_of(run_dir: Path) -> str | None:
    from bulkrevoke import rundir
    from bulkrevoke.errors import RunDirError
    from bulkrevoke.ledger import read_meta

    try:
        host = read_meta(run_dir / rundir.LEDGER).get("host")
    except (OSError, ValueError, sqlite3.Error):
        raise RunDirError(f"{run_dir}: no readable {rundir.LEDGER} here; is this a run directory?") from None
    if host == "sandbox":
        raise RunDirError(
            f"{run_dir} ran against the in-process sandbox, which ended with it: "
            "verify such a run with run --sandbox --verify"
        )
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
    print(f"bulkrevoke: wrote the report files of {run_dir} ({summary['rows']:,} rows)", file=sys.stderr)
    return 0
