"""A full detection pass against one ``COUNT(*)`` scan of the event tables, same store.

Run: ``python -m bench.detect [--people N] [--days D] [--no-spark]`` (default 2,000
people, 60 days: about 2.9M application reads, 240k database statements, 480k proxy
requests, 200k logons; a client master of 100 clients per person, with owners, and
the clients of two reads a person-day as record-level rows). Events are generated
straight into the store with SQL (this measures detection, not ingest); a handful of
insiders are planted so detectors have work. The same pass then runs on local Spark
(``local[2]``, cold: JVM start and the Parquet copy of the tables included), and its
findings are checked against DuckDB's.

``--store PATH --as-of DAY`` measures an existing store instead (e.g. the simulator's
large preset, ingested): ``molehunt simulate --preset large --out sim``, ``molehunt
--db large.duckdb ingest sim/reference sim/logs``, then ``python -m bench.detect --store
large.duckdb --as-of 2026-08-28 --no-spark``.

Who-is-who kept in the store (:mod:`molehunt.resolve.stored`): the generated store
holds every day but the last; a pass as of the day before keeps the relations (cold),
then the last day arrives and a one-day round (``since`` that day) runs over the kept
relations, beside a full pass that resolves everything as of the last day (the peer:
what a round cost before); the round's findings must equal the full pass's of that
day. The round runs ``--rounds`` times (default 3) from that same state (each but the
last on a copy of the store file), timed on the wall clock and in CPU seconds (DuckDB's
threads included), with the seconds of each kept relation's refresh and each detector.
A warm full pass (every day, nothing new to resolve) closes.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import tempfile
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from molehunt.detect import DETECTORS, DetectContext, DetectionSettings
from molehunt.detect.engines import detection_backend
from molehunt.detect.runner import DetectReport, run_detectors
from molehunt.store import Store
from molehunt.store.schema import EVENT_TABLES

START = date(2026, 3, 2)

REFERENCE = """
INSERT INTO ref_hr SELECT 'E' || lpad(i::VARCHAR, 5, '0'), 'Person ' || i,
  ['Sales', 'Claims', 'Underwriting'][1 + i % 3], 'Agent',
  ['sales', 'claims', 'underwriter'][1 + i % 3], NULL, DATE '2020-01-01',
  CASE WHEN i % 500 = 7 THEN DATE '2026-04-01' END,
  CASE WHEN i % 500 = 7 THEN DATE '2026-04-10' END, NULL, NULL, 'bench'
FROM range({people}) t(i);
INSERT INTO ref_accounts SELECT 'u' || i, s, 'E' || lpad(i::VARCHAR, 5, '0'), 'human',
  DATE '2020-01-01', NULL, NULL, NULL, 'bench'
