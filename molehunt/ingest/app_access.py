"""Application record-access log (``app-access``): who touched which client records.

One JSON object a line (formats.md)::

    {"ts": "2026-05-03T09:15:22.123+08:00", "app": "crm", "user": "liu.wei",
     "src_ip": "10.20.3.17", "action": "view", "client_ids": ["C00012345"],
     "rows": 1, "detail": "client card"}

Each line becomes one ``events_app`` row, and each listed client id one
``record_access`` row (``how = 'listed'``). An export may list thousands of ids,
and a busy CRM writes millions of lines a day, so lines are parsed in bulk by
DuckDB's JSON functions over the chunk's bytes (one Arrow array of lines cut at
newline positions found with numpy); Python touches only rejected lines.

A line is rejected (with its byte offset and the reason) when it is not UTF-8,
not JSON, not an object, lacks ``ts`` or ``user``, has a ``ts`` without a zone or that
is not a real time, an ``action`` other than view, search, export or print,
``rows`` that is not a non-negative integer, ``client_ids`` that is not a list of
non-empty strings, or an ``app``, ``src_ip`` or ``detail`` that is not a
string. ``null`` counts as absent. Keys not listed above are ignored. Blank
lines are skipped: they are no record. JSON is read as DuckDB reads it: trailing
commas and NaN/Infinity literals are let through (a NaN where a field needs a
string or an integer is still rejected), and of a key given twice the first
counts.
"""

from __future__ import annotations

import json
from typing import ClassVar

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from molehunt.ingest.base import ParseResult, Rejected

ACTIONS = ("view", "search", "export", "print")
RAW_LIMIT = 64 * 1024

EVENTS_SCHEMA = pa.schema(
    [
        ("event_id", pa.string()),
        ("time", pa.timestamp("us", tz="UTC")),
        ("source_id", pa.string()),
        ("app", pa.string()),
        ("user_name", pa.string()),
        ("src_ip", pa.string()),
        ("action", pa.string()),
        ("rows", pa.int64()),
        ("detail", pa.string()),
        ("n_client_ids", pa.int32()),
    ]
)
ACCESS_SCHEMA = pa.schema(
    [("event_id", pa.string()), ("client_id", pa.string()), ("how", pa.string())]
)

_BLANK = "blank line"
_FIELDS = ("ts", "app", "user", "src_ip", "action", "client_ids", "rows", "detail")
_PATHS = "[" + ", ".join(["'$'", *(f"'$.{f}'" for f in _FIELDS)]) + "]"
_STRUCTURE = json.dumps(
    {
        "ts": "VARCHAR",
        "app": "VARCHAR",
        "user": "VARCHAR",
        "src_ip": "VARCHAR",
        "action": "VARCHAR",
        "client_ids": ["VARCHAR"],
        "rows": "BIGINT",
        "detail": "VARCHAR",
    }
)
# RFC 3339 with a mandatory zone; DuckDB's cast alone would read a zoneless time
# in the session zone and accept 24:00 or +08:60. Year 0000 does not exist.
_TS_PATTERN = (
    r"(\d{3}[1-9]|\d{2}[1-9]\d|\d[1-9]\d{2}|[1-9]\d{3})-\d{2}-\d{2}[T ]"
    r"([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d{1,9})?(Z|[+-]([01]\d|2[0-3]):?[0-5]\d)"
)

# Each JSON function parses the line again, so the query asks for all field
# types in one json_type call and all values in one from_json call.
_SQL = f"""
WITH decoded AS (
  SELECT i, off, try(decode(b)) AS s FROM lines
), typed AS (
  SELECT i, off, s, try(json_type(s, {_PATHS})) AS t FROM decoded
), fields AS (
  SELECT i, off, s, t,
    CASE WHEN t[1] = 'OBJECT' THEN from_json(s, '{_STRUCTURE}') END AS f,
    CASE WHEN t[7] = 'ARRAY' THEN json_type(s, '$.client_ids[*]') END AS id_types
  FROM typed
), judged AS (
  SELECT i, off, f, CASE WHEN regexp_full_match(f.ts, '{_TS_PATTERN}')
      THEN try_cast(f.ts AS TIMESTAMPTZ) END AS time,
    CASE
    WHEN s IS NULL THEN 'invalid UTF-8'
    WHEN t IS NULL AND trim(s, ' ' || chr(9) || chr(10) || chr(13)) = '' THEN '{_BLANK}'
    WHEN t IS NULL THEN 'broken JSON'
    WHEN t[1] <> 'OBJECT' THEN 'not a JSON object'
    WHEN t[2] IS NULL OR t[2] = 'NULL' THEN 'missing ts'
    WHEN t[2] <> 'VARCHAR' THEN 'ts is not a string'
    WHEN NOT regexp_full_match(f.ts, '{_TS_PATTERN}')
      THEN 'ts is not an ISO 8601 time with a zone (YYYY-MM-DDTHH:MM:SS[.f]+HH:MM): ' || f.ts
    WHEN time IS NULL OR time < TIMESTAMPTZ '0001-01-01 00:00:00+00'
      OR time > TIMESTAMPTZ '9999-12-31 23:59:59.999999+00'
      THEN 'ts is not a valid time: ' || f.ts
    WHEN t[4] IS NULL OR t[4] = 'NULL' THEN 'missing user'
    WHEN t[4] <> 'VARCHAR' OR f.user = '' THEN 'user is not a non-empty string'
    WHEN t[6] IS NULL OR t[6] = 'NULL' THEN 'missing action'
    WHEN t[6] <> 'VARCHAR' OR f.action NOT IN {ACTIONS}
      THEN 'unknown action (expected view, search, export or print)'
    WHEN t[3] NOT IN ('VARCHAR', 'NULL') THEN 'app is not a string'
    WHEN t[5] NOT IN ('VARCHAR', 'NULL') THEN 'src_ip is not a string'
    WHEN t[9] NOT IN ('VARCHAR', 'NULL') THEN 'detail is not a string'
    WHEN t[8] NOT IN ('BIGINT', 'UBIGINT', 'NULL') OR f.rows < 0
      OR (t[8] <> 'NULL' AND f.rows IS NULL)
      THEN 'rows is not a non-negative integer'
    WHEN t[7] NOT IN ('ARRAY', 'NULL')
      OR len(list_filter(id_types, lambda x: x <> 'VARCHAR')) > 0
      THEN 'client_ids is not a list of strings'
    WHEN list_contains(f.client_ids, '') THEN 'client_ids holds an empty id'
  END AS reason
  FROM fields
)
SELECT i, off, reason, printf('%s:%012d', $source_id::VARCHAR, off) AS event_id, time,
  f.app AS app, f.user AS user_name, f.src_ip AS src_ip, f.action AS action, f.rows AS rows,
  f.detail AS detail, f.client_ids AS ids
FROM judged
"""


