"""Parse a log on every core: worker processes parse, the one writer stores in order.

The parsers are pure, so worker processes run them while the process that holds
the store writes what they return. What is stored is exactly what the in-process
path stores, because the batches reach the writer in file order, each with the
byte offset after its last whole record, and each is committed with that
checkpoint in one transaction (a crash between two leaves the checkpoint at the
last batch stored; the rest is parsed again on the next run):

* A log whose records are one line each (:data:`LINE_KINDS`) is cut into pieces
  just after a newline; the workers parse several pieces at once.
* Other logs (PostgreSQL's quoted statements may hold newlines; a record may wait
  for the one after it) are parsed one batch at a time from where the last one
  ended, by one worker, while the writer stores the batch before.

A file with less than :data:`POOL_MIN_BYTES` left to read is parsed in-process, and
so is one of a single batch (``batch_bytes``) of a kind whose parser already runs
DuckDB on every core (:data:`ALREADY_PARALLEL`): measured on two cores, two workers
parse such a batch no faster, and starting them costs 1-3 s once per run.

A worker hands its tables over as Arrow files (in /dev/shm where there is one,
readable by their owner only) that the writer maps and removes at once, so no
table is pickled or copied through a pipe.
"""

from __future__ import annotations

import multiprocessing
import os
import tempfile
from collections import deque
from collections.abc import Generator, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from itertools import pairwise
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa

from molehunt.config import Settings
from molehunt.ingest.base import LogParser, ParseResult
from molehunt.ingest.batches import STREAM_BLOCK, Batch, log_batches, make_log_parser

#: Kinds in which a newline always ends a record: cut into pieces read in parallel.
LINE_KINDS = frozenset({"squid", "squid-native", "app-access", "winlog-ndjson"})
#: Kinds whose parser runs DuckDB inside, on every core already: the workers only
#: pay for a file of more than one batch (parsing the next overlaps writing this one).
ALREADY_PARALLEL = frozenset({"app-access", "squid", "squid-native", "squid-logformat"})
#: Files with fewer bytes than this left to read are parsed in-process.
POOL_MIN_BYTES = 32 * 1024 * 1024
#: Smallest piece of a line log handed to a worker (unless batch_bytes is smaller).
PIECE_MIN_BYTES = 1024 * 1024
#: Pieces per worker a file smaller than a batch is cut into, so that the workers share it.
PIECES_PER_WORKER = 1

_parsers: dict[tuple[str, str], LogParser] = {}


def workers_for(settings: Settings) -> int:
    """How many processes parse: ``ingest_workers``, else one per core."""
    return settings.ingest_workers or os.cpu_count() or 1


