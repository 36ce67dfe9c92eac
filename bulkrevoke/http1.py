"""A lean HTTP/1.1 client for the one request a run sends thousands of times a second.

aiohttp's client spends about 200 µs of CPU on each request (session, request and
response objects, a timer, a payload registry, header multidicts); the send phase is
then bound by it, not by the API. This sends a prepared request on a keep-alive
connection (an asyncio Protocol) and parses the answer with a strict parser: status
line, headers (at most 64 KiB), a body by Content-Length, chunked, or up to the close
(at most 8 MiB). Nothing else: no redirects followed, no cookies, no compression asked
for or accepted, no proxies. OAuth token calls, which are rare, stay on aiohttp.

Errors say what may have happened to the request: ``ConnectError`` (nothing was
sent; ``TlsError`` when the certificate was not trusted), ``AnswerLost`` (it was
written, and no complete answer came: it may have been applied), ``AnswerTimeout``.
"""

from __future__ import annotations

import asyncio
import re
import ssl
from collections.abc import Mapping
from typing import Any, NamedTuple
from urllib.parse import urlsplit

MAX_HEAD = 64 << 10
MAX_BODY = 8 << 20
_HEX_DIGITS = re.compile(rb"[0-9A-Fa-f]{1,16}")


class HttpError(Exception):
    """A request that got no usable answer."""


class ConnectError(HttpError):
    """No connection: the request was not sent."""


class TlsError(ConnectError):
    """The host's certificate was not trusted: the request was not sent."""


class AnswerLost(HttpError):
    """The request was written, and the connection ended (or spoke garbage) before a
    complete answer: it may have been applied."""


class AnswerTimeout(AnswerLost):
    """No complete answer in time."""


class Response(NamedTuple):
    status: int
    headers: dict[str, str]  # names in lower case; a repeated header keeps its last value
    body: bytes


class ConnectionPool:
    """Keep-alive connections to one origin, at most one request on each at a time."""

    def __init__(self, base_url: str, *, ssl_context: ssl.SSLContext | None,
                 connect_timeout: float) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self._https = parts.scheme == "https"
        # A host name on the wire is ASCII (IDNA); a name that has no such form ("a..b",
        # a label over 63 characters) can't be connected to.
        self._host = parts.hostname.encode("idna").decode("ascii")
        self._port = parts.port or (443 if self._https else 80)
        self._prefix = parts.path.rstrip("/")
        default_port = self._port == (443 if self._https else 80)
        host = f"[{self._host}]" if ":" in self._host else self._host
        self._host_header = host if default_port else f"{host}:{self._port}"
        self._ssl = (ssl_context or ssl.create_default_context()) if self._https else None
        self._connect_timeout = connect_timeout
        self._idle: list[_Connection] = []

    def prepare(self, path: str, headers: Mapping[str, str]) -> bytes:
        """The head of a POST to *path* with *headers*, up to the Content-Length value."""
        lines = [f"POST {self._prefix}{path} HTTP/1.1", f"Host: {self._host_header}"]
        for name, value in headers.items():
            if any(c in f"{name}{value}" for c in "\r\n\0") or ":" in name:
                raise ValueError(f"header {name!r} has a line break, NUL or colon in it")
            lines.append(f"{name}: {value}")
        lines.append("Content-Length: ")
        return "\r\n".join(lines).encode("latin-1")

    async def post(self, head: bytes, body: bytes, timeout: float) -> Response:
        """Send ``head`` (from ``prepare``) with *body*; the answer, or an HttpError."""
        connection = await self._connection()
        try:
            response = await connection.exchange(
                (head, b"%d\r\n\r\n" % len(body), body), timeout)
        except BaseException:
            connection.close()
            raise
        if connection.reusable:
            self._idle.append(connection)
        else:
            connection.close()
        return response

    def close(self) -> None:
        while self._idle:
            self._idle.pop().close()

    async def _connection(self) -> _Connection:
        while self._idle:
            connection = self._idle.pop()
            if connection.reusable:
                return connection
            connection.close()
        loop = asyncio.get_running_loop()
        try:
            _, connection = await asyncio.wait_for(
                loop.create_connection(
                    lambda: _Connection(loop), self._host, self._port, ssl=self._ssl,
                    server_hostname=self._host if self._ssl else None),
                self._connect_timeout)
        except ssl.SSLCertVerificationError as exc:
            raise TlsError(f"certificate not trusted ({exc.verify_message})") from None
        except ssl.SSLError as exc:
            raise TlsError(f"TLS handshake failed ({exc.reason or type(exc).__name__})") from None
        except asyncio.TimeoutError:
            raise ConnectError(f"no connection within {self._connect_timeout:g}s") from None
        except OSError as exc:
            raise ConnectError(exc.strerror or type(exc).__name__) from None
        except (UnicodeError, ValueError) as exc:  # a name the resolver refuses
            raise ConnectError(f"bad host name ({type(exc).__name__})") from None
        return connection


