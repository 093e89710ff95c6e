"""Who-is-who kept in the store finds exactly what resolving everything finds.

A simulated insurer (tiny preset) is ingested through the real path. Its findings
with nothing kept (every pass resolves every event, as on Spark) are the truth; the
same detectors over the kept relations must give every field of every finding the
same: built whole, reused, extended day by day after new days and late events,
rebuilt after a change of the reference data, and in a one-day round.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from molehunt_testing import simulated_store

from molehunt.detect import DetectionSettings
from molehunt.detect.runner import DetectReport, run_detectors
from molehunt.identity import LOGON_HORIZON
from molehunt.resolve.stored import KEPT
from molehunt.status import status
from molehunt.store import Store
from molehunt.store.schema import EVENT_TABLES

SETTINGS = DetectionSettings()


@dataclass(frozen=True, slots=True)
class World:
    db: Path
    last_day: date
    truth: DetectReport  # nothing kept: every event resolved in the pass


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    settings, last = simulated_store(tmp_path_factory.mktemp("kept"), "tiny", seed=11)
    with Store.open(settings.db) as store:
        found = run_detectors(store, SETTINGS, last, keep_resolved=False)
        kept = store.query("SELECT count(*) AS n FROM kept_state")[0]["n"]
    assert kept == 0, "a pass that keeps nothing left kept relations"
    assert not found.failures
    assert len({f.detector for f in found.findings}) >= 5, "too little for the comparison"
    return World(settings.db, last, found)


def _rows(report: DetectReport, since: date | None = None) -> list[tuple[Any, ...]]:
    return sorted(
        (
            f.finding_id,
            f.detector,
            f.day,
            f.time,
            f.severity,
            f.person_id,
            f.account,
            f.host,
            f.title,
            f.event_ids,
            f.related,
            json.dumps(f.details, sort_keys=True, default=str),
        )
        for f in report.findings
        if since is None or f.day >= since
    )


@pytest.fixture
def copy(world: World, tmp_path: Path) -> Path:
    db = tmp_path / "copy.duckdb"
    shutil.copy(world.db, db)
    return db


def test_kept_relations_find_what_resolving_everything_finds(world: World, copy: Path) -> None:
    with Store.open(copy) as store:
        cold = run_detectors(store, SETTINGS, world.last_day)
        kept = status(store)["kept"]
        warm = run_detectors(store, SETTINGS, world.last_day)
    # `molehunt status` says how far each relation is kept: the end of the last day.
    assert {k["relation"] for k in kept} == set(KEPT)
    assert {k["through_end"][:10] for k in kept} == {world.last_day.isoformat()}
    assert _rows(cold) == _rows(world.truth)
    assert _rows(warm) == _rows(world.truth)


def test_new_days_and_late_events_extend_the_kept_days(world: World, copy: Path) -> None:
    """Three days arrive after a pass, and part of an earlier day arrives late: the next
    pass resolves from the late day on and finds what resolving everything finds."""
    cut = world.last_day - timedelta(days=3)
    late = cut - timedelta(days=4)
    with Store.open(copy) as store:
        store.con.execute(f"ATTACH '{world.db}' AS whole (READ_ONLY)")
        local = "CAST(time + INTERVAL 8 HOUR AS DATE)"  # the simulator's zone, Asia/Shanghai
        held = f"{local} > DATE '{cut}' OR ({local} = DATE '{late}' AND hour(time) % 3 = 0)"
        for table in EVENT_TABLES:
            store.con.execute(f"DELETE FROM {table} WHERE {held}")
        before = run_detectors(store, SETTINGS, cut)
        assert before.findings
        for table in EVENT_TABLES:
            store.con.execute(f"INSERT INTO {table} SELECT * FROM whole.{table} WHERE {held}")
        after = run_detectors(store, SETTINGS, world.last_day)
        refreshed = store.query("SELECT relation, through_end FROM kept_state")
        round_ = run_detectors(store, SETTINGS, world.last_day, since=world.last_day)
    assert _rows(after) == _rows(world.truth)
    assert _rows(round_) == _rows(world.truth, since=world.last_day)
    assert {r["relation"] for r in refreshed} == set(KEPT)


def test_every_round_finds_what_resolving_everything_finds_of_its_days(
    world: World, copy: Path
) -> None:
    """A round reads only its days and the windows they are judged with (each
    detector's cut): one-day rounds of many days, and one round of several days, find
    exactly the full pass's findings of those days (a finding of a day reads nothing
    after it, so the full pass's are the truth)."""
    first = min(f.day for f in world.truth.findings)
    days = [first + timedelta(days=n) for n in range(0, (world.last_day - first).days + 1, 3)]
    with Store.open(copy) as store:
        run_detectors(store, SETTINGS, world.last_day)
        rounds = {day: run_detectors(store, SETTINGS, day, since=day) for day in days}
        week = world.last_day - timedelta(days=6)
        several = run_detectors(store, SETTINGS, world.last_day, since=week)
    checked = 0
    for day, found in rounds.items():
        truth = [r for r in _rows(world.truth) if r[2] == day]
        assert _rows(found) == truth, day
        checked += len(truth)
    assert checked >= 20, "too few findings on the days compared"
    assert _rows(several) == _rows(world.truth, since=week)


def test_a_reference_change_resolves_everything_again(world: World, copy: Path) -> None:
    with Store.open(copy) as store:
        run_detectors(store, SETTINGS, world.last_day)
        kept_from = store.query("SELECT relation, built_from FROM kept_state ORDER BY 1")
        # An account handed to another owner: every read through it changes hands.
        account = store.query(
            "SELECT account FROM ref_accounts WHERE system = 'crm-app' AND owner_employee_id "
            "IS NOT NULL ORDER BY account LIMIT 1"
        )[0]["account"]
        store.con.execute(
            "UPDATE ref_accounts SET owner_employee_id = (SELECT min(employee_id) FROM ref_hr) "
            "WHERE account = ? AND system = 'crm-app'",
            [account],
        )
        changed = run_detectors(store, SETTINGS, world.last_day)
        now_from = store.query("SELECT relation, built_from FROM kept_state ORDER BY 1")
        truth = run_detectors(store, SETTINGS, world.last_day, keep_resolved=False)
    assert _rows(changed) == _rows(truth)
    # Resolved again whole: the state names the new reference rows.
    assert [r["built_from"] for r in now_from] != [r["built_from"] for r in kept_from]


def test_a_logon_counts_for_less_than_a_day() -> None:
    # The kept logon pieces of a day are worked out from two days of logons before it.
    assert timedelta(days=1) > LOGON_HORIZON


def test_a_logon_of_the_evening_before_resolves_a_read_after_midnight(
    world: World, copy: Path
) -> None:
    """A colleague logs on to someone's workstation late in the evening; after
    midnight, a new day, the workstation reads client data through a third person's
    account. The new day is resolved from the kept state: the evening's logon, kept
    from the day before, must still name the colleague."""
    cut = world.last_day - timedelta(days=2)
    with Store.open(copy) as store:
        desk = store.query(
            "SELECT hostname, ip, owner_employee_id AS owner FROM ref_assets "
            "WHERE kind = 'workstation' AND owner_employee_id IS NOT NULL ORDER BY hostname"
        )[0]
        ad = store.query(
            "SELECT account, owner_employee_id AS owner FROM ref_accounts WHERE system = 'ad' "
            "AND kind = 'human' AND owner_employee_id <> ? ORDER BY account",
            [desk["owner"]],
        )
        colleague, other = ad[0], next(a for a in ad[1:] if a["owner"] != ad[0]["owner"])
        crm = store.query(
            "SELECT account FROM ref_accounts WHERE system = 'crm-app' AND owner_employee_id = ?",
            [other["owner"]],
        )[0]["account"]
        store.con.execute(
            "DELETE FROM events_auth WHERE time > ?::TIMESTAMPTZ AND dst_host ILIKE ?",
            [f"{cut} 14:00:00+00", desk["hostname"] + "%"],
        )
        store.con.execute(
            "INSERT INTO events_auth (event_id, time, source_id, kind, activity, user_name, "
            "logon_type, dst_host) VALUES ('late-logon', ?::TIMESTAMPTZ, 't', 'winlog-ndjson', "
            "'logon', ?, 2, ?)",
            [f"{cut} 15:30:00+00", colleague["account"], desk["hostname"]],  # 23:30 local
        )
        run_detectors(store, SETTINGS, cut)  # keeps the pieces of the evening
        store.con.execute(
            "INSERT INTO events_app (event_id, time, source_id, app, user_name, src_ip, action, "
            "rows, detail, n_client_ids) VALUES ('after-midnight', ?::TIMESTAMPTZ, 't', 'crm', "
            "?, ?, 'search', 40, 'search', 40)",
            [f"{cut} 17:10:00+00", crm, desk["ip"]],  # 01:10 local, the next day
        )
        run_detectors(store, SETTINGS, cut + timedelta(days=1))
        kept = store.query("SELECT actor FROM kept_reads WHERE event_id = 'after-midnight'")
    assert kept == [{"actor": colleague["owner"]}]


def _access_days(store: Store) -> list[tuple[Any, ...]]:
    return store.con.execute(
        "SELECT day, event_id, client_id FROM access_days ORDER BY ALL NULLS FIRST"
    ).fetchall()


def _access_recounted(store: Store) -> list[tuple[Any, ...]]:
    """Every record-level row with its read's local day, worked out from scratch."""
    local = "CAST(e.time + INTERVAL 8 HOUR AS DATE)"  # the simulator's zone, Asia/Shanghai
    # Rows whose read is not stored have no day.
    return store.con.execute(
        f"SELECT {local}, a.event_id, a.client_id FROM record_access a LEFT JOIN "
        "(SELECT event_id, time FROM events_app UNION ALL "
        "SELECT event_id, time FROM events_db) e USING (event_id) ORDER BY ALL NULLS FIRST"
    ).fetchall()


def _kept_scope(store: Store) -> list[tuple[Any, ...]]:
    rows = store.con.execute(
        "SELECT actor, day, clients, reads, portfolios, list_sort(ids), last, host FROM kept_scope"
    ).fetchall()
    return sorted(rows)


def test_record_level_rows_kept_by_day_equal_recounting(world: World, copy: Path) -> None:
    """The record-level rows kept with their read's day (``access_days``) and the kept
    per-person days of other portfolios' clients (``kept_scope``) equal what working
    them out again gives, after rows arrive for an earlier day's read (a replay), rows
    arrive before their read, and rows are replaced (attribution replays again)."""
    with Store.open(copy) as store:
        run_detectors(store, SETTINGS, world.last_day)
        assert _access_days(store) == _access_recounted(store)
        # A read of five days before, now known to have returned 60 clients of other
        # portfolios (an attribution replay appends them).
        day = world.last_day - timedelta(days=5)
        read = store.query(
            "SELECT event_id, actor FROM kept_reads WHERE day = ? AND actor IS NOT NULL "
            "ORDER BY event_id LIMIT 1",
            [day],
        )[0]
        store.con.execute(
            "INSERT INTO record_access SELECT ?, client_id, 'replayed' FROM clients "
            "WHERE owner_employee_id IS NOT NULL AND owner_employee_id <> ? "
            "ORDER BY client_id LIMIT 60",
            [read["event_id"], read["actor"]],
        )
        # Rows of a look-up whose event is not stored yet.
        store.con.execute(
            "INSERT INTO record_access SELECT 'early-rows', client_id, 'listed' FROM clients "
            "ORDER BY client_id DESC LIMIT 3"
        )
        before = _kept_scope(store)
        grown = run_detectors(store, SETTINGS, world.last_day)
        assert _access_days(store) == _access_recounted(store)
        waiting = "SELECT count(*) AS n FROM access_days WHERE event_id = 'early-rows'"
        assert store.query(waiting + " AND day IS NULL") == [{"n": 3}]
        incremental = _kept_scope(store)
        assert incremental != before, "the replayed clients changed no person's day"
        store.con.execute("DELETE FROM kept_state WHERE relation = 'scope'")
        run_detectors(store, SETTINGS, world.last_day)
        assert incremental == _kept_scope(store)
        truth = run_detectors(store, SETTINGS, world.last_day, keep_resolved=False)
        assert _rows(grown) == _rows(truth)

        # The look-up arrives; the replay is replaced by fewer clients (rows deleted:
        # everything is counted again).
        store.con.execute(
            "INSERT INTO events_app (event_id, time, source_id, app, user_name, src_ip, "
            "action, rows, detail, n_client_ids) SELECT 'early-rows', time, 't', 'crm', "
            "user_name, src_ip, 'search', 3, 'search', 3 FROM events_app "
            "WHERE CAST(time + INTERVAL 8 HOUR AS DATE) = ? ORDER BY event_id LIMIT 1",
            [day],
        )
        store.con.execute(
            "DELETE FROM record_access WHERE event_id = ? AND client_id IN (SELECT client_id "
            "FROM record_access WHERE event_id = ? ORDER BY client_id LIMIT 30)",
            [read["event_id"], read["event_id"]],
        )
        replaced = run_detectors(store, SETTINGS, world.last_day)
        assert _access_days(store) == _access_recounted(store)
        assert store.query(waiting + " AND day IS NULL") == [{"n": 0}]
        assert store.query(waiting) == [{"n": 3}]
        incremental = _kept_scope(store)
        store.con.execute("DELETE FROM kept_state WHERE relation = 'scope'")
        run_detectors(store, SETTINGS, world.last_day)
        assert incremental == _kept_scope(store)
        truth = run_detectors(store, SETTINGS, world.last_day, keep_resolved=False)
        assert _rows(replaced) == _rows(truth)


def test_days_without_events_of_its_own_resolve_them_when_they_arrive(
    world: World, copy: Path
) -> None:
    """New days arrive with logons, reads and requests but no Sysmon file creations:
    the kept file events resolve nothing on them (no events of their own there); when
    the days' file creations arrive late, the next pass resolves them, and the kept rows
    and every finding are what resolving everything gives."""
    cut = world.last_day - timedelta(days=3)
    local = "CAST(time + INTERVAL 8 HOUR AS DATE)"  # the simulator's zone, Asia/Shanghai
    late = f"activity = 'create' AND {local} > DATE '{cut}'"
    with Store.open(copy) as store:
        store.con.execute(f"ATTACH '{world.db}' AS whole (READ_ONLY)")
        held = store.con.execute(f"SELECT count(*) FROM events_file WHERE {late}").fetchall()
        assert held[0][0] > 0, "no file creations on the last days to hold back"
        store.con.execute(f"DELETE FROM events_file WHERE {local} > DATE '{cut}'")
        run_detectors(store, SETTINGS, cut)
        without = run_detectors(store, SETTINGS, world.last_day)
        kept_without = store.query("SELECT count(*) AS n FROM kept_file WHERE day > ?", [cut])
        store.con.execute(
            f"INSERT INTO events_file SELECT * FROM whole.events_file WHERE {local} > DATE '{cut}'"
        )
        after = run_detectors(store, SETTINGS, world.last_day)
        kept = store.con.execute("SELECT event_id FROM kept_file WHERE day > ?", [cut]).fetchall()
        created = store.con.execute(
            f"SELECT event_id FROM events_file WHERE {late} AND {local} <= ?", [world.last_day]
        ).fetchall()
    file, reads = without.refreshes["file"], without.refreshes["reads"]
    assert (file.resolved_from, file.rows) == (cut + timedelta(days=1), 0)
    assert "none with events" in file.reason
    assert reads.resolved_from == cut + timedelta(days=1)
    assert reads.rows > 0
    assert kept_without == [{"n": 0}]
    assert after.refreshes["file"].rows == len(created)
    assert sorted(kept) == sorted(created)
    assert _rows(after) == _rows(world.truth)
