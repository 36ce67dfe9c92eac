"""Which reader opens an input: by its kind (CSV, gzip, TSV, Parquet, Excel, standard
input, a pandas DataFrame). Each reader is imported when needed: a CSV run never loads
openpyxl, and importing this module stays cheap."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bulkrevoke.errors import InputError
from bulkrevoke.ingest.source import Source
from bulkrevoke.model import is_dataframe

_CSV_KINDS = (".csv", ".tsv", ".txt")


def open_source(
    source: Any,
    *,
    columns: Mapping[str, str] | None = None,
    delimiter: str | None = None,
    spool_dir: Path | None = None,
) -> Source:
    """Open *source* (a path, ``"-"`` for stdin, or a pandas DataFrame) for streaming.

    Standard input and the unpacked text of a gzip file are spooled, while they are read,
    to a private file in *spool_dir* (the system's temporary directory if None)."""
    columns = dict(columns or {})
    if is_dataframe(source):
        from bulkrevoke.ingest.columnar_source import open_dataframe

        return open_dataframe(source, columns)
    if str(source) == "-":
        from bulkrevoke.ingest.csv_source import open_stdin

        return open_stdin(columns, delimiter, spool_dir)
    path = Path(source)
    name = str(path)
    if not path.exists():
        raise InputError(f"{name}: no such file")
    if path.is_dir():
        raise InputError(f"{name}: is a directory, not an input file")
    suffixes = [s.lower() for s in path.suffixes[-2:]]
    kind = suffixes[-1] if suffixes else ""
    if kind == ".parquet":
        from bulkrevoke.ingest.columnar_source import open_parquet

        return open_parquet(path, columns)
    if kind in (".xlsx", ".xlsm"):
        from bulkrevoke.ingest.excel_source import open_excel

        return open_excel(path, columns)
    if kind in _CSV_KINDS or (kind == ".gz" and suffixes[0] in _CSV_KINDS):
        from bulkrevoke.ingest.csv_source import open_csv

        default = "\t" if ".tsv" in suffixes else None
        return open_csv(path, name, columns, delimiter or default, spool_dir)
    raise InputError(
        f"{name}: unknown input kind {path.suffix or '(no extension)'!r}; "
        "use .csv, .csv.gz, .tsv, .parquet or .xlsx"
    )
