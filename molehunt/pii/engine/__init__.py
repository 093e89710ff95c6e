"""The PII scanning engine: every recognizer's patterns, Hyperscan and numpy.

The match callback only appends ``(id, from, to)``; everything else is done once
per scan over arrays: candidate bytes copied as rows of a sliding window view,
validation (checksums, region codes, date table, allocated prefixes) vectorised in
numpy. Findings stay arrays (:class:`Found`) until objects are asked for.

Its parts: :mod:`.core` (the :class:`Engine`: Hyperscan compilation, block mode),
:mod:`.digit_runs` (fixed-width digit patterns matched over digit runs in numpy),
:mod:`.containers` (the bytes scanned and what was found), :mod:`.folding`
(full-width ASCII folded one character for one), :mod:`.masking`
(:class:`PiiFinding`, :func:`mask`), :mod:`.stream` (stream mode) and
:mod:`.reference` (the same through Python ``re``, the tests' reference). Why
each is built as it is, with the figures measured, is in docs/architecture.md
("The PII engine").
"""

from __future__ import annotations

from molehunt.pii.engine.common import CONFIDENCES, CONTEXT_BYTES, MAX_SPAN, Confidence
from molehunt.pii.engine.containers import Found
from molehunt.pii.engine.core import Engine, default_engine, scan_text
from molehunt.pii.engine.folding import char_offsets, fold_bytes, fold_text
from molehunt.pii.engine.masking import PiiFinding, mask
from molehunt.pii.engine.stream import StreamScan

__all__ = [
    "CONFIDENCES",
    "CONTEXT_BYTES",
    "MAX_SPAN",
    "Confidence",
    "Engine",
    "Found",
    "PiiFinding",
    "StreamScan",
    "char_offsets",
    "default_engine",
    "fold_bytes",
    "fold_text",
    "mask",
    "scan_text",
]
