"""Logging for one run: ``run.log`` always, stderr by verbosity, text or JSON lines.

Every record carries the run id; nothing logged ever holds a secret (the client never
logs headers, and messages come from our own code). Values from the input or the API do
reach messages (a file name, an error message): in text, every control character, line
separator and bidi control is written as an escape (``printable``), and JSON escapes them
itself, so a value can neither end a log line and forge the next one nor recolour the
operator's terminal. A line that can't be written to run.log (a full disk) is dropped,
never printed as a traceback, and the failure is told to whoever is listening (the send
phase stops on it).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bulkrevoke.rundir import LOG
from bulkrevoke.storage import writing

LOGGER = "bulkrevoke"
#: ``extra=FILE_ONLY``: the record goes to run.log, not stderr (where the command line
#: says the same thing once, in its own words).
FILE_ONLY = {"file_only": True}
_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "file_only"}


def printable(text: str) -> str:
    """*text* with every character that is not printable (control characters, line and
    paragraph separators, bidi controls, invisible spaces) written as its escape (``\\n``,
    ``\\x1b``, ``\\u202e``), as ``repr`` does."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


class SafeTextFormatter(logging.Formatter):
    """A text formatter whose record is one line, whatever the message holds; a traceback's
    lines are indented and escaped alike."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        message = record.message
        record.message = printable(message)
        try:
            return super().formatMessage(record)
        finally:
            record.message = message

    def formatException(self, ei: Any) -> str:
        return "\n".join("    " + printable(line) for line in super().formatException(ei).splitlines())


class JsonFormatter(logging.Formatter):
    """One JSON object per line: timestamp, level, event, run id, and any extra fields."""

    def __init__(self, run_id: str) -> None:
        super().__init__()
        self._run_id = run_id

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "timestamp": datetime.fromtimestamp(record.created, timezone.utc)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "event": record.getMessage(),
            "run_id": self._run_id,
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _RESERVED})
        if record.exc_info and record.exc_info[0] is not None:
            entry["error"] = record.exc_info[0].__name__
        return json.dumps(entry, default=str)


class TextFormatter(SafeTextFormatter):
    def __init__(self, run_id: str) -> None:
        # The run id is the run directory's name: escaped like a message, and its "%"
        # doubled, as it becomes part of the format.
        safe_id = printable(run_id).replace("%", "%%")
        super().__init__("%(asctime)s %(levelname)s " + safe_id + " %(message)s")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return (
            datetime.fromtimestamp(record.created, timezone.utc)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z")
        )


class RunLogFile(logging.FileHandler):
    """run.log. The first write that fails is kept in ``fault`` and passed to ``on_fault``;
    the lines that could not be written stay buffered and go out when room is made."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, encoding="utf-8")
        self.fault: OSError | None = None
        self.on_fault: Callable[[OSError], None] | None = None
        self._telling = False

    def close(self) -> None:
        try:
            super().close()
        except OSError as exc:  # the last lines, at the end of a run on a full disk
            self.fault = self.fault or exc

    def handleError(self, record: logging.LogRecord) -> None:
        error = sys.exc_info()[1]
        if not isinstance(error, OSError):
            super().handleError(record)  # a bug in a log call: say so as logging does
            return
        self.fault = self.fault or error
        if self.on_fault is not None and not self._telling:
            self._telling = True  # on_fault may log, and that line may fail too
            try:
                self.on_fault(error)
            finally:
                self._telling = False


@contextmanager
def run_logging(
    run_dir: Path, run_id: str, *, log_format: str, verbosity: int, stderr: bool = True
) -> Iterator[RunLogFile]:
    """Attach run.log (always INFO and up) and a stderr handler for the run's duration."""
    logger = logging.getLogger(LOGGER)
    formatter: logging.Formatter = JsonFormatter(run_id) if log_format == "json" else TextFormatter(run_id)
    path = run_dir / LOG
    with writing("the log", run_dir):
        if not path.exists():
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        file_handler = RunLogFile(path)
    file_handler.setLevel(logging.DEBUG if verbosity > 1 else logging.INFO)
    file_handler.setFormatter(formatter)
    handlers: list[logging.Handler] = [file_handler]
    if stderr:
        console = logging.StreamHandler(sys.stderr)
        console.setLevel(
            {-1: logging.ERROR, 0: logging.WARNING, 1: logging.INFO}.get(
                max(-1, min(verbosity, 2)), logging.DEBUG
            )
        )
        console.setFormatter(
            formatter if log_format == "json" else SafeTextFormatter("bulkrevoke: %(message)s")
        )
        console.addFilter(lambda record: not getattr(record, "file_only", False))
        handlers.append(console)
    previous_level = logger.level
    logger.setLevel(logging.DEBUG)
    for handler in handlers:
        logger.addHandler(handler)
    try:
        yield file_handler
    finally:
        for handler in handlers:
            logger.removeHandler(handler)
            handler.close()
        logger.setLevel(previous_level)
