"""Attribution on the simulator: each leaked file, and samples of 50 of its records,
point to the scenario's true people at rank 1; complaints point to the true person."""

from __future__ import annotations

import csv
import json
import math
import random
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from molehunt_testing import stored_attribution

from molehunt.attribute import ReadOverlapAttributor, attribute
from molehunt.attribute.leaked import leaked_set
from molehunt.attribute.overlap import (
    LINKS_SQL,
    SIGNIFICANCE,
    GroupSearch,
    explanation,
    likelihood_score,
    naming_cost,
    surprise_bits,
)
from molehunt.config import Settings
from molehunt.ingest.runner import ingest_paths
from molehunt.keys import create_key_file, load_key
from molehunt.pii.edm import ClientIndex
from molehunt.pii.files import decode
from molehunt.pii.scan import scan_paths
from molehunt.pii.stored import store_scans
from molehunt.simulate import params_for, simulate
from molehunt.store import Store

SEEDS = (1, 2, 3)
SAMPLE = 50


@dataclass(slots=True)
class Simulated:
    folder: Path
    store: Store
    key: bytes
    truth: dict[str, Any]
    attributor: ReadOverlapAttributor

    def attribute(self, path: Path, *, complaints: bool = False) -> dict[str, Any]:
        return attribute(
            self.store, self.key, path, complaints=complaints, attributor=self.attributor
        )


@cache
def simulated(seed: int, root: Path) -> Simulated:
    """The tiny preset of ``seed``, ingested once per test session."""
    folder = root / f"seed{seed}"
    simulate(folder / "sim", params_for("tiny", None, seed=seed))
    settings = Settings.load(environ={}).model_copy(
        update={"db": folder / "molehunt.duckdb", "key_file": folder / "molehunt.key"}
    )
    create_key_file(settings.key_file)
    store = Store.open(settings.db)
    ingest_paths(store, settings, [folder / "sim" / "reference", folder / "sim" / "logs"])
    truth = json.loads((folder / "sim" / "truth.json").read_text(encoding="utf-8"))
    return Simulated(folder, store, load_key(settings), truth, ReadOverlapAttributor(store))


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("attribute-sim")


LEAKS = [(seed, s) for seed in SEEDS for s in ("ring", "departing", "slow", "dump")]
KINDS = {
    "ring": "borrowed_account_ring",
    "departing": "departing_employee",
    "slow": "low_and_slow",
    "dump": "privileged_dump",
}


def _leaks(sim: Simulated, kind: str) -> list[tuple[list[str], Path]]:
    out = []
    for s in sim.truth["scenarios"]:
        if s["kind"] == KINDS[kind]:
            for f in s["leaked_files"]:
                if "complaint" not in f:
                    out.append((s["people"], sim.folder / "sim" / f))
    return out


def _assert_true_people_at_rank_one(result: dict[str, Any], people: list[str]) -> None:
    first = [s for s in result["suspects"] if s["rank"] == 1]
    assert set(people) <= {s["person_id"] for s in first}, result["suspects"][:5]
    for s in first:
        if s["person_id"] not in people:
            # Only someone who (alone or with the people they share an account or host
            # with) read every client can tie: those reads carry no evidence either way
            # (score 0), as the ring's and the DBA's reads of the whole client base do.
            assert s["score"] == 0.0, s
            explained = s["group"]["coverage"] if s["group"] else s["coverage"]
            assert explained == 1.0, s


def _sample(path: Path, out: Path, n: int, seed: int, sim: Simulated) -> Path:
    """``n`` rows of a leaked file that are client records (by the simulator's own
    client list), as a CSV."""
    if path.suffix == ".xlsx":
        from python_calamine import CalamineWorkbook

        sheet = CalamineWorkbook.from_path(str(path)).get_sheet_by_index(0)
        rows = [[str(c) for c in r] for r in sheet.to_python()]
    else:
        rows = list(csv.reader(decode(path.read_bytes()).splitlines()))
    master = sim.folder / "sim" / "reference" / "clients.csv"
    ids = {r["id_number"] for r in csv.DictReader(decode(master.read_bytes()).splitlines())}
    header = rows[0]
    column = header.index("证件号码")
    body = [r for r in rows[1:] if r[column] in ids]
    chosen = random.Random(seed).sample(body, min(n, len(body)))
    with out.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows([header, *chosen])
    return out


