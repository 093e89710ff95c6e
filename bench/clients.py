"""Client-master ingest: rows/s against DuckDB's own read_csv of the same file, and peak RSS.

Run: ``python -m bench.clients [--rows N]`` (default 10,000,000). Each measured step
runs in its own process so that its peak resident memory is its own.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

GENERATE = """
COPY (
  SELECT 'C' || lpad(i::VARCHAR, 9, '0') AS client_id,
         '客户' || (i % 9973)::VARCHAR AS name,
         (110101 + i % 500)::VARCHAR
           || (19600101 + (i % 40) * 10000 + (i % 12)::BIGINT * 100 + 1 + i % 28)::VARCHAR
           || lpad((i % 10000)::VARCHAR, 4, '0')
           AS id_number,
         (13800000000 + i % 99999999)::VARCHAR AS mobile,
         '上海市浦东新区世纪大道' || (i % 2000)::VARCHAR || '号 ' || (i % 3000)::VARCHAR || '室'
           AS address,
         ['Shanghai', 'Beijing', 'Guangzhou', 'Shenzhen'][1 + i % 4] AS city,
         'BR' || lpad((i % 120)::VARCHAR, 3, '0') AS branch,
         'E' || lpad((i % 3000)::VARCHAR, 5, '0') AS owner_employee_id
  FROM range({rows}) t(i)
) TO '{path}' (HEADER, DELIMITER ',')
"""

CEILING = """
import duckdb, sys
con = duckdb.connect(sys.argv[2])
con.execute("SET enable_progress_bar=false")
con.execute("SET memory_limit='1GB'")
con.execute(f"CREATE TABLE t AS SELECT * FROM read_csv('{sys.argv[1]}', all_varchar=true)")
"""

MOLEHUNT = """
import sys
from pathlib import Path
from molehunt.config import Settings
from molehunt.keys import create_key_file
from molehunt.ingest.runner import ingest_paths
from molehunt.store import Store
key = Path(sys.argv[2] + ".key"); create_key_file(key)
settings = Settings.load({"db": sys.argv[2], "key_file": key}, environ={})
with Store.open(settings.db, memory_limit=settings.memory_limit) as store:
    report = ingest_paths(store, settings, [Path(sys.argv[1])], kind="clients")
assert not report.errors, report.errors
print(report.stored, report.rejected)
"""


def _measure(code: str, *args: str) -> tuple[float, float, str]:
    """Wall seconds, peak RSS in MiB and stdout of ``code`` run in a fresh process."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, text=True)
    out = proc.stdout.read() if proc.stdout else ""
    _pid, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f"benchmark step failed with status {status}")
    return seconds, usage.ru_maxrss / 1024, out.strip()


def main(rows: int = 10_000_000) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "clients.csv"
        con = duckdb.connect()
        con.execute("SET enable_progress_bar=false")
        con.execute(GENERATE.format(rows=rows, path=csv))
        size_mb = csv.stat().st_size / 2**20
        ceiling_s, ceiling_rss, _ = _measure(CEILING, str(csv), str(Path(tmp) / "ceiling.duckdb"))
        ours_s, ours_rss, out = _measure(MOLEHUNT, str(csv), str(Path(tmp) / "molehunt.duckdb"))
    stored = int(out.split()[0])
    print(f"client master: {rows:,} rows, {size_mb:,.0f} MiB CSV")
    print(f"{'step':<32}{'seconds':>10}{'rows/s':>14}{'peak RSS MiB':>15}")
    for label, seconds, rss in (
        ("DuckDB read_csv (ceiling)", ceiling_s, ceiling_rss),
        ("molehunt ingest --kind clients", ours_s, ours_rss),
    ):
        print(f"{label:<32}{seconds:>10.1f}{rows / seconds:>14,.0f}{rss:>15,.0f}")
    print(f"ratio to ceiling: {ceiling_s / ours_s:.2f}  (stored {stored:,})")
    if ours_rss > 2048:
        print("WARNING: peak RSS above the 2 GiB bar")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=10_000_000)
    main(parser.parse_args().rows)
