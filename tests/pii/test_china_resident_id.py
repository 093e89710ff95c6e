"""China resident ID numbers: region, birth date, MOD 11-2 check, boundaries."""

from __future__ import annotations

import pytest

from molehunt.pii.engine import default_engine

CASES: list[tuple[str, list[tuple[str, str, str]]]] = [
    # Valid, alone: checksum -> medium; with a context word -> high.
    ("11010519491231002X", [("china_resident_id", "11010519491231002X", "medium")]),
    ("身份证号：11010519491231002X", [("china_resident_id", "11010519491231002X", "high")]),
    ("id number 11010519491231002x", [("china_resident_id", "11010519491231002x", "high")]),
    # Full-width digits fold to ASCII (NFKC).
    (
        "１１０１０５１９４９１２３１００２Ｘ",
        [("china_resident_id", "11010519491231002X", "medium")],
    ),
    # Next to Chinese characters (where a word boundary fails).
    ("北京11010519491231002X号", [("china_resident_id", "11010519491231002X", "medium")]),
    # Old 15-digit form: region and date.
    ("110105491231002", [("china_resident_id", "110105491231002", "medium")]),
    # Wrong check digit, unknown region, impossible date, future birth: nothing.
    ("110105194912310021", []),
    ("99010519491231002X", []),
    ("110105194902301234", []),
    ("110105209912310011", []),
    # Inside a longer digit run: not an ID.
    ("011010519491231002X", []),
    ("11010519491231002X5", []),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_china_resident_id_findings(text: str, expected: list[tuple[str, str, str]]) -> None:
    found = [(f.type, f.value, f.confidence) for f in default_engine().scan(text)]
    assert found == expected
