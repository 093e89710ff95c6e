"""China resident identity card numbers (GB 11643)."""

from __future__ import annotations

from datetime import date
from functools import cache
from typing import ClassVar

import numpy as np
import numpy.typing as npt

from molehunt.pii.recognizers._divisions import divisions
from molehunt.pii.recognizers._region_codes import REGIONS
from molehunt.pii.recognizers.base import (
    BaseRecognizer,
    Mask,
    Matrix,
    Pattern,
    digits_of,
    number_of,
)

MONTH_DAY = "(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])"
WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)
CHECK_CHARS = np.frombuffer(b"10X98765432", dtype=np.uint8)


#: Region codes of residence permits for Hong Kong, Macau and Taiwan residents
#: (810000, 820000, 830000: 18 digits, same check character), issued since 2018
#: whatever the holder's birth year.
PERMIT_REGIONS = ("810000", "820000", "830000")
#: ``region_last_year`` of a code still in use.
OPEN = 9999


@cache
def region_last_year() -> npt.NDArray[np.int16]:
    """Per six-digit code, the last year it was in use (``OPEN``: still is; 0: never
    a code). Every code of the historical list counts (python-stdnum's ``cn/loc.dat``,
    see ``_region_codes``), plus the 2020 list's and the residence permits'."""
    table = np.zeros(1_000_000, dtype=np.int16)
    for item in REGIONS.split():
        code, _, periods = item.partition(":")
        last = periods.rsplit("-", 1)[1] if periods else ""
        table[int(code)] = int(last) if last else OPEN
    for code, _name in divisions():  # the few the 2020 list has and stdnum's lacks
        if table[int(code)] == 0:
            table[int(code)] = OPEN
    for code in PERMIT_REGIONS:
        table[int(code)] = OPEN
    return table


@cache
def region_table() -> Mask:
    """Six-digit region codes accepted in an ID number, as a lookup table: every code
    that was ever in use (people keep the number they were given for life)."""
    out: Mask = region_last_year() > 0
    return out


#: Years of birth the date table covers (others are computed).
_YEARS = (1800, 2100)
#: Births before this year are at most low confidence (a typo more likely than a
#: client born in the 19th century).
FIRST_LIKELY_YEAR = 1900


@cache
def _date_table() -> Mask:
    """``real_dates`` of every (year, month 1-12, day 1-31) in ``_YEARS``."""
    year, month, day = np.meshgrid(
        np.arange(*_YEARS), np.arange(1, 13), np.arange(1, 32), indexing="ij"
    )
    out: Mask = _compute_dates(year.ravel(), month.ravel(), day.ravel())
    return out


def real_dates(
    year: npt.NDArray[np.int64], month: npt.NDArray[np.int64], day: npt.NDArray[np.int64]
) -> Mask:
    """Real calendar dates (February 29th in leap years only), past or future."""
    years = (year >= _YEARS[0]) & (year < _YEARS[1])
    shape = (month >= 1) & (month <= 12) & (day >= 1) & (day <= 31)
    # One lookup instead of datetime arithmetic per candidate.
    out: Mask = years & shape
    index = ((year[out] - _YEARS[0]) * 12 + month[out] - 1) * 31 + day[out] - 1
    out[out] = _date_table()[index]
    other = shape & ~years
    if other.any():
        out[other] = _compute_dates(year[other], month[other], day[other])
    return out


def future_dates(
    year: npt.NDArray[np.int64], month: npt.NDArray[np.int64], day: npt.NDArray[np.int64]
) -> Mask:
    """Dates after today (of dates already known real)."""
    today = date.today()
    out: Mask = (year * 10_000 + month * 100 + day) > (
        today.year * 10_000 + today.month * 100 + today.day
    )
    return out


def valid_dates(
    year: npt.NDArray[np.int64], month: npt.NDArray[np.int64], day: npt.NDArray[np.int64]
) -> Mask:
    """Real calendar dates, not in the future."""
    out: Mask = real_dates(year, month, day) & ~future_dates(year, month, day)
    return out


