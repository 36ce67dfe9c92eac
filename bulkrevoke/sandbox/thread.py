"""``SandboxThread``: the same server on its own event loop in a daemon thread.

For synchronous tests and benchmarks, whose client code owns (or is) the main thread's
loop. The server's state is only ever touched by its own loop; ``truth()`` hops onto
that loop to take its snapshot.
"""

from __future__ import annotations

import asyncio
import threading
from types import TracebackType

from bulkrevoke import loops
from bulkrevoke.sandbox.server import Sandbox
from bulkrevoke.sandbox.settings import SandboxSettings
from bulkrevoke.sandbox.state import BadgeKey
from bulkrevoke.sandbox.truth import GroundTruth

_START_TIMEOUT = 10.0
_CALL_TIMEOUT = 10.0


class SandboxThread:
    """``with SandboxThread(settings) as sandbox:`` — a running sandbox at ``sandbox.url``."""

    def __init__(self, settings: SandboxSettings) -> None:
        self.settings = settings
        self.url = ""
        self._sandbox = Sandbox(settings)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None

    def start(self) -> str:
        """Start the thread and wait until the server listens; return its URL."""
        if self._thread is not None:
            raise RuntimeError("a SandboxThread can be started only once")
        self._thread = threading.Thread(target=self._run, name="bulkrevoke-sandbox", daemon=True)
        self._thread.start()
        if not self._started.wait(_START_TIMEOUT):
            raise RuntimeError("the sandbox thread did not start in time")
        if self._error is not None:
            self._thread.join()
            raise self._error
        return self.url

    def stop(self) -> None:
        """Stop the server and its loop, and wait for the thread to end."""
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None and thread.is_alive():
            loop.call_soon_threadsafe(loop.stop)
            thread.join(_CALL_TIMEOUT)

    def truth(self) -> GroundTruth:
        """A snapshot of the ground truth; safe from any thread, also after stop()."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None or not thread.is_alive():
            return self._sandbox.truth()
        future = asyncio.run_coroutine_threadsafe(self._snapshot(), loop)
        return future.result(_CALL_TIMEOUT)

    def reactivate(self, key: BadgeKey) -> None:
        """Make an earned badge active again, as a re-issue behind a run's back would (for
        tests of verification)."""
        loop = self._loop
        assert loop is not None, "the sandbox is not running"
        asyncio.run_coroutine_threadsafe(self._reactivate(key), loop).result(_CALL_TIMEOUT)

    async def _reactivate(self, key: BadgeKey) -> None:
        self._sandbox.reactivate(key)

    async def _snapshot(self) -> GroundTruth:
        return self._sandbox.truth()

    def _run(self) -> None:
        loop = loops.new_event_loop()
        try:
            try:
                self.url = loop.run_until_complete(self._sandbox.start())
            except BaseException as exc:  # handed to start() in the caller's thread
                self._error = exc
                return
            self._loop = loop
            self._started.set()
            loop.run_forever()
            loop.run_until_complete(self._sandbox.stop())
            _cancel_leftovers(loop)
        finally:
            self._started.set()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def __enter__(self) -> SandboxThread:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _cancel_leftovers(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel tasks still pending so closing the loop doesn't warn about them."""
    pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
