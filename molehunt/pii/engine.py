"""The scanning engine: every recognizer's patterns, Hyperscan and numpy.

The match callback only appends ``(id, from, to)``; everything else is done once
per scan over arrays: candidate bytes copied as rows of a sliding window view,
validation (checksums, region codes, date table, allocated prefixes) vectorised in
numpy. Findings stay arrays (:class:`Found`) until objects are asked for.

Block mode (``Engine.find``, files), measured per 15 MB of the benchmark's dense
text (a finding every 70 bytes) in CPU time of one core, ~60 ms in all:

- Fixed-width digit patterns (ID numbers, phones, cards: most matches of dense
  text) are matched over the buffer's digit runs in numpy (:class:`_DigitRunPattern`),
  exactly as Hyperscan would; the binding calls Python once per match (~0.3 us),
  which alone capped dense text near 25 MB/s. Runs are sorted by length once, so
  each pattern takes a slice; a pattern's candidates are narrowed on their first
  checked position, then copied once as rows (a strided view built in one C call:
  ``sliding_window_view`` cost ~20 us of Python per call), and every other single
  position and both boundaries are checked in one gather through a flattened
  (position, byte) table, the two-position alternatives (month and day) in one
  through a flattened (pair, byte pair) table, not numpy calls per position;
  validation reuses the rows. About 25 ms, and the fold to ASCII (one compaction
  into the padded buffer) another 18 when the text needs it (below). Tried and not
  kept (no faster on sparse text, 20-25% slower on dense): all patterns at once, as
  pattern bits in a (column, byte) table over one matrix of every admitted run
  (dense text has ~20,000 runs per MB: a 27-column gather each), or per class of
  run length (a dozen classes: their numpy calls cost what the patterns' did); and
  the full-width lead bytes found in the digit runs' ``flatnonzero`` (telling the
  two apart cost what the second pass saved).
- One Hyperscan database for the variable patterns: addresses (division words and
  a tail, joined in numpy: pairs of a tail match and the words in reach before it,
  each tail's leftmost word tried first, the tail's ``fullmatch`` called through
  ``map``), labelled names, email: ~3 ms. Email is compiled
  without start of match, whose tracking through every run of letters cost 30 ms
  with no email in the text: its start is found from its end (``Pattern.anchor``).
- Context words are not looked for until a confidence is: :attr:`Found.level`
  scans a second database of context words on first use (a callback each, one
  per finding in dense text: ~60 ms, 40 of them the callbacks). Counts never need
  them, nor does a verdict once a kind with a checksum (medium by itself) is
  found. A numpy search for them over the whole buffer (lead bytes narrowed by
  their first two bytes, then the character, then word by word; ASCII words from
  the starts of letter runs) was measured at the cost of the callbacks on dense
  text and two to three times it on sparse text, and not kept. The context
  database drops the words another word implies (see
  :meth:`Engine._derive_context`).
- Validation and settling spans, ~15 ms.

``Engine.stream`` is stream mode (upload bodies arriving in pieces: the findings do
not depend on where the body is cut): one database with every pattern and context
word, start of match tracked by Hyperscan, levels weighed at ``close``.
``Engine.reference_scan`` runs the same patterns through Python ``re``, the
reference the tests hold both modes to.

Text is matched as UTF-8 with full-width ASCII folded to ASCII (what NFKC does to
those characters), one character for one, so character offsets survive; findings'
byte offsets (:attr:`Found.start`) are those of the folded text. Block mode folds
only when folding can change a finding (:meth:`Engine._buffer`): when a full-width
character folds to one that a pattern, a boundary, a left class or a context word
uses (digits, letters, ``@ . + - _ %``: :meth:`Engine._significant`, derived from the
recognizers). Chinese text's full-width commas, colons and parentheses are not
among them (a name label spells out both colons), so such text is scanned as it
is: the full-width characters' offsets (one pass, ~0.4 ms per 2 MB) move findings
and context words to the folded text's offsets when those are first asked for
(:attr:`Found.start`: counts, verdicts and exact data match never ask), and the
compaction (half of sparse text's time) is skipped. The pass itself stays: it
decides whether to fold (a Hyperscan expression for the significant full-width
characters, or Python ``re``, took twice as long on Chinese text, whose
full-width commas share those characters' first two bytes). Sparse text (a
finding every 600 bytes) then costs, per 1.8 MB: ~0.4 ms for that pass, 0.4
Hyperscan, 0.4 the digit runs (a ``flatnonzero`` over the buffer is most of it),
~0.4 the 21 digit-run patterns (most match no run: ~1 us each), 0.4 validation.
"""

from __future__ import annotations

import itertools
import re

# re's own parser reads a fixed-width regex into classes (no stubs: private, but
# its node kinds have been stable since Python 2).
import re._constants as _sre  # type: ignore[import-not-found]
import re._parser as _sre_parser  # type: ignore[import-not-found]
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

import hyperscan
import numpy as np
import numpy.typing as npt

from molehunt.pii.recognizers import RECOGNIZERS, Pattern, Recognizer
from molehunt.pii.recognizers.base import BOUNDARY_CLASS, BaseRecognizer

Ints = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]
Confidence = Literal["low", "medium", "high"]
CONFIDENCES: tuple[Confidence, ...] = ("low", "medium", "high")

#: Longest variable-length match kept (email, address, labelled name), in bytes.
MAX_SPAN = 256
#: How far from a candidate a context word still counts, in bytes (~16 CJK characters).
CONTEXT_BYTES = 48
#: Bytes a stream keeps from earlier pieces: enough for any match and its boundary.
_KEEP = MAX_SPAN + 8

# Full-width ASCII (U+FF01..U+FF5E) to ASCII, in UTF-8: EF BC 81..BF and EF BD 80..9E.
_FULL_WIDTH_SHIFT = 0xFEE0
_FOLD_TEXT = {cp: cp - _FULL_WIDTH_SHIFT for cp in range(0xFF01, 0xFF5F)}


def fold_bytes(data: bytes) -> bytes:
    """Full-width ASCII folded to ASCII in UTF-8 bytes (cheap when there is none)."""
    return _fold(data, b"")


def _fold(data: bytes, pad: bytes) -> bytes:
    """:func:`fold_bytes` with ``pad`` before and after, in the same copy."""
    if b"\xef\xbc" not in data and b"\xef\xbd" not in data:
        return pad + data + pad if pad else data
    a = np.frombuffer(data, dtype=np.uint8)
    lead, _ = _full_width(a)
    if len(lead) == 0:
        return pad + data + pad if pad else data
    return _compact(a, lead, pad)


def _compact(a: npt.NDArray[np.uint8], lead: Ints, pad: bytes) -> bytes:
    """``a`` with the full-width characters at ``lead`` folded, ``pad`` around."""
    # Chinese text has a full-width comma or colon every few characters: one
    # vectorised pass, not a substitution callback per character.
    keep = np.ones(len(a), dtype=np.bool_)
    keep[lead + 1] = False
    keep[lead + 2] = False
    n = len(pad)
    out = np.empty(len(a) - 2 * len(lead) + 2 * n, dtype=np.uint8)
    if n:
        out[:n] = out[len(out) - n :] = np.frombuffer(pad, dtype=np.uint8)
    # Kept bytes into place between the pads; each folded character then lands where its
    # lead byte went, two bytes earlier per character folded before it.
    out[n : len(out) - n] = a[keep]
    folded = a[lead + 2] - np.where(a[lead + 1] == 0xBC, 0x60, 0x20).astype(np.uint8)
    out[lead - 2 * np.arange(len(lead)) + n] = folded
    return out.tobytes()