class _Connection(asyncio.Protocol):
    """One keep-alive connection: write a request, parse its answer."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._transport: Any = None
        self._parser = _ResponseParser()
        self._waiter: asyncio.Future[Response] | None = None
        self._open = True
        self._keep = True

    @property
    def reusable(self) -> bool:
        return self._open and self._keep

    def close(self) -> None:
        self._open = False
        if self._transport is not None:
            self._transport.close()

    async def exchange(self, data: tuple[bytes, ...], timeout: float) -> Response:
        if not self._open:
            raise AnswerLost("the connection was closed")
        self._parser = _ResponseParser()
        waiter: asyncio.Future[Response] = self._loop.create_future()
        self._waiter = waiter
        self._transport.writelines(data)
        timer = self._loop.call_later(timeout, self._fail, AnswerTimeout(
            f"no answer within {timeout:g}s"))
        try:
            return await waiter
        finally:
            timer.cancel()
            self._waiter = None

    # --- asyncio.Protocol ---------------------------------------------------------------
    def connection_made(self, transport: Any) -> None:
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        if self._waiter is None or self._waiter.done():
            self._keep = False  # an answer nobody asked for: this connection is not in step
            self.close()
            return
        try:
            response = self._parser.feed(data)
        except _Malformed as exc:
            self._fail(AnswerLost(f"malformed answer ({exc})"))
            return
        if response is not None:
            self._keep = self._parser.keep_alive
            self._resolve(response)

    def eof_received(self) -> bool:
        self._keep = False
        if self._waiter is not None:
            try:
                response = self._parser.feed_eof()
            except _Malformed as exc:
                self._fail(AnswerLost(f"connection closed mid-answer ({exc})"))
            else:
                self._resolve(response)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._open = False
        if self._waiter is not None and not self._waiter.done():
            reason = type(exc).__name__ if exc is not None else "closed by the server"
            self._waiter.set_exception(AnswerLost(f"connection lost ({reason})"))

    def _resolve(self, response: Response) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(response)

    def _fail(self, error: HttpError) -> None:
        self._keep = False
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(error)
        self.close()


class _Malformed(Exception):
    pass


class _ResponseParser:
    """Incremental parser of one HTTP/1.x response (1xx interim answers skipped)."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._status = 0
        self._headers: dict[str, str] = {}
        self._mode = ""  # "" (head), "length", "chunked", "close", "done"
        self._remaining = 0
        self._body = bytearray()
        self.keep_alive = True

    def feed(self, data: bytes) -> Response | None:
        self._buffer += data
        while True:
            if self._mode == "":
                head = self._take(b"\r\n\r\n", "head too large")
                if head is None:
                    return None
                if not self._head(head):
                    continue  # a 1xx interim answer: the real one follows
            if self._mode == "length":
                if len(self._buffer) < self._remaining:
                    return None
                if len(self._buffer) > self._remaining:
                    raise _Malformed("more bytes than Content-Length")
                return self._done(bytes(self._buffer))
            if self._mode == "chunked":
                return self._chunks()
            if self._mode == "close":
                if len(self._buffer) > MAX_BODY:
                    raise _Malformed("body too large")
                return None
            if self._mode == "done":
                if self._buffer:
                    raise _Malformed("bytes after the answer")
                return self._done(b"")
            raise _Malformed("bytes after the answer")  # "finished": nothing more is due

    def feed_eof(self) -> Response:
        if self._mode == "close":
            return self._done(bytes(self._buffer))
        raise _Malformed("the answer was cut short")

    def _head(self, head: bytes) -> bool:
        """Read the status line and headers; False for a 1xx interim answer."""
        lines = head.decode("latin-1").split("\r\n")
        version, _, rest = lines[0].partition(" ")
        code = rest[:3]
        if version not in ("HTTP/1.1", "HTTP/1.0") or not (code.isdigit() and len(code) == 3):
            raise _Malformed("not an HTTP/1.x status line")
        status = int(code)
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, colon, value = line.partition(":")
            if not colon or not name or name != name.strip():
                raise _Malformed("bad header line")
            headers[name.lower()] = value.strip()
        if 100 <= status < 200:
            return False
        self._status, self._headers = status, headers
        connection = headers.get("connection", "").lower()
        self.keep_alive = version == "HTTP/1.1" and "close" not in connection
        coding = headers.get("transfer-encoding", "").lower()
        length = headers.get("content-length")
        if status in (204, 304):
            self._mode = "done"
        elif coding:
            if coding.rsplit(",", 1)[-1].strip() != "chunked":
                raise _Malformed(f"transfer-encoding {coding!r}")
            self._mode, self._remaining = "chunked", -1
        elif length is not None:
            if not (length.isascii() and length.isdigit()) or int(length) > MAX_BODY:
                raise _Malformed("bad Content-Length")
            self._mode, self._remaining = "length", int(length)
        else:
            self._mode, self.keep_alive = "close", False
        return True

    def _chunks(self) -> Response | None:
        while True:
            if self._remaining == -1:  # at a chunk-size line
                size_line = self._take(b"\r\n", "chunk size line too long")
                if size_line is None:
                    return None
                size_text = size_line.split(b";", 1)[0].strip()
                if not _HEX_DIGITS.fullmatch(size_text):
                    raise _Malformed("bad chunk size")
                size = int(size_text, 16)
                if size == 0:
                    self._remaining = -2
                else:
                    if len(self._body) + size > MAX_BODY:
                        raise _Malformed("body too large")
                    self._remaining = size
            if self._remaining == -2:  # trailers, up to an empty line
                line = self._take(b"\r\n", "trailers too long")
                if line is None:
                    return None
                if not line:
                    if self._buffer:
                        raise _Malformed("bytes after the answer")
                    return self._done(bytes(self._body))
                continue
            if len(self._buffer) < self._remaining + 2:
                return None
            if self._buffer[self._remaining:self._remaining + 2] != b"\r\n":
                raise _Malformed("chunk not followed by CRLF")
            self._body += self._buffer[:self._remaining]
            del self._buffer[:self._remaining + 2]
            self._remaining = -1

    def _take(self, terminator: bytes, too_long: str) -> bytes | None:
        """The bytes before *terminator*, taken from the buffer with it; None until it has
        arrived, and an error (*too_long*) once the wait exceeds MAX_HEAD bytes."""
        end = self._buffer.find(terminator)
        if end < 0:
            if len(self._buffer) > MAX_HEAD:
                raise _Malformed(too_long)
            return None
        taken = bytes(self._buffer[:end])
        del self._buffer[:end + len(terminator)]
        return taken

    def _done(self, body: bytes) -> Response:
        self._mode = "finished"
        return Response(self._status, self._headers, body)
