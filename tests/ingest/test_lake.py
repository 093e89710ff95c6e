"""Parsing on Spark into a Parquet lake gives the store's events, exactly once, and the
detectors on Spark over the lake find what DuckDB finds over the store."""

from __future__ import annotations

from datetime import date
from itertools import pairwise
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from insurer import START, World, borrowed_day
from molehunt_testing import require_binary
from typer.testing import CliRunner

from molehunt.cli import app
from molehunt.config import Settings
from molehunt.detect import DetectionSettings
from molehunt.detect.runner import run_detectors
from molehunt.ingest.lake import (
    _cuts,
    conform,
    ingest_to_lake,
    parse_piece,
    plan,
    store_schemas,
    write_piece,
)
from molehunt.store import Store

LOGS = ("app-access.jsonl", "postgresql.csv", "access.log", "winlogbeat.ndjson")
SMALL_BATCH = 4096  # many pieces from small files


def _world(last: date) -> World:
    world = World()
    world.routine(START, (last - START).days + 1)
    for day in (date(2026, 5, 6), date(2026, 5, 7)):
        if day <= last:
            borrowed_day(world, day, "E001")
    return world


@pytest.fixture
def logs(tmp_path: Path, settings: Settings, store: Store) -> list[Path]:
    """The hand-written insurer's logs, ingested into the store the usual way."""
    _world(date(2026, 5, 7)).ingest(store, settings, tmp_path / "in")
    return [tmp_path / "in" / name for name in LOGS]


def _small(settings: Settings) -> Settings:
    return settings.model_copy(update={"batch_bytes": SMALL_BATCH})


# -- cutting files into pieces ------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    lines=st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")), max_size=40),
    tail=st.binary(max_size=30).map(lambda b: b.replace(b"\n", b"")),
    batch=st.integers(min_value=1, max_value=200),
)
def test_cuts_fall_after_newlines_and_cover_every_whole_line(
    tmp_path_factory: pytest.TempPathFactory, lines: list[bytes], tail: bytes, batch: int
) -> None:
    data = b"".join(line + b"\n" for line in lines) + tail
    path = tmp_path_factory.mktemp("cuts") / "log"
    path.write_bytes(data)
    with path.open("rb") as f:
        cuts = _cuts(f, len(data), batch)
    assert cuts[0] == 0
    assert cuts == sorted(set(cuts)) or cuts == [0, 0]
    assert all(data[c - 1 : c] == b"\n" for c in cuts[1:] if c)
    assert cuts[-1] == len(data) - len(tail)  # the unfinished last line is left out
    # Pieces are about batch bytes: none holds a newline-free stretch past a cut target.
    for a, b in pairwise(cuts):
        assert b - a <= batch + max((len(x) + 1 for x in lines), default=0)


def test_plan_cuts_line_logs_and_keeps_postgres_logs_whole(logs: list[Path]) -> None:
    pieces, errors = plan(logs, SMALL_BATCH)
    assert errors == []
    kinds = {p.kind for p in pieces}
    assert kinds == {"app-access", "pg-csvlog", "squid", "winlog-ndjson"}
    assert sum(p.kind == "pg-csvlog" for p in pieces) == 1
    assert sum(p.kind == "app-access" for p in pieces) > 3
    for path in logs:
        own = sorted((p for p in pieces if p.path == str(path)), key=lambda p: p.start)
        assert [p.start for p in own[1:]] == [p.end for p in own[:-1]]  # no gap, no overlap


def test_reference_exports_are_refused_with_the_reason(logs: list[Path]) -> None:
    pieces, errors = plan([logs[0].parent / "hr.csv"], SMALL_BATCH)
    assert pieces == []
    assert len(errors) == 1
    assert "hr.csv" in errors[0]
    assert "into the store" in errors[0]


# -- the same rows as the store ------------------------------------------------------------


