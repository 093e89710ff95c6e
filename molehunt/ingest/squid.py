"""Squid access logs in molehunt's own logformat, which records upload sizes.

Squid's default format logs only the bytes sent to the client, so an upload is
invisible in it. Proxies that molehunt watches log with this format instead
(``formats.md``)::

    logformat molehunt %ts.%03tu %>a %un %rm %>rs %>rd %>rP %>Hs %Ss/%Sh %>st %>sh %<st %<sh "%mt" %tr "%{User-Agent}>h" "%{Content-Type}>h" %{Content-Length}>h "%ru"
    access_log /var/log/squid/access.log molehunt

A compiled kernel (:mod:`molehunt.ingest.squid_cut`) cuts the plain lines, most
of any log, in one pass over the bytes. The lines it leaves (anything doubtful:
non-ASCII, escapes, IPv6 hosts, bad lines) are parsed in bulk by DuckDB: plain
string splits cut each line at its quotes and spaces, its shape is checked from
the pieces (a pattern without captures over the short unquoted ones only), and
only lines it refuses (a header holding an escaped quote, a user name holding a
space: Squid 5 writes both unescaped) go through a slower capturing expression,
which also rejects the bad ones with a reason. The SQL defines what a line
means; the kernel yields the same for the lines it takes.
Byte offsets of lines, for event ids, come from numpy over the buffer.

The helpers here are shared with :mod:`molehunt.ingest.squid_native`.
"""  # noqa: E501

from __future__ import annotations

import re
from typing import Any, ClassVar, cast

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from molehunt.ingest.base import ParseResult, Rejected, event_ids
from molehunt.ingest.squid_cut import MAX_BYTES, Kernel, cut, cut_molehunt

TABLE = "events_http"

#: The logformat line to put in squid.conf for this parser.
LOGFORMAT = (
    "logformat molehunt %ts.%03tu %>a %un %rm %>rs %>rd %>rP %>Hs %Ss/%Sh %>st %>sh %<st %<sh"
    ' "%mt" %tr "%{User-Agent}>h" "%{Content-Type}>h" %{Content-Length}>h "%ru"'
)

#: Columns of ``events_http`` that the Squid parsers fill, in store order.
_COLUMNS: list[pa.Field[Any]] = [
    pa.field("event_id", pa.string()),
    pa.field("time", pa.timestamp("us", tz="UTC")),
    pa.field("source_id", pa.string()),
    pa.field("kind", pa.string()),
    pa.field("src_ip", pa.string()),
    pa.field("user_name", pa.string()),
    pa.field("method", pa.string()),
    pa.field("url", pa.string()),
    pa.field("host", pa.string()),
    pa.field("port", pa.int32()),
    pa.field("path", pa.string()),
    pa.field("status", pa.int32()),
    pa.field("squid_result", pa.string()),
    pa.field("hierarchy", pa.string()),
    pa.field("bytes_out", pa.int64()),
    pa.field("bytes_in", pa.int64()),
    pa.field("request_content_type", pa.string()),
    pa.field("content_type", pa.string()),
    pa.field("user_agent", pa.string()),
    pa.field("duration_ms", pa.int64()),
]
SCHEMA = pa.schema(_COLUMNS)

# A rejected line's raw text is kept for the quarantine, but a "line" of binary
# garbage can be megabytes long: keep its head only.
MAX_RAW = 65536

# The newline scan reuses one small mask instead of allocating one as large as
# the chunk: page faults on a fresh 64 MiB array cost more than the scan itself.
_SCAN_BLOCK = 1 << 20

# Rows per Arrow batch handed to DuckDB (its unit of parallel work).
_BATCH_ROWS = 20480

# Pieces of the line patterns. They are written for both RE2 (DuckDB) and
# Python's re (sniffing, and the tests' reference), whose syntax agrees on these.
FIELD = r"[^ ]+"
NUM = r"(?:[0-9]+|-)"
# %ts.%03tu, or %ts alone (whole seconds) as some deployments log it.
TIME = r"[0-9]+(?:\.[0-9]{3})?"
EOL = r"\r?\n"
# Squid writes a header inside quotes with \" and \\ escaped, tab as \t, and
# other control characters raw.
_QUOTED = r'"((?:[^"\\]|\\.)*)"'
_PLAIN = r'[^ "]+'

