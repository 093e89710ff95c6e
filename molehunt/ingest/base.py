"""What every parser returns, and the two kinds of parser.

Parsers are pure: bytes (or a small reference file) in, Arrow tables of the
normalised schema and a list of :class:`Rejected` records out. They never touch
the store, so the same parser can run inside Spark (``mapInArrow``).

* A :class:`LogParser` reads an append-only log in byte chunks. The runner hands
  it ``data`` that starts on a record boundary at byte ``base_offset`` of the
  file; the parser says up to where it consumed whole records
  (:attr:`ParseResult.consumed`), so the runner can checkpoint exactly there.
  Event ids must depend only on the source id and the record's position in the
  file (see :func:`event_id`), never on how the file was cut into chunks, so a
  re-run or a crash can neither lose nor duplicate an event.
* A :class:`ReferenceParser` reads a whole snapshot (HR roster, accounts, ...).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from molehunt.errors import InputError

#: Characters of a rejected record kept as its raw text, in every parser (the rest
#: is counted, and replay re-reads the file).
RAW_LIMIT = 64 * 1024


@dataclass(frozen=True, slots=True)
class Rejected:
    """A record set aside: where it was, why, and its raw text (possibly masked)."""

    reason: str
    line: int | None = None
    offset: int | None = None
    raw: str | None = None
    length: int | None = None  # bytes of the record in the file, to re-read it on replay


class FormatMismatchError(InputError):
    """A file whose records do not fit the configured format (e.g. another
    ``log_line_prefix``): it is refused whole, with the reason and the setting to fix,
    and its checkpoint does not move, so nothing of it is lost."""


@dataclass(slots=True)
class ParseResult:
    """Tables keyed by store table name (``events_db``, ``record_access``...)."""

    tables: dict[str, pa.Table] = field(default_factory=dict)
    rejected: list[Rejected] = field(default_factory=list)
    consumed: int = 0  # bytes of ``data`` made of whole records (LogParser only)
    records: int = 0  # records (lines) consumed, good and bad
    #: Lines consumed that hold no event by design (durations, checkpoints...), by reason.
    skipped: dict[str, int] = field(default_factory=dict)
    #: Why the bytes after ``consumed`` wait (e.g. a cursor waiting for its
    #: auto_explain plan), for ``molehunt status``; None: nothing but an unfinished
    #: last line waits.
    pending: str | None = None

    @property
    def events(self) -> int:
        return sum(t.num_rows for name, t in self.tables.items() if name.startswith("events_"))


def event_id(source_id: str, offset: int) -> str:
    """The deterministic id of the record that starts at byte ``offset`` of a source."""
    return f"{source_id}:{offset:012d}"


# The four digits of 0..9999, each as one 32-bit word.
_DIGIT_WORDS = np.frombuffer("".join(f"{i:04d}" for i in range(10_000)).encode(), dtype="<u4")


def event_ids(source_id: str, offsets: npt.NDArray[np.int64]) -> pa.Array[Any]:
    """``event_id(source_id, offset)`` of each offset, formatted in numpy (four digits a step)."""
    n = len(offsets)
    if n == 0:
        return pa.array([], pa.string())
    if offsets.min() < 0 or offsets.max() >= 10**12:
        return pa.array([event_id(source_id, int(o)) for o in offsets], pa.string())
    head = np.frombuffer(f"{source_id}:".encode(), dtype=np.uint8)
    width = len(head) + 12
    text = np.empty((n, width), dtype=np.uint8)
    text[:, : len(head)] = head
    digits = np.empty((n, 3), dtype="<u4")
    rest = offsets.astype(np.int64)
    for k in (2, 1, 0):
        digits[:, k] = _DIGIT_WORDS[rest % 10_000]
        rest //= 10_000
    text[:, len(head) :] = digits.view(np.uint8)
    bounds = np.arange(n + 1, dtype=np.int64) * width
    ids = pa.Array.from_buffers(
        pa.large_string(), n, [None, pa.py_buffer(bounds.data), pa.py_buffer(text.reshape(-1).data)]
    )
    return pc.cast(ids, pa.string())


class LogParser(Protocol):
    """Reads an append-only log format in chunks."""

    kind: ClassVar[str]
    description: ClassVar[str]

    @classmethod
    def sniff(cls, head: bytes) -> bool:
        """Whether a file starting with ``head`` (up to 64 KiB) is of this kind."""
        ...

    def parse(self, data: bytes, *, base_offset: int, source_id: str, path: str) -> ParseResult:
        """Parse the whole records at the start of ``data``.

        A record not yet complete at the end of ``data`` (no final newline: the
        writer may still be writing it) is left unconsumed; the runner hands it
        back with more data next time, and ``molehunt status`` shows it pending.
        Rejected records carry their byte offset in the file (and line number
        where the parser knows it).
        """
        ...


class FileParser(Protocol):
    """Reads a whole structured file (EVTX) that the runner cannot cut into chunks."""

    kind: ClassVar[str]
    description: ClassVar[str]
    #: Bytes (start, end) that identify the file while it grows: a file header that
    #: the writer keeps rewriting cannot serve, its first record can.
    head_range: ClassVar[tuple[int, int]]

    @classmethod
    def sniff(cls, head: bytes) -> bool: ...

    def parse_path(self, path: Path, *, source_id: str, resume: int) -> ParseResult:
        """Parse records after position ``resume`` (e.g. an EVTX record number);
        ``ParseResult.consumed`` is the new resume position."""
        ...


class ReferenceParser(Protocol):
    """Reads a whole reference snapshot."""

    kind: ClassVar[str]
    description: ClassVar[str]

    @classmethod
    def sniff_header(cls, columns: list[str]) -> bool:
        """Whether a table with these header columns is of this kind."""
        ...

    def parse_file(self, path: Path) -> ParseResult:
        """Parse the snapshot into one table named after the kind's store table."""
        ...
