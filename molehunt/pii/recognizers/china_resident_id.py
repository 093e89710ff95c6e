"""China resident identity card numbers (GB 11643)."""

from __future__ import annotations

from datetime import date
from functools import cache
from typing import ClassVar

import numpy as np
import numpy.typing as npt

from molehunt.pii.recognizers._divisions import divisions
from molehunt.pii.recognizers.base import (
    BaseRecognizer,
    Mask,
    Matrix,
    Pattern,
    digits_of,
    number_of,
)

_MONTH_DAY = "(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])"
WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)
CHECK_CHARS = np.frombuffer(b"10X98765432", dtype=np.uint8)


@cache
def region_table() -> Mask:
    """Six-digit region codes accepted in an ID number, as a lookup table."""
    table = np.zeros(1_000_000, dtype=np.bool_)
    prefectures = np.zeros(10_000, dtype=np.bool_)
    for code, _name in divisions():
        table[int(code)] = True
        if not code.endswith("00"):
            prefectures[int(code[:4])] = True
    # Counties merged away since: the number outlives them within a known prefecture.
    codes = np.arange(1_000_000)
    table |= prefectures[codes // 100] & (codes % 100 != 0)
    return table


#: Years of birth the date table covers (others are computed).
_YEARS = (1800, 2100)


@cache
def _date_table(today: date) -> Mask:
    """``valid_dates`` of every (year, month 1-12, day 1-31) in ``_YEARS``."""
    year, month, day = np.meshgrid(
        np.arange(*_YEARS), np.arange(1, 13), np.arange(1, 32), indexing="ij"
    )
    out: Mask = _compute_dates(year.ravel(), month.ravel(), day.ravel(), today)
    return out


def valid_dates(
    year: npt.NDArray[np.int64], month: npt.NDArray[np.int64], day: npt.NDArray[np.int64]
) -> Mask:
    """Real calendar dates, not in the future."""
    today = date.today()
    years = (year >= _YEARS[0]) & (year < _YEARS[1])
    shape = (month >= 1) & (month <= 12) & (day >= 1) & (day <= 31)
    # One lookup instead of datetime arithmetic per candidate.
    out: Mask = years & shape
    index = ((year[out] - _YEARS[0]) * 12 + month[out] - 1) * 31 + day[out] - 1
    out[out] = _date_table(today)[index]
    other = shape & ~years
    if other.any():
        out[other] = _compute_dates(year[other], month[other], day[other], today)
    return out


def _compute_dates(
    year: npt.NDArray[np.int64],
    month: npt.NDArray[np.int64],
    day: npt.NDArray[np.int64],
    today: date,
) -> Mask:
    ok = (month >= 1) & (month <= 12) & (day >= 1)
    safe_month = np.where(ok, month, 1)
    first = (year - 1970).astype("datetime64[Y]").astype("datetime64[M]") + (safe_month - 1)
    days_in_month = ((first + 1).astype("datetime64[D]") - first.astype("datetime64[D]")).astype(
        np.int64
    )
    born = first.astype("datetime64[D]") + (np.minimum(day, 31) - 1)
    out: Mask = ok & (day <= days_in_month) & (born <= np.datetime64(today, "D"))
    return out


class ChinaResidentIdRecognizer(BaseRecognizer):
    """China resident ID number: 18 characters with region, birth date and MOD 11-2
    check character (or the old 15-digit form with region and birth date)."""

    name: ClassVar[str] = "china_resident_id"
    description: ClassVar[str] = "China resident identity card number (GB 11643)"
    patterns: ClassVar[tuple[Pattern, ...]] = (
        Pattern(f"[1-9][0-9]{{5}}(?:18|19|20)[0-9]{{2}}{_MONTH_DAY}[0-9]{{3}}[0-9Xx]", width=18),
        Pattern(f"[1-9][0-9]{{5}}[0-9]{{2}}{_MONTH_DAY}[0-9]{{3}}", width=15),
    )
    context: ClassVar[tuple[str, ...]] = (
        "身份证", "证件号", "证件号码", "身份证号", "公民身份", "ID", "ID card", "id number",
        "id_number", "identity",
    )  # fmt: skip
    header_words: ClassVar[tuple[str, ...]] = (
        "身份证", "证件号", "id_number", "id_no", "id_card", "cert_no", "idcard",
    )  # fmt: skip
    checksum: ClassVar[bool] = True
    normalizer: ClassVar[str] = "id_number"

    def validate(self, pattern: int, values: Matrix | list[bytes]) -> Mask:
        assert isinstance(values, np.ndarray)
        if len(values) == 0:
            return np.zeros(0, dtype=np.bool_)
        if pattern == 0:
            digits = values[:, :17].astype(np.int64) - 0x30
            year = number_of(digits, 6, 10)
            month, day = number_of(digits, 10, 12), number_of(digits, 12, 14)
            expected = CHECK_CHARS[(digits @ WEIGHTS) % 11]
            last = np.where(values[:, 17] == ord("x"), ord("X"), values[:, 17])
            check = expected == last
        else:
            digits = digits_of(values)
            year = 1900 + number_of(digits, 6, 8)
            month, day = number_of(digits, 8, 10), number_of(digits, 10, 12)
            check = np.ones(len(values), dtype=np.bool_)
        region = region_table()[number_of(digits, 0, 6)]
        out: Mask = region & valid_dates(year, month, day) & check
        return out
