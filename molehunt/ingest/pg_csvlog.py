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
cache); :mod:`molehunt.ingest.pgaudit` does the rest.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from molehunt.ingest.base import ParseResult, Rejected
from molehunt.ingest.pg_zones import log_zones
from molehunt.ingest.pgaudit import (
    DEFAULT_PLAN_WINDOW,
    MESSAGE_KINDS,
    RECORD_SCHEMA,
    Mask,
    Offsets,
    SplitPayloads,
    as_mask,
    audit_fields,
    blank_to_null,
    build_events,
    empty_tables,
    find_bytes,
    ints_at,
    invalid_utf8,
    log_times_at,
    message_kinds,
    rejected_records,
    skip_codes,
    strings_at,
    tally_skipped,
    to_int32,
    windows,
    with_nulls,
)

#: csvlog layouts by their field count: PostgreSQL 9.0 added application_name
#: (23), 13 backend_type (24), 14 leader_pid and query_id (26, as 15, 16 and 17).
#: The columns molehunt reads keep their place in every layout.
LAYOUTS: dict[int, str] = {
    22: "PostgreSQL 8.4",
    23: "PostgreSQL 9.0-12",
    24: "PostgreSQL 13",
    26: "PostgreSQL 14-17",
}
COLUMNS = 26  # the newest layout, the default of a batch with no well-formed record
# Field numbers (0-based) of the csvlog columns we read.
LOG_TIME, USER_NAME, DATABASE, PID, CONNECTION_FROM, SESSION_ID = 0, 1, 2, 3, 4, 5
MESSAGE, APPLICATION_NAME = 13, 22
_READ = [LOG_TIME, USER_NAME, DATABASE, PID, CONNECTION_FROM, SESSION_ID, APPLICATION_NAME]
if TYPE_CHECKING:
    from molehunt.config import Settings

