"""PostgreSQL stderr log (``log_destination = 'stderr'``) with pgAudit and auto_explain.

Each record starts with ``log_line_prefix`` (by default ``%m [%p] %q%u@%d %h app=%a``)
then ``SEVERITY:  message``. When most lines of a batch do not start with the
configured prefix, the prefix is read off the lines (:func:`infer_prefix`) and the
file read with it (``inferred_prefix`` says which); if none fits, the file is
refused whole (:class:`FormatMismatchError`, naming ``pg_log_line_prefix`` and the
prefix the file looks like), so its checkpoint stays and nothing is lost.
PostgreSQL indents the further lines of a message (a multi-line statement, a
JSON plan) with a tab; such lines, and any line that does not start with the
prefix, belong to the record before. Lines are cut in numpy and matched against
the prefix in one vectorised regex call; the same
events as ``pg-csvlog`` come out of :mod:`molehunt.ingest.postgres.events`.

``%a`` is chosen by the client: an application name that imitates the end of
the prefix can shift where the message seems to start. csvlog quotes every
field and has no such ambiguity; prefer it where you can.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from molehunt.errors import ConfigError, Location
from molehunt.ingest.base import FormatMismatchError, ParseResult, Rejected
from molehunt.ingest.postgres.events import build_events
from molehunt.ingest.postgres.kernels import (
    Mask,
    Offsets,
    blank_to_null,
    find_bytes,
    invalid_utf8,
    strings_at,
    to_int32,
)
from molehunt.ingest.postgres.prefix import (
    DEFAULT_PREFIX,
    SAMPLE_LINES,
    PrefixedLogParser,
    infer_prefix,
    looks_like_syslog,
    prefix_pattern,
)
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
from molehunt.ingest.postgres.zones import log_zones

if TYPE_CHECKING:
    from molehunt.config import Settings


class PrefixMismatchError(FormatMismatchError):
    """A pg-stderr file not written with the configured log_line_prefix."""


class PgStderrParser(PrefixedLogParser):
    """PostgreSQL stderr log with pgAudit: audited statements, connections and disconnections."""

    kind: ClassVar[str] = "pg-stderr"
    description: ClassVar[str] = (
        "PostgreSQL 15 stderr log (log_line_prefix) with pgAudit and auto_explain (JSON)"
    )

    def configure(self, prefix: str) -> None:
        try:
            self._use(prefix)
        except ValueError as e:
            raise ConfigError(f"pg_log_line_prefix: {e}") from e
        # The server's log_timezone settles the abbreviations it prints (CST...).
        self.zones = {**log_zones(self.log_timezone), **self.extra_zones}

    def _infer(self, lines: pa.Array[Any], path: str) -> None:
        _infer_for(self, lines, path)

    def _use(self, prefix: str) -> None:
        self.prefix = prefix
        self.pattern = prefix_pattern(prefix)
        # The message is wherever the head ends: matching it too would only cost time.
        self._head_pattern = self.pattern[: self.pattern.rindex("(?P<message>")]
        self._python_pattern = re.compile(self.pattern.encode())

    @classmethod
    def sniff(cls, head: bytes) -> bool:
        """Written with the default prefix, or with one its lines show."""
        return cls.sniff_configured(head, DEFAULT_PREFIX)

    @classmethod
    def sniff_configured(cls, head: bytes, prefix: str | Settings) -> bool:
        """Whether ``head`` is a stderr log written with ``prefix`` (a prefix or the
        settings' ``pg_log_line_prefix``) or with a prefix its lines show."""
        if not isinstance(prefix, str):
            prefix = prefix.pg_log_line_prefix
        first = head.split(b"\n", 1)[0]
        if looks_like_syslog(first):
            return False
        try:
            if re.match(prefix_pattern(prefix).encode(), first) is not None:
                return True
        except ValueError:
            pass
        lines = head.decode("utf-8", "replace").split("\n")[:-1]
        return infer_prefix(lines[:50])[0] is not None

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
        lines = _Lines.of(data, buf, newlines)
        # A record starts on a line that is not indented and matches the prefix.
        maybe = np.flatnonzero((lines.ends > lines.starts) & (buf[lines.starts] != ord("\t")))
        texts = strings_at(pa.py_buffer(data), lines.starts[maybe], lines.ends[maybe], binary=True)
        parts = pc.extract_regex(texts, self._head_pattern)
        matched = np.asarray(parts.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
        if len(maybe) and matched.sum() < _MATCHED * len(maybe):
            # Most lines do not start with the configured prefix: the file was
            # written with another. Read it with the one its lines show, or
            # refuse it whole (its checkpoint stays, nothing is lost).
            self._infer(texts, path)
            return self.parse(
                data, base_offset=base_offset, source_id=source_id, path=path, final=final
            )
        cut = _cut_records(buf, lines, maybe[matched], base_offset, self.prefix)
        return self._events(
            data,
            lines,
            cut,
            parts.filter(pa.array(matched)),
            base_offset=base_offset,
            source_id=source_id,
            final=final,
        )

    def _events(
        self,
        data: bytes,
        lines: _Lines,
        cut: _Cut,
        parts: pa.Array[Any],
        *,
        base_offset: int,
        source_id: str,
        final: bool,
    ) -> ParseResult:
        """The events of the records ``cut`` (``parts``: the prefix fields of each)."""
        buf = np.frombuffer(data, dtype=np.uint8)
        first_lines, offset0 = cut.first_lines, cut.offset0
        head_len = pc.binary_length(pc.struct_field(parts, "head")).to_numpy(zero_copy_only=False)
        first_starts = lines.starts[first_lines] + head_len.astype(np.int64)
        kinds = message_kinds(buf, first_starts, lines.ends[first_lines])
        keep = (kinds >= 0) & ~cut.bad[offset0:]
        other = np.flatnonzero((kinds < 0) & ~cut.bad[offset0:])
        skipped_at = cut.starts[other + offset0] + base_offset
        skipped_why = skip_codes(buf, first_starts[other], lines.ends[first_lines[other]])
        idx = np.flatnonzero(keep)
        kinds = kinds[idx]
        recs = idx + offset0
        msg_starts, msg_ends = first_starts[idx], cut.ends[recs]
        buffer = pa.py_buffer(data)

        def messages(which: Offsets) -> pa.Array[Any]:
            texts = strings_at(buffer, msg_starts[which], msg_ends[which])
            return pc.replace_substring(texts, "\n\t", "\n")

        def plan_messages(offsets: Offsets) -> pa.Array[Any]:
            return messages(np.searchsorted(cut.starts[recs], offsets - base_offset))

        # AUDIT payloads go separately; plans are read later, and only those a
        # statement waits for.
        audit = kinds == AUDIT_KIND
        talk = ~audit & (kinds != PLAN_KIND)
        message: pa.Array[Any] = pa.nulls(len(recs), pa.string())
        if talk.any():
            position = pa.array(np.cumsum(talk) - 1, mask=~talk)
            message = pc.take(messages(np.flatnonzero(talk)), position)
        records = _record_table(
            parts.filter(pa.array(keep)),
            cut.starts[recs] + base_offset,
            kinds,
            message,
            recs == len(cut.line0) - 1,
        )
        built = build_events(
            records,
            payloads=messages(np.flatnonzero(audit)),
            plan_messages=plan_messages,
            kind=self.kind,
            source_id=source_id,
            data_end=base_offset + lines.end,
            final=final,
            zones=self.zones,
            plan_window=self.plan_window,
        )
        consumed = lines.end if built.cutoff is None else built.cutoff - base_offset
        limit = base_offset + consumed
        problems = sorted([p for p in cut.problems if p[0] < limit] + built.rejected)
        return ParseResult(
            tables=built.tables,
            rejected=_located(problems, data, base_offset, cut.starts, cut.ends, cut.line0),
            consumed=consumed,
            records=int(np.searchsorted(cut.starts, consumed)),
            pending=built.pending,
            skipped=tally_skipped(skipped_why[skipped_at < limit], records, limit),
        )


@dataclass(frozen=True, slots=True)
class _Lines:
    """The whole lines of a batch: where each starts and ends (at its newline),
    which hold invalid UTF-8, and the end of the last."""

    starts: Offsets
    ends: Offsets
    bad: Mask
    end: int

    @classmethod
    def of(cls, data: bytes, buf: npt.NDArray[np.uint8], newlines: Offsets) -> _Lines:
        end = int(newlines[-1]) + 1
        starts = np.empty_like(newlines)
        starts[0] = 0
        starts[1:] = newlines[:-1] + 1
        bad = np.zeros(len(starts), dtype=bool)
        bad_bytes = invalid_utf8(data, end)
        if len(bad_bytes):
            bad[np.searchsorted(newlines, bad_bytes)] = True
        return cls(starts, newlines, bad, end)


@dataclass(frozen=True, slots=True)
class _Cut:
    """The records of a batch: their first and last lines' bounds, which are bad,
    and the problems found cutting them. ``first_lines`` are the lines that
    matched the prefix; ``offset0`` is 1 when an orphan block leads."""

    line0: Offsets
    starts: Offsets
    ends: Offsets
    first_lines: Offsets
    offset0: int
    bad: Mask
    problems: list[tuple[int, str]]


def _cut_records(
    buf: npt.NDArray[np.uint8], lines: _Lines, first_lines: Offsets, base_offset: int, prefix: str
) -> _Cut:
    """Records from the lines that start one (``first_lines``) to the next."""
    problems: list[tuple[int, str]] = []
    line0 = first_lines
    if len(first_lines) == 0 or first_lines[0] > 0:
        # Lines before the first record: the tail of a record read earlier
        # (indented) or text that does not follow the configured prefix.
        stop = int(first_lines[0]) if len(first_lines) else len(lines.starts)
        line0 = np.concatenate([[0], first_lines]).astype(np.int64)
        if not (buf[lines.starts[:stop]] == ord("\t")).all():
            problems.append((base_offset, f"line does not start with log_line_prefix {prefix!r}"))
    starts = lines.starts[line0]
    last_line = np.empty_like(line0)
    last_line[:-1] = line0[1:] - 1
    last_line[-1] = len(lines.starts) - 1
    bad = np.zeros(len(line0), dtype=bool)
    if lines.bad.any():
        bad[np.searchsorted(line0, np.flatnonzero(lines.bad), side="right") - 1] = True
        for i in np.flatnonzero(bad).tolist():
            problems.append((base_offset + int(starts[i]), "invalid UTF-8"))
    offset0 = len(line0) - len(first_lines)
    return _Cut(line0, starts, lines.ends[last_line], first_lines, offset0, bad, problems)


def _record_table(
    parts: pa.Array[Any], offsets: Offsets, kinds: Offsets, message: pa.Array[Any], last: Mask
) -> pa.Table:
    """The :data:`RECORD_SCHEMA` table of the records kept (``parts``: their prefix fields)."""

    def text(name: str) -> pa.Array[Any]:
        return blank_to_null(pc.cast(pc.struct_field(parts, name), pa.string()))

    n = len(offsets)
    pid = text("pid")
    session_id = text("session_id")
    return pa.table(
        {
            "offset": pa.array(offsets, pa.int64()),
            "line": pa.nulls(n, pa.int64()),
            "log_time": text("log_time"),
            "time_us": pa.nulls(n, pa.int64()),
            "user_name": _unknown_to_null(text("user_name")),
            "database": _unknown_to_null(text("database")),
            "pid": to_int32(pid),
            "host": _unknown_to_null(text("host")),
            "port": to_int32(text("port")),
            "session_id": session_id,
            "session_key": pc.coalesce(session_id, pid),
            "app_name": _unknown_to_null(text("app_name")),
            "what": pa.array(KIND_NAMES).take(kinds),
            "message": message,
            "open": pa.array(last),
        },
        schema=RECORD_SCHEMA,
    )


#: Below this share of unindented lines matching the prefix, the file is taken
#: to be written with another prefix.
_MATCHED = 0.5


def _infer_for(parser: PgStderrParser, lines: pa.Array[Any], path: str) -> None:
    sample = [
        (b or b"").decode("utf-8", "replace") for b in lines.slice(0, SAMPLE_LINES).to_pylist()
    ]
    found, guess = infer_prefix(sample)
    if found is None or found == parser.prefix:
        looks = f" (this file looks like {guess!r})" if guess and guess != parser.prefix else ""
        if sample and looks_like_syslog(sample[0].encode()):
            looks = " (this file looks like PostgreSQL through syslog: --kind pg-syslog)"
        raise PrefixMismatchError(
            f"log_line_prefix does not match: set pg_log_line_prefix{looks}; "
            f"configured: {parser.configured_prefix!r}",
            Location(path),
        )
    parser._use(found)
    parser.inferred_prefix = found


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
