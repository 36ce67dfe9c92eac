"""summary.html: the run on one self-contained page, to look at, print or read on a phone.

Inline CSS and SVG only: no script, no font, no image, nothing fetched from anywhere,
and a Content-Security-Policy that forbids all of it (the one style block is allowed by
its hash). Every value that came from the input, the API or the environment (ids, error
messages, file names, the ticket, the operator) is escaped, after its control and bidi
characters are made visible: data never becomes markup, a link or a reordered line.
The page is rendered from the summary and the ledger's timeline only, so the same
ledger gives the same bytes.
"""

from __future__ import annotations

import base64
import hashlib
import html
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from bulkrevoke.ledger.schema import TIMELINE_SECONDS
from bulkrevoke.logs import printable
from bulkrevoke.report.charts import STATUS_COLOURS, Series, bars, gather, status_bar
from bulkrevoke.report.summary import controls_hold, identity_rows

SHOWN_CHARACTERS = 300
TOP_CODES = 10
_EXIT_MEANINGS = {
    0: ("ok", "every row is settled"),
    1: ("warn", "the run finished, but some rows are invalid or failed"),
    2: ("bad", "usage, configuration or input error: nothing was sent"),
    3: ("bad", "safety stop: the rest is not_attempted; fix the cause and resume"),
    130: ("bad", "interrupted: the rest is not_attempted; resume it"),
}
_CSS = """
:root{--ink:#1b1b1b;--muted:#5f6368;--line:#d0d4d9;--ok:#2e7d32;--warn:#9e6a00;--bad:#c62828}
*{box-sizing:border-box}
body{margin:0;font:16px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--ink);
background:#fff}
main{max-width:960px;margin:0 auto;padding:1rem}
h1{font-size:1.5rem;margin:.2rem 0 .5rem;overflow-wrap:anywhere}
h2{font-size:1.15rem;margin:1.6rem 0 .5rem;border-bottom:1px solid var(--line);padding-bottom:.2rem}
p{margin:.4rem 0}
.muted{color:var(--muted)}
.verdict{font-weight:600;padding:.5rem .75rem;border-left:6px solid;background:#f6f7f8}
.verdict.ok{border-color:var(--ok)}.verdict.warn{border-color:var(--warn)}
.verdict.bad{border-color:var(--bad);color:var(--bad)}
.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%;font-size:.95rem}
th,td{text-align:left;padding:.3rem .5rem;border-bottom:1px solid var(--line);vertical-align:top}
th{font-weight:600}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
code,.mono{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.88rem;overflow-wrap:anywhere}
h1 .mono{font-size:inherit}td.code{white-space:nowrap}
svg.bar{display:block;width:100%;height:2rem;border-radius:4px}
svg.chart{display:block;width:100%;height:7.5rem;background:#fafafa}
.axis{display:flex;justify-content:space-between;font-size:.8rem;color:var(--muted)}
.swatch{display:inline-block;width:.8rem;height:.8rem;border-radius:2px;margin-right:.4rem;
vertical-align:-.05rem}
.holds{color:var(--ok);font-weight:600}.fails{color:var(--bad);font-weight:600}
footer{margin-top:2rem;font-size:.85rem;color:var(--muted)}
@media (max-width:600px){main{padding:.6rem}h1{font-size:1.2rem}th,td{padding:.25rem .3rem}}
@media print{body{font-size:11pt}main{max-width:none;padding:0}.scroll{overflow:visible}
section{break-inside:avoid}svg,.swatch,.verdict{print-color-adjust:exact;-webkit-print-color-adjust:exact}}
@page{margin:14mm}
"""


