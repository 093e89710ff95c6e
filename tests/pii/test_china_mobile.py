"""Chinese mobile numbers: allocated prefixes, grouping, +86, boundaries."""

from __future__ import annotations

import pytest

from molehunt.pii.engine import default_engine

CASES: list[tuple[str, list[tuple[str, str, str]]]] = [
    ("13800138000", [("china_mobile", "13800138000", "medium")]),
    ("手机：13800138000", [("china_mobile", "13800138000", "high")]),
    ("mobile: 13800138000", [("china_mobile", "13800138000", "high")]),
    ("+8613800138000", [("china_mobile", "+8613800138000", "medium")]),
    ("138-0013-8000", [("china_mobile", "138-0013-8000", "medium")]),
    ("138 0013 8000", [("china_mobile", "138 0013 8000", "medium")]),
    ("联系我13800138000谢谢", [("china_mobile", "13800138000", "medium")]),
    ("１３８００１３８０００", [("china_mobile", "13800138000", "medium")]),
    # With the country code in every writing: one finding, the whole number.
    ("0086 13800138000", [("china_mobile", "0086 13800138000", "medium")]),
    ("008613800138000", [("china_mobile", "008613800138000", "medium")]),
    ("+86 138 0013 8000", [("china_mobile", "+86 138 0013 8000", "medium")]),
    ("+86-138-0013-8000", [("china_mobile", "+86-138-0013-8000", "medium")]),
    ("0086-138-0013-8000", [("china_mobile", "0086-138-0013-8000", "medium")]),
    ("电话：+86 13800138000", [("china_mobile", "+86 13800138000", "high")]),
    # 1740 0 to 1740 5 are mobiles, 1740 6 on are not (phonenumbers' five digits).
    ("17405234567", [("china_mobile", "17405234567", "medium")]),
    ("17406234567", []),
    # Not allocated (12x), too long, part of a longer number.
    ("12800138000", []),
    ("138001380001", []),
    ("913800138000", []),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_china_mobile_findings(text: str, expected: list[tuple[str, str, str]]) -> None:
    found = [(f.type, f.value, f.confidence) for f in default_engine().scan(text)]
    assert found == expected
