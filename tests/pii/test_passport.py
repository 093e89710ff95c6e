"""Chinese passport numbers: shape only, so low unless a context word is near."""

from __future__ import annotations

import pytest

from molehunt.pii.engine import default_engine

CASES: list[tuple[str, list[tuple[str, str, str]]]] = [
    ("E12345678", [("passport", "E12345678", "low")]),
    ("G12345678", [("passport", "G12345678", "low")]),
    ("EA1234567", [("passport", "EA1234567", "low")]),
    ("护照号：E12345678", [("passport", "E12345678", "medium")]),
    ("Passport E12345678", [("passport", "E12345678", "medium")]),
    # Letters or digits around it, or I/O that passports do not use.
    ("AE12345678", []),
    ("E123456789", []),
    ("EI1234567", []),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_passport_findings(text: str, expected: list[tuple[str, str, str]]) -> None:
    found = [(f.type, f.value, f.confidence) for f in default_engine().scan(text)]
    assert found == expected
