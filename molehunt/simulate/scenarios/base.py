"""What every scenario builds on: the :class:`Context` it picks people and days from and
the :class:`Scenario` base class with its life cycle and ground truth.

Each scenario picks its people, days and sizes from the seed in :meth:`Scenario.plan`,
acts on each day in :meth:`Scenario.day` through :class:`~molehunt.simulate.world.World`
(so its traces look like everyone else's), leaves files behind in
:meth:`Scenario.finish`, and says what it did in :meth:`Scenario.truth`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, ClassVar

from molehunt.simulate.company import Person
from molehunt.simulate.world import World


@dataclass(slots=True)
class Context:
    """What a scenario may choose from."""

    world: World
    workdays: list[date]
    rng: random.Random
    taken: set[int] = field(default_factory=set)

    def free(self, role: str, first: date, last: date, *, own_host: bool = True) -> list[Person]:
        """People of ``role`` employed from ``first`` to ``last``, in no other scenario."""
        workforce = self.world.habits.workforce
        irregular = set(workforce.night_people) | set(workforce.hot_desk_people)
        irregular |= {i for _day, i, _dept in workforce.transfers}
        return [
            p
            for p in self.world.company.people
            if p.role == role
            and p.index not in self.taken
            and p.index not in irregular
            and p.employed(first)
            and p.employed(last)
            and p.hire_date < first - timedelta(days=60)
            and p.notice_date is None
            and (p.host or not own_host)
        ]

    def window(self, earliest: float, min_days: int, max_share: float) -> list[date]:
        """Consecutive workdays starting after ``earliest`` of the period."""
        n = len(self.workdays)
        first = min(n - 1, max(1, int(n * earliest) + self.rng.randint(0, max(0, n // 10))))
        length = max(min_days, int((n - first) * self.rng.uniform(max_share * 0.6, max_share)))
        return self.workdays[first : min(n, first + length)]


class Scenario:
    """Base: a planted case (or a decoy) with its ground truth."""

    kind: ClassVar[str]
    decoy: ClassVar[bool] = False
    description: ClassVar[str]
    why_benign: ClassVar[str] = ""

    def __init__(self) -> None:
        self.people: list[Person] = []
        self.accounts: list[str] = []
        self.hosts: list[str] = []
        self.days: list[date] = []
        self.leaked: list[str] = []
        self.endpoint: list[str] = []
        self.details: dict[str, Any] = {}
        # Days someone of the scenario was at work to act (not on leave): the case
        # starts on the first of them, not on a planned day its actor spent away.
        self.acted: set[date] = set()

    def plan(self, ctx: Context) -> bool:
        raise NotImplementedError

    def day(self, world: World, day: date) -> None:
        """Act on ``day`` (called for every day of the period)."""

    def finish(self, world: World) -> None:
        """Leave the files this scenario left on endpoints and outside."""

    def active(self, person: Person, day: date) -> bool:
        at_work = day in self.days and person.employed(day) and day not in person.leave_days
        if at_work:
            self.acted.add(day)
        return at_work

    def truth(self, number: int) -> dict[str, Any]:
        base: dict[str, Any] = {
            "id": f"{self.kind}-{number}",
            "kind": self.kind,
            "start_day": min(self.acted or self.days).isoformat() if self.days else None,
            "end_day": self.days[-1].isoformat() if self.days else None,
            "people": [p.employee_id for p in self.people],
            "accounts": self.accounts,
            "hosts": self.hosts,
            "description": self.description,
            "details": self.details,
        }
        if self.decoy:
            base["days"] = [d.isoformat() for d in self.days]
            base["why_benign"] = self.why_benign
        else:
            base["planned_start_day"] = self.days[0].isoformat() if self.days else None
            base["leaked_files"] = self.leaked
            base["endpoint_files"] = self.endpoint
        return base
