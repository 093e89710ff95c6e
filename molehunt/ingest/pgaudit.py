"""PostgreSQL log records to events, shared by ``pg-csvlog`` and ``pg-stderr``.

Each parser cuts its bytes into records and hands the interesting ones (by the
start of their message) to :func:`build_events` as an Arrow table of
:data:`RECORD_SCHEMA`. From there both formats are read the same way, in one
in-memory DuckDB:

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

An AUDIT line still waiting for its plan holds the chunk back: the batch is
consumed only up to it, unless the data already shows that no plan can come
(the session ended, the window is past, the server shut down). So event rows
never depend on where a file was cut into chunks.
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

#: Columns of the records a format parser hands over; ``open`` marks a last
#: record that more bytes could still extend (its payload may be cut short).
_RECORD_COLUMNS: list[tuple[str, pa.DataType]] = [
    ("offset", pa.int64()),
    ("line", pa.int64()),
    ("log_time", pa.string()),
    ("user_name", pa.string()),
    ("database", pa.string()),
    ("pid", pa.string()),
    ("host", pa.string()),
    ("port", pa.string()),
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

#: Time zone abbreviations PostgreSQL may print in ``%m`` / ``log_time``; numeric
#: offsets (``+08``) are always understood. Any other abbreviation is ambiguous
#: (CST is China and US Central) and must be named by the caller.
DEFAULT_ZONES: Mapping[str, str] = {"UTC": "UTC", "GMT": "UTC", "Z": "UTC"}

#: Bytes after an AUDIT line within which its auto_explain plan must appear.
DEFAULT_PLAN_WINDOW = 16 * 1024 * 1024

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


def build_events(
    records: pa.Table,
    *,
    plan_messages: PlanMessages,
    kind: str,
    source_id: str,
    data_end: int,
    final: bool,
    zones: Mapping[str, str],
    plan_window: int,
) -> Built:
    """Events from ``records`` (interesting records of one batch, in file order).

    Plan records come without their message (NULL): plans are most of a log's
    bytes and only those of sessions with a statement waiting for a count are
    read, through ``plan_messages``. ``data_end`` is the file offset just past
    the last whole record of the batch; ``final`` says the file will not grow,
    so nothing needs to wait for more bytes.
    """
    out = Built()
    con = _connection()
    try:
        con.register("raw_records", records)
        zone_table = pa.table(
            {"abbrev": list(zones), "zone": [zones[k] for k in zones]},
            schema=pa.schema([("abbrev", pa.string()), ("zone", pa.string())]),
        )
        con.register("zones", zone_table)
        what: Any = records["what"]
        audited = records.filter(pc.equal(what, pa.scalar("audit")))
        fields = audit_fields(
            audited["offset"].combine_chunks(), audited["message"].combine_chunks()
        )
        con.register("audit_fields", fields)
        _classify(con)
        _audits(con)
        _plans(con, plan_messages)
        _match(con, plan_window=plan_window, data_end=data_end, final=final)
        for offset, reason in con.execute(
            'SELECT "offset", reason FROM problems ORDER BY "offset"'
        ).fetchall():
            out.rejected.append((int(offset), str(reason)))
        ((cutoff,),) = con.execute('SELECT min("offset") FROM waiting').fetchall()
        out.cutoff = None if cutoff is None else int(cutoff)
        limit = out.cutoff if out.cutoff is not None else data_end + 1
        params = {"kind": kind, "src": source_id, "limit": limit}
        db = con.sql(_DB_SELECT, params=params).to_arrow_table()
        auth = con.sql(_AUTH_SELECT, params=params).to_arrow_table()
    finally:
        for name in ("raw_records", "zones", "audit_fields", "plan_text"):
            con.unregister(name)
        for name in ("rec", "problems", "audits", "plans", "matched", "waiting"):
            con.execute(f"DROP TABLE IF EXISTS {name}")
    out.tables["events_db"] = db.cast(DB_SCHEMA)
    out.tables["events_auth"] = auth.cast(AUTH_SCHEMA)
    if out.cutoff is not None:
        out.rejected = [(o, r) for o, r in out.rejected if o < out.cutoff]
    return out


def _classify(con: duckdb.DuckDBPyConnection) -> None:
    # %m prints "2026-11-26 12:30:14.021 UTC", %t the same without milliseconds.
    con.execute(
        r"""
        CREATE TEMP TABLE rec AS
        WITH r AS (
          SELECT * REPLACE (try_cast(pid AS INTEGER) AS pid, try_cast(port AS INTEGER) AS port),
            CASE WHEN log_time[20] = '.' AND log_time[24] = ' '
                   THEN try_strptime(log_time[1:23], '%Y-%m-%d %H:%M:%S.%g')
                 WHEN log_time[20] = ' '
                   THEN try_strptime(log_time[1:19], '%Y-%m-%d %H:%M:%S')
            END AS local_time,
            CASE WHEN log_time[20] = '.' THEN log_time[25:] ELSE log_time[21:] END AS zone_text
          FROM raw_records
          WHERE what <> 'shutdown' OR message = 'database system is shut down'
        )
        SELECT r.*,
          CASE
            WHEN z.zone = 'UTC' THEN local_time::TIMESTAMPTZ  -- the session zone is UTC
            WHEN regexp_full_match(zone_text, '[+-]\d\d(:?\d\d)?') THEN
              timezone('UTC', local_time - to_minutes(
                (CASE WHEN zone_text[1] = '-' THEN -1 ELSE 1 END) *
                (zone_text[2:3]::INTEGER * 60
                 + coalesce(try_cast(nullif(replace(zone_text[4:], ':', ''), '') AS INTEGER), 0))))
            ELSE timezone(z.zone, local_time)
          END AS time
        FROM r LEFT JOIN zones z ON z.abbrev = r.zone_text
        """
    )
    con.execute(
        """
        CREATE TEMP TABLE problems AS
        SELECT "offset",
          CASE WHEN local_time IS NULL THEN 'unreadable log time ' || coalesce(log_time, 'NULL')
               ELSE 'unknown time zone ' || zone_text
                    || ' (log_timezone): name it in the parser''s zones' END AS reason
        FROM rec WHERE time IS NULL
        """
    )
    con.execute("DELETE FROM rec WHERE time IS NULL")


def _audits(con: duckdb.DuckDBPyConnection) -> None:
    names = ", ".join(f"'{g}'" for g in _AUDIT_GROUPS)
    pattern = "'" + AUDIT_PAYLOAD.replace("'", "''") + "'"
    fields = ", ".join(_AUDIT_FIELDS.names[1:])
    con.execute(
        f"""
        CREATE TEMP TABLE audits AS
        WITH r AS (
          SELECT rec.* EXCLUDE (message), f.* EXCLUDE ("offset"), rec.message
          FROM rec LEFT JOIN audit_fields f USING ("offset")
          WHERE what = 'audit'
        ), x AS (
          -- the payloads numpy could not vouch for
          SELECT *, regexp_extract(message, {pattern}, [{names}]) AS p
          FROM r WHERE fast IS NULL
        ), a AS (
          SELECT r.* EXCLUDE (fast, message), true AS ok FROM r WHERE fast
          UNION ALL BY NAME
          SELECT x.* EXCLUDE (p, message, {fields}), p.audit_type <> '' AS ok,
            p.cls AS audit_class, p.cmd AS command, p.otype AS object_type,
            {_unquote("p.obj")} AS object_name, {_unquote("p.stmt")} AS statement,
            {_unquote("p.params")} AS params_raw,
            try_cast(nullif(p.rows, '') AS BIGINT) AS logged_rows,
            try_cast(p.sid AS BIGINT) AS statement_id,
            try_cast(p.ssid AS BIGINT) AS substatement_id
          FROM x
        )
        SELECT *,
          audit_class = 'READ' AND command = 'COPY' AS copy_to,
          audit_class IN ('READ', 'WRITE') AND NOT (audit_class = 'READ' AND command = 'COPY')
            AND (logged_rows IS NULL OR command = 'DECLARE CURSOR') AS needs_plan
        FROM a
        """
    )
    con.execute(
        """
        INSERT INTO problems
        SELECT "offset", 'unparseable AUDIT payload' FROM audits WHERE NOT ok AND NOT open
        """
    )


def _plans(con: duckdb.DuckDBPyConnection, plan_messages: PlanMessages) -> None:
    # Only plans of sessions with a statement waiting for a count are read.
    wanted = con.execute(
        """
        SELECT "offset" FROM rec
        WHERE what = 'plan'
          AND session_key IN (SELECT session_key FROM audits WHERE ok AND needs_plan)
        ORDER BY "offset"
        """
    ).fetchnumpy()["offset"]
    offsets = np.asarray(wanted, dtype=np.int64)
    texts = plan_messages(offsets) if len(offsets) else pa.array([], pa.string())
    con.register("plan_text", pa.table({"offset": pa.array(offsets), "message": texts}))
    con.execute(
        r"""
        CREATE TEMP TABLE plans AS
        WITH t AS (
          SELECT t."offset", r.session_key, r.open,
            regexp_matches(left(t.message, 64), '^duration: [0-9.]+ ms  plan:\n') AS is_plan,
            substr(t.message, strpos(t.message, chr(10)) + 1) AS plan
          FROM plan_text t JOIN rec r USING ("offset")
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
    )
    con.execute(
        """
        INSERT INTO problems
        SELECT "offset", 'auto_explain plan is not valid JSON (auto_explain.log_format = json)'
        FROM plans WHERE NOT ok AND NOT open
        """
    )


