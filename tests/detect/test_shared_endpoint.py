"""Shared outside endpoint: two salesmen uploading to one shop's chat are a ring."""

from __future__ import annotations

from datetime import date

import pytest
from insurer import SHOP_CHAT, scenario

ENDPOINT = SHOP_CHAT.removeprefix("http://")


@pytest.mark.parametrize(("person", "other"), [("E001", "E002"), ("E002", "E001")])
def test_two_people_uploading_to_one_shop_chat_are_a_ring(person: str, other: str) -> None:
    (finding,) = scenario().of("shared_endpoint", person, date(2026, 5, 7))
    assert finding.details["endpoint"] == ENDPOINT
    assert finding.related == (other,)


def test_the_first_uploader_alone_is_not_yet_a_ring() -> None:
    assert not scenario().of("shared_endpoint", "E001", date(2026, 5, 6))


def test_different_shops_and_tunnels_are_not_rings() -> None:
    assert {f.person_id for f in scenario().of("shared_endpoint")} == {"E001", "E002"}