FROM range({people}) t(i), (VALUES ('crm-app'), ('ad'), ('crm-db')) v(s);
INSERT INTO ref_accounts VALUES ('etl_svc', 'crm-db', NULL, 'service', NULL, NULL, NULL, NULL, 'b');
INSERT INTO ref_assets SELECT 'WS-' || i, '10.1.' || (i // 250) || '.' || (i % 250),
  'E' || lpad(i::VARCHAR, 5, '0'), 'workstation', 'x', NULL, NULL, 'bench'
FROM range({people}) t(i);
INSERT INTO ref_assets VALUES ('ETL-01', '10.9.0.1', NULL, 'server', 'IT', NULL, NULL, 'b');
INSERT INTO ref_entitlements VALUES
  ('sales', 'crm-app', 'clients', 'read', NULL, NULL, 'b'),
  ('claims', 'crm-app', 'clients', 'read', NULL, NULL, 'b'),
  ('underwriter', 'crm-app', 'clients', 'read', NULL, NULL, 'b'),
  ('sales', 'crm-db', 'public.clients', 'read', NULL, NULL, 'b'),
  ('claims', 'crm-db', 'public.clients', 'read', NULL, NULL, 'b'),
  ('underwriter', 'crm-db', 'public.clients', 'read', NULL, NULL, 'b');
INSERT INTO ref_web_categories VALUES ('shop.example.cn', 'shopping', NULL, NULL, 'b'),
  ('chat.example.com', 'im', NULL, NULL, 'b'), ('news.example.cn', 'news', NULL, NULL, 'b');
INSERT INTO ref_web_policy VALUES ('shopping', true, NULL, NULL, 'b'),
  ('news', true, NULL, NULL, 'b'), ('im', false, NULL, NULL, 'b');
ALTER TABLE clients ADD COLUMN owner_employee_id VARCHAR;
INSERT INTO clients SELECT 'c' || i, 'bench', 'E' || lpad((i // 100)::VARCHAR, 5, '0')
FROM range({people} * 100) t(i);
"""

# Per person and working day: a logon, 24 application reads (the first two with their
# 5 clients each, of the person's own portfolio of 100), 4 proxy requests; every 10th
# person 2 database reads; every night the ETL. Person 42 borrows a departed account
# from day 30, person 43 reads 4x from day 40, person 44 uploads to a shop chat, person
# 45 reads 60 colleagues' clients in 12 more reads a day from day 40.
EVENTS = """
CREATE OR REPLACE TEMP TABLE days AS
  SELECT d, TIMESTAMPTZ '{start} 01:00:00+00' + d * INTERVAL 1 DAY AS t0
  FROM range({first}, {days}) r(d) WHERE dayofweek(DATE '{start}' + d::INTEGER) BETWEEN 1 AND 5;
INSERT INTO events_auth (event_id, time, source_id, kind, activity, user_name, logon_type,
  dst_host) SELECT 'a' || d || '-' || i, t0, 'b', 'winlog-ndjson', 'logon', 'u' || i, 2,
  'WS-' || i FROM days, range({people}) p(i);
INSERT INTO events_app SELECT 'p' || d || '-' || i || '-' || k, t0 + k * INTERVAL 10 MINUTE,
  'b', 'crm', 'u' || i, '10.1.' || (i // 250) || '.' || (i % 250), 'search',
  CASE WHEN i = 43 AND d >= 40 THEN 20 ELSE 5 END, 'x', 5
FROM days, range({people}) p(i), range(24) r(k);
INSERT INTO record_access SELECT 'p' || d || '-' || i || '-' || k,
  'c' || (i * 100 + (d + j) % 100), 'listed'
FROM days, range({people}) p(i), range(2) r(k), range(5) c(j);
INSERT INTO record_access SELECT 'p' || d || '-45-' || k, 'c' || ((46 + j) * 100 + (d + k) % 100),
  'listed' FROM days, range(2, 14) r(k), range(5) c(j) WHERE d >= 40;
INSERT INTO events_db (event_id, time, source_id, kind, db_user, src_ip, app_name, audit_class,
  command, objects, statement, rows) SELECT 'd' || d || '-' || i || '-' || k,
  t0 + k * INTERVAL 1 HOUR, 'b', 'pg-csvlog', 'u' || i, '10.1.' || (i // 250) || '.' || (i % 250),
  'crm-web', 'READ', 'SELECT', ['public.clients'], 'SELECT * FROM clients WHERE id = $1', 1
FROM days, range(0, {people}, 10) p(i), range(2) r(k);
INSERT INTO events_db (event_id, time, source_id, kind, db_user, src_ip, app_name, audit_class,
  command, objects, statement, rows) SELECT 'etl' || d, t0 - INTERVAL 7 HOUR, 'b', 'pg-csvlog',
  'etl_svc', '10.9.0.1', 'etl', 'READ', 'SELECT', ['public.clients'], 'SELECT * FROM clients',
  500000 FROM days;
INSERT INTO events_db (event_id, time, source_id, kind, db_user, src_ip, app_name, audit_class,
  command, objects, statement, rows) SELECT 'x' || d, t0 + INTERVAL 5 HOUR, 'b', 'pg-csvlog',
  'u7', '10.1.0.42', 'DBeaver 23.1', 'READ', 'SELECT', ['public.clients'],
  'SELECT * FROM clients WHERE id <= 3000', 3000 FROM days WHERE d >= 30;
INSERT INTO events_http (event_id, time, source_id, kind, src_ip, method, url, host, path,
  status, bytes_out, request_content_type) SELECT 'h' || d || '-' || i || '-' || k,
  t0 + k * INTERVAL 1 HOUR, 'b', 'squid', '10.1.' || (i // 250) || '.' || (i % 250),
  CASE WHEN i = 44 AND k = 0 THEN 'POST' ELSE 'GET' END, 'http://x',
  CASE WHEN i = 44 AND k = 0 THEN 'shop.example.cn' ELSE 'news.example.cn' END,
  CASE WHEN i = 44 AND k = 0 THEN '/shop/1/chat/upload' ELSE '/today' END, 200,
  CASE WHEN i = 44 AND k = 0 THEN 3000000 ELSE 400 END,
  CASE WHEN i = 44 AND k = 0 THEN 'multipart/form-data' END
FROM days, range({people}) p(i), range(4) r(k);
"""


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


#: The relations several detectors share, built first so the table charges them once.
SHARED = (
    "people",
    "reads",
    "daily_reads",
    "bulk_reads",
    "http",
    "endpoint_events:events_file",
    "endpoint_events:events_process",
)


def _cpu() -> float:
    """CPU seconds of this process so far, DuckDB's threads included."""
    used = resource.getrusage(resource.RUSAGE_SELF)
    return used.ru_utime + used.ru_stime


@dataclass(frozen=True, slots=True)
class Round:
    """One timed one-day round."""

    wall: float
    cpu: float
    load: float  # the 1-minute load average when it ended
    ids: list[str]  # its findings
    report: DetectReport


@dataclass(frozen=True, slots=True)
class KeptRound:
    cold: float  # a pass keeping who-is-who as of the day before: resolves every day
    rounds: list[Round]  # the one-day round once the last day is in, each from that state

    @property
    def best(self) -> Round:
        return min(self.rounds, key=lambda r: r.cpu)


def _round(store: Store, settings: DetectionSettings, as_of: date) -> Round:
    cpu, started = _cpu(), time.perf_counter()
    found = run_detectors(store, settings, as_of, since=as_of)
    wall, used = time.perf_counter() - started, _cpu() - cpu
    ids = sorted(f.finding_id for f in found.findings)
    return Round(wall, used, os.getloadavg()[0], ids, found)


def kept_round(
    store: Store,
    settings: DetectionSettings,
    before: date,
    as_of: date,
    last_day: str | None,
    rounds: int = 1,
) -> tuple[Store, KeptRound]:
    """A pass as of the day before that keeps who-is-who, then (after ``last_day``'s
    SQL adds that day's events, when given) the one-day round of ``as_of``, ``rounds``
    times from that same state: each but the last on a copy of the store file (the
    last on the store itself, which is returned open again)."""
    started = time.perf_counter()
    run_detectors(store, settings, before)
    cold = time.perf_counter() - started
    if last_day is not None:
        store.con.execute(last_day)
    done = []
    if rounds > 1:
        store.con.execute("CHECKPOINT")
        path = Path(store.path)
        store.close()
        copy = path.with_name(f"round-{path.name}")
        for _ in range(rounds - 1):
            shutil.copyfile(path, copy)
            with Store.open(copy, memory_limit="4GB") as trial:
                done.append(_round(trial, settings, as_of))
            copy.unlink()
        store = Store.open(path, memory_limit="4GB")
    done.append(_round(store, settings, as_of))
    return store, KeptRound(cold, done)


def profile(store: Store, as_of: date) -> list[tuple[str, float]]:
    """Seconds per step of one DuckDB pass over the kept relations (current): the
    shared relations, then each detector."""
    out: list[tuple[str, float]] = []
    with (
        detection_backend(store) as backend,
        DetectContext(backend, DetectionSettings(), as_of, store=store) as ctx,
    ):
        for step in SHARED:
            method, _, arg = step.partition(":")
            started = time.perf_counter()
            getattr(ctx, method)(*([arg] if arg else []))
            out.append((f"(shared) {step}", time.perf_counter() - started))
        for name, detector in DETECTORS.items():
            started = time.perf_counter()
            detector().find(ctx)
            out.append((name, time.perf_counter() - started))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--people", type=int, default=2000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--no-spark", action="store_true", help="DuckDB only")
    parser.add_argument("--store", type=Path, help="measure this existing store")
    parser.add_argument("--as-of", type=date.fromisoformat, help="last day (with --store)")
    parser.add_argument(
        "--rounds", type=int, default=3, help="one-day rounds from the same state (best of N)"
    )
    args, _ = parser.parse_known_args()
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        if args.store:
            store = Store.open(args.store, memory_limit="4GB")
        else:
            store = Store.open(Path(tmp) / "bench.duckdb", memory_limit="4GB")
            store.con.execute(REFERENCE.format(people=args.people))
            # Every day but the last: it arrives later, for the one-day round.
            store.con.execute(
                EVENTS.format(people=args.people, first=0, days=args.days - 1, start=START)
            )
            store.con.execute("CHECKPOINT")
        counts = store.table_counts()
        events = sum(counts[t] for t in EVENT_TABLES)
        verb = "opened" if args.store else "generated"
        print(f"{verb} {events:,} events in {time.perf_counter() - started:.1f} s")

        # DuckDB answers a bare COUNT(*), and even one filtered on ``event_id <> ''``,
        # from the column statistics without reading; summing the id lengths reads them.
        started = time.perf_counter()
        for table in EVENT_TABLES:
            store.con.execute(f"SELECT count(*), sum(length(event_id)) FROM {table}").fetchall()
        scan = time.perf_counter() - started
        started = time.perf_counter()
        store.con.execute(
            "SELECT count(DISTINCT event_id), max(time) FROM (SELECT event_id, time FROM "
            + " UNION ALL SELECT event_id, time FROM ".join(EVENT_TABLES)
            + ")"
        ).fetchall()
        full_scan = time.perf_counter() - started

        as_of = args.as_of or START + timedelta(days=args.days - 1)
        before = as_of - timedelta(days=1)
        settings = DetectionSettings()
        last_day = (
            None
            if args.store
            else EVENTS.format(people=args.people, first=args.days - 1, days=args.days, start=START)
        )
        store, kept = kept_round(store, settings, before, as_of, last_day, max(1, args.rounds))
        started = time.perf_counter()
        report = run_detectors(store, settings, as_of, keep_resolved=False)
        detect = time.perf_counter() - started
        full_day = {f.finding_id for f in report.findings if f.day == as_of}
        only_round = {i for r in kept.rounds for i in r.ids} - full_day
        only_full = {i for r in kept.rounds for i in full_day - set(r.ids)}
        round_same = not only_round and not only_full
        started = time.perf_counter()
        run_detectors(store, settings, as_of)
        warm = time.perf_counter() - started
        steps = profile(store, as_of)
        spark: float | None = None
        same = False
        if not args.no_spark:
            started = time.perf_counter()
            on_spark = run_detectors(store, DetectionSettings(), as_of, engine="spark")
            spark = time.perf_counter() - started
            same = [f.finding_id for f in on_spark.findings] == [
                f.finding_id for f in report.findings
            ]
        store.close()

    best = kept.best
    print(f"{'one-day round, step (least CPU)':<38}{'seconds':>10}")
    for name, refresh in best.report.refreshes.items():
        print(f"{'(kept ' + name + ', ' + refresh.reason + ')':<38}{refresh.seconds:>10.3f}")
    for name, sec in best.report.seconds.items():
        print(f"{name:<38}{sec:>10.3f}")
    print("(a kept relation's seconds are in the first detector that asks for it, and the")
    print(" reads' include the logons': they resolve them)")
    for i, r in enumerate(kept.rounds):
        print(f"round {i + 1}: {r.wall:.2f} s wall, {r.cpu:.2f} s CPU, load average {r.load:.1f}")
    print()
    total = sum(sec for _, sec in steps)
    print(f"{'detector (one profiled pass)':<38}{'seconds':>10}{'share':>10}")
    for step, sec in steps:
        print(f"{step:<38}{sec:>10.3f}{sec / total:>10.1%}")
    print(f"{'total':<38}{total:>10.3f}{1:>10.1%}")
    print()
    print(f"{'step':<38}{'seconds':>10}{'x scan':>10}")
    print(f"{'one scan of every event table':<38}{scan:>10.3f}{1:>10.1f}")
    print(f"{'distinct event ids of every table':<38}{full_scan:>10.3f}{full_scan / scan:>10.1f}")
    print(f"{'full detection pass (nothing kept)':<38}{detect:>10.3f}{detect / scan:>10.1f}")
    print(f"{'first pass keeping who-is-who':<38}{kept.cold:>10.3f}{kept.cold / scan:>10.1f}")
    print(f"{'one-day round (kept, new day; best)':<38}{best.wall:>10.3f}{best.wall / scan:>10.1f}")
    print(f"{'full pass (kept, nothing new)':<38}{warm:>10.3f}{warm / scan:>10.1f}")
    verdict = (
        "identical to"
        if round_same
        else f"DIFFERENT ({len(only_round)} only in the round, {len(only_full)} only in) from"
    )
    print(
        f"one-day round: {best.wall / detect:.2f} of a full pass (ceiling 10 s: "
        f"{best.wall:.1f} s, {best.cpu:.1f} s CPU); the findings of its {len(kept.rounds)} "
        f"run(s) {verdict} the full pass's of that day"
    )
    if spark is not None:
        print(f"{'same pass on Spark local[2] (cold)':<38}{spark:>10.3f}{spark / scan:>10.1f}")
    print(f"detection: {events / detect:,.0f} events/s; {len(report.findings)} findings")
    if spark is not None:
        verdict = "identical findings" if same else "FINDINGS DIFFER"
        print(f"Spark: {spark / detect:.1f}x DuckDB's time; {verdict}")
    print(f"findings by detector: {report.counts()}")
    print(f"peak RSS {_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
