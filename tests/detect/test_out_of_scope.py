"""Out of scope: exports of other portfolios fire; one's own list and the auditor do not."""

from __future__ import annotations

from datetime import date

import pytest
from insurer import scenario

QUIET = [
    ("E009", "her own short client list, every day"),
    ("E008", "reads a lot, but only his own clients"),
    ("E006", "the auditor reads across portfolios by design (owns none)"),
]


@pytest.mark.parametrize("day", [date(2026, 5, 18), date(2026, 5, 19)])
def test_departing_person_exporting_other_portfolios_is_flagged(day: date) -> None:
    (finding,) = scenario().of("out_of_scope", "E007", day)
    assert finding.details["clients"] == 50
    assert finding.details["portfolios"] == 5


@pytest.mark.parametrize(("person", "case"), QUIET)
def test_reads_within_scope_are_not_flagged(person: str, case: str) -> None:
    assert not scenario().of("out_of_scope", person), case
