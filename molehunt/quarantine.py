"""The quarantine: records set aside at ingest, listed and replayed.

Every rejected log record keeps its file, source, byte offset and length, and the
SHA-256 of its bytes. After a setting is fixed (``pg_log_line_prefix``...),
:func:`replay` re-reads each record's exact bytes from its file and parses them with
the current settings: what parses now is stored exactly once (event ids come from
the record's place in the file, and an id already stored is never stored again) and
leaves the quarantine; what still fails stays, with its new reason. A file that is
gone or changed since is said so per record, and the record stays.

Reference snapshots, the client master and EVTX files are read whole: their rejected
rows are fixed by ingesting a corrected export, not replayed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from molehunt.config import Settings
from molehunt.digests import range_sha256, sha256_hex
from molehunt.ingest import LOG_PARSERS
from molehunt.ingest.base import FormatMismatchError, LogParser, ParseResult, Rejected
from molehunt.ingest.runner import log_batches, make_log_parser, quarantine_rows
from molehunt.pii.mask import mask_text
from molehunt.store import Store

#: Characters of a record's raw text that ``quarantine list`` shows (masked).
LIST_PREVIEW = 160


def list_quarantine(
    store: Store,
    *,
    reason: str | None = None,
    source: str | None = None,
    kind: str | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Quarantined records, oldest first, with a short masked preview of their text.

    ``reason`` matches a part of the reason, case-insensitively."""
    where, params = _filters(source, kind)
    if reason:
        where.append("reason ILIKE ?")
        params.append(f"%{reason}%")
    rows = store.query(
        'SELECT id, source_id, kind, path, line, "offset", length, reason, raw, quarantined_at '
        f'FROM quarantine {_where(where)} ORDER BY quarantined_at, source_id, "offset", id '
        "LIMIT ?",
        [*params, limit],
    )
    for row in rows:
        raw = row.pop("raw")
        text = raw[:LIST_PREVIEW] + ("..." if len(raw) > LIST_PREVIEW else "") if raw else None
        row["preview"] = mask_text(text) if text else text
    return rows


@dataclass(slots=True)
class Outcome:
    """What replay did with one quarantined record."""

    id: int
    source_id: str
    path: str
    offset: int | None
    length: int | None
    outcome: str  # stored, rejected, gone, changed, not replayable
    stored: int = 0
    rejected: int = 0
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "source_id": self.source_id,
            "path": self.path,
            "offset": self.offset,
            "length": self.length,
            "outcome": self.outcome,
            "stored": self.stored,
            "rejected": self.rejected,
            "reason": self.reason,
        }


@dataclass(slots=True)
class ReplayReport:
    records: list[Outcome] = field(default_factory=list)

    @property
    def stored(self) -> int:
        return sum(r.stored for r in self.records)

    def count(self, outcome: str) -> int:
        return sum(r.outcome == outcome for r in self.records)

    def as_dict(self) -> dict[str, Any]:
        return {
            "records": [r.as_dict() for r in self.records],
            "replayed": len(self.records),
            "stored": self.stored,
            "cleared": self.count("stored"),
            "still_rejected": self.count("rejected"),
            "gone": self.count("gone"),
            "changed": self.count("changed"),
            "not_replayable": self.count("not replayable"),
        }


def replay(
    store: Store, settings: Settings, *, source: str | None = None, kind: str | None = None
) -> ReplayReport:
    """Re-parse quarantined log records from their files with the current settings."""
    where, params = _filters(source, kind, prefix="q.")
    rows = store.query(
        'SELECT q.id, q.source_id, q.kind, q.path, q."offset", q.length, q.sha256, q.reason, '
        "s.path AS source_path, s.head_len, s.head_hash FROM quarantine q "
        f"LEFT JOIN sources s USING (source_id) {_where(where)} "
        'ORDER BY q.source_id, q."offset", q.id',
        params,
    )
    report = ReplayReport()
    parsers: dict[str, LogParser] = {}
    for row in rows:
        outcome = Outcome(
            row["id"], row["source_id"], row["path"], row["offset"], row["length"], ""
        )
        report.records.append(outcome)
        if row["kind"] not in LOG_PARSERS:
            outcome.outcome = "not replayable"
            outcome.reason = f"{row['kind']} files are read whole: ingest the corrected file"
            continue
        if row["offset"] is None or row["length"] is None:
            outcome.outcome = "not replayable"
            outcome.reason = "no offset and length kept (quarantined by an older molehunt)"
            continue
        found = _find_file(row)
        if isinstance(found, tuple):
            outcome.outcome, outcome.reason = found
            continue
        outcome.path = str(found)
        digest = range_sha256(found, row["offset"], row["length"])
        if digest is None or (row["sha256"] and digest != row["sha256"]):
            outcome.outcome = "changed"
            outcome.reason = "the record's bytes in the file differ from those quarantined"
            continue
        if row["kind"] not in parsers:
            parsers[row["kind"]] = make_log_parser(row["kind"], settings)
        _replay_one(store, settings, parsers[row["kind"]], row, found, outcome)
    return report


