"""``Sandbox``: the emulator as a real aiohttp server inside the caller's event loop."""

from __future__ import annotations

import ipaddress
import ssl
from types import TracebackType

from aiohttp import web

from bulkrevoke.sandbox.endpoints import SandboxEndpoints
from bulkrevoke.sandbox.settings import SandboxSettings
from bulkrevoke.sandbox.state import BadgeKey
from bulkrevoke.sandbox.truth import GroundTruth

# How long stop() lets in-flight answers finish before cancelling them. Short, because
# the sandbox's callers are tests and a benchmark that is already done.
_SHUTDOWN_GRACE = 0.2


class Sandbox:
    """A revokeEarn emulator listening on ``settings.host``/``settings.port``.

    Use ``async with Sandbox(settings) as sandbox:`` and talk to ``sandbox.url``;
    ``sandbox.truth()`` says what really happened. One start per instance.
    """

    def __init__(self, settings: SandboxSettings) -> None:
        self.settings = settings
        self.url = ""
        self._endpoints = SandboxEndpoints(settings)
        self._runner: web.AppRunner | None = None
        self._started = False

    async def start(self) -> str:
        """Start listening; return the base URL, e.g. ``http://127.0.0.1:54321``."""
        if self._started:
            raise RuntimeError("a Sandbox can be started only once")
        self._started = True
        runner = web.AppRunner(
            self._endpoints.application(),
            access_log=None,  # per-request logging would dominate a benchmark
            handle_signals=False,
            shutdown_timeout=_SHUTDOWN_GRACE,
        )
        await runner.setup()
        self._runner = runner
        try:
            site = web.TCPSite(
                runner, self.settings.host, self.settings.port, ssl_context=self._ssl_context()
            )
            await site.start()
        except BaseException:
            await self.stop()
            raise
        # The bound address, not the requested one: port 0 means "any free port".
        host, port = runner.addresses[0][:2]
        scheme = "https" if self.settings.tls_cert else "http"
        self.url = f"{scheme}://{_url_host(host)}:{port}"
        return self.url

    def _ssl_context(self) -> ssl.SSLContext | None:
        if self.settings.tls_cert is None:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.settings.tls_cert, self.settings.tls_key)
        return context

    async def stop(self) -> None:
        """Stop listening and close every connection; hung requests are woken, not awaited."""
        self._endpoints.closing.set()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    def reactivate(self, key: BadgeKey) -> None:
        """Make an earned badge active again (a re-issue, for tests of verification)."""
        self._endpoints.truth.record_for(key).active = True

    def truth(self) -> GroundTruth:
        """A snapshot of the ground truth (call from the sandbox's own event loop)."""
        return self._endpoints.truth.snapshot()

    async def __aenter__(self) -> Sandbox:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()


def _url_host(host: str) -> str:
    try:
        if ipaddress.ip_address(host).version == 6:
            return f"[{host}]"
    except ValueError:
        pass
    return host
