#!/usr/bin/env python3
"""The floor that bulkrevoke's overhead is measured against.

A minimal aiohttp loop: read the CSV, then N workers (no limiter, no retries, no ledger,
no report) each POST one row's JSON body to revokeEarn with the same headers bulkrevoke
sends, read and parse the JSON answer and keep the X-Cap-Requestid header. It prints one
JSON line: {"rows", "ok", "sendSeconds"}; exit status 1 if any answer was not a success.

    python benchmarks/baseline_client.py INPUT.csv --host http://127.0.0.1:PORT [--concurrency 64]
                                         [--loop auto|asyncio|uvloop]

The event loop follows bulkrevoke's own rule (``--loop auto``): uvloop when it is
importable (bulkrevoke's ``speed`` extra), else asyncio, so both sides of the comparison
run on the same loop.

Credentials come from BULKREVOKE_USERNAME / BULKREVOKE_PASSWORD (any values), sent as
Capillary's Basic header (base64(user + ":" + md5_hex(password))).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import csv
import hashlib
import json
import os
import sys
import time
from typing import Any

import aiohttp

REVOKE_PATH = "/api_gateway/v1/badges/customer/revokeEarn"


def _authorization() -> str:
    user = os.environ.get("BULKREVOKE_USERNAME", "bench")
    password = os.environ.get("BULKREVOKE_PASSWORD", "bench")
    digest = hashlib.md5(password.encode()).hexdigest()
    return "Basic " + base64.b64encode(f"{user}:{digest}".encode()).decode()


async def _main(path: str, host: str, concurrency: int) -> dict[str, object]:
    with open(path, newline="", encoding="utf-8") as stream:
        reader = csv.reader(stream)
        next(reader)
        rows = [(meta, int(customer), earned) for meta, customer, earned in reader]
    url = host.rstrip("/") + REVOKE_PATH
    headers = {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "Authorization": _authorization(),
    }
    todo = iter(rows)
    counts = {"ok": 0, "other": 0}
    request_ids: list[str | None] = []

    async def worker(session: aiohttp.ClientSession) -> None:
        for meta, customer, earned in todo:  # one shared iterator: each row goes once
            body = json.dumps(
                {"badgeMetaId": meta, "customerId": customer, "earnedBadgeId": earned}, separators=(",", ":")
            ).encode()
            async with session.post(url, data=body, headers=headers) as response:
                payload = json.loads(await response.read())
                request_ids.append(response.headers.get("X-Cap-Requestid"))
                data = payload.get("data") if isinstance(payload, dict) else None
                if response.status == 200 and isinstance(data, dict) and data.get("isActive") is False:
                    counts["ok"] += 1
                else:
                    counts["other"] += 1

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        send_seconds = time.perf_counter() - started
    return {
        "rows": len(rows),
        "ok": counts["ok"],
        "sendSeconds": send_seconds,
        "requestIds": sum(1 for r in request_ids if r),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("input")
    parser.add_argument("--host", required=True)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--loop", choices=["auto", "asyncio", "uvloop"], default="auto")
    args = parser.parse_args()
    runner: Any = asyncio.run
    loop_name = "asyncio"
    if args.loop != "asyncio":
        try:
            import uvloop
        except ImportError:
            if args.loop == "uvloop":
                raise
        else:
            runner, loop_name = uvloop.run, "uvloop"
    result = runner(_main(args.input, args.host, args.concurrency))
    result["loop"] = loop_name
    print(json.dumps(result))
    return 0 if result["ok"] == result["rows"] else 1


if __name__ == "__main__":
    sys.exit(main())
