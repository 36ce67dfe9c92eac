"""The profile part's tables: frames grouped into components (bulkrevoke's modules, the
libraries, the interpreter) and the top functions, from py-spy counts or cProfile stats."""

from __future__ import annotations

import collections
import pstats
import re

LIBRARIES = (
    "aiohttp",
    "yarl",
    "multidict",
    "aiolimiter",
    "pyarrow",
    "pandas",
    "numpy",
    "asyncio",
    "json",
    "sqlite3",
    "logging",
    "importlib",
    "frozenlist",
    "propcache",
    "aiohappyeyeballs",
    "tqdm",
    "email",
    "http",
    "re",
    "csv",
    "hashlib",
    "datetime",
    "ssl",
    "encodings",
    "argparse",
)
# cProfile's built-ins (file "~"): the C function's owner, by a word in its name.
BUILTIN_OWNERS = {
    "sqlite3": "sqlite3",
    "select": "epoll wait (idle)",
    "json": "json",
    "_asyncio": "asyncio",
    "_ssl": "_ssl",
    "socket": "socket",
    "pyarrow": "pyarrow",
    "_hashlib": "_hashlib",
    "posix": "posix",
    "io": "io",
}


def short_path(path: str) -> str:
    for marker in ("site-packages/", "/benchmarks/"):
        if marker in path:
            return path.split(marker, 1)[1]
    if "/bulkrevoke/" in path:
        return "bulkrevoke/" + path.split("/bulkrevoke/", 1)[1]
    return re.sub(r"^.*/lib/python3\.\d+/", "", path)


def component(path: str, func: str = "") -> str:
    """The component a frame of *path* belongs to."""
    p = path.replace("\\", "/")
    if "/bulkrevoke/" in p or p.startswith("bulkrevoke/"):
        return "bulkrevoke." + p.split("bulkrevoke/", 1)[1].removesuffix(".py").replace("/", ".")
    if "baseline_client" in p:
        return "baseline_client"
    for lib in LIBRARIES:
        if f"/{lib}/" in p or f"/{lib}.py" in p or p.startswith(f"{lib}/") or p == f"{lib}.py":
            return lib
    if "<frozen" in p:
        return "import machinery"
    if p == "~":
        return next((owner for word, owner in BUILTIN_OWNERS.items() if word in func), "builtins")
    return "other stdlib"


def pyspy_table(
    own: collections.Counter[str],
    inclusive: collections.Counter[str],
    components: collections.Counter[str],
    *,
    rows: int,
    hz: int,
    focus: str | None,
    top: int = 12,
) -> list[str]:
    total = sum(own.values()) or 1
    per_row = 1e6 / hz / rows  # µs of CPU per row that one sample stands for

    def cells(count: int) -> str:
        return f"{count / total:.1%} | {count * per_row:,.1f}"

    lines = [
        f"{total:,} samples at {hz} Hz (CPU only, idle excluded) = {total * per_row:,.0f} "
        "µs of CPU per row under the profiler, start-up and report included.",
        "",
        "| component (self time) | share | µs/row |",
        "|---|---|---|",
        *(f"| {name} | {cells(count)} |" for name, count in components.most_common(10)),
        "",
        "| function (self time) | self | µs/row |",
        "|---|---|---|",
        *(f"| `{label}` | {cells(count)} |" for label, count in own.most_common(top)),
    ]
    if focus:
        chosen = [
            (label, count)
            for label, count in inclusive.most_common()
            if focus in label and not label.startswith(("<module>", "main ("))
        ][:top]
        lines += [
            "",
            f"| {focus} function (inclusive time) | inclusive | µs/row |",
            "|---|---|---|",
            *(f"| `{label}` | {cells(count)} |" for label, count in chosen),
        ]
    return lines


def cprofile_table(stats: pstats.Stats, *, rows: int, top: int = 12) -> list[str]:
    entries = []
    components: collections.Counter[str] = collections.Counter()
    raw = stats.stats  # type: ignore[attr-defined]  # pstats keeps its table undeclared
    for (file, line, func), (_cc, calls, own, cumulative, _callers) in raw.items():
        label = f"{func} ({short_path(file)}:{line})" if file != "~" else func
        entries.append((label, calls, own, cumulative))
        components[component(file, func)] += own
    total = stats.total_tt or 1  # type: ignore[attr-defined]
    lines = [
        "Deterministic; adds its own per-call overhead; a coroutine's time is split at "
        f"each await, so its cumulative column can be off. {total:.2f}s of profiled time.",
        "",
        "| component (self time) | share |",
        "|---|---|",
        *(f"| {name} | {secs / total:.1%} |" for name, secs in components.most_common(10)),
        "",
        "| function | calls | calls/row | self | cumulative |",
        "|---|---|---|---|---|",
    ]
    for label, calls, own, cumulative in sorted(entries, key=lambda e: -e[2])[:top]:
        idle = " — idle wait" if "select.epoll" in label else ""
        lines.append(
            f"| `{label}{idle}` | {calls:,} | {calls / rows:.2f} | {own / total:.1%} | "
            f"{min(cumulative / total, 9.99):.1%} |"
        )
    return lines
