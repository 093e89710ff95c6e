"""Text and CSV files read as streams of blocks, so memory does not grow with the file.

A text block ends on a cut carried over into the next block with
:data:`OVERLAP_CHARS` characters of overlap, so a finding across a cut is found
whole, once; a CSV is read in blocks of whole rows, its columns classified on the
first block (:mod:`molehunt.pii.files.cells`).
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
from collections.abc import Callable, Iterable, Iterator
from typing import IO

import numpy as np

from molehunt.pii.engine import (
    CONFIDENCES,
    char_offsets,
    mask,
)
from molehunt.pii.files.cells import Column, scan_rows
from molehunt.pii.files.common import Detail, FileScan, Job, keyed_records

#: Characters of text scanned at a time (text files, CSV rows, documents' text).
BLOCK_CHARS = 4 << 20
#: Characters a text block carries over into the next when it is cut (longer than
#: any finding: a finding starting before the cut's keep point ends inside its block).
OVERLAP_CHARS = 4096
#: Of the overlap, characters the next block sees before what it keeps: the left
#: context a finding needs (a digit run's start, a label) to be told as in one scan.
_LEFT_CHARS = 512


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


def scan_stream(
    job: Job, open_binary: Callable[[str], IO[bytes]], kind: str, result: FileScan
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


def _stream_csv(job: Job, text: IO[str], result: FileScan) -> None:
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
    columns: dict[int, Column] = {}
    block: list[list[str]] = []
    size = 0
    first_row = 0
    for row in rows:
        block.append(row)
        size += sum(map(len, row)) + len(row)
        if size >= BLOCK_CHARS:
            scan_rows(job, "csv", header, block, result, first_row, columns)
            first_row += len(block)
            block, size = [], 0
    if block or first_row == 0:
        scan_rows(job, "csv", header, block, result, first_row, columns)


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


def scan_text(job: Job, text: str, result: FileScan) -> None:
    """A text already whole in memory (a document's), scanned in blocks."""
    _scan_text_blocks(job, [text], result)


def _sized(pieces: Iterable[str]) -> Iterator[str]:
    """The text of ``pieces`` in parts of at most :data:`BLOCK_CHARS` characters."""
    for piece in pieces:
        for at in range(0, len(piece), BLOCK_CHARS):
            yield piece[at : at + BLOCK_CHARS]


def _scan_text_blocks(job: Job, pieces: Iterable[str], result: FileScan) -> None:
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
        keyed_records(job, [by_line.pop(n) for n in sorted(by_line) if n < line_base], result)
    keyed_records(job, [by_line[n] for n in sorted(by_line)], result)


def _scan_block(
    job: Job,
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
