"""PostgreSQL stderr log (``log_destination = 'stderr'``) with pgAudit and auto_explain.

Each record starts with ``log_line_prefix`` (by default ``%m [%p] %q%u@%d %h app=%a``)
then ``SEVERITY:  message``. PostgreSQL indents the further lines of a message
(a multi-line statement, a JSON plan) with a tab; such lines, and any line that
does not start with the prefix, belong to the record before. Lines are cut in
numpy and matched against the prefix in one vectorised regex call; the same
events as ``pg-csvlog`` come out of :mod:`molehunt.ingest.pgaudit`.

``%a`` is chosen by the client: an application name that imitates the end of
the prefix can shift where the message seems to start. csvlog quotes every
field and has no such ambiguity; prefer it where you can.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from molehunt.ingest.base import ParseResult, Rejected
from molehunt.ingest.pg_zones import log_zones
from molehunt.ingest.pgaudit import (
    DEFAULT_PLAN_WINDOW,
    MESSAGE_KINDS,
    RECORD_SCHEMA,
    Offsets,
    blank_to_null,
    build_events,
    empty_tables,
    find_bytes,
    invalid_utf8,
    message_kinds,
    rejected_records,
    skip_codes,
    strings_at,
    tally_skipped,
    to_int32,
)

if TYPE_CHECKING:
    from molehunt.config import Settings

DEFAULT_PREFIX = "%m [%p] %q%u@%d %h app=%a "
_KIND_NAMES = list(MESSAGE_KINDS.values())
_PLAN = _KIND_NAMES.index("plan")
_AUDIT = _KIND_NAMES.index("audit")

_TIME = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"
# What each log_line_prefix escape prints, as RE2; named groups feed the record.
_ESCAPES: dict[str, tuple[str | None, str]] = {
    "m": ("log_time", _TIME + r"\.\d{3} [^\s\]]+"),
    "t": ("log_time", _TIME + r" [^\s\]]+"),
    "p": ("pid", r"\d+"),
    "u": ("user_name", r".*?"),
    "d": ("database", r".*?"),
    "h": ("host", r"\S*"),
    "a": ("app_name", r".*?"),
    "c": ("session_id", r"[0-9a-f]+\.[0-9a-f]+"),
    "n": (None, r"\d+\.\d{3}"),
    "l": (None, r"\d+"),
    "s": (None, _TIME + r" \S+"),
    "v": (None, r"\S*"),
    "x": (None, r"\d+"),
    "e": (None, r"[0-9A-Z]{5}"),
    "i": (None, r".*?"),
    "b": (None, r".*?"),
    "Q": (None, r"-?\d+"),
    "P": (None, r"\d*"),
}
_GROUPS = ("log_time", "pid", "user_name", "database", "host", "port", "app_name", "session_id")


def prefix_pattern(prefix: str) -> str:
    """An RE2 pattern for one first line of a record written with ``prefix``.

    Groups: the fields in ``_GROUPS`` (empty when the prefix lacks them), ``head``
    (everything before the message) and ``message`` (the rest of the line).

    >>> bool(re.match(prefix_pattern("%m [%p] "), "2026-11-26 12:30:14.021 UTC [5] LOG:  x"))
    True
    """
    parts: list[str] = []
    seen: set[str] = set()
    optional_from: int | None = None
    i = 0
    while i < len(prefix):
        ch = prefix[i]
        if ch != "%":
            parts.append(re.escape(ch))
            i += 1
            continue
        m = re.compile(r"%(-?\d*)(.)").match(prefix, i)
        if m is None:
            raise ValueError(f"log_line_prefix {prefix!r} ends with a lone %")
        padding, escape = m.group(1), m.group(2)
        i = m.end()
        if escape == "%":
            parts.append("%")
            continue
        if escape == "q":
            optional_from = len(parts)
            continue
        if escape == "r":
            if "host" in seen:
                parts.append(r"[^\s(]*(?:\(\d+\))?")
            else:
                seen.update(("host", "port"))
                parts.append(r"(?P<host>[^\s(]*)(?:\((?P<port>\d+)\))?")
            continue
        if escape not in _ESCAPES:
            raise ValueError(f"log_line_prefix escape %{escape} is not supported")
        name, body = _ESCAPES[escape]
        pad = " *" if padding else ""
        if name is None or name in seen:
            parts.append(f"{pad}(?:{body}){pad}")
        else:
            seen.add(name)
            parts.append(f"{pad}(?P<{name}>{body}){pad}")
    if "log_time" not in seen:
        raise ValueError(f"log_line_prefix {prefix!r} needs %m or %t: events need a time")
    if "pid" not in seen and "session_id" not in seen:
        raise ValueError(f"log_line_prefix {prefix!r} needs %p or %c to tell sessions apart")
    if optional_from is not None:
        parts[optional_from:] = ["(?:" + "".join(parts[optional_from:]) + ")?"]
    missing = "".join(f"(?P<{g}>)" for g in _GROUPS if g not in seen)
    body = "".join(parts)
    return f"^(?P<head>{body}{missing}(?P<severity>[A-Z][A-Z0-9]*):  )(?P<message>.*)$"


class PgStderrParser:
    """PostgreSQL stderr log with pgAudit: audited statements, connections and disconnections."""

    kind: ClassVar[str] = "pg-stderr"
    description: ClassVar[str] = (
        "PostgreSQL 15 stderr log (log_line_prefix) with pgAudit and auto_explain (JSON)"
    )

    def __init__(
        self,
        prefix: str = DEFAULT_PREFIX,
        *,
        zones: Mapping[str, str] | None = None,
        log_timezone: str | None = None,
        plan_window: int = DEFAULT_PLAN_WINDOW,
    ) -> None:
        self.prefix = prefix
        self.pattern = prefix_pattern(prefix)
        # The message is wherever the head ends: matching it too would only cost time.
        self._head_pattern = self.pattern[: self.pattern.rindex("(?P<message>")]
        self._python_pattern = re.compile(self.pattern.encode())
        # The server's log_timezone settles the abbreviations it prints (CST...).
        self.zones = {**log_zones(log_timezone), **(zones or {})}
        self.plan_window = plan_window

    @classmethod
    def from_settings(cls, settings: Settings) -> PgStderrParser:
        """The parser for ``pg_log_line_prefix`` and ``pg_log_timezone`` (or ``timezone``)."""
        return cls(
            settings.pg_log_line_prefix,
            log_timezone=settings.pg_log_timezone or settings.timezone,
        )

    @classmethod
    def sniff(cls, head: bytes) -> bool:
        first = head.split(b"\n", 1)[0]
        return re.match(prefix_pattern(DEFAULT_PREFIX).encode(), first) is not None

    def parse(
        self, data: bytes, *, base_offset: int, source_id: str, path: str, final: bool = False
    ) -> ParseResult:
        """Parse the whole records at the start of ``data`` (see :class:`LogParser`).

        The last record is taken while it is self-evidently complete (a plan's
        JSON closes, an AUDIT payload parses) or anything but those two; ``final``
        says the file will grow no more, so it is taken whatever it holds.
        """
        buf = np.frombuffer(data, dtype=np.uint8)
        newlines = find_bytes(buf, b"\n")
        if len(newlines) == 0:
            return ParseResult(tables=empty_tables())
        end = int(newlines[-1]) + 1
        line_starts = np.empty_like(newlines)
        line_starts[0] = 0
        line_starts[1:] = newlines[:-1] + 1
        line_ends = newlines
        bad_lines = np.zeros(len(line_starts), dtype=bool)
        bad_bytes = invalid_utf8(data, end)
        if len(bad_bytes):
            bad_lines[np.searchsorted(line_ends, bad_bytes)] = True

        # A record starts on a line that is not indented and matches the prefix.
        maybe = np.flatnonzero((line_ends > line_starts) & (buf[line_starts] != ord("\t")))
        buffer = pa.py_buffer(data)
        lines = strings_at(buffer, line_starts[maybe], line_ends[maybe], binary=True)
        parts = pc.extract_regex(lines, self._head_pattern)
        matched = np.asarray(parts.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
        first_lines = maybe[matched]
        parts = parts.filter(pa.array(matched))

        problems: list[tuple[int, str]] = []
        rec_line0 = first_lines
        rec_starts = line_starts[first_lines]
        if len(first_lines) == 0 or first_lines[0] > 0:
            # Lines before the first record: the tail of a record read earlier
            # (indented) or text that does not follow the configured prefix.
            stop = int(first_lines[0]) if len(first_lines) else len(line_starts)
            rec_line0 = np.concatenate([[0], first_lines]).astype(np.int64)
            rec_starts = line_starts[rec_line0]
            orphan = line_starts[:stop]
            if not (buf[orphan] == ord("\t")).all():
                problems.append(
                    (base_offset, f"line does not start with log_line_prefix {self.prefix!r}")
                )
        rec_last_line = np.empty_like(rec_line0)
        rec_last_line[:-1] = rec_line0[1:] - 1
        rec_last_line[-1] = len(line_starts) - 1
        rec_ends = line_ends[rec_last_line]
        offset0 = len(rec_line0) - len(first_lines)  # 1 when an orphan block leads

        bad_recs = np.zeros(len(rec_line0), dtype=bool)
        if bad_lines.any():
            bad_recs[np.searchsorted(rec_line0, np.flatnonzero(bad_lines), side="right") - 1] = True
            for i in np.flatnonzero(bad_recs).tolist():
                problems.append((base_offset + int(rec_starts[i]), "invalid UTF-8"))

        head_len = pc.binary_length(pc.struct_field(parts, "head")).to_numpy(zero_copy_only=False)
        first_starts = line_starts[first_lines] + head_len.astype(np.int64)
        kinds = message_kinds(buf, first_starts, line_ends[first_lines])
        keep = (kinds >= 0) & ~bad_recs[offset0:]
        other = np.flatnonzero((kinds < 0) & ~bad_recs[offset0:])
        skipped_at = rec_starts[other + offset0] + base_offset
        skipped_why = skip_codes(buf, first_starts[other], line_ends[first_lines[other]])
        idx = np.flatnonzero(keep)
        kinds = kinds[idx]
        parts = parts.filter(pa.array(keep))
        recs = idx + offset0
        msg_starts = first_starts[idx]
        msg_ends = rec_ends[recs]

        def messages(which: Offsets) -> pa.Array[Any]:
            texts = strings_at(buffer, msg_starts[which], msg_ends[which])
            return pc.replace_substring(texts, "\n\t", "\n")

        def plan_messages(offsets: Offsets) -> pa.Array[Any]:
            return messages(np.searchsorted(rec_starts[recs], offsets - base_offset))

        # AUDIT payloads go separately; plans are read later, and only those a
        # statement waits for.
        audit = kinds == _AUDIT
        talk = ~audit & (kinds != _PLAN)
        message: pa.Array[Any] = pa.nulls(len(recs), pa.string())
        if talk.any():
            position = pa.array(np.cumsum(talk) - 1, mask=~talk)
            message = pc.take(messages(np.flatnonzero(talk)), position)
        payloads = messages(np.flatnonzero(audit))

        def text(name: str) -> pa.Array[Any]:
            return blank_to_null(pc.cast(pc.struct_field(parts, name), pa.string()))

        pid = text("pid")
        session_id = text("session_id")
        is_last = recs == len(rec_line0) - 1
        records = pa.table(
            {
                "offset": pa.array(rec_starts[recs] + base_offset, pa.int64()),
                "line": pa.nulls(len(recs), pa.int64()),
                "log_time": text("log_time"),
                "time_us": pa.nulls(len(recs), pa.int64()),
                "user_name": _unknown_to_null(text("user_name")),
                "database": _unknown_to_null(text("database")),
                "pid": to_int32(pid),
                "host": _unknown_to_null(text("host")),
                "port": to_int32(text("port")),
                "session_id": session_id,
                "session_key": pc.coalesce(session_id, pid),
                "app_name": _unknown_to_null(text("app_name")),
                "what": pa.array(_KIND_NAMES).take(kinds),
                "message": message,
                "open": pa.array(is_last),
            },
            schema=RECORD_SCHEMA,
        )
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
        return ParseResult(
            tables=built.tables,
            rejected=_located(problems, data, base_offset, rec_starts, rec_ends, rec_line0),
            consumed=consumed,
            records=int(np.searchsorted(rec_starts, consumed)),
            skipped=tally_skipped(
                skipped_why[skipped_at < limit],
                records.filter(pc.less(records["offset"], pa.scalar(limit, pa.int64()))),
            ),
        )


def _unknown_to_null(values: pa.Array[Any]) -> pa.Array[Any]:
    return blank_to_null(values, "[unknown]")


def _located(
    problems: list[tuple[int, str]],
    data: bytes,
    base_offset: int,
    starts: Offsets,
    ends: Offsets,
    first_lines: Offsets,
) -> list[Rejected]:
    if not problems:
        return []
    # Only the records with a problem are looked at, however many the batch holds.
    wanted = np.asarray([offset - base_offset for offset, _ in problems], dtype=np.int64)
    i = np.clip(np.searchsorted(starts, wanted), 0, len(starts) - 1)
    which = np.sort(i[starts[i] == wanted])
    first = np.ones(len(which), dtype=bool)
    first[1:] = which[1:] != which[:-1]
    which = which[first]
    starts, ends, first_lines = starts[which], ends[which], first_lines[which]
    lines: list[int | None] = (
        (first_lines + 1).tolist() if base_offset == 0 else [None] * len(starts)
    )
    return rejected_records(
        problems,
        data,
        base_offset=base_offset,
        starts=starts.tolist(),
        ends=ends.tolist(),
        lines=lines,
    )
