"""Shared outside endpoint: a few people on one endpoint, where the company's endpoints
are rarely shared that much."""

from __future__ import annotations

from insurer import scenario
from upload_world import LAST, RING, detect, upload_world

from molehunt.config import DetectionSettings

ENDPOINT = RING.removeprefix("http://")


def test_two_people_on_an_endpoint_nobody_else_shares_are_a_ring() -> None:
    found = [f for f in detect(upload_world(), ("shared_endpoint",)) if f.day == LAST]
    assert sorted((f.person_id, f.related) for f in found) == [
        ("E001", ("E002",)),
        ("E002", ("E001",)),
    ]
    assert all(f.details["endpoint"] == ENDPOINT for f in found)
    assert all(f.details["bits"] >= DetectionSettings().ring_min_bits for f in found)


def test_where_colleagues_commonly_share_endpoints_two_on_one_are_ordinary() -> None:
    found = detect(upload_world(shared_pairs=True), ("shared_endpoint",))
    assert not [f for f in found if f.details["endpoint"] == ENDPOINT]


def test_the_popular_shop_is_no_ring() -> None:
    found = detect(upload_world(), ("shared_endpoint",))
    assert all("im.shop.example.cn" not in f.details["endpoint"] for f in found)


def test_a_tiny_world_says_nothing_about_how_endpoints_are_shared() -> None:
    assert not scenario().of("shared_endpoint")
