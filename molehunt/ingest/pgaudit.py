"""PostgreSQL log records to events, shared by ``pg-csvlog`` and ``pg-stderr``.

Each parser cuts its bytes into records and hands the interesting ones (by the
start of their message) to :func:`build_events` as an Arrow table of
:data:`RECORD_SCHEMA`, the AUDIT payloads beside it. From there both formats
are read the same way: the common case in numpy over the bytes and in Arrow
(log times as fixed-width digits, payloads split at their commas, the event
tables built column by column), and in one in-memory DuckDB only what is
unusual (an odd time zone, a payload the numpy split cannot vouch for) and the
few statements waiting for a plan:

* ``AUDIT: ...`` lines (pgAudit) -> ``events_db``. The payload is itself CSV:
  ``SESSION,<statement_id>,<substatement_id>,<class>,<command>,<object_type>,
  <object_name>,<statement>,<parameter>[,<rows>]`` (rows only with
  ``pgaudit.log_rows = on``).
* ``connection authorized`` / ``disconnection`` -> ``events_auth``.
* ``duration: ... plan:`` (auto_explain, JSON format) are not events: they give
  the true row count of an audited statement that pgAudit could not count
  (a ``DECLARE CURSOR``, whose ``FETCH``\\es are not logged, shows 0 rows; without
  ``log_rows`` nothing is counted). The plan joined to such an AUDIT line is the
  first one after it in the same session with the same query text, before the
  session ends, before the same text is audited again as another statement, and
  within ``plan_window`` bytes of the file. Its count is the ``Actual Rows`` of
  the top node, or of the node feeding a ``ModifyTable`` (whose own count is 0
  without ``RETURNING``).
* ``COPY ... TO`` (pgAudit class READ, command COPY) is a bulk read of unknown
  size: pgAudit 1.7 logs it with 0 rows, so ``rows`` is NULL and
  ``bulk_unknown`` true.

Only statements that need a plan's count wait for it (a cursor, or a READ/WRITE
without ``pgaudit.log_rows``); a complete record never does. A waiting AUDIT line
holds the chunk back: the batch is consumed only up to it, unless the data
already shows that no plan can come (the session ended, the server shut down,
the byte window or ``plan_seconds`` of log time are past, or, for a statement
that is not a cursor, its session's next statement began); ``Built.pending``
says what it waits for. So event rows never depend on where a file was cut into
chunks.
"""

from __future__ import annotations

import codecs
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from molehunt.ingest.base import Rejected, event_id
from molehunt.ingest.pg_zones import log_zones, resolve_zone

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

#: Time zone texts PostgreSQL may print in ``%m`` / ``log_time`` for a server whose
#: ``log_timezone`` is UTC (see :mod:`molehunt.ingest.pg_zones`); numeric offsets
#: (``+08``) and IANA names are always understood. Parsers take the table of the
#: configured ``pg_log_timezone`` (:func:`log_zones`).
DEFAULT_ZONES: Mapping[str, str] = log_zones(None)

#: Bytes after an AUDIT line within which its auto_explain plan must appear.
DEFAULT_PLAN_WINDOW = 16 * 1024 * 1024

#: Seconds of log time after an AUDIT line within which its plan must appear: once
#: the log has moved further on, the statement is stored without a plan's count
#: (a cursor kept open longer than this loses its count, nothing else).
DEFAULT_PLAN_SECONDS = 600

_TIME = pa.timestamp("us", tz="UTC")
_COMMON: list[tuple[str, pa.DataType]] = [
    ("event_id", pa.string()),
    ("time", _TIME),
    ("source_id", pa.string()),
]
DB_SCHEMA = pa.schema(
    [
        *_COMMON,
        ("kind", pa.string()),
        ("database", pa.string()),
        ("db_user", pa.string()),
        ("src_ip", pa.string()),
        ("src_port", pa.int32()),
        ("session_id", pa.string()),
        ("pid", pa.int32()),
        ("app_name", pa.string()),
        ("audit_class", pa.string()),
        ("command", pa.string()),
        ("object_type", pa.string()),
        ("objects", pa.list_(pa.string())),
        ("statement", pa.string()),
        ("parameters", pa.string()),
        ("rows", pa.int64()),
        ("rows_source", pa.string()),
        ("bulk_unknown", pa.bool_()),
        ("statement_id", pa.int64()),
        ("substatement_id", pa.int64()),
    ]
)
AUTH_SCHEMA = pa.schema(
    [
        *_COMMON,
        ("kind", pa.string()),
        ("activity", pa.string()),
        ("user_name", pa.string()),
        ("src_ip", pa.string()),
        ("src_port", pa.int32()),
        ("service", pa.string()),
        ("session_id", pa.string()),
        ("app_name", pa.string()),
    ]
)

# One field of pgAudit's CSV: quoted with doubled quotes, or free of , " and newlines.
_FIELD = r'("(?:[^"]|"")*"|[^,"\n\r]*)'
AUDIT_PAYLOAD = (
    r"^AUDIT: (SESSION|OBJECT),(\d+),(\d+),([A-Z_]+),([^,\n]*),([^,\n]*),"
    + ",".join([_FIELD] * 3)
    + r"(?:,(-?\d+))?$"
)
_AUDIT_GROUPS = [
    "audit_type",
    "sid",
    "ssid",
    "cls",
    "cmd",
    "otype",
    "obj",
    "stmt",
    "params",
    "rows",
]


@dataclass(slots=True)
class Built:
    """Event tables, records set aside, and where the batch must stop (if anywhere)."""

    tables: dict[str, pa.Table] = field(default_factory=dict)
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (offset, reason)
    cutoff: int | None = None  # file offset of the first record that must wait
    #: Why the batch stops at ``cutoff`` (what the first waiting record waits for).
    pending: str | None = None


class _Connections(threading.local):
    con: duckdb.DuckDBPyConnection | None = None


_CONNECTIONS = _Connections()


def _connection() -> duckdb.DuckDBPyConnection:
    # Opening DuckDB costs more than parsing a small batch: one in-memory
    # database per thread, emptied after each batch, serves every batch.
    if _CONNECTIONS.con is None:
        con = duckdb.connect()
        con.execute("SET enable_progress_bar = false")
        con.execute("SET TimeZone = 'UTC'")
        con.execute("SET threads = 1")
        _CONNECTIONS.con = con
    return _CONNECTIONS.con


def empty_tables() -> dict[str, pa.Table]:
    """The tables of a batch with no whole record yet."""
    return {"events_db": DB_SCHEMA.empty_table(), "events_auth": AUTH_SCHEMA.empty_table()}


def _unquote(col: str) -> str:
    return f"""CASE WHEN starts_with({col}, '"') THEN replace({col}[2:-2], '""', '"')
        ELSE {col} END"""


#: Gives the messages of the plan records at these file offsets, in that order.
PlanMessages = Callable[[npt.NDArray[np.int64]], "pa.Array[Any]"]

Mask = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class SplitPayloads:
    """AUDIT payloads a format parser has split itself (:func:`audit_fields`).

    ``fields`` holds the payloads the numpy split vouches for, ``offset``
    being their position among the AUDIT records; ``text`` gives the payloads
    at some positions, for the regex to read the others.
    """

    fields: pa.Table
    text: Callable[[Offsets], pa.Array[Any]]


def _keep_payloads(
    payloads: pa.Array[Any] | SplitPayloads, keep: Mask
) -> pa.Array[Any] | SplitPayloads:
    """The payloads of the AUDIT records ``keep`` holds for, renumbered."""
    if not isinstance(payloads, SplitPayloads):
        return payloads.filter(pa.array(keep))
    kept = np.flatnonzero(keep)
    renumber = np.cumsum(keep) - 1
    position = np.asarray(payloads.fields["offset"].to_numpy(), dtype=np.int64)
    still = keep[position]
    fields = payloads.fields.filter(pa.array(still))
    fields = fields.set_column(0, "offset", pa.array(renumber[position[still]], pa.int64()))
    text = payloads.text
    return SplitPayloads(fields, lambda at: text(kept[at]))


