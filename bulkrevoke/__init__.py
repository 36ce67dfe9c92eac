"""bulkrevoke: revoke earned badges in bulk through Capillary's Badges API.

The public names are loaded on first use (PEP 562), so ``bulkrevoke --help`` and
other light imports don't pay for asyncio, aiohttp, pandas or pyarrow.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    from .api import revoke, revoke_async
    from .config import RateLimit, RetryPolicy, RunConfig
    from .errors import BulkRevokeError, ConfigError, InputError, SafetyStop
    from .outcome import Status
    from .runner import RunResult

__all__ = [
    "BulkRevokeError",
    "ConfigError",
    "InputError",
    "RateLimit",
    "RetryPolicy",
    "RunConfig",
    "RunResult",
    "SafetyStop",
    "Status",
    "__version__",
    "revoke",
    "revoke_async",
]

_HOMES = {
    "revoke": "api", "revoke_async": "api", "RateLimit": "config", "RetryPolicy": "config",
    "RunConfig": "config", "BulkRevokeError": "errors", "ConfigError": "errors",
    "InputError": "errors", "SafetyStop": "errors", "Status": "outcome", "RunResult": "runner",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'bulkrevoke' has no attribute {name!r}")
    value = getattr(import_module(f".{home}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