def _match(con: duckdb.DuckDBPyConnection, *, plan_window: int, data_end: int, final: bool) -> None:
    ((needy,),) = con.execute("SELECT count(*) FROM audits WHERE ok AND needs_plan").fetchall()
    if needy == 0:
        con.execute(
            """
            CREATE TEMP TABLE matched AS
            SELECT NULL::BIGINT AS "offset", NULL::BIGINT AS bound, NULL::BIGINT AS plan_rows,
              NULL::BOOLEAN AS found
            WHERE false
            """
        )
    else:
        _match_plans(con, plan_window=plan_window, data_end=data_end)
    _waiting(con, final=final)


def _match_plans(con: duckdb.DuckDBPyConnection, *, plan_window: int, data_end: int) -> None:
    con.execute(
        """
        CREATE TEMP TABLE matched AS
        WITH needy AS (
          SELECT "offset", session_key, statement, statement_id
          FROM audits WHERE ok AND needs_plan
        ), ends AS (
          SELECT "offset" AS end_at, session_key FROM rec WHERE what = 'disconnect'
        ), shutdowns AS (
          SELECT "offset" AS shutdown_at FROM rec WHERE what = 'shutdown'
        ), changes AS (
          -- substatements share the statement id; a new id with the same text is a rerun
          -- (only the texts a statement waits on: the others cannot bound a wait)
          SELECT "offset", session_key, statement,
            statement_id IS DISTINCT FROM lag(statement_id) OVER same AS new_run
          FROM audits SEMI JOIN (SELECT DISTINCT session_key, statement FROM needy)
            USING (session_key, statement)
          WHERE ok
          WINDOW same AS (PARTITION BY session_key, statement ORDER BY "offset")
        ), runs AS (
          SELECT *, sum(new_run::INTEGER) OVER (
            PARTITION BY session_key, statement ORDER BY "offset") AS run
          FROM changes
        ), firsts AS (
          SELECT session_key, statement, run, min("offset") AS rerun_at FROM runs GROUP BY ALL
        ), again AS (
          SELECT r."offset", f.rerun_at FROM runs r JOIN firsts f
            ON f.session_key = r.session_key AND f.statement = r.statement AND f.run = r.run + 1
        ), bounds AS (
          SELECT n.*, least(
              e.end_at, s.shutdown_at, a.rerun_at,
              CASE WHEN n."offset" + $window <= $data_end THEN n."offset" + $window END
            ) AS bound
          FROM needy n
          LEFT JOIN again a USING ("offset")
          ASOF LEFT JOIN ends e ON e.session_key = n.session_key AND e.end_at > n."offset"
          ASOF LEFT JOIN shutdowns s ON s.shutdown_at > n."offset"
        ), good_plans AS (
          SELECT * FROM plans WHERE ok
        )
        SELECT b."offset", b.bound,
          CASE WHEN p."offset" < coalesce(b.bound, $data_end + 1) THEN p.plan_rows END
            AS plan_rows,
          p."offset" < coalesce(b.bound, $data_end + 1) AS found
        FROM bounds b ASOF LEFT JOIN good_plans p
          ON p.session_key = b.session_key AND p.query_text = b.statement
         AND p."offset" > b."offset"
        """,
        {"window": plan_window, "data_end": data_end},
    )


