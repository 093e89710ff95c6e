"""PostgreSQL csvlog (``log_destination = 'csvlog'``) with pgAudit and auto_explain.

PostgreSQL 15 writes 26 columns a record; a quoted field (the message, a
statement, a JSON plan) may span lines. Records are cut without a Python loop:
a newline ends a record when the number of ``"`` before it is even (a running
count over the byte buffer in numpy), and a comma separates fields under the
same rule. Only records whose message starts like an audit, session or plan
line are turned into Arrow strings; :mod:`molehunt.ingest.pgaudit` does the rest.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from molehunt.ingest.base import ParseResult, Rejected
from molehunt.ingest.pgaudit import (
    DEFAULT_PLAN_WINDOW,
    DEFAULT_ZONES,
    MESSAGE_KINDS,
    RECORD_SCHEMA,
    Offsets,
    QuoteCounts,
    blank_to_null,
    build_events,
    empty_tables,
    invalid_utf8,
    rejected_records,
    strings_at,
)

COLUMNS = 26
# Field numbers (0-based) of the PostgreSQL 15 csvlog columns we read.
LOG_TIME, USER_NAME, DATABASE, PID, CONNECTION_FROM, SESSION_ID = 0, 1, 2, 3, 4, 5
MESSAGE, APPLICATION_NAME = 13, 22
_HEAD = 24  # bytes of a message compared with MESSAGE_KINDS
_KIND_NAMES = list(MESSAGE_KINDS.values())
_PLAN = _KIND_NAMES.index("plan")
_TIMESTAMP = re.compile(rb"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")


class PgCsvlogParser:
    """PostgreSQL csvlog with pgAudit: audited statements, connections and disconnections."""

    kind: ClassVar[str] = "pg-csvlog"
    description: ClassVar[str] = "PostgreSQL 15 csvlog with pgAudit and auto_explain (JSON) lines"

    def __init__(
        self,
        *,
        zones: Mapping[str, str] | None = None,
        plan_window: int = DEFAULT_PLAN_WINDOW,
    ) -> None:
        self.zones = dict(DEFAULT_ZONES if zones is None else zones)
        self.plan_window = plan_window

    @classmethod
    def sniff(cls, head: bytes) -> bool:
        cut = _records(head)
        if cut is None:
            return False
        starts, ends, _ = cut
        first = head[starts[0] : ends[0]]
        return bool(_TIMESTAMP.match(first)) and _field_count(first) == COLUMNS

    def parse(
        self, data: bytes, *, base_offset: int, source_id: str, path: str, final: bool = False
    ) -> ParseResult:
        """Parse the whole records at the start of ``data`` (see :class:`LogParser`).

        ``final`` says the file will grow no more (a rotated log): statements
        still waiting for their auto_explain plan are then decided without it.
        """
        cut = _records(data)
        if cut is None:
            return ParseResult(tables=empty_tables())
        starts, ends, commas = cut
        end = int(ends[-1]) + 1
        buf = np.frombuffer(data, dtype=np.uint8, count=end)
        lo = np.searchsorted(commas, starts)
        counts = np.searchsorted(commas, ends) - lo
        good = counts == COLUMNS - 1
        bad_bytes = invalid_utf8(data, end)
        if len(bad_bytes):
            good[np.searchsorted(ends, bad_bytes)] = False

        problems: list[tuple[int, str]] = []
        for i in np.flatnonzero(~good).tolist():
            reason = (
                "invalid UTF-8"
                if counts[i] == COLUMNS - 1
                else f"expected {COLUMNS} CSV fields, found {int(counts[i]) + 1}"
            )
            problems.append((base_offset + int(starts[i]), reason))

        rows = np.flatnonzero(good)
        msg_start, msg_stop = _field(buf, commas, lo[rows], starts[rows], ends[rows], MESSAGE)
        kinds = _message_kinds(buf, msg_start, msg_stop)
        keep = kinds >= 0
        rows, kinds = rows[keep], kinds[keep]
        buffer = pa.py_buffer(data)

        def text(k: int, which: Offsets = rows) -> pa.Array[Any]:
            s, e = _field(buf, commas, lo[which], starts[which], ends[which], k)
            return pc.replace_substring(strings_at(buffer, s, e), '""', '"')

        def plan_messages(offsets: Offsets) -> pa.Array[Any]:
            return text(MESSAGE, np.searchsorted(starts, offsets - base_offset))

        plan = kinds == _PLAN
        message: pa.Array[Any] = pa.nulls(len(rows), pa.string())
        if not plan.all():
            # Plans are read later, and only those a statement waits for.
            position = pa.array(np.cumsum(~plan) - 1, mask=plan)
            message = pc.take(text(MESSAGE, rows[~plan]), position)
        host, port = _split_connection_from(text(CONNECTION_FROM))
        session_id = text(SESSION_ID)
        records = pa.table(
            {
                "offset": pa.array(starts[rows] + base_offset, pa.int64()),
                "line": pa.nulls(len(rows), pa.int64()),
                "log_time": text(LOG_TIME),
                "user_name": _null_if_empty(text(USER_NAME)),
                "database": _null_if_empty(text(DATABASE)),
                "pid": text(PID),
                "host": host,
                "port": port,
                "session_id": _null_if_empty(session_id),
                "session_key": session_id,
                "app_name": _null_if_empty(text(APPLICATION_NAME)),
                "what": pa.array(_KIND_NAMES).take(kinds),
                "message": message,
                "open": pa.array(np.zeros(len(rows), dtype=bool)),
            },
            schema=RECORD_SCHEMA,
        )
        built = build_events(
            records,
            plan_messages=plan_messages,
            kind=self.kind,
            source_id=source_id,
            data_end=base_offset + end,
            final=final,
            zones=self.zones,
            plan_window=self.plan_window,
        )
        consumed = end if built.cutoff is None else built.cutoff - base_offset
        problems = sorted([p for p in problems if p[0] < base_offset + consumed] + built.rejected)
        return ParseResult(
            tables=built.tables,
            rejected=_located(problems, data, base_offset, starts, ends),
            consumed=consumed,
            records=int(np.searchsorted(starts, consumed)),
        )


def _records(data: bytes) -> tuple[Offsets, Offsets, Offsets] | None:
    """Starts and ends (at the newline) of the whole records, and the field commas."""
    buf = np.frombuffer(data, dtype=np.uint8)
    newlines = np.flatnonzero(buf == ord("\n"))
    if len(newlines) == 0:
        return None
    quotes = QuoteCounts(buf)
    ends = newlines[quotes.even(newlines)]
    if len(ends) == 0:
        return None
    end = int(ends[-1]) + 1
    commas = np.flatnonzero(buf[:end] == ord(","))
    commas = commas[quotes.even(commas)]
    starts = np.empty_like(ends)
    starts[0] = 0
    starts[1:] = ends[:-1] + 1
    return starts, ends, commas


def _field_count(record: bytes) -> int:
    buf = np.frombuffer(record, dtype=np.uint8)
    outside = (np.cumsum(buf == ord('"'), dtype=np.uint8) & 1) == 0
    return int(((buf == ord(",")) & outside).sum()) + 1


def _field(
    buf: np.ndarray,
    commas: Offsets,
    lo: Offsets,
    rec_starts: Offsets,
    rec_ends: Offsets,
    k: int,
) -> tuple[Offsets, Offsets]:
    """Byte ranges of field ``k`` of each record, without their CSV quotes."""
    start = rec_starts.copy() if k == 0 else commas[lo + k - 1] + 1
    stop = rec_ends.copy() if k == COLUMNS - 1 else commas[lo + k]
    if len(start):
        last = len(buf) - 1
        quoted = (
            (stop - start >= 2)
            & (buf[np.minimum(start, last)] == ord('"'))
            & (buf[np.maximum(stop - 1, 0)] == ord('"'))
        )
        start = start + quoted
        stop = stop - quoted
    return start, stop


def _message_kinds(buf: np.ndarray, start: Offsets, stop: Offsets) -> np.ndarray:
    """Index into :data:`_KIND_NAMES` of how each message starts, or -1."""
    kinds = np.full(len(start), -1, dtype=np.int64)
    if len(start) == 0:
        return kinds
    idx = np.minimum(start[:, None] + np.arange(_HEAD), len(buf) - 1)
    heads = buf[idx]
    for code, pattern in enumerate(MESSAGE_KINDS):
        want = np.frombuffer(pattern[:_HEAD], dtype=np.uint8)
        n = len(want)
        hit = (stop - start >= n) & (heads[:, :n] == want).all(axis=1)
        kinds[hit] = code
    return kinds


def _split_connection_from(values: pa.Array[Any]) -> tuple[pa.Array[Any], pa.Array[Any]]:
    """``host:port`` (port after the last colon, so IPv6 works) or ``[local]``."""
    parts = pc.extract_regex(values, r"^(?P<host>.*?)(?::(?P<port>\d+))?$")
    host = _null_if_empty(pc.struct_field(parts, "host"))
    port = _null_if_empty(pc.struct_field(parts, "port"))
    return host, port


def _null_if_empty(values: pa.Array[Any]) -> pa.Array[Any]:
    return blank_to_null(values)


def _located(
    problems: list[tuple[int, str]],
    data: bytes,
    base_offset: int,
    starts: Offsets,
    ends: Offsets,
) -> list[Rejected]:
    if not problems:
        return []
    # Line numbers are only known for a batch that starts the file.
    lines: list[int | None]
    if base_offset == 0:
        newlines = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == ord("\n"))
        lines = (np.searchsorted(newlines, starts) + 1).tolist()
    else:
        lines = [None] * len(starts)
    return rejected_records(
        problems,
        data,
        base_offset=base_offset,
        starts=starts.tolist(),
        ends=ends.tolist(),
        lines=lines,
    )
