"""Personal data in files: text, spreadsheets, Word, PDF and zips of them.

Each file becomes text or a table of cells, which the engine scans in bulk (a
whole text, or a whole column joined by newlines). Spreadsheet columns are
classified as a whole, by header words and the share of valid cells, since a
column of IDs says more than any one cell. Hostile files are refused with a
reason before they can cost time or memory: too large, zip bombs (ratio or entry
count), unsafe member paths, encrypted or corrupt archives, XML with a DTD
(billion laughs). The records of each file (rows, lines) keep keyed hashes of their
values for exact data match, never the values.

Memory: text and CSV files (and such members of zips) are read as a stream and
scanned in blocks of about :data:`BLOCK_CHARS` characters (a CSV: blocks of whole
rows), so what the scan holds does not grow with the file: a text block ends on a
cut carried over into the next block with :data:`OVERLAP_CHARS` characters of
overlap, so a finding across a cut is found whole, once. A CSV's columns are
classified (header words, share of valid cells, name columns) on its first block
of rows, a bounded sample, and that classification holds for the rest of the file;
counts run over every row. What still grows with a file is what it holds: one
record (a few keyed hashes) per row with an identifier when matching client
records, and one entry per finding with ``detail``.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import re
import zipfile
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any, overload

import numpy as np
import numpy.typing as npt

from molehunt.pii.engine import (
    CONFIDENCES,
    Engine,
    Found,
    char_offsets,
    default_engine,
    mask,
)
from molehunt.pii.keyed import KeyedHasher
from molehunt.pii.recognizers.base import HAN_TEXT
from molehunt.pii.recognizers.china_resident_id import region_table, valid_dates
from molehunt.pii.recognizers.chinese_name import CELL_REGEX

SUFFIXES = {
    ".txt": "txt",
    ".log": "txt",
    ".csv": "csv",
    ".tsv": "csv",
    ".xlsx": "xlsx",
    ".xlsm": "xlsx",
    ".xls": "xls",
    ".docx": "docx",
    ".pdf": "pdf",
    ".zip": "zip",
}
#: Types whose value identifies a person on its own: the primary element of a match.
PRIMARY_TYPES = frozenset(
    {"china_resident_id", "china_foreign_resident_id", "passport", "china_mobile"}
)
DAMAGED_ID = "china_resident_id_damaged"
#: Share of a column's non-empty cells that must be valid to call it a column of a type.
COLUMN_SHARE = 0.5

_NAME_CELL = re.compile(CELL_REGEX.replace("{HAN}", HAN_TEXT))
#: What ``bytes.strip`` removes around a cell's value.
_SPACE = np.zeros(256, dtype=np.bool_)
_SPACE[list(b" \t\n\r\x0b\x0c")] = True
_DTD = re.compile(rb"<!(?:DOCTYPE|ENTITY)", re.IGNORECASE)
#: Characters of text scanned at a time (text files, CSV rows, documents' text).
BLOCK_CHARS = 4 << 20
#: Characters a text block carries over into the next when it is cut (longer than
#: any finding: a finding starting before the cut's keep point ends inside its block).
OVERLAP_CHARS = 4096
#: Of the overlap, characters the next block sees before what it keeps: the left
#: context a finding needs (a digit run's start, a label) to be told as in one scan.
_LEFT_CHARS = 512


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds that keep a hostile file from costing time or memory."""

    max_file_bytes: int = 512 << 20
    max_member_bytes: int = 256 << 20
    max_zip_ratio: float = 100.0
    max_zip_entries: int = 10_000
    max_zip_depth: int = 3
    max_cells: int = 20_000_000
    max_pdf_pages: int = 5_000


class Refused(Exception):
    """A file not scanned, and why (a reason for the report, not a crash)."""


@dataclass(frozen=True, slots=True)
class Detail:
    type: str
    confidence: str
    masked: str
    location: dict[str, Any]


#: A record (row or line) for exact data match: (type, keyed hash) of its values.
Record = list[tuple[str, int]]