class AppAccessParser:
    """Application record-access log: which client records each user viewed,
    searched, exported or printed."""

    kind: ClassVar[str] = "app-access"
    description: ClassVar[str] = "application record-access log (JSON lines)"

    @classmethod
    def sniff(cls, head: bytes) -> bool:
        first = head.lstrip(b" \t\r\n").split(b"\n", 1)[0]
        return first.startswith(b"{") and all(
            key in first for key in (b'"ts"', b'"user"', b'"action"')
        )

    def parse(self, data: bytes, *, base_offset: int, source_id: str, path: str) -> ParseResult:
        end = data.rfind(b"\n") + 1
        if end == 0:
            return ParseResult()
        newlines = np.flatnonzero(np.frombuffer(data, dtype=np.uint8, count=end) == 10)
        bounds = np.empty(len(newlines) + 1, dtype=np.int64)
        bounds[0] = 0
        bounds[1:] = newlines + 1
        lines = pa.LargeBinaryArray.from_buffers(
            pa.large_binary(), len(newlines), [None, pa.py_buffer(bounds), pa.py_buffer(data)]
        )
        table = pa.table(
            {
                "i": pa.array(np.arange(len(newlines), dtype=np.int64)),
                "off": pa.array(bounds[:-1] + base_offset),
                "b": lines,
            }
        )
        con = duckdb.connect()
        try:
            con.execute("SET enable_progress_bar = false")
            con.execute("SET TimeZone = 'UTC'")
            con.register("lines", table)
            parsed = con.sql(_SQL, params={"source_id": source_id}).to_arrow_table()
        finally:
            con.close()
        return _result(data, parsed, bounds, base_offset, source_id, end)


def _result(
    data: bytes, parsed: pa.Table, bounds: np.ndarray, base: int, source_id: str, end: int
) -> ParseResult:
    blank = pc.fill_null(pc.equal(parsed["reason"], _BLANK), False)
    if pc.any(blank).as_py():
        parsed = parsed.filter(pc.invert(blank))
    bad = pc.is_valid(parsed["reason"])
    good = parsed.filter(pc.invert(bad))
    rejected = [
        _rejected(data, bounds, base, row["i"], row["reason"])
        for row in parsed.filter(bad).select(["i", "reason"]).to_pylist()
    ]
    ids = good["ids"].combine_chunks() if good.num_rows else pa.array([], pa.list_(pa.string()))
    n = good.num_rows
    events = pa.table(
        {
            "event_id": good["event_id"],
            "time": good["time"],
            "source_id": pa.repeat(source_id, n),
            "app": good["app"],
            "user_name": good["user_name"],
            "src_ip": good["src_ip"],
            "action": good["action"],
            "rows": good["rows"],
            "detail": good["detail"],
            "n_client_ids": pc.list_value_length(ids),
        }
    ).cast(EVENTS_SCHEMA)
    listed = pc.list_flatten(ids)
    owners = pc.list_parent_indices(ids)
    access = pa.table(
        {
            "event_id": pc.take(good["event_id"], owners),
            "client_id": listed,
            "how": pa.repeat("listed", len(listed)),
        }
    ).cast(ACCESS_SCHEMA)
    return ParseResult(
        tables={"events_app": events, "record_access": access},
        rejected=rejected,
        consumed=end,
        records=parsed.num_rows,
    )


def _rejected(data: bytes, bounds: np.ndarray, base: int, i: int, reason: str) -> Rejected:
    start, stop = int(bounds[i]), int(bounds[i + 1]) - 1
    line = data[start:stop].rstrip(b"\r")
    if reason == "broken JSON":
        reason = _json_error(line)
    raw = line[:RAW_LIMIT].decode("utf-8", errors="replace")
    if len(line) > RAW_LIMIT:
        raw += f"... [{len(line) - RAW_LIMIT} more bytes]"
    return Rejected(reason=reason, offset=base + start, raw=raw)


def _json_error(line: bytes) -> str:
    """Python's account of why a line DuckDB refused is not JSON (for people)."""
    try:
        json.loads(line)
    except ValueError as e:
        return f"broken JSON: {e}"
    except RecursionError:
        return "broken JSON: nested too deeply"
    return "broken JSON"  # e.g. a lone UTF-16 surrogate escape, which Python lets through
