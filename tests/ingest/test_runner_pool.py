"""Parsing in worker processes stores exactly what parsing in-process stores."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from molehunt.config import Settings
from molehunt.errors import ConfigError
from molehunt.ingest import pool
from molehunt.ingest.pool import line_cuts
from molehunt.ingest.runner import IngestReport, ingest_paths
from molehunt.keys import create_key_file
from molehunt.simulate import params_for, simulate
from molehunt.store import Store
from molehunt.store.schema import EVENT_TABLES

#: Columns written at ingest time, not read from the files.
CLOCK_COLUMNS = {"first_ingest", "last_ingest", "quarantined_at"}


def contents(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table ingest writes, sorted, without the clock columns."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    for table in [*EVENT_TABLES, "record_access", "quarantine", "sources"]:
        names = [
            r[0]
            for r in store.con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = ? "
                "ORDER BY ordinal_position",
                [table],
            ).fetchall()
            if r[0] not in CLOCK_COLUMNS
        ]
        cols = ", ".join(f'"{n}"' for n in names)
        out[table] = store.con.execute(f"SELECT {cols} FROM {table} ORDER BY ALL").fetchall()
    return out


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The simulator's tiny company's logs (every kind), with bad lines in them."""
    out = tmp_path_factory.mktemp("pool") / "sim"
    simulate(out, params_for("tiny", days=4))
    crm = out / "logs" / "crm" / "access.log"
    lines = crm.read_bytes().splitlines(keepends=True)
    middle = len(lines) // 2
    bad = [b'{"ts": "not a time", "app": "crm"}\n', b"not json at all\n"]
    crm.write_bytes(b"".join(lines[:middle] + bad + lines[middle:] + [b'{"ts": "unfinished']))
    squid = out / "logs" / "squid" / "access.log"
    with squid.open("ab") as f:
        f.write(b"garbage that is no squid line\n")
    return out


def run_twice(world: Path, tmp: Path, workers: int) -> tuple[dict[str, Any], list[IngestReport]]:
    """Ingest the world's logs, rotate the CRM log, write on, ingest again (the
    logs at the same path every time: the store records it)."""
    logs = tmp.parent / "logs"
    shutil.rmtree(logs, ignore_errors=True)
    shutil.copytree(world / "logs", logs)
    key = tmp / "key"
    create_key_file(key)
    settings = Settings.load(
        {
            "db": tmp / "s.duckdb",
            "key_file": key,
            "batch_bytes": 16 * 1024,
            "ingest_workers": workers,
        },
        environ={},
    )
    crm = logs / "crm" / "access.log"
    reports = []
    with Store.open(settings.db) as store:
        reports.append(ingest_paths(store, settings, [logs]))
        # The writer finishes its last line and writes on; then the log rotates.
        lines = (world / "logs" / "crm" / "access.log").read_bytes().splitlines(keepends=True)
        with crm.open("ab") as f:
            f.write(b'", "app": "crm"}\n')
            f.writelines(lines[:300])
        crm.rename(crm.with_name("access.log.1"))
        crm.write_bytes(b"".join(lines[300:900]))
        reports.append(ingest_paths(store, settings, [logs]))
        return contents(store), reports


def test_workers_store_exactly_what_one_process_stores(
    world: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pool, "POOL_MIN_BYTES", 0)
    used: list[str] = []
    real = pool.pooled_batches

    def spy(*args: Any, **kwargs: Any) -> Any:
        used.append(args[2])
        return real(*args, **kwargs)

    monkeypatch.setattr(pool, "pooled_batches", spy)
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    one, one_reports = run_twice(world, tmp_path / "one", 1)
    assert used == []
    two, two_reports = run_twice(world, tmp_path / "two", 2)
    assert {"app-access", "squid", "pg-csvlog", "winlog-ndjson"} <= set(used)
    for table in one:
        assert two[table] == one[table], table
    # Something of each kind was stored, the bad lines were quarantined.
    assert all(one[t] for t in ("events_app", "events_http", "events_db", "events_auth"))
    assert len(one["quarantine"]) >= 3
    assert [r.as_dict() for r in two_reports] == [r.as_dict() for r in one_reports]


def test_line_cuts_fall_just_after_newlines(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    lines = [b"a" * n + b"\n" for n in (3, 10, 1, 7, 30, 2)]
    log.write_bytes(b"".join(lines) + b"unfinished")
    size = log.stat().st_size
    with log.open("rb") as f:
        cuts = line_cuts(f, 0, size, 8)
    ends = [sum(len(x) for x in lines[: i + 1]) for i in range(len(lines))]
    assert cuts[0] == 0
    assert cuts[-1] == ends[-1]
    assert set(cuts[1:]) <= set(ends)
    assert len(cuts) > 3
    assert all(b - a >= 8 for a, b in pairwise(cuts[:-1]))


CRASHING_POOL_INGEST = """
import sys
from pathlib import Path
from molehunt.config import Settings
from molehunt.errors import ConfigError
from molehunt.ingest import pool
from molehunt.ingest.runner import ingest_paths
from molehunt.store import Store
pool.POOL_MIN_BYTES = 0
settings = Settings.load({"db": sys.argv[1], "key_file": sys.argv[3], "batch_bytes": 20000,
                          "ingest_workers": 2}, environ={})
with Store.open(settings.db) as store:
    ingest_paths(store, settings, [Path(sys.argv[2])], kind="app-access")
"""


def test_kill_9_of_a_pooled_ingest_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    log = tmp_path / "crm.log"
    log.write_text(
        "".join(
            json.dumps(
                {
                    "ts": f"2026-05-03T09:{n // 60 % 60:02d}:{n % 60:02d}.000+08:00",
                    "app": "crm",
                    "user": f"user{n % 7}",
                    "src_ip": "10.20.3.17",
                    "action": "view",
                    "client_ids": [f"C{n:08d}"],
                    "rows": 1,
                    "detail": f"n{n}",
                }
            )
            + "\n"
            for n in range(20000)
        )
    )
    db, key = tmp_path / "crash.duckdb", tmp_path / "k"
    create_key_file(key)
    argv = [sys.executable, "-c", CRASHING_POOL_INGEST, str(db), str(log), str(key)]
    for delay in [1.0, 2.0, 3.0, 4.0]:
        proc = subprocess.Popen(argv, start_new_session=True)
        time.sleep(delay)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # the writer and its workers
        proc.wait()
    subprocess.run(argv, check=True)
    with Store.open(db) as store:
        (row,) = store.query(
            "SELECT count(*) AS n, count(DISTINCT event_id) AS ids, count(DISTINCT detail) AS d "
            "FROM events_app"
        )
        assert row == {"n": 20000, "ids": 20000, "d": 20000}
        (access,) = store.query("SELECT count(*) AS n FROM record_access")
        assert access["n"] == 20000


def test_ingest_workers_is_read_from_an_ingest_table(tmp_path: Path) -> None:
    (tmp_path / "molehunt.toml").write_text("[ingest]\nworkers = 3\n")
    assert Settings.load(environ={}, cwd=tmp_path).ingest_workers == 3
    assert Settings.load(environ={"MOLEHUNT_INGEST_WORKERS": "1"}, cwd=tmp_path).ingest_workers == 1
    assert pool.workers_for(Settings.load(environ={}, cwd=tmp_path / "none")) >= 1
    (tmp_path / "molehunt.toml").write_text("[ingest]\nthreads = 3\n")
    with pytest.raises(ConfigError, match=r"\[ingest\]"):
        Settings.load(environ={}, cwd=tmp_path)
