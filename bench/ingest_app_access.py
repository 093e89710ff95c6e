"""Benchmark: the app-access parser against DuckDB's own read_json of the same file.

Run: ``.venv/bin/python bench/ingest_app_access.py [lines] [repeats]``. Writes a synthetic
CRM log (mostly single-record views, some searches, rare exports of up to 5,000
ids) to a temporary folder, parses it in 64 MiB chunks as the runner does, and
prints events/s beside the ceiling measured in the same run.

Times are CPU seconds of this process (all its threads: DuckDB uses every core on
both sides), best of ``repeats`` interleaved runs: the machine is shared, and wall
time measures the neighbours' load too (it swings 2x under load).
"""

from __future__ import annotations

import random
import resource
import sys
import tempfile
import time
from pathlib import Path

import duckdb

from molehunt.ingest.app_access import AppAccessParser

BATCH_BYTES = 64 * 1024 * 1024


def write_log(path: Path, lines: int, seed: int = 7) -> int:
    """Write ``lines`` lines; returns the number of client ids listed."""
    rng = random.Random(seed)
    users = [f"user{n:04d}" for n in range(2000)]
    listed = 0
    with path.open("w", encoding="utf-8") as f:
        for n in range(lines):
            roll = rng.random()
            if roll < 0.85:
                action, count = "view", 1
            elif roll < 0.95:
                action, count = "search", rng.randint(5, 50)
            elif roll < 0.999:
                action, count = "print", 1
            else:
                action, count = "export", rng.randint(100, 5000)
            first = rng.randrange(10_000_000)
            ids = ",".join(f'"C{first + k:08d}"' for k in range(count))
            listed += count
            second = n % 60
            f.write(
                f'{{"ts": "2026-05-03T09:{(n // 60) % 60:02d}:{second:02d}.{n % 1000:03d}+08:00", '
                f'"app": "crm", "user": "{rng.choice(users)}", '
                f'"src_ip": "10.20.{rng.randrange(256)}.{rng.randrange(256)}", '
                f'"action": "{action}", "client_ids": [{ids}], "rows": {count}, '
                f'"detail": "{action} from the client screen"}}\n'
            )
    return listed


def parse_file(path: Path) -> tuple[int, int, int]:
    parser = AppAccessParser()
    events = access = rejected = 0
    position = 0
    pending = b""
    with path.open("rb") as f:
        while chunk := f.read(BATCH_BYTES):
            data = pending + chunk if pending else chunk
            result = parser.parse(data, base_offset=position, source_id="bench", path=str(path))
            events += result.events
            access += result.tables["record_access"].num_rows if result.tables else 0
            rejected += len(result.rejected)
            position += result.consumed
            pending = data[result.consumed :]
    return events, access, rejected


def ceiling(path: Path) -> float:
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    start = time.process_time()
    con.execute(
        "CREATE TABLE t AS SELECT * FROM read_json(?, format = 'newline_delimited')", [str(path)]
    )
    took = time.process_time() - start
    con.close()
    return took


def main() -> None:
    lines = int(sys.argv[1]) if len(sys.argv) > 1 else 1_500_000
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    read_json_s = ours_s = float("inf")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "app-access.log"
        listed = write_log(path, lines)
        size_mb = path.stat().st_size / 1e6
        # Interleaved, best of each: the machine is shared and noisy.
        for _ in range(repeats):
            read_json_s = min(read_json_s, ceiling(path))
            start = time.process_time()
            events, access, rejected = parse_file(path)
            ours_s = min(ours_s, time.process_time() - start)
            assert (events, access, rejected) == (lines, listed, 0), (events, access, rejected)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"file: {lines:,} lines, {listed:,} client ids, {size_mb:,.0f} MB; best of {repeats}")
    print(f"{'reader':<28}{'CPU s':>9}{'events/s':>14}")
    print(f"{'duckdb read_json (ceiling)':<28}{read_json_s:>9.2f}{lines / read_json_s:>14,.0f}")
    print(f"{'molehunt app-access':<28}{ours_s:>9.2f}{lines / ours_s:>14,.0f}")
    print(f"ratio to ceiling: {read_json_s / ours_s:.2f}   peak RSS: {peak_mb:,.0f} MB")


if __name__ == "__main__":
    main()
