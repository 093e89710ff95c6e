"""Volume against self and peers: spikes fire; campaign week and review week do not."""

from __future__ import annotations

from datetime import date

import pytest
from insurer import scenario, workdays

QUIET = [
    ("E006", "the auditor's review of 1,000 records (alone in her peer group)"),
    ("E008", "low and slow: about 3x, never a spike"),
    ("E009", "her own short client list"),
    ("E003", "campaign week: the whole team reads 3x"),
]


def test_three_thousand_rows_against_a_median_of_thirty_is_a_spike() -> None:
    (finding,) = scenario().of("volume_spike", "E001", date(2026, 5, 6))
    assert finding.details["rows"] == 3030
    assert finding.details["own_median"] == 30
    assert finding.details["peer_median"] == 30
    assert finding.details["history_days"] >= 5


@pytest.mark.parametrize(("person", "case"), QUIET)
def test_benign_volumes_are_not_spikes(person: str, case: str) -> None:
    assert not scenario().of("volume_spike", person), case


def test_campaign_week_raises_no_one() -> None:
    days = set(workdays(date(2026, 5, 25), 3))
    assert not [f for f in scenario().of("volume_spike") if f.day in days]
