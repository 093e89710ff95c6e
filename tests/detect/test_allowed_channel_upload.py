"""Uploads through allowed channels: chat multipart after a bulk read fires strongest."""

from __future__ import annotations

from datetime import date

import pytest
from insurer import scenario


def test_chat_upload_after_bulk_read_is_flagged_strongly() -> None:
    (finding,) = scenario().of("allowed_channel_upload", "E001", date(2026, 5, 6))
    assert "multipart upload to a chat endpoint" in finding.details["how"]
    assert finding.details["bulk_reads_before"] == 1
    assert finding.severity >= 90


def test_large_shop_upload_without_bulk_read_is_weaker() -> None:
    (finding,) = scenario().of("allowed_channel_upload", "E007", date(2026, 5, 18))
    assert finding.details["bulk_reads_before"] == 0
    assert finding.severity < 90


@pytest.mark.parametrize(
    ("person", "case"),
    [("E003", "one 1 MB review photo"), ("E009", "news only"), ("E006", "no uploads")],
)
def test_small_or_no_uploads_are_not_flagged(person: str, case: str) -> None:
    assert not scenario().of("allowed_channel_upload", person), case