def _waiting(con: duckdb.DuckDBPyConnection, *, final: bool) -> None:
    if final:
        con.execute(
            """
            INSERT INTO problems
            SELECT "offset", 'unparseable AUDIT payload' FROM audits WHERE NOT ok AND open
            UNION ALL
            SELECT "offset", 'auto_explain plan is not valid JSON (auto_explain.log_format = json)'
            FROM plans WHERE NOT ok AND open
            """
        )
    con.execute(
        """
        CREATE TEMP TABLE waiting AS
        SELECT "offset" FROM matched
        WHERE NOT coalesce(found, false) AND bound IS NULL AND NOT $final
        UNION ALL
        SELECT "offset" FROM audits WHERE open AND NOT ok AND NOT $final
        UNION ALL
        SELECT "offset" FROM plans WHERE open AND NOT ok AND NOT $final
        """,
        {"final": final},
    )


_DB_SELECT = """
SELECT printf('%s:%012d', $src, a."offset") AS event_id, a.time, $src AS source_id,
  $kind AS kind, a.database, a.user_name AS db_user,
  a.host AS src_ip, a.port AS src_port, a.session_id, a.pid,
  a.app_name, a.audit_class, a.command, nullif(a.object_type, '') AS object_type,
  CASE WHEN a.object_name = '' THEN []::VARCHAR[] ELSE [a.object_name] END AS objects,
  a.statement,
  CASE WHEN a.params_raw IN ('<none>', '<not logged>') THEN NULL ELSE a.params_raw END
    AS parameters,
  CASE WHEN a.copy_to THEN NULL
       WHEN a.needs_plan THEN m.plan_rows
       ELSE a.logged_rows END AS rows,
  CASE WHEN a.copy_to THEN 'unknown'
       WHEN a.needs_plan THEN CASE WHEN m.plan_rows IS NULL THEN 'unknown' ELSE 'auto_explain' END
       ELSE 'pgaudit' END AS rows_source,
  a.copy_to AS bulk_unknown,
  a.statement_id, a.substatement_id
FROM audits a LEFT JOIN matched m USING ("offset")
WHERE a.ok AND a."offset" < $limit
ORDER BY a."offset"
"""

