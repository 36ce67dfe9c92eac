"""summary.html: one self-contained page that shows the run, rendered in a real browser."""

from __future__ import annotations

import base64
import hashlib
import html
import re
import struct

import pytest

from bulkrevoke.report.charts import MAX_BARS, gather
from bulkrevoke.report.page import render_page

from .browser import PAGE_ATTRIBUTES, PAGE_TAGS, DomShape, needs_chromium, render
from .conftest import ROOT, read_summary, run_cli

SAMPLE = ROOT / "sample_inputs" / "revocations.csv"


def _summary(**extra):
    summary = {
        "runId": "20261128-101500-fraud",
        "version": "0.1.0",
        "rows": 10,
        "exitCode": 1,
        "counts": {
            "revoked": 6,
            "already_inactive": 1,
            "revoked_unconfirmed": 0,
            "invalid": 1,
            "failed": 2,
            "duplicate": 0,
            "not_attempted": 0,
            "would_revoke": 0,
        },
        "controls": {"rows": {"rule": "r", "figures": {"rows": 10}, "holds": True}},
        "errorCodes": {"500": 2, "malformed_id": 1},
        "errorMessages": {"500": "Internal error", "malformed_id": "badgeMetaId 'x' is bad"},
        "files": {"report.csv": {"sha256": "ab" * 32}},
    }
    summary.update(extra)
    return summary


def test_the_page_forbids_scripts_and_remote_loads_and_allows_only_its_own_style():
    page = render_page(_summary(), [])
    policy = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page).group(1)
    assert "default-src 'none'" in policy and "unsafe" not in policy
    style = re.search(r"<style>(.*?)</style>", page, re.S).group(1)
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in policy
    assert not re.search(r"<script|<link|<img|<iframe|@import|url\(|https?://|src=|href=", page)


def test_every_value_from_data_is_escaped_and_its_controls_made_visible():
    hostile = '<script>alert(1)</script>\x1b[31m\u202e"'
    page = render_page(
        _summary(
            runId=hostile,
            ticket=hostile,
            operator=hostile,
            input=hostile,
            errorMessages={"500": hostile},
            settings={"columns": hostile},
            files={hostile: {"sha256": hostile}},
        ),
        [],
    )
    assert "<script>" not in page and "\x1b" not in page and "\u202e" not in page
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;\\x1b[31m\\u202e&quot;"
    assert page.count(escaped) >= 7


def test_verification_shows_not_verified_until_the_summary_has_it():
    assert "Not verified" in render_page(_summary(), [])
    page = render_page(
        _summary(verification={"checked": 12, "inactive": 10, "active": 1, "unverifiable": 1, "sample": 5}),
        [],
    )
    assert "Not verified" not in page
    assert '<td>active</td><td class="n fails">1</td>' in page
    assert '<td>checked</td><td class="n">12</td>' in page


def test_control_totals_that_do_not_hold_lead_the_page():
    broken = {"rows": {"rule": "rows = …", "figures": {"rows": 10, "sent": 9}, "holds": False}}
    page = render_page(_summary(controls=broken), [])
    assert 'class="verdict bad">The control totals DO NOT HOLD' in page
    assert "DOES NOT HOLD" in page


def test_the_timeline_keeps_time_and_is_gathered_into_a_bounded_number_of_bars():
    start = 1_700_000_000
    series = gather([(start, 5, 1, 6, 0), (start + 30, 7, 0, 9, 2)], 10)
    assert series.finished == (5, 0, 0, 7) and series.throttled == (0, 0, 0, 2)
    assert series.bar_seconds == 10 and series.end == start + 40
    long_run = [(start + 10 * i, 1, 0, 1, i % 2) for i in range(1000)]
    gathered = gather(long_run, 10)
    assert len(gathered.finished) <= MAX_BARS
    assert sum(gathered.finished) == 1000 and sum(gathered.throttled) == 500
    assert gather([], 10) is None


@pytest.mark.slow
@needs_chromium
def test_chromium_renders_the_page_of_a_run_with_its_counts_and_nothing_else(tmp_path):
    out = tmp_path / "run"
    result = run_cli("run", str(SAMPLE), "--sandbox", "--out", str(out), "--ticket", "CHG-42", "-q")
    assert result.returncode == 1, result.stderr
    summary = read_summary(out)
    assert (
        summary["files"]["summary.html"]["sha256"]
        == hashlib.sha256((out / "summary.html").read_bytes()).hexdigest()
    )
    page = render(out / "summary.html", tmp_path / "profile")
    assert page.console == [] and page.page_requests == []
    shape = DomShape(page.dom)
    assert shape.tags <= PAGE_TAGS and shape.attributes <= PAGE_ATTRIBUTES
    for status, count in summary["counts"].items():
        if count:
            assert f'{status}</td><td class="n">{count:,}</td>' in page.dom
    assert f'all rows</th><th class="n">{summary["rows"]}</th>' in page.dom
    assert "CHG-42" in page.dom and html.escape(summary["operator"]) in page.dom
    shot = tmp_path / "page.png"
    render(out / "summary.html", tmp_path / "profile", screenshot=shot, width=390, height=1600)
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", data[16:24]) == (390, 1600)


@pytest.mark.slow
@needs_chromium
def test_the_browser_probe_does_see_console_messages_and_connections(tmp_path):
    # The checks above are only worth something if this probe notices what they forbid.
    page = tmp_path / "probe.html"
    page.write_text(
        '<!DOCTYPE html><html><body><img src="http://bulkrevoke.invalid/x.png">'
        '<script>console.error("probe")</script></body></html>'
    )
    seen = render(page, tmp_path / "profile")
    assert any("probe" in line for line in seen.console)
    assert "bulkrevoke.invalid" in seen.page_requests
