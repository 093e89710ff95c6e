"""Bank card numbers: Luhn, issuer prefix and length."""

from __future__ import annotations

import pytest

from molehunt.pii.engine import default_engine

CASES: list[tuple[str, list[tuple[str, str, str]]]] = [
    ("6222021234567890128", [("bank_card", "6222021234567890128", "medium")]),
    ("卡号 6222021234567890128", [("bank_card", "6222021234567890128", "high")]),
    ("4111111111111111", [("bank_card", "4111111111111111", "medium")]),
    ("4111-1111-1111-1111", [("bank_card", "4111-1111-1111-1111", "medium")]),
    ("5500000000000004", [("bank_card", "5500000000000004", "medium")]),
    # Luhn fails, or an issuer that does not issue this length.
    ("4111111111111112", []),
    ("41111111111111111", []),
    ("7111111111111114", []),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_bank_card_findings(text: str, expected: list[tuple[str, str, str]]) -> None:
    found = [(f.type, f.value, f.confidence) for f in default_engine().scan(text)]
    assert found == expected
