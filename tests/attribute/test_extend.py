"""Attribution's stored reads, extended after appended events, equal a build from scratch.

A simulated insurer (tiny preset) is ingested through the real path. A second store
holds its rows but the last days' events and part of an earlier day's (held back);
the stored reads are built there, the held events appended (new rows, as an ingest
appends them), and the next attribution extends the stored reads from the earlier
day on. Every stored table must then hold the rows a build from scratch holds. A
change that is not an append (a reference row, deleted events) rebuilds whole.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from molehunt_testing import simulated_store, stored_attribution

from molehunt.attribute import ReadOverlapAttributor, overlap
from molehunt.store import EVENT_TABLES, Store

#: The simulator's zone, Asia/Shanghai (the attributor's default).
LOCAL = "CAST(time + INTERVAL 8 HOUR AS DATE)"


@dataclass(frozen=True, slots=True)
class World:
    db: Path
    last_day: date


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    settings, last = simulated_store(tmp_path_factory.mktemp("attr-extend"), "tiny", seed=4)
    return World(settings.db, last)


def _held(world: World) -> tuple[str, date]:
    """The events held back (the last three days, and a third of an earlier day's)
    and that earlier day."""
    cut = world.last_day - timedelta(days=3)
    late = cut - timedelta(days=4)
    return f"{LOCAL} > DATE '{cut}' OR ({LOCAL} = DATE '{late}' AND hour(time) % 3 = 0)", late


def _store_without(world: World, folder: Path, held: str) -> Store:
    """A copy of the world's store without the ``held`` events and their clients
    (its tables created again: rowids without holes, as after ingest alone)."""
    shutil.copy(world.db, folder / "grown.duckdb")
    store = Store.open(folder / "grown.duckdb")
    con = store.con
    con.execute(f"ATTACH '{world.db}' AS whole (READ_ONLY)")
    con.execute(
        "CREATE TABLE whole_held AS "
        + " UNION ALL ".join(f"SELECT event_id FROM whole.{t} WHERE {held}" for t in EVENT_TABLES)
    )
    kept = dict.fromkeys(EVENT_TABLES, f"NOT ({held})")
    kept["record_access"] = "event_id NOT IN (SELECT event_id FROM whole_held)"
    for t, where in kept.items():
        ddl = con.execute(
            "SELECT sql FROM duckdb_tables() WHERE database_name = current_database() "
            "AND table_name = ?",
            [t],
        ).fetchall()[0][0]
        con.execute(f"DROP TABLE {t}")
        con.execute(ddl)
        con.execute(f"INSERT INTO {t} SELECT * FROM whole.{t} WHERE {where}")
    return store


def _append_held(store: Store, held: str) -> None:
    """The held events and their clients arrive (appended, as ingest appends)."""
    for t in EVENT_TABLES:
        store.con.execute(f"INSERT INTO {t} SELECT * FROM whole.{t} WHERE {held}")
    store.con.execute(
        "INSERT INTO record_access SELECT * FROM whole.record_access "
        "WHERE event_id IN (SELECT event_id FROM whole_held)"
    )


def _from_scratch(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """The stored reads built whole, every statement replayed again."""
    store.con.execute("DELETE FROM attr_state")
    store.con.execute("UPDATE attr_replay_state SET master = 'another master'")
    scratch = ReadOverlapAttributor(store)
    scratch.prepare()
    assert scratch.rebuilt
    assert scratch.extended_from is None
    return stored_attribution(store)


def test_appended_days_and_late_events_extend_the_stored_reads(
    world: World, tmp_path: Path
) -> None:
    held, late = _held(world)
    with _store_without(world, tmp_path, held) as store:
        first = ReadOverlapAttributor(store)
        first.prepare()
        assert first.rebuilt
        assert first.extended_from is None
        before = stored_attribution(store)
        _append_held(store, held)
        grown = ReadOverlapAttributor(store)
        grown.prepare()
        # Extended from the day late events arrived for, not rebuilt whole.
        assert grown.rebuilt
        assert grown.extended_from == late
        extended = stored_attribution(store)
        assert len(extended["attr_reads"]) > len(before["attr_reads"])
        again = ReadOverlapAttributor(store)
        again.prepare()
        assert not again.rebuilt  # current now
        assert _from_scratch(store) == extended
        # A client listed late for an early read (no new event): from the read's day.
        early, day, client = store.con.execute(
            f"""SELECT a.event_id, {LOCAL}, (SELECT max(client_id) FROM clients)
                FROM events_app a SEMI JOIN record_access r USING (event_id)
                ORDER BY time LIMIT 1 OFFSET 100"""
        ).fetchall()[0]
        assert day < late
        store.con.execute("INSERT INTO record_access VALUES (?, ?, 'listed')", [early, client])
        listed = ReadOverlapAttributor(store)
        listed.prepare()
        assert listed.extended_from == day
        extended = stored_attribution(store)
        assert (early, client) in {(r[2], r[9]) for r in extended["attr_reads"]}
        assert _from_scratch(store) == extended


def test_stored_reads_mostly_appended_are_rebuilt_whole(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Extensions append rows sorted among themselves only: once they are more than
    RESORT_SHARE of the stored reads, the next change rebuilds them whole, sorted."""
    held, _late = _held(world)
    with _store_without(world, tmp_path, held) as store:
        ReadOverlapAttributor(store).prepare()
        _append_held(store, held)
        grown = ReadOverlapAttributor(store)
        grown.prepare()
        assert grown.extended_from is not None
        assert grown.unsorted > 0
        monkeypatch.setattr(
            overlap,
            "RESORT_SHARE",
            grown.unsorted / 2 / len(stored_attribution(store)["attr_reads"]),
        )
        store.con.execute(
            "INSERT INTO events_app SELECT * REPLACE ('late-1' AS event_id) FROM events_app "
            "ORDER BY time DESC LIMIT 1"
        )
        again = ReadOverlapAttributor(store)
        again.prepare()
        assert again.rebuilt
        assert again.extended_from is None
        assert again.unsorted == 0


@pytest.mark.parametrize("change", ["reference", "deleted"])
def test_a_change_that_is_not_an_append_rebuilds_whole(
    world: World, tmp_path: Path, change: str
) -> None:
    held, _late = _held(world)
    with _store_without(world, tmp_path, held) as store:
        ReadOverlapAttributor(store).prepare()
        _append_held(store, held)
        if change == "reference":
            # An account handed to another owner: every read through it changes hands.
            store.con.execute(
                """UPDATE ref_accounts SET owner_employee_id = (SELECT min(employee_id)
                   FROM ref_hr) WHERE system = 'crm-app' AND account = (SELECT min(account)
                   FROM ref_accounts WHERE system = 'crm-app' AND owner_employee_id
                   IS NOT NULL)"""
            )
        else:
            store.con.execute(
                "DELETE FROM events_app WHERE event_id = (SELECT min(event_id) FROM events_app)"
            )
        changed = ReadOverlapAttributor(store)
        changed.prepare()
        assert changed.rebuilt
        assert changed.extended_from is None
        assert _from_scratch(store) == stored_attribution(store)
