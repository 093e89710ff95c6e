"""Detection quality over many randomised worlds, with seeds held out from tuning.

``make quality`` (never part of ``make test``) simulates worlds whose company size,
period and habits are drawn from each seed, ingests each once (cached under
``.quality/``), runs every detector and scores the rankings against the world's
truth with :func:`molehunt.evaluate.evaluate`. It prints the worst and the median of
every figure, separately for three sets of seeds decided before any tuning:

* ``tuning``: the worlds one may look into, person by person, while tuning;
* ``held-out``: never looked into while tuning; only their aggregate is printed;
* ``demo``: the demo's seed, reported apart and never tuned against.

Run ``python -m molehunt.quality [--set held-out] [--jobs 2] [--fresh]``.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import shutil
import statistics
import sys
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: What a cached world was built by: a world built by another version is built again
#: (2: a case starts on the first day its actor was at work, not on leave; 3: a ring
#: member's and a leaver's reads fall within their own logon session that day).
CACHE_VERSION = "3"

#: Seeds fixed before tuning. Tuning may look at ``tuning`` worlds only (101-110 from
#: the second round; 111-126 added in the third, after the held-out sets had shown
#: misses that no tuning world had: more worlds to learn from, never the held-out ones;
#: 127-160 in the fourth, 161-230 in the fifth).
SEEDS: dict[str, tuple[int, ...]] = {
    "tuning": tuple(range(101, 231)),
    "held-out": tuple(range(9001, 9016)),
    # Declared in the second tuning round, before it looked at anything: never measured
    # until that round's detectors were final.
    "held-out-2": tuple(range(9101, 9111)),
    "demo": (7,),
}

#: Scenario kinds and the working days within which each must rank in the top K.
DEADLINES: dict[str, int] = {
    "borrowed_account_ring": 1,
    "privileged_dump": 1,
    "credential_sharing": 1,
    "departed_account": 1,
    "departing_employee": 3,
    "low_and_slow": 3,
}

#: Working days counted for a scenario never detected (worse than any deadline).
MISSED = 99


@dataclass(frozen=True, slots=True)
class WorldSize:
    seed: int
    staff: int
    clients: int
    days: int

    @classmethod
    def of(cls, seed: int) -> WorldSize:
        """Company size and period drawn from the seed (the demo's seed keeps the
        demo's small preset)."""
        if seed in SEEDS["demo"]:
            return cls(seed, 300, 50_000, 60)
        rng = random.Random(f"world-size-{seed}")
        return cls(seed, rng.randint(100, 220), rng.randint(10_000, 25_000), rng.randint(40, 55))


def build_world(size: WorldSize, root: Path, *, fresh: bool = False) -> Path:
    """Simulate, ingest and scan one world once; returns its folder (cached)."""
    from molehunt.demo import ingest_world
    from molehunt.simulate import params_for, simulate

    folder = root / f"seed-{size.seed}"
    done = folder / "built"
    if done.exists() and not fresh and done.read_text(encoding="utf-8").strip() == CACHE_VERSION:
        return folder
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    params = params_for(
        "small", None, seed=size.seed, staff=size.staff, clients=size.clients, days=size.days
    )
    simulate(folder / "sim", params, None)
    ingest_world(folder)
    done.write_text(CACHE_VERSION + "\n", encoding="utf-8")
    return folder


def evaluate_world(size: WorldSize, root: Path, fresh: bool = False) -> dict[str, Any]:
    """Build (or reuse) one world, detect on it afresh and evaluate its rankings."""
    from molehunt.demo import detect_world

    started = time.perf_counter()
    folder = build_world(size, root, fresh=fresh)
    result = detect_world(folder)
    result["seed"] = size.seed
    result["size"] = {"staff": size.staff, "clients": size.clients, "days": size.days}
    result["seconds"] = round(time.perf_counter() - started, 1)
    (folder / "evaluation.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    return result


def figures(result: dict[str, Any]) -> dict[str, float]:
    """One world's figures: working days to detect per scenario kind (``MISSED`` when
    never), recall at K, benign flags per 1,000 staff-days, decoys flagged."""
    out: dict[str, float] = {}
    for s in result["scenarios"]:
        days = s["working_days_to_detect"]
        key = f"days to detect: {s['kind']}"
        value = float(MISSED if days is None else days)
        out[key] = max(out.get(key, 0.0), value)
    out["recall at K"] = float(result["recall_at_k"] or 0.0)
    out["benign flagged per 1,000 staff-days"] = float(result["false_alerts_per_1000_staff_days"])
    out["decoys flagged"] = float(sum(1 for d in result["decoys"] if d["flagged_days"]))
    return out


#: Figures where more is better (the worst is the smallest).
HIGHER_IS_BETTER = ("recall at K",)


def summarise(results: Sequence[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Worst and median of every figure over worlds (a figure missing in a world, a
    scenario kind it did not plant, is left out of that world)."""
    per: dict[str, list[float]] = {}
    for r in results:
        for key, value in figures(r).items():
            per.setdefault(key, []).append(value)
    out = {}
    for key, values in sorted(per.items()):
        worst = min(values) if key in HIGHER_IS_BETTER else max(values)
        out[key] = {"worst": worst, "median": statistics.median(values), "worlds": len(values)}
    return out


def verdict(summary: dict[str, dict[str, float]]) -> list[str]:
    """The quality bar (each scenario caught within its deadline, no decoy flagged, at
    most 1 benign flag per 1,000 staff-days), figure by figure: what fails it (empty
    when all pass)."""
    failed = []
    for kind, deadline in DEADLINES.items():
        key = f"days to detect: {kind}"
        if key in summary and summary[key]["worst"] > deadline:
            failed.append(f"{kind}: worst {summary[key]['worst']:g} working days > {deadline}")
    if summary.get("decoys flagged", {}).get("worst", 0) > 0:
        failed.append(f"a decoy flagged (worst {summary['decoys flagged']['worst']:g})")
    benign = summary.get("benign flagged per 1,000 staff-days", {}).get("worst", 0.0)
    if benign > 1.0:
        failed.append(f"benign flagged per 1,000 staff-days: worst {benign:.2f} > 1")
    return failed


def run(names: Iterable[str], root: Path, jobs: int, fresh: bool) -> dict[str, Any]:
    report: dict[str, Any] = {}
    for name in names:
        sizes = [WorldSize.of(seed) for seed in SEEDS[name]]
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            results = list(
                pool.map(evaluate_world, sizes, [root] * len(sizes), [fresh] * len(sizes))
            )
        summary = summarise(results)
        report[name] = {
            "seeds": [s.seed for s in sizes],
            "summary": summary,
            "fails": verdict(summary),
        }
        _print(name, summary, report[name]["fails"], results)
    return report


def _print(
    name: str, summary: dict[str, dict[str, float]], fails: list[str], results: list[dict[str, Any]]
) -> None:
    print(f"\n== {name}: {len(results)} world(s) ==")
    width = max(len(k) for k in summary) if summary else 10
    print(f"{'figure':<{width}}  {'worst':>8}  {'median':>8}  worlds")
    for key, row in summary.items():
        print(
            f"{key:<{width}}  {_fmt(row['worst']):>8}  {_fmt(row['median']):>8}  {row['worlds']:g}"
        )
    seconds = sum(r["seconds"] for r in results)
    print(
        f"({seconds:.0f} s of work; " + ("meets the bar" if not fails else "; ".join(fails)) + ")"
    )


def _fmt(value: float) -> str:
    if value == MISSED:
        return "missed"
    return f"{value:.3g}" if not math.isclose(value, round(value)) else f"{value:g}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--set", action="append", choices=list(SEEDS), dest="sets")
    parser.add_argument("--root", type=Path, default=Path(".quality"))
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--fresh", action="store_true", help="simulate and ingest again")
    parser.add_argument("--out", type=Path, help="also write the report as JSON")
    args = parser.parse_args(argv)
    report = run(args.sets or list(SEEDS), args.root, args.jobs, args.fresh)
    if args.out:
        args.out.write_text(json.dumps(report, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
