"""The truth a world records: a planted case starts when its actor was at work."""

from __future__ import annotations

from datetime import date

from molehunt.simulate.company import DEPARTMENTS, Person
from molehunt.simulate.scenarios import SCENARIOS


def _sales(leave: set[date]) -> Person:
    sales = next(d for d in DEPARTMENTS if d.role == "sales")
    return Person(
        index=1,
        employee_id="E1",
        name="张伟",
        login="zhang.wei",
        department=sales,
        title="Sales Agent",
        role="sales",
        branch=0,
        team=0,
        manager=None,
        hire_date=date(2025, 1, 6),
        leave_days=leave,
    )


def test_a_case_whose_actor_is_away_at_first_starts_on_their_first_day_back() -> None:
    case = SCENARIOS["low_and_slow"]()
    person = _sales({date(2026, 3, 16), date(2026, 3, 17)})
    case.people = [person]
    case.days = [date(2026, 3, d) for d in range(16, 21)]
    assert [d for d in case.days if case.active(person, d)] == case.days[2:]
    truth = case.truth(1)
    assert truth["start_day"] == "2026-03-18"
    assert truth["planned_start_day"] == "2026-03-16"


def test_a_case_whose_actor_is_at_work_starts_as_planned() -> None:
    case = SCENARIOS["low_and_slow"]()
    person = _sales(set())
    case.people = [person]
    case.days = [date(2026, 3, d) for d in range(16, 21)]
    assert all(case.active(person, d) for d in case.days)
    assert case.truth(1)["start_day"] == case.truth(1)["planned_start_day"] == "2026-03-16"
