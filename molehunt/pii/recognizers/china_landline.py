"""Chinese landline numbers with their area code."""

from __future__ import annotations

from functools import cache
from typing import ClassVar

import numpy as np
import phonenumbers

from molehunt.pii.recognizers.base import BaseRecognizer, Mask, Matrix, Pattern, digits_of


def _variants() -> tuple[Pattern, ...]:
    out = []
    for area in (2, 3):  # digits after the trunk 0: 21, 755
        for separator in ("-", ""):
            for subscriber in (7, 8):
                regex = f"0[1-9][0-9]{{{area - 1}}}{separator}[2-9][0-9]{{{subscriber - 1}}}"
                width = 1 + area + len(separator) + subscriber
                out.append(Pattern(regex, width=width))
    return tuple(out)


@cache
def valid_starts() -> Mask:
    """Valid (national length, first three national digits) pairs, from phonenumbers."""
    table = np.zeros((12, 1000), dtype=np.bool_)
    for length in (9, 10, 11):
        for head in range(100, 1000):
            number = phonenumbers.parse(f"+86{head}{'23456789'[: length - 3]}", None)
            table[length, head] = phonenumbers.number_type(number) in {
                phonenumbers.PhoneNumberType.FIXED_LINE,
                phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
            } and phonenumbers.is_valid_number(number)
    return table


class ChinaLandlineRecognizer(BaseRecognizer):
    """Chinese landline: trunk 0, a 2- or 3-digit area code and a 7- or 8-digit
    subscriber number, on an area code in use."""

    name: ClassVar[str] = "china_landline"
    description: ClassVar[str] = "Chinese landline number with area code"
    patterns: ClassVar[tuple[Pattern, ...]] = _variants()
    context: ClassVar[tuple[str, ...]] = (
        "电话", "座机", "固话", "联系电话", "办公电话", "家庭电话", "phone", "tel", "landline",
    )  # fmt: skip
    header_words: ClassVar[tuple[str, ...]] = ("座机", "固话", "电话", "landline", "tel")
    checksum: ClassVar[bool] = True
    normalizer: ClassVar[str] = "phone"

    def validate(self, pattern: int, values: Matrix | list[bytes]) -> Mask:
        assert isinstance(values, np.ndarray)
        digits = digits_of(values)
        if len(digits) == 0:
            return np.zeros(0, dtype=np.bool_)
        national = digits[:, 1:]
        head = national[:, :3] @ np.array([100, 10, 1], dtype=np.int64)
        return valid_starts()[national.shape[1], head]
