"""Bulk and enumerating reads: id ranges and night COPY fire; the nightly ETL does not."""

from __future__ import annotations

from datetime import date

import pytest
from insurer import scenario

FIRES = [
    ("E001", date(2026, 5, 6), {"enumerating", "big"}),
    ("E005", date(2026, 5, 20), {"copy", "night"}),
]
QUIET = [
    ("E006", "the auditor's many small searches"),
    ("E008", "low and slow: small searches"),
    ("E007", "an export of 60 rows in working hours"),
]


@pytest.mark.parametrize(("person", "day", "how"), FIRES)
def test_bulk_reads_are_flagged_with_how(person: str, day: date, how: set[str]) -> None:
    (finding,) = scenario().of("bulk_read", person, day)
    assert how <= set(finding.details["how"])


def test_night_copy_is_more_severe_than_a_daytime_range_read() -> None:
    (night,) = scenario().of("bulk_read", "E005", date(2026, 5, 20))
    (day,) = scenario().of("bulk_read", "E001", date(2026, 5, 6))
    assert night.severity > day.severity


@pytest.mark.parametrize(("person", "case"), QUIET)
def test_ordinary_reads_are_not_bulk(person: str, case: str) -> None:
    assert not scenario().of("bulk_read", person), case


def test_nightly_etl_copy_is_not_flagged() -> None:
    assert not [f for f in scenario().of("bulk_read") if f.host == "etl-01"]
    assert {f.person_id for f in scenario().of("bulk_read")} == {"E001", "E002", "E005"}