# Group names, in order, of the capturing pattern (the slow path).
_FIELDS = (
    "ts",
    "src_ip",
    "user_name",
    "method",
    "scheme",
    "domain",
    "port",
    "status",
    "squid_result",
    "hierarchy",
    "bytes_out",
    "request_header_bytes",
    "bytes_in",
    "reply_header_bytes",
    "content_type",
    "duration_ms",
    "user_agent",
    "request_content_type",
    "content_length",
    "url",
)
# A user name may hold spaces (Squid 5 logs %un raw): it takes the shortest run
# that lets the rest of the line, whose fields hold no spaces, match.
_SLOW = (
    rf"({TIME}) ({FIELD}) ([^ ].*?) ({FIELD}) ({FIELD}) ({FIELD}) ({NUM}) ({NUM})"
    rf" ([^ /]+)/({FIELD}) ([0-9]+) ({NUM}) ([0-9]+) ({NUM}) {_QUOTED} ({NUM}) {_QUOTED}"
    rf" {_QUOTED} ({NUM}) \"(.*)\"{EOL}"
)

#: The whole line, as Python's re; the SQL below accepts exactly these lines.
LINE_RE = re.compile(_SLOW)


def sql_literal(text: str) -> str:
    """``text`` as a SQL string literal (patterns are ours, but quote them right)."""
    return "'" + text.replace("'", "''") + "'"


def unescape(expr: str) -> str:
    """SQL undoing Squid's quoting of a header value (``\\"`` and ``\\\\`` only)."""
    return f"regexp_replace({expr}, '\\\\([\"\\\\])', '\\1', 'g')"


# Squid lower-cases host names in URLs and in %>rd, and writes an IPv6 %>rd as
# %5B::1%5D: only brackets and their escapes need removing.
def bare_host(expr: str) -> str:
    """SQL: a host as Squid logs it, without IPv6 brackets; NULL for '' or '-'."""
    return (
        f"CASE WHEN {expr} IN ('', '-') THEN NULL"
        f" WHEN starts_with({expr}, '[') THEN trim({expr}, '[]') ELSE {expr} END"
    )


def after_scheme(url: str) -> str:
    """SQL: what follows ``scheme://`` in an absolute URL; NULL if it is not one."""
    return f"CASE WHEN contains({url}, '://') THEN substr({url}, strpos({url}, '://') + 3) END"


def url_authority(rest: str) -> str:
    """SQL: the authority (``user@host:port``) of an absolute URL, given
    :func:`after_scheme` of it."""
    return f"regexp_extract({rest}, '^[^/?#]*')"


def without_query(rest: str) -> str:
    """SQL: :func:`after_scheme` of a URL with its query and fragment cut."""
    return f"split_part(split_part({rest}, '?', 1), '#', 1)"


# Plain string functions, not patterns: on a 66 MiB batch the two anchored
# extractions this replaces cost 0.05-0.06 s of the query's 0.57 (one thread).
def path_of(cut: str) -> str:
    """SQL: the path of an absolute URL given :func:`without_query` of it (the
    authority holds no '/'); '/' when it names none, NULL if it is not one."""
    return (
        f"CASE WHEN strpos({cut}, '/') > 0 THEN substr({cut}, strpos({cut}, '/'))"
        f" WHEN {cut} IS NOT NULL THEN '/' END"
    )


def without_userinfo(authority: str) -> str:
    """SQL: ``host:port`` of an authority that may start with ``user@``."""
    return (
        f"CASE WHEN contains({authority}, '@') THEN split_part({authority}, '@', -1)"
        f" ELSE {authority} END"
    )


def authority_host(authority: str) -> str:
    """SQL: the host part of ``host[:port]`` (an IPv6 address keeps its brackets)."""
    return (
        f"CASE WHEN starts_with({authority}, '[') THEN split_part({authority}, ']', 1) || ']'"
        f" ELSE split_part({authority}, ':', 1) END"
    )


def port_of(authority: str) -> str:
    """SQL: the port text of ``host[:port]``, NULL when absent."""
    return (
        f"nullif(CASE WHEN starts_with({authority}, '[')"
        f" THEN split_part(split_part({authority}, ']', 2), ':', 2)"
        f" WHEN contains({authority}, ':') THEN split_part({authority}, ':', -1) END, '')"
    )


