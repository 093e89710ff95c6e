"""China's foreign permanent resident ID card numbers (外国人永久居留身份证)."""

from __future__ import annotations

from functools import cache
from typing import ClassVar

import numpy as np
import numpy.typing as npt

from molehunt.pii.recognizers._region_codes import COUNTRY_ALPHA3, COUNTRY_NUMERIC
from molehunt.pii.recognizers.base import BaseRecognizer, Mask, Matrix, Pattern, number_of
from molehunt.pii.recognizers.china_resident_id import (
    MONTH_DAY,
    check_ok,
    real_dates,
    region_table,
    unlikely_births,
)

#: ICAO 9303 check digit weights (the 2017 card's last digit).
_ICAO_WEIGHTS = np.array([7, 3, 1] * 5, dtype=np.int64)[:14]


@cache
def _countries() -> tuple[Mask, Mask]:
    """ISO 3166-1 numeric codes (by number) and alpha-3 codes (by base-26 value)."""
    numeric = np.zeros(1000, dtype=np.bool_)
    numeric[[int(c) for c in COUNTRY_NUMERIC.split()]] = True
    alpha = np.zeros(26**3, dtype=np.bool_)
    for code in COUNTRY_ALPHA3.split():
        a, b, c = (ord(ch) - ord("A") for ch in code)
        alpha[(a * 26 + b) * 26 + c] = True
    return numeric, alpha


def _digits(values: Matrix, start: int, stop: int) -> npt.NDArray[np.int64]:
    out: npt.NDArray[np.int64] = values[:, start:stop].astype(np.int64) - 0x30
    return out


class ChinaForeignResidentIdRecognizer(BaseRecognizer):
    """China foreign permanent resident ID number. The 2023 card: 18 characters, 9,
    the issuing province, the ISO 3166 numeric nationality, birth date, sequence and
    the resident ID's MOD 11-2 check character. The 2017 card: 15 characters, the
    ISO alpha-3 nationality, the issuing city's code, birth date (YYMMDD), a sequence
    digit and an ICAO 9303 check digit."""

    name: ClassVar[str] = "china_foreign_resident_id"
    description: ClassVar[str] = "China foreign permanent resident ID card number"
    patterns: ClassVar[tuple[Pattern, ...]] = (
        Pattern(f"9[1-8][0-9]{{4}}(?:19|20)[0-9]{{2}}{MONTH_DAY}[0-9]{{3}}[0-9X]", width=18),
        Pattern(f"[A-Z]{{3}}[1-8][0-9]{{5}}{MONTH_DAY}[0-9]{{2}}", width=15, boundary="alnum"),
    )
    context: ClassVar[tuple[str, ...]] = (
        "永久居留", "居留证", "居留身份证", "外国人", "permanent resident", "residence card",
    )  # fmt: skip
    header_words: ClassVar[tuple[str, ...]] = ("永久居留", "居留证", "permanent_resident")
    checksum: ClassVar[bool] = True
    normalizer: ClassVar[str] = "id_number"

    def validate(self, pattern: int, values: Matrix | list[bytes]) -> Mask:
        assert isinstance(values, np.ndarray)
        if len(values) == 0:
            return np.zeros(0, dtype=np.bool_)
        numeric, alpha = _countries()
        if pattern == 0:
            digits = _digits(values, 0, 14)
            province = number_of(digits, 1, 3) * 10_000
            country = numeric[number_of(digits, 3, 6)]
            year, month, day = self._birth(pattern, values)
            out: Mask = region_table()[province] & country & real_dates(year, month, day)
            return out & check_ok(values)
        letters = values[:, :3].astype(np.int64) - ord("A")
        country = alpha[(letters[:, 0] * 26 + letters[:, 1]) * 26 + letters[:, 2]]
        city = number_of(_digits(values, 3, 7), 0, 4) * 100
        year, month, day = self._birth(pattern, values)
        # Letters count 10 to 35, digits their value.
        chars = values[:, :14].astype(np.int64)
        worth = np.where(chars >= ord("A"), chars - ord("A") + 10, chars - 0x30)
        check: Mask = (worth @ _ICAO_WEIGHTS) % 10 == values[:, 14].astype(np.int64) - 0x30
        check &= country & region_table()[city] & real_dates(year, month, day)
        return check

    def doubtful(self, pattern: int, values: Matrix | list[bytes]) -> Mask | None:
        assert isinstance(values, np.ndarray)
        return unlikely_births(*self._birth(pattern, values))

    @staticmethod
    def _birth(
        pattern: int, values: Matrix
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        if pattern == 0:
            digits = _digits(values, 6, 14)
            return number_of(digits, 0, 4), number_of(digits, 4, 6), number_of(digits, 6, 8)
        digits = _digits(values, 7, 13)
        # Two-digit years: the latest century that does not put the birth ahead.
        year = 2000 + number_of(digits, 0, 2)
        month, day = number_of(digits, 2, 4), number_of(digits, 4, 6)
        year = np.where(unlikely_births(year, month, day) & (year >= 2000), year - 100, year)
        return year, month, day
