"""Benchmark: ingest on Spark into a Parquet lake, beside Spark's own reader and the store.

Run: ``.venv/bin/python -m bench.ingest_lake [lines]``. Writes a synthetic CRM log
(the app-access benchmark's generator), then, in one run:

- Spark's own JSON reader writing the same lines to Parquet (the Spark ceiling: no
  parsing rules, no rejects, no record-level table);
- ``ingest_to_lake`` on the same local Spark (pieces of 64 MiB, one task each);
- the embedded path, ``molehunt ingest`` into a fresh DuckDB store.

Wall seconds (Spark runs its tasks in worker processes, so this process's CPU time
says nothing), after one warm-up query. On a cluster the lake's time divides by the
executors; here ``local[2]`` has this machine's two cores.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from bench.ingest_app_access import write_log
from molehunt.compute.spark import spark_session
from molehunt.config import Settings
from molehunt.ingest.lake import ingest_to_lake
from molehunt.ingest.runner import ingest_paths
from molehunt.keys import create_key_file
from molehunt.store import Store


def main() -> None:
    lines = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        log = folder / "logs" / "app-access.log"
        log.parent.mkdir()
        listed = write_log(log, lines)
        create_key_file(folder / "k")
        settings = Settings.load(
            {"db": folder / "m.duckdb", "key_file": folder / "k"}, environ={}, cwd=folder
        )
        size_mb = log.stat().st_size / 1e6

        session = spark_session("local[2]", "2g", "molehunt-bench")
        session.range(10).count()  # the JVM and a first job, outside the timings
        start = time.perf_counter()
        session.read.json(str(log)).write.mode("overwrite").parquet(str(folder / "spark-json"))
        spark_s = time.perf_counter() - start

        start = time.perf_counter()
        report = ingest_to_lake(settings, [log.parent], folder / "lake")
        lake_s = time.perf_counter() - start
        assert report.stored == lines, report.as_dict()
        assert report.rejected == 0, report.as_dict()
        pieces = len(report.pieces)

        start = time.perf_counter()
        with Store.open(settings.db) as store:
            stored = ingest_paths(store, settings, [log.parent])
        store_s = time.perf_counter() - start
        assert stored.stored == lines, stored.as_dict()

    print(f"file: {lines:,} lines, {listed:,} client ids, {size_mb:,.0f} MB; {pieces} pieces")
    print(f"{'path':<44}{'wall s':>8}{'lines/s':>12}")
    for name, took in (
        ("spark read.json -> parquet (Spark ceiling)", spark_s),
        ("molehunt ingest_to_lake (local[2])", lake_s),
        ("molehunt ingest into the DuckDB store", store_s),
    ):
        print(f"{name:<44}{took:>8.1f}{lines / took:>12,.0f}")
    print(f"lake vs Spark's own reader: {spark_s / lake_s:.2f}", end="; ")
    print(f"lake vs the store: {store_s / lake_s:.2f}")


if __name__ == "__main__":
    main()