def default_port(scheme: str) -> str:
    """SQL: the port a URL scheme implies when the URL names none."""
    return (
        f"CASE lower({scheme}) WHEN 'http' THEN '80' WHEN 'https' THEN '443' WHEN 'ftp' THEN '21'"
        " WHEN 'ws' THEN '80' WHEN 'wss' THEN '443' END"
    )


# Columns the SQL yields after ``o`` and ``reason``, in its order.
_SQL_NAMES = (
    "us",
    "src_ip",
    "user_name",
    "method",
    "url",
    "host",
    "port",
    "path",
    "status",
    "squid_result",
    "hierarchy",
    "bytes_out",
    "bytes_in",
    "request_content_type",
    "content_type",
    "user_agent",
    "duration_ms",
)

RETRY = "retry"
# Later than 9999-12-31 is no clock's time (and no Python datetime's either).
_MAX_MS = 253_402_300_800_000


def typed_select(format_name: str) -> str:
    """SQL over ``fields``: text columns named after ``events_http``, plus ``o``,
    ``line`` (NULL when not UTF-8) and ``ok`` (FALSE: refused, NULL: to retry
    with the capturing pattern). Yields the typed columns and ``reason`` (NULL
    for a good line)."""
    return f"""
typed AS (
  SELECT o, line, ok, src_ip, user_name, method, url, host, path, squid_result, hierarchy,
    request_content_type, content_type, user_agent,
    CASE WHEN millis < {_MAX_MS} THEN millis * 1000 END AS us,
    port AS port_text,
    CASE WHEN regexp_full_match(port, '[0-9]+') THEN TRY_CAST(port AS USMALLINT) END AS port,
    status AS status_text, TRY_CAST(status AS USMALLINT) AS status,
    bytes_out AS bytes_out_text, TRY_CAST(bytes_out AS BIGINT) AS bytes_out,
    bytes_in AS bytes_in_text, TRY_CAST(bytes_in AS BIGINT) AS bytes_in,
    duration_ms AS duration_text, TRY_CAST(duration_ms AS BIGINT) AS duration_ms
  FROM (
    SELECT *, CASE WHEN contains(ts, '.') THEN TRY_CAST(replace(ts, '.', '') AS BIGINT)
      ELSE TRY_CAST(ts || '000' AS BIGINT) END AS millis
    FROM fields
  )
)
SELECT o,
  CASE
    WHEN line IS NULL THEN 'invalid UTF-8'
    WHEN ok IS NULL THEN '{RETRY}'
    WHEN NOT ok THEN 'not a line of the {format_name}'
    WHEN us IS NULL THEN 'timestamp out of range'
    WHEN port IS NULL AND port_text IS NOT NULL THEN 'port out of range'
    WHEN status IS NULL AND status_text IS NOT NULL THEN 'status out of range'
    WHEN (bytes_out IS NULL AND bytes_out_text IS NOT NULL)
      OR (bytes_in IS NULL AND bytes_in_text IS NOT NULL) THEN 'byte count out of range'
    WHEN duration_ms IS NULL AND duration_text IS NOT NULL THEN 'duration out of range'
  END AS reason,
  us, src_ip, user_name, method, url, host, CAST(port AS INTEGER) AS port, path,
  CAST(status AS INTEGER) AS status, squid_result, hierarchy, bytes_out, bytes_in,
  request_content_type, content_type, user_agent, duration_ms
FROM typed
"""


def url_steps(path_name: str) -> str:
    """SQL CTE steps (each ending in a comma) from a ``texts`` step holding ``method``
    and ``url`` to one that adds ``host_text``, ``port_text`` and ``path_name``, for the
    formats that log only the URL (the native format, a custom logformat); CONNECT's
    URL is ``host:port``."""
    return f"""
rested AS (
  SELECT *, CASE WHEN method = 'CONNECT' THEN NULL ELSE {after_scheme("url")} END AS rest
  FROM texts
),
authorities AS (
  SELECT *, {url_authority("rest")} AS authority, {without_query("rest")} AS cut FROM rested
),
targeted AS (
  SELECT *,
    CASE WHEN method = 'CONNECT' THEN url ELSE {without_userinfo("authority")} END AS target
  FROM authorities
),
hosted AS (
  SELECT *, {authority_host("target")} AS host_text, {port_of("target")} AS port_text,
    {path_of("cut")} AS {path_name}
  FROM targeted
),"""