@pytest.mark.parametrize(("seed", "kind"), LEAKS)
def test_leaked_file_names_its_true_people_at_rank_one(root: Path, seed: int, kind: str) -> None:
    sim = simulated(seed, root)
    leaks = _leaks(sim, kind)
    if not leaks:
        pytest.skip(f"the tiny preset of seed {seed} did not plant {kind}")
    for people, path in leaks:
        result = sim.attribute(path)
        assert result["client_records"] > 0
        assert result["non_client_rows"] > 0  # the simulator mixes in non-clients
        assert result["records_in_file"] == result["client_records"] + result["non_client_rows"]
        _assert_true_people_at_rank_one(result, people)


@pytest.mark.parametrize(("seed", "kind"), LEAKS)
def test_a_sample_of_fifty_records_still_names_them(root: Path, seed: int, kind: str) -> None:
    sim = simulated(seed, root)
    leaks = _leaks(sim, kind)
    if not leaks:
        pytest.skip(f"the tiny preset of seed {seed} did not plant {kind}")
    for people, path in leaks:
        sample = _sample(path, root / f"sample-{seed}-{kind}.csv", SAMPLE, seed, sim)
        result = sim.attribute(sample)
        whole = sim.attribute(path)["client_records"]
        assert result["client_records"] == min(SAMPLE, whole)
        _assert_true_people_at_rank_one(result, people)


def _complaint(sim: Simulated) -> tuple[list[str], Path] | None:
    for s in sim.truth["scenarios"]:
        for f in s["leaked_files"]:
            if "complaint" in f:
                return s["people"], sim.folder / "sim" / f
    return None


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("column", ["电话", "证件号码", None])
def test_complaints_point_to_the_true_person(root: Path, seed: int, column: str | None) -> None:
    """Residents list one identifier each (or the whole row): matched on it alone."""
    sim = simulated(seed, root)
    found = _complaint(sim)
    if found is None:
        pytest.skip(f"the tiny preset of seed {seed} wrote no complaints file")
    people, path = found
    if column is not None:
        rows = list(csv.DictReader(decode(path.read_bytes()).splitlines()))
        path = root / f"complaints-{seed}-{column}.csv"
        path.write_text("\n".join([column, *(r[column] for r in rows)]) + "\n", encoding="utf-8")
    result = sim.attribute(path, complaints=True)
    assert result["client_records"] > 0
    first = [s["person_id"] for s in result["suspects"] if s["rank"] == 1]
    assert first == people


def test_complaints_by_client_id(root: Path) -> None:
    sim = simulated(SEEDS[0], root)
    found = _complaint(sim)
    assert found is not None
    people, path = found
    ids = list(leaked_set(path, sim.store, sim.key, single_identifier=True).client_ids)
    assert len(ids) >= 5
    path = root / "complaint-ids.txt"
    path.write_text("客户编号\n" + "\n".join(ids) + "\n", encoding="utf-8")
    result = sim.attribute(path, complaints=True)
    assert result["client_records"] == len(ids)
    assert result["suspects"][0]["person_id"] == people[0]
    assert result["suspects"][0]["coverage"] == 1.0


def test_borrowed_account_names_its_owner_apart_from_the_person(root: Path) -> None:
    sim = simulated(SEEDS[0], root)
    ring = next(s for s in sim.truth["scenarios"] if s["kind"] == KINDS["ring"])
    (people, path), *_ = _leaks(sim, "ring")
    result = sim.attribute(path)
    owner = ring["details"]["borrowed_account_owner"]
    for s in result["suspects"]:
        if s["person_id"] in people:
            borrowed = [a for a in s["accounts"] if a["account"] in ring["accounts"]]
            assert borrowed
            assert borrowed[0]["owner_id"] == owner
            assert not borrowed[0]["owner_is_person"]
            assert {h["person_id"] for h in s["hosts"]} == {s["person_id"]}
            assert s["evidence"]
            assert s["first_read"] <= s["last_read"]