def build_events(
    records: pa.Table,
    *,
    payloads: pa.Array[Any] | SplitPayloads,
    plan_messages: PlanMessages,
    kind: str,
    source_id: str,
    data_end: int,
    final: bool,
    zones: Mapping[str, str],
    plan_window: int,
    plan_seconds: int = DEFAULT_PLAN_SECONDS,
) -> Built:
    """Events from ``records`` (interesting records of one batch, in file order).

    AUDIT records come without their message (NULL): ``payloads`` holds them,
    in the same order (one array, as the format parser cut them, or already
    split: :class:`SplitPayloads`). Plan records come without their message
    too: plans are most of a log's bytes and only
    those of sessions with a statement waiting for a count are read, through
    ``plan_messages``. ``data_end`` is the file offset just past
    the last whole record of the batch; ``final`` says the file will not grow,
    so nothing needs to wait for more bytes.

    The common records are read in numpy and Arrow; DuckDB sees only what is
    unusual (an odd time zone, a payload the numpy split does not vouch for)
    and the few statements waiting for a plan.
    """
    out = Built()
    what = records["what"].combine_chunks()
    shutdown = as_mask(pc.equal(what, pa.scalar("shutdown")))
    if shutdown.any():
        # Only the server's last words end every session; other lines merely start so.
        said = as_mask(pc.equal(records["message"], pa.scalar("database system is shut down")))
        records = records.filter(pa.array(~shutdown | said))
        what = records["what"].combine_chunks()
    offsets = np.asarray(records["offset"].to_numpy(), dtype=np.int64)
    micros, time_problems = _record_times(records, zones)
    if time_problems:
        out.rejected.extend((int(offsets[i]), reason) for i, reason in time_problems)
        timed = np.ones(len(offsets), dtype=bool)
        timed[[i for i, _ in time_problems]] = False
        audit_rows = as_mask(pc.equal(what, pa.scalar("audit")))
        payloads = _keep_payloads(payloads, timed[audit_rows])
        records = records.filter(pa.array(timed))
        what, offsets, micros = what.filter(pa.array(timed)), offsets[timed], micros[timed]
    recs = _Records(records, what, offsets, micros)

    audits = _read_audits(recs, payloads)
    is_open = recs.open[audits.rows]
    broken = audits.bad if final else audits.bad & ~is_open
    waiting = [audits.offsets[audits.bad & is_open & ~np.bool_(final)]]
    reasons: dict[int, str] = {
        int(o): "the last AUDIT line may not be whole yet (the server may still be writing it)"
        for o in waiting[0][:1]
    }
    out.rejected.extend((int(o), "unparseable AUDIT payload") for o in audits.offsets[broken])

    plan_rows: pa.Array[Any] = pa.nulls(len(audits.offsets), pa.int64())
    needy = audits.ok & audits.needs_plan
    if needy.any():
        plan_rows, plan_problems, plan_waiting = _plan_rows(
            recs,
            audits,
            needy,
            plan_messages=plan_messages,
            plan_window=plan_window,
            plan_seconds=plan_seconds,
            data_end=data_end,
            final=final,
        )
        out.rejected.extend(plan_problems)
        waiting.append(plan_waiting)
        reasons.update(_wait_reasons(recs, audits, plan_waiting, plan_seconds))
    pending = np.concatenate(waiting)
    out.cutoff = int(pending.min()) if len(pending) else None
    if out.cutoff is not None:
        out.pending = reasons.get(out.cutoff, "an auto_explain plan that is not whole yet")
    limit = out.cutoff if out.cutoff is not None else data_end + 1
    out.tables["events_db"] = _db_table(
        recs, audits, plan_rows, kind=kind, source_id=source_id, limit=limit
    )
    out.tables["events_auth"] = _auth_table(recs, kind=kind, source_id=source_id, limit=limit)
    out.rejected.sort()
    if out.cutoff is not None:
        out.rejected = [(o, r) for o, r in out.rejected if o < out.cutoff]
    return out


class _Records:
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


