"""What a PostgreSQL log record is, once a format parser has cut it.

:data:`RECORD_SCHEMA` is the table a format parser hands to
:func:`~molehunt.ingest.postgres.events.build_events`; :data:`MESSAGE_KINDS` are
the message starts that matter, :data:`SKIP_REASONS` the ones counted as skipped
by design; :func:`rejected_records` gives the raw text of a record set aside.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from molehunt.ingest.base import RAW_LIMIT, Rejected
from molehunt.ingest.postgres.kernels import Mask, Offsets, as_mask, equals, windows

#: Columns of the records a format parser hands over; ``open`` marks a last
#: record that more bytes could still extend (its payload may be cut short).
#: ``time_us`` is the log time in UTC microseconds where the format parser read
#: it itself (:func:`log_times_at`); where it is NULL, ``log_time`` is read.
#: ``pid`` and ``port`` are ``try_cast(... AS INTEGER)`` of the text.
_RECORD_COLUMNS: list[tuple[str, pa.DataType]] = [
    ("offset", pa.int64()),
    ("line", pa.int64()),
    ("log_time", pa.string()),
    ("time_us", pa.int64()),
    ("user_name", pa.string()),
    ("database", pa.string()),
    ("pid", pa.int32()),
    ("host", pa.string()),
    ("port", pa.int32()),
    ("session_id", pa.string()),
    ("session_key", pa.string()),
    ("app_name", pa.string()),
    ("what", pa.string()),
    ("message", pa.string()),
    ("open", pa.bool_()),
]
RECORD_SCHEMA = pa.schema(_RECORD_COLUMNS)

#: Starts of the messages that matter, and what a record so started is (``plan``
#: and ``shutdown`` are confirmed on the whole message).
MESSAGE_KINDS: dict[bytes, str] = {
    b"AUDIT: ": "audit",
    b"connection authorized: ": "connect",
    b"disconnection: ": "disconnect",
    b"duration: ": "plan",
    b"database system is shut down": "shutdown",
}
#: The kinds in that order: :func:`message_kinds` gives a record's index here.
KIND_NAMES = list(MESSAGE_KINDS.values())
PLAN_KIND = KIND_NAMES.index("plan")
AUDIT_KIND = KIND_NAMES.index("audit")


class Records:
    """The records of a batch whose time is known, with numpy views of what is asked often."""

    __slots__ = ("micros", "offsets", "open", "table", "what")

    def __init__(
        self,
        table: pa.Table,
        what: pa.Array[Any],
        offsets: Offsets,
        micros: Offsets,
    ) -> None:
        self.table = table
        self.what = what
        self.offsets = offsets
        self.micros = micros
        self.open = as_mask(table["open"].combine_chunks().fill_null(False))

    def rows(self, kind: str) -> Offsets:
        return np.flatnonzero(as_mask(pc.equal(self.what, pa.scalar(kind))))

    def column(self, name: str, rows: Offsets | None = None) -> pa.Array[Any]:
        values = self.table[name].combine_chunks()
        return values if rows is None else values.take(pa.array(rows, pa.int64()))


def rejected_records(
    problems: list[tuple[int, str]],
    data: bytes,
    *,
    base_offset: int,
    starts: list[int],
    ends: list[int],
    lines: list[int | None],
) -> list[Rejected]:
    """:class:`Rejected` entries for ``problems``, with the raw text of each record."""
    index = {s: i for i, s in enumerate(starts)}
    out: list[Rejected] = []
    for offset, reason in problems:
        i = index.get(offset - base_offset)
        raw = None
        line = None
        if i is not None:
            raw = _raw(data[starts[i] : ends[i]])
            line = lines[i]
        out.append(Rejected(reason=reason, line=line, offset=offset, raw=raw))
    return out


_FIRST_WORD = 8


def message_kinds(
    data: npt.NDArray[np.uint8],
    start: Offsets,
    stop: Offsets,
    starts: Mapping[bytes, str] = MESSAGE_KINDS,
) -> Offsets:
    """Index into ``starts`` (by default :data:`MESSAGE_KINDS`) of how each message
    ``data[start:stop]`` starts, or -1.

    The first 8 bytes of every message are compared as one integer; only the
    few messages whose first word fits a longer start are read further.
    """
    kinds = np.full(len(start), -1, dtype=np.int64)
    if len(start) == 0:
        return kinds
    length = stop - start
    first = windows(data, start, _FIRST_WORD).view("<u8")[:, 0]
    for code, pattern in enumerate(starts):
        head = pattern[:_FIRST_WORD].ljust(_FIRST_WORD, b"\0")
        keep = min(len(pattern), _FIRST_WORD)
        mask = np.frombuffer(b"\xff" * keep + b"\0" * (_FIRST_WORD - keep), dtype="<u8")[0]
        want = np.frombuffer(head, dtype="<u8")[0]
        hit = np.flatnonzero(((first & mask) == want) & (length >= len(pattern)) & (kinds < 0))
        if len(pattern) > _FIRST_WORD and len(hit):
            hit = hit[equals(data, start[hit], stop[hit], pattern, prefix=True)]
        kinds[hit] = code
    return kinds


#: Messages that hold no audit event by design, by how they start: what
#: ``ParseResult.skipped`` counts them as ("not an audit record: <reason>").
SKIP_REASONS: dict[bytes, str] = {
    b"duration: ": "duration",
    b"statement: ": "statement",
    b"execute ": "statement",
    b"checkpoint": "checkpoint",
    b"restartpoint": "checkpoint",
    b"connection received: ": "connection received",
    b"connection authenticated: ": "connection authenticated",
    b"automatic vacuum": "autovacuum",
    b"automatic analyze": "autovacuum",
    b"temporary file: ": "temporary file",
    b"database system": "server start or stop",
    b"listening on ": "server start or stop",
    b"starting PostgreSQL": "server start or stop",
    b"received ": "server start or stop",
    b"shutting down": "server start or stop",
    b"redirecting log output": "server start or stop",
    b"ending log output": "server start or stop",
    b"parameter ": "configuration",
    b"received SIGHUP": "configuration",
    b"process ": "lock wait",
}
_SKIP_NAMES = [*SKIP_REASONS.values(), "other message"]
_SKIP_STARTS = sorted(SKIP_REASONS, key=len, reverse=True)  # the longest start wins
_SKIP_CODES = np.array([_SKIP_NAMES.index(SKIP_REASONS[k]) for k in _SKIP_STARTS] + [-1])


def skip_codes(data: npt.NDArray[np.uint8], start: Offsets, stop: Offsets) -> Offsets:
    """Why each message ``data[start:stop]`` (not an event) is skipped, as codes
    for :func:`tally_skipped`."""
    found = message_kinds(data, start, stop, dict.fromkeys(_SKIP_STARTS, ""))
    codes = _SKIP_CODES[found]
    codes[found < 0] = len(_SKIP_NAMES) - 1
    return np.asarray(codes, dtype=np.int64)


def tally_skipped(
    codes: Offsets, records: pa.Table | None = None, limit: int | None = None
) -> dict[str, int]:
    """``ParseResult.skipped`` from :func:`skip_codes`, and from the ``records``
    handed to :func:`build_events` that are no event (``duration:`` lines, plans
    among them; the shut-down message) before file offset ``limit``."""
    counts = np.bincount(codes, minlength=len(_SKIP_NAMES)) if len(codes) else None
    also: dict[str, int] = {}
    if records is not None and records.num_rows:
        what = records["what"]
        before: Mask | bool = True
        if limit is not None:
            before = np.asarray(records["offset"].to_numpy(), dtype=np.int64) < limit
        also["duration"] = int((as_mask(pc.equal(what, pa.scalar("plan"))) & before).sum())
        shutdown = as_mask(pc.equal(what, pa.scalar("shutdown"))) & before
        also["server start or stop"] = int(shutdown.sum())
    out: dict[str, int] = {}
    for code, name in enumerate(_SKIP_NAMES):
        n = (int(counts[code]) if counts is not None else 0) + also.get(name, 0)
        if n:
            reason = f"not an audit record: {name}"
            out[reason] = out.get(reason, 0) + n
    return out


def _raw(chunk: bytes) -> str:
    return chunk[:RAW_LIMIT].decode("utf-8", errors="replace")
