"""Uploads through allowed channels: surprising for the destination and the person."""

from __future__ import annotations

import pytest
from insurer import scenario
from upload_world import LAST, STAFF, detect, upload_world

from molehunt.detect import DetectionSettings, Finding
from molehunt.detect.surprise import tail_bits


@pytest.fixture(scope="module")
def found() -> list[Finding]:
    return detect(upload_world(), ("allowed_channel_upload",))


def test_a_day_far_above_the_destination_and_ones_own_days_is_a_finding(
    found: list[Finding],
) -> None:
    (finding,) = [f for f in found if f.day == LAST]
    assert finding.person_id == "E008"
    assert finding.details["bits"] >= DetectionSettings().upload_min_bits
    assert finding.details["uploaders_at_site"] == len(STAFF)
    assert "percentile of upload days there" in finding.title
    assert "of this person's" in finding.title
    assert finding.event_ids


def test_everyday_photos_to_a_popular_shop_are_no_finding(found: list[Finding]) -> None:
    assert [f.person_id for f in found] == ["E008"]


def test_an_upload_to_the_companys_own_site_is_no_upload_out() -> None:
    """E009's 60 MB to the company's own site (category ``internal``) would be the
    largest upload of all; it never leaves the company, so no upload detector sees it."""
    names = ("allowed_channel_upload", "shared_endpoint", "departing_person")
    assert "E009" not in {f.person_id for f in detect(upload_world(), names)}


def test_the_tiny_worlds_few_uploads_say_nothing_is_unusual() -> None:
    # A 5 MB tunnel among a handful of uploads cannot be told from the usual.
    assert not scenario().of("allowed_channel_upload")


def test_tail_bits() -> None:
    assert tail_bits(0, 0) == 0
    assert tail_bits(0, 1023) == pytest.approx(10)
    assert tail_bits(511, 1023) == pytest.approx(1)
