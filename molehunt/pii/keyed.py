"""Keyed hashes of normalised personal data, the same in Python and in SQL.

The client master is kept only as HMAC-SHA256 of each normalised PII value,
truncated to a signed 64-bit integer (compact, sortable, enough for exact data
match over tens of millions of records). ID-number and phone spaces are small
enough to brute-force an unkeyed hash, so the key lives apart from the store.

The SQL form hashes whole columns inside DuckDB (vectorised, parallel); a test
proves both forms agree on every normaliser.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable

# Full-width forms people paste from Chinese documents; NFKC would do the same
# for these, but SQL has no NFKC, and both sides must agree character for character.
_FULLWIDTH_FROM = "０１２３４５６７８９＋Ｘｘ"
_FULLWIDTH_TO = "0123456789+Xx"
_FULLWIDTH = str.maketrans(_FULLWIDTH_FROM, _FULLWIDTH_TO)
# Whitespace, as RE2 and Python agree on it, plus ideographic and no-break space.
_SPACE_CLASS = r"[\t\n\v\f\r \x{00A0}\x{3000}]"
_SPACES = "\t\n\v\f\r \u00a0\u3000"
_SPACE_RE = re.compile(f"[{_SPACES}]+")
_NOT_ID = re.compile(r"[^0-9X]")
_NOT_DIGIT = re.compile(r"[^0-9]")


def normalize_id_number(value: str) -> str:
    """ID numbers: full-width folded, upper-cased, only digits and X kept."""
    return _NOT_ID.sub("", value.translate(_FULLWIDTH).upper())


def normalize_phone(value: str) -> str:
    """Phones to E.164 (China by default): ``138 0013 8000`` -> ``+8613800138000``."""
    folded = value.translate(_FULLWIDTH).lstrip(_SPACES)
    digits = _NOT_DIGIT.sub("", folded)
    if not digits:
        return ""
    if folded.startswith("+"):
        return "+" + digits
    if digits.startswith("00"):
        return "+" + digits[2:]
    if len(digits) == 13 and digits.startswith("861"):
        return "+" + digits
    if digits.startswith("0"):  # domestic landline with trunk prefix: 021-... -> +8621...
        return "+86" + digits[1:]
    return "+86" + digits


def normalize_text(value: str) -> str:
    """Names and addresses: whitespace runs collapsed to one space, trimmed."""
    return _SPACE_RE.sub(" ", value).strip(" ")


NORMALIZERS: dict[str, Callable[[str], str]] = {
    "id_number": normalize_id_number,
    "phone": normalize_phone,
    "text": normalize_text,
}


def sql_normalize(kind: str, column: str) -> str:
    """The SQL (DuckDB) expression equal to ``NORMALIZERS[kind]`` over ``column``."""
    folded = sql_fold(column)
    if kind == "id_number":
        return f"regexp_replace(upper({folded}), '[^0-9X]', '', 'g')"
    if kind == "phone":
        digits, plus = sql_phone_parts(column)
        return sql_phone_from_parts(digits, plus)
    if kind == "text":
        return f"trim(regexp_replace({column}, '{_SPACE_CLASS}+', ' ', 'g'), ' ')"
    raise ValueError(f"unknown normaliser {kind!r}")


_OFFSET = 2**63


def sql_fold(column: str) -> str:
    return f"translate({column}, '{_FULLWIDTH_FROM}', '{_FULLWIDTH_TO}')"


def sql_phone_parts(column: str) -> tuple[str, str]:
    """The digits of a phone and whether it starts with ``+``: computed once per
    value in an inner query, since DuckDB would otherwise rerun the regex per use."""
    folded = sql_fold(column)
    plus = f"regexp_matches({folded}, '^{_SPACE_CLASS}*[+]')"
    return f"regexp_replace({folded}, '[^0-9]', '', 'g')", plus


def sql_phone_from_parts(digits: str, plus: str) -> str:
    return (
        f"CASE WHEN {digits} = '' THEN '' "
        f"WHEN {plus} THEN '+' || {digits} "
        f"WHEN starts_with({digits}, '00') THEN '+' || substr({digits}, 3) "
        f"WHEN length({digits}) = 13 AND starts_with({digits}, '861') THEN '+' || {digits} "
        f"WHEN starts_with({digits}, '0') THEN '+86' || substr({digits}, 2) "
        f"ELSE '+86' || {digits} END"
    )


def _pads(key: bytes) -> tuple[bytes, bytes]:
    block = hashlib.sha256(key).digest() if len(key) > 64 else key
    block = block.ljust(64, b"\0")
    return bytes(b ^ 0x36 for b in block), bytes(b ^ 0x5C for b in block)


class KeyedHasher:
    """HMAC-SHA256 truncated to 64 bits (offset binary, fits a signed BIGINT)."""

    __slots__ = ("_inner_pad", "_key", "_outer_pad")

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("the hashing key must be at least 16 bytes")
        self._key = key
        self._inner_pad, self._outer_pad = _pads(key)

    def __repr__(self) -> str:
        return "KeyedHasher(<key withheld>)"

    def hash64(self, normalized: str) -> int:
        digest = hmac.new(self._key, normalized.encode("utf-8"), hashlib.sha256).digest()
        return int.from_bytes(digest[:8], "big") - _OFFSET

    def hash_value(self, kind: str, raw: str) -> int | None:
        """Normalise then hash; ``None`` when nothing is left after normalising."""
        normalized = NORMALIZERS[kind](raw)
        return self.hash64(normalized) if normalized else None

    def sql_hash(self, expression: str) -> tuple[str, list[bytes]]:
        """A SQL expression hashing ``expression`` (VARCHAR), and its two parameters.

        The key reaches DuckDB only as bound parameters (the HMAC pads), never in
        the text of a statement or in a view, so it is never written to the store.
        """
        mac = f"sha256(?::BLOB || unhex(sha256(?::BLOB || encode({expression}))))"
        # Offset binary: the first 8 digest bytes as unsigned, minus 2**63.
        value = f"(('0x' || left({mac}, 16))::UBIGINT::HUGEINT - {_OFFSET})::BIGINT"
        sql = f"CASE WHEN {expression} IS NULL OR {expression} = '' THEN NULL ELSE {value} END"
        params = [self._outer_pad, self._inner_pad]
        return sql, params
