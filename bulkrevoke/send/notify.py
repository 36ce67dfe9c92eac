"""A ping when a run ends: one JSON message to a webhook, whatever the exit code.

The message has a one-line ``text`` (what Slack's and Teams' incoming webhooks show) and
the figures a program would want: counts, exit code, stop reason and run directory. It
goes through the same HTTP stack as the run (an aiohttp session with verified TLS, the
``--ca-bundle``, no redirects, the proxy that ``--proxy`` or the environment names for
the webhook's host).

The webhook URL is a secret (whoever holds it can post to the channel): it is never
logged, written or put in a message; a failed notification is logged by its cause alone
and does not change the run's exit code.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bulkrevoke.logs import printable as one_line  # one escaping for logs, the terminal and webhooks
from bulkrevoke.proxies import Proxy
from bulkrevoke.send.reply import reply_for_exception

log = logging.getLogger("bulkrevoke")

#: Seconds a notification may take, all told.
TIMEOUT = 15.0


def message(
    summary: Mapping[str, Any] | None,
    run_dir: Path | None,
    *,
    exit_code: int,
    stop_reason: str | None = None,
    error: str | None = None,
) -> dict[str, Any]:
    """The message for a run that ended with *summary*, or before one (*error*)."""
    counts = {k: v for k, v in ((summary or {}).get("counts") or {}).items() if v}
    run_id = (summary or {}).get("runId") or (run_dir.name if run_dir else "")
    if error is not None:
        outcome = f"ended before sending: {error}"
    elif stop_reason:
        outcome = f"stopped ({stop_reason})"
    else:
        outcome = "finished"
    tally = ", ".join(f"{count:,} {status}" for status, count in counts.items())
    text = f"bulkrevoke run {run_id} {outcome}, exit {exit_code}" + (f": {tally}" if tally else "")
    return {
        "text": one_line(text),
        "runId": run_id,
        "exitCode": exit_code,
        "stopReason": stop_reason,
        "counts": counts,
        "runDir": str(run_dir) if run_dir else None,
    }


async def send(url: str, payload: Mapping[str, Any], *, proxy: Proxy | None, ca_bundle: Path | None) -> bool:
    """POST *payload* to *url*; False (and a log line without the URL) if that failed."""
    from bulkrevoke.send.client import open_session

    body = json.dumps(payload).encode("utf-8")
    try:
        async with (
            open_session(url, timeout=TIMEOUT, connections=1, ca_bundle=ca_bundle) as session,
            session.post(
                url,
                data=body,
                headers={"Content-Type": "application/json"},
                allow_redirects=False,
                proxy=None if proxy is None else proxy.url,
            ) as response,
        ):
            status = response.status
    except Exception as exc:  # mapped to a cause in one place, or re-raised as a bug
        reply = reply_for_exception(exc, TIMEOUT)
        log.warning("notification failed: %s", reply.error_code)
        return False
    if not 200 <= status < 300:
        log.warning("notification failed: the webhook answered HTTP %d", status)
        return False
    log.info("notification sent")
    return True
