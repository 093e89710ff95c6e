"""The same findings through Python ``re``: slow, the reference the tests hold both modes to."""

from __future__ import annotations

import re
from functools import cache
from typing import TYPE_CHECKING, Any

import numpy as np

from molehunt.pii.engine.common import Candidates
from molehunt.pii.engine.containers import Bytes
from molehunt.pii.engine.folding import byte_offsets, fold_text
from molehunt.pii.engine.masking import PiiFinding
from molehunt.pii.recognizers import Pattern

if TYPE_CHECKING:
    from molehunt.pii.engine.core import Engine


@cache
def _python_pattern(pattern: Pattern) -> re.Pattern[str]:
    return re.compile(pattern.python(), re.ASCII | re.DOTALL)


def reference_scan(engine: Engine, text: str) -> list[PiiFinding]:
    """The same findings through Python ``re`` (slow; the tests' reference)."""
    folded = fold_text(text)
    buf = b"\n" + folded.encode("utf-8") + b"\n"
    offsets = byte_offsets(folded) + 1
    found: dict[int, list[Any]] = {r: [] for r in range(len(engine.recognizers))}
    for r, rec in enumerate(engine.recognizers):
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
    return engine.finish(found, Bytes(buf)).findings()
