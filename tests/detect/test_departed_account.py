"""Departed account in use: the founding case fires; living people's accounts do not."""

from __future__ import annotations

from datetime import date

import pytest
from insurer import scenario

FIRES = [
    ("E001", date(2026, 5, 6), "resigned account used from his sales PC, first day"),
    ("E001", date(2026, 5, 15), "the same, last day"),
    ("E002", date(2026, 5, 7), "the second salesman of the ring"),
]
QUIET = [
    ("E005", "the DBA's own account"),
    ("E003", "an ordinary sales person"),
    ("E006", "the auditor in review week"),
    ("E009", "whose CRM account was shared, but who is still employed"),
]


@pytest.mark.parametrize(("person", "day", "case"), FIRES)
def test_resigned_account_in_use_is_flagged(person: str, day: date, case: str) -> None:
    (finding,) = scenario().of("departed_account", person, day)
    assert finding.account == "resigned_agent", case
    assert finding.related == ("E004",), "names the departed owner too"
    assert finding.details["termination_date"] == "2026-04-30"


@pytest.mark.parametrize(("person", "case"), QUIET)
def test_accounts_of_employed_people_are_not_flagged(person: str, case: str) -> None:
    assert not scenario().of("departed_account", person), case


def test_severity_rises_with_rows_read() -> None:
    (finding,) = scenario().of("departed_account", "E001", date(2026, 5, 6))
    assert finding.details["rows"] == 3000
    assert finding.severity == 100


def test_nothing_before_the_account_is_used() -> None:
    assert all(f.day >= date(2026, 5, 6) for f in scenario().of("departed_account"))
