"""Log times of PostgreSQL records (``%m``, ``%t``, csvlog ``log_time``) in UTC.

The common case (fixed-width digits, one zone text) is read in numpy over the
bytes; an odd zone or shape goes to DuckDB, one record at a time of the few.
Zone texts are resolved by :mod:`molehunt.ingest.postgres.zones`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from molehunt.ingest.postgres.kernels import (
    HIGH,
    Mask,
    Offsets,
    as_mask,
    connection,
    string_ranges,
    windows,
)
from molehunt.ingest.postgres.zones import log_zones, resolve_zone

#: Time zone texts PostgreSQL may print in ``%m`` / ``log_time`` for a server whose
#: ``log_timezone`` is UTC (see :mod:`molehunt.ingest.pg_zones`); numeric offsets
#: (``+08``) and IANA names are always understood. Parsers take the table of the
#: configured ``pg_log_timezone`` (:func:`log_zones`).
DEFAULT_ZONES: Mapping[str, str] = log_zones(None)


# -- log time -------------------------------------------------------------------------

_MS_LAYOUT = b"dddd-dd-dd dd:dd:dd.ddd "  # %m; %t has a space where the dot is
_DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)


def record_times(
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
    starts, stops, data = string_ranges(log_time)
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
        ok &= (((x + _MS_ADD[k]) | x) & HIGH) == 0
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
    con = connection()
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