# The text fields of the molehunt format, whichever pattern cut them. Each step
# reads columns made by the one before: nesting the helpers instead would repeat
# their arguments inside one another many times over.
_DERIVED = f"""
rested AS (
  SELECT *, CASE WHEN method = 'CONNECT' THEN NULL ELSE {after_scheme("url")} END AS rest
  FROM texts
),
cut AS (SELECT *, {without_query("rest")} AS cut FROM rested),
hosted AS (
  SELECT *,
    CASE WHEN method = 'CONNECT' THEN {authority_host("url")}
      ELSE replace(replace(domain, '%5B', '['), '%5D', ']') END AS host_text,
    CASE WHEN method = 'CONNECT' THEN {port_of("url")} ELSE nullif(port_field, '-') END
      AS port_text,
    {path_of("cut")} AS path
  FROM cut
),
fields AS (
  SELECT o, line, ok, ts, src_ip, nullif(user_name, '-') AS user_name, method, url,
    squid_result, hierarchy, bytes_out, bytes_in, duration_ms,
    nullif(status, '-') AS status,
    nullif(request_content_type, '-') AS request_content_type,
    nullif(content_type, '-') AS content_type, nullif(user_agent, '-') AS user_agent,
    {bare_host("host_text")} AS host, port_text AS port, path
  FROM hosted
),
{typed_select("molehunt Squid logformat")}
"""

_DECODED = "decoded AS (SELECT o, try(decode(b)) AS line FROM lines)"


# The fast path checks a line from its pieces rather than running a pattern over
# all of it (the pattern's cost is per byte, and the quoted headers and the URL
# are most of a line): cut at the quotes, only the short unquoted pieces need a
# pattern; the quoted ones need only no backslash. A line it refuses is retried
# with the capturing pattern, so it may refuse more than it must.
_UNQUOTED = (
    rf'{TIME} {_PLAIN} {_PLAIN} {_PLAIN} {_PLAIN} {_PLAIN} {NUM} {NUM} [^ /"]+/{_PLAIN}'
    rf' [0-9]+ {NUM} [0-9]+ {NUM} " {NUM} " " {NUM} '
)
_FAST_SHAPE = f"""len(q) = 9 AND q[9] IN (chr(10), chr(13) || chr(10))
    AND NOT contains(q[2], '\\') AND NOT contains(q[4], '\\') AND NOT contains(q[6], '\\')
    AND regexp_full_match(concat_ws('"', q[1], q[3], q[5], q[7]), {sql_literal(_UNQUOTED)})"""

_FAST_SQL = f"""
WITH {_DECODED},
quoted AS (SELECT o, line, string_split(line, '"') AS q FROM decoded),
checked AS (SELECT *, CASE WHEN {_FAST_SHAPE} THEN true END AS ok FROM quoted),
split AS (SELECT o, line, ok, q, string_split(q[1], ' ') AS p FROM checked),
texts AS (
  SELECT o, line, ok, p[1] AS ts, p[2] AS src_ip, p[3] AS user_name, nullif(p[4], '-') AS method,
    p[6] AS domain, p[7] AS port_field, p[8] AS status,
    split_part(p[9], '/', 1) AS squid_result, substr(p[9], strpos(p[9], '/') + 1) AS hierarchy,
    p[10] AS bytes_out, p[12] AS bytes_in, q[2] AS content_type,
    nullif(q[3][2:-2], '-') AS duration_ms, q[4] AS user_agent, q[6] AS request_content_type,
    q[8] AS url
  FROM split
),
{_DERIVED}"""

_SLOW_SQL = f"""
WITH {_DECODED},
extracted AS (
  SELECT o, line, regexp_full_match(line, {sql_literal(_SLOW)}) AS ok,
    regexp_extract(line, {sql_literal(_SLOW)}, {list(_FIELDS)!r}) AS f
  FROM decoded
),
texts AS (
  SELECT o, line, ok, f.ts, f.src_ip, f.user_name, nullif(f.method, '-') AS method,
    f.domain, f.port AS port_field, f.status, f.squid_result, f.hierarchy, f.bytes_out, f.bytes_in,
    {unescape("f.content_type")} AS content_type, nullif(f.duration_ms, '-') AS duration_ms,
    {unescape("f.user_agent")} AS user_agent,
    {unescape("f.request_content_type")} AS request_content_type, f.url
  FROM extracted
),
{_DERIVED}"""


