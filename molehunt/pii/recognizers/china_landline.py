"""Chinese landline numbers with their area code, as people write them."""

from __future__ import annotations

import re
from functools import cache
from typing import ClassVar

import numpy as np
import phonenumbers

from molehunt.pii.recognizers.base import BaseRecognizer, Mask, Matrix, Pattern, digits_of

#: How the national number is introduced: (regex, its width, digits in it) for the
#: trunk 0 and the country code 86 (+86, 0086).
_TRUNK = (("0", 1, 1), (r"\+86", 3, 2), ("0086", 4, 4))
_SEP = "[- ]"


def _variants() -> tuple[tuple[Pattern, int], ...]:
    """Every writing as (pattern, digits before the national number)."""
    out: list[tuple[Pattern, int]] = []
    # Digits only: 02163456789, +862163456789, 00862163456789. The area code's
    # length does not change the width: one pattern per national length.
    for national in (9, 10, 11):
        for prefix, width, skip in _TRUNK:
            regex = f"{prefix}[1-9][0-9]{{{national - 1}}}"
            out.append((Pattern(regex, width=width + national), skip))
    for area in (2, 3):  # digits after the trunk 0: 21, 755
        code = f"[1-9][0-9]{{{area - 1}}}"
        for subscriber in (7, 8):
            plain = f"[0-9]{{{subscriber}}}"
            numbers = [(plain, subscriber)]
            if subscriber == 8:  # 6552 9988
                numbers.append((f"[0-9]{{4}}{_SEP}[0-9]{{4}}", 9))
            elif area == 3:  # 523 4567 (2-digit area codes have 8-digit numbers)
                numbers.append((f"[0-9]{{3}}{_SEP}[0-9]{{4}}", 8))
            for number, size in numbers:
                # 021-63456789, 021 6345 6789; +86 21 63456789, 0086-21-6345-6789.
                for prefix, width, skip in _TRUNK:
                    sep = "" if skip == 1 else _SEP
                    regex = f"{prefix}{sep}{code}{_SEP}{number}"
                    width_ = width + (skip > 1) + area + 1 + size
                    out.append((Pattern(regex, width=width_), skip))
            # (021)63456789, (0755) 83456789.
            out.append((Pattern(rf"\(0{code}\){plain}", width=area + 3 + subscriber), 1))
            out.append((Pattern(rf"\(0{code}\){_SEP}{plain}", width=area + 4 + subscriber), 1))
    return tuple(out)


_VARIANTS = _variants()


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


@cache
def fixed_line() -> re.Pattern[bytes]:
    """phonenumbers' pattern of Chinese fixed-line national numbers (which subscriber
    numbers an area code takes: 010 1234 5678 is one, 021 0234 5678 is not)."""
    metadata = phonenumbers.PhoneMetadata.metadata_for_region("CN")
    assert metadata is not None
    assert metadata.fixed_line is not None
    assert metadata.fixed_line.national_number_pattern is not None
    return re.compile(metadata.fixed_line.national_number_pattern.encode())


class ChinaLandlineRecognizer(BaseRecognizer):
    """Chinese landline: a 2- or 3-digit area code in use and a 7- or 8-digit
    subscriber number, written with the trunk 0 (``021-63456789``, ``021 63456789``,
    ``(021)63456789``, ``0755 8345 6789``, ``0771 523 4567``) or the country code
    (``+86 10 6552 9988``, ``+86-21-63456789``, ``0086 21 63456789``)."""

    name: ClassVar[str] = "china_landline"
    description: ClassVar[str] = "Chinese landline number with area code"
    patterns: ClassVar[tuple[Pattern, ...]] = tuple(p for p, _ in _VARIANTS)
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
        national = digits[:, _VARIANTS[pattern][1] :]
        head = national[:, :3] @ np.array([100, 10, 1], dtype=np.int64)
        out: Mask = valid_starts()[national.shape[1], head]
        # The area codes' own subscriber ranges, for the few left: a match each.
        rows = (national[out] + 0x30).astype(np.uint8)
        match = fixed_line().fullmatch
        out[out] = [match(row.tobytes()) is not None for row in rows]
        return out
