"""PostgreSQL csvlog (``log_destination = 'csvlog'``) with pgAudit and auto_explain.

PostgreSQL 14-17 write 26 columns a record, 13 wrote 24, 9.0-12 23 and 8.4 22
(:data:`LAYOUTS`): a batch is read in the layout most of its records have, and a
record of another count is rejected beside it. A quoted field (the message, a
statement, a JSON plan) may span lines; a quote left open (a record cut short)
swallows nothing: the cut starts afresh at the next line that starts with a
timestamp. Records are cut without a Python loop:
a newline ends a record when the number of ``"`` before it is even (a running
count over the byte buffer in numpy), and a comma separates fields under the
same rule. Only records whose message starts like an audit, session or plan
line are turned into Arrow strings, and their AUDIT payloads split, a few MiB
of the batch at a time (so the bytes each field is fetched from are still in
cache); :mod:`molehunt.ingest.postgres.events` does the rest. The records
are cut in :mod:`molehunt.ingest.postgres.csv_records`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from molehunt.ingest.base import ParseResult, Rejected
from molehunt.ingest.postgres.audit import SplitPayloads, audit_fields
from molehunt.ingest.postgres.csv_records import (
    COLUMNS,
    LAYOUTS,
    POSITION,
    cut_records,
    field_count,
    layout,
    resynced,
)
from molehunt.ingest.postgres.events import build_events
from molehunt.ingest.postgres.kernels import (
    Mask,
    Offsets,
    as_mask,
    blank_to_null,
    ints_at,
    invalid_utf8,
    strings_at,
    to_int32,
    windows,
    with_nulls,
)
from molehunt.ingest.postgres.plans import DEFAULT_PLAN_WINDOW
from molehunt.ingest.postgres.records import (
    AUDIT_KIND,
    KIND_NAMES,
    PLAN_KIND,
    RECORD_SCHEMA,
    message_kinds,
    rejected_records,
    skip_codes,
    tally_skipped,
)
from molehunt.ingest.postgres.tables import empty_tables
from molehunt.ingest.postgres.times import log_times_at
from molehunt.ingest.postgres.zones import log_zones

if TYPE_CHECKING:
    from molehunt.config import Settings

# Field numbers (0-based) of the csvlog columns we read.
LOG_TIME, USER_NAME, DATABASE, PID, CONNECTION_FROM, SESSION_ID = 0, 1, 2, 3, 4, 5
MESSAGE, APPLICATION_NAME = 13, 22
_READ = [LOG_TIME, USER_NAME, DATABASE, PID, CONNECTION_FROM, SESSION_ID, APPLICATION_NAME]

_TIMESTAMP = re.compile(rb"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")


class PgCsvlogParser:
    """PostgreSQL csvlog with pgAudit: audited statements, connections and disconnections."""

    kind: ClassVar[str] = "pg-csvlog"
    description: ClassVar[str] = (
        "PostgreSQL csvlog (8.4 to 17 layouts) with pgAudit and auto_explain (JSON) lines"
    )

    def __init__(
        self,
        *,
        zones: Mapping[str, str] | None = None,
        log_timezone: str | None = None,
        plan_window: int = DEFAULT_PLAN_WINDOW,
    ) -> None:
        # The server's log_timezone settles the abbreviations it prints (CST...).
        self.zones = {**log_zones(log_timezone), **(zones or {})}
        self.plan_window = plan_window

    @classmethod
    def from_settings(cls, settings: Settings) -> PgCsvlogParser:
        """The parser for a server whose log_timezone is ``pg_log_timezone`` (or ``timezone``)."""
        return cls(log_timezone=settings.pg_log_timezone or settings.timezone)

    @classmethod
    def sniff(cls, head: bytes) -> bool:
        cut = cut_records(head)
        if cut is None:
            return False
        ends, _, _ = cut
        first = head[: ends[0]]
        return bool(_TIMESTAMP.match(first.lstrip(b'"'))) and field_count(first) in LAYOUTS

    def parse(
        self, data: bytes, *, base_offset: int, source_id: str, path: str, final: bool = False
    ) -> ParseResult:
        """Parse the whole records at the start of ``data`` (see :class:`LogParser`).

        ``final`` says the file will grow no more (a rotated log): statements
        still waiting for their auto_explain plan are then decided without it.
        """
        cut = _whole_records(data, final)
        if cut is None:
            return ParseResult(tables=empty_tables())
        batch = _Batch.of(data, cut, base_offset)
        pieces = self._read(data, batch, base_offset)
        records = pa.concat_tables([piece.records for piece in pieces]).combine_chunks()
        rows = np.concatenate([piece.rows for piece in pieces])
        msg_start = np.concatenate([piece.msg_start for piece in pieces])
        msg_stop = np.concatenate([piece.msg_stop for piece in pieces])
        fields = pa.concat_tables([piece.fields for piece in pieces])
        texts = [piece.payloads for piece in pieces]
        buffer = pa.py_buffer(data)

        def payload_text(which: Offsets) -> pa.Array[Any]:
            return (
                pa.chunked_array(texts, pa.string())
                .take(pa.array(which, pa.int64()))
                .combine_chunks()
            )

        def plan_messages(offsets: Offsets) -> pa.Array[Any]:
            which = np.searchsorted(batch.starts[rows], offsets - base_offset)
            return _unescape(strings_at(buffer, msg_start[which], msg_stop[which]))

        built = build_events(
            records,
            payloads=SplitPayloads(fields, payload_text),
            plan_messages=plan_messages,
            kind=self.kind,
            source_id=source_id,
            data_end=base_offset + batch.end,
            final=final,
            zones=self.zones,
            plan_window=self.plan_window,
        )
        consumed = batch.end if built.cutoff is None else built.cutoff - base_offset
        limit = base_offset + consumed
        problems = sorted([p for p in batch.problems if p[0] < limit] + built.rejected)
        skipped_at = np.concatenate([piece.skipped_at for piece in pieces])
        skipped_why = np.concatenate([piece.skipped_why for piece in pieces])
        return ParseResult(
            tables=built.tables,
            rejected=_located(problems, data, base_offset, batch.starts, batch.ends),
            consumed=consumed,
            records=int(np.searchsorted(batch.starts, consumed)),
            pending=built.pending,
            skipped=tally_skipped(skipped_why[skipped_at < limit], records, limit),
        )

    def _read(self, data: bytes, batch: _Batch, base_offset: int) -> list[_Piece]:
        """The well-formed records of the batch, read a slice of it at a time: every
        field is fetched from its own place in the buffer, and a slice's bytes stay
        in cache for all those fetches where the whole batch would not."""
        buf = np.frombuffer(data, dtype=np.uint8, count=batch.end)
        buffer = pa.py_buffer(data)
        good_rows = np.flatnonzero(batch.good)
        cuts = np.searchsorted(batch.starts[good_rows], np.arange(_SLICE, batch.end, _SLICE))
        pieces: list[_Piece] = []
        audits = 0
        for part in [p for p in np.split(good_rows, cuts) if len(p)] or [good_rows]:
            piece = _read_piece(
                buf,
                buffer,
                batch.commas,
                batch.lo,
                batch.starts,
                batch.ends,
                part,
                base_offset,
                audits,
                self.zones,
                batch.columns,
            )
            audits += piece.audits
            pieces.append(piece)
        return pieces


def _whole_records(data: bytes, final: bool) -> tuple[Offsets, Offsets, Offsets] | None:
    """The whole records of ``data`` (:func:`resynced`); when the file grows no
    more, the bytes after the last of them are one more (broken) record."""
    cut = resynced(data)
    if final and data.endswith(b"\n") and (cut is None or int(cut[0][-1]) < len(data) - 1):
        # The file grows no more: bytes after the last whole record (an
        # unclosed quote) are one broken record, not a wait for ever.
        ends0, commas0, before0 = cut or (
            np.zeros(0, dtype=np.int64),
            np.zeros(0, dtype=POSITION),
            np.zeros(0, dtype=np.int64),
        )
        last = int(before0[-1]) if len(before0) else 0
        cut = (np.append(ends0, len(data) - 1), commas0, np.append(before0, last))
    return cut


@dataclass(frozen=True, slots=True)
class _Batch:
    """The records of a batch: their bounds, commas, layout, and which are well formed
    (the others are in ``problems``)."""

    starts: Offsets
    ends: Offsets
    commas: Offsets
    lo: Offsets  # index of each record's first comma in ``commas``
    columns: int
    good: Mask
    problems: list[tuple[int, str]]
    end: int  # just past the last record

    @classmethod
    def of(cls, data: bytes, cut: tuple[Offsets, Offsets, Offsets], base_offset: int) -> _Batch:
        ends, commas, before = cut
        starts = np.empty_like(ends)
        starts[0] = 0
        starts[1:] = ends[:-1] + 1
        end = int(ends[-1]) + 1
        lo = np.empty_like(before)
        lo[0] = 0
        lo[1:] = before[:-1]
        counts = before - lo
        columns = layout(counts + 1)
        good = counts == columns - 1
        bad_bytes = invalid_utf8(data, end)
        if len(bad_bytes):
            good[np.searchsorted(ends, bad_bytes)] = False
        problems: list[tuple[int, str]] = []
        for i in np.flatnonzero(~good).tolist():
            reason = (
                "invalid UTF-8"
                if counts[i] == columns - 1
                else "unclosed quote: the record is cut short or garbled"
                if data.count(b'"', int(starts[i]), int(ends[i])) % 2
                else f"expected {columns} CSV fields, found {int(counts[i]) + 1} (the "
                f"other records are {LAYOUTS[columns]} csvlog)"
            )
            problems.append((base_offset + int(starts[i]), reason))
        return cls(starts, ends, commas, lo, columns, good, problems, end)


#: Bytes of a batch read at a time (see :meth:`PgCsvlogParser.parse`): small enough
#: to stay in cache, large enough that the per-slice calls cost little (4 MiB
#: measured best of 1-16 MiB on the realistic benchmark log).
_SLICE = 4 << 20


@dataclass(frozen=True, slots=True)
class _Piece:
    """The interesting records of one slice of a batch."""

    rows: Offsets  # record numbers in the batch
    msg_start: Offsets
    msg_stop: Offsets
    records: pa.Table  # RECORD_SCHEMA
    payloads: pa.Array[Any]  # the AUDIT payloads, unescaped
    fields: pa.Table  # audit_fields of the payloads (offset: position in the batch)
    audits: int
    skipped_at: Offsets  # file offsets of the records that hold no event
    skipped_why: Offsets  # and why (pgaudit.skip_codes)


def _read_piece(
    buf: np.ndarray,
    buffer: pa.Buffer,
    commas: Offsets,
    lo: Offsets,
    starts: Offsets,
    ends: Offsets,
    rows: Offsets,
    base_offset: int,
    first_audit: int,
    zones: Mapping[str, str],
    columns: int,
) -> _Piece:
    """The records ``rows`` (well formed, ``columns`` fields) whose message matters,
    as :data:`RECORD_SCHEMA`."""
    fields = _Fields(buf, commas, lo[rows], starts[rows], ends[rows], columns)
    msg_start, msg_stop = fields.at(MESSAGE)
    kinds = _message_kinds(buf, msg_start, msg_stop)
    other = np.flatnonzero(kinds < 0)
    skipped_at = starts[rows[other]] + base_offset
    skipped_why = skip_codes(buf, msg_start[other], msg_stop[other])
    keep = np.flatnonzero(kinds >= 0)
    rows, kinds = rows[keep], kinds[keep]
    msg_start, msg_stop = msg_start[keep], msg_stop[keep]
    fields = fields.take(keep)
    # PostgreSQL 8.4 has no application_name: an empty range reads as NULL.
    at = fields.ranges([k for k in _READ if k < columns])
    at.setdefault(APPLICATION_NAME, (at[LOG_TIME][0], at[LOG_TIME][0]))

    def text(k: int, *, blank_is_null: bool = False) -> pa.Array[Any]:
        s, e = at[k]
        return _unescape(strings_at(buffer, s, e, valid=e > s if blank_is_null else None))

    # AUDIT payloads go separately; plans are read later, and only those a
    # statement waits for.
    audit = kinds == AUDIT_KIND
    talk = ~audit & (kinds != PLAN_KIND)
    # Few messages are read as text: gathering only theirs (then placing them)
    # costs far less than a NULL for every other record.
    said = np.flatnonzero(talk)
    message = _spread(_unescape(strings_at(buffer, msg_start[said], msg_stop[said])), talk)
    payloads = _unescape(strings_at(buffer, msg_start[audit], msg_stop[audit]))
    audits = len(payloads)
    split = audit_fields(pa.array(np.arange(audits) + first_audit, pa.int64()), payloads)
    host, port = _split_connection_from(buf, buffer, *at[CONNECTION_FROM])
    # Times and the pid are read as numbers from the bytes: only a time the
    # digits cannot settle is made text, for build_events to read.
    micros, timed = log_times_at(buf, *at[LOG_TIME], zones)
    log_time: pa.Array[Any] = pa.nulls(len(rows), pa.string())
    if not timed.all():
        s, e = at[LOG_TIME]
        log_time = _unescape(strings_at(buffer, s, e, valid=~timed))
    session_key = text(SESSION_ID)
    session_id = with_nulls(session_key, at[SESSION_ID][1] > at[SESSION_ID][0])
    records = pa.table(
        {
            "offset": pa.array(starts[rows] + base_offset, pa.int64()),
            "line": pa.nulls(len(rows), pa.int64()),
            "log_time": log_time,
            "time_us": pa.array(micros, pa.int64(), mask=~timed),
            "user_name": text(USER_NAME, blank_is_null=True),
            "database": text(DATABASE, blank_is_null=True),
            "pid": ints_at(buf, buffer, *at[PID]),
            "host": host,
            "port": port,
            "session_id": session_id,
            "session_key": session_key,
            "app_name": text(APPLICATION_NAME, blank_is_null=True),
            "what": pa.array(KIND_NAMES).take(kinds),
            "message": message,
            "open": pa.array(np.zeros(len(rows), dtype=bool)),
        },
        schema=RECORD_SCHEMA,
    )
    return _Piece(
        rows, msg_start, msg_stop, records, payloads, split, audits, skipped_at, skipped_why
    )


def _spread(values: pa.Array[Any], where: Mask) -> pa.Array[Any]:
    """``values`` (no NULLs) at the rows where ``where`` holds, in order; NULL elsewhere.

    Only the offsets are laid out again: the text stays where it is.
    """
    buffers: list[Any] = values.buffers()
    ends = np.frombuffer(buffers[1], dtype=np.int32)[
        values.offset : values.offset + len(values) + 1
    ]
    offsets = np.empty(len(where) + 1, dtype=np.int32)
    offsets[0] = ends[0]
    offsets[1:] = ends[np.cumsum(where)]
    valid = pa.py_buffer(np.packbits(where, bitorder="little").data)
    text = buffers[2] if buffers[2] is not None else pa.py_buffer(b"")
    return pa.Array.from_buffers(pa.string(), len(where), [valid, pa.py_buffer(offsets.data), text])


class _Fields:
    """Byte ranges of the fields of some records, without their CSV quotes."""

    __slots__ = ("buf", "columns", "commas", "ends", "lo", "starts")

    def __init__(
        self,
        buf: np.ndarray,
        commas: Offsets,
        lo: Offsets,
        starts: Offsets,
        ends: Offsets,
        columns: int = COLUMNS,
    ) -> None:
        self.buf, self.commas, self.lo, self.starts, self.ends = buf, commas, lo, starts, ends
        self.columns = columns

    def take(self, which: Offsets) -> _Fields:
        return _Fields(
            self.buf,
            self.commas,
            self.lo[which],
            self.starts[which],
            self.ends[which],
            self.columns,
        )

    def at(self, k: int) -> tuple[Offsets, Offsets]:
        return self.ranges([k])[k]

    def ranges(self, ks: list[int]) -> dict[int, tuple[Offsets, Offsets]]:
        """The ranges of fields ``ks``, read record by record (their bytes share cache lines)."""
        n, m = len(self.lo), len(ks)
        last_field = self.columns - 1
        cols = sorted({c for k in ks for c in (k - 1, k) if 0 <= c < last_field})
        place = {c: i for i, c in enumerate(cols)}
        found = self.commas[self.lo[:, None] + np.array(cols, dtype=np.int64)]
        start = np.empty((n, m), dtype=np.int64)
        stop = np.empty((n, m), dtype=np.int64)
        for j, k in enumerate(ks):
            start[:, j] = self.starts if k == 0 else found[:, place[k - 1]] + 1
            stop[:, j] = self.ends if k == last_field else found[:, place[k]]
        if n:
            buf = self.buf
            last = len(buf) - 1
            quoted = (
                (stop - start >= 2)
                & (buf[np.minimum(start, last)] == ord('"'))
                & (buf[np.maximum(stop - 1, 0)] == ord('"'))
            )
            start += quoted
            stop -= quoted
        return {
            k: (np.ascontiguousarray(start[:, j]), np.ascontiguousarray(stop[:, j]))
            for j, k in enumerate(ks)
        }


def _unescape(values: pa.Array[Any]) -> pa.Array[Any]:
    """CSV text with its doubled quotes made single (only searched for where a quote is)."""
    data = values.buffers()[2]
    if data is None or not (np.frombuffer(memoryview(data), dtype=np.uint8) == ord('"')).any():
        return values
    return pc.replace_substring(values, '""', '"')


def _message_kinds(buf: np.ndarray, start: Offsets, stop: Offsets) -> np.ndarray:
    """Index into :data:`KIND_NAMES` of how each message starts, or -1."""
    return message_kinds(buf, start, stop)


_PORT_DIGITS = 8  # a longer run of trailing digits is read by the regex


def _split_connection_from(
    buf: np.ndarray, buffer: pa.Buffer, start: Offsets, stop: Offsets
) -> tuple[pa.Array[Any], pa.Array[Any]]:
    """``host:port`` (port after the last colon, so IPv6 works) or ``[local]``;
    the port as a number.

    The port is the run of digits at the end after a colon, found scanning
    back in numpy; what the scan cannot settle goes to the regex.
    """
    n = len(start)
    # The last bytes of each field, right-aligned: tail[:, -k] is byte stop - k.
    tail = windows(buf, np.maximum(stop - _PORT_DIGITS, 0), _PORT_DIGITS)
    short = stop < _PORT_DIGITS  # the window starts at 0: shift it right
    if short.any():
        for i in np.flatnonzero(short).tolist():
            tail[i] = np.roll(tail[i], _PORT_DIGITS - int(stop[i]))
    # Byte stop - k, k = 1.. _PORT_DIGITS, in columns from the left: is it a digit of the field?
    back = tail[:, ::-1] - np.uint8(ord("0"))
    digit = (back <= 9) & (np.arange(1, _PORT_DIGITS + 1) <= (stop - start)[:, None])
    going = digit.all(axis=1)
    trailing = np.where(going, _PORT_DIGITS, digit.argmin(axis=1)).astype(np.int64)
    colon_at = stop - trailing - 1
    has_port = (trailing > 0) & (colon_at >= start)
    if len(buf):
        has_port &= buf[np.clip(colon_at, 0, len(buf) - 1)] == ord(":")
    host_stop = np.where(has_port, colon_at, stop)
    host = _unescape(strings_at(buffer, start, host_stop))
    port = ints_at(buf, buffer, np.where(has_port, stop - trailing, stop), stop)
    # A long run of digits may hold a colon further back; in a field with a
    # newline the regex matches nothing.
    odd_rows = going
    text_bytes = host.buffers()[2]
    # Hosts seldom hold a newline: one pass over their bytes spares the per-host search.
    host_bytes = np.frombuffer(memoryview(text_bytes or b""), dtype=np.uint8)
    if (host_bytes == ord("\n")).any():
        odd_rows = going | as_mask(pc.match_substring(host, "\n"))
    odd = np.flatnonzero(odd_rows)
    if len(odd):
        text = _unescape(strings_at(buffer, start[odd], stop[odd]))
        parts = pc.extract_regex(text, r"^(?P<host>.*?)(?::(?P<port>\d+))?$")
        fix = np.zeros(n, dtype=bool)
        fix[odd] = True
        host = pc.replace_with_mask(host, pa.array(fix), pc.struct_field(parts, "host"))
        given = to_int32(pc.struct_field(parts, "port"))
        port = pc.replace_with_mask(port, pa.array(fix), given)
    return _null_if_empty(host), port


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
    # Only the records with a problem are looked at, however many the batch holds.
    which = _at_starts(starts, [offset - base_offset for offset, _ in problems])
    starts, ends = starts[which], ends[which]
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


def _at_starts(starts: Offsets, at: list[int]) -> Offsets:
    """The indices of the records of ``starts`` (sorted) that start at any of ``at``."""
    wanted = np.asarray(at, dtype=np.int64)
    i = np.clip(np.searchsorted(starts, wanted), 0, len(starts) - 1)
    found = np.sort(i[starts[i] == wanted])
    # Sorted already, a plain neighbour test drops repeats (np.unique would hash them all).
    first = np.ones(len(found), dtype=bool)
    first[1:] = found[1:] != found[:-1]
    return found[first]