def _full_width(a: npt.NDArray[np.uint8], folds: Table | None = None) -> tuple[Ints, bool]:
    """Offsets of the full-width ASCII characters (their lead bytes) in UTF-8 bytes,
    and whether one of them folds to a character ``folds`` holds (ASCII table)."""
    lead = np.flatnonzero(a[:-2] == 0xEF)
    second, third = a[lead + 1], a[lead + 2]
    bc = (second == 0xBC) & (third >= 0x81) & (third <= 0xBF)
    bd = (second == 0xBD) & (third >= 0x80) & (third <= 0x9E)
    ok = bc | bd
    out: Ints = lead[ok]
    if folds is None or len(out) == 0:
        return out, False
    ascii_ = third[ok] - np.where(second[ok] == 0xBC, 0x60, 0x20).astype(np.uint8)
    return out, bool(folds[ascii_].any())


def _folded(offsets: Ints, lead: Ints | None) -> Ints:
    """Offsets in unfolded bytes moved to the folded bytes: two bytes fewer per
    full-width character (at ``lead``) before each."""
    if lead is None:
        return offsets
    out: Ints = offsets - 2 * np.searchsorted(lead, offsets, "left")
    return out


def fold_text(text: str) -> str:
    return text.translate(_FOLD_TEXT)


@dataclass(frozen=True, slots=True)
class Finding:
    """One piece of personal data found. ``value`` is the clear value: keep it in
    memory, print it only through :func:`mask`."""

    type: str
    confidence: Confidence
    start: int  # byte offset in the scanned (UTF-8, folded) text
    end: int
    value: str
    validated: bool
    context: bool

    def __repr__(self) -> str:
        return (
            f"Finding({self.type}, {self.confidence}, {self.start}:{self.end}, "
            f"{mask(self.value, self.type)!r})"
        )


def mask(value: str, kind: str = "") -> str:
    """``310***********123X``: enough to tell values apart, never the value."""
    n = len(value)
    if kind == "chinese_name":
        return value[:1] + "*" * (n - 1)
    if kind == "china_address":
        return value[:6] + "*" * max(n - 6, 0)
    if kind == "email" and "@" in value:
        local, domain = value.split("@", 1)
        keep = 1 if len(local) > 1 else 0  # a one-letter name is hidden whole
        return local[:keep] + "*" * (len(local) - keep) + "@" + domain
    if n >= 8:
        return value[:3] + "*" * (n - 7) + value[-4:]
    if n >= 3:
        return value[0] + "*" * (n - 2) + value[-1]
    return value[:1] + "*" * (n - 1)


Role = Literal["fixed", "variable", "anchored", "prefix", "tail", "context"]


@dataclass(frozen=True, slots=True)
class _Expr:
    role: Role
    rec: int
    pattern: int
    width: int  # fixed: body bytes; prefix: word bytes; context: boundary bytes at the end


@dataclass(slots=True)
class Candidates:
    """Spans (buffer offsets) one pattern proposes, after overlap resolution, with
    their bytes when already copied (an (n, width) matrix, fixed-width patterns)."""

    starts: Ints
    ends: Ints
    values: npt.NDArray[np.uint8] | None = None


class Found:
    """The findings of one scan as arrays, one entry per finding in the order of
    (start, end): what counts and verdicts need, without an object per finding.
    ``level`` and ``context`` are weighed on first use (block mode looks for the
    context words then: counts never pay for them). :meth:`findings` makes the
    :class:`Finding` objects (values, details, exact data match)."""

    __slots__ = (
        "_contexts",
        "_spans",
        "_weighed",
        "data",
        "engine",
        "key",
        "kind",
        "lead",
        "scanned_end",
        "scanned_start",
        "weak",
    )

    def __init__(
        self,
        engine: Engine,
        data: _Bytes,
        kind: Ints,
        start: Ints,
        end: Ints,
        key: Ints,
        contexts: dict[int, Ints] | None = None,
        lead: Ints | None = None,
        weak: Bools | None = None,
    ) -> None:
        self.engine = engine
        self.data = data
        self.kind = kind  # index into ``engine.names``
        #: Byte offsets in :attr:`scanned` (folded or not: see :meth:`Engine.find`).
        self.scanned_start = start
        self.scanned_end = end
        #: Full-width characters left unfolded in the scanned buffer (their lead
        #: bytes, buffer offsets); ``None``: the buffer is folded text.
        self.lead = lead
        # Moved to the folded text's offsets on first use (counts, verdicts and
        # exact data match never need them: ~0.1 ms per 2 MB of Chinese text).
        self._spans: tuple[Ints, Ints] | None = None if lead is not None else (start, end)
        self.key = key  # buffer offset under which a stream kept the match's bytes
        #: Per recognizer, context word ends (buffer offsets); ``None``: not looked for.
        self._contexts = contexts
        self._weighed: tuple[Ints, Bools] | None = None
        #: Findings that are low confidence whatever their context (the recognizer's
        #: ``doubtful``: an ID number's unlikely birth date).
        self.weak = np.zeros(len(kind), dtype=np.bool_) if weak is None else weak

    @property
    def start(self) -> Ints:
        """Byte offsets in the folded UTF-8 text, whether or not it was scanned folded."""
        return self._folded_spans()[0]

    @property
    def end(self) -> Ints:
        return self._folded_spans()[1]

    def _folded_spans(self) -> tuple[Ints, Ints]:
        if self._spans is None:
            lead = self.lead
            start, end = self.scanned_start, self.scanned_end
            self._spans = (_folded(start + 1, lead) - 1, _folded(end + 1, lead) - 1)
        return self._spans

    @classmethod
    def empty(cls, engine: Engine, data: _Bytes, lead: Ints | None = None) -> Found:
        none = np.zeros(0, dtype=np.int64)
        return cls(engine, data, none, none, none, none, {}, lead)

    @property
    def scanned(self) -> memoryview:
        """The bytes scanned (block mode): the text, folded when folding could change
        a finding. :attr:`scanned_start` and :attr:`scanned_end` are offsets in it;
        character offsets are the same in it as in the folded text."""
        return memoryview(self.data.buf)[1:-1]

    @property
    def level(self) -> Ints:
        """Index into ``CONFIDENCES`` per finding."""
        return self._weigh()[0]

    @property
    def context(self) -> Bools:
        """Whether a context word is near each finding."""
        return self._weigh()[1]

    def _weigh(self) -> tuple[Ints, Bools]:
        if self._weighed is None:
            self._weighed = self.engine.weigh(self, self._contexts)
        return self._weighed

    def __len__(self) -> int:
        return len(self.kind)

    def counts(self) -> dict[str, int]:
        """Findings per type (types found only)."""
        per = np.bincount(self.kind, minlength=len(self.engine.names))
        return {n: int(c) for n, c in zip(self.engine.names, per.tolist(), strict=True) if c}

    def confident(self) -> bool:
        """Whether a finding is above low confidence: context words are looked for
        only if no kind with a checksum (medium at least) was found."""
        if len(self) == 0:
            return False
        sure = (self.engine.checksum[self.kind] > 0) & ~self.weak
        return bool(sure.any() or (self.level > 0).any())

    def values(self, which: Ints | None = None) -> list[str]:
        """The clear values of the findings ``which`` (all by default)."""
        rows = np.arange(len(self)) if which is None else which
        kinds = self.kind[rows]
        starts = (self.scanned_start[rows] + 1).tolist()
        ends = (self.scanned_end[rows] + 1).tolist()
        if type(self.data) is _Bytes:
            buf = self.data.buf
            raw = [buf[s:e] for s, e in zip(starts, ends, strict=True)]
        else:
            get = self.data.get
            raw = [
                get(s, e, k) for s, e, k in zip(starts, ends, self.key[rows].tolist(), strict=True)
            ]
        out = [b.decode("utf-8", errors="replace") for b in raw]
        # Most kinds' value is the match itself: only the others cost a call each.
        recs = self.engine.recognizers
        for i in np.flatnonzero(~self.engine.plain_value[kinds]).tolist():
            out[i] = recs[int(kinds[i])].value(out[i])
        return out

    def findings(self) -> list[Finding]:
        names, recs = self.engine.names, self.engine.recognizers
        return [
            Finding(names[k], CONFIDENCES[lv], s, e, value, recs[k].checksum, ctx)
            for k, lv, s, e, value, ctx in zip(
                self.kind.tolist(),
                self.level.tolist(),
                self.start.tolist(),
                self.end.tolist(),
                self.values(),
                self.context.tolist(),
                strict=True,
            )
        ]


