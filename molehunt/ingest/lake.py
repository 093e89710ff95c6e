"""Parse logs on Apache Spark into a Parquet lake, for logs that outgrow one machine.

The parsers are pure functions of bytes, so Spark can run them as they are. The
driver plans *pieces*: a line-per-record log (Squid, app-access, Winlogbeat) is cut
every ``batch_bytes`` at the next newline, since a newline always ends one of its
records; a PostgreSQL log, whose quoted statements may hold newlines, and an EVTX
file are one piece each (a company's logs rotate daily, so there are many files).
Spark's ``mapInArrow`` hands the pieces to the executors, each parses its own and
writes one Parquet file per table to ``LAKE/<table>/<source>-<start>.parquet``
(rejected records to ``LAKE/quarantine/``), cast to the store's schema.

Exactly once, as in the store: a file's source id comes from the fingerprint of
its first bytes (the id the store would give it), event ids from source and byte
offset, and a piece's output file is named by source and start and replaced
atomically. Re-running over the same files rewrites the same files with the same
rows; a grown file's last piece is rewritten with its new records; a rotated file
keeps its fingerprint and so its names. An unfinished last record is left out until
it is complete, as in the store.

``molehunt detect --engine spark --lake LAKE`` reads the event tables from the lake
(reference tables and the client master still come from the store).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from molehunt.compute.lake import QUARANTINE
from molehunt.compute.spark import spark_session
from molehunt.config import Settings
from molehunt.digests import sha256_hex
from molehunt.errors import InputError, Location, MolehuntError
from molehunt.ingest import FILE_PARSERS, LOG_PARSERS
from molehunt.ingest.base import ParseResult, Rejected
from molehunt.ingest.runner import (
    HEAD_BYTES,
    detect_kind,
    expand,
    make_log_parser,
    parse_range,
    source_id_candidate,
)
from molehunt.store import Store
from molehunt.store.schema import EVENT_TABLES

#: Kinds in which a newline always ends a record: cut into pieces of ``batch_bytes``.
LINE_KINDS = frozenset({"squid", "squid-native", "app-access", "winlog-ndjson"})
#: Tables a parser may write besides the event tables.
DETAIL_TABLES = ("record_access",)


@dataclass(frozen=True, slots=True)
class Piece:
    """Bytes ``start`` to ``end`` of a file, parsed by one Spark task."""

    path: str
    kind: str
    source_id: str
    start: int
    end: int


@dataclass(slots=True)
class LakeReport:
    """What one run wrote: per piece, rows per table and records rejected."""

    pieces: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def stored(self) -> int:
        return sum(
            n for p in self.pieces for t, n in p["tables"].items() if t.startswith("events_")
        )

    @property
    def rejected(self) -> int:
        return sum(int(p["rejected"]) for p in self.pieces)

    def as_dict(self) -> dict[str, Any]:
        return {
            "pieces": self.pieces,
            "stored": self.stored,
            "rejected": self.rejected,
            "errors": self.errors,
        }


def plan(paths: Sequence[Path], batch_bytes: int) -> tuple[list[Piece], list[str]]:
    """The pieces of every log file under ``paths``, and the files that cannot go."""
    pieces: list[Piece] = []
    errors: list[str] = []
    for path in expand(paths):
        try:
            kind = detect_kind(path)
        except (MolehuntError, OSError) as e:
            errors.append(str(e))
            continue
        size = path.stat().st_size
        if kind in FILE_PARSERS:
            start, end = FILE_PARSERS[kind].head_range
            with path.open("rb") as f:
                f.seek(start)
                head = f.read(end - start)
            pieces.append(
                Piece(str(path), kind, source_id_candidate(sha256_hex(head), kind), 0, size)
            )
        elif kind in LOG_PARSERS:
            with path.open("rb") as f:
                source = source_id_candidate(sha256_hex(f.read(HEAD_BYTES)), kind)
                cuts = _cuts(f, size, batch_bytes) if kind in LINE_KINDS else [0, size]
            pieces.extend(Piece(str(path), kind, source, a, b) for a, b in pairwise(cuts))
        else:
            errors.append(
                str(
                    InputError(
                        f"{kind} is reference data: ingest it into the store (molehunt ingest)",
                        Location(str(path)),
                    )
                )
            )
    return pieces, errors


def _cuts(f: Any, size: int, batch_bytes: int) -> list[int]:
    """0, then the byte after the first newline at or past each multiple of
    ``batch_bytes``, then the byte after the file's last newline."""
    cuts = [0]
    target = batch_bytes
    while target < size:
        f.seek(target - 1)
        at = target - 1
        while True:
            block = f.read(1 << 16)
            if not block:
                at = -1
                break
            newline = block.find(b"\n")
            if newline >= 0:
                at += newline + 1
                break
            at += len(block)
        if at < 0 or at >= size:
            break
        if at > cuts[-1]:
            cuts.append(at)
        target = max(target + batch_bytes, at + 1)
    f.seek(max(size - (1 << 16), cuts[-1]))
    tail = f.read()
    last = tail.rfind(b"\n")
    end = size - len(tail) + last + 1 if last >= 0 else cuts[-1]
    if end > cuts[-1]:
        cuts.append(end)
    elif len(cuts) == 1:
        cuts.append(0)  # no complete line yet: an empty piece
    return cuts


