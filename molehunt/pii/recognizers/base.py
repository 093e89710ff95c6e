"""What a recognizer is: patterns, context words and a vectorised validation.

A recognizer's patterns are written once and compiled twice: into the single
Hyperscan database of :mod:`molehunt.pii.engine` (as UTF-8 bytes) and into Python
``re`` (as text), the reference that tests compare the engine with. To make one
text serve both:

- Chinese characters appear only inside groups (``(?:号|弄)``): Hyperscan sees
  their UTF-8 bytes, and a quantifier must apply to the whole character.
- ``{HAN}`` stands for one CJK unified ideograph (U+4E00..U+9FFF).
- Digit boundaries are lookarounds in ``re`` and one boundary byte on each side in
  Hyperscan (which has no lookaround); ``\\b`` is never used, since it fails next
  to Chinese characters.
- Text is matched with full-width ASCII folded (``１３８`` as ``138``), but block mode
  folds a text only if it holds the full-width form of a character some pattern,
  boundary or context word uses. A pattern that writes both forms of a character
  as ``(?::|：)`` (exactly that spelling) does not count as using it: the label
  colon of names, so Chinese text with only full-width punctuation needs no fold.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar, Literal, Protocol

import numpy as np
import numpy.typing as npt

HAN_TEXT = "[\u4e00-\u9fff]"
HAN_BYTES = r"(?:\xe4[\xb8-\xbf][\x80-\xbf]|[\xe5-\xe9][\x80-\xbf][\x80-\xbf])"

#: Characters a fixed-width pattern may not touch on either side.
Boundary = Literal["digit", "alnum"]
BOUNDARY_CLASS: dict[str, str] = {"digit": "0-9", "alnum": "A-Za-z0-9"}

Mask = npt.NDArray[np.bool_]
Matrix = npt.NDArray[np.uint8]


@dataclass(frozen=True, slots=True)
class Pattern:
    """One regular expression of a recognizer.

    Fixed-width patterns (``width`` in bytes, ASCII bodies) get ``boundary`` on both
    sides and are found at every position, overlapping ones included. Variable
    patterns are found leftmost-longest without overlap (what ``re.finditer``
    returns for these greedy patterns); ``left`` is a character class that may not
    precede the match.
    """

    regex: str
    width: int | None = None
    boundary: Boundary = "digit"
    left: str | None = None
    #: Literal words one of which must come first (too many for one Hyperscan
    #: expression with start-of-match: the engine finds them apart and joins).
    prefixes: tuple[str, ...] = ()
    #: A byte every match holds exactly once, right after a run of ``left``
    #: characters that begins the match (the ``@`` of an email): the start of a
    #: match is then found from its end, without Hyperscan tracking the start of
    #: match through every run of ``left`` characters of the text (costly).
    anchor: str | None = None

    def python(self) -> str:
        body = self.regex.replace("{HAN}", HAN_TEXT)
        if self.prefixes:
            words = "|".join(re.escape(w) for w in self.prefixes)
            body = f"(?:{words})(?:{body})"
        if self.width is not None:
            cls = BOUNDARY_CLASS[self.boundary]
            # A lookahead group so that overlapping candidates are all found.
            return f"(?<![{cls}])(?=({body})(?![{cls}]))"
        if self.left is not None:
            return f"(?<![{self.left}])(?:{body})"
        return body

    def tail_bytes(self) -> bytes:
        """The part after the prefix word, as a bytes regex (Python's and Hyperscan's)."""
        return self.regex.replace("{HAN}", HAN_BYTES).encode("utf-8")

    def hyperscan(self) -> bytes:
        body = self.regex.replace("{HAN}", HAN_BYTES)
        if self.width is not None:
            cls = BOUNDARY_CLASS[self.boundary]
            body = f"[^{cls}](?:{body})[^{cls}]"
        return body.encode("utf-8")


class Recognizer(Protocol):
    """A kind of personal data: what the scanner looks for and how it proves it."""

    name: ClassVar[str]
    description: ClassVar[str]
    patterns: ClassVar[tuple[Pattern, ...]]
    #: Words that, near a match, raise its confidence (case-insensitive for ASCII).
    context: ClassVar[tuple[str, ...]]
    #: Header words of spreadsheet columns holding this kind (lower case).
    header_words: ClassVar[tuple[str, ...]]
    #: Whether ``validate`` proves more than the pattern (checksum, allocation...).
    checksum: ClassVar[bool]
    #: The normaliser (``molehunt.pii.keyed.NORMALIZERS``) of exact data match.
    normalizer: ClassVar[str]

    def validate(self, pattern: int, values: Matrix | list[bytes]) -> Mask:
        """Which candidates of ``patterns[pattern]`` are valid: ``values`` is an
        (n, width) byte matrix for fixed-width patterns, else the matched bytes."""
        ...

    def doubtful(self, pattern: int, values: Matrix | list[bytes]) -> Mask | None:
        """Which valid candidates (as ``validate`` takes them) are at most low
        confidence whatever their context (an ID number's unlikely birth date);
        ``None``: none are."""
        ...

    def value(self, matched: str) -> str:
        """The personal datum inside a match (a label, if any, removed)."""
        ...


class BaseRecognizer:
    """Defaults: every match is valid, the match is the value."""

    checksum: ClassVar[bool] = False
    header_words: ClassVar[tuple[str, ...]] = ()

    def validate(self, pattern: int, values: Matrix | list[bytes]) -> Mask:
        return np.ones(len(values), dtype=np.bool_)

    def doubtful(self, pattern: int, values: Matrix | list[bytes]) -> Mask | None:
        return None

    def value(self, matched: str) -> str:
        return matched


def digits_of(values: Matrix) -> npt.NDArray[np.int64]:
    """The digit columns of a byte matrix, as integers (separators dropped)."""
    if values.shape[0] == 0:
        return np.zeros((0, 0), dtype=np.int64)
    keep = (values[0] >= 0x30) & (values[0] <= 0x39)
    # Separator positions are fixed by the pattern, so the first row tells them.
    return values[:, keep].astype(np.int64) - 0x30


def number_of(digits: npt.NDArray[np.int64], start: int, stop: int) -> npt.NDArray[np.int64]:
    """The integer spelled by ``digits[:, start:stop]``."""
    powers = 10 ** np.arange(stop - start - 1, -1, -1, dtype=np.int64)
    return digits[:, start:stop] @ powers


def luhn(digits: npt.NDArray[np.int64]) -> Mask:
    """Luhn check of each row of digits."""
    doubled = digits[:, ::-1].copy()
    second = doubled[:, 1::2] * 2
    doubled[:, 1::2] = np.where(second > 9, second - 9, second)
    out: Mask = (doubled.sum(axis=1) % 10) == 0
    return out