def test_files_on_endpoints_that_hold_the_leak_are_listed(root: Path) -> None:
    sim = simulated(SEEDS[0], root)
    dump = next(s for s in sim.truth["scenarios"] if s["kind"] == KINDS["dump"])
    (_people, path), *_ = _leaks(sim, "dump")
    reports = scan_paths(
        [sim.folder / "sim" / "endpoint"], key=sim.key, clients=ClientIndex.from_store(sim.store)
    )
    store_scans(sim.store, reports)
    result = sim.attribute(path)
    dumped = Path(dump["endpoint_files"][0])
    held = {(f["host"], f["path"].rsplit("\\", 1)[-1]): f for f in result["files"]}
    # The tiny preset's dump file holds every client, so all of the leaked sample.
    assert held[dumped.parts[1], dumped.name]["coverage"] == 1.0
    assert all(f["covered"] > 0 for f in result["files"])
    assert [f["covered"] for f in result["files"]] == sorted(
        (f["covered"] for f in result["files"]), reverse=True
    )


def test_replayed_reads_are_stored_once(root: Path) -> None:
    sim = simulated(SEEDS[0], root)
    sim.attributor.prepare()
    count = "SELECT count(*) AS n FROM record_access WHERE how = 'replayed'"
    before = sim.store.query(count)[0]["n"]
    assert before > 0
    ReadOverlapAttributor(sim.store).prepare()
    assert sim.store.query(count)[0]["n"] == before


def test_statements_that_write_are_never_replayed(root: Path) -> None:
    sim = simulated(SEEDS[0], root)
    sim.attributor.prepare()
    writes = "SELECT count(*) AS n FROM events_db WHERE command = 'UPDATE'"
    assert sim.store.query(writes)[0]["n"] > 0  # the DBA's UPDATEs of seed 1
    replayed_writes = """SELECT count(*) AS n FROM record_access a JOIN events_db e
                         USING (event_id) WHERE a.how = 'replayed'
                         AND e.command NOT IN ('SELECT', 'COPY', 'DECLARE CURSOR')"""
    assert sim.store.query(replayed_writes)[0]["n"] == 0


SCORES = [
    # covered, leaked, read, clients -> sign
    (50, 50, 50, 2000, 1),  # read exactly the leaked set
    (50, 50, 2000, 2000, 0),  # read everything: no evidence
    (25, 50, 100, 2000, -1),  # half of it: most likely someone else
]


@pytest.mark.parametrize(("covered", "leaked", "read", "clients", "sign"), SCORES)
def test_score_weighs_coverage_against_ordinary_reading(
    covered: int, leaked: int, read: int, clients: int, sign: int
) -> None:
    score = likelihood_score(covered, leaked, read, clients)
    assert (score > 0) - (score < 0) == sign


def test_the_narrower_reader_of_the_same_records_ranks_higher() -> None:
    assert likelihood_score(50, 50, 100, 2000) > likelihood_score(50, 50, 1000, 2000)
    assert surprise_bits(50, 50, 100, 2000) > surprise_bits(50, 50, 1000, 2000)


SURPRISES = [
    # covered, leaked, read, clients -> bits (about)
    (50, 50, 2000, 2000, 0.0),  # read every client: no evidence
    (50, 50, 1941, 2000, 2.2),  # read 97%: all 50 by luck one time in 4.6
    (2, 50, 60, 2000, 1.2),  # 1.5 expected: nothing
    (0, 50, 60, 2000, 0.0),
    (48, 50, 600, 20_000, 233.0),  # 48 of 50 while reading 3%: the brief's example
    (1000, 2000, 1000, 2000, 0.0),  # a file of every client: every overlap is certain
    (10_000, 10_000, 10_000, 1_000_000, 80_785.2),  # read exactly the file: log2 C(N, n)
]


@pytest.mark.parametrize(("covered", "leaked", "read", "clients", "bits"), SURPRISES)
def test_surprise_is_the_hypergeometric_tail_in_bits(
    covered: int, leaked: int, read: int, clients: int, bits: float
) -> None:
    assert surprise_bits(covered, leaked, read, clients) == pytest.approx(bits, rel=0.02, abs=0.1)


