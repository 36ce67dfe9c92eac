"""Named points where a run can be made to die or hang on purpose, to prove crash safety
and that a stop always ends.

Setting ``BULKREVOKE_FAILPOINT=<name>`` makes the process kill itself with SIGKILL when
it reaches that point (``after-ingest``, ``before-report-rename``, ``ledger-record``): no
cleanup, no flush, exactly like an OOM kill or a pulled plug. ``<name>:stall`` makes the
thread that reaches it block for good instead, like a write to a disk that stopped
answering.
Unset (always, in real use), a failpoint costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal
import time


def failpoint(name: str) -> None:
    chosen = os.environ.get("BULKREVOKE_FAILPOINT")
    if chosen is None:
        return
    if chosen == name:
        os.kill(os.getpid(), signal.SIGKILL)
    elif chosen == f"{name}:stall":
        while True:  # sleep wakes for a signal and sleeps on: the loop stays blocked
            time.sleep(3600)
