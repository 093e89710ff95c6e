"""Attributing a leaked file against one scan of the access tables, same store.

The first attribution of a store builds its stored reads (every read resolved to a
person, statements replayed); further ones, until new events arrive, reuse them:
both are printed, with a further file split into matching its records and ranking.
Last, the stored reads are built again as new events would make them, with who-is-who
already kept in the store (:mod:`molehunt.resolve.stored`, as a detection pass leaves
it): only the statements are replayed again.

Then ``--extend K`` (default 3) new days arrive one at a time, each followed by an
attribution that extends the stored reads from that day on
(:mod:`molehunt.attribute.extend`); a further file, and the group search's load of
a few people's reads, are timed after those extensions and after a whole rebuild
(extensions leave the stored reads sorted by reader only within each appended part).

Run: ``python -m bench.attribute [--clients N] [--people P] [--days D] [--leaked L]``
(default 1,000,000 clients, 2,000 people, 40 working days of 20 application reads
each, every 10th person 2 parameterised database reads a day, and a leaked file of
10,000 client rows). The client master goes through the real ingest (keyed hashes);
reference data and access events are generated straight into the store with SQL
(this measures attribution, not ingest). Person 42 read the leaked clients.

``python -m bench.attribute --store DIR [--leaked L]`` measures a simulated company
instead (the large preset: ``DIR`` holds ``m.duckdb``, ``m.key`` and the simulator's
``sim/``): the leaked file is ``L`` clients drawn from what the borrowed-account ring
of ``sim/truth.json`` read, with their rows from ``sim/reference/clients.csv``.
"""

from __future__ import annotations

import argparse
import csv
import json
import resource
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from molehunt.attribute import ReadOverlapAttributor, attribute
from molehunt.attribute.leaked import leaked_set
from molehunt.config import Settings
from molehunt.ingest.runner import ingest_paths
from molehunt.keys import create_key_file, load_key
from molehunt.simulate.clients import ClientMaster
from molehunt.store import Store

START = date(2026, 3, 2)

REFERENCE = """
INSERT INTO ref_hr SELECT 'E' || lpad(i::VARCHAR, 5, '0'), 'Person ' || i, 'Sales', 'Agent',
  'sales', NULL, DATE '2020-01-01', NULL, NULL, NULL, NULL, 'bench' FROM range({people}) t(i);
INSERT INTO ref_accounts SELECT 'u' || i, s, 'E' || lpad(i::VARCHAR, 5, '0'), 'human',
  DATE '2020-01-01', NULL, NULL, NULL, 'bench'
FROM range({people}) t(i), (VALUES ('crm-app'), ('ad'), ('crm-db')) v(s);
INSERT INTO ref_assets SELECT 'WS-' || i, '10.1.' || (i // 250) || '.' || (i % 250),
  'E' || lpad(i::VARCHAR, 5, '0'), 'workstation', 'Sales', NULL, NULL, 'bench'
FROM range({people}) t(i);
"""

