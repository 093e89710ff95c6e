"""The day-run scorer on what the random findings of ``test_score_history`` rarely
reach: one person with many groups of detectors whose named findings drop out when she
leaves (the order groups are added in changes); and every sum taken through Python's
own ``sum`` (what Python 3.12 on, whose ``sum`` compensates, is given)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_score_history import (
    BASE,
    PEOPLE,
    ZONE,
    detect,
    findings,
    found_on,
    new_store,
    reference,
)

from molehunt.detect import DetectionSettings, Finding
from molehunt.score import RiskRanker
from molehunt.score import days as scoring

#: E1 is named (a share) by E2's findings before having any of her own, then has
#: findings of four groups of detectors; she leaves on day 6, when the named ones drop
#: out and the order in which her groups are met changes.
MANY = [
    found_on(0, "out_of_scope", "E2", related=("E1",), severity=77, hour=1),
    found_on(0, "disallowed_category", "E2", related=("E1",), severity=31, hour=2),
    found_on(1, "bulk_read", "E1", severity=63, hour=3),
    found_on(1, "file_write", "E1", severity=91, hour=4),
    found_on(2, "volume_spike", "E1", severity=47, hour=5),
    found_on(3, "sustained_excess", "E1", severity=59, hour=6),
    found_on(3, "client_file", "E1", severity=13, hour=7),
    found_on(4, "out_of_scope", "E1", severity=29, hour=8),
    found_on(7, "unusual_client", "E1", severity=83, hour=9),
    found_on(8, "disallowed_category", "E2", related=("E1",), severity=97, hour=10),
]


def test_many_groups_and_a_leaver_score_as_day_by_day() -> None:
    s = DetectionSettings(related_share=0.37)
    store = new_store({"E1": (2, 5)})
    last = BASE + timedelta(days=12)
    detect(store, MANY, last)
    got = RiskRanker(store, s, ZONE).history(last, include_all=True)
    assert got == reference(store, s, last)
    e1 = [r for day in got for r in day["ranking"] if r["person_id"] == "E1"]
    assert len({len(r["reasons"]) for r in e1}) > 2


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    found=findings(),
    hr=st.dictionaries(
        st.sampled_from(PEOPLE),
        st.tuples(st.none() | st.integers(0, 12), st.none() | st.integers(0, 14)),
    ),
)
def test_sums_through_python_sum_score_the_same(
    found: list[Finding], hr: dict[str, tuple[int | None, int | None]]
) -> None:
    s = DetectionSettings()
    store = new_store(hr)
    last = BASE + timedelta(days=16)
    detect(store, found, last)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(scoring, "_PLAIN_SUM", False)
        got: Any = RiskRanker(store, s, ZONE).computed_history(BASE, last, None, True)
    expected = reference(store, s, last)
    assert [
        [RiskRanker(store, s, ZONE).row_json(r) for r in got.get(BASE + timedelta(days=i), [])]
        for i in range(len(expected))
    ] == [d["ranking"] for d in expected]
