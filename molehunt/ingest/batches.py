"""Read a log a batch at a time, on record boundaries, in bounded memory.

Pure: bytes in, :class:`Batch` (the parser's result and where the next batch
starts) out; nothing here touches the store, so a worker process of the ingest
pool (:mod:`molehunt.ingest.pool`) runs the very same code as the in-process path.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from molehunt.config import Settings
from molehunt.ingest import LOG_PARSERS
from molehunt.ingest.base import RAW_LIMIT, LogParser, ParseResult, Rejected

#: A "record" this many batches long without a boundary is set aside, not buffered.
OVERSIZED_BATCHES = 4
#: Bytes read at a time while skipping a line longer than a batch.
STREAM_BLOCK = 1024 * 1024


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


@dataclass(slots=True)
class Batch:
    """One batch of a log: what it gave, and where the next one starts."""

    position: int  # just after the batch's last whole record
    result: ParseResult  # its rejected records carry their length
    hashes: list[str | None]  # SHA-256 of each rejected record's bytes
    #: Made by the runner (a record longer than a batch), not by the parser.
    set_aside: bool = False


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
                digest = hashlib.sha256(view[at : at + r.length]).hexdigest()
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