# Reads pick clients by a hash of (person, day, read): spread over the whole base.
EVENTS = """
CREATE OR REPLACE TEMP TABLE days AS
  SELECT d, TIMESTAMPTZ '{start} 01:00:00+00' + d * INTERVAL 1 DAY AS t0
  FROM range({first}, {days}) r(d);
INSERT INTO events_app SELECT 'p' || d || '-' || i || '-' || k, t0 + k * INTERVAL 10 MINUTE,
  'b', 'crm', 'u' || i, '10.1.' || (i // 250) || '.' || (i % 250), 'view', 1, 'card', 1
FROM days, range({people}) p(i), range(20) r(k);
INSERT INTO record_access SELECT 'p' || d || '-' || i || '-' || k,
  'C' || lpad((1 + hash(d, i, k) % {clients})::VARCHAR, 8, '0'), 'listed'
FROM days, range({people}) p(i), range(20) r(k);
INSERT INTO events_db (event_id, time, source_id, kind, db_user, src_ip, app_name, audit_class,
  command, objects, statement, parameters, rows, rows_source)
SELECT 'd' || d || '-' || i || '-' || k, t0 + k * INTERVAL 1 HOUR, 'b', 'pg-csvlog', 'u' || i,
  '10.1.' || (i // 250) || '.' || (i % 250), 'DBeaver', 'READ', 'SELECT', ['public.clients'],
  'SELECT * FROM clients WHERE client_id = $1',
  'C' || lpad((1 + hash(d, i, k, 'db') % {clients})::VARCHAR, 8, '0'), 1, 'pgaudit'
FROM days, range(0, {people}, 10) p(i), range(2) r(k);
"""


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=1_000_000)
    parser.add_argument("--people", type=int, default=2_000)
    parser.add_argument("--days", type=int, default=40)
    parser.add_argument("--leaked", type=int, default=10_000)
    parser.add_argument("--store", type=Path, default=None)
    parser.add_argument("--extend", type=int, default=3)
    args, _ = parser.parse_known_args()
    if args.store is not None:
        simulated(args.store, args.leaked)
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        master = ClientMaster(7, args.clients, START)
        (folder / "ref").mkdir()
        master.write_csv(folder / "ref" / "clients.csv", [f"E{i:05d}" for i in range(args.people)])
        settings = Settings.load(environ={}).model_copy(
            update={"db": folder / "bench.duckdb", "key_file": folder / "bench.key"}
        )
        create_key_file(settings.key_file)
        key = load_key(settings)
        store = Store.open(settings.db, memory_limit="2GB")
        ingest_paths(store, settings, [folder / "ref" / "clients.csv"])
        fill = {"people": args.people, "days": args.days, "start": START, "clients": args.clients}
        fill["first"] = 0
        store.con.execute(REFERENCE.format(**fill))
        store.con.execute(EVENTS.format(**fill))
        # The thief: person 42 opened the leaked clients' cards, 100 a read.
        rng = np.random.default_rng(42)
        leaked = np.sort(rng.choice(args.clients, size=args.leaked, replace=False))
        store.con.execute(
            f"""INSERT INTO events_app SELECT 'leak-' || j, TIMESTAMPTZ '{START} 09:00:00+00'
                  + j * INTERVAL 1 MINUTE, 'b', 'crm', 'u42', '10.1.0.42', 'export', 100, 'x',
                  100 FROM range({(args.leaked + 99) // 100}) t(j)"""
        )
        store.con.execute(
            "INSERT INTO record_access SELECT 'leak-' || ((k - 1) // 100), "
            "'C' || lpad((1 + c)::VARCHAR, 8, '0'), 'listed' "
            "FROM unnest($c) WITH ORDINALITY u(c, k)",
            {"c": leaked.tolist()},
        )
        events = sum(
            int(store.con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0])
            for t in ("events_app", "events_db", "record_access")
        )
        path = folder / "leaked.csv"
        with path.open("w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["姓名", "电话", "证件号码", "住址"])
            for _cid, name, id_number, mobile, address in master.rows(leaked.tolist()):
                writer.writerow([name, mobile, id_number, address])
        print(
            f"{args.clients:,} clients, {events:,} access rows, {args.leaked:,} leaked rows; "
            f"generated in {time.perf_counter() - started:.1f} s"
        )

        _measure(store, key, path)
        _extensions(store, key, path, fill, args.extend)
        store.close()


def _scan(store: Store) -> float:
    """One pass over the access tables: what every attribution must at least read."""
    t = time.perf_counter()
    store.con.execute("SELECT count(*), count(DISTINCT client_id) FROM record_access").fetchall()
    store.con.execute("SELECT count(*), max(time) FROM events_app").fetchall()
    store.con.execute("SELECT count(*), max(time) FROM events_db").fetchall()
    return time.perf_counter() - t


def simulated(folder: Path, leaked: int) -> None:
    truth = json.loads((folder / "sim" / "truth.json").read_text(encoding="utf-8"))
    ring = next(s for s in truth["scenarios"] if s["kind"] == "borrowed_account_ring")
    settings = Settings.load(environ={}).model_copy(
        update={"db": folder / "m.duckdb", "key_file": folder / "m.key"}
    )
    key = load_key(settings)
    with Store.open(settings.db, memory_limit="4GB") as store:
        counts = {
            t: int(store.con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0])
            for t in ("clients", "events_app", "events_db", "record_access")
        }
        print(", ".join(f"{t} {n:,}" for t, n in counts.items()))
        ReadOverlapAttributor(store).prepare()
        read = store.con.execute(
            "SELECT DISTINCT client_id FROM attr_reads WHERE list_contains($p, who) "
            "ORDER BY client_id",
            {"p": ring["people"]},
        ).fetchall()
        chosen = set(np.random.default_rng(1).choice([r[0] for r in read], leaked, replace=False))
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "leaked.csv"
            with (
                (folder / "sim" / "reference" / "clients.csv").open(encoding="utf-8") as src,
                path.open("w", encoding="utf-8", newline="") as f,
            ):
                writer = csv.writer(f)
                writer.writerow(["姓名", "电话", "证件号码", "住址"])
                for row in csv.DictReader(src):
                    if row["client_id"] in chosen:
                        writer.writerow(
                            [row["name"], row["mobile"], row["id_number"], row["address"]]
                        )
            # Measure the build too, every statement replayed.
            store.con.execute("DELETE FROM attr_state")
            store.con.execute("DELETE FROM attr_replay_state")
            result = _measure(store, key, path)
        first = [s["person_id"] for s in result["suspects"] if s["rank"] == 1]
        print(f"ring {ring['people']}; rank 1: {first}")


