"""Tables of cells (spreadsheets, CSV): columns classified as a whole, by header
words and the share of valid cells, since a column of IDs says more than any one cell."""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from molehunt.pii.engine import (
    CONFIDENCES,
    Found,
    mask,
)
from molehunt.pii.files.common import COLUMN_SHARE, DAMAGED_ID, Detail, FileScan, Job, keyed_records
from molehunt.pii.recognizers.base import HAN_TEXT
from molehunt.pii.recognizers.china_resident_id import region_table, valid_dates
from molehunt.pii.recognizers.chinese_name import CELL_REGEX

_NAME_CELL = re.compile(CELL_REGEX.replace("{HAN}", HAN_TEXT))
#: What ``bytes.strip`` removes around a cell's value.
_SPACE = np.zeros(256, dtype=np.bool_)
_SPACE[list(b" \t\n\r\x0b\x0c")] = True


# -- tables -----------------------------------------------------------------------


def cell_text(value: object) -> str:
    """A cell as text; calamine gives numbers as floats (13800138000.0)."""
    if value is None:
        return ""
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e20:
            return str(int(value))
        return repr(value)
    return str(value).replace("\n", " ").replace("\r", " ")


def _column_texts(column: tuple[Any, ...]) -> list[str]:
    """:func:`cell_text` of each cell of a column (a column of text as it is)."""
    types = set(map(type, column))
    if types == {str} and not any("\n" in c or "\r" in c for c in column):
        return list(column)
    if types == {float}:
        # A column of numbers (phones, amounts): whole numbers in int64 converted at
        # C speed, what ``cell_text`` gives them one call each.
        numbers = np.array(column, dtype=np.float64)
        if bool(((numbers == np.floor(numbers)) & (np.abs(numbers) < 2.0**62)).all()):
            return list(map(str, numbers.astype(np.int64).tolist()))
    return list(map(cell_text, column))


def damaged_id(value: object) -> bool:
    """An 18-digit ID number saved as a number: Excel kept 15 significant digits."""
    if not isinstance(value, float) or not (1e17 <= value < 1e18):
        return False
    digits = np.array([int(c) for c in str(int(value))[:14]], dtype=np.int64)
    region = int("".join(map(str, digits[:6])))
    year = np.array([int("".join(map(str, digits[6:10])))])
    month = np.array([int("".join(map(str, digits[10:12])))])
    day = np.array([int("".join(map(str, digits[12:14])))])
    return bool(region_table()[region] and valid_dates(year, month, day)[0])


@dataclass(frozen=True, slots=True)
class Column:
    """How a column was classified (on the first block of rows holding a value in it)."""

    typed: npt.NDArray[np.bool_]  # per recognizer: a column of that type
    names: bool  # a column of people's names
    name_header: bool  # ... said so by its header


def scan_table(job: Job, sheet: str, rows: list[list[Any]], result: FileScan) -> None:
    """A whole table of cells, its first row the header."""
    if not rows:
        return
    scan_rows(job, sheet, rows[0], rows[1:], result, 0, {})


def scan_rows(
    job: Job,
    sheet: str,
    header_row: Sequence[Any],
    body: Sequence[Sequence[Any]],
    result: FileScan,
    first_row: int,
    columns: dict[int, Column],
) -> None:
    """Rows ``first_row``.. of a table (``body``, after the header), column by column.
    ``columns`` holds the classification of columns seen in earlier blocks of the same
    table: it is used as it is, and columns seen first here are added to it."""
    width = max([len(header_row), *map(len, body)])
    header = [cell_text(c).strip().lower() for c in header_row]
    header += [""] * (width - len(header))
    checksum = np.array([rec.checksum for rec in job.engine.recognizers], dtype=np.bool_)
    at = _Block(job, result, sheet, [[] for _ in body], first_row, checksum)
    # Columns at C speed: a Python step per cell is most of a spreadsheet's scan.
    for j, raw in enumerate(itertools.zip_longest(*body)):
        texts = _column_texts(raw)
        filled = sum(map(bool, map(str.strip, texts)))
        if filled == 0:
            continue
        columns[j] = _scan_column(at, header[j], j, raw, texts, filled, columns.get(j))
    keyed_records(job, at.row_values, result)


@dataclass(slots=True)
class _Block:
    """What the columns of one block of a table share: where findings go, and the
    values of each row (for exact data match)."""

    job: Job
    result: FileScan
    sheet: str
    row_values: list[list[tuple[str, str]]]
    first_row: int
    checksum: npt.NDArray[np.bool_]  # which recognizers have a checksum

    def finding(self, kind: str, confidence: str, value: str, i: int, j: int) -> None:
        _cell_finding(
            self.job,
            self.result,
            kind,
            confidence,
            value,
            self.sheet,
            i,
            j,
            self.row_values,
            self.first_row,
        )


