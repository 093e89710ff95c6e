"""How surprising a value is under the company's own population, in bits.

A finding's strength is the ``-log2`` of the share of comparable values that reach
it: 0 bits for the typical, about 10 bits for one in a thousand. The comparable values
are the person's peers' (their role's) days over the trailing window, so what a whole
team does every month-end is routine for its members and rare for everyone else.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

#: A peer group with fewer person-days than this in the window says too little:
#: the value is judged against everyone's days instead.
MIN_POPULATION = 20


def tail_bits(at_least: int, population: int) -> float:
    """Surprise of a value that ``at_least`` of ``population`` values reach or exceed:
    ``-log2((at_least + 1) / (population + 1))`` (0 bits for the typical, about 10
    bits for one in a thousand)."""
    return -math.log2((at_least + 1) / (population + 1))


def percentile_words(bits: float) -> str:
    share = 100 * (1 - 2.0**-bits)
    return f"{share:.1f}th percentile"


@dataclass(frozen=True, slots=True)
class Surprise:
    """A value judged against a population: ``reach`` of ``population`` values are at
    least as large; ``group`` names the population (a role, or "all staff")."""

    bits: float
    reach: int
    population: int
    group: str

    def routine(self, min_bits: float) -> bool:
        """Peers reach it often enough that it is their ordinary work: seen among
        them at least once and less surprising than ``min_bits``. Never seen among
        them is never routine, however small the group."""
        return self.reach > 0 and self.bits < min_bits

    def words(self) -> str:
        return (
            f"{percentile_words(self.bits)} of {self.group}'s days "
            f"({self.reach} of {self.population} reach it)"
        )


class _Days:
    """One population's person-days, to count those of a trailing window at least a
    value, leaving one person out: the window's values sorted once per day asked (a
    binary search then), the person's own days taken off."""

    def __init__(self, items: list[tuple[str, int, float]]) -> None:
        self.days = np.array([d for _a, d, _v in items], dtype=np.int64)
        self.values = np.array([v for _a, _d, v in items], dtype=np.float64)
        self.own: dict[str, list[tuple[int, float]]] = defaultdict(list)
        for a, d, v in items:
            self.own[a].append((d, v))
        self._windows: dict[tuple[int, int], tuple[np.ndarray, int]] = {}

    def judge(self, actor: str, start: int, end: int, value: float) -> tuple[int, int]:
        """(reach, population): the days in [start, end] of people other than
        ``actor``, and those of them whose value is at least ``value``."""
        if (start, end) not in self._windows:
            inside = self.values[(self.days >= start) & (self.days <= end)]
            # NaN is never at least a value: left out of the sorted values, counted in
            # the population.
            self._windows[start, end] = (np.sort(inside[~np.isnan(inside)]), len(inside))
        ordered, population = self._windows[start, end]
        reach = len(ordered) - int(np.searchsorted(ordered, value, side="left"))
        for d, v in self.own.get(actor, ()):
            if start <= d <= end:
                population -= 1
                reach -= v >= value
        return int(reach), population


class PeerDays:
    """Every person's daily value with their role, to judge one person-day against
    the other members' days of the trailing ``window`` (the day itself included: a
    team's month-end lifts its members together)."""

    def __init__(self, rows: Sequence[tuple[str, str | None, date, float]], window: int) -> None:
        self.window = window
        by_role: dict[str, list[tuple[str, int, float]]] = defaultdict(list)
        everyone: list[tuple[str, int, float]] = []
        for actor, role, day, value in rows:
            item = (actor, day.toordinal(), float(value))
            by_role[role or ""].append(item)
            everyone.append(item)
        self._groups = {role: _Days(items) for role, items in by_role.items()}
        self._all = _Days(everyone)
        self._role_of = {actor: role or "" for actor, role, _d, _v in rows}
        self._own = {(actor, day): float(value) for actor, _r, day, value in rows}

    def _judge(self, days: _Days, actor: str, day: date, value: float) -> tuple[int, int]:
        end = day.toordinal()
        start = (day - timedelta(days=self.window)).toordinal()
        return days.judge(actor, start, end, value)

    def surprise(self, actor: str, day: date, value: float) -> Surprise:
        role = self._role_of.get(actor, "")
        group = self._groups.get(role)
        if group is not None and role:
            reach, population = self._judge(group, actor, day, value)
            # Peers who do it, however few their days, say it is their work; a small
            # group that never does says too little, and everyone's days decide.
            if reach or population >= MIN_POPULATION:
                return Surprise(tail_bits(reach, population), reach, population, f"{role}s")
        reach, population = self._judge(self._all, actor, day, value)
        return Surprise(tail_bits(reach, population), reach, population, "all staff")

    def of_day(self, actor: str, day: date) -> Surprise | None:
        """The surprise of ``actor``'s own value on ``day`` (None: no value that day)."""
        value = self._own.get((actor, day))
        return None if value is None else self.surprise(actor, day, value)

    def own_days(self, actor: str, day: date) -> Surprise | None:
        """``actor``'s value on ``day`` judged against their own days of the trailing
        ``window`` before it (the day itself left out); None without a value that day."""
        value = self._own.get((actor, day))
        if value is None:
            return None
        end = day.toordinal()
        start = end - self.window
        before = [v for d, v in self._all.own.get(actor, ()) if start <= d < end]
        reach = sum(1 for v in before if v >= value)
        return Surprise(tail_bits(reach, len(before)), reach, len(before), "own")