def line_starts(data: bytes) -> tuple[npt.NDArray[np.int64], int]:
    """Where each whole line of ``data`` starts, and how many bytes those lines span."""
    buf = np.frombuffer(data, dtype=np.uint8)
    mask = np.empty(min(len(buf), _SCAN_BLOCK), dtype=np.bool_)
    ends: list[npt.NDArray[np.int64]] = []
    for start in range(0, len(buf), _SCAN_BLOCK):
        block = buf[start : start + _SCAN_BLOCK]
        hit = mask[: len(block)]
        np.equal(block, 10, out=hit)
        ends.append(np.flatnonzero(hit).astype(np.int64) + start)
    newlines = np.concatenate(ends) if ends else np.empty(0, dtype=np.int64)
    if len(newlines) == 0:
        return np.empty(0, dtype=np.int64), 0
    starts = np.empty(len(newlines), dtype=np.int64)
    starts[0] = 0
    starts[1:] = newlines[:-1] + 1
    return starts, int(newlines[-1]) + 1


def empty_table() -> pa.Table:
    return SCHEMA.empty_table()


def parse_lines(
    data: bytes,
    fast_sql: str,
    slow_sql: str,
    *,
    kernel: Kernel | None,
    kind: str,
    base_offset: int,
    source_id: str,
) -> ParseResult:
    """Cut the whole lines of ``data`` with the compiled ``kernel`` (None: the
    format has none); run ``fast_sql`` over the lines it leaves, then
    ``slow_sql`` over the lines that asks to retry, and shape their output for
    the store.

    Both read ``lines(o, b)`` (file offset, raw bytes with the newline) and yield
    ``o``, ``reason`` (NULL for a good line, :data:`RETRY` from ``fast_sql``
    only), ``us`` (microseconds since the epoch) and the other ``events_http``
    columns.
    """
    starts, consumed = line_starts(data)
    n = len(starts)
    if n == 0:
        return ParseResult(tables={TABLE: empty_table()}, consumed=0, records=0)
    bounds = np.empty(n + 1, dtype=np.int64)
    bounds[:n] = starts
    bounds[n] = consumed
    if kernel is not None and len(data) <= MAX_BYTES:
        taken, columns = cut(kernel, data, bounds)
    else:
        taken, columns = np.empty(0, dtype=np.int64), {}
    if len(taken) == n:
        out = _cut_table(starts + base_offset, columns)
    else:
        left = np.ones(n, dtype=np.bool_)
        left[taken] = False
        rest = np.flatnonzero(left)
        out = _run_sql(data, bounds, rest, base_offset, fast_sql, slow_sql)
        if len(taken):
            cut_rows = _cut_table(starts[taken] + base_offset, columns).cast(out.schema)
            out = pa.concat_tables([cut_rows, out])
            out = out.take(pc.sort_indices(out.column("o")))

    reasons = out.column("reason")
    if reasons.null_count == len(reasons):
        good, rejected = out, []
    else:
        good = out.filter(pc.is_null(reasons))
        rejected = _rejected(out.filter(pc.is_valid(reasons)), data, bounds, base_offset)
    return ParseResult(
        tables={TABLE: _shape(good, kind=kind, source_id=source_id)},
        rejected=rejected,
        consumed=consumed,
        records=n,
    )


def _cut_table(offsets: npt.NDArray[np.int64], columns: dict[str, pa.Array[Any]]) -> pa.Table:
    """The kernel's lines as the SQL would yield them (every one good)."""
    n = len(offsets)
    names = ["o", "reason", *_SQL_NAMES]
    arrays: list[pa.Array[Any]] = [pa.array(offsets), pa.nulls(n, pa.string())]
    arrays += [columns[name] for name in _SQL_NAMES]
    return pa.Table.from_arrays(arrays, names=names)