_AUTH_SELECT = r"""
SELECT printf('%s:%012d', $src, "offset") AS event_id, time, $src AS source_id, $kind AS kind,
  CASE what WHEN 'connect' THEN 'connect' ELSE 'disconnect' END AS activity,
  coalesce(user_name, nullif(regexp_extract(message, ' user=(\S+)', 1), '')) AS user_name,
  host AS src_ip,
  coalesce(port, try_cast(nullif(regexp_extract(message, ' port=(\d+)', 1), '') AS INTEGER))
    AS src_port,
  coalesce(database, nullif(regexp_extract(message, ' database=(\S+)', 1), '')) AS service,
  session_id,
  CASE what
    WHEN 'connect' THEN nullif(regexp_extract(message,
      '^connection authorized: .*? application_name=(.*?)(?: SSL enabled \(.*| GSS \(.*)?$', 1), '')
    ELSE app_name END AS app_name
FROM rec
WHERE what IN ('connect', 'disconnect') AND "offset" < $limit
ORDER BY "offset"
"""


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
    buffer: pa.Buffer, starts: Offsets, stops: Offsets, *, binary: bool = False
) -> pa.Array[Any]:
    """The byte ranges ``[starts[i], stops[i])`` of ``buffer`` as a string array
    (``binary``: as bytes, for text not yet known to be valid UTF-8).

    Ranges must be in file order and not overlap; the strings are copied once,
    straight from the buffer (the gaps between them are laid out as dummy
    strings, then left out).
    """
    n = len(starts)
    kind = pa.binary() if binary else pa.string()
    if n == 0:
        return pa.array([], kind)
    offsets = np.empty(2 * n, dtype=np.int64)
    offsets[0::2] = starts
    offsets[1::2] = stops
    layout = pa.large_binary() if binary else pa.large_string()
    both = pa.Array.from_buffers(layout, 2 * n - 1, [None, pa.py_buffer(offsets.data), buffer])
    picked = both.take(np.arange(0, 2 * n, 2, dtype=np.int64))
    return pc.cast(picked, kind)


