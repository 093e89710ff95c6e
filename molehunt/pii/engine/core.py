"""The scanning engine: every recognizer's patterns compiled into Hyperscan, scans in numpy."""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from functools import cache
from typing import Any

import hyperscan
import numpy as np
import numpy.typing as npt

from molehunt.pii.engine.common import CONTEXT_BYTES, MAX_SPAN, Bools, Candidates, Expr, Ints, Table
from molehunt.pii.engine.containers import (
    Bytes,
    Found,
    context_of,
    inside_own_kind,
    leftmost_longest,
    on_end,
    on_match,
)
from molehunt.pii.engine.digit_runs import DigitRunPattern, Runs, class_table, possible_bytes
from molehunt.pii.engine.folding import FULL_WIDTH_SHIFT, compact, full_width, to_folded
from molehunt.pii.engine.masking import PiiFinding
from molehunt.pii.engine.reference import reference_scan
from molehunt.pii.engine.stream import StreamScan
from molehunt.pii.recognizers import RECOGNIZERS, Pattern, Recognizer
from molehunt.pii.recognizers.base import BOUNDARY_CLASS, BaseRecognizer


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
        self._exprs: list[Expr] = []
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
                    self._add(Expr("context", r, -1, 1 if ascii_word else 0), regex, flags)
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
            and (d := DigitRunPattern.build(i, self.recognizers[e.rec].patterns[e.pattern]))
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
        self._folds = class_table(re.escape(self._significant()))

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
                    both = f"(?:{re.escape(chr(code))}|{chr(code + FULL_WIDTH_SHIFT)})"
                    regex = regex.replace(both, "")
                table |= possible_bytes(regex.encode("utf-8"))
                if pattern.width is not None:
                    table |= class_table(BOUNDARY_CLASS[pattern.boundary])
                if pattern.left is not None:
                    table |= class_table(pattern.left)
                for word in pattern.prefixes:
                    table[list(word.encode("utf-8"))] = True
            for word in rec.context:
                if word.isascii():
                    table |= class_table("A-Za-z")
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

    def _add(self, expr: Expr, regex: bytes, flags: int) -> None:
        self._exprs.append(expr)
        self._hs.append(regex)
        self._flags.append(flags)

    def _add_pattern(self, r: int, p: int, pattern: Pattern) -> None:
        if pattern.width is not None:
            self._add(Expr("fixed", r, p, pattern.width), pattern.hyperscan(), 0)
        elif pattern.prefixes:
            for word in pattern.prefixes:
                raw = word.encode()
                self._add(Expr("prefix", r, p, len(raw)), f"(?:{re.escape(word)})".encode(), 0)
            self._add(Expr("tail", r, p, 0), pattern.tail_bytes(), 0)
            self._tails[(r, p)] = re.compile(pattern.tail_bytes(), re.DOTALL)
            self._tail_bytes[(r, p)] = possible_bytes(pattern.tail_bytes())
        else:
            if pattern.anchor is not None and pattern.left is not None:
                # Block mode finds the start from the end; a stream, which keeps
                # only the bytes just before each match, has Hyperscan track it.
                self._block_only.add(len(self._exprs))
                self._add(Expr("anchored", r, p, 0), pattern.hyperscan(), 0)
                self._anchors[(r, p)] = (ord(pattern.anchor), class_table(pattern.left))
                self._stream_only.add(len(self._exprs))
            self._add(
                Expr("variable", r, p, 0), pattern.hyperscan(), hyperscan.HS_FLAG_SOM_LEFTMOST
            )
            if pattern.left is not None:
                self._left[(r, p)] = class_table(pattern.left)

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

    def scan(self, data: bytes | str) -> list[PiiFinding]:
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
                match_event_handler=on_match,  # type: ignore[arg-type]
                context=hits,
            )
        scanned = Bytes(buf)
        found = self.candidates(np.array(hits, dtype=np.int64).reshape(-1, 3), scanned)
        if self._digit_runs:
            runs = Runs.of(array)
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
        lead, fold = full_width(array, self._folds)
        if fold:
            return compact(array, lead, b"\n"), None
        # Buffer offsets: one past the leading newline.
        return b"".join((b"\n", raw, b"\n")), lead + 1 if len(lead) else None

    def _context_ends(self, data: Bytes) -> dict[int, Ints]:
        """Per recognizer, the sorted ends of its context words in ``data`` (block mode)."""
        hits: list[int] = []
        if self._context_db is not None:
            self._context_db.scan(
                data.buf,
                match_event_handler=on_end,  # type: ignore[arg-type]
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

    def candidates(self, hits: npt.NDArray[np.int64], data: Bytes) -> dict[int, list[Any]]:
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
                out[expr.rec].append((expr.pattern, leftmost_longest(starts, ends)))
            elif expr.role == "anchored":
                ends = np.unique(group[:, 2])
                starts = self._anchored_starts(key, ends, data)
                out[expr.rec].append((expr.pattern, leftmost_longest(starts, ends)))
            elif expr.role == "tail":
                words = np.concatenate(prefixes.get(key, [np.zeros((0, 2), np.int64)]))
                starts, ends = self._join_prefixes(words, group[:, 2], key, data)
                out[expr.rec].append((expr.pattern, leftmost_longest(starts, ends)))
            elif expr.role == "context":
                ends = group[:, 2] - expr.width
                for r in self._context_recs[gid]:
                    out[r].append((-1, ends))
        return out

    def _anchored_starts(self, key: tuple[int, int], ends: Ints, data: Bytes) -> Ints:
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
        self, words: npt.NDArray[np.int64], tail_ends: Ints, key: tuple[int, int], data: Bytes
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
            if type(data) is Bytes:
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

    def _found(self, hits: npt.NDArray[np.int64], data: Bytes) -> Found:
        return self.finish(self.candidates(hits, data), data)

    def _derive(self, hits: npt.NDArray[np.int64], data: Bytes) -> npt.NDArray[np.int64]:
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
        data: Bytes,
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
            None if lazy else {r: context_of([c for p, c in found[r] if p == -1]) for r in found}
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
        keep = keep[~inside_own_kind(kind[keep], start[keep], end[keep], is_fixed[keep])]
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
            context = to_folded(context, found.lead)
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

    def reference_scan(self, text: str) -> list[PiiFinding]:
        """The same findings through Python ``re`` (slow; the tests' reference)."""
        return reference_scan(self, text)


def scan_text(text: str, engine: Engine | None = None) -> list[PiiFinding]:
    """Findings in one text (see :class:`Engine`)."""
    return (engine or default_engine()).scan(text)


@cache
def default_engine() -> Engine:
    """One engine per process: compiling the database takes a moment."""
    return Engine()