def _scan_column(
    at: _Block,
    header: str,
    j: int,
    raw: Sequence[Any],
    texts: list[str],
    filled: int,
    column: Column | None,
) -> Column:
    """Column ``j`` scanned as one text; its classification (``column``, or made
    from this block when None)."""
    engine = at.job.engine
    found = engine.find("\n".join(texts).encode("utf-8"))
    cell, whole = _cells_of(found)
    if column is None:
        per_type = np.bincount(found.kind[whole], minlength=len(engine.names))
        typed = np.array(
            [
                any(w in header for w in rec.header_words) or n >= COLUMN_SHARE * filled
                for rec, n in zip(engine.recognizers, per_type.tolist(), strict=True)
            ],
            dtype=np.bool_,
        )
    else:
        typed = column.typed
    # In a column of the type the column is the context (at least medium).
    # A doubtful finding (an ID number's unlikely birth date) stays low.
    sure = typed[found.kind] & ~found.weak
    at.result.confident |= bool(sure.any()) or found.confident()
    level = (
        np.where(sure & ~found.context, 1 + at.checksum[found.kind], found.level)
        if at.job.detail
        else None
    )
    _cell_findings(at.job, at.result, found, level, cell, at.sheet, j, at.row_values, at.first_row)
    typed_names = {n for n, t in zip(engine.names, typed.tolist(), strict=True) if t}
    column = _name_cells(at, j, texts, filled, typed, typed_names, column)
    # A whole address column: the cell is the address even without a street number
    # (for exact data match only).
    if (
        at.job.hasher is not None
        and "china_address" in typed_names
        and any(w in header for w in ("地址", "住址", "address"))
    ):
        for i, t in enumerate(texts):
            if t.strip():
                at.row_values[i].append(("china_address", t))
    _damaged_ids(at, j, raw)
    return column


def _cells_of(found: Found) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """The cell (line of the column's text) of each finding, and whether the
    finding is the whole cell."""
    array = np.frombuffer(found.scanned, dtype=np.uint8)
    start, end = found.scanned_start, found.scanned_end
    newlines = np.flatnonzero(array == 0x0A)
    cell = np.searchsorted(newlines, start, "right")
    cell_start = np.concatenate([[0], newlines + 1])[cell]
    cell_end = np.concatenate([newlines, [len(array)]])[cell]
    # A finding is the whole cell when only whitespace (what strip removes)
    # surrounds it there. Most are the cell exactly; for the others count the
    # other bytes before each offset (a pass over the column).
    whole = (start == cell_start) & (end == cell_end)
    if not whole.all():
        ink = np.concatenate([[0], np.cumsum(~_SPACE[array], dtype=np.int64)])
        whole = (ink[start] == ink[cell_start]) & (ink[cell_end] == ink[end])
    return cell, whole


def _name_cells(
    at: _Block,
    j: int,
    texts: list[str],
    filled: int,
    typed: npt.NDArray[np.bool_],
    typed_names: set[str],
    column: Column | None,
) -> Column:
    """Names: a name column by header, or one mostly of surname + one or two
    characters. (A name is two to four characters: the length rules out most
    cells cheaply.)"""
    stripped = list(map(str.strip, texts))
    short = np.fromiter(map(len, stripped), dtype=np.int64, count=len(stripped))
    names = np.zeros(len(texts), dtype=np.bool_)
    for i in np.flatnonzero((short >= 2) & (short <= 4)).tolist():
        names[i] = _NAME_CELL.match(stripped[i]) is not None
    if column is None:
        name_header = "chinese_name" in typed_names
        column = Column(typed, name_header or names.sum() >= 0.8 * filled, name_header)
    if column.names:
        confidence = "high" if column.name_header else "medium"
        chosen = np.flatnonzero(names).tolist()
        if at.job.hasher is not None or at.job.detail:
            for i in chosen:
                at.finding("chinese_name", confidence, stripped[i], i, j)
        elif chosen:  # counts only: no call per name cell
            at.result.findings["chinese_name"] += len(chosen)
            at.result.confident = True
    return column


def _damaged_ids(at: _Block, j: int, raw: Sequence[Any]) -> None:
    """ID numbers a spreadsheet stored as floats (their last digits lost)."""
    floats = any(issubclass(t, float) for t in set(map(type, raw)))
    # Only 18-digit magnitudes can be damaged IDs: no call per number cell.
    for i in [
        i for i, v in enumerate(raw if floats else ()) if isinstance(v, float) and 1e17 <= v < 1e18
    ]:
        if damaged_id(raw[i]):
            at.finding(DAMAGED_ID, "medium", cell_text(raw[i]), i, j)


def _cell_findings(
    job: Job,
    result: FileScan,
    found: Found,
    level: npt.NDArray[np.int64] | None,
    cells: npt.NDArray[np.int64],
    sheet: str,
    column: int,
    row_values: list[list[tuple[str, str]]],
    first_row: int = 0,
) -> None:
    """:func:`_cell_finding` for a column's findings at once (values only when needed)."""
    result.findings.update(found.counts())
    if len(found) == 0 or (job.hasher is None and not job.detail):
        return
    names = job.engine.names
    levels = level.tolist() if level is not None else [0] * len(found)
    for k, lv, value, i in zip(
        found.kind.tolist(), levels, found.values(), cells.tolist(), strict=True
    ):
        kind = names[k]
        row_values[i].append((kind, value))
        if job.detail:
            location = {"sheet": sheet, "row": first_row + i + 2, "column": column + 1}
            result.details.append(Detail(kind, CONFIDENCES[lv], mask(value, kind), location))


def _cell_finding(
    job: Job,
    result: FileScan,
    kind: str,
    confidence: str,
    value: str,
    sheet: str,
    row: int,
    column: int,
    row_values: list[list[tuple[str, str]]],
    first_row: int = 0,
) -> None:
    result.findings[kind] += 1
    result.confident |= confidence != "low"
    if kind != DAMAGED_ID:
        row_values[row].append((kind, value))
    if job.detail:
        # Rows and columns are 1-based as a spreadsheet shows them; row 1 is the header.
        location = {"sheet": sheet, "row": first_row + row + 2, "column": column + 1}
        result.details.append(Detail(kind, confidence, mask(value, kind), location))
