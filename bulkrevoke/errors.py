"""The exceptions bulkrevoke raises, all in one tree.

    BulkRevokeError              base of everything the library raises on purpose
    ├── InputError               the input file can't be used (exit 2; nothing was sent)
    ├── ConfigError              flags, environment or config file are wrong (exit 2)
    │   └── RunDirError          the run directory is locked, or does not match --resume
    ├── StorageError             the run directory can't be created or written (disk full,
    │                            quota, read-only, I/O error) before anything was sent (exit 2)
    └── SafetyStop               the run stopped itself (exit 3; resumable)
        └── StorageStop          the same fault once sending began: the report could not be
                                 written; the ledger holds every outcome it could record

A row that fails is never an exception: it is an ``Outcome`` in the ledger.
Messages are one line, meant for an operator, and never hold a secret.
"""

from __future__ import annotations


class BulkRevokeError(Exception):
    """Base class of every error bulkrevoke raises on purpose."""

    exit_code = 2


class InputError(BulkRevokeError):
    """The input file is unreadable, of an unknown kind, or lacks a required column."""

    exit_code = 2


class ConfigError(BulkRevokeError):
    """A setting is missing or invalid (flag, environment variable or config file)."""

    exit_code = 2


class RunDirError(ConfigError):
    """The run directory is in use by another run, or does not belong to this input."""


class StorageError(BulkRevokeError):
    """A file in the run directory can't be written: the disk or a quota is full, the
    filesystem is read-only, or the disk fails. Raised before anything was sent."""

    exit_code = 2


class SafetyStop(BulkRevokeError):
    """The run stopped before finishing: authentication failed or too many rows failed."""

    exit_code = 3


class StorageStop(SafetyStop):
    """A write to the run directory failed once sending had begun, and the report could not
    be written either. The ledger is consistent: ``--resume`` continues the run once the
    cause is fixed."""
