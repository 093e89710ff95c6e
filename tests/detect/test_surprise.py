"""PeerDays counts a window's other days the way its definition reads (a mask over
every person-day): the sorted windows it keeps give the same reach and population."""

from __future__ import annotations

import random
from datetime import date, timedelta

import numpy as np

from molehunt.detect.surprise import PeerDays


def _by_definition(
    rows: list[tuple[str, str | None, date, float]], actor: str, day: date, window: int
) -> tuple[list[float], list[float]]:
    """The values of the role's and of everyone's other days in the window."""
    role = next((r or "" for a, r, _d, _v in rows if a == actor), "")
    low = day - timedelta(days=window)
    others = [(r or "", v) for a, r, d, v in rows if a != actor and low <= d <= day]
    return [v for r, v in others if r == role], [v for _r, v in others]


def test_peer_days_count_what_the_definition_counts() -> None:
    rng = random.Random(7)
    first = date(2026, 1, 1)
    people = [(f"E{i:03d}", rng.choice(["sales", "claims", None])) for i in range(40)]
    rows = [
        (a, role, first + timedelta(days=d), float(rng.choice([0, 1, 2, 3, 5, 8, 13, 40])))
        for a, role in people
        for d in range(60)
        if rng.random() < 0.6
    ]
    rows.append((*people[0], first + timedelta(days=30), float("nan")))  # never reached
    peers = PeerDays(rows, 30)
    checked = 0
    for _ in range(400):
        actor, _role = rng.choice(people)
        day = first + timedelta(days=rng.randrange(60))
        value = float(rng.choice([0, 1, 4, 8, 9, 40, 41]))
        found = peers.surprise(actor, day, value)
        group, everyone = _by_definition(rows, actor, day, 30)
        pool = group if found.group != "all staff" else everyone
        assert found.population == len(pool)
        assert found.reach == int((np.array(pool) >= value).sum())
        checked += 1
    assert checked == 400
