"""The whole pipeline on a simulated company, each step beside its ceiling, same run.

Run: ``python -m bench.end_to_end [--preset large|small|tiny] [--keep-store] [--store DIR]``. The
simulator's preset is written once and cached (``bench.ingest_kinds``: the large
preset, about 3,000 staff, 1,000,000 clients and 180 days, takes about an hour here);
the store is built again in every run (``--keep-store`` keeps it under the cache for
``bench.attribute --store``). Steps, timed on the wall clock:

* **ingest**: ``molehunt ingest`` of the reference exports and every log into a new
  store, against DuckDB's own readers loading the four log files into tables (the
  ceiling, ``bench.ingest_kinds``), and against the 2 minutes the issue asks;
* **detect**: the first pass as of the day before the last, keeping who-is-who (it
  resolves every event); the **one-day round** of the last day over the kept
  relations (its events are in the store, not yet resolved); a full pass over the kept
  relations; and a full pass that resolves everything in the pass (the peer: every
  pass cost that before). The round's findings must equal the full pass's of that day;
* **history**: ``risk --history`` over every day: the stored daily scores built once
  after the pass, then read;
* **attribute**: a leaked file of 10,000 clients drawn from what the
  borrowed-account ring read (``bench.attribute --store``: the first file builds the
  stored reads, a further file reuses them).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from bench import attribute as attribution
from bench.ingest_kinds import KINDS, cache_dir, cached_preset, ceiling
from molehunt.config import Settings
from molehunt.detect import DetectionSettings
from molehunt.detect.runner import run_detectors, write_findings
from molehunt.ingest.runner import ingest_paths
from molehunt.keys import create_key_file
from molehunt.score import RiskRanker
from molehunt.store import Store
from molehunt.store.schema import EVENT_TABLES

#: State tables that ``--store`` empties, so every pass starts as cold as after ingest.
FRESH = (
    "kept_state",
    "event_days_seen",
    "access_days_seen",
    "risk_state",
    "attr_state",
    "attr_replay_state",
)
#: The issue's ceilings, seconds.
CEILINGS = {"ingest": 120.0, "full pass": 120.0, "round": 10.0, "history": 5.0}


def _ingest(sim: Path, folder: Path) -> tuple[Settings, float, int]:
    key = folder / "m.key"
    create_key_file(key)
    settings = Settings.load({"db": folder / "m.duckdb", "key_file": key}, environ={})
    with Store.open(settings.db) as store:
        started = time.perf_counter()
        report = ingest_paths(store, settings, [sim / "reference", sim / "logs"])
        store.con.execute("CHECKPOINT")
        took = time.perf_counter() - started
    if report.errors or report.rejected:
        raise SystemExit(f"ingest: {report.as_dict()}")
    return settings, took, report.stored


def _last_day(store: Store, zone: str) -> date:
    """The local day of the newest event."""
    newest = " UNION ALL ".join(f"SELECT max(time) AS time FROM {t}" for t in EVENT_TABLES)
    found = store.con.execute(f"SELECT max(time) FROM ({newest})").fetchall()[0][0]
    if found is None:
        raise SystemExit("no events ingested")
    day: date = found.astimezone(ZoneInfo(zone)).date()
    return day


def _row(step: str, seconds: float, against: str, ratio: str) -> None:
    print(f"{step:<44}{seconds:>10.1f}  {against:<34}{ratio}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--preset", default="large")
    parser.add_argument("--leaked", type=int, default=10_000)
    parser.add_argument("--keep-store", action="store_true")
    parser.add_argument(
        "--store", type=Path, help="a folder --keep-store left: measure from detection on"
    )
    args, _ = parser.parse_known_args()
    sim = cached_preset(args.preset)
    if args.store is not None:
        settings = Settings.load(
            {"db": args.store / "m.duckdb", "key_file": args.store / "m.key"}, environ={}
        )
        with Store.open(settings.db) as store:
            # Cold again: nothing kept, every stored answer built anew.
            for table in FRESH:
                store.con.execute(f"DELETE FROM {table}")
        _measure(settings)
        attribution.simulated(args.store, args.leaked)
        return
    work = Path(tempfile.mkdtemp(prefix="e2e-", dir=cache_dir()))
    try:
        with tempfile.TemporaryDirectory(dir=cache_dir()) as tmp:
            duck = sum(ceiling(sim / path, reader, Path(tmp)) for path, reader in KINDS.values())
        settings, ingest, stored = _ingest(sim, work)
        print(f"preset {args.preset}: {stored:,} events and reference rows stored")
        print(f"{'step':<44}{'seconds':>10}  {'against (same run)':<34}ratio / verdict")
        _row("ingest: reference and every log", ingest, f"DuckDB readers {duck:.1f} s", "")
        print(f"{'':<56}{'':<34}{duck / ingest:.2f} of DuckDB's readers")
        _row("", ingest, f"ceiling {CEILINGS['ingest']:.0f} s", _verdict(ingest, "ingest"))
        _measure(settings)
        (work / "sim").symlink_to(sim)
        attribution.simulated(work, args.leaked)
    finally:
        if args.keep_store:
            print(f"store kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def _measure(settings: Settings) -> None:
    """Detection, history and their ceilings, each printed as it is measured."""
    detection = DetectionSettings()
    zone = settings.timezone
    with Store.open(settings.db, memory_limit="4GB") as store:
        last = _last_day(store, zone)
        started = time.perf_counter()
        run_detectors(store, detection, last - timedelta(days=1), timezone=zone)
        _row("detect: first pass keeping who-is-who", time.perf_counter() - started, "", "")
        started = time.perf_counter()
        round_ = run_detectors(store, detection, last, since=last, timezone=zone)
        took = time.perf_counter() - started
        _row("detect: one-day round of the last day", took, "ceiling 10 s", _verdict(took, "round"))
        slowest = sorted(round_.seconds.items(), key=lambda kv: -kv[1])[:4]
        print(f"{'':<4}slowest in the round: " + ", ".join(f"{n} {s:.1f}" for n, s in slowest))
        started = time.perf_counter()
        warm = run_detectors(store, detection, last, timezone=zone)
        took = time.perf_counter() - started
        _row(
            "detect: full pass over kept relations",
            took,
            "ceiling 120 s",
            _verdict(took, "full pass"),
        )
        started = time.perf_counter()
        whole = run_detectors(store, detection, last, timezone=zone, keep_resolved=False)
        took = time.perf_counter() - started
        _row(
            "detect: full pass resolving everything",
            took,
            "ceiling 120 s",
            _verdict(took, "full pass"),
        )
        same_round = sorted(f.finding_id for f in round_.findings) == sorted(
            f.finding_id for f in whole.findings if f.day == last
        )
        same_pass = [f.finding_id for f in warm.findings] == [f.finding_id for f in whole.findings]
        print(
            f"round findings {'identical to' if same_round else 'DIFFERENT from'} the full "
            f"pass's of {last}; kept full pass {'identical to' if same_pass else 'DIFFERENT from'}"
            f" the resolving one ({len(whole.findings):,} findings)"
        )
        started = time.perf_counter()
        write_findings(store, warm)
        _row("detect: findings stored", time.perf_counter() - started, "", "")
        started = time.perf_counter()
        RiskRanker(store, detection, zone).history(last)
        _row("history: stored daily scores built", time.perf_counter() - started, "", "")
        started = time.perf_counter()
        days = RiskRanker(store, detection, zone).history(last)
        took = time.perf_counter() - started
        _row(f"history: read {len(days)} days", took, "ceiling 5 s", _verdict(took, "history"))


def _verdict(seconds: float, step: str) -> str:
    limit = CEILINGS[step]
    return f"{seconds / limit:.2f} of the ceiling: {'met' if seconds <= limit else 'NOT met'}"


if __name__ == "__main__":
    main()