def _run_sql(
    data: bytes,
    bounds: npt.NDArray[np.int64],
    rows: npt.NDArray[np.int64],
    base_offset: int,
    fast_sql: str,
    slow_sql: str,
) -> pa.Table:
    """``fast_sql``, then ``slow_sql`` where it asks to retry, over the lines
    ``rows`` (indices into ``bounds``)."""
    n = len(bounds) - 1
    raw_lines = pa.Array.from_buffers(
        pa.large_binary(), n, [None, pa.array(bounds).buffers()[1], pa.py_buffer(data)]
    )
    if len(rows) < n:
        raw_lines = raw_lines.take(rows)
    lines = pa.table({"o": pa.array(bounds[rows] + base_offset), "b": raw_lines})
    # DuckDB scans an Arrow table one batch per thread: one batch is one thread.
    lines = pa.Table.from_batches(lines.to_batches(max_chunksize=_BATCH_ROWS))
    con = duckdb.connect()
    try:
        con.execute("SET enable_progress_bar=false")
        con.register("lines", lines)
        out = con.sql(fast_sql).to_arrow_table()
        retry = pc.fill_null(pc.equal(out.column("reason"), pa.scalar(RETRY)), False)
        if pc.any(retry).as_py():
            retried = lines.take(pc.indices_nonzero(retry))
            con.unregister("lines")
            con.register("lines", retried)
            again = con.sql(slow_sql).to_arrow_table().cast(out.schema)
            out = pa.concat_tables([out.filter(pc.invert(retry)), again])
            out = out.take(pc.sort_indices(out.column("o")))
    finally:
        con.close()
    return cast(pa.Table, out)


def _rejected(
    bad: pa.Table, data: bytes, bounds: npt.NDArray[np.int64], base_offset: int
) -> list[Rejected]:
    out: list[Rejected] = []
    starts = bounds[:-1]
    offsets = bad.column("o").to_numpy()
    for offset, reason in zip(offsets.tolist(), bad.column("reason").to_pylist(), strict=True):
        index = int(np.searchsorted(starts, offset - base_offset))
        begin, end = int(bounds[index]), int(bounds[index + 1])
        raw = data[begin:end].rstrip(b"\n")
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        text = raw[:MAX_RAW].decode("utf-8", errors="replace")
        if len(raw) > MAX_RAW:
            text += f"... [{len(raw) - MAX_RAW} more bytes]"
        out.append(
            Rejected(
                reason=str(reason),
                # The chunk's first line is the file's first only at offset 0;
                # elsewhere the line number is unknown (the offset locates it).
                line=index + 1 if base_offset == 0 else None,
                offset=int(offset),
                raw=text,
            )
        )
    return out


def _shape(good: pa.Table, *, kind: str, source_id: str) -> pa.Table:
    n = good.num_rows
    arrays: list[pa.Array[Any] | pa.ChunkedArray[Any]] = [
        event_ids(source_id, good.column("o").to_numpy()),
        pc.cast(good.column("us"), pa.timestamp("us", tz="UTC")),
        pa.repeat(pa.scalar(source_id, pa.string()), n),
        pa.repeat(pa.scalar(kind, pa.string()), n),
        *(good.column(name) for name in SCHEMA.names[4:]),
    ]
    return pa.Table.from_arrays(arrays, names=SCHEMA.names).cast(SCHEMA)


def sniff_lines(head: bytes, line_re: re.Pattern[str]) -> bool:
    """Whether most of the first lines of ``head`` are lines of ``line_re``."""
    lines = head.split(b"\n")[:6]
    complete = lines[:-1] if len(lines) > 1 else lines
    candidates = [line + b"\n" for line in complete[:5] if line.strip()]
    if not candidates:
        return False
    hits = 0
    for line in candidates:
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            continue
        hits += line_re.fullmatch(text) is not None
    return hits * 2 > len(candidates)


class SquidParser:
    """Squid access log in the molehunt logformat: who sent how much to which site."""

    kind: ClassVar[str] = "squid"
    description: ClassVar[str] = "Squid access log, molehunt logformat (with upload bytes)"

    @classmethod
    def sniff(cls, head: bytes) -> bool:
        return sniff_lines(head, LINE_RE)

    def parse(self, data: bytes, *, base_offset: int, source_id: str, path: str) -> ParseResult:
        return parse_lines(
            data,
            _FAST_SQL,
            _SLOW_SQL,
            kernel=cut_molehunt,
            kind=self.kind,
            base_offset=base_offset,
            source_id=source_id,
        )
