"""The end-of-run ping: one JSON message, the URL a secret, a failure only logged."""

from __future__ import annotations

import json
import logging

from aiohttp import web

from bulkrevoke.send.notify import message, one_line, send


async def _webhook(status: int = 200):
    received: list[dict] = []

    async def hook(request: web.Request) -> web.Response:
        received.append(json.loads(await request.read()))
        return web.Response(status=status)

    app = web.Application()
    app.router.add_post("/hooks/T000/B000/s3cr3t-token", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    return runner, f"http://127.0.0.1:{port}/hooks/T000/B000/s3cr3t-token", received


async def test_one_message_with_a_one_line_text(caplog):
    runner, url, received = await _webhook()
    summary = {"runId": "20261201-101500-fraud", "counts": {"revoked": 3, "failed": 1, "invalid": 0}}
    caplog.set_level(logging.INFO, logger="bulkrevoke")
    try:
        assert await send(url, message(summary, None, exit_code=1), proxy=None, ca_bundle=None)
    finally:
        await runner.cleanup()
    assert received == [
        {
            "text": "bulkrevoke run 20261201-101500-fraud finished, exit 1: 3 revoked, 1 failed",
            "runId": "20261201-101500-fraud",
            "exitCode": 1,
            "stopReason": None,
            "counts": {"revoked": 3, "failed": 1},
            "runDir": None,
        }
    ]
    assert "s3cr3t" not in caplog.text


async def test_a_failed_notification_is_logged_without_the_url(caplog):
    runner, url, received = await _webhook(status=500)
    try:
        assert not await send(
            url, message(None, None, exit_code=2, error="bad input"), proxy=None, ca_bundle=None
        )
    finally:
        await runner.cleanup()
    assert len(received) == 1 and received[0]["text"].endswith("ended before sending: bad input, exit 2")
    assert "HTTP 500" in caplog.text and "s3cr3t" not in caplog.text
    dead = url.replace(url.split("/")[2], "127.0.0.1:9")
    assert not await send(dead, {"text": "x"}, proxy=None, ca_bundle=None)
    assert "connect_error" in caplog.text and "s3cr3t" not in caplog.text


def test_text_can_not_add_a_line_or_repaint_a_screen():
    assert one_line("a\nb\x1b[31mc\u202ed") == "a\\nb\\x1b[31mc\\u202ed"
