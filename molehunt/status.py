"""What the store holds: counts, sources with checkpoints, quarantine, schema, and the
last detection pass (with the detectors that failed in it)."""

from __future__ import annotations

from typing import Any

from molehunt.detect.runner import last_run
from molehunt.store import Store


def status(store: Store) -> dict[str, Any]:
    sources = store.query(
        'SELECT source_id, kind, path, "offset", size, size - "offset" AS pending_bytes, '
        "events, rejected, first_ingest, last_ingest FROM sources ORDER BY kind, path"
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
    }
