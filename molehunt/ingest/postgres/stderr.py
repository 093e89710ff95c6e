"""stderr."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from molehunt.errors import ConfigError, Location
from molehunt.ingest.base import FormatMismatchError, ParseResult, Rejected
from molehunt.ingest.postgres.events import build_events
from molehunt.ingest.postgres.kernels import (
    Offsets,
    blank_to_null,
    find_bytes,
    invalid_utf8,
    strings_at,
    to_int32,
)
from molehunt.ingest.postgres.plans import DEFAULT_PLAN_WINDOW
from molehunt.ingest.postgres.prefix import (
    DEFAULT_PREFIX,
    SAMPLE_LINES,
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
        self.configured_prefix = prefix
        #: The prefix read off the file when the configured one does not fit it.
        self.inferred_prefix: str | None = None
        try:
            self._use(prefix)
        except ValueError as e:
            raise ConfigError(f"pg_log_line_prefix: {e}") from e
        # The server's log_timezone settles the abbreviations it prints (CST...).
        self.zones = {**log_zones(log_timezone), **(zones or {})}
        self.plan_window = plan_window

    def _infer(self, lines: pa.Array[Any], path: str) -> None:
        _infer_for(self, lines, path)

    def _use(self, prefix: str) -> None:
        self.prefix = prefix
        self.pattern = prefix_pattern(prefix)
        # The message is wherever the head ends: matching it too would only cost time.
        self._head_pattern = self.pattern[: self.pattern.rindex("(?P<message>")]
        self._python_pattern = re.compile(self.pattern.encode())

    @classmethod
    def from_settings(cls, settings: Settings) -> PgStderrParser:
        """The parser for ``pg_log_line_prefix`` and ``pg_log_timezone`` (or ``timezone``)."""
        return cls(
            settings.pg_log_line_prefix,
            log_timezone=settings.pg_log_timezone or settings.timezone,
        )

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
        if len(maybe) and matched.sum() < _MATCHED * len(maybe):
            # Most lines do not start with the configured prefix: the file was
            # written with another. Read it with the one its lines show, or
            # refuse it whole (its checkpoint stays, nothing is lost).
            self._infer(lines, path)
            return self.parse(
                data, base_offset=base_offset, source_id=source_id, path=path, final=final
            )
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
        audit = kinds == AUDIT_KIND
        talk = ~audit & (kinds != PLAN_KIND)
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
                "what": pa.array(KIND_NAMES).take(kinds),
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
            pending=built.pending,
            skipped=tally_skipped(
                skipped_why[skipped_at < limit],
                records,
                limit,
            ),
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
