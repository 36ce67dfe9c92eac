"""Named points where a run can be made to die on purpose, to prove crash safety.

Setting ``BULKREVOKE_FAILPOINT=<name>`` makes the process kill itself with SIGKILL when
it reaches that point (``after-ingest``, ``before-report-rename``): no cleanup, no flush,
exactly like an OOM kill or a pulled plug.
Unset (always, in real use), a failpoint costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal


def failpoint(name: str) -> None:
    if os.environ.get("BULKREVOKE_FAILPOINT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