def test_pieces_parse_to_exactly_the_stored_events(
    logs: list[Path], settings: Settings, store: Store
) -> None:
    pieces, _ = plan(logs, SMALL_BATCH)
    results = [parse_piece(p, _small(settings)) for p in pieces]
    assert all(not r.rejected for r in results)
    schemas = store_schemas()
    for table in ("events_app", "events_db", "events_http", "events_auth", "record_access"):
        parsed = [conform(r.tables[table], schemas[table]) for r in results if table in r.tables]
        got = sorted(tuple(row.values()) for t in parsed for row in t.to_pylist())
        quoted = ", ".join(f'"{f.name}"' for f in schemas[table])
        stored = store.con.execute(f"SELECT {quoted} FROM {table}").fetchall()
        assert got == sorted(stored), table


def test_writing_a_piece_again_replaces_its_files_with_the_same_rows(
    tmp_path: Path, logs: list[Path], settings: Settings
) -> None:
    lake = tmp_path / "lake"
    pieces, _ = plan(logs, SMALL_BATCH)
    schemas = store_schemas()
    first = [write_piece(p, _small(settings), lake, schemas) for p in pieces]
    files = {p.relative_to(lake): p.read_bytes() for p in lake.rglob("*.parquet")}
    again = [write_piece(p, _small(settings), lake, schemas) for p in pieces]
    assert again == first
    assert {p.relative_to(lake): p.read_bytes() for p in lake.rglob("*.parquet")} == files
    assert not list(lake.rglob("*.partial"))


def test_a_grown_file_rewrites_only_its_last_piece_with_the_new_lines(
    tmp_path: Path, logs: list[Path], settings: Settings
) -> None:
    app_log = logs[0]
    before, _ = plan([app_log], SMALL_BATCH)
    extra = World()
    extra.routine(date(2026, 5, 8), 1)
    with app_log.open("a", encoding="utf-8") as f:
        f.write("\n".join(extra.app_lines) + "\n")
    after, _ = plan([app_log], SMALL_BATCH)
    assert after[: len(before) - 1] == before[:-1]  # whole pieces keep their bounds and names
    assert after[len(before) - 1].start == before[-1].start
    assert after[-1].end == app_log.stat().st_size


# -- on Spark --------------------------------------------------------------------------------


@pytest.fixture
def java() -> None:
    require_binary("java", "openjdk-17-jre-headless")


def _lake_rows(lake: Path, table: str, columns: list[str]) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = (
        duckdb.connect()
        .execute(
            f"SELECT {', '.join(columns)} FROM read_parquet('{lake / table}/*.parquet') "
            "ORDER BY ALL"
        )
        .fetchall()
    )
    return rows


@pytest.mark.usefixtures("java")
def test_spark_lake_holds_the_store_rows_once_and_detects_the_same(
    tmp_path: Path, logs: list[Path], settings: Settings, store: Store
) -> None:
    lake = tmp_path / "lake"
    small = _small(settings)
    first = ingest_to_lake(small, logs, lake)
    assert first.errors == []
    assert len(first.pieces) > 8  # several pieces per line log, written in parallel
    schemas = store_schemas()
    tables = ("events_app", "events_db", "events_http", "events_auth", "record_access")
    for table in tables:
        columns = [f'"{f.name}"' for f in schemas[table]]
        stored = store.con.execute(f"SELECT {', '.join(columns)} FROM {table} ORDER BY ALL")
        assert _lake_rows(lake, table, columns) == stored.fetchall(), table

    # The detectors on Spark over the lake find what DuckDB finds over the store.
    day = date(2026, 5, 7)
    chosen = ["borrowed_account", "allowed_channel_upload"]  # db, auth and http events
    on_duckdb = run_detectors(store, DetectionSettings(), day, names=chosen)
    on_lake = run_detectors(
        store, DetectionSettings(), day, engine="spark", lake=lake, names=chosen
    )
    assert on_lake.findings == on_duckdb.findings
    assert any(f.person_id == "E001" for f in on_lake.findings)


def test_cli_refuses_a_lake_without_spark_and_spark_without_a_lake(
    tmp_path: Path, run: CliRunner
) -> None:
    log = tmp_path / "access.log"
    log.write_text("", encoding="utf-8")
    for extra in (["--lake", str(tmp_path / "lake")], ["--engine", "spark"]):
        result = run.invoke(app, ["ingest", *extra, str(log)])
        assert result.exit_code == 2
        assert "--lake" in result.output
    assert not (tmp_path / "lake").exists()
