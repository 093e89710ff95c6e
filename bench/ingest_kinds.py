"""``molehunt ingest`` end to end, per kind, against DuckDB's own reader of the same file.

Run: ``python -m bench.ingest_kinds [--preset small|large] [--repeats N] [--kinds K,...]``.
The simulator's preset is written once and cached (``$XDG_CACHE_HOME/molehunt-bench``
or ``~/.cache/molehunt-bench``; the small preset takes about a minute, the large one
an hour). For each kind (app-access, squid, pg-csvlog, winlog-ndjson), interleaved,
best of ``repeats``, wall seconds on this machine's cores:

* the ceiling: DuckDB loading the same file into a table of a new store file
  (``read_json`` for JSON lines, ``read_csv`` all VARCHAR for the others), with
  every core;
* ``molehunt ingest`` into a new store with ``ingest_workers = 1`` (parsing in the
  writing process) and with the default (one worker per core).

Also a CRM log of ``--crm-lines`` lines (1.5 M, 390 MB: six batches, cached too), where
parsing the next batch overlaps writing this one. Prints each kind's ratio to the
ceiling beside the target of 0.5. Wall time, not CPU:
the workers' gain is the cores they use at once. The machine is shared, so figures
swing with the neighbours' load; the ratios are measured in the same run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import duckdb

from bench.ingest_app_access import write_log
from molehunt.config import Settings
from molehunt.ingest.pool import workers_for
from molehunt.ingest.runner import ingest_paths
from molehunt.keys import create_key_file
from molehunt.simulate import PRESETS, simulate
from molehunt.store import Store

TARGET = 0.5
#: Kind, the simulator's file, and DuckDB's reader of it.
KINDS = {
    "app-access": ("logs/crm/access.log", "read_json(?, format = 'newline_delimited')"),
    "squid": (
        "logs/squid/access.log",
        "read_csv(?, header = false, all_varchar = true, delim = ' ', quote = '\"', "
        "strict_mode = false, null_padding = true)",
    ),
    "pg-csvlog": (
        "logs/postgresql/postgresql.csv",
        "read_csv(?, header = false, all_varchar = true)",
    ),
    "winlog-ndjson": (
        "logs/windows/winlogbeat.ndjson",
        "read_json(?, format = 'newline_delimited')",
    ),
}


def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "molehunt-bench"


def cached_crm_log(lines: int) -> Path:
    """A CRM log of ``lines`` lines (bench.ingest_app_access's), written once: one
    file of several batches, where parsing the next batch overlaps writing this one."""
    out = cache_dir() / f"app-access-{lines}.log"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        partial = out.with_suffix(".partial")
        write_log(partial, lines)
        partial.rename(out)
    return out


def cached_preset(name: str) -> Path:
    """The simulator's output for preset ``name``, written once."""
    cache = cache_dir()
    out = cache / f"sim-{name}"
    if (out / "truth.json").exists():
        return out
    cache.mkdir(parents=True, exist_ok=True)
    partial = cache / f"sim-{name}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    print(f"simulating the {name} preset once into {out} ...", flush=True)
    simulate(partial, PRESETS[name])
    partial.rename(out)
    return out


def ceiling(path: Path, reader: str, work: Path) -> float:
    db = work / "ceiling.duckdb"
    con = duckdb.connect(str(db))
    con.execute("SET enable_progress_bar = false")
    start = time.perf_counter()
    con.execute(f"CREATE TABLE t AS SELECT * FROM {reader}", [str(path)])
    con.execute("CHECKPOINT")
    took = time.perf_counter() - start
    con.close()
    db.unlink()
    return took


def ours(path: Path, kind: str, work: Path, workers: int | None) -> tuple[float, int]:
    key = work / "key"
    if not key.exists():
        create_key_file(key)
    db = work / "store.duckdb"
    settings = Settings.load({"db": db, "key_file": key, "ingest_workers": workers}, environ={})
    with Store.open(db) as store:
        start = time.perf_counter()
        report = ingest_paths(store, settings, [path], kind=kind)
        store.con.execute("CHECKPOINT")
        took = time.perf_counter() - start
    if report.errors or report.rejected:
        raise SystemExit(f"{kind}: {report.as_dict()}")
    db.unlink()
    Path(f"{db}.wal").unlink(missing_ok=True)
    return took, report.stored


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--preset", default="small", choices=sorted(PRESETS))
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument(
        "--crm-lines",
        type=int,
        default=1_500_000,
        help="also a CRM log this long (several batches); 0: not",
    )
    args = parser.parse_args()
    sim = cached_preset(args.preset)
    cores = workers_for(Settings(ingest_workers=None))
    print(f"preset {args.preset}; wall seconds, best of {args.repeats}; {os.cpu_count()} cores")
    print(
        f"{'kind':<18}{'MB':>7}{'events':>11}{'duckdb s':>10}{'1 worker':>10}{'ratio':>7}"
        f"{f'{cores} workers':>11}{'ratio':>7}{'target':>8}"
    )
    cases = [(kind, kind, sim / KINDS[kind][0]) for kind in args.kinds.split(",")]
    if args.crm_lines:
        crm = cached_crm_log(args.crm_lines)
        cases.append((f"app-access {args.crm_lines // 1000}k", "app-access", crm))
    for label, kind, path in cases:
        reader = KINDS[kind][1]
        best = {"duckdb": float("inf"), "one": float("inf"), "pool": float("inf")}
        events = 0
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            for _ in range(args.repeats):
                best["duckdb"] = min(best["duckdb"], ceiling(path, reader, work))
                took, events = ours(path, kind, work, 1)
                best["one"] = min(best["one"], took)
                took, events = ours(path, kind, work, None)
                best["pool"] = min(best["pool"], took)
        print(
            f"{label:<18}{path.stat().st_size / 1e6:>7.0f}{events:>11,}{best['duckdb']:>10.2f}"
            f"{best['one']:>10.2f}{best['duckdb'] / best['one']:>7.2f}"
            f"{best['pool']:>11.2f}{best['duckdb'] / best['pool']:>7.2f}{TARGET:>8.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
