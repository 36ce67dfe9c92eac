"""The HTTP client against a raw asyncio server that answers scripted bytes: what each
answer a server, gateway or middlebox can give becomes (a Reply kind), framing that must
be refused, keep-alive reuse and idle expiry, and what each failure means for the request
(not sent, or sent with the answer lost)."""

from __future__ import annotations

import asyncio
import gzip
import socket
from collections.abc import AsyncIterator, Callable
from email.utils import formatdate
from typing import Any

import aiohttp
import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from bulkrevoke.model import PendingRow
from bulkrevoke.send import client as client_module
from bulkrevoke.send.client import CapillaryClient
from bulkrevoke.send.reply import ReplyKind
from bulkrevoke.values import Credentials

SUCCESS = b'{"data":{"isActive":false},"errors":[],"warnings":[]}'
OK = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Cap-Requestid: r1\r\n"
    b"Content-Length: %d\r\n\r\n%s" % (len(SUCCESS), SUCCESS)
)
ROW = PendingRow(7, "a" * 24, "566135941", "id", "b" * 24, False)
CREDENTIALS = Credentials(username="u", password="p")


class ScriptedServer:
    """Reads each request whole, then answers with the next script entry: bytes (or a
    list of parts) to write, a 1-tuple of bytes to write and then close, None to close
    without answering, or "hang" to never answer."""

    def __init__(self, script: list[Any]) -> None:
        self.script = list(script)
        self.requests: list[bytes] = []
        self.connections = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while self.script:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                self.requests.append(head + await reader.readexactly(length))
                answer = self.script.pop(0)
                if answer is None:
                    break
                if answer == "hang":
                    await asyncio.sleep(30)
                    break
                if isinstance(answer, tuple):
                    writer.write(answer[0])
                    await writer.drain()
                    break
                for part in answer if isinstance(answer, list) else [answer]:
                    writer.write(part)
                    await writer.drain()
                    await asyncio.sleep(0)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., Any]]:
    servers: list[asyncio.AbstractServer] = []
    clients: list[CapillaryClient] = []

    async def start(script: list[Any], timeout: float = 2.0) -> tuple[ScriptedServer, Any]:
        scripted = ScriptedServer(script)
        server = await asyncio.start_server(scripted.handle, "127.0.0.1", 0)
        servers.append(server)
        port = server.sockets[0].getsockname()[1]
        client = CapillaryClient(f"http://127.0.0.1:{port}/base", CREDENTIALS, timeout=timeout, concurrency=2)
        await client.__aenter__()
        clients.append(client)
        return scripted, client

    yield start
    for client in clients:
        await client.__aexit__(None, None, None)
    for server in servers:
        server.close()


def _answer(status: str, body: bytes, *headers: str) -> bytes:
    head = "".join(f"{h}\r\n" for h in headers)
    return (f"HTTP/1.1 {status}\r\n{head}Content-Length: {len(body)}\r\n\r\n").encode() + body


