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
from typing import Any, ClassVar

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from molehunt.ingest.base import RAW_LIMIT, ParseResult, Rejected, event_ids

ACTIONS = ("view", "search", "export", "print")

_EVENTS_COLUMNS: dict[str, pa.DataType] = {
    "event_id": pa.string(),
    "time": pa.timestamp("us", tz="UTC"),
    "source_id": pa.string(),
    "app": pa.string(),
    "user_name": pa.string(),
    "src_ip": pa.string(),
    "action": pa.string(),
    "rows": pa.int64(),
    "detail": pa.string(),
    "n_client_ids": pa.int32(),
}
EVENTS_SCHEMA = pa.schema(_EVENTS_COLUMNS)
ACCESS_SCHEMA = pa.schema({"event_id": pa.string(), "client_id": pa.string(), "how": pa.string()})

_BLANK = "blank line"
# First characters of what from_json writes for a number, true, false, null,
# NaN, Infinity, an object or an array.
_SUSPECT_FIRST = tuple(sorted(ord(c) for c in "-0123456789tfnNiI[{"))
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
  SELECT off, try(decode(b)) AS s FROM lines
), typed AS (
  SELECT off, s, try(json_type(s, {_PATHS})) AS t FROM decoded
), fields AS (
  SELECT off, s, t,
    CASE WHEN t[1] = 'OBJECT' THEN from_json(s, '{_STRUCTURE}') END AS f
  FROM typed
), listed AS (
  -- from_json turns a number, boolean, object or null in client_ids into text or
  -- NULL; only lists with an element that may have been one are typed element by
  -- element (parsing the line once more), so ids like "C00012345" cost nothing.
  SELECT *, CASE WHEN t[7] = 'ARRAY' AND len(list_filter(f.client_ids,
      lambda x: x IS NULL OR ascii(x) IN {_SUSPECT_FIRST})) > 0
    THEN json_type(s, '$.client_ids[*]') END AS id_types
  FROM fields
), unpacked AS (
  SELECT off, s, t, f, id_types,
    t[1] AS t_root, t[2] AS t_ts, t[3] AS t_app, t[4] AS t_user, t[5] AS t_ip,
    t[6] AS t_action, t[7] AS t_ids, t[8] AS t_rows, t[9] AS t_detail,
    regexp_full_match(f.ts, '{_TS_PATTERN}') AS ts_ok
  FROM listed
), judged AS (
  SELECT off, f, CASE WHEN ts_ok THEN try_cast(f.ts AS TIMESTAMPTZ) END AS time,
    -- The common case (a good line) passes one conjunction; only the others go
    -- through the chain below that names the first problem.
    CASE WHEN t_root = 'OBJECT' AND t_ts = 'VARCHAR' AND ts_ok
      AND time BETWEEN TIMESTAMPTZ '0001-01-01 00:00:00+00'
        AND TIMESTAMPTZ '9999-12-31 23:59:59.999999+00'
      AND t_user = 'VARCHAR' AND f.user <> '' AND f.action IN {ACTIONS}
      AND coalesce(t_app, 'NULL') IN ('VARCHAR', 'NULL')
      AND coalesce(t_ip, 'NULL') IN ('VARCHAR', 'NULL')
      AND coalesce(t_detail, 'NULL') IN ('VARCHAR', 'NULL')
      AND (coalesce(t_rows, 'NULL') = 'NULL' OR (t_rows IN ('BIGINT', 'UBIGINT') AND f.rows >= 0))
      AND coalesce(t_ids, 'NULL') IN ('ARRAY', 'NULL')
      AND (id_types IS NULL OR len(list_filter(id_types, lambda x: x <> 'VARCHAR')) = 0)
      AND NOT coalesce(list_contains(f.client_ids, ''), false)
    THEN NULL ELSE CASE
    WHEN s IS NULL THEN 'invalid UTF-8'
    WHEN t IS NULL AND trim(s, ' ' || chr(9) || chr(10) || chr(13)) = '' THEN '{_BLANK}'
    WHEN t IS NULL THEN 'broken JSON'
    WHEN t_root <> 'OBJECT' THEN 'not a JSON object'
    WHEN t_ts IS NULL OR t_ts = 'NULL' THEN 'missing ts'
    WHEN t_ts <> 'VARCHAR' THEN 'ts is not a string'
    WHEN NOT ts_ok
      THEN 'ts is not an ISO 8601 time with a zone (YYYY-MM-DDTHH:MM:SS[.f]+HH:MM): ' || f.ts
    WHEN time IS NULL OR time < TIMESTAMPTZ '0001-01-01 00:00:00+00'
      OR time > TIMESTAMPTZ '9999-12-31 23:59:59.999999+00'
      THEN 'ts is not a valid time: ' || f.ts
    WHEN t_user IS NULL OR t_user = 'NULL' THEN 'missing user'
    WHEN t_user <> 'VARCHAR' OR f.user = '' THEN 'user is not a non-empty string'
    WHEN t_action IS NULL OR t_action = 'NULL' THEN 'missing action'
    WHEN t_action <> 'VARCHAR' OR f.action NOT IN {ACTIONS}
      THEN 'unknown action (expected view, search, export or print)'
    WHEN t_app NOT IN ('VARCHAR', 'NULL') THEN 'app is not a string'
    WHEN t_ip NOT IN ('VARCHAR', 'NULL') THEN 'src_ip is not a string'
    WHEN t_detail NOT IN ('VARCHAR', 'NULL') THEN 'detail is not a string'
    WHEN t_rows NOT IN ('BIGINT', 'UBIGINT', 'NULL') OR f.rows < 0
      OR (t_rows <> 'NULL' AND f.rows IS NULL)
      THEN 'rows is not a non-negative integer'
    WHEN t_ids NOT IN ('ARRAY', 'NULL')
      OR len(list_filter(id_types, lambda x: x <> 'VARCHAR')) > 0
      THEN 'client_ids is not a list of strings'
    WHEN list_contains(f.client_ids, '') THEN 'client_ids holds an empty id'
  END
  END AS reason
  FROM unpacked
)
SELECT off, reason, time,
  f.app AS app, f.user AS user_name, f.src_ip AS src_ip, f.action AS action, f.rows AS rows,
  f.detail AS detail, f.client_ids AS ids
