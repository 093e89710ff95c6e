"""Recognizers of personal data: one file each, one line each in ``RECOGNIZERS``.

The order is the priority when two kinds claim the very same characters (a valid
resident ID number wins over a bank card number of the same 18 digits).
"""

from __future__ import annotations

from molehunt.pii.recognizers.bank_card import BankCardRecognizer
from molehunt.pii.recognizers.base import Pattern, Recognizer
from molehunt.pii.recognizers.china_address import ChinaAddressRecognizer
from molehunt.pii.recognizers.china_foreign_resident_id import ChinaForeignResidentIdRecognizer
from molehunt.pii.recognizers.china_landline import ChinaLandlineRecognizer
from molehunt.pii.recognizers.china_mobile import ChinaMobileRecognizer
from molehunt.pii.recognizers.china_resident_id import ChinaResidentIdRecognizer
from molehunt.pii.recognizers.chinese_name import ChineseNameRecognizer
from molehunt.pii.recognizers.email import EmailRecognizer
from molehunt.pii.recognizers.passport import PassportRecognizer

RECOGNIZERS: dict[str, type[Recognizer]] = {
    "china_resident_id": ChinaResidentIdRecognizer,
    "china_foreign_resident_id": ChinaForeignResidentIdRecognizer,
    "china_mobile": ChinaMobileRecognizer,
    "china_landline": ChinaLandlineRecognizer,
    "bank_card": BankCardRecognizer,
    "passport": PassportRecognizer,
    "email": EmailRecognizer,
    "china_address": ChinaAddressRecognizer,
    "chinese_name": ChineseNameRecognizer,
}

__all__ = ["RECOGNIZERS", "Pattern", "Recognizer"]