async def test_the_request_is_exact_and_the_connection_is_kept(serve: Any) -> None:
    server, client = await serve([OK, OK])
    first = await client.revoke_earned_badge(ROW)
    second = await client.revoke_earned_badge(PendingRow(8, "a" * 24, "a@b.c", "email", "b" * 24, False))
    assert (first.kind, first.http_status, first.request_id) == (ReplyKind.SUCCESS, 200, "r1")
    assert second.kind is ReplyKind.SUCCESS and server.connections == 1
    head, body = server.requests[0].split(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /base/api_gateway/v1/badges/customer/revokeEarn HTTP/1.1"
    headers = {k.lower(): v for k, v in (line.split(": ", 1) for line in lines[1:])}
    assert headers["content-type"] == "application/json"
    assert headers["authorization"].startswith("Basic ")
    assert "gzip" in headers["accept-encoding"]
    assert "x-cap-customer-identifier" not in headers and "cookie" not in headers
    assert body == (
        b'{"badgeMetaId":"aaaaaaaaaaaaaaaaaaaaaaaa","customerId":566135941,'
        b'"earnedBadgeId":"bbbbbbbbbbbbbbbbbbbbbbbb"}'
    )
    assert b"X-CAP-CUSTOMER-IDENTIFIER: email" in server.requests[1]
    assert b'"customerId":"a@b.c"' in server.requests[1]


async def test_chunked_interim_close_delimited_and_gzipped_answers(serve: Any) -> None:
    chunked = [
        b"HTTP/1.1 100 Continue\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked",
        b"\r\n\r\n" + b"%x;ext=1\r\n%s\r\n" % (len(SUCCESS), SUCCESS),
        b"0\r\nX-Trailer: t\r\n\r\n",
    ]
    closing = b"HTTP/1.0 500 Oops\r\nContent-Type: text/plain\r\n\r\nbroken"
    zipped = _answer(
        "200 OK", gzip.compress(SUCCESS), "Content-Encoding: gzip", "Content-Type: application/json"
    )
    server, client = await serve([chunked, (closing,), zipped])
    assert (await client.revoke_earned_badge(ROW)).kind is ReplyKind.SUCCESS
    reply = await client.revoke_earned_badge(ROW)
    assert (reply.kind, reply.http_status) == (ReplyKind.SERVER_ERROR, 500)
    assert (await client.revoke_earned_badge(ROW)).kind is ReplyKind.SUCCESS  # gzip decoded
    assert server.connections == 2  # the close-delimited answer ended its connection


@pytest.mark.parametrize(
    "answer",
    [
        None,  # closed, no answer
        "hang",  # never answers
        b"SMTP ready\r\n\r\n",  # not HTTP
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",  # cut short
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",),  # cut short, closed
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-2\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0x2\r\nab\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: \xb2\r\n\r\n",  # a superscript 2
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 5\r\n\r\n{}",  # conflicting
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"
        b"2\r\n{}\r\n0\r\n\r\n",  # TE and CL
        b"HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\n{}",  # a 4-digit status
        b"HTTP/1.1 200 OK\r\nX-Huge: " + b"h" * 70_000 + b"\r\nContent-Length: 2\r\n\r\n{}",
        _answer("200 OK", b"\x1f\x8b not gzip", "Content-Encoding: gzip"),  # undecodable body
    ],
    ids=[
        "closed",
        "hang",
        "not-http",
        "short",
        "short-closed",
        "negative-chunk",
        "hex-prefix",
        "unicode-digit",
        "conflicting-length",
        "te-and-cl",
        "status-2000",
        "70k-header-line",
        "bad-gzip",
    ],
)
async def test_a_lost_answer_says_the_request_may_have_landed(serve: Any, answer: Any) -> None:
    server, client = await serve([answer], timeout=0.5)
    reply = await client.revoke_earned_badge(ROW)
    assert reply.kind is ReplyKind.LOST, reply
    assert reply.http_status is None  # a parser's 400 is not the server's
    assert len(server.requests) == 1  # it was sent
    assert reply.error_message and "\n" not in reply.error_message


async def test_legal_but_unusual_framing_is_read_as_http_says(serve: Any) -> None:
    # An obs-fold continues the header before it.
    folded = _answer("200 OK", SUCCESS, "X-Cap-Requestid: r", " folded")
    # A 70 KiB head of ordinary header lines.
    padded = _answer("200 OK", SUCCESS, *(f"X-Pad-{i}: {'p' * 1000}" for i in range(70)))
    server, client = await serve([folded, padded])
    first = await client.revoke_earned_badge(ROW)
    assert (first.kind, first.request_id) == (ReplyKind.SUCCESS, "r folded")
    assert (await client.revoke_earned_badge(ROW)).kind is ReplyKind.SUCCESS
    assert server.connections == 1


async def test_a_connection_is_not_used_again_after_a_refused_answer(serve: Any) -> None:
    te_and_cl = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n2\r\n{}\r\n0\r\n\r\n"
    )
    server, client = await serve([te_and_cl, OK])
    assert (await client.revoke_earned_badge(ROW)).kind is ReplyKind.LOST
    assert (await client.revoke_earned_badge(ROW)).kind is ReplyKind.SUCCESS
    assert server.connections == 2


