"""Sustained excess: low and slow is caught within a few days; campaign weeks are not."""

from __future__ import annotations

from datetime import date

import pytest
from insurer import scenario

QUIET = [
    ("E003", "campaign week with the rest of the team"),
    ("E009", "her own short client list"),
    ("E006", "one review day"),
]


def test_low_and_slow_reading_is_flagged_within_four_working_days() -> None:
    found = scenario().of("sustained_excess", "E008")
    # Started Monday 05-11 at 20 reads a day against his own 6: the third such day
    # (05-13) makes it sustained.
    assert min(f.day for f in found) == date(2026, 5, 13)
    assert found[0].details["excess_days"] >= 3
    assert found[0].details["own_median"] == 6


def test_excess_accumulates() -> None:
    found = sorted(scenario().of("sustained_excess", "E008"), key=lambda f: f.day)
    assert found[-2].details["excess_reads"] >= found[0].details["excess_reads"]


@pytest.mark.parametrize(("person", "case"), QUIET)
def test_benign_reading_is_not_sustained_excess(person: str, case: str) -> None:
    assert not scenario().of("sustained_excess", person), case
