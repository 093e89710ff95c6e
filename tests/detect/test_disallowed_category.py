"""Disallowed category: tunnels to an IM site fire; allowed shopping and news do not."""

from __future__ import annotations

from datetime import date

import pytest
from insurer import scenario


@pytest.mark.parametrize(
    ("person", "day"), [("E007", date(2026, 5, 19)), ("E005", date(2026, 5, 20))]
)
def test_upload_to_a_disallowed_category_is_flagged(person: str, day: date) -> None:
    (finding,) = scenario().of("disallowed_category", person, day)
    assert finding.details["categories"] == ["im"]
    assert finding.details["bytes_out"] >= 4_000_000


def test_allowed_categories_are_not_flagged() -> None:
    assert {f.person_id for f in scenario().of("disallowed_category")} == {"E005", "E007"}