class _Bytes:
    """Read access to the scanned bytes, by buffer offset."""

    def __init__(self, buf: bytes) -> None:
        self.buf = buf
        self.array = np.frombuffer(buf, dtype=np.uint8)

    def get(self, start: int, end: int, key: int | None = None) -> bytes:
        """Bytes ``start:end``; ``key`` is the end of the match they belong to."""
        return self.buf[start:end]

    def matrix(self, starts: Ints, width: int) -> npt.NDArray[np.uint8]:
        # Rows of a sliding window view: a copy of ``width`` bytes per start, not a
        # gather through a (starts x width) index matrix.
        out: npt.NDArray[np.uint8] = _windows(self.buf, width)[starts]
        return out

    def before(self, starts: Ints, ends: Ints) -> npt.NDArray[np.uint8]:
        """The byte before each match."""
        return self.array[starts - 1]

    def text_before(self, end: int, width: int) -> tuple[bytes, int]:
        """Bytes holding at least the ``width`` bytes before ``end``, and the buffer
        offset where they begin."""
        return self.buf, 0

    def after_last(self, allowed: Table, ends: Ints, width: int) -> Ints:
        """Per match end, the offset just after the last byte not ``allowed`` before
        it, looking back ``width`` bytes at most (``end - width`` if none)."""
        if len(ends) * width < len(self.array):
            return _after_last(allowed, self.window(ends, width), ends)
        outside = np.flatnonzero(~allowed[self.array])
        at = np.searchsorted(outside, ends, "left") - 1
        last = np.where(at >= 0, outside[np.maximum(at, 0)] + 1, 0) if len(outside) else 0
        out: Ints = np.maximum(last, ends - width)
        return out

    def window(self, ends: Ints, width: int) -> npt.NDArray[np.uint8]:
        """The ``width`` bytes before each match end; a newline stands for bytes
        before the buffer."""
        at = ends[:, None] + np.arange(-width, 0)
        out: npt.NDArray[np.uint8] = self.array[np.maximum(at, 0)]
        out[at < 0] = 0x0A
        return out


class _StreamBytes(_Bytes):
    """What a stream kept: for each match end, the bytes just before it."""

    def __init__(self) -> None:
        super().__init__(b"")
        self.slices: dict[int, tuple[int, bytes]] = {}

    def get(self, start: int, end: int, key: int | None = None) -> bytes:
        for k in (end, end + 1) if key is None else (key,):
            kept = self.slices.get(k)
            if kept is not None and kept[0] <= start:
                base, data = kept
                return data[start - base : end - base]
        raise KeyError(f"bytes {start}:{end} were not kept")

    def matrix(self, starts: Ints, width: int) -> npt.NDArray[np.uint8]:
        joined = b"".join(self.get(s, s + width) for s in starts.tolist())
        return np.frombuffer(joined, dtype=np.uint8).reshape(len(starts), width)

    def before(self, starts: Ints, ends: Ints) -> npt.NDArray[np.uint8]:
        out = bytearray()
        for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
            base, data = self.slices[e]
            # A match longer than what was kept is dropped later (``MAX_SPAN``) but
            # still hides those it overlaps: a leftmost start has no left neighbour
            # of its class, which a newline stands for.
            out += data[s - 1 - base : s - base] if s > base else b"\n"
        return np.frombuffer(bytes(out), dtype=np.uint8)

    def text_before(self, end: int, width: int) -> tuple[bytes, int]:
        base = max(end - width, 0)
        return self.get(base, end, end), base

    def after_last(self, allowed: Table, ends: Ints, width: int) -> Ints:
        return _after_last(allowed, self.window(ends, width), ends)

    def window(self, ends: Ints, width: int) -> npt.NDArray[np.uint8]:
        rows = []
        for end in ends.tolist():
            base, data = self.slices[end]
            kept = data[max(end - width - base, 0) : end - base]
            rows.append(b"\n" * (width - len(kept)) + kept)
        return np.frombuffer(b"".join(rows), dtype=np.uint8).reshape(len(ends), width)


def _after_last(allowed: Table, window: npt.NDArray[np.uint8], ends: Ints) -> Ints:
    width = window.shape[1]
    outside = ~allowed[window]
    from_end = np.where(outside.any(axis=1), np.argmax(outside[:, ::-1], axis=1), width)
    out: Ints = ends - from_end
    return out


def _context_of(ends: list[Ints]) -> Ints:
    out: Ints = np.sort(np.concatenate(ends)) if ends else np.zeros(0, dtype=np.int64)
    return out


def _on_match(expr_id: int, start: int, end: int, flags: int, hits: list[int]) -> None:
    # Called once per match from C: every statement here costs per match.
    hits += (expr_id, start, end)


def _on_end(expr_id: int, start: int, end: int, flags: int, hits: list[int]) -> None:
    # Context words: no start of match to keep (a smaller list to convert).
    hits += (expr_id, end)


Table = npt.NDArray[np.bool_]  # 256 entries: which bytes a position accepts


class _NotFixed(Exception):
    """A regex the digit-run matcher cannot take (Hyperscan keeps it)."""


def _in_table(items: list[tuple[Any, Any]]) -> Table:
    table = np.zeros(256, dtype=np.bool_)
    negate = False
    for op, av in items:
        if op is _sre.LITERAL:
            table[av] = True
        elif op is _sre.RANGE:
            table[av[0] : av[1] + 1] = True
        elif op is _sre.NEGATE:
            negate = True
        else:
            raise _NotFixed(str(op))
    return ~table if negate else table


def _segments(parsed: Any) -> list[list[list[Table]]]:
    """A fixed-width regex as a sequence of segments, each a list of alternative
    sequences of byte tables (alternatives of one segment have one width)."""
    out: list[list[list[Table]]] = []
    for op, av in parsed:
        if op is _sre.LITERAL:
            table = np.zeros(256, dtype=np.bool_)
            table[av] = True
            out.append([[table]])
        elif op is _sre.IN:
            out.append([[_in_table(av)]])
        elif op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT):
            low, high, sub = av
            if low != high:
                raise _NotFixed("variable repeat")
            out.extend(_segments(sub) * low)
        elif op is _sre.SUBPATTERN:
            out.extend(_segments(av[-1]))
        elif op is _sre.BRANCH:
            alternatives = [alt for branch in av[1] for alt in _expand(_segments(branch))]
            if len({len(alt) for alt in alternatives}) != 1:
                raise _NotFixed("branches of different widths")
            out.append(alternatives)
        else:
            raise _NotFixed(str(op))
    return out


def _expand(segments: list[list[list[Table]]]) -> list[list[Table]]:
    alternatives: list[list[Table]] = [[]]
    for segment in segments:
        alternatives = [a + b for a in alternatives for b in segment]
    return alternatives


_DIGIT = np.zeros(256, dtype=np.bool_)
_DIGIT[0x30:0x3A] = True


