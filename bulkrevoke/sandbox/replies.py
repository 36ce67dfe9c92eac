"""The bodies the sandbox answers with, shaped like Capillary's.

Error bodies are ``{"data": null, "errors": [{code, message, reference}], "warnings": null}``.
Their bytes are built once per (code, message), because the benchmark path answers
thousands of identical 814s a second.
"""

from __future__ import annotations

import email.utils
import functools
import json
import time
from typing import Any

from aiohttp import web

JSON = "application/json"

# Codes and messages of the Badges API (README.md, *The sandbox*).
NOT_ACTIVE = (814, "Active earn instance is not present")
EARN_ID_MANDATORY = (813, "EarnId is mandatory")
META_ID_MANDATORY = (715, "Badge meta id is mandatory")
BUSY = (521, "Multiple actions are running for the same customer. Please try after some time")
THROTTLED = (429, "Too many requests")
SERVER_ERRORS = {
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}

# What the malformed fault sends: a success body cut short.
MALFORMED_BODY = b'{"data": {"isAct'
GATEWAY_408 = b"<html><body><h1>408 Request Time-out</h1></body></html>"
GATEWAY_404 = b"<html><head><title>404 Not Found</title></head><body>Not Found</body></html>"


class ApiError(Exception):
    """A request the API refuses with an error body; raised while parsing it."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def response(self) -> web.Response:
        return error(self.status, self.code, self.message)


@functools.lru_cache(maxsize=256)
def error_body(code: int, message: str) -> bytes:
    item = {"code": code, "message": message, "reference": None}
    return json.dumps({"data": None, "errors": [item], "warnings": None}).encode()


def error(status: int, code: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, body=error_body(code, message), content_type=JSON, headers=headers)


def revoked(badge_meta_id: str, customer_id: Any, earned_badge_id: str) -> web.Response:
    data = {
        "badgeMetaId": badge_meta_id,
        "customerId": customer_id,
        "earnedBadgeId": earned_badge_id,
        "isActive": False,
    }
    body = json.dumps({"data": data, "errors": [], "warnings": []}).encode()
    return web.Response(body=body, content_type=JSON)


def throttled(retry_after: int | None, *, as_date: bool = False) -> web.Response:
    if retry_after is None:
        headers = None
    elif as_date:
        headers = {"Retry-After": email.utils.formatdate(time.time() + retry_after, usegmt=True)}
    else:
        headers = {"Retry-After": str(retry_after)}
    return error(429, *THROTTLED, headers=headers)


def not_read() -> web.Response:
    """What a load balancer sends for a request it stopped waiting for."""
    return web.Response(
        status=408, body=GATEWAY_408, content_type="text/html", headers={"Connection": "close"}
    )


def gateway_page() -> web.Response:
    """A gateway's own 404, as a wrong path prefix in --host gets."""
    return web.Response(status=404, body=GATEWAY_404, content_type="text/html")


def malformed() -> web.Response:
    return web.Response(body=MALFORMED_BODY, content_type=JSON)


def json_body(data: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=json.dumps(data).encode(), content_type=JSON)
