"""``risk --history``: the old day-by-day scoring against the day-run scorer and the
stored daily scores, same store, same findings.

Run: ``python -m bench.history [--people N] [--days D] [--rate R] [--sample S]`` (default
3,000 people, 180 days, a finding on about a quarter of person-days: ~130,000
findings: each person's habitual detector, 1% any other, 1 in 5,000 critical; some
with stages of their own, related people, other hosts; HR with leavers), generated
straight into the store with SQL.

Measured:

- the old path, as ``history`` was before stored scores: ``score_people`` (through
  ``rank_rows`` given the findings) for each day. Its cost grows with the day (each
  day walks every finding up to it), so ``--sample`` days spread over the period are
  timed and the total is extrapolated (the mean of the sample times the days: said in
  the table);
- the day-run scorer in memory (``RiskRanker.computed_history``: what a read-only store
  gets), and building the stored table (scoring plus writing every person-day);
- ``history`` read from the stored scores (a fresh ranker: the freshness check
  included), the whole period's flagged people, and the web chart's top 5 of everyone.

A sampled day of the old path is also checked against the stored day: same rows.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from molehunt.detect import DETECTORS, DetectionSettings
from molehunt.score import RiskRanker, load_findings
from molehunt.score.stored import DailyScores
from molehunt.store import Store

START = date(2026, 3, 2)
ZONE = "Asia/Shanghai"

HR = """
INSERT INTO ref_hr SELECT 'E' || lpad(i::VARCHAR, 5, '0'), 'Person ' || i,
  ['Sales', 'Claims', 'Underwriting'][1 + i % 3], 'Agent',
  ['sales', 'claims', 'underwriter'][1 + i % 3], NULL, DATE '2020-01-01',
  CASE WHEN i % 97 = 7 THEN DATE '{start}' + INTERVAL (i % {days}) DAY END,
  CASE WHEN i % 97 = 7 THEN DATE '{start}' + INTERVAL (i % {days} + 20) DAY END,
  NULL, NULL, 'bench'
FROM range({people}) t(i)
"""

FINDINGS = """
INSERT INTO findings
SELECT 'f-' || p || '-' || d || '-' || k,
  CASE WHEN hash(p, d, k) % 5000 = 0 THEN critical[1 + (hash(p, d, k, 8) % len(critical))::INT]
    WHEN hash(p, d, k) % 100 < 1 THEN others[1 + (hash(p, d, k, 8) % len(others))::INT]
    ELSE habits[1 + (p % len(habits))::INT] END,
  (DATE '{start}' + INTERVAL (d) DAY + INTERVAL (hash(p, d, k, 1) % 86400) SECOND)::TIMESTAMPTZ,
  DATE '{start}' + INTERVAL (d) DAY,
  10 + (hash(p, d, k, 2) % 90)::INT,
  'E' || lpad(p::VARCHAR, 5, '0'), 'u' || p,
  'WS-' || (CASE WHEN hash(p, d, k, 3) % 10 = 0 THEN (p + 1) % {people} ELSE p END),
  'finding ' || k || ' of E' || p,
  json_object(
    'stage', CASE hash(p, d, k, 4) % 500 WHEN 0 THEN 'exfiltration' WHEN 1 THEN 'context'
      WHEN 2 THEN 'collection' END,
    'corroborates', hash(p, d, k, 5) % 9 <> 0,
    'related', CASE WHEN hash(p, d, k, 6) % 15 = 0
      THEN ['E' || lpad(((p + 7) % {people})::VARCHAR, 5, '0')] ELSE [] END),
  ['ev-' || p || '-' || d || '-' || k, 'ev-' || p || '-' || d || '-' || k || 'b']
FROM range({people}) a(p), range({days}) b(d), range(2) c(k),
  (SELECT {critical} AS critical, {others} AS others, {habits} AS habits)