def _compute_dates(
    year: npt.NDArray[np.int64], month: npt.NDArray[np.int64], day: npt.NDArray[np.int64]
) -> Mask:
    ok = (month >= 1) & (month <= 12) & (day >= 1)
    safe_month = np.where(ok, month, 1)
    first = (year - 1970).astype("datetime64[Y]").astype("datetime64[M]") + (safe_month - 1)
    days_in_month = ((first + 1).astype("datetime64[D]") - first.astype("datetime64[D]")).astype(
        np.int64
    )
    out: Mask = ok & (day <= days_in_month)
    return out


def unlikely_births(
    year: npt.NDArray[np.int64],
    month: npt.NDArray[np.int64],
    day: npt.NDArray[np.int64],
    region: npt.NDArray[np.int64] | None = None,
) -> Mask:
    """Real birth dates an ID number is unlikely to hold: before 1900, in the future,
    or after its region code was retired (a number is given at birth or later, and
    only from codes in use: a code introduced after the birth is normal, since the
    first cards of 1984 and every move since gave numbers from the codes of the day)."""
    out: Mask = (year < FIRST_LIKELY_YEAR) | future_dates(year, month, day)
    if region is not None:
        out |= year > region_last_year()[region]
    return out


#: The 18-character layout: region, birth date (years 1800-2099), sequence, check.
ID18 = f"[1-9][0-9]{{5}}(?:18|19|20)[0-9]{{2}}{MONTH_DAY}[0-9]{{3}}[0-9Xx]"


def check_ok(values: Matrix) -> Mask:
    """Whether the 18th character of each row is the MOD 11-2 check of the first 17
    digits (``x`` read as ``X``)."""
    digits = values[:, :17].astype(np.int64) - 0x30
    expected = CHECK_CHARS[(digits @ WEIGHTS) % 11]
    last = np.where(values[:, 17] == ord("x"), ord("X"), values[:, 17])
    out: Mask = expected == last
    return out


class ChinaResidentIdRecognizer(BaseRecognizer):
    """China resident ID number: 18 characters with region, birth date and MOD 11-2
    check character (or the old 15-digit form with region and birth date). Every
    region code used since 1980 counts, and the residence permits of Hong Kong,
    Macau and Taiwan residents (81, 82, 83). Unlikely birth dates (before 1900, in
    the future, after the region code was retired) are low confidence at most."""

    name: ClassVar[str] = "china_resident_id"
    description: ClassVar[str] = "China resident identity card number (GB 11643)"
    patterns: ClassVar[tuple[Pattern, ...]] = (
        Pattern(ID18, width=18),
        Pattern(f"[1-9][0-9]{{5}}[0-9]{{2}}{MONTH_DAY}[0-9]{{3}}", width=15),
    )
    context: ClassVar[tuple[str, ...]] = (
        "身份证", "证件号", "证件号码", "身份证号", "公民身份", "居住证", "ID", "ID card",
        "id number", "id_number", "identity",
    )  # fmt: skip
    header_words: ClassVar[tuple[str, ...]] = (
        "身份证", "证件号", "居住证", "id_number", "id_no", "id_card", "cert_no", "idcard",
    )  # fmt: skip
    checksum: ClassVar[bool] = True
    normalizer: ClassVar[str] = "id_number"

    def validate(self, pattern: int, values: Matrix | list[bytes]) -> Mask:
        assert isinstance(values, np.ndarray)
        if len(values) == 0:
            return np.zeros(0, dtype=np.bool_)
        region, year, month, day = self._parts(pattern, values)
        out: Mask = region_table()[region] & real_dates(year, month, day)
        if pattern == 0:
            out &= check_ok(values)
        return out

    def doubtful(self, pattern: int, values: Matrix | list[bytes]) -> Mask | None:
        assert isinstance(values, np.ndarray)
        region, year, month, day = self._parts(pattern, values)
        return unlikely_births(year, month, day, region)

    @staticmethod
    def _parts(
        pattern: int, values: Matrix
    ) -> tuple[
        npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]
    ]:
        """Region code, birth year, month and day of each row."""
        digits = values[:, :14].astype(np.int64) - 0x30 if pattern == 0 else digits_of(values)
        if pattern == 0:
            year = number_of(digits, 6, 10)
            month, day = number_of(digits, 10, 12), number_of(digits, 12, 14)
        else:
            year = 1900 + number_of(digits, 6, 8)
            month, day = number_of(digits, 8, 10), number_of(digits, 10, 12)
        return number_of(digits, 0, 6), year, month, day
