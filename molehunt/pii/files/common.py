"""What a file scan gives (:class:`FileScan`, :class:`Detail`, :class:`Records`) and the
limits it keeps."""

from __future__ import annotations

from array import array
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any, overload

import numpy as np
import numpy.typing as npt

from molehunt.pii.engine import (
    Engine,
)
from molehunt.pii.keyed import KeyedHasher

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
class Job:
    """What one file scan works with: the engine, the hasher (exact data match),
    the limits, and whether details are kept."""

    engine: Engine
    hasher: KeyedHasher | None
    limits: Limits
    detail: bool


def keyed_records(job: Job, rows: Iterable[list[tuple[str, str]]], result: FileScan) -> None:
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
