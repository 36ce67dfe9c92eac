"""Which forward proxy, if any, carries a run's requests: resolved once, before ingest.

``--proxy URL`` (or the config file's ``proxy``) wins; otherwise the environment, read as
curl reads it: ``https_proxy``/``HTTPS_PROXY`` for an https host, ``http_proxy`` (or
``HTTP_PROXY``) for a plain-http one, and ``no_proxy``/``NO_PROXY`` (comma-separated
host names, domain suffixes with or without a leading dot, ``*`` for all) to bypass it.
The matching is the standard library's (``urllib.request``), not ours.

A proxy URL may carry credentials (``http://user:pass@proxy:3128``). They go to aiohttp
inside the URL and nowhere else: ``Proxy.label`` (scheme, host and port) is the only form
that is logged or written.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from bulkrevoke.errors import ConfigError

SCHEMES = ("http", "https")
# Undocumented, but in urllib.request since Python 2 and what requests and pip rely on;
# typeshed leaves it out.
_bypass: Callable[[str, dict[str, str]], bool] = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Proxy:
    """A forward proxy; ``url`` may hold credentials and is never shown."""

    url: str = field(repr=False)
    label: str
    source: str  # "--proxy" or the environment variable it came from

    def __repr__(self) -> str:
        return f"Proxy({self.label!r}, from {self.source})"


def parse_proxy(value: str, source: str) -> Proxy:
    """Check a proxy URL: http(s), a host, a valid port, nothing after the authority.
    Errors name *source* and the problem, never the URL (it may hold a password)."""
    text = value.strip()
    if "://" not in text:
        text = "http://" + text  # as curl: a bare host:port is an http proxy
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"{source}: not a valid proxy URL ({_reason(exc)})") from None
    if parts.scheme.lower() not in SCHEMES:
        raise ConfigError(
            f"{source}: proxy scheme {parts.scheme!r} is not supported; use an http:// or https:// proxy"
        )
    if not parts.hostname:
        raise ConfigError(f"{source}: the proxy URL names no host")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigError(f"{source}: a proxy URL is scheme://[user:password@]host:port, with no path")
    if not text.isascii() or any(ch.isspace() or ord(ch) < 32 for ch in text):
        raise ConfigError(
            f"{source}: the proxy URL holds spaces, control or non-ASCII characters (percent-encode them)"
        )
    scheme = parts.scheme.lower()
    port = port or (443 if scheme == "https" else 80)
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    return Proxy(url=text, label=f"{scheme}://{host}:{port}", source=source)


def choose_proxy(host_url: str, flag: str | None, environ: Mapping[str, str]) -> Proxy | None:
    """The proxy for requests to *host_url*: the flag's, else the environment's unless
    ``no_proxy`` names the host, else None."""
    if flag:
        return parse_proxy(flag, "--proxy")
    parts = urlsplit(host_url)
    scheme = parts.scheme.lower()
    found = _environment_proxy(scheme, environ)
    if found is None:
        return None
    name, value = found
    proxies = {scheme: value}
    no_proxy = environ.get("no_proxy") or environ.get("NO_PROXY")
    if no_proxy:
        proxies["no"] = no_proxy
        if _bypass(parts.netloc, proxies):
            return None
        if parts.hostname and _bypass(parts.hostname, proxies):
            return None
    return parse_proxy(value, name)


def _environment_proxy(scheme: str, environ: Mapping[str, str]) -> tuple[str, str] | None:
    # Lower case first, as curl and the standard library read them.
    for name in (f"{scheme}_proxy", f"{scheme.upper()}_PROXY"):
        value = environ.get(name, "").strip()
        if value:
            return name, value
    return None


def _reason(exc: ValueError) -> str:
    text = str(exc)
    return "port out of range 0-65535" if "out of range" in text else "bad port or address"
