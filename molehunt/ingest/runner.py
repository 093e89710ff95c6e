"""Store what the parsers read, exactly once.

A file is known by a fingerprint of its first bytes (not its name or inode), so a
rotated and renamed log is recognised and read on from where it stopped. Each
batch of events and the source's new byte offset commit in one transaction, and
event ids are deterministic, so a crash or a re-run neither loses nor repeats an
event. Reference snapshots and the client master are fingerprinted whole: the
same export ingested twice stores nothing new.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from molehunt.config import Settings
from molehunt.digests import file_sha256, sha256_hex
from molehunt.errors import InputError, Location, MolehuntError, UnknownKindError
from molehunt.ingest import CLIENTS_KIND, FILE_PARSERS, LOG_PARSERS, REFERENCE_PARSERS, all_kinds
from molehunt.ingest.base import RAW_LIMIT, FileParser, FormatMismatchError, LogParser, ParseResult
from molehunt.ingest.batches import (
    STREAM_BLOCK,
    Batch,
    log_batches,
    make_log_parser,
    parse_range,
)
from molehunt.ingest.clients import ClientsParser, load_clients, swap_in_clients
from molehunt.ingest.memory import tune_allocator
from molehunt.ingest.pool import Workers
from molehunt.ingest.reference import read_header
from molehunt.ingest.writer import (
    HEAD_BYTES,
    SourceState,
    commit_log_batch,
    identify_log,
    insert_tables,
    merge_snapshot,
    new_source_id,
    preview,
    quarantine_rows,
    save_source,
    source_id_candidate,
)
from molehunt.keys import load_key
from molehunt.pii.keyed import KeyedHasher
from molehunt.store import Store

SNIFF_BYTES = 64 * 1024

#: Called with (path, bytes done, bytes in all) as a file is read.
Progress = Callable[[str, int, int], None]


@dataclass(slots=True)
class FileReport:
    path: str
    kind: str | None
    stored: int = 0
    rejected: int = 0
    skipped: str | None = None  # why nothing was read (unchanged, already read...)
    error: str | None = None
    #: The file does not fit its kind's configured format: nothing of it was read.
    refused: bool = False
    #: Lines read that hold no event by design (durations, checkpoints...), by reason.
    skipped_lines: dict[str, int] = field(default_factory=dict)
    #: Bytes left unread at the end of the file, and why.
    pending: int = 0
    pending_reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "path": self.path,
            "kind": self.kind,
            "stored": self.stored,
            "rejected": self.rejected,
        }
        if self.skipped_lines:
            out["skipped_lines"] = dict(sorted(self.skipped_lines.items()))
        if self.pending:
            out["pending_bytes"] = self.pending
            out["pending_reason"] = self.pending_reason
        if self.skipped:
            out["skipped"] = self.skipped
        if self.refused:
            out["refused"] = True
        if self.error:
            out["error"] = self.error
        return out


@dataclass(slots=True)
class IngestReport:
    files: list[FileReport] = field(default_factory=list)

    @property
    def stored(self) -> int:
        return sum(f.stored for f in self.files)

    @property
    def rejected(self) -> int:
        return sum(f.rejected for f in self.files)

    @property
    def errors(self) -> list[FileReport]:
        return [f for f in self.files if f.error]

    @property
    def skipped_lines(self) -> dict[str, int]:
        total: dict[str, int] = {}
        for f in self.files:
            for reason, n in f.skipped_lines.items():
                total[reason] = total.get(reason, 0) + n
        return dict(sorted(total.items()))

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "files": [f.as_dict() for f in self.files],
            "stored": self.stored,
            "rejected": self.rejected,
        }
        if skipped := self.skipped_lines:
            out["skipped_lines"] = skipped
        if refused := sum(f.refused for f in self.files):
            out["refused"] = refused
        return out


def expand(paths: Iterable[Path]) -> list[Path]:
    """Files named, and the files under folders named (sorted, hidden ones left out)."""
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            out.extend(
                sorted(
                    p
                    for p in path.rglob("*")
                    if p.is_file()
                    # hidden below the folder named: a hidden folder above it (a
                    # checkout under ~/.cache) must not hide everything
                    and not any(part.startswith(".") for part in p.relative_to(path).parts)
                )
            )
        else:
            out.append(path)
    return out


def _sniff(parser: Any, head: bytes, settings: Settings | None) -> bool:
    """``parser.sniff(head)``, or its ``sniff_configured(head, settings)`` where it
    has one (pg-stderr: the configured log_line_prefix)."""
    configured = getattr(parser, "sniff_configured", None)
    if settings is not None and configured is not None:
        return bool(configured(head, settings))
    return bool(parser.sniff(head))


def detect_kind(path: Path, settings: Settings | None = None) -> str:
    """The kind of ``path`` from its content (and the settings that say how some
    kinds are written); raises :class:`UnknownKindError`."""
    with path.open("rb") as f:
        head = f.read(SNIFF_BYTES)
    if not head:
        raise UnknownKindError("empty file", Location(str(path)))
    matches = [k for k, p in LOG_PARSERS.items() if _sniff(p, head, settings)]
    matches += [k for k, p in FILE_PARSERS.items() if p.sniff(head)]
    if not matches:
        if path.suffix.lower() in {".xlsx", ".xls", ".xlsm", ".ods", ".parquet"}:
            header = _table_header(path)
        else:
            header = read_header(path)
        matches = [k for k, p in REFERENCE_PARSERS.items() if p.sniff_header(header)]
        if ClientsParser.sniff_header(header):
            matches.append(CLIENTS_KIND)
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise UnknownKindError(
            "cannot tell what kind of file this is; name it with --kind "
            f"(one of: {', '.join(sorted(all_kinds()))})",
            Location(str(path)),
        )
    raise UnknownKindError(
        f"looks like several kinds ({', '.join(matches)}); name one with --kind",
        Location(str(path)),
    )


def _table_header(path: Path) -> list[str]:
    try:
        header, _batches, _rej = ClientsParser().batches(path)
    except Exception as e:  # an unreadable spreadsheet is just not a client master
        raise UnknownKindError(f"cannot read the header: {e}", Location(str(path))) from e
    return [h.strip().lower() for h in header]


def ingest_paths(
    store: Store,
    settings: Settings,
    paths: Sequence[Path],
    *,
    kind: str | None = None,
    as_of: datetime | None = None,
    progress: Progress | None = None,
) -> IngestReport:
    """Ingest every file (and every file under every folder) in ``paths``."""
    tune_allocator(settings.batch_bytes)
    report = IngestReport()
    # Never read molehunt's own files as input (a folder named may hold them).
    own = {_resolved(p) for p in (settings.db, Path(f"{settings.db}.wal"), settings.key_file)}
    with Workers(settings) as workers:
        for path in expand(paths):
            if _resolved(path) in own:
                continue
            file_report = FileReport(str(path), kind)
            report.files.append(file_report)
            _ingest_one(store, settings, path, kind, as_of, progress, workers, file_report)
    return report


def _ingest_one(
    store: Store,
    settings: Settings,
    path: Path,
    kind: str | None,
    as_of: datetime | None,
    progress: Progress | None,
    workers: Workers,
    file_report: FileReport,
) -> None:
    try:
        file_kind = kind or detect_kind(path, settings)
        file_report.kind = file_kind
        if file_kind in REFERENCE_PARSERS:
            _ingest_reference(store, path, file_kind, as_of, file_report)
        elif file_kind == CLIENTS_KIND:
            hasher = KeyedHasher(load_key(settings, store))
            _ingest_clients(store, path, hasher, file_report, progress)
        elif file_kind in LOG_PARSERS:
            parser = make_log_parser(file_kind, settings)
            _ingest_log(store, path, file_kind, parser, workers, file_report, progress)
        elif file_kind in FILE_PARSERS:
            _ingest_file(store, path, file_kind, FILE_PARSERS[file_kind](), file_report)
        else:
            raise InputError(f"unknown kind {file_kind!r}", Location(str(path)))
    except FormatMismatchError as e:
        file_report.refused = True
        file_report.error = str(e)
    except (MolehuntError, OSError) as e:
        file_report.error = str(e)


def _resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except OSError:
        return path


# -- sources and checkpoints ----------------------------------------------------


# -- logs -------------------------------------------------------------------------


def _ingest_log(
    store: Store,
    path: Path,
    kind: str,
    parser: LogParser,
    workers: Workers,
    report: FileReport,
    progress: Progress | None,
) -> None:
    state = identify_log(store, path, kind)
    size = path.stat().st_size
    if state.known and state.offset >= size:
        report.skipped = "already read to the end"
        return
    position = start = state.offset
    # Until one batch the parser read from the file's start parses, the file may
    # not be of this kind or layout at all: then it is refused, not quarantined.
    judged = state.known or start > 0
    waiting: str | None = None  # what the parser says its held-back records wait for
    with path.open("rb") as f:
        batches = workers.batches(parser, f, kind, path, state.source_id, position)
        try:
            for batch in batches:
                result = batch.result
                if not judged and not batch.set_aside:
                    judged = True
                    if nothing_parsed(result):
                        raise mismatch(path, kind, result, position)
                position = batch.position
                waiting = result.pending
                commit_log_batch(store, state, kind, path, position, result, batch.hashes)
                report.stored += result.events
                report.rejected += len(result.rejected)
                for reason, n in result.skipped.items():
                    report.skipped_lines[reason] = report.skipped_lines.get(reason, 0) + n
                if progress:
                    progress(str(path), position, size)
        except FormatMismatchError as e:
            if position == start:
                raise
            raise FormatMismatchError(
                f"{e} (its bytes before {position} fitted and are stored; "
                "it will be read on from there once it matches)"
            ) from e
        size = path.stat().st_size
        report.pending = size - position
        report.pending_reason = pending_reason(f, position, size, kind)
        if waiting and report.pending:
            report.pending_reason = waiting
    if state.known:
        store.con.execute(
            "UPDATE sources SET size = ?, pending_reason = ? WHERE source_id = ?",
            [size, report.pending_reason, state.source_id],
        )
    if not state.known and position == 0:
        report.skipped = "no complete record yet"


def nothing_parsed(result: ParseResult) -> bool:
    """Whether every record of a batch was rejected and nothing in it parsed."""
    return (
        bool(result.rejected)
        and result.events == 0
        and not result.skipped
        and len(result.rejected) >= result.records
    )


def mismatch(path: Path, kind: str, result: ParseResult, offset: int) -> FormatMismatchError:
    """The refusal of a file none of whose first batch parses as ``kind``."""
    first = result.rejected[0]
    return FormatMismatchError(
        f"nothing in its first {result.consumed} bytes parses as {kind} "
        f"({len(result.rejected)} record(s) rejected; the first: {first.reason}). "
        "Is it another kind (--kind) or another layout (the kind's settings, e.g. "
        "pg_log_line_prefix)? Nothing of it was stored; it will be read from there "
        "once it matches",
        Location(str(path), first.line, offset if first.line is None else None),
    )


def pending_reason(f: BinaryIO, position: int, size: int, kind: str) -> str | None:
    """Why the bytes from ``position`` to ``size`` of the file were left unread."""
    f.seek(position)
    left = size - position
    while left > 0:
        block = f.read(min(STREAM_BLOCK, left))
        if not block:
            break
        left -= len(block)
        if b"\n" in block:
            return (
                f"whole lines the {kind} parser holds back: a record not yet known complete, "
                "or waiting for what follows it (e.g. an audit record for its plan)"
            )
    if position >= size:
        return None
    return "unfinished last record (no line end yet: the writer may still be writing it)"


# -- whole files (EVTX) -----------------------------------------------------------


def _ingest_file(
    store: Store, path: Path, kind: str, parser: FileParser, report: FileReport
) -> None:
    start, end = parser.head_range
    size = path.stat().st_size
    with path.open("rb") as f:
        f.seek(start)
        head = f.read(end - start)
    digest = sha256_hex(head)
    rows = store.con.execute(
        'SELECT source_id, "offset", size FROM sources WHERE kind = ? AND head_hash = ?',
        [kind, digest],
    ).fetchall()
    if rows and rows[0][2] == size:
        report.skipped = "unchanged since it was read"
        return
    if rows:
        state = SourceState(rows[0][0], int(rows[0][1]), True, len(head), digest)
    else:
        state = SourceState(new_source_id(store, digest, kind), 0, False, len(head), digest)
    result = parser.parse_path(path, source_id=state.source_id, resume=state.offset)
    # A damaged chunk is met again on every re-read: quarantine it once.
    seen = {
        (reason, offset)
        for reason, offset in store.con.execute(
            'SELECT reason, "offset" FROM quarantine WHERE source_id = ?', [state.source_id]
        ).fetchall()
    }
    fresh = [r for r in result.rejected if (r.reason, r.offset) not in seen]
    with store.transaction() as con:
        insert_tables(con, result.tables)
        quarantine_rows(con, state.source_id, kind, path, fresh)
        save_source(con, state, kind, path, result.consumed, result.events, len(fresh))
    report.stored = result.events
    report.rejected = len(fresh)


# -- reference snapshots ------------------------------------------------------------


def _ingest_reference(
    store: Store, path: Path, kind: str, as_of: datetime | None, report: FileReport
) -> None:
    digest = file_sha256(path)
    if store.con.execute(
        "SELECT 1 FROM sources WHERE kind = ? AND head_hash = ?", [kind, digest]
    ).fetchall():
        report.skipped = "this export was ingested before"
        return
    parser = REFERENCE_PARSERS[kind]()
    result = parser.parse_file(path)
    (table_name,) = result.tables
    snapshot = result.tables[table_name]
    when = as_of or datetime.fromtimestamp(os.path.getmtime(path), tz=UTC)
    state = SourceState(new_source_id(store, digest, kind), 0, False, -1, digest)
    with store.transaction() as con:
        stored = merge_snapshot(con, table_name, snapshot, when, state.source_id)
        quarantine_rows(con, state.source_id, kind, path, result.rejected)
        save_source(con, state, kind, path, path.stat().st_size, stored, len(result.rejected))
    report.stored = snapshot.num_rows
    report.rejected = len(result.rejected)


def _ingest_clients(
    store: Store, path: Path, hasher: KeyedHasher, report: FileReport, progress: Progress | None
) -> None:
    digest = file_sha256(path)
    if store.con.execute(
        "SELECT 1 FROM sources WHERE kind = ? AND head_hash = ?", [CLIENTS_KIND, digest]
    ).fetchall():
        report.skipped = "this export was ingested before"
        return
    state = SourceState(new_source_id(store, digest, CLIENTS_KIND), 0, False, -1, digest)
    size = path.stat().st_size
    done = 0

    def tick(rows: int) -> None:
        nonlocal done
        done += rows
        if progress:
            progress(str(path), done, max(done, 1) if size == 0 else done)

    loaded = load_clients(store.con, path, hasher, state.source_id, tick)
    with store.transaction() as con:
        swap_in_clients(con)
        quarantine_rows(con, state.source_id, CLIENTS_KIND, path, loaded.rejected)
        save_source(con, state, CLIENTS_KIND, path, size, loaded.stored, len(loaded.rejected))
    report.stored = loaded.stored
    report.rejected = len(loaded.rejected)


#: Names other modules import from here (the reading and writing moved out).
__all__ = [
    "HEAD_BYTES",
    "RAW_LIMIT",
    "Batch",
    "FileReport",
    "IngestReport",
    "Progress",
    "detect_kind",
    "expand",
    "ingest_paths",
    "log_batches",
    "make_log_parser",
    "merge_snapshot",
    "parse_range",
    "preview",
    "quarantine_rows",
    "source_id_candidate",
]