def store_schemas() -> dict[str, pa.Schema]:
    """The Arrow schema of every table the lake holds, as the store declares it."""
    with Store.open(":memory:") as store:
        names = (*EVENT_TABLES, *DETAIL_TABLES, QUARANTINE)
        return {
            n: store.con.sql(f'SELECT * FROM "{n}" LIMIT 0').to_arrow_table().schema for n in names
        }


def parse_piece(piece: Piece, settings: Settings) -> ParseResult:
    """Every record of a piece, as the store's ingest would read them."""
    path = Path(piece.path)
    if piece.kind in FILE_PARSERS:
        return FILE_PARSERS[piece.kind]().parse_path(path, source_id=piece.source_id, resume=0)
    parser = make_log_parser(piece.kind, settings)
    out = ParseResult()
    parts: dict[str, list[pa.Table]] = {}
    with path.open("rb") as f:
        batches = parse_range(
            parser,
            f,
            path,
            piece.source_id,
            piece.start,
            piece.end,
            batch_bytes=settings.batch_bytes,
        )
        for position, result in batches:
            for name, table in result.tables.items():
                parts.setdefault(name, []).append(table)
            out.rejected.extend(result.rejected)
            out.records += result.records
            out.consumed = position - piece.start
    out.tables = {n: pa.concat_tables(t, promote_options="permissive") for n, t in parts.items()}
    return out


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` with exactly the columns and types of ``schema`` (missing ones null)."""
    columns = [
        table[f.name].cast(f.type) if f.name in table.column_names else pa.nulls(len(table), f.type)
        for f in schema
    ]
    return pa.Table.from_arrays(columns, schema=schema)


def _quarantined(piece: Piece, rejected: list[Rejected], schema: pa.Schema) -> pa.Table:
    n = len(rejected)
    rows: dict[str, list[Any]] = {
        "source_id": [piece.source_id] * n,
        "kind": [piece.kind] * n,
        "path": [piece.path] * n,
        "line": [r.line for r in rejected],
        "offset": [r.offset for r in rejected],
        "reason": [r.reason for r in rejected],
        "raw": [r.raw for r in rejected],
    }
    return conform(pa.table(rows), schema)


def _write(table: pa.Table, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    pq.write_table(table, partial, compression="zstd")
    os.replace(partial, target)  # readers see the old file or the new one, never half


def write_piece(
    piece: Piece, settings: Settings, lake: Path, schemas: dict[str, pa.Schema]
) -> dict[str, Any]:
    """Parse a piece and write its Parquet files; returns what it wrote."""
    result = parse_piece(piece, settings)
    name = f"{piece.source_id}-{piece.start:012d}.parquet"
    written: dict[str, int] = {}
    for table_name, table in result.tables.items():
        if table.num_rows:
            _write(conform(table, schemas[table_name]), lake / table_name / name)
        written[table_name] = table.num_rows
    if result.rejected:
        quarantined = _quarantined(piece, result.rejected, schemas[QUARANTINE])
        _write(quarantined, lake / QUARANTINE / name)
    return {
        "path": piece.path,
        "kind": piece.kind,
        "source_id": piece.source_id,
        "start": piece.start,
        "end": piece.start + result.consumed if piece.kind in LOG_PARSERS else piece.end,
        "tables": written,
        "rejected": len(result.rejected),
    }


_DONE_SCHEMA = "report string"


def ingest_to_lake(
    settings: Settings,
    paths: Sequence[Path],
    lake: Path,
    *,
    master: str = "local[2]",
    memory: str = "2g",
) -> LakeReport:
    """Parse every log under ``paths`` on Spark into ``lake``."""
    pieces, errors = plan(paths, settings.batch_bytes)
    report = LakeReport(errors=errors)
    if not pieces:
        return report
    session = spark_session(master, memory, "molehunt-ingest")
    schemas = store_schemas()
    lake = lake.resolve()
    settings_json = settings.model_dump_json(exclude={"key"})  # parsing needs no key

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        task_settings = Settings.model_validate_json(settings_json)
        for batch in batches:
            for row in batch.to_pylist():
                done = write_piece(Piece(**row), task_settings, lake, schemas)
                yield pa.record_batch({"report": [json.dumps(done)]})

    try:
        frame = session.createDataFrame(
            [
                (p.path, p.kind, p.source_id, p.start, p.end)
                for p in sorted(pieces, key=lambda p: p.start - p.end)  # largest first
            ],
            schema="path string, kind string, source_id string, start long, end long",
        )
        frame = frame.repartition(
            max(1, min(len(pieces), session.sparkContext.defaultParallelism * 4))
        )
        rows = frame.mapInArrow(run, _DONE_SCHEMA).collect()
    finally:
        session.stop()
    report.pieces = sorted(
        (json.loads(r["report"]) for r in rows), key=lambda p: (p["path"], p["start"])
    )
    return report