def text(value: Any, limit: int = SHOWN_CHARACTERS) -> str:
    """A value as HTML text: control and bidi characters made visible, cut to *limit*
    characters, escaped. None shows as a dash."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        value = "yes" if value else "no"
    shown = printable(str(value))
    if len(shown) > limit:
        shown = shown[:limit] + f"… ({len(shown):,} characters)"
    return html.escape(shown, quote=True)


def render_page(summary: Mapping[str, Any], timeline: Sequence[tuple[int, int, int, int, int]]) -> str:
    style = (
        _CSS.strip()
        + "\n"
        + "".join(f".sw-{status}{{background:{colour}}}" for status, colour in STATUS_COLOURS.items())
    )
    style_hash = base64.b64encode(hashlib.sha256(style.encode("utf-8")).digest()).decode("ascii")
    policy = f"default-src 'none'; style-src 'sha256-{style_hash}'; base-uri 'none'; form-action 'none'"
    body = "".join(
        [
            _header(summary),
            _counts(summary),
            _controls(summary),
            _verification(summary),
            _throughput(summary, gather(timeline, TIMELINE_SECONDS)),
            _errors(summary),
            _identity(summary),
            _files(summary),
        ]
    )
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{policy}">\n'
        '<meta name="referrer" content="no-referrer">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>bulkrevoke run {text(summary.get('runId'), 80)}</title>\n"
        f"<style>{style}</style>\n</head>\n<body>\n<main>\n{body}"
        f"<footer>Written by bulkrevoke {text(summary.get('version'))}. summary.json holds the "
        "same figures for programs; report.xlsx is the report to open in a spreadsheet.</footer>\n"
        "</main>\n</body>\n</html>\n"
    )


def _header(summary: Mapping[str, Any]) -> str:
    code = summary.get("exitCode")
    tone, meaning = _EXIT_MEANINGS.get(code if isinstance(code, int) else -1, ("bad", "unknown"))
    verdict = f"Exit code {text(code)}: {meaning}"
    if summary.get("stopReason"):
        verdict += f" (stop reason: {text(summary['stopReason'])})"
    if not controls_hold(summary):
        tone, verdict = "bad", "The control totals DO NOT HOLD (see below). " + verdict
    kind = "bulkrevoke dry run" if summary.get("dryRun") else "bulkrevoke run"
    return (
        f'<header><h1>{kind} <span class="mono">{text(summary.get("runId"))}</span></h1>\n'
        f'<p class="verdict {tone}">{verdict}</p>\n'
        f'<p>{text(summary.get("rows"))} rows from <span class="mono">'
        f"{text(summary.get('input'))}</span> to {text(summary.get('host'))}, "
        f"{text(summary.get('started'))} to {text(summary.get('finished'))}; "
        f"ticket {text(summary.get('ticket'))}, run by {text(summary.get('operator'))}.</p>"
        "</header>\n"
    )


def _counts(summary: Mapping[str, Any]) -> str:
    counts = {k: int(v) for k, v in (summary.get("counts") or {}).items()}
    total = sum(counts.values())
    rows = "".join(
        f'<tr><td><span class="swatch sw-{text(status)}"></span>{text(status)}</td>'
        f'<td class="n">{count:,}</td><td class="n">{count / total:.1%}</td></tr>'
        for status, count in counts.items()
        if count
    )
    return (
        f'<section id="counts"><h2>Rows by status</h2>\n{status_bar(counts)}\n'
        f'<div class="scroll"><table><thead><tr><th>status</th><th class="n">rows</th>'
        f'<th class="n">share</th></tr></thead><tbody>{rows}</tbody>'
        f'<tfoot><tr><th>all rows</th><th class="n">{total:,}</th><th></th></tr></tfoot>'
        "</table></div></section>\n"
    )


def _controls(summary: Mapping[str, Any]) -> str:
    rows = []
    for name, control in (summary.get("controls") or {}).items():
        figures = ", ".join(f"{text(k)} {v:,}" for k, v in control.get("figures", {}).items())
        verdict = (
            '<span class="holds">holds</span>'
            if control.get("holds")
            else '<span class="fails">DOES NOT HOLD</span>'
        )
        rows.append(
            f"<tr><td>{text(name)}</td><td><code>{text(control.get('rule'))}</code>"
            f'<br><span class="muted">{figures}</span></td><td>{verdict}</td></tr>'
        )
    return (
        '<section id="controls"><h2>Control totals</h2>\n<p class="muted">Left side '
        'counted in the ledger, right side in the report.</p>\n<div class="scroll"><table>'
        "<thead><tr><th>total</th><th>rule and figures</th><th>result</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></div></section>\n"
    )


#: Verification figures that are an alarm when not zero.
_ALARMS = frozenset({"active", "revokedFoundActive"})


def _verification(summary: Mapping[str, Any]) -> str:
    found = summary.get("verification")
    if not isinstance(found, Mapping) or not found:
        return (
            '<section id="verification"><h2>Verification</h2>\n<p>Not verified: no row '
            "was read back from the server.</p></section>\n"
        )
    rows = "".join(
        f'<tr><td>{text(key)}</td><td class="n{" fails" if key in _ALARMS and value else ""}">'
        f"{_figure(value)}</td></tr>"
        for key, value in found.items()
    )
    return (
        '<section id="verification"><h2>Verification</h2>\n<p>Rows read back from the '
        'server after the run.</p>\n<div class="scroll"><table><tbody>'
        f"{rows}</tbody></table></div></section>\n"
    )


def _throughput(summary: Mapping[str, Any], series: Series | None) -> str:
    figures = (
        f"<p>{_figure(summary.get('requestsSent'))} requests, "
        f"{_figure(summary.get('retries'))} retries, {_figure(summary.get('throttled'))} "
        f"throttled answers; {_figure(summary.get('achievedRequestsPerSecond'))} requests/s "
        f"achieved at rate {text(summary.get('rate'))}.</p>\n"
    )
    if series is None:
        missing = (
            "No timeline was recorded (a ledger older than the timeline)."
            if summary.get("requestsSent")
            else "Nothing was sent."
        )
        return (
            '<section id="throughput"><h2>Throughput and throttling</h2>\n'
            + figures
            + f"<p>{missing}</p></section>\n"
        )
    axis = (
        f'<div class="axis"><span>{_clock(series.start)}</span>'
        f"<span>{series.bar_seconds:,} s a bar</span><span>{_clock(series.end)}</span></div>"
    )
    most = max(series.throttled)
    throttled = (
        f"<p>Throttled answers (429) per {series.bar_seconds:,} s (most {most:,})</p>\n"
        + bars(series.throttled, colour="#e65100", label="throttled answers")
        + axis
        if most
        else "<p>No answer was throttled.</p>"
    )
    return (
        '<section id="throughput"><h2>Throughput and throttling</h2>\n'
        + figures
        + f"<p>Rows finished per {series.bar_seconds:,} s (most {max(series.finished):,}; "
        "failed rows in red)</p>\n"
        + bars(series.finished, colour="#1565c0", overlay=series.failed, label="rows finished")
        + axis
        + "\n"
        + throttled
        + "</section>\n"
    )


def _errors(summary: Mapping[str, Any]) -> str:
    codes = list((summary.get("errorCodes") or {}).items())
    if not codes:
        return '<section id="errors"><h2>Error codes</h2>\n<p>No row has an error code.</p></section>\n'
    messages = summary.get("errorMessages") or {}
    rows = "".join(
        f'<tr><td class="code"><code>{text(code, 80)}</code></td>'
        f'<td class="n">{_figure(count)}</td><td>{text(messages.get(code))}</td></tr>'
        for code, count in codes[:TOP_CODES]
    )
    more = (
        f'<p class="muted">{len(codes) - TOP_CODES:,} more codes in summary.json.</p>'
        if len(codes) > TOP_CODES
        else ""
    )
    return (
        '<section id="errors"><h2>Top error codes</h2>\n<div class="scroll"><table>'
        '<thead><tr><th>code</th><th class="n">rows</th><th>first message</th></tr></thead>'
        f"<tbody>{rows}</tbody></table></div>{more}</section>\n"
    )


def _identity(summary: Mapping[str, Any]) -> str:
    rows = "".join(
        f'<tr><th>{text(label)}</th><td class="mono">{text(value)}</td></tr>'
        for label, value in identity_rows(summary)
    )
    settings = summary.get("settings") or {}
    rows += "".join(
        f'<tr><th>setting {text(name)}</th><td class="mono">{text(value)}</td></tr>'
        for name, value in settings.items()
    )
    return (
        '<section id="who"><h2>Who, what, why</h2>\n<div class="scroll"><table><tbody>'
        f"{rows}</tbody></table></div></section>\n"
    )


def _files(summary: Mapping[str, Any]) -> str:
    rows = "".join(
        f'<tr><td>{text(name)}</td><td class="mono">{text(entry.get("sha256"))}</td></tr>'
        for name, entry in (summary.get("files") or {}).items()
    )
    return (
        '<section id="files"><h2>Files</h2>\n<p class="muted">Check a copy with '
        '<code>sha256sum FILE</code>.</p>\n<div class="scroll"><table><thead><tr>'
        "<th>file</th><th>SHA-256</th></tr></thead>"
        f"<tbody>{rows}</tbody></table></div></section>\n"
    )


def _figure(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return text(value)
    return f"{value:,}"


def _clock(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