def _filters(source: str | None, kind: str | None, prefix: str = "") -> tuple[list[str], list[Any]]:
    where: list[str] = []
    params: list[Any] = []
    if source:
        where.append(f"{prefix}source_id = ?")
        params.append(source)
    if kind:
        where.append(f"{prefix}kind = ?")
        params.append(kind)
    return where, params


def _where(conditions: list[str]) -> str:
    return f"WHERE {' AND '.join(conditions)}" if conditions else ""


def _find_file(row: dict[str, Any]) -> Path | tuple[str, str]:
    """The file that holds the record: where its source was last seen, else where it
    was quarantined, if its first bytes are still the source's; else why not."""
    candidates = [p for p in dict.fromkeys((row["source_path"], row["path"])) if p]
    existing = [Path(p) for p in candidates if Path(p).is_file()]
    if not existing:
        return "gone", f"no file at {' or '.join(candidates)}"
    if row["head_hash"] is None:
        return existing[0]  # no fingerprint kept: the record's hash is the check
    for path in existing:
        with path.open("rb") as f:
            head = f.read(row["head_len"])
        if sha256_hex(head) == row["head_hash"]:
            return path
    return "changed", (
        f"{existing[0]} is another file now (its first bytes differ): if it was rotated, "
        "ingest the file it became, then replay"
    )


def _parse_record(
    parser: LogParser, row: dict[str, Any], path: Path, batch_bytes: int
) -> Iterator[tuple[ParseResult, list[str | None]]]:
    """The record's bytes parsed as the runner parses a file, a batch at a time; a tail
    the parser holds back (it waits for what follows) is set aside again."""
    source_id, offset, length = row["source_id"], row["offset"], row["length"]
    end = offset + length
    position = offset
    with path.open("rb") as f:
        for batch in log_batches(parser, f, path, source_id, offset, end, batch_bytes=batch_bytes):
            position = batch.position
            yield batch.result, batch.hashes
        if position < end:
            f.seek(position)
            head = f.read(min(end - position, 4096))
            held = Rejected(
                f"replay: the {row['kind']} parser holds these bytes back "
                "(waiting for what follows them in the file)",
                offset=position,
                raw=head.decode("utf-8", "replace"),
                length=end - position,
            )
            yield (
                ParseResult(rejected=[held], consumed=end - position, records=1),
                [range_sha256(path, position, end - position)],
            )


def _replay_one(
    store: Store,
    settings: Settings,
    parser: LogParser,
    row: dict[str, Any],
    path: Path,
    outcome: Outcome,
) -> None:
    tables: dict[str, list[pa.Table]] = {}
    rejected: list[Rejected] = []
    hashes: list[str | None] = []
    try:
        for result, batch_hashes in _parse_record(parser, row, path, settings.batch_bytes):
            for name, table in result.tables.items():
                tables.setdefault(name, []).append(table)
            rejected.extend(result.rejected)
            hashes.extend(batch_hashes)
    except FormatMismatchError as e:
        reason = f"replay: {e}"
        rejected = [Rejected(reason, offset=row["offset"], length=row["length"])]
        hashes = [row["sha256"]]
    unchanged = (
        len(rejected) == 1
        and rejected[0].offset == row["offset"]
        and rejected[0].length == row["length"]
        and not tables
    )
    with store.transaction() as con:
        if unchanged:
            con.execute(
                "UPDATE quarantine SET reason = ? WHERE id = ?", [rejected[0].reason, row["id"]]
            )
            stored = 0
        else:
            stored = _insert_new(con, tables)
            con.execute("DELETE FROM quarantine WHERE id = ?", [row["id"]])
            quarantine_rows(con, row["source_id"], row["kind"], path, rejected, hashes)
        con.execute(
            "UPDATE sources SET events = events + ?, rejected = rejected + ? WHERE source_id = ?",
            [stored, len(rejected) - 1, row["source_id"]],
        )
    outcome.stored = stored
    outcome.rejected = len(rejected)
    if rejected:
        outcome.outcome = "rejected"
        outcome.reason = rejected[0].reason
    else:
        outcome.outcome = "stored"


def _insert_new(con: Any, tables: dict[str, list[pa.Table]]) -> int:
    """Insert the rows whose event id is not stored yet; returns the new events."""
    events = 0
    for name, parts in tables.items():
        table = pa.concat_tables(parts, promote_options="permissive")
        if table.num_rows == 0:
            continue
        con.register("replayed", table)
        try:
            before = con.execute(f"SELECT count(*) FROM {name}").fetchall()[0][0]
            con.execute(
                f"INSERT INTO {name} BY NAME SELECT * FROM replayed r WHERE NOT EXISTS "
                f"(SELECT 1 FROM {name} t WHERE t.event_id = r.event_id)"
            )
            after = con.execute(f"SELECT count(*) FROM {name}").fetchall()[0][0]
        finally:
            con.unregister("replayed")
        if name.startswith("events_"):
            events += int(after) - int(before)
    return events