async def test_a_connection_the_server_closed_while_idle_is_replaced(serve: Any) -> None:
    server, client = await serve([(OK,), OK])
    assert (await client.revoke_earned_badge(ROW)).kind is ReplyKind.SUCCESS
    await asyncio.sleep(0.05)  # the server closed the connection, without saying so
    assert (await client.revoke_earned_badge(ROW)).kind is ReplyKind.SUCCESS
    assert server.connections == 2


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_idle_connections_expire_before_the_server_drops_them(
    serve: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = _Clock()
    monkeypatch.setattr(aiohttp.connector, "monotonic", clock)
    server, client = await serve([OK, OK, OK])
    await client.revoke_earned_badge(ROW)
    clock.now += client_module.IDLE_SECONDS - 0.5
    await client.revoke_earned_badge(ROW)
    assert server.connections == 1  # still fresh: reused
    clock.now += client_module.IDLE_SECONDS + 0.5
    assert (await client.revoke_earned_badge(ROW)).kind is ReplyKind.SUCCESS
    assert server.connections == 2  # idle too long: a new connection


async def test_a_keep_alive_timeout_the_server_announces_is_honoured(
    serve: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = _Clock()
    monkeypatch.setattr(aiohttp.connector, "monotonic", clock)
    short = _answer("200 OK", SUCCESS, "Keep-Alive: timeout=2, max=100")
    server, client = await serve([short, OK, OK])
    await client.revoke_earned_badge(ROW)
    clock.now += 1.5  # within our 4 s, past the server's 2 s less a second's margin
    await client.revoke_earned_badge(ROW)
    assert server.connections == 2


async def test_answers_that_are_not_the_apis(serve: Any) -> None:
    html = _answer("404 Not Found", b"<html><body>Not Found</body></html>", "Content-Type: text/html")
    envelope = _answer(
        "400 Bad Request",
        b'{"data":null,"errors":[{"code":813,"message":"EarnId is mandatory"}]}',
        "Content-Type: application/json",
    )
    timeout = _answer("408 Request Timeout", b"", "Connection: close")
    when = formatdate(usegmt=True)
    throttled = _answer("429 Too Many Requests", b"", f"Retry-After: {when}")
    _server, client = await serve([html, envelope, (timeout,), throttled])
    gateway = await client.revoke_earned_badge(ROW)
    assert (gateway.kind, gateway.http_status, gateway.foreign) == (ReplyKind.HTTP_ERROR, 404, True)
    assert "HTML" in (gateway.error_message or "")
    api = await client.revoke_earned_badge(ROW)
    assert (api.kind, api.error_code, api.foreign) == (ReplyKind.REJECTED, "813", False)
    not_read = await client.revoke_earned_badge(ROW)
    assert (not_read.kind, not_read.http_status) == (ReplyKind.NOT_SENT, 408)
    slow_down = await client.revoke_earned_badge(ROW)
    assert slow_down.kind is ReplyKind.THROTTLED
    assert slow_down.retry_after is not None and 0 <= slow_down.retry_after <= 1


async def test_no_connection_means_nothing_was_sent() -> None:
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()
    async with CapillaryClient(f"http://127.0.0.1:{port}", CREDENTIALS, timeout=2, concurrency=1) as client:
        reply = await client.revoke_earned_badge(ROW)
    assert (reply.kind, reply.error_code) == (ReplyKind.NOT_SENT, "connect_error")


class _FirstAddressDrops(AbstractResolver):
    """Resolves every name to two addresses: one that never answers, then one that does."""

    def __init__(self, dead: str, live: str) -> None:
        self._addresses = (dead, live)

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for address in self._addresses
        ]

    async def close(self) -> None:
        return None


async def test_a_first_address_that_drops_packets_does_not_stop_the_run() -> None:
    scripted = ScriptedServer([OK])
    server = await asyncio.start_server(scripted.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    # A listener whose accept queue is full: the kernel drops further SYNs in silence.
    dead = socket.socket()
    dead.bind(("127.0.0.2", port))
    dead.listen(0)
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.2", port))
        fillers.append(filler)
    try:
        async with CapillaryClient(
            f"http://api.test:{port}",
            CREDENTIALS,
            timeout=4,
            concurrency=1,
            resolver=_FirstAddressDrops("127.0.0.2", "127.0.0.1"),
        ) as c:
            reply = await c.revoke_earned_badge(ROW)
    finally:
        for sock in (*fillers, dead):
            sock.close()
        server.close()
    assert reply.kind is ReplyKind.SUCCESS, reply
    assert scripted.connections == 1


async def test_the_environment_is_read_once_by_the_settings_never_by_the_session(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Proxies come from config.resolve_config, not from aiohttp; ~/.netrc is never read.
    netrc = tmp_path / "netrc"
    netrc.write_text("default login someone password leaked\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    scripted = ScriptedServer([OK])
    server = await asyncio.start_server(scripted.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with CapillaryClient(
        f"http://127.0.0.1:{port}", Credentials(), timeout=2, concurrency=1
    ) as client:  # no credentials: netrc would add some
        assert (await client.revoke_earned_badge(ROW)).kind is ReplyKind.SUCCESS
    server.close()
    assert len(scripted.requests) == 1  # straight to the server, not to the proxy
    assert b"authorization" not in scripted.requests[0].lower()


async def test_a_token_that_cannot_go_into_a_header_stops_the_run() -> None:
    from bulkrevoke.errors import SafetyStop
    from bulkrevoke.send.auth import OAuthTokens

    async def post(url: str, payload: dict[str, str]) -> tuple[int, Any]:
        return 200, {"data": {"accessToken": "abc\r\nX-Injected: 1", "ttlSeconds": 60}}

    with pytest.raises(SafetyStop, match="can't be sent in a header"):
        await OAuthTokens("https://eu.example.com", "k", "s").header(post)