WHERE hash(p, d, k, 7) % 1000 < {rate}
"""


def build(path: Path, people: int, days: int, rate: float) -> Store:
    store = Store.open(path)
    con = store.con
    con.execute(HR.format(start=START, days=days, people=people))

    def words(names: list[str]) -> str:
        return "[" + ", ".join(f"'{n}'" for n in names) + "]"

    stage = {n: getattr(cls, "stage", "context") for n, cls in DETECTORS.items()}
    con.execute(
        FINDINGS.format(
            start=START,
            days=days,
            people=people,
            # Everyone has a habit of one detector (most findings: lone signals), a few
            # findings of any other, and now and then a critical one.
            critical=words([n for n in DETECTORS if stage[n] == "critical"]),
            others=words([n for n in DETECTORS if stage[n] != "critical"]),
            habits=words([n for n in DETECTORS if stage[n] in ("context", "collection", "access")]),
            rate=int(rate * 1000 / 2),
        )
    )
    last = START + timedelta(days=days - 1)
    for i, day in enumerate((START, last)):
        con.execute(
            "INSERT INTO events_auth (event_id, time, source_id, kind, activity) "
            "VALUES (?, ?::TIMESTAMPTZ, 'bench', 'winlog', 'logon')",
            [f"ev-edge-{i}", f"{day} 04:00:00+00"],
        )
    return store


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--people", type=int, default=3000)
    ap.add_argument("--days", type=int, default=180)
    ap.add_argument("--rate", type=float, default=0.24, help="findings per person-day")
    ap.add_argument("--sample", type=int, default=3, help="days of the old path timed")
    a = ap.parse_args()
    s = DetectionSettings()
    last = START + timedelta(days=a.days - 1)
    with tempfile.TemporaryDirectory() as tmp:
        store = build(Path(tmp) / "history.duckdb", a.people, a.days, a.rate)
        n = store.query("SELECT count(*) AS n FROM findings")[0]["n"]
        print(f"{a.people:,} people, {a.days} days, {n:,} findings", flush=True)

        old = RiskRanker(store, s, ZONE)
        found = load_findings(store, last)
        sample = [
            START + timedelta(days=round((a.days - 1) * (i + 0.5) / a.sample))
            for i in range(a.sample)
        ]
        times, old_rows = [], {}
        for day in sample:
            clock = time.perf_counter()
            old_rows[day] = old.rank_rows(day, findings=found)
            times.append(time.perf_counter() - clock)
        per_day = sum(times) / len(times)
        old_total = per_day * a.days

        clock = time.perf_counter()
        computed = RiskRanker(store, s, ZONE).computed_history(START, last, None, False)
        in_memory = time.perf_counter() - clock
        clock = time.perf_counter()
        held = DailyScores(RiskRanker(store, s, ZONE)).covered()  # the build alone
        built = time.perf_counter() - clock
        assert held is not None
        assert held[1] == last, held
        clock = time.perf_counter()
        flagged = RiskRanker(store, s, ZONE).history(last)
        read = time.perf_counter() - clock
        clock = time.perf_counter()
        RiskRanker(store, s, ZONE).history(last, top=5, include_all=True)
        read_top = time.perf_counter() - clock

        stored = RiskRanker(store, s, ZONE)
        for day in sample:
            same = stored.rank_rows(day) == old_rows[day] == computed.get(day, [])
            assert same, f"{day}: the stored day differs from the old path"
        shown = sum(len(d["ranking"]) for d in flagged)
        store.close()

    print(f"{'path':<58} {'seconds':>9} {'old / this':>11}")
    rows = [
        (
            f"old: score_people per day ({per_day:.2f} s/day x {a.days}, {a.sample} sampled)",
            old_total,
        ),
        ("day-run scorer, in memory (read-only store)", in_memory),
        ("stored table built (scored + every person-day written)", built),
        (f"history read from stored scores ({shown:,} flagged rows)", read),
        ("history read, top 5 of everyone a day (web chart)", read_top),
    ]
    for name, seconds in rows:
        print(f"{name:<58} {seconds:9.2f} {old_total / seconds:10.0f}x")


if __name__ == "__main__":
    main()
