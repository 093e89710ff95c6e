"""Chinese passport numbers."""

from __future__ import annotations

from typing import ClassVar

from molehunt.pii.recognizers.base import BaseRecognizer, Pattern


class PassportRecognizer(BaseRecognizer):
    """Chinese passport number: E or G and 8 digits, or E, a letter and 7 digits
    (no checksum: a match alone is weak evidence)."""

    name: ClassVar[str] = "passport"
    description: ClassVar[str] = "Chinese passport number"
    patterns: ClassVar[tuple[Pattern, ...]] = (
        Pattern("[EG][0-9]{8}", width=9, boundary="alnum"),
        Pattern("E[A-HJ-NP-Z][0-9]{7}", width=9, boundary="alnum"),
    )
    context: ClassVar[tuple[str, ...]] = ("护照", "护照号", "passport")
    header_words: ClassVar[tuple[str, ...]] = ("护照", "passport")
    normalizer: ClassVar[str] = "id_number"