def test_surprise_matches_the_tail_summed_by_hand() -> None:
    def exact(k: int, n: int, r: int, big_n: int) -> float:
        total = sum(math.comb(r, j) * math.comb(big_n - r, n - j) for j in range(k, min(n, r) + 1))
        return -math.log2(total / math.comb(big_n, n))

    for k, n, r, big_n in [(3, 20, 30, 500), (12, 40, 100, 300), (5, 60, 90, 1000), (1, 5, 5, 50)]:
        assert surprise_bits(k, n, r, big_n) == pytest.approx(exact(k, n, r, big_n), abs=1e-6)


def test_explanation_says_what_the_score_rests_on() -> None:
    text = explanation(48, 50, 600, 20_000, surprise_bits(48, 50, 600, 20_000), 40, 1)
    assert text.startswith("read 48 of the 50 leaked records; reads 3.0% of the client base")
    cost = naming_cost(40, 1)
    assert cost == pytest.approx(math.log2(40) + SIGNIFICANCE)
    assert f"less {cost:,.1f} bits" in text
    assert text.endswith(f": {surprise_bits(48, 50, 600, 20_000) - cost:,.0f} bits")
    assert "no evidence" in explanation(50, 50, 2000, 2000, 0.0, 40, 1)
    assert explanation(50, 50, 1941, 2000, 2.2, 40, 2).endswith("not evidence")


def _reads(con: duckdb.DuckDBPyConnection, rows: list[tuple[str, str, str, range]]) -> None:
    """``attr_reads`` and ``attr_links`` as :meth:`ReadOverlapAttributor.prepare`
    stores them, from (who, account, host, client numbers read)."""
    flat = [(who, "crm-db", acct, host, f"C{c:06d}") for who, acct, host, cs in rows for c in cs]
    con.execute(
        "CREATE TABLE attr_reads (who VARCHAR, system VARCHAR, account VARCHAR, "
        "hostname VARCHAR, client_id VARCHAR)"
    )
    con.executemany("INSERT INTO attr_reads VALUES (?, ?, ?, ?, ?)", flat)
    con.execute(f"CREATE TABLE attr_links AS {LINKS_SQL.format(reads='attr_reads')}")


GROUPS = [
    # Two people read each half of the clients through one borrowed account: together
    # they explain the leak, alone neither does.
    (
        [("ann", "borrowed", "ws-1", range(500)), ("bob", "borrowed", "ws-2", range(500, 1000))],
        {"ann": ("ann", "bob"), "bob": ("ann", "bob")},
    ),
    # The same reads through accounts and hosts of their own: nothing links them.
    ([("ann", "ann", "ws-1", range(500)), ("bob", "bob", "ws-2", range(500, 1000))], {}),
    # A colleague on the same account who read what the reader read adds nothing.
    (
        [
            ("ann", "borrowed", "ws-1", range(1000)),
            ("cat", "borrowed", "ws-3", range(300)),
        ],
        {},
    ),
]


@pytest.mark.parametrize(("reads", "expected"), GROUPS)
def test_linked_readers_are_scored_together_when_only_together_they_explain_it(
    reads: list[tuple[str, str, str, range]], expected: dict[str, tuple[str, ...]]
) -> None:
    con = duckdb.connect()
    _reads(con, reads)
    leaked = [f"C{c:06d}" for c in range(0, 1000, 10)]
    con.register("_leaked", pa.table({"client_id": pa.array(leaked)}))
    own = {
        who: likelihood_score(len([c for c in leaked if int(c[1:]) in cs]), 100, len(cs), 10_000)
        for who, _, _, cs in reads
    }
    groups = GroupSearch(con, len(leaked), 10_000, own, hits="attr_reads").run()
    assert {w: g.people for w, g in groups.items()} == expected
    for who, group in groups.items():
        assert group.covered == 100
        assert group.likelihood > own[who]
        assert group.links == ("account crm-db:borrowed",)


