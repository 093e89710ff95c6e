"""Chinese mobile numbers."""

from __future__ import annotations

import re
from functools import cache
from typing import ClassVar

import numpy as np
import phonenumbers

from molehunt.pii.recognizers.base import BaseRecognizer, Mask, Matrix, Pattern, digits_of

#: Digits that decide whether a number is a mobile (1740 0 is, 1740 6 is not).
PREFIX_DIGITS = 5
_SEP = "[- ]"
_NUMBER = "1[3-9][0-9]{9}"
_GROUPED = f"1[3-9][0-9]{_SEP}[0-9]{{4}}{_SEP}[0-9]{{4}}"


@cache
def allocated_prefixes() -> Mask:
    """Five-digit prefixes of the numbers phonenumbers' metadata calls Chinese
    mobiles (its pattern of mobile national numbers, which never looks further)."""
    metadata = phonenumbers.PhoneMetadata.metadata_for_region("CN")
    assert metadata is not None
    assert metadata.mobile is not None
    assert metadata.mobile.national_number_pattern is not None
    mobile = re.compile(metadata.mobile.national_number_pattern)
    table = np.zeros(10**PREFIX_DIGITS, dtype=np.bool_)
    for prefix in range(10 ** (PREFIX_DIGITS - 1), 2 * 10 ** (PREFIX_DIGITS - 1)):
        table[prefix] = mobile.fullmatch(f"{prefix}{'234567890'[: 11 - PREFIX_DIGITS]}") is not None
    return table


class ChinaMobileRecognizer(BaseRecognizer):
    """Chinese mobile number: 11 digits on an allocated prefix, grouped 3-4-4 or not
    (``138-0013-8000``, ``138 0013 8000``), with the country code or without
    (``+8613800138000``, ``+86 138 0013 8000``, ``0086 13800138000``)."""

    name: ClassVar[str] = "china_mobile"
    description: ClassVar[str] = "Chinese mobile phone number"
    patterns: ClassVar[tuple[Pattern, ...]] = (
        Pattern(f"{_NUMBER}", width=11),
        Pattern(f"{_GROUPED}", width=13),
        Pattern(rf"\+86{_NUMBER}", width=14),
        Pattern(rf"\+86{_SEP}{_NUMBER}", width=15),
        Pattern(rf"\+86{_SEP}{_GROUPED}", width=17),
        Pattern(f"0086{_NUMBER}", width=15),
        Pattern(f"0086{_SEP}{_NUMBER}", width=16),
        Pattern(f"0086{_SEP}{_GROUPED}", width=18),
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
        digits = digits[:, -11:]  # the country code (86, 0086) off
        powers = 10 ** np.arange(PREFIX_DIGITS - 1, -1, -1, dtype=np.int64)
        prefix = digits[:, :PREFIX_DIGITS] @ powers
        out: Mask = allocated_prefixes()[prefix]
        return out
