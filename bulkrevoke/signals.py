"""SIGINT and SIGTERM during a run: the first stops taking rows and lets the requests in
flight finish, the second stops at once, and either way the process ends within a bound.

The event loop acts on a signal only when it gets control, and a write to a disk that
stopped answering (or any other stall) can keep it from that for good. So the signals are
received by a thread of their own, through Python's wakeup fd on a socket pair: it hands
each one to the loop, and from the first keeps a deadline (the per-attempt timeout plus
``GRACE``; ``ABORT_GRACE`` after the second) after which it ends the process itself. The
ledger is crash-safe at every instant, so ending there loses nothing a resume can't settle.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import signal
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: After the first signal: the requests in flight end within the per-attempt timeout;
#: this is for the last flush and the report.
GRACE = 3.0
#: After the second signal: enough to cancel what is in flight and close the ledger.
ABORT_GRACE = 1.0
EXIT_INTERRUPTED = 130
SIGNALS = (signal.SIGINT, signal.SIGTERM)


class SignalWatch:
    """Installed for the run's send and report phases (main thread only; elsewhere it does
    nothing and the host's own handling stays). ``on_first(name)`` and ``on_second()`` are
    called in the loop; set them while there is something to stop."""

    def __init__(self, *, timeout: float, run_dir: Path) -> None:
        self.on_first: Callable[[str], None] | None = None
        self.on_second: Callable[[], None] | None = None
        self._timeout = timeout
        self._run_dir = run_dir
        self._hits = 0
        self._closed = threading.Event()
        self._timer: threading.Timer | None = None
        self._restore: list[Callable[[], Any]] = []

    def __enter__(self) -> SignalWatch:
        if threading.current_thread() is not threading.main_thread():
            return self
        self._loop = asyncio.get_running_loop()
        receiver, sender = socket.socketpair()
        sender.setblocking(False)
        try:
            previous_fd = signal.set_wakeup_fd(sender.fileno(), warn_on_full_buffer=False)
        except (ValueError, OSError):
            receiver.close()
            sender.close()
            return self
        self._restore.append(functools.partial(signal.set_wakeup_fd, previous_fd))
        for signum in SIGNALS:
            self._restore.append(functools.partial(signal.signal, signum, signal.signal(signum, _noted)))
        self._restore += [sender.close, receiver.close]
        threading.Thread(
            target=self._receive, args=(receiver,), daemon=True, name="bulkrevoke-signals"
        ).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closed.set()
        if self._timer is not None:
            self._timer.cancel()
        for undo in self._restore:
            undo()
        self._restore.clear()

    def _receive(self, receiver: socket.socket) -> None:
        with contextlib.suppress(OSError):  # closed under us at the end of the run
            while data := receiver.recv(64):
                for signum in data:
                    if signum in SIGNALS:
                        self._on_signal(signal.Signals(signum))

    def _on_signal(self, signum: signal.Signals) -> None:
        self._hits += 1
        if self._hits == 1:
            if self.on_first is not None:
                self._call(self.on_first, signum.name)
            self._arm(
                self._timeout + GRACE,
                f"{signum.name} received and the run did not end within {self._timeout + GRACE:g} s",
            )
        else:
            if self.on_second is not None:
                self._call(self.on_second)
            self._arm(ABORT_GRACE, "interrupted twice")

    def _call(self, callback: Callable[..., None], *args: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed as the run ended
            self._loop.call_soon_threadsafe(callback, *args)

    def _arm(self, seconds: float, why: str) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = threading.Timer(seconds, self._expire, args=(why,))
        self._timer.daemon = True
        self._timer.start()

    def _expire(self, why: str) -> None:
        if self._closed.is_set():
            return
        os.write(
            2,
            (
                f"bulkrevoke: error: {why}: exiting now; the ledger in {self._run_dir} "
                "is consistent and rows in flight stay in doubt — run again with "
                "--resume\n"
            ).encode(),
        )
        os._exit(EXIT_INTERRUPTED)


def _noted(signum: int, frame: Any) -> None:
    """The Python-level handler: nothing to do here; the wakeup fd carries the signal."""
