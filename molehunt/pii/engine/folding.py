"""Full-width ASCII folded to ASCII, one character for one, so character offsets survive."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from molehunt.pii.engine.common import Ints, Table

# Full-width ASCII (U+FF01..U+FF5E) to ASCII, in UTF-8: EF BC 81..BF and EF BD 80..9E.
FULL_WIDTH_SHIFT = 0xFEE0
_FOLD_TEXT = {cp: cp - FULL_WIDTH_SHIFT for cp in range(0xFF01, 0xFF5F)}


def fold_bytes(data: bytes) -> bytes:
    """Full-width ASCII folded to ASCII in UTF-8 bytes (cheap when there is none)."""
    return _fold(data, b"")


def _fold(data: bytes, pad: bytes) -> bytes:
    """:func:`fold_bytes` with ``pad`` before and after, in the same copy."""
    if b"\xef\xbc" not in data and b"\xef\xbd" not in data:
        return pad + data + pad if pad else data
    a = np.frombuffer(data, dtype=np.uint8)
    lead, _ = full_width(a)
    if len(lead) == 0:
        return pad + data + pad if pad else data
    return compact(a, lead, pad)


def compact(a: npt.NDArray[np.uint8], lead: Ints, pad: bytes) -> bytes:
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


def full_width(a: npt.NDArray[np.uint8], folds: Table | None = None) -> tuple[Ints, bool]:
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


def to_folded(offsets: Ints, lead: Ints | None) -> Ints:
    """Offsets in unfolded bytes moved to the folded bytes: two bytes fewer per
    full-width character (at ``lead``) before each."""
    if lead is None:
        return offsets
    out: Ints = offsets - 2 * np.searchsorted(lead, offsets, "left")
    return out


def fold_text(text: str) -> str:
    return text.translate(_FOLD_TEXT)


def byte_offsets(text: str) -> Ints:
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
