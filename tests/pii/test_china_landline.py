"""Chinese landlines: area code in use, subscriber length, separators."""

from __future__ import annotations

import pytest

from molehunt.pii.engine import default_engine

CASES: list[tuple[str, list[tuple[str, str, str]]]] = [
    ("021-62345678", [("china_landline", "021-62345678", "medium")]),
    ("电话 021-62345678", [("china_landline", "021-62345678", "high")]),
    ("0755-83456789", [("china_landline", "0755-83456789", "medium")]),
    ("02162345678", [("china_landline", "02162345678", "medium")]),
    # Subscriber numbers do not start with 0 or 1; Shanghai numbers have 8 digits.
    ("021-12345678", []),
    ("021-6234567", []),
    ("0216234567890", []),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_china_landline_findings(text: str, expected: list[tuple[str, str, str]]) -> None:
    found = [(f.type, f.value, f.confidence) for f in default_engine().scan(text)]
    assert found == expected
