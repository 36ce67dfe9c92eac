"""Which proxy a run uses: the flag over the environment, curl's variables, NO_PROXY."""

from __future__ import annotations

import pytest

from bulkrevoke.errors import ConfigError
from bulkrevoke.proxies import choose_proxy, parse_proxy

HOST = "https://eu.api.capillarytech.com"


@pytest.mark.parametrize(
    "environ, expected",
    [
        ({}, None),
        ({"HTTPS_PROXY": "http://p:3128"}, "http://p:3128"),
        ({"https_proxy": "http://low:1", "HTTPS_PROXY": "http://up:2"}, "http://low:1"),
        ({"HTTP_PROXY": "http://p:3128"}, None),  # not for an https host
        ({"HTTPS_PROXY": "p.corp:8080"}, "http://p.corp:8080"),  # a bare host:port, as curl
        ({"HTTPS_PROXY": "http://p:1", "NO_PROXY": "capillarytech.com"}, None),
        ({"HTTPS_PROXY": "http://p:1", "no_proxy": ".capillarytech.com"}, None),
        ({"HTTPS_PROXY": "http://p:1", "NO_PROXY": "*"}, None),
        ({"HTTPS_PROXY": "http://p:1", "NO_PROXY": "example.com, other.org"}, "http://p:1"),
        ({"HTTPS_PROXY": "http://p:1", "NO_PROXY": "tech.com"}, "http://p:1"),  # not a suffix match
    ],
)
def test_the_environment_as_curl_reads_it(environ, expected):
    proxy = choose_proxy(HOST, None, environ)
    assert (proxy and proxy.label) == expected


def test_the_flag_wins_and_credentials_stay_out_of_sight():
    proxy = choose_proxy(
        HOST, "http://me:s3cret@proxy.corp:3128", {"HTTPS_PROXY": "http://other:1", "NO_PROXY": "*"}
    )
    assert proxy is not None and proxy.source == "--proxy"
    assert proxy.url == "http://me:s3cret@proxy.corp:3128"
    assert proxy.label == "http://proxy.corp:3128"
    assert "s3cret" not in repr(proxy) and "s3cret" not in str(proxy)


@pytest.mark.parametrize(
    "value, says",
    [
        ("socks5://p:1080", "not supported"),
        ("http://p:99999", "port out of range"),
        ("http://me:s3cret@p:1/path", "no path"),
        ("http://", "names no host"),
        ("http://p:1/ x", "no path"),
    ],
)
def test_a_bad_proxy_url_is_one_line_without_the_url(value, says):
    with pytest.raises(ConfigError, match=says) as caught:
        parse_proxy(value, "HTTPS_PROXY")
    assert str(caught.value).startswith("HTTPS_PROXY: ") and "s3cret" not in str(caught.value)
