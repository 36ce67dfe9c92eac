"""The lean HTTP/1.1 client against a raw asyncio server that answers scripted bytes:
framing (length, chunked, close-delimited, 1xx, 204), keep-alive reuse, and what each
failure means for the request (not sent, or sent with the answer lost)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from bulkrevoke.http1 import (
    AnswerLost,
    AnswerTimeout,
    ConnectError,
    ConnectionPool,
    _Malformed,
    _ResponseParser,
)

OK = b'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Cap-Requestid: r1\r\n\r\n{}'


class ScriptedServer:
    """Reads each request whole, then answers with the next script entry: bytes (or a
    list of parts) to write, a 1-tuple of bytes to write and then close, None to close
    without answering, or "hang" to never answer."""

    def __init__(self, script: list[Any]) -> None:
        self.script = list(script)
        self.requests: list[bytes] = []
        self.connections = 0
        self.url = ""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while self.script:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
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
                if b"Connection: close" in (b"".join(answer) if isinstance(answer, list)
                                            else answer):
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[list[Any]], Any]]:
    servers: list[asyncio.AbstractServer] = []

    async def start(script: list[Any]) -> tuple[ScriptedServer, ConnectionPool]:
        scripted = ScriptedServer(script)
        server = await asyncio.start_server(scripted.handle, "127.0.0.1", 0)
        servers.append(server)
        port = server.sockets[0].getsockname()[1]
        scripted.url = f"http://127.0.0.1:{port}/base"
        return scripted, ConnectionPool(scripted.url, ssl_context=None, connect_timeout=2)

    yield start
    for server in servers:
        server.close()


async def _post(pool: ConnectionPool, body: bytes = b'{"a":1}', timeout: float = 2.0) -> Any:
    return await pool.post(pool.prepare("/revoke", {"Accept": "application/json"}), body, timeout)


async def test_the_request_is_exact_and_the_connection_is_kept(serve: Any) -> None:
    server, pool = await serve([OK, OK])
    first, second = await _post(pool), await _post(pool, b"[]")
    assert (first.status, first.headers["x-cap-requestid"], first.body) == (200, "r1", b"{}")
    assert second.body == b"{}" and server.connections == 1
    port = server.url.split(":")[2].split("/")[0]
    assert server.requests[0] == (f"POST /base/revoke HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                                  "Accept: application/json\r\nContent-Length: 7\r\n\r\n"
                                  '{"a":1}').encode()
    pool.close()


async def test_chunked_interim_and_close_delimited_answers(serve: Any) -> None:
    chunked = [b"HTTP/1.1 100 Continue\r\n\r\n", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked",
               b"\r\n\r\n4;ext=1\r\n{\"a\"\r\n", b"3\r\n:1}\r\n0\r\nX-Trailer: t\r\n\r\n"]
    closing = b"HTTP/1.0 500 Oops\r\nContent-Type: text/plain\r\n\r\nbroken"
    server, pool = await serve([chunked, (closing,), b"HTTP/1.1 204 No Content\r\n\r\n"])
    answer = await _post(pool)
    assert (answer.status, answer.body) == (200, b'{"a":1}')
    answer = await _post(pool)
    assert (answer.status, answer.body) == (500, b"broken")
    assert (await _post(pool)).status == 204
    assert server.connections == 2  # the close-delimited answer ended its connection
    pool.close()


@pytest.mark.parametrize("answer, error", [
    (None, AnswerLost),                                          # closed, no answer
    ("hang", AnswerTimeout),                                     # never answers
    (b"SMTP ready\r\n\r\n", AnswerLost),                          # not HTTP
    (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", AnswerLost),  # cut short
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", AnswerLost),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-2\r\n", AnswerLost),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0x2\r\nab\r\n0\r\n\r\n",
     AnswerLost),
    (b"HTTP/1.1 200 OK\r\nContent-Length: \xb2\r\n\r\n", AnswerLost),  # a superscript 2
])
async def test_a_lost_answer_says_the_request_may_have_landed(
        serve: Any, answer: Any, error: type[Exception]) -> None:
    server, pool = await serve([answer])
    with pytest.raises(error):
        await _post(pool, timeout=0.3)
    assert len(server.requests) == 1  # it was sent
    pool.close()


async def test_a_connection_the_server_closed_while_idle_is_replaced(serve: Any) -> None:
    server, pool = await serve([(OK,), OK])
    await _post(pool)
    await asyncio.sleep(0.05)  # the server closed the connection, without saying so
    assert (await _post(pool)).status == 200
    assert server.connections == 2
    pool.close()


async def test_no_connection_means_nothing_was_sent() -> None:
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()
    pool = ConnectionPool(f"http://127.0.0.1:{port}", ssl_context=None, connect_timeout=2)
    with pytest.raises(ConnectError):
        await _post(pool)


def test_headers_cannot_smuggle_lines() -> None:
    pool = ConnectionPool("https://eu.example.com", ssl_context=None, connect_timeout=2)
    assert pool.prepare("/p", {}).startswith(b"POST /p HTTP/1.1\r\nHost: eu.example.com\r\n")
    for headers in ({"X-A": "1\r\nX-B: 2"}, {"X-A\n": "1"}, {"X:A": "1"}):
        with pytest.raises(ValueError):
            pool.prepare("/p", headers)


def test_the_parser_takes_an_answer_a_byte_at_a_time() -> None:
    parser = _ResponseParser()
    data = b"HTTP/1.1 429 Slow\r\nRetry-After: 2\r\nContent-Length: 3\r\n\r\nabc"
    results = [parser.feed(data[i:i + 1]) for i in range(len(data))]
    assert results[:-1] == [None] * (len(data) - 1)
    assert (results[-1].status, results[-1].headers["retry-after"], results[-1].body) == (
        429, "2", b"abc")
    assert parser.keep_alive


def test_bytes_after_a_complete_answer_are_refused_not_looped_on() -> None:
    parser = _ResponseParser()
    assert parser.feed(OK) is not None
    with pytest.raises(_Malformed):
        parser.feed(b"X")
