"""Types and limits every part of the PII engine shares."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

Ints = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]
Confidence = Literal["low", "medium", "high"]
CONFIDENCES: tuple[Confidence, ...] = ("low", "medium", "high")

#: Longest variable-length match kept (email, address, labelled name), in bytes.
MAX_SPAN = 256
#: How far from a candidate a context word still counts, in bytes (~16 CJK characters).
CONTEXT_BYTES = 48


Role = Literal["fixed", "variable", "anchored", "prefix", "tail", "context"]


@dataclass(frozen=True, slots=True)
class Expr:
    """One expression of a Hyperscan database: its role, and the recognizer and
    pattern (indexes) it stands for."""

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


Table = npt.NDArray[np.bool_]  # 256 entries: which bytes a position accepts