@dataclass(frozen=True, slots=True)
class _DigitRunPattern:
    """A fixed-width pattern matched over the runs of digits of the buffer with
    numpy instead of Hyperscan: in dense text a Python callback per match costs far
    more than finding the match. Exact: every match begins a digit run at
    ``anchor``, so checking those runs' neighbourhoods finds them all."""

    expr: int
    width: int
    boundary: Table
    anchor: int  # offset in the match where a digit run starts
    run: int  # digit positions from the anchor on
    exact: bool  # the run must be exactly ``run`` long (else at least)
    #: Positions checked one by one: (positions in the match, a table per position).
    singles: tuple[Ints, npt.NDArray[np.bool_]]
    #: Alternatives over two positions, all at once: (the first position's column in
    #: a row with its boundaries, each pair's first entry in ``pairs[2]``, which byte
    #: pairs each accepts, flattened).
    pairs: tuple[Ints, Ints, Table]
    #: Wider alternatives: (positions, alternatives x positions x 256).
    branches: tuple[tuple[Ints, npt.NDArray[np.bool_]], ...]
    #: Whether the digit run itself proves the boundary before / after the match (a
    #: digit boundary next to the end of a run).
    bounded: tuple[bool, bool]
    #: The checks after the first single position, all at once: (columns of a row
    #: with its boundaries, their first entries in ``checks[2]``, which bytes each
    #: accepts, flattened). One gather for all, not one per position.
    checks: tuple[Ints, Ints, Table]
    #: Whether every match lies inside the buffer with its boundaries once its run
    #: does (the run is the whole match): no bounds check.
    inside: bool

    @classmethod
    def build(cls, expr: int, pattern: Pattern) -> _DigitRunPattern | None:
        assert pattern.width is not None
        try:
            segments = _segments(_sre_parser.parse(pattern.regex, re.ASCII))
        except (_NotFixed, re.error):
            return None
        merged: list[list[list[Table]]] = []
        for segment in segments:
            if len(segment) == 1 and merged and len(merged[-1]) == 1:
                merged[-1] = [merged[-1][0] + segment[0]]
            else:
                merged.append(segment)
        union = [np.any(np.stack(col), axis=0) for col in zip(*_expand(segments), strict=True)]
        if len(union) != pattern.width:
            return None
        only_digits = [not (u & ~_DIGIT).any() for u in union]
        no_digits = [not (u & _DIGIT).any() for u in union]
        anchor = next(
            (i for i in range(len(union)) if only_digits[i] and (i == 0 or no_digits[i - 1])),
            None,
        )
        if anchor is None:
            return None
        run = anchor
        while run < len(union) and only_digits[run]:
            run += 1
        boundary = _class_table(BOUNDARY_CLASS[pattern.boundary])
        if not boundary[0x30:0x3A].all():
            return None
        # Positions inside the digit run that take any digit need no check.
        free = np.zeros(len(union), dtype=np.bool_)
        free[anchor:run] = True
        single_at: list[int] = []
        single_tables: list[Table] = []
        pairs: list[tuple[int, Table]] = []
        branches: list[tuple[Ints, npt.NDArray[np.bool_]]] = []
        offset = 0
        for segment in merged:
            tables = np.stack([np.stack(alt) for alt in segment])
            width = tables.shape[1]
            columns = np.arange(offset, offset + width)
            offset += width
            needed = ~(free[columns] & (tables == _DIGIT).all(axis=(0, 2)))
            columns, tables = columns[needed], tables[:, needed]
            if len(columns) == 0:
                continue
            if len(tables) == 1 or len(columns) == 1:
                # One alternative, or one position left: each position on its own.
                single_at += columns.tolist()
                single_tables.extend(np.any(tables, axis=0))
            elif len(columns) == 2:
                pair = (tables[:, 0, :, None] & tables[:, 1, None, :]).any(axis=0)
                pairs.append((int(columns[0]), pair.reshape(-1)))
            else:
                branches.append((columns, tables))
        singles = (
            np.array(single_at, dtype=np.int64),
            np.stack(single_tables) if single_tables else np.zeros((0, 256), np.bool_),
        )
        exact = run == len(union) or no_digits[run]
        digits_only = bool((boundary == _DIGIT).all())
        bounded = (digits_only and anchor == 0, digits_only and exact and run == len(union))
        pair_at = np.array([c + 1 for c, _ in pairs], dtype=np.int64)
        merged_pairs = (
            pair_at,
            np.arange(len(pairs), dtype=np.int64) << 16,
            np.concatenate([t for _, t in pairs]) if pairs else np.zeros(0, np.bool_),
        )
        check_at = [c + 1 for c in single_at[1:]]
        check_tables = single_tables[1:]
        for side, column in enumerate((0, pattern.width + 1)):
            if not bounded[side]:
                check_at.append(column)
                check_tables.append(~boundary)
        checks = (
            np.array(check_at, dtype=np.int64),
            np.arange(len(check_at), dtype=np.int64) * 256,
            np.concatenate(check_tables) if check_tables else np.zeros(0, np.bool_),
        )
        return cls(
            expr,
            pattern.width,
            boundary,
            anchor,
            run - anchor,
            exact,
            singles,
            merged_pairs,
            tuple(branches),
            bounded,
            checks,
            anchor == 0 and exact and run == len(union),
        )

    def matches(self, array: npt.NDArray[np.uint8], runs: _Runs) -> Candidates:
        """Every match Hyperscan would find (spans without the boundary bytes), with
        its bytes for validation."""
        high = self.run if self.exact else self.width - self.anchor
        starts = runs.starts(self.run, high)
        if len(starts) == 0:  # most patterns in sparse text: no numpy work past here
            return Candidates(starts, starts, np.zeros((0, self.width), dtype=np.uint8))
        if not self.inside:
            starts = starts - self.anchor
            starts = starts[(starts >= 1) & (starts + self.width < len(array))]
        columns, tables = self.singles
        if len(columns):
            # Most candidates of some patterns fail at the first position checked (a
            # landline's trunk 0): narrow on it before copying the rest.
            starts = starts[tables[0][array[starts + columns[0]]]]
        if len(starts) == 0:
            return Candidates(starts, starts, np.zeros((0, self.width), dtype=np.uint8))
        # One copy of each candidate's bytes with its boundaries, then every check on
        # its columns: cheaper than an index array and a gather per position.
        rows = _windows(array, self.width + 2)[starts - 1]
        at, first, accepts = self.checks
        if len(at):
            ok = accepts[rows[:, at] + first].all(axis=1)
        else:
            ok = np.ones(len(starts), dtype=np.bool_)
        at, first, accepts = self.pairs
        if len(at):
            pairs = (rows[:, at].astype(np.intp) << 8 | rows[:, at + 1]) + first
            ok &= accepts[pairs].all(axis=1)
        for at, alternatives in self.branches:
            values = rows[:, at + 1]
            ok &= alternatives[:, np.arange(len(at)), values].all(axis=2).any(axis=0)
        starts = starts[ok]
        return Candidates(starts, starts + self.width, rows[ok, 1:-1])


def _windows(data: Any, width: int) -> npt.NDArray[np.uint8]:
    """Every ``width`` consecutive bytes of ``data`` (bytes or a uint8 array) as
    the rows of a read-only view: what ``sliding_window_view`` returns, in one C
    call instead of its ~20 us of Python checks (a call per pattern per scan)."""
    n = len(data) - width + 1
    if n <= 0:
        return np.zeros((0, width), dtype=np.uint8)
    return np.ndarray((n, width), np.uint8, buffer=data, strides=(1, 1))


@dataclass(frozen=True, slots=True)
class _Runs:
    """The runs of digits of a buffer, by length (then by position)."""

    lengths: npt.NDArray[np.uint8]  # sorted, at most 255
    at: Ints  # where each run starts
    #: Where the runs of each length (0 to 256) begin in ``at``: a slice per pattern
    #: without a numpy call each (sparse text: most patterns find nothing).
    bounds: list[int]

    @classmethod
    def of(cls, array: npt.NDArray[np.uint8]) -> _Runs:
        # The buffer starts and ends with a newline: changes pair up as runs.
        digit = (array - 0x30) < 10
        changes = np.flatnonzero(digit[1:] != digit[:-1]) + 1
        at = changes[0::2]
        # Lengths past 255 all mean "longer than any pattern": one stable sort on
        # small keys (radix), then each pattern takes a slice, not a pass over all.
        lengths = np.minimum(changes[1::2] - at, 255).astype(np.uint8)
        order = np.argsort(lengths, kind="stable")
        lengths = lengths[order]
        bounds = np.searchsorted(lengths, np.arange(257), "left").tolist()
        return cls(lengths, at[order], bounds)

    def starts(self, low: int, high: int) -> Ints:
        """Starts of the runs of ``low`` to ``high`` digits."""
        return self.at[self.bounds[low] : self.bounds[min(high + 1, 256)]]