def _measure(store: Store, key: bytes, path: Path) -> dict[str, Any]:
    """Time the first attribution (it builds the stored reads), then a further one
    (a new attributor, as a new CLI run or web request makes), beside one scan."""
    scan = _scan(store)
    t = time.perf_counter()
    first = ReadOverlapAttributor(store)
    result = attribute(store, key, path, attributor=first)
    whole = time.perf_counter() - t
    build = float(store.con.execute("SELECT seconds FROM attr_state").fetchall()[0][0])
    again = ReadOverlapAttributor(store)
    t = time.perf_counter()
    again.prepare()
    reuse = time.perf_counter() - t
    t = time.perf_counter()
    found = leaked_set(path, store, key)
    matched = time.perf_counter() - t
    t = time.perf_counter()
    again.rank(found.client_ids)
    ranked = time.perf_counter() - t
    t = time.perf_counter()
    result = attribute(store, key, path, attributor=ReadOverlapAttributor(store))
    further = time.perf_counter() - t
    # New events make the stored reads stale; who-is-who stays kept for the days it
    # holds (a detection pass keeps it too), and the statements replayed before are not
    # replayed again: the stored reads are joined anew.
    store.con.execute("DELETE FROM attr_state")
    t = time.perf_counter()
    ReadOverlapAttributor(store).prepare()
    rebuilt = time.perf_counter() - t
    rows = [
        ("one scan of the access tables (ceiling)", scan),
        ("first file: reads resolved, statements replayed, stored", build),
        ("first file in all", whole),
        ("further file: stored reads found current", reuse),
        ("further file: leaked records matched (file scan)", matched),
        ("further file: suspects ranked", ranked),
        ("further file in all (new attributor)", further),
        ("stored reads rebuilt, who-is-who and replays kept", rebuilt),
    ]
    print(f"{'step':<58}{'seconds':>10}{'x scan':>10}")
    for label, seconds in rows:
        print(f"{label:<58}{seconds:>10.3f}{seconds / scan:>10.1f}")
    top = result["suspects"][0] if result["suspects"] else {}
    print(
        f"matched {result['client_records']:,} of {result['records_in_file']:,} records; "
        f"rank 1: {top.get('person_id')} covering {top.get('covered')} "
        f"(score {top.get('score')}); replays refused: {len(again.refused)}"
    )
    print(f"peak RSS {_rss_mb():.0f} MB")
    return result


def _extensions(store: Store, key: bytes, path: Path, fill: dict[str, Any], days: int) -> None:
    """Append ``days`` new days one at a time, extending the stored reads after each;
    then a further file and a group search's reads, beside the same after a rebuild."""
    if days <= 0:
        return
    rows = []
    for n in range(days):
        day = fill["days"] + n
        store.con.execute(EVENTS.format(**{**fill, "first": day, "days": day + 1}))
        t = time.perf_counter()
        grown = ReadOverlapAttributor(store)
        grown.prepare()
        took = time.perf_counter() - t
        assert grown.extended_from is not None, "an appended day rebuilt whole"
        rows.append((f"day {day + 1} appended: stored reads extended", took))
    size = int(store.con.execute("SELECT count(*) FROM attr_reads").fetchall()[0][0])
    rows += _further(store, key, path, f"after {days} extensions")
    store.con.execute("DELETE FROM attr_state")
    t = time.perf_counter()
    ReadOverlapAttributor(store).prepare()
    rows.append(("stored reads rebuilt whole (who-is-who, replays kept)", time.perf_counter() - t))
    rows += _further(store, key, path, "after the rebuild")
    print(f"{size:,} stored reads after the extensions")
    print(f"{'step':<58}{'seconds':>10}")
    for label, seconds in rows:
        print(f"{label:<58}{seconds:>10.3f}")


#: People whose reads a group search loads in the synthetic store (it has no links).
GROUP = ("E00042", "E00007", "E01000", "E00500", "E00999")


def _further(store: Store, key: bytes, path: Path, when: str) -> list[tuple[str, float]]:
    t = time.perf_counter()
    attribute(store, key, path, attributor=ReadOverlapAttributor(store))
    further = time.perf_counter() - t
    t = time.perf_counter()
    for _ in range(3):
        store.con.execute(
            "SELECT DISTINCT who, hash(client_id) AS h FROM attr_reads WHERE who IN "
            f"({', '.join(repr(w) for w in GROUP)}) ORDER BY who, h"
        ).fetchnumpy()
    group = (time.perf_counter() - t) / 3
    return [
        (f"further file in all, {when}", further),
        (f"{len(GROUP)} people's reads loaded (group search), {when}", group),
    ]


if __name__ == "__main__":
    main()