def as_mask(values: Any) -> Mask:
    """A boolean Arrow array (NULL as false) as numpy."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if values.null_count:
        values = values.fill_null(False)
    return np.asarray(values.to_numpy(zero_copy_only=False), dtype=bool)


# -- log time -------------------------------------------------------------------------

_MS_LAYOUT = b"dddd-dd-dd dd:dd:dd.ddd "  # %m; %t has a space where the dot is
_DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)


def _record_times(
    records: pa.Table, zones: Mapping[str, str]
) -> tuple[Offsets, list[tuple[int, str]]]:
    """UTC microseconds of each record, and the records whose time cannot be read (why)."""
    given = records["time_us"].combine_chunks()
    if not given.null_count:
        return np.asarray(given.to_numpy(), dtype=np.int64), []
    if given.null_count == len(given):
        return _log_times(records["log_time"].combine_chunks(), zones)
    missing = np.flatnonzero(as_mask(given.is_null()))
    micros = np.array(given.fill_null(0).to_numpy(), dtype=np.int64)
    texts = records["log_time"].combine_chunks().take(pa.array(missing, pa.int64()))
    times, problems = _log_times(texts, zones)
    micros[missing] = times
    return micros, [(int(missing[i]), reason) for i, reason in problems]


def _log_times(
    log_time: pa.Array[Any], zones: Mapping[str, str]
) -> tuple[Offsets, list[tuple[int, str]]]:
    """UTC microseconds of each log time, and the rows whose time cannot be read (why).

    ``%m``/``%t`` times in a zone that means UTC are read from their digits in
    numpy (:func:`log_times_at`); any other (an offset, a named zone, something
    odd) goes through DuckDB, which has the last word on what a time is.
    """
    n = len(log_time)
    if n == 0:
        return np.zeros(0, dtype=np.int64), []
    starts, stops, data = _string_ranges(log_time)
    micros, fast = log_times_at(data, starts, stops, zones)
    slow = np.flatnonzero(~fast)
    problems: list[tuple[int, str]] = []
    if len(slow):
        times, reasons = _slow_log_times(log_time.take(pa.array(slow, pa.int64())), zones)
        micros[slow] = times
        problems = [(int(slow[i]), r) for i, r in enumerate(reasons) if r is not None]
    return micros, problems


def log_times_at(
    data: npt.NDArray[np.uint8], starts: Offsets, stops: Offsets, zones: Mapping[str, str]
) -> tuple[Offsets, Mask]:
    """UTC microseconds of the log times ``data[starts:stops]`` that are plainly
    ``%m``/``%t`` in a zone meaning UTC, and which those are (the others: 0).

    Read straight from the digits, wherever they lie: a format parser can read
    its records' times from the bytes of the file, no string column made.
    """
    n = len(starts)
    micros = np.zeros(n, dtype=np.int64)
    fast = np.zeros(n, dtype=bool)
    if len(data) and n:
        fixed = _sampled_zones(data, starts, stops, zones)
        micros, fast = _ms_times(data, starts, stops, fixed)
        if fast.all():
            return micros, fast
        # What the word-wise read does not vouch for (%t, a long zone) is read byte-wise.
        rest = np.flatnonzero(~fast)
        micros[rest], fast[rest] = _log_times_bytewise(data, starts[rest], stops[rest], fixed)
    return micros, fast


_SAMPLE = 32


def _sampled_zones(
    data: npt.NDArray[np.uint8], starts: Offsets, stops: Offsets, zones: Mapping[str, str]
) -> list[tuple[bytes, int]]:
    """The zone tokens of a sample of the times (first, last and spread between)
    that mean one offset, with that offset in microseconds.

    A log is written in one zone (two with summer time): the few tokens seen are
    matched against every time in numpy; a time with a token the sample missed
    is read by the slow path all the same.
    """
    n = len(starts)
    picked = np.unique(np.linspace(0, n - 1, num=min(n, _SAMPLE)).astype(np.int64))
    tokens: set[bytes] = {a.encode() for a, z in zones.items() if z in ("UTC", "+00:00")}
    for i in picked.tolist():
        text = data[int(starts[i]) : int(stops[i])].tobytes()
        if len(text) > 24 and text[19:20] == b"." and text[23:24] == b" ":
            tokens.add(text[24:])
        elif len(text) > 20 and text[19:20] == b" ":
            tokens.add(text[20:])
    out: list[tuple[bytes, int]] = []
    for token in sorted(tokens):
        try:
            name = token.decode("ascii")
        except UnicodeDecodeError:
            continue
        minutes, _, _ = resolve_zone(name, zones)
        if minutes is not None and name:
            out.append((token, minutes * 60_000_000))
    return out


def _word(text: bytes) -> np.uint64:
    return np.uint64(np.frombuffer(text.ljust(8, b"\0"), dtype="<u8")[0])


# A %m time is three 8-byte words: "YYYY-MM-", "DD HH:MM", ":SS.mmm ". XORed
# with their layout, a digit becomes its value and any other byte 0; adding
# 0x76 to a digit's byte (0x7f to any other) keeps bit 7 clear only if it was
# 0-9 (0): a carry out of a byte comes only from one with bit 7 set already.
_MS_WORDS = [_word(b"0000-00-"), _word(b"00 00:00"), _word(b":00.000 ")]
_MS_ADD = [_word(b"\x76\x76\x76\x76\x7f\x76\x76\x7f"), _word(b"\x76\x76\x7f\x76\x76\x7f\x76\x76")]
_MS_ADD.append(_word(b"\x7f\x76\x76\x7f\x76\x76\x76\x7f"))
_HIGH = np.uint64(0x8080808080808080)
_BYTE = np.uint64(0xFF)


def _ms_times(
    data: npt.NDArray[np.uint8], starts: Offsets, stops: Offsets, fixed: list[tuple[bytes, int]]
) -> tuple[Offsets, Mask]:
    """:func:`log_times_at` of the ``%m`` times whose zone (at most 8 bytes) is one
    of ``fixed`` (token, offset in microseconds), read a word at a time."""
    n = len(starts)
    words = windows(data, starts, 32).view("<u8")
    length = stops - starts
    ok = np.zeros(n, dtype=bool)
    shift = np.zeros(n, dtype=np.int64)
    zone = words[:, 3]
    for abbrev, offset in fixed:
        if len(abbrev) <= 8:
            keep = np.uint64((1 << (8 * len(abbrev))) - 1)
            hit = (length == 24 + len(abbrev)) & ((zone & keep) == _word(abbrev))
            ok |= hit
            if offset:
                shift[hit] = offset
    digits = []
    for k in range(3):
        x = words[:, k] ^ _MS_WORDS[k]
        ok &= (((x + _MS_ADD[k]) | x) & _HIGH) == 0
        # Byte i of x * 10 + x >> 8 is the two-digit number at bytes i, i + 1.
        digits.append((x, x * np.uint64(10) + (x >> np.uint64(8))))

    def at(k: int, byte: int, pairs: bool = True) -> Offsets:
        word = digits[k][1 if pairs else 0]
        return np.asarray((word >> np.uint64(8 * byte)) & _BYTE, dtype=np.int64)

    year = at(0, 0) * 100 + at(0, 2)
    month, day, hour, minute, second = at(0, 5), at(1, 0), at(1, 3), at(1, 6), at(2, 1)
    millis = at(2, 4) * 10 + at(2, 6, pairs=False)
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    month_days = _DAYS_IN_MONTH[np.clip(month, 0, 12)] + (leap & (month == 2))
    ok &= (year >= 1000) & (month >= 1) & (month <= 12) & (day >= 1)
    ok &= (day <= month_days) & (hour <= 23) & (minute <= 59) & (second <= 59)
    days = _days_from_civil(year, month, day)
    micros = (((days * 24 + hour) * 60 + minute) * 60 + second) * 1_000_000 + millis * 1000
    micros -= shift
    micros[~ok] = 0
    return micros, ok


def _log_times_bytewise(
    data: npt.NDArray[np.uint8], starts: Offsets, stops: Offsets, fixed: list[tuple[bytes, int]]
) -> tuple[Offsets, Mask]:
    n = len(starts)
    micros = np.zeros(n, dtype=np.int64)
    fast = np.zeros(n, dtype=bool)
    if len(data):
        width = len(_MS_LAYOUT) + max((len(a) for a, _ in fixed), default=0)
        window = windows(data, starts, width)
        digit = window - np.uint8(ord("0"))  # anything but a digit wraps above 9
        layout = np.frombuffer(_MS_LAYOUT, dtype=np.uint8)
        head = np.arange(len(layout)) < 19  # what %m and %t share
        is_digit = layout == ord("d")
        shape = (digit[:, : len(layout)][:, is_digit & head] <= 9).all(axis=1)
        punctuation = np.flatnonzero(~is_digit & head)
        shape &= (window[:, punctuation] == layout[punctuation]).all(axis=1)
        length = stops - starts
        with_ms = (window[:, 19] == ord(".")) & (window[:, 23] == ord(" "))
        # The digits after the dot are a %m time's only: in a %t time they are its zone.
        with_ms &= (digit[:, 20] <= 9) & (digit[:, 21] <= 9) & (digit[:, 22] <= 9)
        without = window[:, 19] == ord(" ")
        known = np.zeros(n, dtype=bool)
        shift = np.zeros(n, dtype=np.int64)
        for abbrev, offset in fixed:
            word = np.frombuffer(abbrev, dtype=np.uint8)
            size = len(word)
            hit = with_ms & (length == 24 + size) & (window[:, 24 : 24 + size] == word).all(axis=1)
            hit |= without & (length == 20 + size) & (window[:, 20 : 20 + size] == word).all(axis=1)
            known |= hit
            shift[hit] = offset
        shape &= known
        # The five two-digit numbers in one pass over their tens and units.
        d = digit.astype(np.int64)
        pairs = d[:, _TENS] * 10 + d[:, _TENS + 1]
        month, day, hour, minute, second = pairs.T
        year = ((d[:, 0] * 10 + d[:, 1]) * 10 + d[:, 2]) * 10 + d[:, 3]
        millis = np.where(with_ms, (d[:, 20] * 10 + d[:, 21]) * 10 + d[:, 22], 0)
        leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
        month_days = _DAYS_IN_MONTH[np.clip(month, 0, 12)] + (leap & (month == 2))
        shape &= (year >= 1000) & (month >= 1) & (month <= 12) & (day >= 1)
        shape &= (day <= month_days) & (hour <= 23) & (minute <= 59) & (second <= 59)
        fast = shape
        days = _days_from_civil(year, month, day)
        micros = (((days * 24 + hour) * 60 + minute) * 60 + second) * 1_000_000 + millis * 1000
        micros -= shift
        micros[~fast] = 0
    return micros, fast


#: Where the tens of month, day, hour, minute and second are in a ``%m`` time.
_TENS = np.array([5, 8, 11, 14, 17])


def _days_from_civil(year: Offsets, month: Offsets, day: Offsets) -> Offsets:
    """Days since 1970-01-01 of proleptic Gregorian dates (Howard Hinnant's algorithm)."""
    y = year - (month <= 2)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * np.where(month > 2, month - 3, month + 9) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return np.asarray(era * 146097 + doe - 719468, dtype=np.int64)


def _slow_log_times(
    log_time: pa.Array[Any], zones: Mapping[str, str]
) -> tuple[Offsets, list[str | None]]:
    """The times the numpy read left: any zone text, through DuckDB.

    The distinct zone texts (a handful) are resolved first (:func:`resolve_zone`),
    then every time is read through that small table in one query.
    """
    # %m prints "2026-11-26 12:30:14.021 UTC", %t the same without milliseconds.
    con = _connection()
    given = pa.table({"i": pa.array(np.arange(len(log_time)), pa.int64()), "log_time": log_time})
    con.register("given", given)
    try:
        con.execute(
            r"""
            CREATE OR REPLACE TEMP TABLE slow_times AS
            SELECT i, log_time,
              CASE WHEN log_time[20] = '.' AND log_time[24] = ' '
                     THEN try_strptime(log_time[1:23], '%Y-%m-%d %H:%M:%S.%g')
                   WHEN log_time[20] = ' '
                     THEN try_strptime(log_time[1:19], '%Y-%m-%d %H:%M:%S')
              END AS local_time,
              CASE WHEN log_time[20] = '.' THEN log_time[25:] ELSE log_time[21:] END AS zone_text
            FROM given
            """
        )
        texts = [t for (t,) in con.execute("SELECT DISTINCT zone_text FROM slow_times").fetchall()]
        resolved = [resolve_zone(t or "", zones) for t in texts]
        zone_table = pa.table(
            {
                "zone_text": pa.array(texts, pa.string()),
                "minutes": pa.array([r[0] for r in resolved], pa.int64()),
                "zone": pa.array([r[1] for r in resolved], pa.string()),
                "why": pa.array([r[2] for r in resolved], pa.string()),
            }
        )
        con.register("zone_table", zone_table)
        try:
            named = sorted({z for _, z, _ in resolved if z is not None})
            # timezone() takes a constant-per-row zone name: one CASE arm a named zone.
            arms = "".join(
                f" WHEN z.zone = '{name}' THEN timezone('{name}', local_time)"
                for name in named
                if "'" not in name
            )
            rows = con.execute(
                f"""
                WITH t AS (
                  SELECT r.i, r.log_time, r.local_time, r.zone_text, z.why,
                    CASE WHEN z.minutes IS NOT NULL
                           THEN (local_time - to_minutes(z.minutes))::TIMESTAMPTZ
                         {arms}
                    END AS time
                  FROM slow_times r LEFT JOIN zone_table z USING (zone_text)
                )
                SELECT epoch_us(time),
                  CASE WHEN time IS NOT NULL THEN NULL
                       WHEN local_time IS NULL
                         THEN 'unreadable log time ' || coalesce(log_time, 'NULL')
                       ELSE coalesce(why, 'unknown time zone ' || zone_text) END
                FROM t ORDER BY i
                """
            ).fetchall()
        finally:
            con.unregister("zone_table")
    finally:
        con.execute("DROP TABLE IF EXISTS slow_times")
        con.unregister("given")
    times = np.array([0 if t is None else t for t, _ in rows], dtype=np.int64)
    return times, [reason for _, reason in rows]


# -- AUDIT lines ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Audits:
    """The AUDIT records of a batch, their payload split into fields."""

    rows: Offsets  # into the records
    offsets: Offsets
    ok: Mask
    bad: Mask  # definitely not a payload (neither ok nor bad: no message to judge)
    fields: pa.Table  # _AUDIT_FIELDS less offset and fast, one row per AUDIT record
    copy_to: Mask
    needs_plan: Mask


def _read_audits(recs: _Records, payloads: pa.Array[Any] | SplitPayloads) -> _Audits:
    rows = recs.rows("audit")
    offsets = recs.offsets[rows]
    if isinstance(payloads, SplitPayloads):
        fast, text = payloads.fields, payloads.text
    else:
        messages = payloads
        if isinstance(messages, pa.ChunkedArray):
            messages = messages.combine_chunks()
        fast = audit_fields(pa.array(np.arange(len(rows)), pa.int64()), messages)

        def text(at: Offsets) -> pa.Array[Any]:
            return messages.take(pa.array(at, pa.int64()))

    names = _AUDIT_FIELDS.names[2:]
    position = np.asarray(fast["offset"].to_numpy(), dtype=np.int64)
    ok = np.zeros(len(rows), dtype=bool)
    bad = np.zeros(len(rows), dtype=bool)
    ok[position] = True
    if len(position) == len(rows):
        fields = fast.select(names)
    else:
        slow = np.flatnonzero(~ok)
        parsed, slow_ok = _slow_audit_fields(text(slow))
        ok[slow] = as_mask(slow_ok)
        bad[slow] = as_mask(pc.invert(slow_ok))
        both = pa.concat_tables([fast.select(names), parsed.select(names)])
        order = np.empty(len(rows), dtype=np.int64)
        order[position] = np.arange(len(position))
        order[slow] = len(position) + np.arange(len(slow))
        fields = both.take(pa.array(order, pa.int64()))
    cls = fields["audit_class"]
    copy_to = as_mask(
        pc.and_(pc.equal(cls, pa.scalar("READ")), pc.equal(fields["command"], pa.scalar("COPY")))
    )
    counted = as_mask(pc.is_in(cls, value_set=pa.array(["READ", "WRITE"])))
    uncounted = as_mask(fields["logged_rows"].is_null()) | as_mask(
        pc.equal(fields["command"], pa.scalar("DECLARE CURSOR"))
    )
    needs_plan = counted & ~copy_to & uncounted
    return _Audits(rows, offsets, ok, bad, fields, copy_to, needs_plan)


def _slow_audit_fields(messages: pa.Array[Any]) -> tuple[pa.Table, pa.Array[Any]]:
    """The fields of payloads the numpy split left out, by :data:`AUDIT_PAYLOAD`."""
    names = ", ".join(f"'{g}'" for g in _AUDIT_GROUPS)
    pattern = "'" + AUDIT_PAYLOAD.replace("'", "''") + "'"
    con = _connection()
    numbers = pa.array(np.arange(len(messages)), pa.int64())
    con.register("slow_audits", pa.table({"i": numbers, "message": messages}))
    try:
        table = con.sql(
            f"""
            WITH x AS (
              SELECT i, regexp_extract(message, {pattern}, [{names}]) AS p FROM slow_audits
            )
            SELECT p.audit_type <> '' AS ok,
              p.cls AS audit_class, p.cmd AS command, p.otype AS object_type,
              {_unquote("p.obj")} AS object_name, {_unquote("p.stmt")} AS statement,
              {_unquote("p.params")} AS params_raw,
              try_cast(nullif(p.rows, '') AS BIGINT) AS logged_rows,
              try_cast(p.sid AS BIGINT) AS statement_id,
              try_cast(p.ssid AS BIGINT) AS substatement_id
            FROM x ORDER BY i
            """
        ).to_arrow_table()
    finally:
        con.unregister("slow_audits")
    ok = table["ok"].combine_chunks()
    fields = table.drop_columns(["ok"]).cast(pa.schema(list(_AUDIT_FIELDS)[2:]))
    return fields, ok


# -- auto_explain plans -------------------------------------------------------------------


def _plan_rows(
    recs: _Records,
    audits: _Audits,
    needy: Mask,
    *,
    plan_messages: PlanMessages,
    plan_window: int,
    plan_seconds: int,
    data_end: int,
    final: bool,
) -> tuple[pa.Array[Any], list[tuple[int, str]], Offsets]:
    """The plan count of each AUDIT record that needs one (NULL for the others), the
    plans set aside, and the offsets of the records that must wait for more bytes.

    A wait ends (the statement is stored without a plan's count) at the first of:
    the session's end, the server's shutdown, the same text audited again as
    another statement, ``plan_window`` bytes, a record ``plan_seconds`` of log
    time later, and, for a statement that is not a cursor (its plan is logged
    when it ends, before the session's next statement), the session's next
    statement.
    """
    keys = recs.column("session_key")
    statement = audits.fields["statement"].combine_chunks()
    statement_id = audits.fields["statement_id"].combine_chunks()
    wait_rows = pa.array(np.flatnonzero(needy), pa.int64())
    cursor = as_mask(pc.equal(audits.fields["command"], pa.scalar("DECLARE CURSOR")))[needy]
    waits = pa.table(
        {
            "offset": _ints(audits.offsets[needy]),
            "session_key": keys.take(pa.array(audits.rows[needy], pa.int64())),
            "statement": statement.take(wait_rows),
            "statement_id": statement_id.take(wait_rows),
            "cursor": pa.array(cursor),
            "late_at": _late_at(recs, audits.rows[needy], plan_seconds),
        }
    )
    # Only sessions with a statement waiting can bound a wait or hold its plan
    # (a superset: SQL decides, NULL keys included).
    session_keys = keys.take(pa.array(audits.rows, pa.int64()))
    in_play = as_mask(pc.is_in(session_keys, value_set=waits["session_key"], skip_nulls=False))
    kept = np.flatnonzero(audits.ok & in_play)
    session_statements = pa.table(
        {
            "offset": _ints(audits.offsets[kept]),
            "session_key": session_keys.take(pa.array(kept, pa.int64())),
            "statement_id": statement_id.take(pa.array(kept, pa.int64())),
        }
    )
    statements = statement.take(pa.array(kept, pa.int64()))
    kept = kept[as_mask(pc.is_in(statements, value_set=waits["statement"], skip_nulls=False))]
    picked = pa.array(kept, pa.int64())
    same = pa.table(
        {
            "offset": _ints(audits.offsets[kept]),
            "session_key": session_keys.take(picked),
            "statement": statement.take(picked),
            "statement_id": statement_id.take(picked),
        }
    )
    plan_rows = recs.rows("plan")
    plan_keys = keys.take(pa.array(plan_rows, pa.int64()))
    wanted = as_mask(pc.is_in(plan_keys, value_set=waits["session_key"], skip_nulls=True))
    plan_rows, plan_keys = plan_rows[wanted], plan_keys.filter(pa.array(wanted))
    plan_offsets = recs.offsets[plan_rows]
    texts = plan_messages(plan_offsets) if len(plan_offsets) else pa.array([], pa.string())
    plan_text = pa.table(
        {
            "offset": _ints(plan_offsets),
            "session_key": plan_keys,
            "open": pa.array(recs.open[plan_rows]),
            "message": texts,
        }
    )
    ends_rows = recs.rows("disconnect")
    ends = pa.table(
        {
            "end_at": _ints(recs.offsets[ends_rows]),
            "session_key": keys.take(pa.array(ends_rows, pa.int64())),
        }
    )
    shutdowns = pa.table({"shutdown_at": _ints(recs.offsets[recs.rows("shutdown")])})
    con = _connection()
    tables = {
        "waits": waits,
        "same": same,
        "session_statements": session_statements,
        "plan_text": plan_text,
        "ends": ends,
        "shutdowns": shutdowns,
    }
    try:
        for name, table in tables.items():
            con.register(name, table)
        con.execute(_PLANS)
        problems = [
            (int(offset), "auto_explain plan is not valid JSON (auto_explain.log_format = json)")
            for (offset,) in con.execute(
                'SELECT "offset" FROM plans WHERE NOT ok AND (NOT open OR $final)',
                {"final": final},
            ).fetchall()
        ]
        matched = con.execute(_MATCH, {"window": plan_window, "data_end": data_end}).fetchnumpy()
        ((stuck,),) = con.execute(
            'SELECT list("offset") FROM plans WHERE open AND NOT ok AND NOT $final',
            {"final": final},
        ).fetchall()
    finally:
        con.execute("DROP TABLE IF EXISTS plans")
        for name in tables:
            con.unregister(name)
    matched_offsets = np.asarray(matched["offset"], dtype=np.int64)
    found_column: Any = matched["found"]
    bound_column: Any = matched["bound"]
    found = np.ma.getdata(found_column).astype(bool) & ~np.ma.getmaskarray(found_column)
    bound_missing = np.ma.getmaskarray(bound_column)
    late = matched_offsets[~found & bound_missing] if not final else matched_offsets[:0]
    waiting = np.concatenate([late, np.asarray(stuck or [], dtype=np.int64)])
    counts: Any = matched["plan_rows"]
    values = np.zeros(len(audits.offsets), dtype=np.int64)
    missing = np.ones(len(audits.offsets), dtype=bool)
    at = np.searchsorted(audits.offsets, matched_offsets)
    values[at] = np.ma.getdata(counts)
    missing[at] = np.ma.getmaskarray(counts)
    return pa.array(values, pa.int64(), mask=missing), problems, waiting


def _late_at(recs: _Records, rows: Offsets, plan_seconds: int) -> pa.Array[Any]:
    """For the records ``rows``, the offset of the first record logged more than
    ``plan_seconds`` after them (NULL: none in the batch yet)."""
    if len(recs.micros) == 0:
        return pa.nulls(len(rows), pa.int64())
    # Log times are in file order but for a few ms of jitter between processes:
    # the running maximum is what "the log has moved on" means.
    clock = np.maximum.accumulate(recs.micros)
    deadline = recs.micros[rows] + plan_seconds * 1_000_000
    at = np.searchsorted(clock, deadline, side="right")
    found = at < len(clock)
    offsets = recs.offsets[np.minimum(at, len(clock) - 1)]
    return pa.array(offsets, pa.int64(), mask=~found)


def _wait_reasons(
    recs: _Records, audits: _Audits, waiting: Offsets, plan_seconds: int
) -> dict[int, str]:
    """What the first of the records ``waiting`` waits for, in words for ``status``."""
    if len(waiting) == 0:
        return {}
    first = int(waiting.min())
    i = int(np.searchsorted(audits.offsets, first))
    if i >= len(audits.offsets) or audits.offsets[i] != first:
        return {first: "an auto_explain plan that is not whole yet"}
    command = audits.fields["command"][i].as_py()
    key = recs.column("session_key")[int(audits.rows[i])].as_py()
    what = "a cursor's rows (DECLARE CURSOR: FETCHes are not audited)"
    if command != "DECLARE CURSOR":
        what = f"the row count of a {command} (pgaudit.log_rows is off)"
    return {
        first: f"waiting for the auto_explain plan with {what} in session {key}: until it "
        f"appears, the session or statement ends, or {plan_seconds} s of log time pass"
    }


_PLANS = r"""
CREATE TEMP TABLE plans AS
WITH t AS (
  SELECT "offset", session_key, open,
    regexp_matches(left(message, 64), '^duration: [0-9.]+ ms  plan:\n') AS is_plan,
    substr(message, strpos(message, chr(10)) + 1) AS plan
  FROM plan_text
), v AS (
  SELECT *, json_valid(plan) AS ok FROM t WHERE is_plan
), x AS (
  SELECT "offset", session_key, open, ok,
    CASE WHEN ok THEN json_extract(plan, ['$."Query Text"', '$.Plan."Node Type"',
                        '$.Plan."Actual Rows"', '$.Plan.Plans[0]."Actual Rows"']) END AS j
  FROM v
)
SELECT "offset", session_key, open, ok, j[1] ->> '$' AS query_text,
  round(try_cast((CASE WHEN j[2] ->> '$' = 'ModifyTable' THEN j[4] ELSE j[3] END) ->> '$'
        AS DOUBLE))::BIGINT AS plan_rows
FROM x
"""

_MATCH = """
WITH changes AS (
  -- substatements share the statement id; a new id with the same text is a rerun
  -- (only the texts a statement waits on: the others cannot bound a wait)
  SELECT "offset", session_key, statement,
    statement_id IS DISTINCT FROM lag(statement_id) OVER same_text AS new_run
  FROM same SEMI JOIN (SELECT DISTINCT session_key, statement FROM waits)
    USING (session_key, statement)
  WINDOW same_text AS (PARTITION BY session_key, statement ORDER BY "offset")
), runs AS (
  SELECT *, sum(new_run::INTEGER) OVER (
    PARTITION BY session_key, statement ORDER BY "offset") AS run
  FROM changes
), firsts AS (
  SELECT session_key, statement, run, min("offset") AS rerun_at FROM runs GROUP BY ALL
), again AS (
  SELECT r."offset", f.rerun_at FROM runs r JOIN firsts f
    ON f.session_key = r.session_key AND f.statement = r.statement AND f.run = r.run + 1
), statement_starts AS (
  -- where each statement of a session with a wait starts (its first AUDIT line)
  SELECT "offset" AS next_at, session_key FROM (
    SELECT *, statement_id IS DISTINCT FROM lag(statement_id) OVER (
      PARTITION BY session_key ORDER BY "offset") AS starts
    FROM session_statements
  ) WHERE starts
), bounds AS (
  SELECT n.*, least(
      e.end_at, s.shutdown_at, a.rerun_at, n.late_at,
      CASE WHEN NOT n.cursor THEN st.next_at END,
      CASE WHEN n."offset" + $window <= $data_end THEN n."offset" + $window END
    ) AS bound
  FROM waits n
  LEFT JOIN again a USING ("offset")
  ASOF LEFT JOIN ends e ON e.session_key = n.session_key AND e.end_at > n."offset"
  ASOF LEFT JOIN shutdowns s ON s.shutdown_at > n."offset"
  ASOF LEFT JOIN statement_starts st
    ON st.session_key = n.session_key AND st.next_at > n."offset"
), good_plans AS (
  SELECT * FROM plans WHERE ok
)
SELECT b."offset", b.bound,
  CASE WHEN p."offset" < coalesce(b.bound, $data_end + 1) THEN p.plan_rows END AS plan_rows,
  p."offset" < coalesce(b.bound, $data_end + 1) AS found
FROM bounds b ASOF LEFT JOIN good_plans p
  ON p.session_key = b.session_key AND p.query_text = b.statement
 AND p."offset" > b."offset"
ORDER BY b."offset"
"""


# -- event tables -------------------------------------------------------------------------


def _db_table(
    recs: _Records,
    audits: _Audits,
    plan_rows: pa.Array[Any],
    *,
    kind: str,
    source_id: str,
    limit: int,
) -> pa.Table:
    keep = audits.ok & (audits.offsets < limit)
    rows = audits.rows[keep]
    n = len(rows)
    fields = audits.fields if keep.all() else audits.fields.filter(pa.array(keep))
    copy_to = audits.copy_to[keep]
    needs_plan = audits.needs_plan[keep]
    counted = plan_rows if keep.all() else plan_rows.filter(pa.array(keep))
    from_plan = needs_plan & ~copy_to
    logged = fields["logged_rows"].combine_chunks()
    rows_count = pc.if_else(
        pa.array(copy_to),
        pa.scalar(None, pa.int64()),
        pc.if_else(pa.array(from_plan), counted, logged),
    )
    source = np.where(
        copy_to,
        0,
        np.where(from_plan, np.where(as_mask(counted.is_null()), 0, 1), 2),
    )
    params = fields["params_raw"].combine_chunks()
    hidden = as_mask(pc.is_in(params, value_set=pa.array(["<none>", "<not logged>"])))
    name = fields["object_name"].combine_chunks()
    named = ~as_mask(pc.equal(name, pa.scalar(""))) & as_mask(name.is_valid())
    list_offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(named, out=list_offsets[1:])
    objects = pa.ListArray.from_arrays(
        pa.array(list_offsets, pa.int32()), name.filter(pa.array(named))
    )
    columns: dict[str, Any] = {
        "event_id": event_ids(source_id, audits.offsets[keep]),
        "time": _timestamps(recs.micros[rows]),
        "source_id": _repeat(source_id, n),
        "kind": _repeat(kind, n),
        "database": recs.column("database", rows),
        "db_user": recs.column("user_name", rows),
        "src_ip": recs.column("host", rows),
        "src_port": recs.column("port", rows),
        "session_id": recs.column("session_id", rows),
        "pid": recs.column("pid", rows),
        "app_name": recs.column("app_name", rows),
        "audit_class": fields["audit_class"],
        "command": fields["command"],
        "object_type": blank_to_null(fields["object_type"].combine_chunks()),
        "objects": objects,
        "statement": fields["statement"],
        "parameters": pc.if_else(pa.array(hidden), pa.scalar(None, pa.string()), params),
        "rows": rows_count,
        "rows_source": pa.DictionaryArray.from_arrays(
            pa.array(source, pa.int8()), pa.array(["unknown", "auto_explain", "pgaudit"])
        ).cast(pa.string()),
        "bulk_unknown": pa.array(copy_to),
        "statement_id": fields["statement_id"],
        "substatement_id": fields["substatement_id"],
    }
    return pa.table(columns, schema=DB_SCHEMA)


_CONNECT_APP = (
    r"^connection authorized: .*? application_name=(?P<app>.*?)"
    r"(?: SSL enabled \(.*| GSS \(.*)?$"
)


def _auth_table(recs: _Records, *, kind: str, source_id: str, limit: int) -> pa.Table:
    session = as_mask(pc.is_in(recs.what, value_set=pa.array(["connect", "disconnect"])))
    rows = np.flatnonzero(session & (recs.offsets < limit))
    n = len(rows)
    what = recs.what.take(pa.array(rows, pa.int64()))
    message = recs.column("message", rows)
    connect = pc.equal(what, pa.scalar("connect"))

    def said(pattern: str, where: Any = None) -> pa.Array[Any]:
        """What ``pattern`` finds in the messages (NULL: nothing), looked for only ``where``."""
        wanted = np.ones(n, dtype=bool) if where is None else as_mask(where)
        found = pa.nulls(n, pa.string())
        if wanted.any():
            hits = pc.extract_regex(message.filter(pa.array(wanted)), pattern)
            values = blank_to_null(pc.struct_field(hits, [0]).fill_null(""))
            found = pc.replace_with_mask(found, pa.array(wanted), values)
        return found

    def given_or_said(column: str, pattern: str) -> pa.Array[Any]:
        values = recs.column(column, rows)
        if not values.null_count:
            return values
        return pc.coalesce(values, said(pattern, values.is_null()))

    port = recs.column("port", rows)
    if port.null_count:
        port = pc.coalesce(port, to_int32(said(r" port=(?P<v>\d+)", port.is_null())))
    columns: dict[str, Any] = {
        "event_id": event_ids(source_id, recs.offsets[rows]),
        "time": _timestamps(recs.micros[rows]),
        "source_id": _repeat(source_id, n),
        "kind": _repeat(kind, n),
        "activity": pc.if_else(connect, pa.scalar("connect"), pa.scalar("disconnect")),
        "user_name": given_or_said("user_name", r" user=(?P<v>\S+)"),
        "src_ip": recs.column("host", rows),
        "src_port": port,
        "service": given_or_said("database", r" database=(?P<v>\S+)"),
        "session_id": recs.column("session_id", rows),
        "app_name": pc.if_else(connect, said(_CONNECT_APP, connect), recs.column("app_name", rows)),
    }
    return pa.table(columns, schema=AUTH_SCHEMA)


# The four digits of 0..9999, each as one 32-bit word.
_DIGIT_WORDS = np.frombuffer("".join(f"{i:04d}" for i in range(10_000)).encode(), dtype="<u4")


def event_ids(source_id: str, offsets: Offsets) -> pa.Array[Any]:
    """:func:`event_id` of each offset, formatted in numpy."""
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
    layout = pa.large_string()
    ids = pa.Array.from_buffers(
        layout, n, [None, pa.py_buffer(bounds.data), pa.py_buffer(text.reshape(-1).data)]
    )
    return pc.cast(ids, pa.string())


def _ints(values: Offsets) -> pa.Array[Any]:
    return pa.array(values, pa.int64())


def _timestamps(micros: Offsets) -> pa.Array[Any]:
    return pa.array(micros, _TIME)


def _repeat(value: str, n: int) -> pa.Array[Any]:
    return pa.DictionaryArray.from_arrays(
        pa.array(np.zeros(n, dtype=np.int8), pa.int8()), pa.array([value])
    ).cast(pa.string())


def to_int32(values: pa.Array[Any]) -> pa.Array[Any]:
    """``try_cast(values AS INTEGER)``: digits read in numpy, anything else asked of DuckDB."""
    n = len(values)
    if n == 0:
        return pa.array([], pa.int32())
    try:
        # Arrow reads plain (signed) digits the way DuckDB does and refuses the rest.
        return pc.cast(values, pa.int32())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    starts, stops, data = _string_ranges(values)
    length = stops - starts
    valid = as_mask(values.is_valid())
    simple = valid & (length >= 1) & (length <= 9)
    number = np.zeros(n, dtype=np.int64)
    if len(data) and simple.any():
        steps = np.arange(9)
        at = np.minimum(starts[:, None] + steps, len(data) - 1)
        digit = data[at].astype(np.int64) - ord("0")
        inside = steps < length[:, None]
        simple &= (((digit >= 0) & (digit <= 9)) | ~inside).all(axis=1)
        scale = np.where(inside, 10 ** np.maximum(length[:, None] - 1 - steps, 0), 0)
        number = (np.where(inside, digit, 0) * scale).sum(axis=1)
    missing = ~simple
    odd = np.flatnonzero(valid & ~simple & (length > 0))
    if len(odd):
        con = _connection()
        picked = pa.array(odd, pa.int64())
        con.register("odd_numbers", pa.table({"i": picked, "v": values.take(picked)}))
        try:
            got = con.execute(
                "SELECT i, try_cast(v AS INTEGER) AS n FROM odd_numbers WHERE n IS NOT NULL"
            ).fetchnumpy()
        finally:
            con.unregister("odd_numbers")
        number[got["i"]] = got["n"]
        missing[got["i"]] = False
    return pa.array(number.astype(np.int32), mask=missing)


def ints_at(
    data: npt.NDArray[np.uint8], buffer: pa.Buffer, begin: Offsets, end: Offsets
) -> pa.Array[Any]:
    """:func:`to_int32` of the text ``data[begin:end]`` (``buffer`` holds ``data``;
    ranges in order, not overlapping), read straight from the bytes.

    Plain digits (up to 9, so they fit) are read in numpy; an empty range is
    NULL; only what else there is becomes text for :func:`to_int32`.
    """
    number, plain = _eight_digits(data, begin, end)
    values = pa.array(number.astype(np.int32), mask=~plain)
    odd = ~plain & (end > begin)
    if not odd.any():
        return values
    which = np.flatnonzero(odd)
    slow = to_int32(strings_at(buffer, begin[which], end[which]))
    if slow.null_count == len(slow):
        return values
    return cast("pa.Array[Any]", pc.replace_with_mask(values, pa.array(odd), slow))


_SWAR_LOW = np.uint64(0x0F0F0F0F0F0F0F0F)
_SWAR_PAIRS = (
    (np.uint64(2561), np.uint64(8), np.uint64(0x00FF00FF00FF00FF)),
    (np.uint64(6553601), np.uint64(16), np.uint64(0x0000FFFF0000FFFF)),
    (np.uint64(42949672960001), np.uint64(32), np.uint64(0xFFFFFFFF)),
)


def _eight_digits(
    data: npt.NDArray[np.uint8], begin: Offsets, end: Offsets
) -> tuple[Offsets, Mask]:
    """The number each ``data[begin:end]`` spells where it is 1-8 digits, and where.

    The 8 bytes ending at ``end`` are one word: the bytes before the field are
    masked off, every byte checked for a digit at once (as for log times) and
    the digits combined pairwise in three multiplies (two digits, four, eight),
    not one pass per digit.
    """
    width = 8
    length = end - begin
    ok = (length >= 1) & (length <= width) & (end >= width)
    word = _words_at(data, np.maximum(end - width, 0))
    # The field's bytes are the word's last (highest) ``length`` bytes.
    keep = _ALL_BYTES << (np.uint64(8) * np.clip(width - length, 0, width - 1).astype(np.uint64))
    x = (word ^ _ZEROS) & keep
    ok &= (((x + _SWAR_DIGIT) | x) & _HIGH & keep) == 0
    x &= _SWAR_LOW
    for factor, shift, mask in _SWAR_PAIRS:
        x = ((x * factor) >> shift) & mask
    return np.asarray(x, dtype=np.int64), np.asarray(ok)


_ALL_BYTES = np.uint64(0xFFFFFFFFFFFFFFFF)
_ZEROS = np.uint64(0x3030303030303030)
_SWAR_DIGIT = np.uint64(0x7676767676767676)


def _words_at(data: npt.NDArray[np.uint8], begin: Offsets) -> npt.NDArray[np.uint64]:
    """The 8 bytes at each ``begin`` as a little-endian word (past the end: arbitrary)."""
    if len(data) >= 8 and data.flags.c_contiguous:
        at = np.ndarray((len(data) - 7,), dtype="<u8", buffer=data, strides=(1,))
        return np.asarray(at[np.minimum(begin, len(data) - 8)], dtype=np.uint64)
    return np.asarray(windows(data, begin, 8).view("<u8")[:, 0], dtype=np.uint64)


def _string_ranges(values: pa.Array[Any]) -> tuple[Offsets, Offsets, npt.NDArray[np.uint8]]:
    """Where each string of ``values`` lies in its data buffer, and that buffer."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    buffers: list[Any] = values.buffers()
    n = len(values)
    width = np.int64 if pa.types.is_large_string(values.type) else np.int32
    off = np.frombuffer(buffers[1], dtype=width)[values.offset : values.offset + n + 1]
    off = off.astype(np.int64)
    data = (
        np.frombuffer(buffers[2], dtype=np.uint8)
        if buffers[2] is not None
        else np.zeros(0, dtype=np.uint8)
    )
    return np.asarray(off[:-1], dtype=np.int64), np.asarray(off[1:], dtype=np.int64), data


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


RAW_LIMIT = 4096

Offsets = npt.NDArray[np.int64]


def strings_at(
    buffer: pa.Buffer,
    starts: Offsets,
    stops: Offsets,
    *,
    binary: bool = False,
    valid: Mask | None = None,
) -> pa.Array[Any]:
    """The byte ranges ``[starts[i], stops[i])`` of ``buffer`` as a string array
    (``binary``: as bytes, for text not yet known to be valid UTF-8), NULL
    where ``valid`` is false.

    Ranges must be in file order and not overlap; the strings are copied once,
    straight from the buffer (the gaps between them are laid out as dummy
    strings, then left out).
    """
    n = len(starts)
    kind = pa.binary() if binary else pa.string()
    if n == 0:
        return pa.array([], kind)
    # A buffer under 2 GiB is addressed with 32-bit offsets, so the strings
    # come out in their final layout, with no cast copying them again.
    small = buffer.size < 2**31
    offsets = np.empty(2 * n, dtype=np.int32 if small else np.int64)
    offsets[0::2] = starts
    offsets[1::2] = stops
    if valid is not None:
        offsets[1::2] = np.where(valid, stops, starts)
    layout = kind if small else pa.large_binary() if binary else pa.large_string()
    both = pa.Array.from_buffers(layout, 2 * n - 1, [None, pa.py_buffer(offsets.data), buffer])
    picked = both.take(np.arange(0, 2 * n, 2, dtype=np.int64))
    if not small:
        picked = pc.cast(picked, kind)
    return picked if valid is None else with_nulls(picked, valid)


def with_nulls(values: pa.Array[Any], valid: Mask) -> pa.Array[Any]:
    """``values`` made NULL where ``valid`` is false (sharing their buffers when it can)."""
    if valid.all():
        return values
    if values.offset or values.null_count:
        return cast(
            "pa.Array[Any]", pc.if_else(pa.array(valid), values, pa.scalar(None, values.type))
        )
    bitmap = pa.py_buffer(np.packbits(valid, bitorder="little").data)
    parts: list[Any] = values.buffers()
    return pa.Array.from_buffers(values.type, len(values), [bitmap, *parts[1:]])


_CHUNK = 1 << 20


def find_bytes(data: npt.NDArray[np.uint8], chars: bytes) -> Offsets:
    """Where any of ``chars`` occurs in ``data``, in order.

    Read in cache-sized chunks: a whole-buffer comparison would allocate (and
    page in) a temporary as large as the buffer for every byte looked for.
    """
    found: list[Offsets] = []
    for lo in range(0, len(data), _CHUNK):
        part = data[lo : lo + _CHUNK]
        wanted = part == chars[0]
        for c in chars[1:]:
            wanted |= part == c
        found.append(np.flatnonzero(wanted) + lo)
    return np.concatenate(found) if found else np.empty(0, dtype=np.int64)


_DIGITS = np.zeros(256, dtype=bool)
_DIGITS[ord("0") : ord("9") + 1] = True
_CLASS = np.zeros(256, dtype=bool)
_CLASS[ord("A") : ord("Z") + 1] = True
_CLASS[ord("_")] = True
_AUDIT_FIELDS = pa.schema(
    [  # type: ignore[arg-type]
        ("offset", pa.int64()),
        ("fast", pa.bool_()),
        ("audit_class", pa.string()),
        ("command", pa.string()),
        ("object_type", pa.string()),
        ("object_name", pa.string()),
        ("statement", pa.string()),
        ("params_raw", pa.string()),
        ("logged_rows", pa.int64()),
        ("statement_id", pa.int64()),
        ("substatement_id", pa.int64()),
    ]
)


def audit_fields(offsets: pa.Array[Any], messages: Any) -> pa.Table:
    """The fields of the AUDIT payloads that are plainly well formed, split in numpy.

    Only payloads that :data:`AUDIT_PAYLOAD` certainly matches the same way are
    returned (a comma splits fields unless an odd number of ``"`` precede it in
    the payload, and each field is then checked against its part of the
    pattern); anything unusual (a quote in the command, a 20-digit id) is left
    to the regex in SQL, which has the last word.
    """
    if isinstance(messages, pa.ChunkedArray):
        messages = messages.combine_chunks()
    n = len(messages)
    buffers: list[Any] = messages.buffers()
    if n == 0 or buffers[2] is None:
        return _AUDIT_FIELDS.empty_table()
    width = np.int64 if pa.types.is_large_string(messages.type) else np.int32
    first, last = messages.offset, messages.offset + n + 1
    off: Offsets = np.frombuffer(buffers[1], dtype=width)[first:last].astype(np.int64)
    data = np.frombuffer(buffers[2], dtype=np.uint8)[: int(off[-1])]
    starts, stops = off[:-1], off[1:]
    head = starts + len(b"AUDIT: ")
    cand = (stops >= head) & _equals(data, starts, stops, b"AUDIT: ", prefix=True)
    if messages.null_count:
        cand &= np.asarray(messages.is_valid().to_numpy(zero_copy_only=False), dtype=bool)

    quotes = QuoteCounts(data, exact=True)
    before = quotes.upto(head - 1)
    cand &= ((quotes.upto(stops - 1) - before) & 1) == 0
    before_odd = (before & 1).astype(np.uint8)
    commas = find_bytes(data, b",")
    # Messages lie end to end in the buffer: each one owns the commas up to its end.
    bounds = np.searchsorted(commas, off)
    commas = commas[bounds[0] : bounds[-1]]
    owner = np.repeat(np.arange(n), np.diff(bounds))
    # Usually every payload holds its quotes in pairs: then none shifts the next.
    start_odd = before_odd[owner] if before_odd.any() else np.uint8(0)
    split = quotes.odd(commas) == start_odd
    commas, owner = commas[split], owner[split]
    count = np.bincount(owner, minlength=n)
    cand &= (count == 8) | (count == 9)
    rows = np.flatnonzero(cand)
    first = (np.cumsum(count) - count)[rows]
    has_rows = count[rows] == 9
    around = commas[np.minimum(first[:, None] + np.arange(9), len(commas) - 1)]
    sep = [around[:, k] for k in range(8)]
    sep.append(np.where(has_rows, around[:, 8], stops[rows]))
    begin = [head[rows], *(c + 1 for c in sep)]
    end = [*sep, stops[rows]]
    begin[9] = np.minimum(begin[9], end[9])  # no rows: an empty range at the end
    breaks = find_bytes(data, b"\n\r")

    def count_in(marks: Offsets | QuoteCounts, b: Offsets, e: Offsets) -> Offsets:
        if isinstance(marks, QuoteCounts):
            return np.asarray(marks.upto(e - 1) - marks.upto(b - 1), dtype=np.int64)
        return np.asarray(np.searchsorted(marks, e) - np.searchsorted(marks, b), dtype=np.int64)

    # Fields 0-5 hold no quote and no line break, so no comma hides in them.
    ok = (count_in(quotes, begin[0], end[5]) == 0) & (count_in(breaks, begin[0], end[5]) == 0)
    kinds = windows(data, begin[0], len(b"SESSION"))
    length = end[0] - begin[0]
    ok &= ((length == 7) & (kinds == np.frombuffer(b"SESSION", np.uint8)).all(axis=1)) | (
        (length == 6) & (kinds[:, :6] == np.frombuffer(b"OBJECT", np.uint8)).all(axis=1)
    )
    ids = []
    for k in (1, 2):
        value, plain = _digit_field(data, begin[k], end[k])
        ok &= plain
        ids.append(value)
    ok &= _all_of(data, begin[3], end[3], _CLASS, 1, 32)
    for k in (4, 5):
        ok &= end[k] - begin[k] <= 64
    negative = has_rows & (data[np.minimum(begin[9], len(data) - 1)] == ord("-"))
    count, plain = _digit_field(data, begin[9] + negative, end[9])
    ok &= ~has_rows | plain
    texts: list[pa.Array[Any]] = []
    buffer = buffers[2]
    for k in (6, 7, 8):
        b, e = begin[k], end[k]
        inside = count_in(quotes, b, e)
        quoted = (e - b >= 2) & (data[np.minimum(b, len(data) - 1)] == ord('"')) & (inside >= 2)
        quoted &= data[np.maximum(e - 1, 0)] == ord('"')
        ok &= quoted | ((inside == 0) & (count_in(breaks, b, e) == 0))
        inner = strings_at(buffer, b + quoted, e - quoted)
        escaped = quoted & (inside > 2)
        if escaped.any():
            doubled: Any = pc.count_substring(inner, '""')  # type: ignore[call-overload]
            pairs = np.asarray(doubled.to_numpy(zero_copy_only=False))
            # Inside quotes every " comes doubled: the left-to-right pairs hold them all.
            ok &= ~escaped | (2 * pairs.astype(np.int64) == inside - 2)
            inner = pc.replace_substring(inner, '""', '"')
        texts.append(inner)
    everything = bool(ok.all())
    keep = pa.array(ok)

    def kept(values: pa.Array[Any]) -> pa.Array[Any]:
        return values if everything else values.filter(keep)

    def text(k: int) -> pa.Array[Any]:
        return kept(strings_at(buffer, begin[k], end[k]))

    def number(k: int) -> pa.Array[Any]:
        return pa.array(ids[k - 1][ok], pa.int64())

    fast = rows[ok]
    logged = pa.array(np.where(negative, -count, count)[ok], mask=~has_rows[ok])
    return pa.table(
        {
            "offset": offsets.take(pa.array(fast, pa.int64())),
            "fast": pa.array(np.ones(len(fast), dtype=bool)),
            "audit_class": text(3),
            "command": text(4),
            "object_type": text(5),
            "object_name": kept(texts[0]),
            "statement": kept(texts[1]),
            "params_raw": kept(texts[2]),
            "logged_rows": logged,
            "statement_id": number(1),
            "substatement_id": number(2),
        },
        schema=_AUDIT_FIELDS,
    )


def _digit_field(data: npt.NDArray[np.uint8], begin: Offsets, end: Offsets) -> tuple[Offsets, Mask]:
    """The number each ``data[begin:end]`` spells, and whether it is 1-18 digits.

    Up to 8 digits (nearly every id and count) are read a word at a time
    (:func:`_eight_digits`); only longer fields are read digit by digit.
    """
    value, ok = _eight_digits(data, begin, end)
    longer = np.flatnonzero(~ok & (end - begin > 8))
    if len(longer):
        b, e = begin[longer], end[longer]
        ok[longer] = _all_of(data, b, e, _DIGITS, 9, 18)
        value[longer] = _digits_value(data, b, e)
    return value, ok


def _digits_value(data: npt.NDArray[np.uint8], begin: Offsets, end: Offsets) -> Offsets:
    """The number each ``data[begin:end]`` spells, where that is 1-18 digits (else garbage)."""
    length = np.clip(end - begin, 0, 18)
    value = np.zeros(len(begin), dtype=np.int64)
    if len(begin) == 0 or not length.any():
        return value
    digits = windows(data, begin, int(length.max())).astype(np.int64) - ord("0")
    for k in range(digits.shape[1]):
        more = k < length
        value[more] = value[more] * 10 + digits[more, k]
    return value


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
            hit = hit[_equals(data, start[hit], stop[hit], pattern, prefix=True)]
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


def windows(data: npt.NDArray[np.uint8], begin: Offsets, width: int) -> npt.NDArray[np.uint8]:
    """``data[begin[i] : begin[i] + width]`` as the rows of one array.

    Past the end of ``data`` a row holds arbitrary bytes: callers mask by length.
    Rows are gathered as unaligned 8-byte words (a fancy index copies one
    element at a time: a word per element is a few times faster than a byte).
    """
    n = len(begin)
    if n == 0 or width == 0 or len(data) == 0:
        return np.zeros((n, width), dtype=np.uint8)
    words = -(-width // 8)
    padded = 8 * words
    last = len(data) - padded
    out = np.empty((n, padded), dtype=np.uint8)
    if last >= 0 and data.flags.c_contiguous:
        # Every byte position read as the 8-byte word starting there.
        at = np.ndarray((len(data) - 7,), dtype="<u8", buffer=data, strides=(1,))
        near_end = begin > last
        inside = begin if not near_end.any() else np.where(near_end, 0, begin)
        grid = out.view("<u8")
        for k in range(words):
            grid[:, k] = at[inside + 8 * k] if k else at[inside]
        if not near_end.any():
            return out[:, :width]
        begin = np.where(near_end, begin, 0)
    else:
        near_end = np.ones(n, dtype=bool)
    at = np.minimum(begin[near_end, None] + np.arange(padded), len(data) - 1)
    out[near_end] = data[at]
    return out[:, :width]


def _equals(
    data: npt.NDArray[np.uint8], begin: Offsets, end: Offsets, word: bytes, *, prefix: bool = False
) -> npt.NDArray[np.bool_]:
    """Whether ``data[begin:end]`` is ``word`` (or, with ``prefix``, starts with it)."""
    length = end - begin
    ok = length >= len(word) if prefix else length == len(word)
    if len(word) == 0 or len(data) == 0:
        return np.asarray(ok & (len(word) == 0))
    if len(word) <= 8:
        # One word compare a row, its bytes past ``word`` masked off.
        mask = np.uint64((1 << (8 * len(word))) - 1)
        want_word = np.uint64(int.from_bytes(word, "little"))
        return np.asarray(ok & ((_words_at(data, begin) & mask) == want_word))
    want = np.frombuffer(word, dtype=np.uint8)
    return np.asarray(ok & (windows(data, begin, len(word)) == want).all(axis=1))


def _all_of(
    data: npt.NDArray[np.uint8],
    begin: Offsets,
    end: Offsets,
    allowed: npt.NDArray[np.bool_],
    shortest: int,
    longest: int,
) -> npt.NDArray[np.bool_]:
    """Whether each ``data[begin:end]`` is ``shortest``..``longest`` bytes, all ``allowed``."""
    length = end - begin
    ok = (length >= shortest) & (length <= longest)
    if len(data) == 0:
        return np.asarray(ok & (length == 0))
    if not ok.any():
        return np.asarray(ok)
    # The window is as wide as the longest field in range, usually a few bytes.
    steps = np.arange(int(length[ok].max()))
    fine = allowed[windows(data, begin, len(steps))] | (steps >= length[:, None])
    return np.asarray(ok & fine.all(axis=1))


_ONES = np.uint64(0x0101010101010101)


class QuoteCounts:
    """Running count of ``"`` over a byte buffer, read at any position (mod 256,
    or ``exact``).

    A byte-wise cumsum is a serial loop over every byte; counting within each
    8-byte word takes one multiply (byte ``i`` of ``word * 0x0101..01`` sums
    bytes ``0..i``, at most 8, so no byte overflows) and only the per-word
    totals need a running sum.
    """

    __slots__ = ("_carry", "_carry8", "_within")

    def __init__(self, buf: npt.NDArray[np.uint8], *, exact: bool = False) -> None:
        n = len(buf)
        padded = np.empty(n + (-n) % 8 + 8, dtype=np.uint8)
        padded[n:] = 0
        np.equal(buf, ord('"'), out=padded[:n].view(bool))
        # Little-endian words put the first byte of the buffer in the lowest byte.
        words = padded.view("<u8")
        np.multiply(words, _ONES, out=words)
        totals = padded[7::8]
        self._carry: npt.NDArray[Any]
        self._carry8: npt.NDArray[Any]
        if exact:
            self._carry = np.cumsum(totals, dtype=np.int32)
            self._carry -= totals
            # Narrowed, not summed again: a uint8 running sum is the slower one.
            self._carry8 = self._carry.astype(np.uint8)
        else:
            self._carry8 = np.cumsum(totals, dtype=np.uint8)
            self._carry8 -= totals
            self._carry = self._carry8
        self._within = padded

    def upto(self, at: Offsets) -> npt.NDArray[Any]:
        """Quotes in ``buf[: at + 1]``; ``at`` may be -1."""
        safe = np.maximum(at, 0)
        counts = self._within[safe] + self._carry[safe >> 3]
        counts[at < 0] = 0
        return np.asarray(counts)

    def odd(self, at: Offsets) -> npt.NDArray[np.uint8]:
        """1 where an odd number of ``"`` precede and include position ``at`` (>= 0), else 0."""
        counts = self._within[at] + self._carry8[at >> 3]
        counts &= 1
        return np.asarray(counts, dtype=np.uint8)