def start_pool(workers: int) -> ProcessPoolExecutor:
    """Worker processes forked from a server process that holds no DuckDB thread
    (never from this one: DuckDB's state is not fork-safe). The server imports the
    parsers, pandas (DuckDB's Arrow bridge loads it on a parser's first call) and
    the main module once, so each worker starts warm instead of importing them."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["__main__", "molehunt.ingest.pool", "pandas"])
    return ProcessPoolExecutor(max_workers=workers, mp_context=context)


def _parser(kind: str, settings: Settings) -> LogParser:
    key = (kind, settings.model_dump_json())
    parser = _parsers.get(key)
    if parser is None:
        parser = _parsers[key] = make_log_parser(kind, settings)
    return parser


def parse_piece(
    kind: str,
    settings: Settings,
    path: str,
    source_id: str,
    start: int,
    end: int | None,
) -> list[Batch]:
    """In a worker: the batches of bytes ``start`` to ``end`` of a file (``end``
    None: only the first batch from ``start``)."""
    parser = _parser(kind, settings)
    with open(path, "rb") as f:
        batches = log_batches(
            parser, f, Path(path), source_id, start, end, batch_bytes=settings.batch_bytes
        )
        if end is None:
            first = next(batches, None)
            return [] if first is None else [first]
        return list(batches)


#: Parsed tables go from a worker to the writer through files here (memory-backed
#: where /dev/shm exists), mapped by the writer: no pickling, no copy through a pipe.
SPILL_PREFIX = "molehunt-ingest-"


def spill_dir() -> Path:
    shm = Path("/dev/shm")  # noqa: S108 (files made by mkstemp: 0600, O_EXCL)
    return shm if shm.is_dir() and os.access(shm, os.W_OK) else Path(tempfile.gettempdir())


Spilled = list[tuple[Batch, dict[str, str]]]


def parse_spilled(
    owner: int,
    kind: str,
    settings: Settings,
    path: str,
    source_id: str,
    start: int,
    end: int | None,
) -> Spilled:
    """In a worker: :func:`parse_piece`, each table written to an Arrow file for
    the writer (process ``owner``) to map."""
    out: Spilled = []
    for batch in parse_piece(kind, settings, path, source_id, start, end):
        files: dict[str, str] = {}
        for name, table in batch.result.tables.items():
            fd, spilled = tempfile.mkstemp(prefix=f"{SPILL_PREFIX}{owner}-", dir=spill_dir())
            with os.fdopen(fd, "wb") as f, pa.ipc.new_file(f, table.schema) as writer:
                writer.write_table(table)
            files[name] = spilled
        batch.result.tables = {}
        out.append((batch, files))
    return out


def received(spilled: Spilled) -> list[Batch]:
    """The batches a worker sent, their tables mapped from its files (then removed:
    the mapping keeps them readable)."""
    out: list[Batch] = []
    for batch, files in spilled:
        for name, spilled_path in files.items():
            with pa.memory_map(spilled_path) as source:
                batch.result.tables[name] = pa.ipc.open_file(source).read_all()
            os.unlink(spilled_path)
        out.append(batch)
    return out


def discard(future: Future[Spilled]) -> None:
    """Remove the files of a piece whose batches will not be stored."""
    if future.cancel() or future.exception() is not None:
        return
    for _batch, files in future.result():
        for spilled_path in files.values():
            Path(spilled_path).unlink(missing_ok=True)


def remove_stale_spills() -> None:
    """Remove files left by writers that died (kill -9) before mapping them."""
    for leftover in spill_dir().glob(f"{SPILL_PREFIX}*"):
        owner = leftover.name.removeprefix(SPILL_PREFIX).split("-", 1)[0]
        if owner.isdigit() and not Path(f"/proc/{owner}").exists():
            leftover.unlink(missing_ok=True)


def pooled_batches(
    pool: ProcessPoolExecutor,
    workers: int,
    kind: str,
    settings: Settings,
    path: Path,
    source_id: str,
    start: int,
) -> Iterator[Batch]:
    """The batches of ``path`` from byte ``start`` (a record boundary), in file
    order, parsed by ``pool``; what :func:`log_batches` would give, cut elsewhere."""
    if kind in LINE_KINDS:
        position = yield from _line_pieces(pool, workers, kind, settings, path, source_id, start)
        # The file's unfinished last line, and whatever was appended meanwhile.
        with path.open("rb") as f:
            yield from log_batches(
                _parser(kind, settings),
                f,
                path,
                source_id,
                position,
                None,
                batch_bytes=settings.batch_bytes,
            )
        return
    yield from _one_at_a_time(pool, kind, settings, path, source_id, start)


def _line_pieces(
    pool: ProcessPoolExecutor,
    workers: int,
    kind: str,
    settings: Settings,
    path: Path,
    source_id: str,
    start: int,
) -> Generator[Batch, None, int]:
    """Batches of the pieces of a line log; returns where the last piece ended."""
    size = path.stat().st_size
    piece = max(PIECE_MIN_BYTES, (size - start) // (workers * PIECES_PER_WORKER) + 1)
    piece = min(settings.batch_bytes, max(1, settings.batch_bytes // workers), piece)
    with path.open("rb") as f:
        cuts = line_cuts(f, start, size, piece)
    ahead: deque[tuple[int, Future[Spilled]]] = deque()
    position = start
    held: list[Batch] = []  # parsed pieces not yet a batch's worth
    pieces = pairwise(cuts)
    try:
        while True:
            while len(ahead) < workers + 1:
                nxt = next(pieces, None)
                if nxt is None:
                    break
                a, b = nxt
                job = pool.submit(
                    parse_spilled, os.getpid(), kind, settings, str(path), source_id, a, b
                )
                ahead.append((b, job))
            if not ahead:
                break
            end, future = ahead.popleft()
            for batch in received(future.result()):
                if batch.set_aside:
                    if held:
                        yield merge(held)
                        held = []
                    yield batch
                else:
                    held.append(batch)
                position = batch.position
            if held and position - held[0].position + held[0].result.consumed >= (
                settings.batch_bytes
            ):
                yield merge(held)
                held = []
            if position != end:
                break  # the piece did not end where cut: read on in-process
    finally:
        for _end, future in ahead:
            discard(future)
    if held:
        yield merge(held)
    return position


def merge(batches: list[Batch]) -> Batch:
    """Consecutive batches of a file as one: stored in one transaction, as the
    in-process path stores a batch of ``batch_bytes``."""
    if len(batches) == 1:
        return batches[0]
    names = dict.fromkeys(name for b in batches for name in b.result.tables)
    tables = {
        name: pa.concat_tables(
            [b.result.tables[name] for b in batches if name in b.result.tables],
            promote_options="default",
        )
        for name in names
    }
    skipped: dict[str, int] = {}
    for b in batches:
        for reason, n in b.result.skipped.items():
            skipped[reason] = skipped.get(reason, 0) + n
    result = ParseResult(
        tables=tables,
        rejected=[r for b in batches for r in b.result.rejected],
        consumed=sum(b.result.consumed for b in batches),
        records=sum(b.result.records for b in batches),
        skipped=skipped,
        pending=batches[-1].result.pending,
    )
    return Batch(batches[-1].position, result, [h for b in batches for h in b.hashes])


def _one_at_a_time(
    pool: ProcessPoolExecutor,
    kind: str,
    settings: Settings,
    path: Path,
    source_id: str,
    start: int,
) -> Iterator[Batch]:
    """A log that cannot be cut: one batch at a time, the next parsed while the
    caller stores the one before."""
    owner = os.getpid()
    future = pool.submit(parse_spilled, owner, kind, settings, str(path), source_id, start, None)
    try:
        while True:
            got = received(future.result())
            if not got:
                return
            (batch,) = got
            future = pool.submit(
                parse_spilled, owner, kind, settings, str(path), source_id, batch.position, None
            )
            yield batch
    finally:
        discard(future)


def line_cuts(f: BinaryIO, start: int, size: int, piece: int) -> list[int]:
    """``start``, the byte after the first newline at or past every ``piece`` bytes
    on, and the byte after the last newline before ``size``."""
    cuts = [start]
    target = start + piece
    while target < size:
        f.seek(target - 1)
        at = target - 1
        while True:
            block = f.read(STREAM_BLOCK)
            if not block:
                return _last_line_end(f, cuts, size)
            newline = block.find(b"\n")
            if newline >= 0:
                cut = at + newline + 1
                break
            at += len(block)
        if cut >= size:
            break
        cuts.append(cut)
        target = cut + piece
    return _last_line_end(f, cuts, size)


def _last_line_end(f: BinaryIO, cuts: list[int], size: int) -> list[int]:
    """``cuts`` and the byte after the last newline before ``size`` (if past them)."""
    at = size
    while at > cuts[-1]:
        block_start = max(cuts[-1], at - STREAM_BLOCK)
        f.seek(block_start)
        block = f.read(at - block_start)
        newline = block.rfind(b"\n")
        if newline >= 0:
            cuts.append(block_start + newline + 1)
            break
        at = block_start
    return cuts


class Workers:
    """The parsing processes of one ingest run, started when a file first needs
    them and stopped when the run ends (``with Workers(settings) as workers``)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.count = workers_for(settings)
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def batches(
        self, parser: LogParser, f: BinaryIO, kind: str, path: Path, source_id: str, start: int
    ) -> Iterator[Batch]:
        """The batches of ``path`` from byte ``start``: parsed by the workers when
        there are several and more than a batch to read (then parsing the next batch
        overlaps writing this one), else in this process from ``f``."""
        size = os.fstat(f.fileno()).st_size
        left = size - start
        one_batch = left <= self.settings.batch_bytes and kind in ALREADY_PARALLEL
        if self.count <= 1 or left < POOL_MIN_BYTES or one_batch:
            return log_batches(
                parser, f, path, source_id, start, None, batch_bytes=self.settings.batch_bytes
            )
        if self._pool is None:
            remove_stale_spills()
            self._pool = start_pool(self.count)
        return pooled_batches(self._pool, self.count, kind, self.settings, path, source_id, start)