FROM judged
"""


# The fast path parses each line once, with no type reading: a value is taken
# only where its text proves the JSON type (from_json writes a number, boolean,
# object or array given for a string field as text). Lines it cannot prove good
# go to _SQL, which names the problem. A number, NaN or Infinity as from_json
# writes it, or an object or array, in full:
_NOT_STRING = r"(?is)[\[{].*|-?[0-9]+(\.[0-9]*)?(e[-+]?[0-9]*)?|-?(true|false|nan|inf|infinity)"
# The same structure with ``rows`` as JSON text, so that "5" (a string) is not read
# as the number 5.
_FAST_STRUCTURE = json.dumps({**json.loads(_STRUCTURE), "rows": "JSON"})


_FAST_SQL = f"""
WITH fields AS (
  SELECT off, s, try(from_json(s, '{_FAST_STRUCTURE}')) AS f
  FROM (SELECT off, try(decode(b)) AS s FROM lines)
), values AS (
  SELECT off, f,
    -- from_json gives no list for a client_ids that is a string, number or
    -- object either; only then is the line parsed again to tell.
    CASE WHEN f.client_ids IS NOT NULL THEN true WHEN f IS NULL THEN false
      ELSE coalesce(try(json_type(s, '$.client_ids')), 'NULL') = 'NULL' END AS ids_ok,
    CASE WHEN regexp_full_match(f.ts, '{_TS_PATTERN}') THEN try_cast(f.ts AS TIMESTAMPTZ) END
      AS time,
    CASE WHEN regexp_full_match(f.rows, '[0-9]{{1,18}}') THEN CAST(f.rows AS BIGINT) END AS rows
  FROM fields
)
SELECT off,
  coalesce(time BETWEEN TIMESTAMPTZ '0001-01-01 00:00:00+00'
      AND TIMESTAMPTZ '9999-12-31 23:59:59.999999+00'
    AND f.user <> '' AND f.action IN {ACTIONS}
    AND (f.rows IS NULL OR rows IS NOT NULL) AND ids_ok, false) AS ok,
  time, f.app AS app, f.user AS user_name, f.src_ip AS src_ip, f.action AS action, rows,
  f.detail AS detail, f.client_ids AS ids
