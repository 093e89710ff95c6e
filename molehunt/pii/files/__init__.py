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

Its parts: :mod:`.scan` (one file or many, by kind; zips), :mod:`.streams` (text
and CSV in blocks), :mod:`.cells` (tables of cells), :mod:`.workbook` (xlsx,
xls), :mod:`.documents` (docx, PDF), :mod:`.archives` (zip checks) and
:mod:`.common` (what a scan gives, the limits).
"""

from __future__ import annotations

from molehunt.pii.files.archives import unsafe_member
from molehunt.pii.files.common import (
    COLUMN_SHARE,
    DAMAGED_ID,
    PRIMARY_TYPES,
    SUFFIXES,
    Detail,
    FileScan,
    Limits,
    Record,
    Records,
    Refused,
    kind_of,
    primary_pairs,
)
from molehunt.pii.files.documents import docx_text, pdf_text
from molehunt.pii.files.scan import scan_file, scan_files
from molehunt.pii.files.streams import decode

__all__ = [
    "COLUMN_SHARE",
    "DAMAGED_ID",
    "PRIMARY_TYPES",
    "SUFFIXES",
    "Detail",
    "FileScan",
    "Limits",
    "Record",
    "Records",
    "Refused",
    "decode",
    "docx_text",
    "kind_of",
    "pdf_text",
    "primary_pairs",
    "scan_file",
    "scan_files",
    "unsafe_member",
]