def _possible_bytes(regex: bytes) -> Table:
    """Every byte a match of ``regex`` may contain (all of them if unsure)."""
    table = np.zeros(256, dtype=np.bool_)

    def walk(parsed: Any) -> None:
        for op, av in parsed:
            if op is _sre.LITERAL:
                table[av] = True
            elif op is _sre.IN:
                table[_in_table(av)] = True
            elif op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT):
                walk(av[2])
            elif op is _sre.SUBPATTERN:
                walk(av[-1])
            elif op is _sre.BRANCH:
                for branch in av[1]:
                    walk(branch)
            else:
                raise _NotFixed(str(op))

    try:
        walk(_sre_parser.parse(regex.decode("latin-1"), re.ASCII))
    except (_NotFixed, re.error):
        table[:] = True
    return table


def _class_table(chars: str) -> npt.NDArray[np.bool_]:
    table = np.zeros(256, dtype=np.bool_)
    for code in range(256):
        table[code] = re.fullmatch(f"[{chars}]", chr(code)) is not None
    return table


class Engine:
    """Every recognizer's patterns in one Hyperscan database.

    >>> [f.type for f in Engine().scan("身份证号：11010519491231002X")]
    ['china_resident_id']
    """

    def __init__(self, recognizers: Mapping[str, type[Recognizer]] | None = None) -> None:
        chosen = RECOGNIZERS if recognizers is None else recognizers
        self.names: list[str] = list(chosen)
        self.recognizers: list[Recognizer] = [cls() for cls in chosen.values()]
        #: Whether a kind's value is its match as it is.
        self.plain_value = np.array(
            [getattr(cls, "value", None) is BaseRecognizer.value for cls in chosen.values()],
            dtype=np.bool_,
        )
        #: Whether a kind may call some of its valid candidates doubtful.
        self.may_doubt = [
            getattr(cls, "doubtful", None) is not BaseRecognizer.doubtful for cls in chosen.values()
        ]
        #: Whether a kind is validated beyond its pattern (medium confidence at least).
        self.checksum = np.array([int(r.checksum) for r in self.recognizers], dtype=np.int64)
        self._exprs: list[_Expr] = []
        self._hs: list[bytes] = []
        self._flags: list[int] = []
        self._tails: dict[tuple[int, int], re.Pattern[bytes]] = {}
        #: Bytes a tail may contain (a superset): where its match cannot begin before.
        self._tail_bytes: dict[tuple[int, int], Table] = {}
        self._left: dict[tuple[int, int], npt.NDArray[np.bool_]] = {}
        #: Anchored patterns: (anchor byte, bytes of the run before it).
        self._anchors: dict[tuple[int, int], tuple[int, Table]] = {}
        self._block_only: set[int] = set()
        self._stream_only: set[int] = set()
        #: Context expression -> the recognizers it serves: a word several kinds share
        #: (电话, phone) is one expression, so one callback per occurrence.
        self._context_recs: dict[int, list[int]] = {}
        words: dict[tuple[bytes, int], int] = {}
        for r, rec in enumerate(self.recognizers):
            for p, pattern in enumerate(rec.patterns):
                self._add_pattern(r, p, pattern)
            for word in rec.context:
                ascii_word = word.isascii()
                body = re.escape(word.lower() if ascii_word else word)
                regex = (f"[^A-Za-z]{body}[^A-Za-z]" if ascii_word else f"(?:{body})").encode()
                flags = hyperscan.HS_FLAG_CASELESS if ascii_word else 0
                gid = words.get((regex, flags))
                if gid is None:
                    gid = words[(regex, flags)] = len(self._exprs)
                    self._add(_Expr("context", r, -1, 1 if ascii_word else 0), regex, flags)
                recs = self._context_recs.setdefault(gid, [])
                if r not in recs:
                    recs.append(r)
        self._widths = np.array([e.width for e in self._exprs], dtype=np.int64)
        #: Per recognizer: which expressions are context words of its.
        self._serves = [
            np.isin(
                np.arange(len(self._exprs)), [g for g, rs in self._context_recs.items() if r in rs]
            )
            for r in range(len(self.recognizers))
        ]
        self._digit_runs = [
            d
            for i, e in enumerate(self._exprs)
            if e.role == "fixed"
            and (d := _DigitRunPattern.build(i, self.recognizers[e.rec].patterns[e.pattern]))
        ]
        not_block = {d.expr for d in self._digit_runs} | self._stream_only
        redundant, self._derived = self._derive_context(
            {w.decode(): gid for (w, _), gid in words.items() if not w.startswith(b"[")}
        )
        derived = redundant | {w for pairs in self._derived.values() for w, _ in pairs}
        context = set(self._context_recs)
        self._block = self._compile_block(
            [i for i in range(len(self._hs)) if i not in not_block and i not in context]
        )
        #: Context words are looked for only when confidences are asked for.
        self._context_db = self._compile_block(
            [i for i in sorted(context) if i not in not_block and i not in derived]
        )
        self._stream_db: hyperscan.Database | None = None
        #: ASCII characters whose full-width forms must be folded (see :meth:`_buffer`).
        self._folds = _class_table(re.escape(self._significant()))

    def _significant(self) -> str:
        """The ASCII characters whose full-width forms folding must turn into them:
        those any pattern, boundary, left class, prefix or context word (or its
        boundary: letters) can use. A pattern that spells out both forms of a
        character (``(?::|：)``, a label's colon) does not need it folded."""
        table = np.zeros(256, dtype=np.bool_)
        for rec in self.recognizers:
            for pattern in rec.patterns:
                regex = pattern.tail_bytes().decode("utf-8")
                for code in range(0x21, 0x7F):
                    both = f"(?:{re.escape(chr(code))}|{chr(code + _FULL_WIDTH_SHIFT)})"
                    regex = regex.replace(both, "")
                table |= _possible_bytes(regex.encode("utf-8"))
                if pattern.width is not None:
                    table |= _class_table(BOUNDARY_CLASS[pattern.boundary])
                if pattern.left is not None:
                    table |= _class_table(pattern.left)
                for word in pattern.prefixes:
                    table[list(word.encode("utf-8"))] = True
            for word in rec.context:
                if word.isascii():
                    table |= _class_table("A-Za-z")
                table[list(word.lower().encode("utf-8"))] = True
                table[list(word.upper().encode("utf-8"))] = True
        return "".join(chr(c) for c in range(0x21, 0x7F) if table[c])

    def _derive_context(
        self, words: dict[str, int]
    ) -> tuple[set[int], dict[int, list[tuple[int, bytes]]]]:
        """Context words block mode finds without a match callback each (dense text has
        a context word per finding): a word ending in another that serves the same
        kinds ends where that one does (联系电话, 电话: not needed), a word beginning
        with another is that word followed by the rest (身份证号: 身份证 and 号).
        Returns the words not needed and ``{shorter: [(longer, rest)]}``."""
        texts = {w.removeprefix("(?:").removesuffix(")"): gid for w, gid in words.items()}
        redundant: set[int] = set()
        derived: dict[int, list[tuple[int, bytes]]] = {}
        kept: dict[str, int] = {}
        for text, gid in sorted(texts.items(), key=lambda item: len(item[0])):
            recs = set(self._context_recs[gid])
            if any(
                text.endswith(t) and recs <= set(self._context_recs[k]) for t, k in kept.items()
            ):
                redundant.add(gid)
                continue
            prefix = max((t for t in kept if text.startswith(t)), key=len, default=None)
            if prefix is not None:
                rest = re.sub(r"\\(.)", r"\1", text[len(prefix) :]).encode()
                derived.setdefault(kept[prefix], []).append((gid, rest))
                continue
            kept[text] = gid
        return redundant, derived

    def _add(self, expr: _Expr, regex: bytes, flags: int) -> None:
        self._exprs.append(expr)
        self._hs.append(regex)
        self._flags.append(flags)

    def _add_pattern(self, r: int, p: int, pattern: Pattern) -> None:
        if pattern.width is not None:
            self._add(_Expr("fixed", r, p, pattern.width), pattern.hyperscan(), 0)
        elif pattern.prefixes:
            for word in pattern.prefixes:
                raw = word.encode()
                self._add(_Expr("prefix", r, p, len(raw)), f"(?:{re.escape(word)})".encode(), 0)
            self._add(_Expr("tail", r, p, 0), pattern.tail_bytes(), 0)
            self._tails[(r, p)] = re.compile(pattern.tail_bytes(), re.DOTALL)
            self._tail_bytes[(r, p)] = _possible_bytes(pattern.tail_bytes())
        else:
            if pattern.anchor is not None and pattern.left is not None:
                # Block mode finds the start from the end; a stream, which keeps
                # only the bytes just before each match, has Hyperscan track it.
                self._block_only.add(len(self._exprs))
                self._add(_Expr("anchored", r, p, 0), pattern.hyperscan(), 0)
                self._anchors[(r, p)] = (ord(pattern.anchor), _class_table(pattern.left))
                self._stream_only.add(len(self._exprs))
            self._add(
                _Expr("variable", r, p, 0), pattern.hyperscan(), hyperscan.HS_FLAG_SOM_LEFTMOST
            )
            if pattern.left is not None:
                self._left[(r, p)] = _class_table(pattern.left)

    def _compile_block(self, ids: list[int]) -> hyperscan.Database | None:
        return self._compile(hyperscan.HS_MODE_BLOCK, ids) if ids else None

    def _compile(self, mode: int, ids: list[int] | None = None) -> hyperscan.Database:
        chosen = list(range(len(self._hs))) if ids is None else ids
        db = hyperscan.Database(mode=mode)
        db.compile(
            expressions=[self._hs[i] for i in chosen],
            ids=chosen,
            elements=len(chosen),
            flags=[self._flags[i] for i in chosen],
        )
        return db

    # -- scanning ---------------------------------------------------------------

    def scan(self, data: bytes | str) -> list[Finding]:
        """Findings in ``data`` (UTF-8 bytes or text), offsets in its folded UTF-8."""
        raw = data.encode("utf-8") if isinstance(data, str) else data
        return self.find(raw).findings()

    def find(self, data: bytes | str) -> Found:
        """:meth:`scan` as arrays: counts and verdicts need no object per finding, and
        confidences are weighed (context words looked for) only when asked for."""
        raw = data.encode("utf-8") if isinstance(data, str) else data
        buf, lead = self._buffer(raw)
        array = np.frombuffer(buf, dtype=np.uint8)
        hits: list[int] = []
        if self._block is not None:
            # The context is ``hits`` itself (typed ``object`` in the stubs): a check
            # in the callback would cost per match.
            self._block.scan(
                buf,
                match_event_handler=_on_match,  # type: ignore[arg-type]
                context=hits,
            )
        scanned = _Bytes(buf)
        found = self.candidates(np.array(hits, dtype=np.int64).reshape(-1, 3), scanned)
        if self._digit_runs:
            runs = _Runs.of(array)
            for d in self._digit_runs:
                expr = self._exprs[d.expr]
                found[expr.rec].append((expr.pattern, d.matches(array, runs)))
        return self.finish(found, scanned, lazy=True, lead=lead)

    def _buffer(self, raw: bytes) -> tuple[bytes, Ints | None]:
        """The buffer to scan, between newlines, and the offsets of the full-width
        characters left in it. Folding (a compaction of the whole buffer) is only
        done when a full-width character could change a finding: one that folds to
        a character some pattern, boundary, context word or label uses
        (:meth:`_significant`). Chinese text's full-width commas, colons and
        parentheses otherwise stay, and offsets are moved to the folded text's."""
        if b"\xef\xbc" not in raw and b"\xef\xbd" not in raw:
            return b"".join((b"\n", raw, b"\n")), None
        array = np.frombuffer(raw, dtype=np.uint8)
        lead, fold = _full_width(array, self._folds)
        if fold:
            return _compact(array, lead, b"\n"), None
        # Buffer offsets: one past the leading newline.
        return b"".join((b"\n", raw, b"\n")), lead + 1 if len(lead) else None

    def _context_ends(self, data: _Bytes) -> dict[int, Ints]:
        """Per recognizer, the sorted ends of its context words in ``data`` (block mode)."""
        hits: list[int] = []
        if self._context_db is not None:
            self._context_db.scan(
                data.buf,
                match_event_handler=_on_end,  # type: ignore[arg-type]
                context=hits,
            )
        found = np.array(hits, dtype=np.int64).reshape(-1, 2)
        found = np.concatenate([found, self._derive(found, data)])
        gid = found[:, 0]
        ends = found[:, 1] - self._widths[gid]
        # Sorted once (Hyperscan's order, then the derived words): each kind's words
        # are then a mask away.
        order = np.argsort(ends, kind="stable")
        gid, ends = gid[order], ends[order]
        return {r: ends[serves[gid]] for r, serves in enumerate(self._serves)}

    def stream(self) -> StreamScan:
        """A scan fed piece by piece (an upload body): ``feed`` then ``close``."""
        if self._stream_db is None:
            self._stream_db = self._compile(
                hyperscan.HS_MODE_STREAM | hyperscan.HS_MODE_SOM_HORIZON_LARGE,
                [i for i in range(len(self._hs)) if i not in self._block_only],
            )
        return StreamScan(self, self._stream_db)

    def candidates(self, hits: npt.NDArray[np.int64], data: _Bytes) -> dict[int, list[Any]]:
        """Per recognizer: ``[(pattern, Candidates)]`` and context word ends."""
        out: dict[int, list[Any]] = {r: [] for r in range(len(self.recognizers))}
        if len(hits) == 0:
            return out
        order = np.argsort(hits[:, 0], kind="stable")
        hits = hits[order]
        ids, cuts = np.unique(hits[:, 0], return_index=True)
        groups = dict(zip(ids.tolist(), np.split(hits, cuts[1:]), strict=True))
        prefixes: dict[tuple[int, int], list[npt.NDArray[np.int64]]] = {}
        for gid, group in groups.items():
            expr = self._exprs[gid]
            if expr.role == "prefix":
                ends = group[:, 2]
                prefixes.setdefault((expr.rec, expr.pattern), []).append(
                    np.stack([ends - expr.width, ends], axis=1)
                )
        for gid, group in groups.items():
            expr = self._exprs[gid]
            key = (expr.rec, expr.pattern)
            if expr.role == "fixed":
                ends = group[:, 2] - 1
                out[expr.rec].append((expr.pattern, Candidates(ends - expr.width, ends)))
            elif expr.role == "variable":
                starts, ends = group[:, 1], group[:, 2]
                left = self._left.get(key)
                if left is not None:
                    ok = ~left[data.before(starts, ends)]
                    starts, ends = starts[ok], ends[ok]
                out[expr.rec].append((expr.pattern, _leftmost_longest(starts, ends)))
            elif expr.role == "anchored":
                ends = np.unique(group[:, 2])
                starts = self._anchored_starts(key, ends, data)
                out[expr.rec].append((expr.pattern, _leftmost_longest(starts, ends)))
            elif expr.role == "tail":
                words = np.concatenate(prefixes.get(key, [np.zeros((0, 2), np.int64)]))
                starts, ends = self._join_prefixes(words, group[:, 2], key, data)
                out[expr.rec].append((expr.pattern, _leftmost_longest(starts, ends)))
            elif expr.role == "context":
                ends = group[:, 2] - expr.width
                for r in self._context_recs[gid]:
                    out[r].append((-1, ends))
        return out

    def _anchored_starts(self, key: tuple[int, int], ends: Ints, data: _Bytes) -> Ints:
        """Where Hyperscan's leftmost start of match would be: the start of the run
        of ``left`` bytes before the last anchor byte before each end."""
        anchor, run = self._anchors[key]
        anchors = np.flatnonzero(data.array == anchor)
        at = anchors[np.searchsorted(anchors, ends, "left") - 1]
        unique, inverse = np.unique(at, return_inverse=True)
        starts = data.after_last(run, unique, MAX_SPAN)
        # A run longer than the look-back: its start from the whole buffer before it.
        for i in np.flatnonzero(starts == unique - MAX_SPAN).tolist():
            outside = np.flatnonzero(~run[data.array[: starts[i]]])
            starts[i] = outside[-1] + 1 if len(outside) else 0
        out: Ints = starts[inverse]
        return out

    def _join_prefixes(
        self, words: npt.NDArray[np.int64], tail_ends: Ints, key: tuple[int, int], data: _Bytes
    ) -> tuple[Ints, Ints]:
        """Spans made of a prefix word and a tail match right after it."""
        if len(words) == 0 or len(tail_ends) == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        tail = self._tails[key]
        # Sorted by start: the first word whose tail matches is the leftmost.
        words = words[np.lexsort((words[:, 1], words[:, 0]))]
        by_end = np.argsort(words[:, 1], kind="stable")
        word_ends = words[by_end, 1]
        # A word cannot start the match if a byte the tail never contains (the newline
        # between the cells of a column) sits between it and the end: in a column,
        # the earlier cells' division words all fall inside the window.
        floor = data.after_last(self._tail_bytes[key], tail_ends, MAX_SPAN)
        lo_all = np.searchsorted(word_ends, np.maximum(tail_ends - MAX_SPAN, floor), "left")
        hi_all = np.searchsorted(word_ends, tail_ends, "right")
        # Every (tail match, word) pair in reach, by tail then word start.
        chosen = np.flatnonzero(hi_all > lo_all)
        counts = hi_all[chosen] - lo_all[chosen]
        pair_tail = np.repeat(chosen, counts)
        first_pair = np.cumsum(counts) - counts
        pair_word = by_end[
            np.arange(len(pair_tail)) - np.repeat(first_pair - lo_all[chosen], counts)
        ]
        pair_end = tail_ends[pair_tail]
        near = words[pair_word, 0] >= pair_end - MAX_SPAN - 1
        pair_tail, pair_word, pair_end = pair_tail[near], pair_word[near], pair_end[near]
        order = np.lexsort((pair_word, pair_tail))
        pair_tail, pair_word, pair_end = pair_tail[order], pair_word[order], pair_end[order]
        new_tail = np.ones(len(pair_tail), dtype=np.bool_)
        new_tail[1:] = pair_tail[1:] != pair_tail[:-1]
        group = np.flatnonzero(new_tail)
        rank = np.arange(len(pair_tail)) - np.repeat(
            group, np.diff(np.append(group, len(pair_tail)))
        )
        # Rounds: each tail's leftmost word first, the next only where it failed (a
        # call of the tail's ``fullmatch`` per pair, from C through ``map``).
        word_of = np.full(len(tail_ends), -1, dtype=np.int64)
        for k in range(int(rank.max()) + 1 if len(rank) else 0):
            sel = np.flatnonzero((rank == k) & (word_of[pair_tail] < 0))
            if len(sel) == 0:
                break
            w_end, end = words[pair_word[sel], 1], pair_end[sel]
            if type(data) is _Bytes:
                texts: Any = itertools.repeat(data.buf)
                base: Any = 0
            else:
                kept = [data.text_before(e, MAX_SPAN + 1) for e in end.tolist()]
                texts = [t for t, _ in kept]
                base = np.array([b for _, b in kept], dtype=np.int64)
            ok = np.fromiter(
                map(
                    bool, map(tail.fullmatch, texts, (w_end - base).tolist(), (end - base).tolist())
                ),
                dtype=np.bool_,
                count=len(sel),
            )
            word_of[pair_tail[sel[ok]]] = pair_word[sel[ok]]
        hit = np.flatnonzero(word_of >= 0)
        return words[word_of[hit], 0], tail_ends[hit]

    def _found(self, hits: npt.NDArray[np.int64], data: _Bytes) -> Found:
        return self.finish(self.candidates(hits, data), data)

    def _derive(self, hits: npt.NDArray[np.int64], data: _Bytes) -> npt.NDArray[np.int64]:
        """``(expression, end)`` of the context words left out of the block database,
        from those of the words they begin with."""
        out = [np.zeros((0, 2), dtype=np.int64)]
        for gid, words in self._derived.items():
            ends = hits[hits[:, 0] == gid, 1]
            for word, rest in words:
                found = ends[ends + len(rest) <= len(data.array)]
                for i, byte in enumerate(rest):
                    found = found[data.array[found + i] == byte]
                found = found + len(rest)
                out.append(np.stack([np.full(len(found), word), found], 1))
        return np.concatenate(out)

    def finish(
        self,
        found: dict[int, list[Any]],
        data: _Bytes,
        *,
        lazy: bool = False,
        lead: Ints | None = None,
    ) -> Found:
        """Validate candidates, settle identical spans (the first recognizer in
        ``RECOGNIZERS`` order wins) and drop a fixed-width finding inside another
        of its kind (``+86 138 0013 8000`` holds ``138 0013 8000``); offsets lose the
        leading boundary byte of the buffer. Context word ends come in ``found`` as
        ``(-1, ends)``; ``lazy`` leaves them to be looked for when confidences are
        first asked for. ``lead``: the full-width characters ``data`` holds unfolded."""
        kinds: list[Ints] = []
        starts_: list[Ints] = []
        ends_: list[Ints] = []
        fixed: list[npt.NDArray[np.bool_]] = []
        weak: list[Bools] = []
        for r, rec in enumerate(self.recognizers):
            for p, cand in found[r]:
                if p == -1 or len(cand.starts) == 0:
                    continue
                pattern = rec.patterns[p]
                starts, ends = cand.starts, cand.ends
                if cand.values is not None:
                    values: Any = cand.values
                elif pattern.width is not None:
                    values = data.matrix(starts, pattern.width)
                else:
                    short = (ends - starts) <= MAX_SPAN
                    starts, ends = starts[short], ends[short]
                    values = [
                        data.get(s, e, e)
                        for s, e in zip(starts.tolist(), ends.tolist(), strict=True)
                    ]
                ok = rec.validate(p, values)
                n = int(np.count_nonzero(ok))
                doubtful = None
                if self.may_doubt[r] and n:
                    valid = (
                        values[ok]
                        if isinstance(values, np.ndarray)
                        else [v for v, k in zip(values, ok.tolist(), strict=True) if k]
                    )
                    doubtful = rec.doubtful(p, valid)
                weak.append(np.zeros(n, dtype=np.bool_) if doubtful is None else doubtful)
                kinds.append(np.full(n, r, dtype=np.int64))
                starts_.append(starts[ok])
                ends_.append(ends[ok])
                fixed.append(np.full(len(kinds[-1]), pattern.width is not None))
        contexts = (
            None if lazy else {r: _context_of([c for p, c in found[r] if p == -1]) for r in found}
        )
        if not kinds:
            return Found.empty(self, data, lead)
        kind, start, end = np.concatenate(kinds), np.concatenate(starts_), np.concatenate(ends_)
        # Stable sort by span keeps candidates in claim order within a span: keep the first.
        order = np.lexsort((end, start))
        s_start, s_end = start[order], end[order]
        first = np.ones(len(order), dtype=np.bool_)
        first[1:] = (s_start[1:] != s_start[:-1]) | (s_end[1:] != s_end[:-1])
        keep = order[first]
        is_fixed = np.concatenate(fixed)
        keep = keep[~_inside_own_kind(kind[keep], start[keep], end[keep], is_fixed[keep])]
        key = np.where(is_fixed[keep], end[keep] + 1, end[keep])
        return Found(
            self,
            data,
            kind[keep],
            start[keep] - 1,
            end[keep] - 1,
            key,
            contexts,
            lead,
            np.concatenate(weak)[keep],
        )

    def weigh(self, found: Found, contexts: dict[int, Ints] | None) -> tuple[Ints, Bools]:
        """Confidence levels of ``found`` and whether a context word is near each: one
        ending within reach before, inside or after the match."""
        if contexts is None:
            contexts = self._context_ends(found.data)
        near = np.zeros(len(found), dtype=np.bool_)
        for r, context in contexts.items():
            if len(context) == 0:
                continue
            # Distances are the folded text's, whatever was scanned.
            context = _folded(context, found.lead)
            rows = np.flatnonzero(found.kind == r)
            # Buffer offsets: the findings' plus the leading boundary byte.
            starts, ends = found.start[rows] + 1, found.end[rows] + 1
            lo = np.searchsorted(context, starts - CONTEXT_BYTES, "left")
            ok = lo < len(context)
            ok[ok] = context[lo[ok]] <= ends[ok] + CONTEXT_BYTES
            near[rows] = ok
        level: Ints = np.minimum(self.checksum[found.kind] + near, 2)
        level[found.weak] = 0
        return level, near

    # -- the reference ----------------------------------------------------------

    def reference_scan(self, text: str) -> list[Finding]:
        """The same findings through Python ``re`` (slow; the tests' reference)."""
        folded = fold_text(text)
        buf = b"\n" + folded.encode("utf-8") + b"\n"
        offsets = _byte_offsets(folded) + 1
        found: dict[int, list[Any]] = {r: [] for r in range(len(self.recognizers))}
        for r, rec in enumerate(self.recognizers):
            for p, pattern in enumerate(rec.patterns):
                compiled = _python_pattern(pattern)
                if pattern.width is not None:
                    spans = [(m.start(1), m.end(1)) for m in compiled.finditer(folded)]
                else:
                    spans = [m.span() for m in compiled.finditer(folded)]
                arr = np.array(spans, dtype=np.int64).reshape(-1, 2)
                found[r].append((p, Candidates(offsets[arr[:, 0]], offsets[arr[:, 1]])))
            ends = []
            for word in rec.context:
                if word.isascii():
                    rx = re.compile(
                        f"(?<![A-Za-z]){re.escape(word)}(?![A-Za-z])", re.IGNORECASE | re.ASCII
                    )
                else:
                    rx = re.compile(re.escape(word))
                ends += [m.end() for m in rx.finditer(folded)]
            found[r].append((-1, offsets[np.array(ends, dtype=np.int64)]))
        return self.finish(found, _Bytes(buf)).findings()


