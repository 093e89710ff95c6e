"""Chinese addresses: a division from the list, a road and a street number."""

from __future__ import annotations

import pytest

from molehunt.pii.engine import default_engine

CASES: list[tuple[str, list[tuple[str, str, str]]]] = [
    (
        "上海市浦东新区张杨路123弄4号1203室",
        [("china_address", "上海市浦东新区张杨路123弄4号1203室", "low")],
    ),
    (
        "住址：北京市海淀区中关村大街27号",
        [("china_address", "北京市海淀区中关村大街27号", "medium")],
    ),
    ("寄到杭州市西湖区文三路90号。", [("china_address", "杭州市西湖区文三路90号", "low")]),
    # No division from the list, or no street number.
    ("火星市某某区张杨路123号", []),
    ("上海市浦东新区张杨路", []),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_china_address_findings(text: str, expected: list[tuple[str, str, str]]) -> None:
    found = [(f.type, f.value, f.confidence) for f in default_engine().scan(text)]
    assert found == expected
