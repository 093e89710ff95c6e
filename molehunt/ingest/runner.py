"""Store what the parsers read, exactly once.

A file is known by a fingerprint of its first bytes (not its name or inode), so a
rotated and renamed log is recognised and read on from where it stopped. Each
batch of events and the source's new byte offset commit in one transaction, and
event ids are deterministic, so a crash or a re-run neither loses nor repeats an
event. Reference snapshots and the client master are fingerprinted whole: the
same export ingested twice stores nothing new.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from molehunt.config import Settings
from molehunt.digests import file_sha256, sha256_hex
from molehunt.errors import InputError, Location, MolehuntError, UnknownKindError
from molehunt.ingest import CLIENTS_KIND, FILE_PARSERS, LOG_PARSERS, REFERENCE_PARSERS, all_kinds
from molehunt.ingest.base import (
    FileParser,
    FormatMismatchError,
    LogParser,
    ParseResult,
    Rejected,
)
from molehunt.ingest.clients import ClientsParser, load_clients, swap_in_clients
from molehunt.ingest.memory import tune_allocator
from molehunt.ingest.reference import read_header
from molehunt.keys import load_key
from molehunt.pii.keyed import KeyedHasher
from molehunt.store import REFERENCE_TABLES, Store

HEAD_BYTES = 1024
#: A "record" this many batches long without a boundary is set aside, not buffered.
OVERSIZED_BATCHES = 4
#: Characters of a quarantined record kept as its preview (replay re-reads the file).
RAW_LIMIT = 64 * 1024
SNIFF_BYTES = 64 * 1024
#: Bytes read at a time while skipping a line longer than a batch.
STREAM_BLOCK = 1024 * 1024

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
    hasher: KeyedHasher | None = None
    # Never read molehunt's own files as input (a folder named may hold them).
    own = {_resolved(p) for p in (settings.db, Path(f"{settings.db}.wal"), settings.key_file)}
    for path in expand(paths):
        if _resolved(path) in own:
            continue
        file_report = FileReport(str(path), kind)
        report.files.append(file_report)
        try:
            file_kind = kind or detect_kind(path, settings)
            file_report.kind = file_kind
            if file_kind in REFERENCE_PARSERS:
                _ingest_reference(store, path, file_kind, as_of, file_report)
            elif file_kind == CLIENTS_KIND:
                hasher = hasher or KeyedHasher(load_key(settings, store))
                _ingest_clients(store, path, hasher, file_report, progress)
            elif file_kind in LOG_PARSERS:
                parser = make_log_parser(file_kind, settings)
                _ingest_log(store, settings, path, file_kind, parser, file_report, progress)
            elif file_kind in FILE_PARSERS:
                _ingest_file(store, path, file_kind, FILE_PARSERS[file_kind](), file_report)
            else:
                raise InputError(f"unknown kind {file_kind!r}", Location(str(path)))
        except FormatMismatchError as e:
            file_report.refused = True
            file_report.error = str(e)
        except (MolehuntError, OSError) as e:
            file_report.error = str(e)
    return report


def _resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except OSError:
        return path


def make_log_parser(kind: str, settings: Settings) -> LogParser:
    cls: Any = LOG_PARSERS[kind]
    if kind.startswith("pg-"):
        # PostgreSQL kinds read log times in the server's log_timezone.
        return cls.from_settings(settings)  # type: ignore[no-any-return]
    if kind == "squid-logformat":
        return cls(settings.squid_logformat)  # type: ignore[no-any-return]
    if kind == "winlog-flat":
        return cls(timezone=settings.timezone)  # type: ignore[no-any-return]
    return cls()  # type: ignore[no-any-return]


# -- sources and checkpoints ----------------------------------------------------


@dataclass(slots=True)
class SourceState:
    source_id: str
    offset: int
    known: bool
    head_len: int
    head_hash: str


def _identify_log(store: Store, path: Path, kind: str) -> SourceState:
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
    return SourceState(_new_source_id(store, new_hash, kind), 0, False, len(head), new_hash)


def source_id_candidate(head_hash: str, kind: str, n: int = 0) -> str:
    """The ``n``-th id a source of this fingerprint and kind may take (the first
    unless another source took it), so parsing elsewhere can name events alike."""
    return sha256_hex(f"{head_hash}{kind}:{n}".encode())[:16]


def _new_source_id(store: Store, head_hash: str, kind: str) -> str:
    n = 0
    while True:
        candidate = source_id_candidate(head_hash, kind, n)
        row = store.con.execute("SELECT 1 FROM sources WHERE source_id = ?", [candidate]).fetchall()
        if not row:
            return candidate
        n += 1


def _save_source(
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


def _insert_tables(con: Any, tables: dict[str, pa.Table]) -> None:
    for name, table in tables.items():
        if table.num_rows == 0:
            continue
        con.register("parsed", table)
        try:
            con.execute(f"INSERT INTO {name} BY NAME SELECT * FROM parsed")
        finally:
            con.unregister("parsed")


# -- logs -------------------------------------------------------------------------


@dataclass(slots=True)
class Batch:
    """One batch of a log: what it gave, and where the next one starts."""

    position: int  # just after the batch's last whole record
    result: ParseResult  # its rejected records carry their length
    hashes: list[str | None]  # SHA-256 of each rejected record's bytes
    #: Made by the runner (a record longer than a batch), not by the parser.
    set_aside: bool = False


def _ingest_log(
    store: Store,
    settings: Settings,
    path: Path,
    kind: str,
    parser: LogParser,
    report: FileReport,
    progress: Progress | None,
) -> None:
    state = _identify_log(store, path, kind)
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
        batches = log_batches(
            parser, f, path, state.source_id, position, None, batch_bytes=settings.batch_bytes
        )
        try:
            for batch in batches:
                result = batch.result
                if not judged and not batch.set_aside:
                    judged = True
                    if nothing_parsed(result):
                        raise mismatch(path, kind, result, position)
                position = batch.position
                waiting = result.pending
                _commit_log_batch(store, state, kind, path, position, result, batch.hashes)
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


def parse_range(
    parser: LogParser,
    f: BinaryIO,
    path: Path,
    source_id: str,
    start: int,
    end: int | None,
    *,
    batch_bytes: int,
) -> Iterator[tuple[int, ParseResult]]:
    """Parse the records of ``f`` from byte ``start`` (a record boundary) to ``end``
    (default: the end of the file), a batch at a time; yields each batch's result
    with the position just after its last whole record.

    An unfinished last record is left unread (the writer may still be writing it).
    """
    for batch in log_batches(parser, f, path, source_id, start, end, batch_bytes=batch_bytes):
        yield batch.position, batch.result


def log_batches(
    parser: LogParser,
    f: BinaryIO,
    path: Path,
    source_id: str,
    start: int,
    end: int | None,
    *,
    batch_bytes: int,
) -> Iterator[Batch]:
    """:func:`parse_range`, with each rejected record's length and hash.

    A line longer than a batch never reaches the parser and is never held whole:
    it is read past in blocks up to its newline and set aside, located by its
    offset and length, with a bounded preview.
    """
    position = start
    pending = b""
    f.seek(start)
    while True:
        want = batch_bytes if end is None else min(batch_bytes, end - position - len(pending))
        chunk = f.read(want) if want > 0 else b""
        parts = [pending, chunk] if pending else [chunk]
        if _starts_long_line(parts, batch_bytes):
            skipped = _skip_long_line(f, parts, position, end, batch_bytes)
            if skipped is None:
                return  # no line end yet: left for the next run
            batch, pending = skipped
            position = batch.position
            yield batch
            continue
        data = pending + chunk if pending else chunk
        del parts
        if not data:
            return
        # The parser is handed whole lines only when a long unfinished line follows
        # them (it may be most of the batch), unless it needs to see that line start
        # to know the record before it complete.
        cut = data.rfind(b"\n") + 1
        trimmed = cut > 0 and len(data) - cut > STREAM_BLOCK
        view = data[:cut] if trimmed else data
        result = parser.parse(view, base_offset=position, source_id=source_id, path=str(path))
        del view
        if trimmed and result.consumed == 0:
            result = parser.parse(data, base_offset=position, source_id=source_id, path=str(path))
        set_aside = False
        if result.consumed == 0:
            if not chunk:
                return  # an unfinished last record: left for the next run
            if len(data) >= OVERSIZED_BATCHES * batch_bytes:
                # No record boundary in this much data: set it aside, located,
                # rather than reading the whole file into memory.
                result = _oversized(data, position)
                set_aside = True
            else:
                pending = data
                continue
        hashes = _locate_rejected(result, data, position, source_id)
        position += result.consumed
        pending = data[result.consumed :]
        del data
        yield Batch(position, result, hashes, set_aside)


def _starts_long_line(parts: list[bytes], batch_bytes: int) -> bool:
    """Whether the bytes ``parts`` (read in a row) start with a line longer than a batch."""
    seen = 0
    for part in parts:
        room = batch_bytes - seen
        if room <= 0:
            return True
        if part.find(b"\n", 0, room) >= 0:
            return False
        seen += len(part)
    return seen >= batch_bytes


def _skip_long_line(
    f: BinaryIO, parts: list[bytes], position: int, end: int | None, batch_bytes: int
) -> tuple[Batch, bytes] | None:
    """Set aside the line that starts ``parts`` (bytes read in a row from file offset
    ``position``, the file read up to their end), reading on in blocks to its newline;
    returns the batch and the bytes read after the line, or None if the file ends first."""
    digest = hashlib.sha256()
    length = 0
    at = position + sum(len(p) for p in parts)
    rest: bytes | None = None
    for i, part in enumerate(parts):
        newline = part.find(b"\n")
        if newline >= 0:
            digest.update(memoryview(part)[: newline + 1])
            length += newline + 1
            rest = part[newline + 1 :] + b"".join(parts[i + 1 :])
            break
        digest.update(part)
        length += len(part)
    while rest is None:
        want = STREAM_BLOCK if end is None else min(STREAM_BLOCK, end - at)
        block = f.read(want) if want > 0 else b""
        if not block:
            return None
        at += len(block)
        newline = block.find(b"\n")
        if newline >= 0:
            digest.update(memoryview(block)[: newline + 1])
            length += newline + 1
            rest = block[newline + 1 :]
        else:
            digest.update(block)
            length += len(block)
    reason = (
        f"a line of {length} bytes, longer than a batch (batch_bytes {batch_bytes}): "
        "set aside unparsed"
    )
    raw = _raw_preview(parts[0], length)
    result = ParseResult(
        rejected=[Rejected(reason=reason, offset=position, raw=raw, length=length)],
        consumed=length,
        records=1,
    )
    return Batch(position + length, result, [digest.hexdigest()], set_aside=True), rest


def _raw_preview(data: bytes, length: int) -> str:
    """The start of a record ``length`` bytes long (``data`` holds its first bytes)."""
    shown = data[: min(RAW_LIMIT, length)]
    raw = shown.decode("utf-8", errors="backslashreplace")
    if length > len(shown):
        raw += f"... [{length - len(shown)} more bytes]"
    return raw


def _oversized(data: bytes, position: int) -> ParseResult:
    cut = data.rfind(b"\n") + 1 or len(data)  # end on a line, where a record may start
    reason = f"no record boundary within {cut} bytes (record too long or not this format)"
    return ParseResult(
        rejected=[
            Rejected(reason=reason, offset=position, raw=_raw_preview(data, cut), length=cut)
        ],
        consumed=cut,
        records=1,
    )


def _locate_rejected(
    result: ParseResult, data: bytes, base: int, source_id: str
) -> list[str | None]:
    """Give each rejected record of a batch its length where the parser did not (up to
    the next record's start, or the batch's end); returns the SHA-256 of each one's
    bytes (None where they are not in ``data``)."""
    if not result.rejected:
        return []
    end = base + result.consumed
    unsized = np.array(
        [
            r.offset if r.length is None and r.offset is not None and base <= r.offset < end else -1
            for r in result.rejected
        ],
        np.int64,
    )
    located = result.rejected
    if (unsized >= 0).any():
        starts = _record_starts(result, source_id, end)
        after = np.searchsorted(starts, unsized, side="right")
        following = starts[np.minimum(after, len(starts) - 1)]
        lengths = (following - unsized).tolist()
        located = [
            r if at < 0 else Rejected(r.reason, r.line, r.offset, r.raw, length)
            for r, at, length in zip(result.rejected, unsized.tolist(), lengths, strict=True)
        ]
    view = memoryview(data)
    hashes: list[str | None] = []
    for r in located:
        digest: str | None = None
        if r.offset is not None and r.length is not None:
            at = r.offset - base
            if at >= 0 and at + r.length <= len(data):
                digest = sha256_hex(view[at : at + r.length])
        hashes.append(digest)
    result.rejected = located
    return hashes


def _record_starts(result: ParseResult, source_id: str, end: int) -> np.ndarray:
    """Sorted file offsets where a record of the batch starts (its events' ids and its
    rejected records), and ``end``."""
    parts = [
        np.array([r.offset for r in result.rejected if r.offset is not None], np.int64),
        np.array([end], np.int64),
    ]
    for name, table in result.tables.items():
        if name.startswith("events_") and table.num_rows and "event_id" in table.column_names:
            offsets = pc.utf8_slice_codeunits(table["event_id"], len(source_id) + 1)
            try:
                parts.append(pc.cast(offsets, pa.int64()).to_numpy())
            except pa.ArrowInvalid:
                continue  # ids of another shape: the batch's end bounds the record
    starts: np.ndarray = np.unique(np.concatenate(parts))
    return starts


def _commit_log_batch(
    store: Store,
    state: SourceState,
    kind: str,
    path: Path,
    offset: int,
    result: ParseResult,
    hashes: Sequence[str | None] | None = None,
) -> None:
    with store.transaction() as con:
        _insert_tables(con, result.tables)
        quarantine_rows(con, state.source_id, kind, path, result.rejected, hashes)
        _save_source(con, state, kind, path, offset, result.events, len(result.rejected))
    state.known = True


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
        state = SourceState(_new_source_id(store, digest, kind), 0, False, len(head), digest)
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
        _insert_tables(con, result.tables)
        quarantine_rows(con, state.source_id, kind, path, fresh)
        _save_source(con, state, kind, path, result.consumed, result.events, len(fresh))
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
    state = SourceState(_new_source_id(store, digest, kind), 0, False, -1, digest)
    with store.transaction() as con:
        stored = merge_snapshot(con, table_name, snapshot, when, state.source_id)
        quarantine_rows(con, state.source_id, kind, path, result.rejected)
        _save_source(con, state, kind, path, path.stat().st_size, stored, len(result.rejected))
    report.stored = snapshot.num_rows
    report.rejected = len(result.rejected)


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


def _ingest_clients(
    store: Store, path: Path, hasher: KeyedHasher, report: FileReport, progress: Progress | None
) -> None:
    digest = file_sha256(path)
    if store.con.execute(
        "SELECT 1 FROM sources WHERE kind = ? AND head_hash = ?", [CLIENTS_KIND, digest]
    ).fetchall():
        report.skipped = "this export was ingested before"
        return
    state = SourceState(_new_source_id(store, digest, CLIENTS_KIND), 0, False, -1, digest)
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
        _save_source(con, state, CLIENTS_KIND, path, size, loaded.stored, len(loaded.rejected))
    report.stored = loaded.stored
    report.rejected = len(loaded.rejected)
