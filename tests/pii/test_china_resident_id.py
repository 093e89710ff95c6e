"""China resident ID numbers: region, birth date, MOD 11-2 check, boundaries."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest

from molehunt.pii.engine import default_engine
from molehunt.pii.recognizers.china_resident_id import valid_dates

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


@pytest.mark.parametrize(
    ("year", "month", "day", "valid"),
    [
        (2000, 2, 29, True),  # leap year
        (1900, 2, 29, False),  # century, not leap
        (2023, 2, 29, False),
        (1949, 12, 31, True),
        (1949, 4, 31, False),
        (1949, 13, 1, False),
        (1949, 0, 1, False),
        (1949, 1, 0, False),
        (1949, 1, 32, False),
        (1799, 6, 1, True),  # outside the table: computed
        (2100, 1, 1, False),  # future
    ],
)
def test_birth_dates_by_table_and_by_calendar_agree(
    year: int, month: int, day: int, valid: bool
) -> None:
    # Mixed with in-table dates so that both paths run in one call.
    years = np.array([year, 1990], dtype=np.int64)
    months = np.array([month, 5], dtype=np.int64)
    days = np.array([day, 17], dtype=np.int64)
    assert valid_dates(years, months, days).tolist() == [valid, True]


def test_birth_today_is_valid_and_tomorrow_is_not() -> None:
    today = date.today()
    tomorrow = today + timedelta(days=1)
    years = np.array([today.year, tomorrow.year], dtype=np.int64)
    months = np.array([today.month, tomorrow.month], dtype=np.int64)
    days = np.array([today.day, tomorrow.day], dtype=np.int64)
    assert valid_dates(years, months, days).tolist() == [True, False]