def primary_pairs(
    records: Sequence[Record],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """(record number, hash) of every primary element (:data:`PRIMARY_TYPES`)."""
    if isinstance(records, Records):
        return records.pairs(PRIMARY_TYPES)
    pairs = [(r, h) for r, record in enumerate(records) for t, h in record if t in PRIMARY_TYPES]
    return (
        np.array([r for r, _ in pairs], dtype=np.int64),
        np.array([h for _, h in pairs], dtype=np.int64),
    )


class Records(Sequence[Record]):
    """A file's records, packed: per value a type number (1 byte) and its keyed hash
    (8 bytes), and where each record starts; read back as :data:`Record` lists. A
    record costs 9 bytes a value plus 8, not the ~450 bytes of Python lists of tuples,
    so the records of a file with millions of rows stay small."""

    __slots__ = ("_hashes", "_starts", "_type_names", "_types")

    def __init__(self, records: Iterable[Record] = ()) -> None:
        self._types = array("B")
        self._hashes = array("q")
        self._starts = array("Q", [0])
        self._type_names: list[str] = []
        for record in records:
            self.append(record)

    def append(self, record: Record) -> None:
        names = self._type_names
        for t, h in record:
            if t not in names:
                names.append(t)
            self._types.append(names.index(t))
            self._hashes.append(h)
        self._starts.append(len(self._hashes))

    def extend(self, records: Iterable[Record]) -> None:
        for record in records:
            self.append(record)

    def __len__(self) -> int:
        return len(self._starts) - 1

    @overload
    def __getitem__(self, index: int) -> Record: ...
    @overload
    def __getitem__(self, index: slice) -> list[Record]: ...
    def __getitem__(self, index: int | slice) -> Record | list[Record]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError("record index out of range")
        s, e = self._starts[index], self._starts[index + 1]
        names = self._type_names
        return [(names[t], h) for t, h in zip(self._types[s:e], self._hashes[s:e], strict=True)]

    def pairs(self, types: frozenset[str]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """(record number, hash) of every value of one of ``types``, as arrays."""
        codes = [i for i, n in enumerate(self._type_names) if n in types]
        kinds = np.frombuffer(self._types, dtype=np.uint8) if self._types else np.zeros(0, np.uint8)
        hashes = (
            np.frombuffer(self._hashes, dtype=np.int64) if self._hashes else np.zeros(0, np.int64)
        )
        starts = np.frombuffer(self._starts, dtype=np.uint64).astype(np.int64)
        at = np.flatnonzero(np.isin(kinds, codes))
        which = np.searchsorted(starts, at, "right") - 1
        return which.astype(np.int64), hashes[at].copy()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Records | list):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Records({len(self)} records, {len(self._hashes)} values)"


@dataclass(slots=True)
class FileScan:
    """What one file (with what is inside it) holds."""

    path: str
    kind: str
    findings: Counter[str] = field(default_factory=Counter)
    details: list[Detail] = field(default_factory=list)
    records: Records = field(default_factory=Records)
    errors: list[str] = field(default_factory=list)
    #: Whether a finding is above low confidence (what the verdict weighs): known
    #: without ``details``, which only a detailed scan lists.
    confident: bool = False

    def add(self, other: FileScan, member: str) -> None:
        self.findings.update(other.findings)
        self.confident |= other.confident
        for d in other.details:
            inner = d.location.get("member")
            location = {**d.location, "member": f"{member}!{inner}" if inner else member}
            self.details.append(Detail(d.type, d.confidence, d.masked, location))
        self.records.extend(other.records)
        self.errors.extend(f"{member}: {e}" for e in other.errors)


def kind_of(name: str) -> str | None:
    return SUFFIXES.get(PurePosixPath(name).suffix.lower())


@dataclass(slots=True)
class _Job:
    engine: Engine
    hasher: KeyedHasher | None
    limits: Limits
    detail: bool


def scan_file(
    path: Path,
    *,
    key: bytes | None = None,
    limits: Limits | None = None,
    detail: bool = False,
    engine: Engine | None = None,
) -> FileScan:
    """Scan one file; never raises for a bad file (the reason goes to ``errors``)."""
    job = _Job(
        engine or default_engine(), KeyedHasher(key) if key else None, limits or Limits(), detail
    )
    kind = kind_of(path.name) or "unsupported"
    result = FileScan(str(path), kind)
    try:
        size = path.stat().st_size
        if size > job.limits.max_file_bytes:
            raise Refused(f"too large: {size} bytes (limit {job.limits.max_file_bytes})")
        if kind == "unsupported":
            raise Refused(f"not a scanned type ({path.suffix or 'no suffix'})")
        if kind in ("txt", "csv"):
            _scan_stream(job, path.open, kind, result)
        else:
            _scan_bytes(job, path.read_bytes(), kind, result, depth=0)
    except Refused as e:
        result.errors.append(str(e))
    except Exception as e:  # a corrupt file must not stop the scan of the others
        result.errors.append(f"unreadable {kind}: {type(e).__name__}: {e}")
    return result


def scan_files(
    paths: Sequence[Path],
    *,
    key: bytes | None = None,
    limits: Limits | None = None,
    detail: bool = False,
    workers: int | None = None,
) -> list[FileScan]:
    """Scan files, in order, across processes (both cores) when there are several."""
    if workers == 1 or len(paths) <= 1:
        return [scan_file(p, key=key, limits=limits, detail=detail) for p in paths]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(scan_file, p, key=key, limits=limits, detail=detail) for p in paths]
        return [f.result() for f in futures]


