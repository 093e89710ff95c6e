"""``log_line_prefix``: the pattern a prefix gives, and the prefix a file's lines show.

Used by ``pg-stderr`` and ``pg-syslog``; :data:`DEFAULT_PREFIX` is the setting
``pg_log_line_prefix``'s default.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Self

from molehunt.ingest.postgres.plans import DEFAULT_PLAN_WINDOW

if TYPE_CHECKING:
    from molehunt.config import Settings

#: ``pg_log_line_prefix``'s default (``config.DEFAULT_PG_PREFIX`` must equal it: a test
#: holds them together; importing the settings here would load every detector).
DEFAULT_PREFIX = "%m [%p] %q%u@%d %h app=%a "

_TIME_PATTERN = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"
# What each log_line_prefix escape prints, as RE2; named groups feed the record.
_ESCAPES: dict[str, tuple[str | None, str]] = {
    "m": ("log_time", _TIME_PATTERN + r"\.\d{3} [^\s\]]+"),
    "t": ("log_time", _TIME_PATTERN + r" [^\s\]]+"),
    "p": ("pid", r"\d+"),
    "u": ("user_name", r".*?"),
    "d": ("database", r".*?"),
    "h": ("host", r"\S*"),
    "a": ("app_name", r".*?"),
    "c": ("session_id", r"[0-9a-f]+\.[0-9a-f]+"),
    "n": (None, r"\d+\.\d{3}"),
    "l": (None, r"\d+"),
    "s": (None, _TIME_PATTERN + r" \S+"),
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
SAMPLE_LINES = 400


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
    sample = [line for line in lines[:SAMPLE_LINES] if line and not line.startswith("\t")]
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


class PrefixedLogParser:
    """A parser of lines that start with ``log_line_prefix`` (pg-stderr, pg-syslog).

    Both take the same options: the prefix (``pg_log_line_prefix``), the server's
    ``log_timezone`` (which settles the abbreviations it prints, such as CST),
    zone texts to add, and the byte window within which a plan must appear.
    """

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
        self.extra_zones: dict[str, str] = dict(zones or {})
        self.log_timezone = log_timezone
        self.plan_window = plan_window
        self.configure(prefix)

    def configure(self, prefix: str) -> None:
        """Set the parser up for ``prefix`` (each subclass says how)."""
        raise NotImplementedError

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        """The parser for ``pg_log_line_prefix`` and ``pg_log_timezone`` (or ``timezone``)."""
        return cls(
            settings.pg_log_line_prefix,
            log_timezone=settings.pg_log_timezone or settings.timezone,
        )
