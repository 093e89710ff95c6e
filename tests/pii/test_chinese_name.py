"""Chinese names in text: after a label, with a common surname."""

from __future__ import annotations

import pytest

from molehunt.pii.engine import default_engine

CASES: list[tuple[str, list[tuple[str, str, str]]]] = [
    ("姓名：王小明", [("chinese_name", "王小明", "medium")]),
    ("联系人 欧阳娜娜", [("chinese_name", "欧阳娜娜", "medium")]),
    ("投保人张伟", [("chinese_name", "张伟", "medium")]),
    # No label, or no common surname after it.
    ("王小明", []),
    ("姓名：某某", []),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_chinese_name_findings(text: str, expected: list[tuple[str, str, str]]) -> None:
    found = [(f.type, f.value, f.confidence) for f in default_engine().scan(text)]
    assert found == expected
