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

from molehunt.errors import ConfigError, Location
from molehunt.ingest.base import FormatMismatchError, ParseResult, Rejected
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
#: A severity: English and most translations (FEHLER, ERREUR) are upper-case ASCII;
#: others (日志, ОШИБКА) start with a non-ASCII letter.
_SEVERITY = r"(?:[A-Z][A-Z0-9]*|[^\x00-\x7f][^\s:]*)"
_GROUPS = ("log_time", "pid", "user_name", "database", "host", "port", "app_name", "session_id")


def prefix_pattern(prefix: str, *, require_time: bool = True) -> str:
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
            continue  # PostgreSQL prints nothing for an escape it does not know
        name, body = _ESCAPES[escape]
        pad = " *" if padding else ""
        if name is None or name in seen:
            parts.append(f"{pad}(?:{body}){pad}")
        else:
            seen.add(name)
            parts.append(f"{pad}(?P<{name}>{body}){pad}")
    if "log_time" not in seen and require_time:
        raise ValueError(f"log_line_prefix {prefix!r} needs %m or %t: events need a time")
    # Without %p or %c sessions cannot be told apart: events are still read, but
    # no auto_explain plan can be tied to its statement.
    if optional_from is not None:
        parts[optional_from:] = ["(?:" + "".join(parts[optional_from:]) + ")?"]
    missing = "".join(f"(?P<{g}>)" for g in _GROUPS if g not in seen)
    body = "".join(parts)
    # The severity is translated where lc_messages is (FEHLER, ERREUR, 日志...).
    return f"^(?P<head>{body}{missing}(?P<severity>{_SEVERITY}) ?:  )(?P<message>.*)$"


# -- inferring a log_line_prefix from the lines ----------------------------------------

#: Where a record's head ends: the severity (English or translated), ``:`` and two spaces.
_HEAD_END = re.compile(r"^(?P<head>.*?)(?:(?<=\s)|(?<=^)|(?<=[:\]>)]))" + _SEVERITY + r" ?:  ")
_KEYS = {
    "user": "%u",
    "usr": "%u",
    "u": "%u",
    "role": "%u",
    "db": "%d",
    "database": "%d",
    "dbname": "%d",
    "app": "%a",
    "application": "%a",
    "appname": "%a",
    "application_name": "%a",
    "client": "%h",
    "host": "%h",
    "remote": "%h",
    "client_addr": "%h",
    "clientaddr": "%h",
    "pid": "%p",
    "session": "%c",
    "sid": "%c",
    "session_id": "%c",
    "line": "%l",
    "xid": "%x",
    "txid": "%x",
    "tx": "%x",
    "vxid": "%v",
    "query_id": "%Q",
    "queryid": "%Q",
    "sqlstate": "%e",
    "state": "%e",
    "backend": "%b",
    "backend_type": "%b",
    "tag": "%i",
}
_TOKEN = re.compile(
    r"(?P<m>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} (?:[A-Za-z]+|[+-]\d\d(?::?\d\d)?))"
    r"|(?P<t>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (?:[A-Za-z]+|[+-]\d\d(?::?\d\d)?))"
    r"|(?P<n>\d{10}\.\d{3})"
    r"|(?P<kv>(?P<key>[A-Za-z_]+)=(?P<value>\[local\]|[^,\s\]]*))"
    r"|(?P<at>[^\s@:\[\]<>()]*@[^\s@:\[\]<>(),]*)"
    r"|(?P<r>(?:\d{1,3}(?:\.\d{1,3}){3}|[0-9a-fA-F:]*:[0-9a-fA-F:]+|\[local\]|[\w.-]+)\(\d+\))"
    r"|(?P<h>\d{1,3}(?:\.\d{1,3}){3}|\[local\])"
    r"|(?P<c>[0-9a-f]{6,}\.[0-9a-f]+)"
    r"|(?P<pl>\[\d+-1\])"
    r"|(?P<num>\d+)"
)
#: Escapes PostgreSQL leaves out of a background process's line after ``%q``.
_SESSION_ONLY = ("%u", "%d", "%r", "%h", "%a", "%i")
#: Prefixes seen in the wild, tried beside the ones read off the lines.
COMMON_PREFIXES = (
    "%m [%p] ",
    "%m [%p] %q%u@%d ",
    "%m [%p] %q%u@%d %h app=%a ",
    "%t [%p] ",
    "%t [%p]: [%l-1] ",
    "%t [%p]: [%l-1] user=%u,db=%d,app=%a,client=%h ",
    "%m [%p]: [%l-1] user=%u,db=%d,app=%a,client=%h ",
    "%t [%p]: user=%u,db=%d,app=%a,client=%h ",
    "%t:%r:%u@%d:[%p]:",
    "%m:%r:%u@%d:[%p]:",
    "%t [%p-%l] %q%u@%d ",
    "%m [%p-%l] %q%u@%d ",
    "< %m > ",
    "< %m %u %d %h %p > ",
    "%m %u %d [%p] ",
    "%m [%p] %q[user=%u,db=%d,app=%a] ",
    "%m %c %p ",
)
_SAMPLE_LINES = 400