class _BadBytes(threading.local):
    found: list[int]

    def __init__(self) -> None:
        self.found = []


_BAD_BYTES = _BadBytes()


def blank_to_null(values: pa.Array[Any], blank: str = "") -> pa.Array[Any]:
    """``values`` with ``blank`` made NULL."""
    is_blank = pc.equal(values, pa.scalar(blank, values.type))
    return cast("pa.Array[Any]", pc.if_else(is_blank, pa.scalar(None, values.type), values))


def _note_bad_bytes(error: UnicodeError) -> tuple[str, int]:
    if not isinstance(error, UnicodeDecodeError):
        raise error
    _BAD_BYTES.found.append(error.start)
    return "\ufffd", error.end


codecs.register_error("molehunt.pgaudit.note", _note_bad_bytes)


def invalid_utf8(data: bytes | memoryview, end: int) -> Offsets:
    """Byte positions in ``data[:end]`` where invalid UTF-8 starts.

    ASCII and valid UTF-8 are vouched for in one fast pass (bytes.isascii,
    then Arrow's UTF-8 check); only a buffer that fails it is decoded, in C,
    to find where.
    """
    none = np.empty(0, dtype=np.int64)
    if end == 0 or (isinstance(data, bytes) and data.isascii()):
        return none
    whole = pa.Array.from_buffers(
        pa.large_binary(),
        1,
        [None, pa.py_buffer(np.array([0, end], dtype=np.int64).data), pa.py_buffer(data)],
    )
    try:
        whole.cast(pa.large_string())
        return none
    except pa.ArrowInvalid:
        pass
    _BAD_BYTES.found = []
    bytes(data[:end]).decode("utf-8", errors="molehunt.pgaudit.note")
    found = np.array(_BAD_BYTES.found, dtype=np.int64)
    _BAD_BYTES.found = []
    return found


def _raw(chunk: bytes) -> str:
    return chunk[:RAW_LIMIT].decode("utf-8", errors="replace")


__all__ = [
    "DEFAULT_PLAN_SECONDS",
    "DEFAULT_PLAN_WINDOW",
    "DEFAULT_ZONES",
    "MESSAGE_KINDS",
    "RECORD_SCHEMA",
    "Built",
    "PlanMessages",
    "SplitPayloads",
    "as_mask",
    "audit_fields",
    "blank_to_null",
    "build_events",
    "empty_tables",
    "event_id",
    "find_bytes",
    "ints_at",
    "log_times_at",
    "message_kinds",
    "rejected_records",
    "skip_codes",
    "tally_skipped",
    "to_int32",
    "with_nulls",
]
