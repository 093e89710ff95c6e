"""The one writer: batches, checkpoints and quarantined records into the store.

Each log batch's tables (Arrow, record-level rows included), its rejected records
and the source's new byte offset go in one transaction, so a crash or a re-run
neither loses nor repeats an event. Only the process that holds the store writes;
the parsing may happen elsewhere (:mod:`molehunt.ingest.pool`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from molehunt.digests import sha256_hex
from molehunt.ingest.base import RAW_LIMIT, ParseResult, Rejected
from molehunt.store import REFERENCE_TABLES, Store

HEAD_BYTES = 1024


@dataclass(slots=True)
class SourceState:
    source_id: str
    offset: int
    known: bool
    head_len: int
    head_hash: str


def identify_log(store: Store, path: Path, kind: str) -> SourceState:
    """Find the source this file continues, by the hash of its first bytes."""
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(HEAD_BYTES)
    lengths = store.con.execute(
        "SELECT DISTINCT head_len FROM sources WHERE kind = ? AND head_len <= ?", [kind, size]
    ).fetchall()
    best: SourceState | None = None
    for (length,) in lengths:
        digest = sha256_hex(head[:length])
        for source_id, offset, head_len in store.con.execute(
            'SELECT source_id, "offset", head_len FROM sources '
            'WHERE kind = ? AND head_len = ? AND head_hash = ? ORDER BY "offset" DESC',
            [kind, length, digest],
        ).fetchall():
            if offset > size:
                continue  # truncated since: copytruncate wrote a new file
            if best is None or head_len > best.head_len:
                best = SourceState(source_id, offset, True, head_len, digest)
            break
    new_hash = sha256_hex(head)
    if best is not None:
        best.head_len, best.head_hash = len(head), new_hash
        return best
    return SourceState(new_source_id(store, new_hash, kind), 0, False, len(head), new_hash)


def source_id_candidate(head_hash: str, kind: str, n: int = 0) -> str:
    """The ``n``-th id a source of this fingerprint and kind may take (the first
    unless another source took it), so parsing elsewhere can name events alike."""
    return sha256_hex(f"{head_hash}{kind}:{n}".encode())[:16]


def new_source_id(store: Store, head_hash: str, kind: str) -> str:
    n = 0
    while True:
        candidate = source_id_candidate(head_hash, kind, n)
        row = store.con.execute("SELECT 1 FROM sources WHERE source_id = ?", [candidate]).fetchall()
        if not row:
            return candidate
        n += 1


def save_source(
    con: Any,
    state: SourceState,
    kind: str,
    path: Path,
    offset: int,
    events: int,
    rejected: int,
    pending_reason: str | None = None,
) -> None:
    size = path.stat().st_size
    con.execute(
        """
        INSERT INTO sources (source_id, kind, path, head_len, head_hash, size, "offset",
          events, rejected, first_ingest, last_ingest, pending_reason)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, now(), now(), ?)
        ON CONFLICT (source_id) DO UPDATE SET
          path = excluded.path, head_len = excluded.head_len, head_hash = excluded.head_hash,
          size = excluded.size, "offset" = excluded."offset",
          events = sources.events + excluded.events,
          rejected = sources.rejected + excluded.rejected,
          last_ingest = now(), pending_reason = excluded.pending_reason
        """,
        [
            state.source_id,
            kind,
            str(path),
            state.head_len,
            state.head_hash,
            size,
            offset,
            events,
            rejected,
            pending_reason,
        ],
    )


def preview(raw: str | None) -> str | None:
    """A quarantined record's raw text, bounded: replay re-reads the file, not this."""
    if raw is None or len(raw) <= RAW_LIMIT:
        return raw
    return raw[:RAW_LIMIT] + f"... [{len(raw) - RAW_LIMIT} more characters]"


def quarantine_rows(
    con: Any,
    source_id: str,
    kind: str,
    path: Path,
    rejected: Sequence[Rejected],
    hashes: Sequence[str | None] | None = None,
) -> None:
    """Store rejected records with where they are (offset, length) and the SHA-256 of
    their bytes, so that ``molehunt quarantine replay`` can re-read them."""
    if not rejected:
        return
    table = pa.table(
        {
            "source_id": [source_id] * len(rejected),
            "kind": [kind] * len(rejected),
            "path": [str(path)] * len(rejected),
            "line": pa.array([r.line for r in rejected], pa.int64()),
            "offset": pa.array([r.offset for r in rejected], pa.int64()),
            "length": pa.array([r.length for r in rejected], pa.int64()),
            "sha256": pa.array(hashes or [None] * len(rejected), pa.string()),
            "reason": [r.reason for r in rejected],
            "raw": [preview(r.raw) for r in rejected],
        }
    )
    con.register("quarantined", table)
    try:
        con.execute(
            "INSERT INTO quarantine BY NAME SELECT *, now() AS quarantined_at FROM quarantined"
        )
    finally:
        con.unregister("quarantined")


def insert_tables(con: Any, tables: dict[str, pa.Table]) -> None:
    for name, table in tables.items():
        if table.num_rows == 0:
            continue
        con.register("parsed", table)
        try:
            con.execute(f"INSERT INTO {name} BY NAME SELECT * FROM parsed")
        finally:
            con.unregister("parsed")


def commit_log_batch(
    store: Store,
    state: SourceState,
    kind: str,
    path: Path,
    offset: int,
    result: ParseResult,
    hashes: Sequence[str | None] | None = None,
) -> None:
    with store.transaction() as con:
        insert_tables(con, result.tables)
        quarantine_rows(con, state.source_id, kind, path, result.rejected, hashes)
        save_source(con, state, kind, path, offset, result.events, len(result.rejected))
    state.known = True


def merge_snapshot(
    con: Any, table: str, snapshot: pa.Table, as_of: datetime, source_id: str
) -> int:
    """Make ``snapshot`` the current version of ``ref_<table>``, keeping history.

    Rows that changed or vanished are closed at ``as_of``; new and changed rows start
    there (or have no start if this is the table's first snapshot). Returns the
    number of row versions written.
    """
    columns, _key = REFERENCE_TABLES[table]
    same = " AND ".join(f"r.{c} IS NOT DISTINCT FROM s.{c}" for c in columns)
    first = con.execute(f"SELECT count(*) = 0 FROM ref_{table}").fetchall()[0][0]
    con.register("snapshot", snapshot)
    try:
        added = con.execute(
            f"SELECT count(*) FROM snapshot s WHERE NOT EXISTS "
            f"(SELECT 1 FROM ref_{table} r WHERE r.valid_to IS NULL AND {same})"
        ).fetchall()[0][0]
        con.execute(
            f"UPDATE ref_{table} AS r SET valid_to = ? WHERE valid_to IS NULL AND NOT EXISTS "
            f"(SELECT 1 FROM snapshot s WHERE {same})",
            [as_of],
        )
        con.execute(
            f"INSERT INTO ref_{table} ({', '.join(columns)}, valid_from, valid_to, source_id) "
            f"SELECT {', '.join('s.' + c for c in columns)}, ?, NULL, ? FROM snapshot s "
            f"WHERE NOT EXISTS (SELECT 1 FROM ref_{table} r WHERE r.valid_to IS NULL AND {same})",
            [None if first else as_of, source_id],
        )
    finally:
        con.unregister("snapshot")
    return int(added)


# -- the client master ------------------------------------------------------------