@cache
def _python_pattern(pattern: Pattern) -> re.Pattern[str]:
    return re.compile(pattern.python(), re.ASCII | re.DOTALL)


def _byte_offsets(text: str) -> Ints:
    """Byte offset in UTF-8 of each character offset (one past the end included)."""
    codes = np.frombuffer(text.encode("utf-32-le"), dtype="<u4")
    sizes = 1 + (codes >= 0x80) + (codes >= 0x800) + (codes >= 0x10000)
    return np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)])


def char_offsets(data: bytes | memoryview, offsets: Ints) -> Ints:
    """Character offsets of UTF-8 byte offsets into ``data``: bytes before minus
    continuation bytes before."""
    if len(offsets) == 0:
        return offsets
    array = np.frombuffer(data, dtype=np.uint8)
    continuation = (array & 0xC0) == 0x80
    order = np.argsort(offsets, kind="stable")
    sorted_offsets = np.clip(offsets[order], 0, len(array))
    bounds = np.concatenate([[0], sorted_offsets])
    counts = np.zeros(len(sorted_offsets), dtype=np.int64)
    for i in range(len(sorted_offsets)):  # only when locations are asked for
        counts[i] = int(np.count_nonzero(continuation[bounds[i] : bounds[i + 1]]))
    out = np.empty_like(offsets)
    out[order] = sorted_offsets - np.cumsum(counts)
    return out


