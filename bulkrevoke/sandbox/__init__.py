"""A real HTTP server that behaves like Capillary's Badges ``revokeEarn`` and badge-read endpoints.

It answers as the API does (success, 814, 715/813, Basic or OAuth auth, 429s from a sliding,
per-minute or token-bucket quota, 521 when two requests for one customer overlap), can be told
to misbehave reproducibly (``FaultProfile``), and keeps the ground truth a test needs to
check a client's report: which badges it really revoked and which answers were lost.

    async with Sandbox(SandboxSettings(state=load_state("badges.state.csv"))) as sandbox:
        ...  # send requests to sandbox.url
        assert sandbox.truth().badges[key].applied == 1

``SandboxThread`` runs the same server in a background thread for synchronous code;
``bulkrevoke sandbox`` runs it standalone (``add_sandbox_arguments``, ``serve_forever``).
"""

from __future__ import annotations

from bulkrevoke._lazy import lazy_exports

__all__ = [
    "NO_FAULTS",
    "BadgeKey",
    "BadgeTruth",
    "FaultProfile",
    "GroundTruth",
    "Sandbox",
    "SandboxSettings",
    "SandboxThread",
    "StateFileError",
    "add_sandbox_arguments",
    "load_state",
    "serve_forever",
    "settings_from_args",
]

# Loaded on first use (PEP 562): ``bulkrevoke sandbox --help`` must not import aiohttp.
_HOMES = {
    "add_sandbox_arguments": "args",
    "serve_forever": "args",
    "settings_from_args": "args",
    "NO_FAULTS": "faults",
    "FaultProfile": "faults",
    "Sandbox": "server",
    "SandboxSettings": "settings",
    "BadgeKey": "state",
    "StateFileError": "state",
    "load_state": "state",
    "SandboxThread": "thread",
    "BadgeTruth": "truth",
    "GroundTruth": "truth",
}


__getattr__, __dir__ = lazy_exports(__name__, globals(), _HOMES)
