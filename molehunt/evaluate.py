"""Detection quality against the simulator's ground truth, with no peeking ahead.

Each day's ranking is the one ``molehunt risk --as-of DAY`` gives: built only from
findings of that day and before, each computed from data up to its own day.

For every scenario: the first day one of its people is flagged and ranks within
the top K (K = max(5, 1% of staff)), counting only people outside the *other*
scenarios (several run at once in a small company), and the working days from the
scenario's start to that day. Over all insider person-days: the share ranked within
the top K (recall at budget K). Benign people flagged: per 1,000 staff-days. Decoys:
the days their people were flagged and their best rank.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np

from molehunt.detect.settings import DetectionSettings
from molehunt.score import RiskRanker
from molehunt.store import Store


@dataclass(frozen=True, slots=True)
class Budget:
    staff: int

    @property
    def k(self) -> int:
        return max(5, math.ceil(self.staff / 100))


def _day(text: str) -> date:
    return date.fromisoformat(text)


def working_days(start: date, end: date) -> int:
    """Working days (Monday to Friday) from ``start`` to ``end``, ``start`` not counted."""
    return int(np.busday_count(start, end))


def _ranks(ranking: list[dict[str, Any]], excluded: set[str]) -> dict[str, int]:
    """Ranks among flagged people once ``excluded`` people are taken out of the list."""
    kept = [r["person_id"] for r in ranking if r["person_id"] not in excluded]
    return {person: i for i, person in enumerate(kept, 1)}


def evaluate(
    store: Store, settings: DetectionSettings, truth: dict[str, Any], timezone: str
) -> dict[str, Any]:
    """Score the stored findings against ``truth`` (the simulator's truth.json)."""
    first, last = _day(truth["period"]["start"]), _day(truth["period"]["end"])
    budget = Budget(int(truth["staff"]))
    ranker = RiskRanker(store, settings, timezone)
    history = {
        _day(entry["date"]): entry["ranking"] for entry in ranker.history(last) if entry["ranking"]
    }
    rankings = {d: history.get(d, []) for d in _days(first, last)}
    insiders = {p for s in truth["scenarios"] for p in s["people"]}

    scenarios = []
    hits = total = 0
    for s in truth["scenarios"]:
        people = set(s["people"])
        others = insiders - people
        start, end = _day(s["start_day"]), _day(s["end_day"])
        detected: date | None = None
        best: int | None = None
        for day in _days(start, last):
            ranks = _ranks(rankings[day], others)
            mine = [ranks[p] for p in people if p in ranks]
            if mine:
                best = min(mine) if best is None else min(best, *mine)
                if detected is None and min(mine) <= budget.k:
                    detected = day
        for day in _days(start, end):
            ranks = _ranks(rankings[day], others)
            for person in people:
                total += 1
                hits += int(ranks.get(person, budget.k + 1) <= budget.k)
        scenarios.append(
            {
                "id": s["id"],
                "kind": s["kind"],
                "start_day": s["start_day"],
                "detected_day": detected.isoformat() if detected else None,
                "working_days_to_detect": working_days(start, detected) if detected else None,
                "best_rank": best,
            }
        )

    benign_flags = sum(
        1 for ranking in rankings.values() for r in ranking if r["person_id"] not in insiders
    )
    staff_days = budget.staff * len(rankings)
    decoys = []
    for d in truth["decoys"]:
        people = set(d["people"])
        flagged_days = sorted(
            day.isoformat()
            for day, ranking in rankings.items()
            if any(r["person_id"] in people for r in ranking)
        )
        decoy_ranks = [
            r["rank"] for ranking in rankings.values() for r in ranking if r["person_id"] in people
        ]
        decoys.append(
            {
                "id": d["id"],
                "kind": d["kind"],
                "flagged_days": flagged_days,
                "best_rank": min(decoy_ranks) if decoy_ranks else None,
            }
        )
    return {
        "k": budget.k,
        "staff": budget.staff,
        "days": len(rankings),
        "scenarios": scenarios,
        "recall_at_k": hits / total if total else None,
        "insider_person_days": total,
        "benign_flags": benign_flags,
        "false_alerts_per_1000_staff_days": (
            1000 * benign_flags / staff_days if staff_days else None
        ),
        "decoys": decoys,
    }


def _days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]