_DIGITS = np.zeros(256, dtype=bool)
_DIGITS[ord("0") : ord("9") + 1] = True
_CLASS = np.zeros(256, dtype=bool)
_CLASS[ord("A") : ord("Z") + 1] = True
_CLASS[ord("_")] = True
_PLAIN = np.ones(256, dtype=bool)  # what [^,\n]* may hold, less ", which goes the slow way
_PLAIN[[ord(","), ord("\n"), ord("\r"), ord('"')]] = False
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

    quotes = QuoteCounts(data)
    before = quotes.upto(head - 1)
    cand &= ((quotes.upto(stops - 1) - before) & 1) == 0
    commas = np.flatnonzero(data == ord(","))
    owner = np.searchsorted(stops, commas, side="right")
    split = ((quotes.upto(commas) - before[owner]) & 1) == 0
    commas, owner = commas[split], owner[split]
    count = np.bincount(owner, minlength=n)
    cand &= (count == 8) | (count == 9)
    rows = np.flatnonzero(cand)
    first = (np.cumsum(count) - count)[rows]
    has_rows = count[rows] == 9
    sep = [commas[first + k] for k in range(8)]
    sep.append(np.where(has_rows, commas[np.minimum(first + 8, len(commas) - 1)], stops[rows]))
    begin = [head[rows], *(c + 1 for c in sep)]
    end = [*sep, stops[rows]]
    begin[9] = np.minimum(begin[9], end[9])  # no rows: an empty range at the end

    ok = _equals(data, begin[0], end[0], b"SESSION") | _equals(data, begin[0], end[0], b"OBJECT")
    for k in (1, 2):
        ok &= _all_of(data, begin[k], end[k], _DIGITS, 1, 18)
    ok &= _all_of(data, begin[3], end[3], _CLASS, 1, 32)
    for k in (4, 5):
        ok &= _all_of(data, begin[k], end[k], _PLAIN, 0, 64)
    negative = has_rows & (data[np.minimum(begin[9], len(data) - 1)] == ord("-"))
    ok &= ~has_rows | _all_of(data, begin[9] + negative, end[9], _DIGITS, 1, 18)
    breaks = np.flatnonzero((data == ord("\n")) | (data == ord("\r")))
    marks = np.flatnonzero(data == ord('"'))
    texts: list[pa.Array[Any]] = []
    buffer = buffers[2]
    for k in (6, 7, 8):
        b, e = begin[k], end[k]
        inside = np.searchsorted(marks, e) - np.searchsorted(marks, b)
        quoted = (e - b >= 2) & (data[np.minimum(b, len(data) - 1)] == ord('"')) & (inside >= 2)
        quoted &= data[np.maximum(e - 1, 0)] == ord('"')
        bare_breaks = np.searchsorted(breaks, e) - np.searchsorted(breaks, b)
        ok &= quoted | ((inside == 0) & (bare_breaks == 0))
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
        return pc.cast(text(k), pa.int64())

    fast = rows[ok]
    logged = pc.if_else(pa.array(has_rows), strings_at(buffer, begin[9], end[9]), None)
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
            "logged_rows": pc.cast(kept(logged), pa.int64()),
            "statement_id": number(1),
            "substatement_id": number(2),
        },
        schema=_AUDIT_FIELDS,
    )


