"""Chinese mobile numbers."""

from __future__ import annotations

from functools import cache
from typing import ClassVar

import numpy as np
import phonenumbers

from molehunt.pii.recognizers.base import BaseRecognizer, Mask, Matrix, Pattern, digits_of

PREFIX_DIGITS = 4


@cache
def allocated_prefixes() -> Mask:
    """Four-digit mobile prefixes that phonenumbers knows as allocated in China."""
    table = np.zeros(10**PREFIX_DIGITS, dtype=np.bool_)
    for prefix in range(10 ** (PREFIX_DIGITS - 1), 2 * 10 ** (PREFIX_DIGITS - 1)):
        number = phonenumbers.parse(f"+86{prefix}2345678", None)
        table[prefix] = phonenumbers.number_type(number) in {
            phonenumbers.PhoneNumberType.MOBILE,
            phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
        } and phonenumbers.is_valid_number(number)
    return table


class ChinaMobileRecognizer(BaseRecognizer):
    """Chinese mobile number: 11 digits on an allocated prefix, optionally +86 or
    grouped 3-4-4."""

    name: ClassVar[str] = "china_mobile"
    description: ClassVar[str] = "Chinese mobile phone number"
    patterns: ClassVar[tuple[Pattern, ...]] = (
        Pattern("1[3-9][0-9]{9}", width=11),
        Pattern("1[3-9][0-9][- ][0-9]{4}[- ][0-9]{4}", width=13),
        Pattern(r"\+861[3-9][0-9]{9}", width=14),
    )
    context: ClassVar[tuple[str, ...]] = (
        "手机", "手机号", "电话", "联系电话", "联系方式", "mobile", "phone", "tel", "cell",
    )  # fmt: skip
    header_words: ClassVar[tuple[str, ...]] = ("手机", "电话", "mobile", "phone", "cell", "tel")
    checksum: ClassVar[bool] = True
    normalizer: ClassVar[str] = "phone"

    def validate(self, pattern: int, values: Matrix | list[bytes]) -> Mask:
        assert isinstance(values, np.ndarray)
        digits = digits_of(values)
        if len(digits) == 0:
            return np.zeros(0, dtype=np.bool_)
        if pattern == 2:
            digits = digits[:, 2:]  # the 86
        powers = 10 ** np.arange(PREFIX_DIGITS - 1, -1, -1, dtype=np.int64)
        prefix = digits[:, :PREFIX_DIGITS] @ powers
        out: Mask = allocated_prefixes()[prefix]
        return out
