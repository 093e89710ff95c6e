"""PeerDays counts a window's other days the way its definition reads (a mask over
every person-day): the sorted windows it keeps give the same reach and population;
TeamLift's median of the teammates' lifts is the one its definition gives."""

from __future__ import annotations

import random
from datetime import date, timedelta

import numpy as np

from molehunt.detect.surprise import PeerDays, TeamLift


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


def test_team_lift_is_the_median_of_the_other_members_lifts() -> None:
    """Each member's team lift, read from the team's lifts sorted once per day, is the
    median its definition gives: every other member active that day with a norm (at
    least ``min_history`` days in the window before), their value over that norm."""
    rng = random.Random(11)
    first = date(2026, 1, 1)
    teams = [("sales", "S", f"M{i}") for i in range(3)]
    people = [(f"E{i:03d}", rng.choice(teams)) for i in range(30)]
    rows = [
        (a, team, first + timedelta(days=d), float(rng.choice([0, 1, 2, 3, 5, 8, 13, 40])))
        for a, team in people
        for d in range(40)
        if rng.random() < 0.5
    ]
    lift = TeamLift(rows, 10, 3)
    values = {(a, d): v for a, _t, d, v in rows}

    def norm_lift(actor: str, day: date) -> float | None:
        before = [
            v for (a, d), v in values.items() if a == actor and day - timedelta(10) <= d < day
        ]
        if (actor, day) not in values or len(before) < 3:
            return None
        return values[actor, day] / max(float(np.median(before)), 1.0)

    checked = 0
    for actor, team in people:
        for d in range(0, 40, 3):
            day = first + timedelta(days=d)
            mates = {a for a, t, x, _v in rows if t == team and x == day and a != actor}
            lifts = [x for a in mates if (x := norm_lift(a, day)) is not None]
            expected = max(1.0, float(np.median(lifts))) if lifts else 1.0
            assert lift.of(actor, day) == expected, (actor, day)
            checked += expected > 1.0
    assert checked > 20


def test_own_days_judge_a_day_against_the_persons_days_before_it() -> None:
    first = date(2026, 1, 1)
    rows: list[tuple[str, str | None, date, float]] = [
        ("A", "analyst", first + timedelta(days=d), float(v))
        for d, v in enumerate([100, 5000, 120, 8000, 90, 7000, 20000])
    ]
    rows.append(("B", "analyst", first, 50.0))
    peers = PeerDays(rows, 5)
    day = first + timedelta(days=5)  # 7000: one of the five days before reaches it
    own = peers.own_days("A", day)
    assert own is not None
    assert (own.reach, own.population, own.group) == (1, 5, "own")
    assert own.routine(5.0)
    top = peers.own_days("A", first + timedelta(days=6))  # 20000: beyond every day
    assert top is not None
    assert (top.reach, top.population) == (0, 5)
    assert not top.routine(5.0)
    assert peers.own_days("B", first + timedelta(days=3)) is None  # no value that day
