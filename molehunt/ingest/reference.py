"""The shared reader of reference CSV exports (HR, accounts, assets, ...).

Each reference kind is a small subclass naming its columns, their types, the
columns that must not be empty and the key. Rows with a bad value, an empty
required value, a duplicate key or bytes that are not UTF-8 are set aside with
their line number; a missing column rejects the whole file with a clear error.
"""

from __future__ import annotations

import csv
import io
import ipaddress
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa

from molehunt.errors import InputError, Location
from molehunt.ingest.base import ParseResult, Rejected
from molehunt.store.schema import REFERENCE_TABLES

_ARROW_TYPES: dict[str, pa.DataType] = {
    "VARCHAR": pa.string(),
    "DATE": pa.date32(),
    "BOOLEAN": pa.bool_(),
}


def parse_date(value: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as e:
        raise ValueError(f"not an ISO date (YYYY-MM-DD): {value!r}") from e


def parse_yes_no(value: str) -> bool:
    lowered = value.lower()
    if lowered in {"yes", "y", "true", "1"}:
        return True
    if lowered in {"no", "n", "false", "0"}:
        return False
    raise ValueError(f"expected yes or no, got {value!r}")


def parse_ip(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError as e:
        raise ValueError(f"not an IP address: {value!r}") from e


def one_of(*allowed: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if value.lower() not in allowed:
            raise ValueError(f"expected one of {', '.join(allowed)}, got {value!r}")
        return value.lower()

    return check


def read_header(path: Path) -> list[str]:
    """The header columns of a CSV file (lower-cased, BOM and spaces stripped)."""
    with path.open("rb") as f:
        first = f.readline(64 * 1024)
    text = first.decode("utf-8-sig", errors="replace").rstrip("\r\n")
    try:
        return [c.strip().lower() for c in next(csv.reader([text]), [])]
    except csv.Error:
        return []  # not CSV at all: no reference kind will match


class ReferenceCsvParser:
    """Base of the reference parsers; subclasses set the class variables."""

    kind: ClassVar[str]
    description: ClassVar[str]
    table: ClassVar[str]  # key of REFERENCE_TABLES
    required: ClassVar[tuple[str, ...]] = ()
    #: Columns whose header must be present for the file to be recognised.
    signature: ClassVar[frozenset[str]]
    #: Converters per column (default: stripped text, empty -> NULL).
    converters: ClassVar[dict[str, Callable[[str], Any]]] = {}

    @classmethod
    def sniff_header(cls, columns: list[str]) -> bool:
        return cls.signature <= set(columns)

    def parse_file(self, path: Path) -> ParseResult:
        columns, key = REFERENCE_TABLES[self.table]
        raw = path.read_bytes()
        if raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        text = raw.decode("utf-8", errors="surrogateescape")
        reader = csv.reader(io.StringIO(text, newline=""))
        try:
            header = [h.strip().lower() for h in next(reader)]
        except StopIteration:
            raise InputError("empty file: no header row", Location(str(path), 1)) from None
        missing = [c for c in columns if c not in header]
        if missing:
            raise InputError(
                f"{self.kind}: missing column(s) {', '.join(missing)} "
                f"(header has {', '.join(header)})",
                Location(str(path), 1),
            )
        index = {c: header.index(c) for c in columns}
        out: dict[str, list[Any]] = {c: [] for c in columns}
        result = ParseResult()
        seen: dict[tuple[str, ...], int] = {}
        line = reader.line_num
        for row in reader:
            start, line = line + 1, reader.line_num
            result.records += 1
            if not any(cell.strip() for cell in row):
                continue
            raw_line = ",".join(row)
            problem = _row_problem(row, header)
            values: dict[str, Any] = {}
            if problem is None:
                try:
                    values = self._convert(row, index)
                except ValueError as e:
                    problem = str(e)
            if problem is None:
                row_key = tuple(str(values[k]) for k in key)
                if row_key in seen:
                    problem = (
                        f"duplicate {'+'.join(key)} {'/'.join(row_key)} "
                        f"(first at line {seen[row_key]})"
                    )
                else:
                    seen[row_key] = start
            if problem is not None:
                result.rejected.append(
                    Rejected(reason=problem, line=start, raw=_printable(raw_line))
                )
                continue
            for c in columns:
                out[c].append(values[c])
        schema = pa.schema([(c, _ARROW_TYPES[t]) for c, t in columns.items()])
        result.tables[self.table] = pa.table(out, schema=schema)
        return result

    def _convert(self, row: list[str], index: dict[str, int]) -> dict[str, Any]:
        columns, _ = REFERENCE_TABLES[self.table]
        values: dict[str, Any] = {}
        for column, sql_type in columns.items():
            cell = row[index[column]].strip()
            if not cell:
                if column in self.required:
                    raise ValueError(f"{column} is empty")
                values[column] = None
                continue
            try:
                if column in self.converters:
                    values[column] = self.converters[column](cell)
                elif sql_type == "DATE":
                    values[column] = parse_date(cell)
                else:
                    values[column] = cell
            except ValueError as e:
                raise ValueError(f"{column}: {e}") from e
        return values


def _row_problem(row: list[str], header: list[str]) -> str | None:
    if len(row) != len(header):
        return f"expected {len(header)} fields, found {len(row)}"
    for cell in row:
        if any("\udc80" <= ch <= "\udcff" for ch in cell):
            return "not valid UTF-8 (is the file in another encoding, e.g. GBK?)"
    return None


def _printable(text: str) -> str:
    """Raw text for the quarantine, with undecodable bytes shown as \\xNN."""
    return text.encode("utf-8", errors="surrogateescape").decode("utf-8", errors="backslashreplace")
