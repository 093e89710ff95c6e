"""Stream mode: upload bodies arriving in pieces; the findings do not depend on the cuts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import hyperscan
import numpy as np

from molehunt.pii.engine.common import MAX_SPAN
from molehunt.pii.engine.containers import StreamBytes
from molehunt.pii.engine.folding import fold_bytes
from molehunt.pii.engine.masking import PiiFinding

if TYPE_CHECKING:
    from molehunt.pii.engine.core import Engine

#: Bytes a stream keeps from earlier pieces: enough for any match and its boundary.
_KEEP = MAX_SPAN + 8


class StreamScan:
    """One body scanned as it arrives; ``close`` returns the findings."""

    def __init__(self, engine: Engine, db: hyperscan.Database) -> None:
        self._engine = engine
        self._hits: list[int] = []
        self._kept = StreamBytes()
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

    def close(self) -> list[PiiFinding]:
        self._scan(fold_bytes(self._pending) + b"\n")
        self._pending = b""
        self._context.__exit__(None, None, None)
        hits = np.array(self._hits, dtype=np.int64).reshape(-1, 3)
        return self._engine._found(hits, self._kept).findings()
