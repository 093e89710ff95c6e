"""Departing person: activity during notice is watched; nobody else is."""

from __future__ import annotations

from datetime import date

from insurer import scenario


def test_reads_in_the_weeks_before_leaving_are_on_the_watch_list() -> None:
    found = scenario().of("departing_person", "E007")
    # 28 days before termination on 06-05 (notice 05-10 comes later).
    assert min(f.day for f in found) == date(2026, 5, 8)
    assert max(f.day for f in found) == date(2026, 5, 29)


def test_uploads_during_notice_weigh_more() -> None:
    (upload,) = scenario().of("departing_person", "E007", date(2026, 5, 18))
    (plain,) = scenario().of("departing_person", "E007", date(2026, 5, 12))
    assert upload.details["bytes_out"] > 0
    assert upload.severity > plain.severity


def test_only_departing_people() -> None:
    assert {f.person_id for f in scenario().of("departing_person")} == {"E007"}
