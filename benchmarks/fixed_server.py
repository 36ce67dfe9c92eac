#!/usr/bin/env python3
"""Fallback fixed-response server for the overhead benchmark (used when nginx is missing).

Answers every request with HTTP 200 and the body of a successful revokeEarn, plus an
X-Cap-Requestid header, exactly like the nginx configuration run.py writes. Prints
"ready" on stdout once it listens.

    python benchmarks/fixed_server.py --port PORT
"""

from __future__ import annotations

import argparse
import itertools

from aiohttp import web

BODY = b'{"data":{"isActive":false},"errors":[],"warnings":[]}'


def make_app() -> web.Application:
    ids = itertools.count(1)

    async def answer(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(
            body=BODY, content_type="application/json", headers={"X-Cap-Requestid": f"{next(ids):032x}"}
        )

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    web.run_app(
        make_app(),
        host=args.host,
        port=args.port,
        access_log=None,
        print=lambda *_: print("ready", flush=True),
    )


if __name__ == "__main__":
    main()
