"""Headless Chromium for the page tests: render a file, and report the DOM it built, what it
wrote to its console and how many connections it tried to make.

Every request Chromium makes goes through a proxy on loopback that only notes where it
was going (loopback itself included, via ``<-loopback>``), so "loads nothing from the
network" is measured, not assumed. Chromium calls its own services (updates, time) even
headless; requests to those hosts are told apart from the page's. Tests that need it skip
where no Chromium is installed.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import pytest

_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def chromium_binary() -> str | None:
    return next((found for name in _NAMES if (found := shutil.which(name))), None)


needs_chromium = pytest.mark.skipif(
    chromium_binary() is None,
    reason="no Chromium on this machine (apt-get install chromium) to render summary.html",
)


#: What summary.html is built of; anything else in a rendered page came from somewhere else.
PAGE_TAGS = {
    "html",
    "head",
    "meta",
    "title",
    "style",
    "body",
    "main",
    "header",
    "h1",
    "h2",
    "p",
    "span",
    "section",
    "svg",
    "rect",
    "line",
    "div",
    "table",
    "thead",
    "tbody",
    "tfoot",
    "tr",
    "th",
    "td",
    "code",
    "br",
    "footer",
}
PAGE_ATTRIBUTES = {
    "lang",
    "charset",
    "http-equiv",
    "content",
    "name",
    "class",
    "id",
    "viewbox",
    "preserveaspectratio",
    "role",
    "aria-label",
    "x",
    "y",
    "width",
    "height",
    "fill",
    "x1",
    "y1",
    "x2",
    "y2",
    "stroke",
}
#: Chromium's own services, which it calls whatever the page is.
BROWSER_SERVICES = re.compile(r"(^|\.)(google\.com|googleapis\.com|gstatic\.com|gvt1\.com)$")


@dataclass
class Rendered:
    dom: str
    console: list[str]
    requested: list[str]  # the hosts asked for through the proxy

    @property
    def page_requests(self) -> list[str]:
        return [host for host in self.requested if not BROWSER_SERVICES.search(host)]


class _CountingProxy:
    """Accepts connections on loopback, notes the host each request names, answers nothing."""

    def __init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self.hosts: list[str] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._note, args=(client,), daemon=True).start()

    def _note(self, client: socket.socket) -> None:
        client.settimeout(0.3)
        try:
            line = client.recv(4096).split(b"\r\n", 1)[0].decode("latin-1")
            client.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        except OSError:
            line = ""
        client.close()
        # "GET http://host/path HTTP/1.1" or "CONNECT host:443 HTTP/1.1"
        target = line.split(" ")[1] if line.count(" ") >= 2 else line
        self.hosts.append(re.sub(r"^\w+://|[:/].*$", "", target) or "?")

    def close(self) -> None:
        # shutdown() wakes the accept() in the other thread; close() alone would not.
        with contextlib.suppress(OSError):
            self._server.shutdown(socket.SHUT_RDWR)
        self._server.close()
        self._thread.join(timeout=5)


def render(
    page: Path, profile: Path, *, screenshot: Path | None = None, width: int = 1200, height: int = 2400
) -> Rendered:
    """Open *page* in headless Chromium (a fresh profile in *profile*)."""
    proxy = _CountingProxy()
    command = [
        chromium_binary() or "chromium",
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
        "--disable-extensions",
        f"--user-data-dir={profile}",
        f"--proxy-server=http://127.0.0.1:{proxy.port}",
        "--proxy-bypass-list=<-loopback>",
        "--enable-logging=stderr",
        "--v=0",
        f"--window-size={width},{height}",
        f"--screenshot={screenshot}" if screenshot else "--dump-dom",
        page.resolve().as_uri(),
    ]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        out, err = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise
    finally:
        proxy.close()
    console = [line for line in err.splitlines() if ":CONSOLE" in line]
    return Rendered(dom=out, console=console, requested=proxy.hosts)


class DomShape(HTMLParser):
    """The tags, attribute names and text of a document."""

    def __init__(self, source: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: set[str] = set()
        self.attributes: set[str] = set()
        self.attribute_values: list[str] = []
        self.text: list[str] = []
        self.feed(source)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        for name, value in attrs:
            self.attributes.add(name)
            self.attribute_values.append(value or "")

    def handle_data(self, data: str) -> None:
        self.text.append(data)