def _scan_bytes(job: _Job, data: bytes, kind: str, result: FileScan, depth: int) -> None:
    if kind in ("txt", "csv"):
        _scan_stream(job, lambda _mode: io.BytesIO(data), kind, result)
    elif kind == "xlsx":
        _check_zip(job.limits, zipfile.ZipFile(io.BytesIO(data)), xml_parts=True)
        _scan_workbook(job, data, result)
    elif kind == "xls":
        _scan_workbook(job, data, result)
    elif kind == "docx":
        _scan_text(job, docx_text(job.limits, data), result)
    elif kind == "pdf":
        _scan_text(job, pdf_text(job.limits, data), result)
    elif kind == "zip":
        _scan_zip(job, data, result, depth)
    else:
        raise Refused(f"not a scanned type ({kind})")


def _encodings(head: bytes) -> list[tuple[str, str]]:
    """What :func:`decode` tries, in order, for a file starting with ``head``."""
    for bom, encoding in (
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if head.startswith(bom):
            return [(encoding, "replace")]
    return [("utf-8", "strict"), ("gb18030", "strict"), ("utf-8", "replace")]


def _scan_stream(
    job: _Job, open_binary: Callable[[str], IO[bytes]], kind: str, result: FileScan
) -> None:
    """A text or CSV file scanned as a stream of blocks, decoded as :func:`decode`
    does: a decoding error in UTF-8 restarts the scan in GB18030 (then UTF-8 with
    replacement), as decoding the whole file would have."""
    with open_binary("rb") as f:
        head = f.read(4)
    for encoding, errors in _encodings(head):
        attempt = FileScan(result.path, result.kind)
        try:
            with (
                open_binary("rb") as raw,
                io.TextIOWrapper(raw, encoding=encoding, errors=errors, newline="") as text,
            ):
                if kind == "csv":
                    _stream_csv(job, text, attempt)
                else:
                    _scan_text_blocks(job, iter(lambda: text.read(BLOCK_CHARS), ""), attempt)
        except UnicodeDecodeError:
            continue
        result.findings.update(attempt.findings)
        result.confident |= attempt.confident
        result.details.extend(attempt.details)
        result.records.extend(attempt.records)
        result.errors.extend(attempt.errors)
        return


def _stream_csv(job: _Job, text: IO[str], result: FileScan) -> None:
    """A CSV in blocks of whole rows of about :data:`BLOCK_CHARS` characters; columns
    classified on the first block (see the module's docstring)."""
    lines: list[str] = []
    while sum(map(len, lines)) < 4096 and (line := text.readline()):
        lines.append(line)
    sample = "".join(lines)[:4096]
    dialect = "excel-tab" if sample.count("\t") > sample.count(",") else "excel"
    rows = csv.reader(itertools.chain(lines, text), dialect)
    header = next(rows, None)
    if header is None:
        return
    columns: dict[int, _Column] = {}
    block: list[list[str]] = []
    size = 0
    first_row = 0
    for row in rows:
        block.append(row)
        size += sum(map(len, row)) + len(row)
        if size >= BLOCK_CHARS:
            _scan_rows(job, "csv", header, block, result, first_row, columns)
            first_row += len(block)
            block, size = [], 0
    if block or first_row == 0:
        _scan_rows(job, "csv", header, block, result, first_row, columns)


def decode(data: bytes) -> str:
    """Text of a file: BOMs, then UTF-8, then GB18030 (a superset of GBK and GB2312)."""
    for bom, encoding in (
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if data.startswith(bom):
            return data.decode(encoding, errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError:
        return data.decode("utf-8", errors="replace")


# -- text -------------------------------------------------------------------------


def _scan_text(job: _Job, text: str, result: FileScan) -> None:
    _scan_text_blocks(job, [text], result)


def _sized(pieces: Iterable[str]) -> Iterator[str]:
    """The text of ``pieces`` in parts of at most :data:`BLOCK_CHARS` characters."""
    for piece in pieces:
        for at in range(0, len(piece), BLOCK_CHARS):
            yield piece[at : at + BLOCK_CHARS]


def _scan_text_blocks(job: _Job, pieces: Iterable[str], result: FileScan) -> None:
    """Text given in pieces, scanned a block at a time. Each block but the last is cut
    :data:`OVERLAP_CHARS` before its end and keeps the findings starting before the
    cut plus :data:`_LEFT_CHARS`; the next block starts at the cut and keeps those
    from there on: a finding is reported once, whole, with the left context it would
    have had in one scan of the whole text."""
    parts = _sized(pieces)
    by_line: dict[int, list[tuple[str, str]]] = {}
    block = next(parts, "")
    base = line_base = skip = 0
    while True:
        following = next(parts, None)
        while following is not None and len(block) < 2 * OVERLAP_CHARS:
            block += following
            following = next(parts, None)
        last = following is None
        cut = len(block) if last else len(block) - OVERLAP_CHARS
        keep_end = len(block) if last else cut + _LEFT_CHARS
        _scan_block(job, block, skip, keep_end, base, line_base, by_line, result)
        if last:
            break
        line_base += block.count("\n", 0, cut)
        base += cut
        assert following is not None
        block, skip = block[cut:] + following, _LEFT_CHARS
        # Lines before the carried text are whole: their records are done.
        _records(job, [by_line.pop(n) for n in sorted(by_line) if n < line_base], result)
    _records(job, [by_line[n] for n in sorted(by_line)], result)


def _scan_block(
    job: _Job,
    block: str,
    skip: int,
    keep_end: int,
    base: int,
    line_base: int,
    by_line: dict[int, list[tuple[str, str]]],
    result: FileScan,
) -> None:
    """The findings of one block starting at characters ``skip``..``keep_end`` (the
    block starts at character ``base`` and line ``line_base`` of the text)."""
    found = job.engine.find(block.encode("utf-8"))
    if len(found) == 0:
        return
    # What was scanned (folded only if folding could change a finding): a character
    # for a character of ``block``, so character bounds become byte bounds in it.
    buf = found.scanned
    array = np.frombuffer(buf, dtype=np.uint8)
    if skip == 0 and keep_end == len(block):
        rows = np.arange(len(found))
    else:
        firsts = np.flatnonzero((array & 0xC0) != 0x80)
        firsts = np.append(firsts, len(array))
        starts = found.scanned_start
        rows = np.flatnonzero((starts >= firsts[skip]) & (starts < firsts[keep_end]))
    kinds = found.kind[rows]
    per = np.bincount(kinds, minlength=len(job.engine.names))
    result.findings.update(
        {n: int(c) for n, c in zip(job.engine.names, per.tolist(), strict=True) if c}
    )
    if len(rows) == 0:
        return
    result.confident |= bool(job.engine.checksum[kinds].any() or (found.level[rows] > 0).any())
    if job.hasher is None and not job.detail:
        return
    names = [job.engine.names[k] for k in kinds.tolist()]
    values = found.values(rows)
    if job.detail:
        c_start = (char_offsets(buf, found.scanned_start[rows]) + base).tolist()
        c_end = (char_offsets(buf, found.scanned_end[rows]) + base).tolist()
        for kind, level, value, s, e in zip(
            names, found.level[rows].tolist(), values, c_start, c_end, strict=True
        ):
            location = {"offset": s, "length": e - s}
            result.details.append(Detail(kind, CONFIDENCES[level], mask(value, kind), location))
    newlines = np.flatnonzero(array == 0x0A)
    lines = np.searchsorted(newlines, found.scanned_start[rows], "right") + line_base
    for kind, value, line in zip(names, values, lines.tolist(), strict=True):
        by_line.setdefault(line, []).append((kind, value))


def _records(job: _Job, rows: Iterable[list[tuple[str, str]]], result: FileScan) -> None:
    """Keyed hashes of rows holding a primary element (nothing else can match)."""
    if job.hasher is None:
        return
    names = job.engine.names
    normalizer = {n: r.normalizer for n, r in zip(names, job.engine.recognizers, strict=True)}
    for row in rows:
        if not any(t in PRIMARY_TYPES for t, _ in row):
            continue
        record: Record = []
        for t, value in row:
            h = job.hasher.hash_value(normalizer.get(t, "text"), value)
            if h is not None:
                record.append((t, h))
        result.records.append(record)


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


def _scan_workbook(job: _Job, data: bytes, result: FileScan) -> None:
    from python_calamine import CalamineWorkbook

    book = CalamineWorkbook.from_filelike(io.BytesIO(data))
    cells = 0
    for name in book.sheet_names:
        sheet = book.get_sheet_by_name(name)
        cells += sheet.total_height * max(sheet.total_width, 1)
        if cells > job.limits.max_cells:
            raise Refused(f"too many cells ({cells}, limit {job.limits.max_cells})")
        _scan_table(job, name, sheet.to_python(skip_empty_area=False), result)


@dataclass(frozen=True, slots=True)
class _Column:
    """How a column was classified (on the first block of rows holding a value in it)."""

    typed: npt.NDArray[np.bool_]  # per recognizer: a column of that type
    names: bool  # a column of people's names
    name_header: bool  # ... said so by its header


def _scan_table(job: _Job, sheet: str, rows: list[list[Any]], result: FileScan) -> None:
    if not rows:
        return
    _scan_rows(job, sheet, rows[0], rows[1:], result, 0, {})


def _scan_rows(
    job: _Job,
    sheet: str,
    header_row: Sequence[Any],
    body: Sequence[Sequence[Any]],
    result: FileScan,
    first_row: int,
    columns: dict[int, _Column],
) -> None:
    """Rows ``first_row``.. of a table (``body``, after the header), column by column.
    ``columns`` holds the classification of columns seen in earlier blocks of the same
    table: it is used as it is, and columns seen first here are added to it."""
    width = max([len(header_row), *map(len, body)])
    header = [cell_text(c).strip().lower() for c in header_row]
    header += [""] * (width - len(header))
    row_values: list[list[tuple[str, str]]] = [[] for _ in body]
    engine = job.engine
    checksum = np.array([rec.checksum for rec in engine.recognizers], dtype=np.bool_)
    # Columns at C speed: a Python step per cell is most of a spreadsheet's scan.
    for j, raw in enumerate(itertools.zip_longest(*body)):
        texts = _column_texts(raw)
        filled = sum(map(bool, map(str.strip, texts)))
        if filled == 0:
            continue
        found = engine.find("\n".join(texts).encode("utf-8"))
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
        column = columns.get(j)
        if column is None:
            per_type = np.bincount(found.kind[whole], minlength=len(engine.names))
            typed = np.array(
                [
                    any(w in header[j] for w in rec.header_words) or n >= COLUMN_SHARE * filled
                    for rec, n in zip(engine.recognizers, per_type.tolist(), strict=True)
                ],
                dtype=np.bool_,
            )
        else:
            typed = column.typed
        # In a column of the type the column is the context (at least medium).
        # A doubtful finding (an ID number's unlikely birth date) stays low.
        sure = typed[found.kind] & ~found.weak
        result.confident |= bool(sure.any()) or found.confident()
        level = (
            np.where(sure & ~found.context, 1 + checksum[found.kind], found.level)
            if job.detail
            else None
        )
        _cell_findings(job, result, found, level, cell, sheet, j, row_values, first_row)
        # Names: a name column by header, or one mostly of surname + one or two characters.
        # (A name is two to four characters: the length rules out most cells cheaply.)
        stripped = list(map(str.strip, texts))
        short = np.fromiter(map(len, stripped), dtype=np.int64, count=len(stripped))
        names = np.zeros(len(texts), dtype=np.bool_)
        for i in np.flatnonzero((short >= 2) & (short <= 4)).tolist():
            names[i] = _NAME_CELL.match(stripped[i]) is not None
        typed_names = {n for n, t in zip(engine.names, typed.tolist(), strict=True) if t}
        if column is None:
            name_header = "chinese_name" in typed_names
            column = _Column(typed, name_header or names.sum() >= 0.8 * filled, name_header)
            columns[j] = column
        if column.names:
            confidence = "high" if column.name_header else "medium"
            chosen = np.flatnonzero(names).tolist()
            if job.hasher is not None or job.detail:
                for i in chosen:
                    _cell_finding(
                        job,
                        result,
                        "chinese_name",
                        confidence,
                        stripped[i],
                        sheet,
                        i,
                        j,
                        row_values,
                        first_row,
                    )
            elif chosen:  # counts only: no call per name cell
                result.findings["chinese_name"] += len(chosen)
                result.confident = True
        # A whole address column: the cell is the address even without a street number
        # (for exact data match only).
        if (
            job.hasher is not None
            and "china_address" in typed_names
            and any(w in header[j] for w in ("地址", "住址", "address"))
        ):
            for i, t in enumerate(texts):
                if t.strip():
                    row_values[i].append(("china_address", t))
        floats = any(issubclass(t, float) for t in set(map(type, raw)))
        # Only 18-digit magnitudes can be damaged IDs: no call per number cell.
        for i in [
            i
            for i, v in enumerate(raw if floats else ())
            if isinstance(v, float) and 1e17 <= v < 1e18
        ]:
            if damaged_id(raw[i]):
                _cell_finding(
                    job,
                    result,
                    DAMAGED_ID,
                    "medium",
                    cell_text(raw[i]),
                    sheet,
                    i,
                    j,
                    row_values,
                    first_row,
                )
    _records(job, row_values, result)


def _cell_findings(
    job: _Job,
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
    job: _Job,
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


# -- documents ----------------------------------------------------------------------


def docx_text(limits: Limits, data: bytes) -> str:
    """Paragraph text of a .docx, read with defusedxml (no entity expansion)."""
    from defusedxml import ElementTree  # type: ignore[import-untyped]

    archive = zipfile.ZipFile(io.BytesIO(data))
    _check_zip(limits, archive, xml_parts=True)
    try:
        xml = _read_member(limits, archive, archive.getinfo("word/document.xml"))
    except KeyError as e:
        raise Refused("not a Word document (no word/document.xml)") from e
    root = ElementTree.fromstring(xml, forbid_dtd=True)
    w = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
    paragraphs = []
    for p in root.iter(f"{w}p"):
        paragraphs.append("".join(t.text or "" for t in p.iter(f"{w}t")))
    return "\n".join(paragraphs)


def pdf_text(limits: Limits, data: bytes) -> str:
    """The text layer of a PDF (scanned images have none: nothing is found)."""
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data))
    if reader.is_encrypted:
        raise Refused("encrypted PDF")
    if len(reader.pages) > limits.max_pdf_pages:
        raise Refused(f"too many pages ({len(reader.pages)}, limit {limits.max_pdf_pages})")
    return "\n".join(page.extract_text() or "" for page in reader.pages)


# -- zips ---------------------------------------------------------------------------


def _check_zip(limits: Limits, archive: zipfile.ZipFile, *, xml_parts: bool = False) -> None:
    infos = archive.infolist()
    if len(infos) > limits.max_zip_entries:
        raise Refused(f"zip bomb? {len(infos)} entries (limit {limits.max_zip_entries})")
    packed = sum(i.compress_size for i in infos)
    unpacked = sum(i.file_size for i in infos)
    if unpacked > limits.max_zip_ratio * max(packed, 1) and unpacked > 1 << 20:
        ratio = unpacked / max(packed, 1)
        raise Refused(f"zip bomb? expands {ratio:.0f}x (limit {limits.max_zip_ratio:.0f}x)")
    if unpacked > limits.max_member_bytes * 4:
        raise Refused(f"expands to {unpacked} bytes")
    if xml_parts:
        for info in infos:
            if info.filename.endswith((".xml", ".rels")):
                if info.flag_bits & 0x1:
                    raise Refused("encrypted")
                with archive.open(info) as f:
                    head = f.read(4096)
                if _DTD.search(head):
                    raise Refused(f"XML with a DTD in {info.filename} (billion laughs?)")


def _read_member(limits: Limits, archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """A member's bytes, never more than the limit whatever its header claims."""
    if info.flag_bits & 0x1:
        raise Refused("encrypted")
    if info.file_size > limits.max_member_bytes:
        raise Refused(f"member too large: {info.file_size} bytes")
    out = io.BytesIO()
    with archive.open(info) as f:
        while chunk := f.read(1 << 20):
            out.write(chunk)
            if out.tell() > limits.max_member_bytes:
                raise Refused("member expands past its limit")
    return out.getvalue()


class _Capped(io.RawIOBase):
    """A zip member's stream that refuses to give more than ``limit`` bytes, whatever
    its header claims."""

    def __init__(self, raw: IO[bytes], limit: int) -> None:
        self._raw, self._limit, self._read = raw, limit, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self._raw.read(len(view))
        self._read += len(data)
        if self._read > self._limit:
            raise Refused("member expands past its limit")
        view[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._raw.close()
        super().close()


def _member_opener(
    limits: Limits, archive: zipfile.ZipFile, info: zipfile.ZipInfo
) -> Callable[[str], IO[bytes]]:
    if info.flag_bits & 0x1:
        raise Refused("encrypted")
    if info.file_size > limits.max_member_bytes:
        raise Refused(f"member too large: {info.file_size} bytes")

    def opener(_mode: str) -> IO[bytes]:
        return io.BufferedReader(_Capped(archive.open(info), limits.max_member_bytes))

    return opener


def unsafe_member(name: str) -> bool:
    """Zip slip: absolute paths, drive letters or ``..`` in a member's name."""
    path = PurePosixPath(name.replace("\\", "/"))
    return path.is_absolute() or ".." in path.parts or (len(name) > 1 and name[1] == ":")


def _scan_zip(job: _Job, data: bytes, result: FileScan, depth: int) -> None:
    if depth >= job.limits.max_zip_depth:
        raise Refused(f"zips nested deeper than {job.limits.max_zip_depth}")
    archive = zipfile.ZipFile(io.BytesIO(data))
    _check_zip(job.limits, archive)
    for info in archive.infolist():
        if info.is_dir():
            continue
        name = info.filename
        kind = kind_of(name)
        if unsafe_member(name):
            result.errors.append(f"{name}: skipped, unsafe path (zip slip)")
            continue
        if kind is None:
            continue
        member = FileScan(name, kind)
        try:
            if kind in ("txt", "csv"):
                # Streamed out of the archive: a member is never held whole.
                _scan_stream(job, _member_opener(job.limits, archive, info), kind, member)
            else:
                _scan_bytes(job, _read_member(job.limits, archive, info), kind, member, depth + 1)
        except Refused as e:
            member.errors.append(str(e))
        except Exception as e:
            member.errors.append(f"unreadable {kind}: {type(e).__name__}: {e}")
        result.add(member, name)
