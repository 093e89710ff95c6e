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
        self._groups = {role: self._arrays(items) for role, items in by_role.items()}
        self._all = self._arrays(everyone)
        self._role_of = {actor: role or "" for actor, role, _d, _v in rows}
        self._own = {(actor, day): float(value) for actor, _r, day, value in rows}

    @staticmethod
    def _arrays(items: list[tuple[str, int, float]]) -> tuple[np.ndarray, ...]:
        actors = np.array([a for a, _d, _v in items], dtype=object)
        days = np.array([d for _a, d, _v in items], dtype=np.int64)
        values = np.array([v for _a, _d, v in items], dtype=np.float64)
        return actors, days, values

    def _judge(
        self, arrays: tuple[np.ndarray, ...], actor: str, day: date, value: float
    ) -> tuple[int, int]:
        actors, days, values = arrays
        end = day.toordinal()
        start = (day - timedelta(days=self.window)).toordinal()
        mask = (days >= start) & (days <= end) & (actors != actor)
        population = int(mask.sum())
        reach = int((values[mask] >= value).sum())
        return reach, population

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
        for actor, team, day, value in rows:
            days[actor].append((day.toordinal(), float(value)))
            self._members[(team, day.toordinal())].append(actor)
            self._team[actor] = team
        self._days = {a: np.array(sorted(v)) for a, v in days.items()}
        self._lifts: dict[tuple[str, int], float | None] = {}

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

    def of(self, actor: str, day: date) -> float:
        """The teammates' median lift on ``day`` (at least 1.0)."""
        ordinal = day.toordinal()
        team = self._team.get(actor)
        if team is None:
            return 1.0
        others = [a for a in self._members.get((team, ordinal), []) if a != actor]
        lifts = [x for x in (self._lift(a, ordinal) for a in others) if x is not None]
        if not lifts:
            return 1.0
        return max(1.0, float(np.median(lifts)))