_KIND_NAMES = list(MESSAGE_KINDS.values())
_PLAN = _KIND_NAMES.index("plan")
_AUDIT = _KIND_NAMES.index("audit")
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
        cut = _records(head)
        if cut is None:
            return False
        ends, _, _ = cut
        first = head[: ends[0]]
        return bool(_TIMESTAMP.match(first.lstrip(b'"'))) and _field_count(first) in LAYOUTS

    def parse(
        self, data: bytes, *, base_offset: int, source_id: str, path: str, final: bool = False
    ) -> ParseResult:
        """Parse the whole records at the start of ``data`` (see :class:`LogParser`).

        ``final`` says the file will grow no more (a rotated log): statements
        still waiting for their auto_explain plan are then decided without it.
        """
        cut = _resynced(data)
        if final and data.endswith(b"\n") and (cut is None or int(cut[0][-1]) < len(data) - 1):
            # The file grows no more: bytes after the last whole record (an
            # unclosed quote) are one broken record, not a wait for ever.
            ends0, commas0, before0 = cut or (
                np.zeros(0, dtype=np.int64),
                np.zeros(0, dtype=_POSITION),
                np.zeros(0, dtype=np.int64),
            )
            last = int(before0[-1]) if len(before0) else 0
            cut = (np.append(ends0, len(data) - 1), commas0, np.append(before0, last))
        if cut is None:
            return ParseResult(tables=empty_tables())
        ends, commas, before = cut
        starts = np.empty_like(ends)
        starts[0] = 0
        starts[1:] = ends[:-1] + 1
        end = int(ends[-1]) + 1
        buf = np.frombuffer(data, dtype=np.uint8, count=end)
        lo = np.empty_like(before)
        lo[0] = 0
        lo[1:] = before[:-1]
        counts = before - lo
        columns = _layout(counts + 1)
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

        buffer = pa.py_buffer(data)
        good_rows = np.flatnonzero(good)
        # Records are read a slice of the batch at a time: every field is fetched
        # from its own place in the buffer, and a slice's bytes stay in cache
        # for all those fetches where the whole batch would not.
        cuts = np.searchsorted(starts[good_rows], np.arange(_SLICE, end, _SLICE))
        pieces: list[_Piece] = []
        audits = 0
        for part in [p for p in np.split(good_rows, cuts) if len(p)] or [good_rows]:
            piece = _read_piece(
                buf,
                buffer,
                commas,
                lo,
                starts,
                ends,
                part,
                base_offset,
                audits,
                self.zones,
                columns,
            )
            audits += piece.audits
            pieces.append(piece)
        records = pa.concat_tables([piece.records for piece in pieces]).combine_chunks()
        rows = np.concatenate([piece.rows for piece in pieces])
        msg_start = np.concatenate([piece.msg_start for piece in pieces])
        msg_stop = np.concatenate([piece.msg_stop for piece in pieces])
        fields = pa.concat_tables([piece.fields for piece in pieces])
        texts = [piece.payloads for piece in pieces]

        def payload_text(which: Offsets) -> pa.Array[Any]:
            return (
                pa.chunked_array(texts, pa.string())
                .take(pa.array(which, pa.int64()))
                .combine_chunks()
            )

        def plan_messages(offsets: Offsets) -> pa.Array[Any]:
            which = np.searchsorted(starts[rows], offsets - base_offset)
            return _unescape(strings_at(buffer, msg_start[which], msg_stop[which]))

        payloads = SplitPayloads(fields, payload_text)
        built = build_events(
            records,
            payloads=payloads,
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
        limit = base_offset + consumed
        skipped_at = np.concatenate([piece.skipped_at for piece in pieces])
        skipped_why = np.concatenate([piece.skipped_why for piece in pieces])
        return ParseResult(
            tables=built.tables,
            rejected=_located(problems, data, base_offset, starts, ends),
            consumed=consumed,
            records=int(np.searchsorted(starts, consumed)),
            pending=built.pending,
            skipped=tally_skipped(
                skipped_why[skipped_at < limit],
                records,
                limit,
            ),
        )


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
    audit = kinds == _AUDIT
    talk = ~audit & (kinds != _PLAN)
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
            "what": pa.array(_KIND_NAMES).take(kinds),
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


_ONES = np.uint64(0x0101010101010101)
_TOP_BYTE = np.uint64(56)
_CHUNK = 1 << 20
# Comma positions are the largest array kept: 32 bits hold a batch under 2 GiB.
_POSITION = np.int32


def _records(data: bytes) -> tuple[Offsets, Offsets, Offsets] | None:
    """Where the whole records end (at their newline), the commas between their
    fields, and how many of those commas precede each end.

    A newline or comma counts when an even number of ``"`` precede it. The
    buffer is read in cache-sized chunks, each in a few numpy passes: a
    running quote count within each 8-byte word takes one multiply (byte ``i``
    of ``word * 0x0101..01`` sums bytes ``0..i``, at most 8, so no byte
    overflows); the parity of the words before (a running XOR over one byte a
    word) is added to every byte of its word, so each byte then says whether it
    lies inside quotes, and a newline or comma outside them is found in the
    same pass that finds it at all (no gather of counts at every comma).
    """
    buf = np.frombuffer(data, dtype=np.uint8)
    position = _POSITION if len(buf) < 2**31 else np.int64
    ends: list[Offsets] = []
    commas: list[Offsets] = []
    before: list[Offsets] = []
    chunk = min(len(buf), _CHUNK)
    scratch = np.empty(chunk + 8, dtype=np.uint8)
    hits = np.empty(chunk, dtype=bool)
    parity = 0
    seen = 0
    for lo in range(0, len(buf), _CHUNK):
        part = buf[lo : lo + _CHUNK]
        size = len(part)
        within = scratch[: size + (-size) % 8]
        within[size:] = 0
        np.equal(part, ord('"'), out=within[:size].view(bool))
        words = within.view("<u8")
        np.multiply(words, _ONES, out=words)
        odd = (words >> _TOP_BYTE).astype(np.uint8)
        odd &= 1
        carry = np.bitwise_xor.accumulate(odd)
        carry ^= odd
        if parity:
            carry ^= 1
        words += carry.astype(np.uint64) * _ONES
        words &= _ONES  # each byte: 1 if an odd number of quotes precede or are it
        inside = within[:size]
        found_at = hits[:size]
        np.equal(part, ord("\n"), out=found_at)
        np.less(inside, found_at.view(np.uint8), out=found_at)
        newlines = np.flatnonzero(found_at)
        np.equal(part, ord(","), out=found_at)
        np.less(inside, found_at.view(np.uint8), out=found_at)
        found = np.flatnonzero(found_at)
        before.append(np.searchsorted(found, newlines) + seen)
        ends.append(newlines + lo)
        at = cast("Offsets", found.astype(position))
        at += lo
        commas.append(at)
        seen += len(found)
        parity = int(within[-1])
    if not ends:
        return None
    record_ends = np.concatenate(ends)
    if len(record_ends) == 0:
        return None
    counts = np.concatenate(before)
    return record_ends, np.concatenate(commas)[: int(counts[-1])], counts


def _layout(fields: Offsets) -> int:
    """The field count of the batch's layout: the one most of its records have
    (a few broken records cannot change it)."""
    known = np.array(sorted(LAYOUTS), dtype=np.int64)
    tally = np.array([(fields == k).sum() for k in known.tolist()])
    return int(known[int(tally.argmax())]) if tally.any() else COLUMNS


_RESYNCS = 1000  # broken records a batch is cut around; past that the rest stays as cut


def _resynced(data: bytes) -> tuple[Offsets, Offsets, Offsets] | None:
    """:func:`_records`, cut again where an unclosed quote swallowed the records after it.

    A record whose field count is wrong, and which runs over a line that starts
    like a record (a timestamp at the line start), ends just before that line:
    the quote count starts afresh there, so one broken record costs only itself.
    The same for the bytes after the last whole record, when a line in them
    starts a record that is whole and well formed.
    """
    cut = _records(data)
    if cut is None:
        return _tail_resync(data, 0, None)
    buf = np.frombuffer(data, dtype=np.uint8)
    ends, commas, before = cut
    columns = _layout(np.diff(before, prepend=0) + 1)
    done_ends: list[Offsets] = []
    done_commas: list[Offsets] = []
    done_before: list[Offsets] = []
    base = 0  # where the current cut starts in ``data``
    comma_base = 0  # commas kept before it
    for _ in range(_RESYNCS):
        counts = np.diff(before, prepend=0)
        bad = np.flatnonzero(counts != columns - 1)
        restart = None
        for i in bad.tolist():
            start = base + (int(ends[i - 1]) + 1 if i else 0)
            restart = _record_start_within(buf, start, int(ends[i]) + base)
            if restart is not None:
                break
        if restart is None and base == 0:
            # The common case: no record to cut again; the arrays are kept as they are.
            tail = _tail_resync(data, int(ends[-1]) + 1, columns)
            if tail is None:
                return ends, commas, before
        if restart is None:
            done_ends.append(ends + base)
            done_commas.append(commas + base)
            done_before.append(before + comma_base)
            tail = _tail_resync(data, int(ends[-1]) + base + 1, columns)
            if tail is not None:
                t_ends, t_commas, t_before = tail
                done_ends.append(t_ends)
                done_commas.append(t_commas)
                done_before.append(t_before + comma_base + len(commas))
            break
        # Records before i stay; record i ends at the newline before ``restart``
        # (no field counted: it is rejected); the rest is cut afresh.
        kept_commas = int(before[i - 1]) if i else 0
        done_ends.append(np.append(ends[:i] + base, restart - 1))
        done_commas.append(commas[:kept_commas] + base)
        done_before.append(np.append(before[:i], kept_commas) + comma_base)
        comma_base += kept_commas
        rest = _records(data[restart:])
        base = restart
        if rest is None:
            tail = _tail_resync(data, restart, columns)
            if tail is not None:
                done_ends.append(tail[0])
                done_commas.append(tail[1])
                done_before.append(tail[2] + comma_base)
            break
        ends, commas, before = rest
    else:
        done_ends.append(ends + base)
        done_commas.append(commas + base)
        done_before.append(before + comma_base)
    return (
        np.concatenate(done_ends).astype(np.int64),
        np.concatenate(done_commas).astype(commas.dtype),
        np.concatenate(done_before).astype(np.int64),
    )


def _tail_resync(
    data: bytes, start: int, columns: int | None
) -> tuple[Offsets, Offsets, Offsets] | None:
    """Records after ``start`` where the bytes from there hold no whole record (an
    unclosed quote) but a later line starts a whole, well-formed one: the bytes
    before that line are one broken record, the rest is cut afresh."""
    if start >= len(data):
        return None
    buf = np.frombuffer(data, dtype=np.uint8)
    restart = _record_start_within(buf, start, len(data))
    if restart is None:
        return None
    rest = _resynced(data[restart:])
    if rest is None:
        return None
    ends, commas, before = rest
    counts = np.diff(before, prepend=0)
    if columns is not None and not (counts == columns - 1).any():
        return None
    if columns is None and not np.isin(counts + 1, list(LAYOUTS)).any():
        return None
    return (
        np.concatenate([[restart - 1], ends + restart]).astype(np.int64),
        commas + restart,
        np.concatenate([[0], before]).astype(np.int64),
    )


_STAMP = np.frombuffer(b"dddd-dd-dd dd:dd:dd", dtype=np.uint8)
_STAMP_DIGIT = np.equal(_STAMP, ord("d"))


def _record_start_within(buf: np.ndarray, start: int, stop: int) -> int | None:
    """The first line start after ``start`` and before ``stop`` that begins with a
    timestamp (as every csvlog record does), or None."""
    newlines = find_bytes(buf[start:stop], b"\n") + start + 1
    newlines = newlines[newlines + len(_STAMP) <= len(buf)]
    if len(newlines) == 0:
        return None
    window = windows(buf, newlines, len(_STAMP))
    digits = (window - np.uint8(ord("0")) <= 9)[:, _STAMP_DIGIT].all(axis=1)
    marks = (window[:, ~_STAMP_DIGIT] == _STAMP[~_STAMP_DIGIT]).all(axis=1)
    hits = np.flatnonzero(digits & marks & (newlines < stop))
    return int(newlines[hits[0]]) if len(hits) else None


def _field_count(record: bytes) -> int:
    buf = np.frombuffer(record, dtype=np.uint8)
    outside = (np.cumsum(buf == ord('"'), dtype=np.uint8) & 1) == 0
    return int(((buf == ord(",")) & outside).sum()) + 1


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
    """Index into :data:`_KIND_NAMES` of how each message starts, or -1."""
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