def _shape(head: str) -> str | None:
    """A log_line_prefix that writes ``head`` (the text before the severity), or None."""
    out: list[str] = []
    at = 0
    seen: set[str] = set()
    for m in _TOKEN.finditer(head):
        literal = head[at : m.start()]
        out.append(literal.replace("%", "%%"))
        at = m.end()
        kind = m.lastgroup
        if kind == "kv" or m.group("key"):
            key = m.group("key")
            escape = _KEYS.get(key.lower())
            if escape is None:
                return None
            if escape == "%h" and "(" in head[m.start() : m.start() + 80].split(",")[0]:
                escape = "%r"
            out.append(f"{key}={escape}")
            seen.add(escape)
            continue
        if kind == "at":
            out.append("%u@%d")
            seen.update(("%u", "%d"))
        elif kind == "pl":
            out.append("[%l-1]")
        elif kind == "num":
            # A bare number is the pid once (then the session line number).
            escape = "%l" if "%p" in seen else "%p"
            out.append(escape)
            seen.add(escape)
        elif kind in ("m", "t", "n", "r", "h", "c"):
            out.append(f"%{kind}")
            seen.add(f"%{kind}")
    out.append(head[at:].replace("%", "%%"))
    return "".join(out)


def _with_q(prefix: str) -> str:
    """``prefix`` with ``%q`` before its first session-only escape (if it lacks one)."""
    if "%q" in prefix:
        return prefix
    spots = [prefix.find(e) for e in _SESSION_ONLY if e in prefix]
    if not spots:
        return prefix
    cut = min(spots)
    # %q goes before the literal text that leads into the session fields.
    while cut > 0 and prefix[cut - 1] not in " ]:>":
        cut -= 1
    return prefix[:cut] + "%q" + prefix[cut:]


def infer_prefix(lines: list[str]) -> tuple[str | None, str | None]:
    """The log_line_prefix that writes ``lines`` (first lines of records), and the
    best guess when none fits well enough (for the message to the user).

    Candidates are read off the lines themselves (timestamps, ``[pid]``,
    ``user=..``, ``user@db``, ``host(port)``...) and taken from
    :data:`COMMON_PREFIXES`; the one whose pattern matches most of the lines
    wins if it matches nearly all of them (lines from a background process
    print less with ``%q``).
    """
    sample = [line for line in lines[:_SAMPLE_LINES] if line and not line.startswith("\t")]
    if not sample:
        return None, None
    candidates: dict[str, None] = {}
    for line in sample:
        m = _HEAD_END.match(line)
        if m is None:
            continue
        shape = _shape(m.group("head"))
        if shape is not None:
            for variant in (shape.replace("%h", "%r"), shape):
                candidates[variant] = None
                candidates[_with_q(variant)] = None
        if len(candidates) > 40:
            break
    candidates.update(dict.fromkeys(COMMON_PREFIXES))
    best: tuple[tuple[int, ...], str] | None = None
    for prefix in candidates:
        try:
            pattern = re.compile(prefix_pattern(prefix))
        except (ValueError, re.error):
            continue
        found = [m for m in map(pattern.match, sample) if m is not None]
        hits = len(found)
        # More lines matched first; then the prefix that reads more fields off
        # them (host and port over a host that swallows the port; no %q where
        # background lines print the fields after it); then the simpler one.
        captured = sum(1 for m in found for g in _GROUPS if m.group(g))
        score = (hits, captured, -prefix.count("%"))
        if hits and (best is None or score > best[0]):
            best = (score, prefix)
    if best is None:
        guess = next(iter(candidates)) if candidates else None
        return None, guess if guess not in COMMON_PREFIXES else None
    hits, prefix = best[0][0], best[1]
    return (prefix if hits >= 0.95 * len(sample) else None), prefix


_SYSLOG = re.compile(rb"^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \S+ [^\s\[]+\[\d+\]: ")


def looks_like_syslog(line: bytes) -> bool:
    """Whether ``line`` starts like an RFC 3164 syslog line from a program with a pid."""
    return _SYSLOG.match(line) is not None


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
        (b or b"").decode("utf-8", "replace") for b in lines.slice(0, _SAMPLE_LINES).to_pylist()
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
