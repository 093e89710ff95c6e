"""The bytes a scan reads (:class:`Bytes`, :class:`StreamBytes`) and what it found (:class:`Found`).

Findings stay arrays until objects are asked for; context words are looked for
only when a confidence is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from molehunt.pii.engine.common import CONFIDENCES, Bools, Candidates, Ints, Table
from molehunt.pii.engine.digit_runs import windows
from molehunt.pii.engine.folding import to_folded
from molehunt.pii.engine.masking import PiiFinding

if TYPE_CHECKING:
    from molehunt.pii.engine.core import Engine


class Found:
    """The findings of one scan as arrays, one entry per finding in the order of
    (start, end): what counts and verdicts need, without an object per finding.
    ``level`` and ``context`` are weighed on first use (block mode looks for the
    context words then: counts never pay for them). :meth:`findings` makes the
    :class:`PiiFinding` objects (values, details, exact data match)."""

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
        data: Bytes,
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
            self._spans = (to_folded(start + 1, lead) - 1, to_folded(end + 1, lead) - 1)
        return self._spans

    @classmethod
    def empty(cls, engine: Engine, data: Bytes, lead: Ints | None = None) -> Found:
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
        if type(self.data) is Bytes:
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

    def findings(self) -> list[PiiFinding]:
        names, recs = self.engine.names, self.engine.recognizers
        return [
            PiiFinding(names[k], CONFIDENCES[lv], s, e, value, recs[k].checksum, ctx)
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


class Bytes:
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
        out: npt.NDArray[np.uint8] = windows(self.buf, width)[starts]
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


class StreamBytes(Bytes):
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


def context_of(ends: list[Ints]) -> Ints:
    """The end offsets of the context words found, sorted."""
    out: Ints = np.sort(np.concatenate(ends)) if ends else np.zeros(0, dtype=np.int64)
    return out


def on_match(expr_id: int, start: int, end: int, flags: int, hits: list[int]) -> None:
    """Hyperscan's callback for a match: keeps its expression, start and end."""
    # Called once per match from C: every statement here costs per match.
    hits += (expr_id, start, end)


def on_end(expr_id: int, start: int, end: int, flags: int, hits: list[int]) -> None:
    """Hyperscan's callback for a context word: keeps its expression and end."""
    # Context words: no start of match to keep (a smaller list to convert).
    hits += (expr_id, end)


def inside_own_kind(kind: Ints, start: Ints, end: Ints, fixed: Bools) -> Bools:
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


def leftmost_longest(starts: Ints, ends: Ints) -> Candidates:
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