def _ranking(sim: Simulated, kind: str) -> list[tuple[Any, ...]]:
    (_people, path), *_ = _leaks(sim, kind)
    found = leaked_set(path, sim.store, sim.key)
    return [
        (s.rank, s.person_id, s.score, s.covered, s.explanation, len(s.evidence))
        for s in ReadOverlapAttributor(sim.store).rank(found.client_ids, limit=1000)
    ]


def test_stored_reads_serve_every_file_until_the_store_changes(root: Path) -> None:
    sim = simulated(SEEDS[1], root)
    store = sim.store
    ReadOverlapAttributor(store).prepare()
    again = ReadOverlapAttributor(store)
    again.prepare()
    assert not again.rebuilt  # nothing new: the stored reads are used as they are
    assert store.query("SELECT count(*) AS n FROM attr_reads")[0]["n"] > 0
    before = _ranking(sim, "departing")
    assert before

    # A new application read arrives: the next attribution rebuilds and sees it.
    client = store.query("SELECT min(client_id) AS c FROM clients")[0]["c"]
    store.con.execute(
        "INSERT INTO events_app SELECT 'new-read', max(time) - INTERVAL 1 MINUTE, 'test', "
        "'crm', 'stranger', '10.9.9.9', 'view', 1, 'card', 1 FROM events_app"
    )
    store.con.execute("INSERT INTO record_access VALUES ('new-read', ?, 'listed')", [client])
    try:
        fresh = ReadOverlapAttributor(store)
        fresh.prepare()
        assert fresh.rebuilt
        stored = "SELECT who, client_id FROM attr_reads WHERE event_id = 'new-read'"
        assert [tuple(r.values()) for r in store.query(stored)] == [("~crm-app:stranger", client)]
    finally:
        store.con.execute("DELETE FROM record_access WHERE event_id = 'new-read'")
        store.con.execute("DELETE FROM events_app WHERE event_id = 'new-read'")
    gone = ReadOverlapAttributor(store)
    gone.prepare()
    assert gone.rebuilt
    assert store.query(stored) == []

    # Other settings (here the time zone that decides the last day) rebuild too.
    other = ReadOverlapAttributor(store, timezone="UTC")
    other.prepare()
    assert other.rebuilt
    # A rebuild from scratch ranks every file the same as the stored reads did.
    store.con.execute("DELETE FROM attr_state")
    assert _ranking(sim, "departing") == before


def test_a_rebuild_replays_only_new_statements_and_equals_a_build_from_scratch(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from molehunt.attribute import replay

    sim = simulated(SEEDS[2], root)
    store = sim.store
    ReadOverlapAttributor(store).prepare()
    replayed: list[int] = []
    real = replay.replay_statements

    def counted(s: Store, events: Any, replayer: Any = None) -> Any:
        replayed.append(len(events))
        return real(s, events, replayer)

    monkeypatch.setattr(replay, "replay_statements", counted)
    # A statement logged again later (same text and parameters, a new event).
    old = store.query(
        "SELECT e.event_id FROM events_db e SEMI JOIN record_access a "
        "ON a.event_id = e.event_id AND a.how = 'replayed' ORDER BY e.event_id LIMIT 1"
    )[0]["event_id"]
    store.con.execute(
        "INSERT INTO events_db SELECT * REPLACE ('again-1' AS event_id, "
        "time + INTERVAL 1 SECOND AS time) FROM events_db WHERE event_id = ?",
        [old],
    )
    try:
        fresh = ReadOverlapAttributor(store)
        fresh.prepare()
        assert fresh.rebuilt
        assert replayed == [1]  # only the new statement
        incremental = stored_attribution(store)
        assert any(r[2] == "again-1" for r in incremental["attr_reads"])
        # From scratch: nothing kept, every statement replayed.
        store.con.execute("DELETE FROM attr_state")
        store.con.execute("UPDATE attr_replay_state SET master = 'another master'")
        ReadOverlapAttributor(store).prepare()
        assert replayed[-1] > 1
        assert stored_attribution(store) == incremental
    finally:
        store.con.execute("DELETE FROM record_access WHERE event_id = 'again-1'")
        store.con.execute("DELETE FROM attr_replayed WHERE event_id = 'again-1'")
        store.con.execute("DELETE FROM events_db WHERE event_id = 'again-1'")