class TeamLift:
    """How far a person's team read above its own norms on a day: the median, over the
    person's teammates active that day (themselves left out), of their reads over
    their own median of the ``window`` calendar days before. A campaign week lifts a
    whole team together; one person's collecting does not lift their teammates.

    A teammate with fewer than ``min_history`` active days in the window has no norm
    yet; with no teammate that has one, the lift is 1.0."""

    def __init__(
        self,
        rows: Sequence[tuple[str, tuple[str, ...], date, float]],
        window: int,
        min_history: int,
    ) -> None:
        self.window = window
        self.min_history = min_history
        days: dict[str, list[tuple[int, float]]] = defaultdict(list)
        self._members: dict[tuple[tuple[str, ...], int], list[str]] = defaultdict(list)
        self._team: dict[str, tuple[str, ...]] = {}
        self._team_on: dict[tuple[str, int], tuple[str, ...]] = {}  # (actor, day) -> team
        for actor, team, day, value in rows:
            days[actor].append((day.toordinal(), float(value)))
            self._members[(team, day.toordinal())].append(actor)
            self._team[actor] = team
            self._team_on[(actor, day.toordinal())] = team
        self._days = {a: np.array(sorted(v)) for a, v in days.items()}
        self._lifts: dict[tuple[str, int], float | None] = {}
        self._sorted: dict[tuple[tuple[str, ...], int], np.ndarray] = {}

    def _lift(self, actor: str, ordinal: int) -> float | None:
        key = (actor, ordinal)
        if key not in self._lifts:
            rows = self._days[actor]
            lo, hi = np.searchsorted(rows[:, 0], [ordinal - self.window, ordinal])
            if hi - lo < self.min_history or hi >= len(rows) or rows[hi, 0] != ordinal:
                self._lifts[key] = None
            else:
                norm = max(float(np.median(rows[lo:hi, 1])), 1.0)
                self._lifts[key] = float(rows[hi, 1]) / norm
        return self._lifts[key]

    def _team_lifts(self, team: tuple[str, ...], ordinal: int) -> np.ndarray:
        """The lifts of a team's members with a norm on a day, sorted (once per team
        and day: each member's median then leaves their own lift out of it)."""
        key = (team, ordinal)
        if key not in self._sorted:
            members = self._members.get(key, [])
            lifts = [x for x in (self._lift(a, ordinal) for a in members) if x is not None]
            self._sorted[key] = np.sort(np.array(lifts, dtype=np.float64))
        return self._sorted[key]

    def of(self, actor: str, day: date) -> float:
        """The teammates' median lift on ``day`` (at least 1.0)."""
        ordinal = day.toordinal()
        team = self._team.get(actor)
        if team is None:
            return 1.0
        lifts = self._team_lifts(team, ordinal)
        # Among that day's members: their own lift, if any, is left out.
        if self._team_on.get((actor, ordinal)) == team:
            own = self._lift(actor, ordinal)
            if own is not None:
                lifts = np.delete(lifts, int(np.searchsorted(lifts, own)))
        if not len(lifts):
            return 1.0
        return max(1.0, float(np.median(lifts)))