def _inside_own_kind(kind: Ints, start: Ints, end: Ints, fixed: Bools) -> Bools:
    """Which fixed-width findings lie inside another fixed-width finding of their
    kind (spans distinct, sorted by start then end)."""
    out = np.zeros(len(kind), dtype=np.bool_)
    rows = np.flatnonzero(fixed)
    if len(rows) < 2:
        return out
    # Most texts nest nothing: one running maximum over the spans as sorted (any
    # kind) says so, before a sort by kind (~3 ms per 70,000 findings).
    s, e = start[rows], end[rows]
    nested = np.zeros(len(rows), dtype=np.bool_)
    nested[1:] = np.maximum.accumulate(e)[:-1] >= e[1:]
    nested[:-1] |= s[1:] == s[:-1]
    if not nested.any():
        return out
    # By kind, start, longest first: a finding is inside one before it in its kind
    # when the furthest end so far reaches its end. Kinds are kept apart by an
    # offset larger than any end, so one running maximum serves them all.
    k, s, e = kind[rows], start[rows], end[rows]
    order = np.lexsort((-e, s, k))
    shifted = e[order] + k[order] * (int(end.max()) + 1)
    reach = np.maximum.accumulate(shifted)
    inside = np.zeros(len(rows), dtype=np.bool_)
    inside[1:] = reach[:-1] >= shifted[1:]
    out[rows[order[inside]]] = True
    return out


