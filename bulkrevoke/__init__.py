"""bulkrevoke: revoke earned badges in bulk through Capillary's Badges API.

The public names are loaded on first use (PEP 562), so ``bulkrevoke --help`` and
other light imports don't pay for asyncio, aiohttp, pandas or pyarrow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bulkrevoke._lazy import lazy_exports
from bulkrevoke._version import __version__

if TYPE_CHECKING:
    from bulkrevoke.api import revoke, revoke_async
    from bulkrevoke.config import RunConfig
    from bulkrevoke.errors import BulkRevokeError, ConfigError, InputError, SafetyStop
    from bulkrevoke.model import Status
    from bulkrevoke.runner import RunResult
    from bulkrevoke.values import RateLimit, RetryPolicy

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
    "revoke": "api",
    "revoke_async": "api",
    "RateLimit": "values",
    "RetryPolicy": "values",
    "RunConfig": "config",
    "BulkRevokeError": "errors",
    "ConfigError": "errors",
    "InputError": "errors",
    "SafetyStop": "errors",
    "Status": "model",
    "RunResult": "runner",
}


__getattr__, __dir__ = lazy_exports(__name__, globals(), _HOMES)
