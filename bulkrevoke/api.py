"""The library's entry points: what an Airflow task or a notebook calls."""

from __future__ import annotations

import asyncio
from typing import Any

from bulkrevoke.config import resolve_config
from bulkrevoke.errors import BulkRevokeError
from bulkrevoke.runner import RunResult
from bulkrevoke.settings import ALIASES


def revoke(source: Any, **settings: Any) -> RunResult:
    """Run a revocation of *source* (a path, ``"-"``, or a pandas DataFrame) and wait.

    Keywords are the ``run`` flags with ``-`` turned into ``_`` (``dry_run=True``,
    ``max_attempts=3``, ``column={"customerId": "cust"}``); credentials come from the
    environment. Raises ``BulkRevokeError`` if called inside a running event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(revoke_async(source, **settings))
    raise BulkRevokeError(
        "bulkrevoke.revoke() can't run inside a running event loop (Jupyter, async code); "
        "use: result = await bulkrevoke.revoke_async(...)"
    )


async def revoke_async(source: Any, *, install_signal_handlers: bool = False, **settings: Any) -> RunResult:
    """``revoke`` for code already inside an event loop."""
    from bulkrevoke import runner

    config = resolve_config(source, _normalise(settings))
    return await runner.run(config, install_signal_handlers=install_signal_handlers)


def _normalise(settings: dict[str, Any]) -> dict[str, Any]:
    """Flag spellings (``no_progress=True``, ``verbose=2``) → the settings they set."""
    result = {}
    for name, value in settings.items():
        if name in ALIASES and value is not None:
            target, convert = ALIASES[name]
            result[target] = convert(value)
        else:
            result[name] = value
    return result
