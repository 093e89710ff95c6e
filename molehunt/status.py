"""What the store holds: counts, sources with checkpoints, quarantine, schema, the
last detection pass (with the detectors that failed in it) and how far who-is-who is
kept."""

from __future__ import annotations

from typing import Any

from molehunt.detect.runner import last_run
from molehunt.ingest import FILE_PARSERS
from molehunt.store import Store


def status(store: Store) -> dict[str, Any]:
    """Counts, each source's checkpoint with what is pending and why, the quarantine.

    A log's checkpoint is a byte offset: ``pending_bytes`` are the bytes after it at
    the last ingest, with ``pending_reason``. An EVTX file's checkpoint is the last
    record number read, not a byte offset: its ``pending_bytes`` is None (unknown
    until the file is read again), never its size minus a record number.
    """
    record_kinds = sorted(FILE_PARSERS)
    marks = ", ".join("?" for _ in record_kinds) or "NULL"
    sources = store.query(
        'SELECT source_id, kind, path, "offset", '
        f"CASE WHEN kind IN ({marks}) THEN 'record' ELSE 'byte' END AS checkpoint, size, "
        f'CASE WHEN kind IN ({marks}) THEN NULL ELSE size - "offset" END AS pending_bytes, '
        "pending_reason, events, rejected, first_ingest, last_ingest "
        "FROM sources ORDER BY kind, path",
        [*record_kinds, *record_kinds],
    )
    for source in sources:
        if source["checkpoint"] == "record":
            source["pending_reason"] = (
                f"checkpoint is record number {source['offset']}, not a byte offset: "
                "records written after it are read on the next ingest"
            )
    quarantine = store.query(
        "SELECT kind, reason, count(*) AS count FROM quarantine "
        "GROUP BY ALL ORDER BY count DESC, kind, reason"
    )
    return {
        "db": store.path,
        "schema_version": store.schema_version(),
        "tables": store.table_counts(),
        "sources": sources,
        "quarantine": quarantine,
        "quarantined": sum(q["count"] for q in quarantine),
        "last_detection": last_run(store),
        "kept": kept_relations(store),
    }


def kept_relations(store: Store) -> list[dict[str, Any]]:
    """Who-is-who kept in the store (:mod:`molehunt.resolve.stored`): each relation,
    the end of the last day resolved (UTC) and when it was last brought up to date."""
    if not store.has_tables("kept_state"):
        return []  # a read-only store of an older schema
    rows = store.query("SELECT relation, through_end, built_at FROM kept_state ORDER BY relation")
    return [
        {
            "relation": r["relation"],
            "through_end": r["through_end"].isoformat(),
            "built_at": r["built_at"].isoformat(),
        }
        for r in rows
    ]
