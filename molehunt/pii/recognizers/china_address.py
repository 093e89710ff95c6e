"""Chinese postal addresses."""

from __future__ import annotations

from functools import cache
from typing import ClassVar

from molehunt.pii.recognizers._divisions import divisions
from molehunt.pii.recognizers.base import BaseRecognizer, Pattern

_ROAD = "(?:路|街|道|巷|弄|胡同|大道)"
_UNIT = "(?:号|弄|栋|幢|座|单元|层|楼|室)"


@cache
def division_words() -> tuple[str, ...]:
    """Province, city and district names usable as the start of an address."""
    # "市辖区" and the like are placeholders of the list, not names people write.
    words = {name for _code, name in divisions() if "辖" not in name and 2 <= len(name) <= 12}
    return tuple(sorted(words, key=lambda w: (-len(w), w)))


def _pattern() -> Pattern:
    return Pattern(
        f"(?:{{HAN}}){{0,12}}{_ROAD}[0-9]{{1,5}}(?:号|弄)(?:[0-9]{{1,5}}{_UNIT})*",
        prefixes=division_words(),
    )


class ChinaAddressRecognizer(BaseRecognizer):
    """Chinese address: a province, city or district from the division list, then a
    road and a street number (with building, floor and room when given)."""

    name: ClassVar[str] = "china_address"
    description: ClassVar[str] = "Chinese postal address down to the street number"
    patterns: ClassVar[tuple[Pattern, ...]] = (_pattern(),)
    context: ClassVar[tuple[str, ...]] = (
        "地址", "住址", "家庭住址", "联系地址", "通讯地址", "户籍", "address",
    )  # fmt: skip
    header_words: ClassVar[tuple[str, ...]] = ("地址", "住址", "address")
    normalizer: ClassVar[str] = "text"
