"""Chinese landlines: area code in use, subscriber length, separators."""

from __future__ import annotations

import pytest

from molehunt.pii.engine import default_engine

CASES: list[tuple[str, list[tuple[str, str, str]]]] = [
    ("021-62345678", [("china_landline", "021-62345678", "medium")]),
    ("电话 021-62345678", [("china_landline", "021-62345678", "high")]),
    ("0755-83456789", [("china_landline", "0755-83456789", "medium")]),
    ("02162345678", [("china_landline", "02162345678", "medium")]),
    # Which subscriber numbers an area code takes is phonenumbers' call: Shanghai's
    # have 8 digits and do not start with 0 (but may with 1).
    ("021-12345678", [("china_landline", "021-12345678", "medium")]),
    ("021-02345678", []),
    ("021-6234567", []),
    ("0216234567890", []),
    # Every common writing (issue 13).
    ("(021)63456789", [("china_landline", "(021)63456789", "medium")]),
    ("（021）63456789", [("china_landline", "(021)63456789", "medium")]),
    ("(0755) 83456789", [("china_landline", "(0755) 83456789", "medium")]),
    ("021 63456789", [("china_landline", "021 63456789", "medium")]),
    ("0755 83456789", [("china_landline", "0755 83456789", "medium")]),
    ("021 6345 6789", [("china_landline", "021 6345 6789", "medium")]),
    ("0771 523 4567", [("china_landline", "0771 523 4567", "medium")]),
    ("+86 10 6552 9988", [("china_landline", "+86 10 6552 9988", "medium")]),
    ("+86-21-63456789", [("china_landline", "+86-21-63456789", "medium")]),
    ("+862163456789", [("china_landline", "+862163456789", "medium")]),
    ("0086 21 63456789", [("china_landline", "0086 21 63456789", "medium")]),
    ("电话：0086-755-8345-6789", [("china_landline", "0086-755-8345-6789", "high")]),
    # A country code does not make a mobile or an unknown area code a landline.
    ("+86 21 0234 5678", []),
    ("(021)6345678", []),
    # Times and dates next to digits are no area code.
    ("2024-05-01 12:30:45 6345 6789", []),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_china_landline_findings(text: str, expected: list[tuple[str, str, str]]) -> None:
    found = [(f.type, f.value, f.confidence) for f in default_engine().scan(text)]
    assert found == expected
