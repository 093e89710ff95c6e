"""Email addresses."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from molehunt.pii.recognizers.base import BaseRecognizer, Mask, Matrix, Pattern

_LOCAL = "A-Za-z0-9._%+-"


class EmailRecognizer(BaseRecognizer):
    """Email address: a local part, ``@`` and a domain whose last label is alphabetic."""

    name: ClassVar[str] = "email"
    description: ClassVar[str] = "email address"
    patterns: ClassVar[tuple[Pattern, ...]] = (
        Pattern(f"[{_LOCAL}]+@[A-Za-z0-9-]+(?:\\.[A-Za-z0-9-]+)+", left=_LOCAL, anchor="@"),
    )
    context: ClassVar[tuple[str, ...]] = ("邮箱", "电子邮件", "email", "e-mail", "mail")
    header_words: ClassVar[tuple[str, ...]] = ("邮箱", "email", "e-mail", "mail")
    checksum: ClassVar[bool] = True
    normalizer: ClassVar[str] = "text"

    def validate(self, pattern: int, values: Matrix | list[bytes]) -> Mask:
        out = np.zeros(len(values), dtype=np.bool_)
        for i, value in enumerate(values):
            tld = bytes(value).rsplit(b".", 1)[-1]
            out[i] = 2 <= len(tld) <= 24 and tld.isalpha()
        return out
