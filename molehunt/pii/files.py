"""Personal data in files: text, spreadsheets, Word, PDF and zips of them.

Each file becomes text or a table of cells, which the engine scans in bulk (a
whole text, or a whole column joined by newlines). Spreadsheet columns are
classified as a whole, by header words and the share of valid cells, since a
column of IDs says more than any one cell. Hostile files are refused with a
reason before they can cost time or memory: too large, zip bombs (ratio or entry
count), unsafe member paths, encrypted or corrupt archives, XML with a DTD
(billion laughs). The records of each file (rows, lines) keep keyed hashes of their
values for exact data match, never the values.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import re
import zipfile
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

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


@dataclass(slots=True)
class FileScan:
    """What one file (with what is inside it) holds."""

    path: str
    kind: str
    findings: Counter[str] = field(default_factory=Counter)
    details: list[Detail] = field(default_factory=list)
    records: list[Record] = field(default_factory=list)
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
        data = path.read_bytes()
        _scan_bytes(job, data, kind, result, depth=0)
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
    if kind in {"txt"}:
        _scan_text(job, decode(data), result)
    elif kind == "csv":
        text = decode(data)
        dialect = "excel-tab" if text[:4096].count("\t") > text[:4096].count(",") else "excel"
        rows = list(csv.reader(io.StringIO(text), dialect))
        _scan_table(job, "csv", rows, result)
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
    found = job.engine.find(text.encode("utf-8"))
    result.findings.update(found.counts())
    result.confident |= found.confident()
    if len(found) == 0 or (job.hasher is None and not job.detail):
        return
    names = [job.engine.names[k] for k in found.kind.tolist()]
    values = found.values()
    # What was scanned (folded only if folding could change a finding): offsets in
    # it give the same character offsets as in the folded text.
    buf = found.scanned
    if job.detail:
        c_start = char_offsets(buf, found.scanned_start).tolist()
        c_end = char_offsets(buf, found.scanned_end).tolist()
        for kind, level, value, s, e in zip(
            names, found.level.tolist(), values, c_start, c_end, strict=True
        ):
            location = {"offset": s, "length": e - s}
            result.details.append(Detail(kind, CONFIDENCES[level], mask(value, kind), location))
    newlines = np.flatnonzero(np.frombuffer(buf, dtype=np.uint8) == 0x0A)
    lines = np.searchsorted(newlines, found.scanned_start, "right")
    by_line: dict[int, list[tuple[str, str]]] = {}
    for kind, value, line in zip(names, values, lines.tolist(), strict=True):
        by_line.setdefault(line, []).append((kind, value))
    _records(job, by_line.values(), result)


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


def _scan_table(job: _Job, sheet: str, rows: list[list[Any]], result: FileScan) -> None:
    if not rows:
        return
    width = max(len(r) for r in rows)
    header = [cell_text(c).strip().lower() for c in rows[0]] + [""] * (width - len(rows[0]))
    body = rows[1:]
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
        per_type = np.bincount(found.kind[whole], minlength=len(engine.names))
        typed = np.array(
            [
                any(w in header[j] for w in rec.header_words) or n >= COLUMN_SHARE * filled
                for rec, n in zip(engine.recognizers, per_type.tolist(), strict=True)
            ],
            dtype=np.bool_,
        )
        # In a column of the type the column is the context (at least medium).
        # A doubtful finding (an ID number's unlikely birth date) stays low.
        sure = typed[found.kind] & ~found.weak
        result.confident |= bool(sure.any()) or found.confident()
        level = (
            np.where(sure & ~found.context, 1 + checksum[found.kind], found.level)
            if job.detail
            else None
        )
        _cell_findings(job, result, found, level, cell, sheet, j, row_values)
        # Names: a name column by header, or one mostly of surname + one or two characters.
        # (A name is two to four characters: the length rules out most cells cheaply.)
        stripped = list(map(str.strip, texts))
        short = np.fromiter(map(len, stripped), dtype=np.int64, count=len(stripped))
        names = np.zeros(len(texts), dtype=np.bool_)
        for i in np.flatnonzero((short >= 2) & (short <= 4)).tolist():
            names[i] = _NAME_CELL.match(stripped[i]) is not None
        typed_names = {n for n, t in zip(engine.names, typed.tolist(), strict=True) if t}
        name_header = "chinese_name" in typed_names
        if name_header or names.sum() >= 0.8 * filled:
            confidence = "high" if name_header else "medium"
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
                    job, result, DAMAGED_ID, "medium", cell_text(raw[i]), sheet, i, j, row_values
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
            location = {"sheet": sheet, "row": i + 2, "column": column + 1}
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
) -> None:
    result.findings[kind] += 1
    result.confident |= confidence != "low"
    if kind != DAMAGED_ID:
        row_values[row].append((kind, value))
    if job.detail:
        # Rows and columns are 1-based as a spreadsheet shows them; row 1 is the header.
        location = {"sheet": sheet, "row": row + 2, "column": column + 1}
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
            _scan_bytes(job, _read_member(job.limits, archive, info), kind, member, depth + 1)
        except Refused as e:
            member.errors.append(str(e))
        except Exception as e:
            member.errors.append(f"unreadable {kind}: {type(e).__name__}: {e}")
        result.add(member, name)
