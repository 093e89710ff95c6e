"""The event tables PostgreSQL records become: ``events_db`` and ``events_auth``."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from molehunt.ingest.base import event_ids
from molehunt.ingest.postgres.audit import Audits
from molehunt.ingest.postgres.kernels import Offsets, as_mask, blank_to_null, to_int32
from molehunt.ingest.postgres.records import Records

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


def empty_tables() -> dict[str, pa.Table]:
    """The tables of a batch with no whole record yet."""
    return {"events_db": DB_SCHEMA.empty_table(), "events_auth": AUTH_SCHEMA.empty_table()}


# -- event tables -------------------------------------------------------------------------


def db_table(
    recs: Records,
    audits: Audits,
    plan_rows: pa.Array[Any],
    *,
    kind: str,
    source_id: str,
    limit: int,
) -> pa.Table:
    """``events_db``: one row per audited statement before ``limit``, its rows
    counted by pgAudit or a plan."""
    keep = audits.ok & (audits.offsets < limit)
    rows = audits.rows[keep]
    n = len(rows)
    fields = audits.fields if keep.all() else audits.fields.filter(pa.array(keep))
    copy_to = audits.copy_to[keep]
    needs_plan = audits.needs_plan[keep]
    counted = plan_rows if keep.all() else plan_rows.filter(pa.array(keep))
    from_plan = needs_plan & ~copy_to
    logged = fields["logged_rows"].combine_chunks()
    rows_count = pc.if_else(
        pa.array(copy_to),
        pa.scalar(None, pa.int64()),
        pc.if_else(pa.array(from_plan), counted, logged),
    )
    source = np.where(
        copy_to,
        0,
        np.where(from_plan, np.where(as_mask(counted.is_null()), 0, 1), 2),
    )
    params = fields["params_raw"].combine_chunks()
    hidden = as_mask(pc.is_in(params, value_set=pa.array(["<none>", "<not logged>"])))
    name = fields["object_name"].combine_chunks()
    named = ~as_mask(pc.equal(name, pa.scalar(""))) & as_mask(name.is_valid())
    list_offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(named, out=list_offsets[1:])
    objects = pa.ListArray.from_arrays(
        pa.array(list_offsets, pa.int32()), name.filter(pa.array(named))
    )
    columns: dict[str, Any] = {
        "event_id": event_ids(source_id, audits.offsets[keep]),
        "time": _timestamps(recs.micros[rows]),
        "source_id": _repeat(source_id, n),
        "kind": _repeat(kind, n),
        "database": recs.column("database", rows),
        "db_user": recs.column("user_name", rows),
        "src_ip": recs.column("host", rows),
        "src_port": recs.column("port", rows),
        "session_id": recs.column("session_id", rows),
        "pid": recs.column("pid", rows),
        "app_name": recs.column("app_name", rows),
        "audit_class": fields["audit_class"],
        "command": fields["command"],
        "object_type": blank_to_null(fields["object_type"].combine_chunks()),
        "objects": objects,
        "statement": fields["statement"],
        "parameters": pc.if_else(pa.array(hidden), pa.scalar(None, pa.string()), params),
        "rows": rows_count,
        "rows_source": pa.DictionaryArray.from_arrays(
            pa.array(source, pa.int8()), pa.array(["unknown", "auto_explain", "pgaudit"])
        ).cast(pa.string()),
        "bulk_unknown": pa.array(copy_to),
        "statement_id": fields["statement_id"],
        "substatement_id": fields["substatement_id"],
    }
    return pa.table(columns, schema=DB_SCHEMA)


_CONNECT_APP = (
    r"^connection authorized: .*? application_name=(?P<app>.*?)"
    r"(?: SSL enabled \(.*| GSS \(.*)?$"
)


def auth_table(recs: Records, *, kind: str, source_id: str, limit: int) -> pa.Table:
    """``events_auth``: one row per connection and disconnection before ``limit``."""
    session = as_mask(pc.is_in(recs.what, value_set=pa.array(["connect", "disconnect"])))
    rows = np.flatnonzero(session & (recs.offsets < limit))
    n = len(rows)
    what = recs.what.take(pa.array(rows, pa.int64()))
    message = recs.column("message", rows)
    connect = pc.equal(what, pa.scalar("connect"))

    def said(pattern: str, where: Any = None) -> pa.Array[Any]:
        """What ``pattern`` finds in the messages (NULL: nothing), looked for only ``where``."""
        wanted = np.ones(n, dtype=bool) if where is None else as_mask(where)
        found = pa.nulls(n, pa.string())
        if wanted.any():
            hits = pc.extract_regex(message.filter(pa.array(wanted)), pattern)
            values = blank_to_null(pc.struct_field(hits, [0]).fill_null(""))
            found = pc.replace_with_mask(found, pa.array(wanted), values)
        return found

    def given_or_said(column: str, pattern: str) -> pa.Array[Any]:
        values = recs.column(column, rows)
        if not values.null_count:
            return values
        return pc.coalesce(values, said(pattern, values.is_null()))

    port = recs.column("port", rows)
    if port.null_count:
        port = pc.coalesce(port, to_int32(said(r" port=(?P<v>\d+)", port.is_null())))
    columns: dict[str, Any] = {
        "event_id": event_ids(source_id, recs.offsets[rows]),
        "time": _timestamps(recs.micros[rows]),
        "source_id": _repeat(source_id, n),
        "kind": _repeat(kind, n),
        "activity": pc.if_else(connect, pa.scalar("connect"), pa.scalar("disconnect")),
        "user_name": given_or_said("user_name", r" user=(?P<v>\S+)"),
        "src_ip": recs.column("host", rows),
        "src_port": port,
        "service": given_or_said("database", r" database=(?P<v>\S+)"),
        "session_id": recs.column("session_id", rows),
        "app_name": pc.if_else(connect, said(_CONNECT_APP, connect), recs.column("app_name", rows)),
    }
    return pa.table(columns, schema=AUTH_SCHEMA)


def ints(values: Offsets) -> pa.Array[Any]:
    """``values`` as an Arrow int64 array."""
    return pa.array(values, pa.int64())


def _timestamps(micros: Offsets) -> pa.Array[Any]:
    return pa.array(micros, _TIME)


def _repeat(value: str, n: int) -> pa.Array[Any]:
    return pa.DictionaryArray.from_arrays(
        pa.array(np.zeros(n, dtype=np.int8), pa.int8()), pa.array([value])
    ).cast(pa.string())
