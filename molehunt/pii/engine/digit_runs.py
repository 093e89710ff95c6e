"""Fixed-width digit patterns (ID numbers, phones, cards) matched over digit runs in numpy.

Exactly what Hyperscan would match, without a Python call per match (see
docs/architecture.md, "The PII engine", for the measured design).
"""

from __future__ import annotations

import re

# re's own parser reads a fixed-width regex into classes (no stubs: private, but
# its node kinds have been stable since Python 2).
import re._constants as _sre  # type: ignore[import-not-found]
import re._parser as _sre_parser  # type: ignore[import-not-found]
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from molehunt.pii.engine.common import Candidates, Ints, Table
from molehunt.pii.recognizers import Pattern
from molehunt.pii.recognizers.base import BOUNDARY_CLASS


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
class DigitRunPattern:
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
    def build(cls, expr: int, pattern: Pattern) -> DigitRunPattern | None:
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
        boundary = class_table(BOUNDARY_CLASS[pattern.boundary])
        if not boundary[0x30:0x3A].all():
            return None
        # Positions inside the digit run that take any digit need no check.
        free = np.zeros(len(union), dtype=np.bool_)
        free[anchor:run] = True
        single_at, single_tables, pairs, branches = _position_checks(merged, free)
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

    def matches(self, array: npt.NDArray[np.uint8], runs: Runs) -> Candidates:
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
        rows = windows(array, self.width + 2)[starts - 1]
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


def _position_checks(
    merged: list[list[list[Table]]], free: npt.NDArray[np.bool_]
) -> tuple[
    list[int], list[Table], list[tuple[int, Table]], list[tuple[Ints, npt.NDArray[np.bool_]]]
]:
    """How each position of a pattern is checked (``free``: positions that need no
    check): alone (positions and their byte tables), in pairs (two positions of
    alternatives, as a table of byte pairs), or as branches (more positions)."""
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
    return single_at, single_tables, pairs, branches


def windows(data: Any, width: int) -> npt.NDArray[np.uint8]:
    """Every ``width`` consecutive bytes of ``data`` (bytes or a uint8 array) as
    the rows of a read-only view: what ``sliding_window_view`` returns, in one C
    call instead of its ~20 us of Python checks (a call per pattern per scan)."""
    n = len(data) - width + 1
    if n <= 0:
        return np.zeros((0, width), dtype=np.uint8)
    return np.ndarray((n, width), np.uint8, buffer=data, strides=(1, 1))


@dataclass(frozen=True, slots=True)
class Runs:
    """The runs of digits of a buffer, by length (then by position)."""

    lengths: npt.NDArray[np.uint8]  # sorted, at most 255
    at: Ints  # where each run starts
    #: Where the runs of each length (0 to 256) begin in ``at``: a slice per pattern
    #: without a numpy call each (sparse text: most patterns find nothing).
    bounds: list[int]

    @classmethod
    def of(cls, array: npt.NDArray[np.uint8]) -> Runs:
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


def possible_bytes(regex: bytes) -> Table:
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


def class_table(chars: str) -> npt.NDArray[np.bool_]:
    """Which of the 256 bytes the regex class ``[chars]`` accepts."""
    table = np.zeros(256, dtype=np.bool_)
    for code in range(256):
        table[code] = re.fullmatch(f"[{chars}]", chr(code)) is not None
    return table
