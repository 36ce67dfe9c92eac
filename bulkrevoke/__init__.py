"""bulkrevoke: revoke earned badges in bulk through Capillary's Badges API."""

from ._version import __version__
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
