"""China resident ID numbers: region, birth date, MOD 11-2 check, boundaries."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

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
    # Wrong check digit, unknown region, impossible date: nothing.
    ("110105194912310021", []),
    ("99010519491231002X", []),
    ("110105194902301234", []),
    # Region codes retired long ago (stdnum's doctest; Chongqing's before 1997).
    ("412723199010050012", [("china_resident_id", "412723199010050012", "medium")]),
    ("513100195405020749", [("china_resident_id", "513100195405020749", "medium")]),
    # Residence permits of Hong Kong, Macau and Taiwan residents (id-validator's).
    ("810000199408230021", [("china_resident_id", "810000199408230021", "medium")]),
    ("830000199201300022", [("china_resident_id", "830000199201300022", "medium")]),
    # Unlikely births: in the future, before 1900, after the code was retired
    # (110103 Chongwen until 2010): low whatever the context.
    ("110105209912310010", [("china_resident_id", "110105209912310010", "low")]),
    ("身份证：110105185012310011", [("china_resident_id", "110105185012310011", "low")]),
    ("110103201501010014", [("china_resident_id", "110103201501010014", "low")]),
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


#: A valid ID number (Gansu, 620102) that also passes Luhn on a UnionPay prefix.
ID_AND_CARD = "620102199907067807"


@pytest.mark.parametrize(
    "text",
    [ID_AND_CARD, f"身份证号：{ID_AND_CARD}", f"id_no={ID_AND_CARD}", f"证件号 {ID_AND_CARD}"],
)
def test_a_valid_id_that_passes_luhn_is_an_id_never_a_card(text: str) -> None:
    found = [(f.type, f.value) for f in default_engine().scan(text)]
    assert found == [("china_resident_id", ID_AND_CARD)]


def test_a_valid_id_that_passes_luhn_in_an_id_column_is_an_id(tmp_path: Path) -> None:
    from molehunt.pii.files import scan_file

    path = tmp_path / "clients.csv"
    path.write_text(f"姓名,身份证号\n张伟,{ID_AND_CARD}\n李娜,412723199010050012\n")
    result = scan_file(path, detail=True)
    ids = [(d.type, d.confidence) for d in result.details if d.type != "chinese_name"]
    assert ids == [("china_resident_id", "high")] * 2


def test_an_unlikely_birth_stays_low_in_an_id_column(tmp_path: Path) -> None:
    from molehunt.pii.files import scan_file

    path = tmp_path / "clients.csv"
    path.write_text("身份证号\n110105185012310011\n")
    result = scan_file(path, detail=True)
    assert [(d.type, d.confidence) for d in result.details] == [("china_resident_id", "low")]
    assert not result.confident