def _equals(
    data: npt.NDArray[np.uint8], begin: Offsets, end: Offsets, word: bytes, *, prefix: bool = False
) -> npt.NDArray[np.bool_]:
    """Whether ``data[begin:end]`` is ``word`` (or, with ``prefix``, starts with it)."""
    length = end - begin
    ok = length >= len(word) if prefix else length == len(word)
    if len(data) == 0:
        return ok & (len(word) == 0)
    at = np.minimum(begin[:, None] + np.arange(len(word)), len(data) - 1)
    want = np.frombuffer(word, dtype=np.uint8)
    return np.asarray(ok & (data[at] == want).all(axis=1))


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
    at = np.minimum(begin[:, None] + steps, len(data) - 1)
    fine = allowed[data[at]] | (steps >= length[:, None])
    return np.asarray(ok & fine.all(axis=1))


_ONES = np.uint64(0x0101010101010101)


class QuoteCounts:
    """Running count of ``"`` over a byte buffer (mod 256), read at any position.

    A byte-wise cumsum is a serial loop over every byte; counting within each
    8-byte word takes one multiply (byte ``i`` of ``word * 0x0101..01`` sums
    bytes ``0..i``, at most 8, so no byte overflows) and only the per-word
    totals need a running sum.
    """

    __slots__ = ("_carry", "_within")

    def __init__(self, buf: npt.NDArray[np.uint8]) -> None:
        n = len(buf)
        padded = np.zeros(n + (-n) % 8 + 8, dtype=np.uint8)
        np.equal(buf, ord('"'), out=padded[:n].view(bool))
        # Little-endian words put the first byte of the buffer in the lowest byte.
        words = padded.view("<u8")
        np.multiply(words, _ONES, out=words)
        totals = np.ascontiguousarray(padded[7::8])
        self._carry = np.cumsum(totals, dtype=np.uint8) - totals
        self._within = padded

    def upto(self, at: Offsets) -> npt.NDArray[np.uint8]:
        """Quotes in ``buf[: at + 1]`` (mod 256); ``at`` may be -1."""
        safe = np.maximum(at, 0)
        counts = self._within[safe] + self._carry[safe >> 3]
        counts[at < 0] = 0
        return np.asarray(counts, dtype=np.uint8)

    def even(self, at: Offsets) -> npt.NDArray[np.bool_]:
        """Whether an even number of ``"`` precede and include each position ``at``."""
        return np.asarray(((self._within[at] + self._carry[at >> 3]) & 1) == 0, dtype=bool)


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
    """Byte positions in ``data[:end]`` where invalid UTF-8 starts (one pass in C)."""
    view = np.frombuffer(data, dtype=np.uint8, count=end)
    if not (view >= 0x80).any():
        return np.empty(0, dtype=np.int64)
    _BAD_BYTES.found = []
    bytes(data[:end]).decode("utf-8", errors="molehunt.pgaudit.note")
    found = np.array(_BAD_BYTES.found, dtype=np.int64)
    _BAD_BYTES.found = []
    return found


def _raw(chunk: bytes) -> str:
    return chunk[:RAW_LIMIT].decode("utf-8", errors="replace")


__all__ = [
    "DEFAULT_PLAN_WINDOW",
    "DEFAULT_ZONES",
    "MESSAGE_KINDS",
    "RECORD_SCHEMA",
    "Built",
    "PlanMessages",
    "blank_to_null",
    "build_events",
    "empty_tables",
    "event_id",
    "rejected_records",
]
