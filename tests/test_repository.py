"""The repository stands alone: what its code cites is in it."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: Where code and its comments live (documents may cite each other freely).
SCANNED = ("bulkrevoke", "tests", "benchmarks")
SUFFIXES = {".py", ".toml", ".cfg", ".ini", ".md"}
#: A document named in a comment or docstring: README.md, docs/design.md, benchmarks/RESULTS.md.
DOCUMENT = re.compile(r"(?<![\w/.-])((?:\.{1,2}/)?[\w-]+(?:/[\w.-]+)*\.(?:md|rst))\b")
#: A numbered section (a section sign and a number): our documents' sections have names,
#: cited as README.md, *Input*.
NUMBERED_SECTION = re.compile(r"§\s*\d")


def _scanned_files() -> list[Path]:
    return [
        path
        for folder in SCANNED
        for path in sorted((ROOT / folder).rglob("*"))
        if path.suffix in SUFFIXES and "__pycache__" not in path.parts
    ]


def uncited_documents(path: Path, text: str) -> list[str]:
    """Documents *text* (the content of *path*) cites that are not in the repository, and
    numbered sections it cites, as ``line: citation``."""
    problems = []
    for number, line in enumerate(text.splitlines(), 1):
        for name in DOCUMENT.findall(line):
            if not ((ROOT / name).is_file() or (path.parent / name).is_file()):
                problems.append(f"{number}: {name}")
        problems += [f"{number}: {m.group()}" for m in NUMBERED_SECTION.finditer(line)]
    return problems


def test_every_cited_document_is_in_the_repository() -> None:
    found = {
        str(path.relative_to(ROOT)): problems
        for path in _scanned_files()
        if (problems := uncited_documents(path, path.read_text("utf-8")))
    }
    assert found == {}


def test_the_check_finds_a_document_that_is_not_here() -> None:
    here = ROOT / "bulkrevoke" / "runner.py"
    elsewhere = "NOTES" + ".md"  # (spelled apart, or this file would cite it)
    section = "\N{SECTION SIGN}3"
    text = f'"""See README.md and docs/design.md."""\n# as {elsewhere} says (section 2), and {section}\n'
    assert uncited_documents(here, text) == [f"2: {elsewhere}", f"2: {section}"]


def test_the_license_is_the_one_the_package_declares() -> None:
    license_text = (ROOT / "LICENSE").read_text("utf-8")
    assert 'license = { text = "MIT" }' in (ROOT / "pyproject.toml").read_text("utf-8")
    assert license_text.startswith("MIT License")
    assert "Copyright (c) 2026 the bulkrevoke authors" in license_text
