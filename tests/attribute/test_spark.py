"""Attribution on local Spark over a Parquet lake ranks exactly what DuckDB ranks.

A simulated insurer (the tiny preset: its five leaked files cover a ring on a borrowed
account, a departing employee, low-and-slow reading, a DBA's dump and shared
credentials, with replayed database statements and linked groups) is ingested into
the store the usual way and, on Spark, into a lake. One copy of the store attributes
every leaked file on DuckDB, another with ``--engine spark --lake``; every field of
every report, and every row of the stored reads, must agree. Spark starts twice in one
JVM (the lake, then the stored reads); the rest of the test is DuckDB.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from molehunt_testing import require_binary, simulated_store
from typer.testing import CliRunner

from molehunt.attribute.on_spark import SparkAttributor
from molehunt.attribute.overlap import ReadOverlapAttributor
from molehunt.cli import app
from molehunt.ingest.lake import ingest_to_lake
from molehunt.store import Store

#: Tables the once-per-store step writes (record_access: the replayed rows it keeps).
STORED = ("attr_reads", "attr_readers", "attr_links", "attr_refused", "record_access")


@dataclass(frozen=True, slots=True)
class World:
    sim: Path
    key: Path
    lake: Path
    on_duckdb: Path  # the store attributed on DuckDB
    on_spark: Path  # an identical copy, attributed on Spark over the lake
    leaked: list[tuple[list[str], Path]]  # (true people, file)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    require_binary("java", "openjdk-17-jre-headless")
    folder = tmp_path_factory.mktemp("attribute-spark")
    settings, _last = simulated_store(folder, "tiny", seed=1)
    sim = folder / "sim"
    lake = ingest_to_lake(settings, [sim / "logs"], folder / "lake")
    assert lake.rejected == 0
    assert lake.errors == []
    copy = folder / "copy"
    copy.mkdir()
    for f in folder.glob(f"{settings.db.name}*"):  # the store, its WAL and audit files
        shutil.copy(f, copy / f.name)
    truth = json.loads((sim / "truth.json").read_text(encoding="utf-8"))
    leaked = [(list(s["people"]), sim / f) for s in truth["scenarios"] for f in s["leaked_files"]]
    return World(
        sim, settings.key_file, folder / "lake", settings.db, copy / settings.db.name, leaked
    )


def _run(world: World, db: Path, *args: str) -> Any:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOLEHUNT_")}
    common = ["--db", str(db), "--key-file", str(world.key)]
    result = CliRunner().invoke(app, [*common, *args, "--format", "json"], env=env)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def _rows(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    with Store.open(db) as store:
        return {
            t: sorted(store.con.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in STORED
        }


def _state(db: Path) -> tuple[Any, ...]:
    with Store.open(db) as store:
        found = store.con.execute("SELECT built_from, built_at FROM attr_state").fetchall()
    assert len(found) == 1
    return tuple(found[0])


def test_spark_attribution_ranks_every_leaked_file_exactly_as_duckdb(world: World) -> None:
    assert len(world.leaked) >= 5
    spark = ["--engine", "spark", "--lake", str(world.lake)]
    built = None
    for people, path in world.leaked:
        expected = _run(world, world.on_duckdb, "attribute", str(path))
        got = _run(world, world.on_spark, "attribute", str(path), *spark)
        # Every field: ranks, people, names, accounts, hosts, coverage, windows,
        # scores, bits, groups, explanations, evidence, files on endpoints.
        assert got == expected
        assert expected["suspects"][0]["person_id"] in people
        state = _state(world.on_spark)
        # Built once, on Spark from the lake (the service did not rebuild it on DuckDB).
        assert "lake" in json.loads(state[0])
        assert built in (None, state)
        built = state
    # A complaints list (phones, ID numbers) through the same stored reads.
    complaint = next(path for _, path in world.leaked if "complaint" in path.name)
    assert _run(world, world.on_spark, "complaints", str(complaint), *spark) == _run(
        world, world.on_duckdb, "complaints", str(complaint)
    )
    assert _state(world.on_spark) == built
    # The stored reads themselves, row for row, with the replayed statements they hold.
    expected_rows, got_rows = _rows(world.on_duckdb), _rows(world.on_spark)
    assert got_rows == expected_rows
    reads = got_rows["attr_reads"]
    assert {r[10] for r in reads} == {"listed", "replayed"}
    assert len(got_rows["attr_links"]) > len(got_rows["attr_readers"]) > 10


def test_a_lake_without_spark_is_refused(world: World) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOLEHUNT_")}
    common = ["--db", str(world.on_duckdb), "--key-file", str(world.key)]
    path = str(world.leaked[0][1])
    result = CliRunner().invoke(
        app, [*common, "attribute", path, "--lake", str(world.lake)], env=env
    )
    assert result.exit_code != 0
    assert "use --engine spark" in result.output


def test_reads_built_from_a_lake_are_rebuilt_on_spark_when_the_lake_changes(
    store: Store, tmp_path: Path
) -> None:
    lake = tmp_path / "lake"
    (lake / "events_app").mkdir(parents=True)
    pq.write_table(pa.table({"event_id": ["a"]}), lake / "events_app" / "s-0.parquet")
    on_spark = SparkAttributor(store, lake=lake)
    built = on_spark.built_from()
    assert on_spark.describes(built)
    # Any other attribution uses them while the store is unchanged...
    assert ReadOverlapAttributor(store).describes(built)
    # ...but Spark without that lake, or over a lake that changed, builds them again.
    assert not SparkAttributor(store).describes(built)
    pq.write_table(pa.table({"event_id": ["b"]}), lake / "events_app" / "s-9.parquet")
    assert not on_spark.describes(built)
    assert SparkAttributor(store, lake=lake).describes(on_spark.built_from())
    # A change of the store is seen by every engine.
    store.con.execute("INSERT INTO record_access VALUES ('e1', 'C1', 'listed')")
    assert not ReadOverlapAttributor(store).describes(built)


@pytest.mark.usefixtures("world")  # Java checked, Spark's JVM already up
def test_a_lake_where_nobody_read_a_client_builds_empty_reads(store: Store, tmp_path: Path) -> None:
    (tmp_path / "lake").mkdir()
    attributor = SparkAttributor(store, lake=tmp_path / "lake")
    attributor.prepare()
    assert attributor.rebuilt
    counts = store.con.execute(
        "SELECT (SELECT count(*) FROM attr_reads), (SELECT count(*) FROM attr_links)"
    ).fetchall()
    assert counts == [(0, 0)]
    assert attributor.rank(["C000001"]) == []
    # Current now: a second prepare builds nothing.
    attributor.prepare()
    assert not attributor.rebuilt