FROM values
"""
_SUSPECT_BYTES = np.zeros(256, dtype=bool)
_SUSPECT_BYTES[list(_SUSPECT_FIRST)] = True
_STRING_COLUMNS = ("user_name", "app", "src_ip", "detail")


def _doubtful(fast: pa.Table) -> pa.ChunkedArray[Any] | None:
    """Lines of the fast path's result it could not prove good (None: not one).

    That string fields were JSON strings is proven here over the value bytes
    with numpy rather than in SQL (a fifth of the query's time there): few
    values begin like a number, a literal, an object or an array, and of those
    an address like ``10.20.3.17`` is told by its dots.
    """
    doubt = []
    for batch in fast.to_batches():
        rows = ~batch.column("ok").to_numpy(zero_copy_only=False)
        for name in _STRING_COLUMNS:
            rows |= _unproven(batch.column(name))
        ids = batch.column("ids")
        flat = pc.list_flatten(ids)
        bad = _unproven(flat, empty_too=True)
        if flat.null_count:
            bad |= flat.is_null().to_numpy(zero_copy_only=False)
        if bad.any():
            rows[pc.list_parent_indices(ids).to_numpy()[bad]] = True
        doubt.append(pa.array(rows))
    if not any(chunk.true_count for chunk in doubt):
        return None
    return pa.chunked_array(doubt, pa.bool_())


def _unproven(values: pa.Array[Any], *, empty_too: bool = False) -> np.ndarray:
    """Which non-null strings may be the text from_json wrote for a non-string."""
    count = len(values)
    if count == 0:
        return np.zeros(0, dtype=bool)
    wide = values.type in (pa.large_string(), pa.large_binary())
    offsets, data = values.buffers()[1:3]
    if offsets is None:
        return np.zeros(count, dtype=bool)
    bounds = np.frombuffer(memoryview(offsets), dtype=np.int64 if wide else np.int32)
    bounds = bounds[values.offset : values.offset + count + 1]
    text = np.frombuffer(memoryview(data) if data is not None else b"", dtype=np.uint8)
    if len(text) == 0:
        # Only empty strings or nulls; one byte keeps the indexing below valid.
        text = np.zeros(1, dtype=np.uint8)
    starts = bounds[:-1]
    empty = starts == bounds[1:]
    first = np.where(empty, 0, text[np.minimum(starts, len(text) - 1)])
    suspect = _SUSPECT_BYTES[first]
    if values.null_count:
        suspect &= values.is_valid().to_numpy(zero_copy_only=False)
    if empty_too:
        suspect |= empty & values.is_valid().to_numpy(zero_copy_only=False)
    if not suspect.any():
        return suspect
    # A number as from_json writes it has at most one dot and no colon.
    lo, hi = int(bounds[0]), int(bounds[-1])
    span = text[lo:hi]
    dots = np.concatenate([[0], np.cumsum(span == ord("."))])
    colons = np.concatenate([[0], np.cumsum(span == ord(":"))])
    rel = bounds - lo
    told = ((dots[rel[1:]] - dots[rel[:-1]]) >= 2) | (colons[rel[1:]] > colons[rel[:-1]])
    told &= (first != ord("[")) & (first != ord("{")) & ~empty
    suspect &= ~told
    where = np.flatnonzero(suspect)
    if len(where):
        picked = values.take(where)
        looks = pc.match_substring_regex(picked, "^(?:" + _NOT_STRING + ")$")
        proven = ~looks.fill_null(True).to_numpy(zero_copy_only=False)
        # An empty string is proven a string, but an empty id is still doubtful.
        proven = proven & ~empty[where] if empty_too else proven | empty[where]
        suspect[where] = ~proven
    return suspect


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
            return ParseResult(
                tables={
                    "events_app": EVENTS_SCHEMA.empty_table(),
                    "record_access": ACCESS_SCHEMA.empty_table(),
                }
            )
        bounds = line_bounds(data, end)
        count = len(bounds) - 1
        lines = pa.LargeBinaryArray.from_buffers(
            pa.large_binary(), count, [None, _buffer(bounds), pa.py_buffer(data)]
        )
        table = pa.table({"off": pa.array(bounds[:-1] + base_offset), "b": lines})
        con = duckdb.connect()
        try:
            con.execute("SET enable_progress_bar = false")
            con.execute("SET TimeZone = 'UTC'")
            con.register("lines", table)
            fast = con.sql(_FAST_SQL).to_arrow_table()
            doubtful = _doubtful(fast)
            if doubtful is None:
                parsed = fast.drop_columns(["ok"]).add_column(
                    1, "reason", pa.nulls(fast.num_rows, pa.string())
                )
            else:
                # By offset, not position: the query's row order is not a contract.
                again = pc.is_in(table["off"], value_set=fast.filter(doubtful)["off"])
                con.register("lines", table.filter(again))
                slow = con.sql(_SQL).to_arrow_table()
                kept = fast.filter(pc.invert(doubtful)).drop_columns(["ok"])
                kept = kept.add_column(1, "reason", pa.nulls(kept.num_rows, pa.string()))
                parsed = pa.concat_tables([kept, slow.cast(kept.schema)])
                if kept.num_rows and slow.num_rows:
                    parsed = parsed.take(pc.sort_indices(parsed["off"]))
        finally:
            con.close()
        return _result(data, parsed, base_offset, source_id, end)


def _buffer(values: np.ndarray) -> pa.Buffer:
    """The memory of a flat numpy array as an Arrow buffer, without a copy."""
    return pa.py_buffer(np.ascontiguousarray(values).reshape(-1).data)


def line_bounds(data: bytes, end: int) -> np.ndarray:
    """Start of each line in ``data[:end]``, then ``end`` (``data[end - 1]`` is a newline)."""
    buffer = np.frombuffer(data, dtype=np.uint8, count=end)
    # Block by block, so the comparison's mask stays in cache.
    block = 1 << 22
    parts = [np.zeros(1, dtype=np.int64)]
    for start in range(0, end, block):
        parts.append(np.flatnonzero(buffer[start : start + block] == 10) + (start + 1))
    return np.concatenate(parts)


def _result(data: bytes, parsed: pa.Table, base: int, source_id: str, end: int) -> ParseResult:
    reasons = parsed["reason"]
    if reasons.null_count == parsed.num_rows:
        # The common chunk has no bad or blank line: filtering would copy every
        # column (and every listed id) for nothing.
        good, rejected = parsed, []
    else:
        reason = pc.field("reason")
        parsed = parsed.filter(reason.is_null() | ~reason.isin([_BLANK]))
        good = parsed.filter(reason.is_null())
        rejected = [
            _rejected(data, row["off"] - base, base, row["reason"])
            for row in parsed.filter(~reason.is_null()).select(["off", "reason"]).to_pylist()
        ]
    ids = good["ids"]
    good_ids = event_ids(source_id, good["off"].to_numpy())
    events = (
        good.select(["time", "app", "user_name", "src_ip", "action", "rows", "detail"])
        .append_column("event_id", good_ids)
        .append_column("source_id", pa.repeat(source_id, good.num_rows))
        .append_column("n_client_ids", pc.list_value_length(ids))
        .select(EVENTS_SCHEMA.names)
        .cast(EVENTS_SCHEMA)
    )
    listed = pc.list_flatten(ids)
    access = pa.Table.from_arrays(
        [
            pc.take(good_ids, pc.list_parent_indices(ids)),
            listed,
            pa.repeat("listed", len(listed)),
        ],
        schema=ACCESS_SCHEMA,
    )
    return ParseResult(
        tables={"events_app": events, "record_access": access},
        rejected=rejected,
        consumed=end,
        records=parsed.num_rows,
    )


def _rejected(data: bytes, start: int, base: int, reason: str) -> Rejected:
    line = data[start : data.index(b"\n", start)].rstrip(b"\r")
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