def _leftmost_longest(starts: Ints, ends: Ints) -> Candidates:
    """What ``re.finditer`` returns for these greedy patterns: at each leftmost start
    the longest match, then on from its end."""
    if len(starts) == 0:
        return Candidates(starts, ends)
    order = np.lexsort((-ends, starts))
    starts, ends = starts[order], ends[order]
    first = np.concatenate([[True], starts[1:] != starts[:-1]])
    starts, ends = starts[first], ends[first]
    keep_s: list[int] = []
    keep_e: list[int] = []
    last = -1
    for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
        if s >= last:
            keep_s.append(s)
            keep_e.append(e)
            last = e
    return Candidates(np.array(keep_s, np.int64), np.array(keep_e, np.int64))


class StreamScan:
    """One body scanned as it arrives; ``close`` returns the findings."""

    def __init__(self, engine: Engine, db: hyperscan.Database) -> None:
        self._engine = engine
        self._hits: list[int] = []
        self._kept = _StreamBytes()
        self._tail = b""
        self._seen = 0
        self._pending = b""  # an incomplete full-width character at the end of a piece
        # The binding does not hold a reference to the callback: keep one here.
        self._handler = self._on_match
        self._context = db.stream(match_event_handler=self._handler)
        self._stream: Any = self._context.__enter__()
        self._window = b""
        self._window_start = 0
        self._scan(b"\n")

    def _on_match(self, expr_id: int, start: int, end: int, flags: int, context: object) -> None:
        self._hits += (expr_id, start, end)
        if end not in self._kept.slices:
            base = max(end - _KEEP, self._window_start)
            self._kept.slices[end] = (
                base,
                self._window[base - self._window_start : end - self._window_start],
            )

    def _scan(self, piece: bytes) -> None:
        self._window = self._tail + piece
        self._window_start = self._seen - len(self._tail)
        self._stream.scan(piece)
        self._seen += len(piece)
        self._tail = self._window[-_KEEP:]

    def feed(self, piece: bytes) -> None:
        data = self._pending + piece
        # Hold back the start of a full-width character cut by the piece's end.
        cut = len(data)
        if data.endswith(b"\xef"):
            cut -= 1
        elif data.endswith((b"\xef\xbc", b"\xef\xbd")):
            cut -= 2
        self._pending = data[cut:]
        self._scan(fold_bytes(data[:cut]))

    def close(self) -> list[Finding]:
        self._scan(fold_bytes(self._pending) + b"\n")
        self._pending = b""
        self._context.__exit__(None, None, None)
        hits = np.array(self._hits, dtype=np.int64).reshape(-1, 3)
        return self._engine._found(hits, self._kept).findings()


def scan_text(text: str, engine: Engine | None = None) -> list[Finding]:
    """Findings in one text (see :class:`Engine`)."""
    return (engine or default_engine()).scan(text)


@cache
def default_engine() -> Engine:
    """One engine per process: compiling the database takes a moment."""
    return Engine()
