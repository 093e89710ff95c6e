"""Bank card numbers."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from molehunt.pii.recognizers.base import BaseRecognizer, Mask, Matrix, Pattern, digits_of, luhn

WIDTHS = (16, 17, 18, 19)


class BankCardRecognizer(BaseRecognizer):
    """Bank card number: 16 to 19 digits (or grouped by four) passing the Luhn check,
    on a plausible issuer prefix and length (UnionPay 62 16-19, Visa 4 16/19,
    Mastercard 51-55/22-27 16, JCB 35 16)."""

    name: ClassVar[str] = "bank_card"
    description: ClassVar[str] = "bank card number (Luhn, issuer prefix and length)"
    patterns: ClassVar[tuple[Pattern, ...]] = (
        *(Pattern(f"[2-6][0-9]{{{w - 1}}}", width=w) for w in WIDTHS),
        Pattern("[2-6][0-9]{3}[ -][0-9]{4}[ -][0-9]{4}[ -][0-9]{4}", width=19),
        Pattern("6[0-9]{3}[ -][0-9]{4}[ -][0-9]{4}[ -][0-9]{4}[ -][0-9]{3}", width=23),
    )
    context: ClassVar[tuple[str, ...]] = (
        "银行卡", "卡号", "账号", "银行账户", "开户行", "card", "card number", "account",
    )  # fmt: skip
    header_words: ClassVar[tuple[str, ...]] = ("银行卡", "卡号", "账号", "bank_card", "card_no")
    checksum: ClassVar[bool] = True
    normalizer: ClassVar[str] = "id_number"

    def validate(self, pattern: int, values: Matrix | list[bytes]) -> Mask:
        assert isinstance(values, np.ndarray)
        digits = digits_of(values)
        if len(digits) == 0:
            return np.zeros(0, dtype=np.bool_)
        length = digits.shape[1]
        first, second = digits[:, 0], digits[:, 1]
        two = first * 10 + second
        if length == 16:
            issuer = (
                (two == 62) | (first == 4) | ((two >= 51) & (two <= 55))
                | ((two >= 22) & (two <= 27)) | (two == 35)
            )  # fmt: skip
        elif length == 19:
            issuer = (two == 62) | (first == 4)
        else:
            issuer = two == 62
        # Luhn only where the issuer fits: most long digit runs are not cards.
        out: Mask = issuer
        out[issuer] = luhn(digits[issuer])
        return out
