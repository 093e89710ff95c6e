"""SHA-256 digests, hex: of bytes, of a whole file, or of a byte range of one.

Files are read in 1 MiB blocks, so a large log or spreadsheet is never held whole.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

_BLOCK = 1 << 20


def sha256_hex(data: bytes | memoryview) -> str:
    """SHA-256 of ``data``, hex."""
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's content, hex."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def range_sha256(path: Path, offset: int, length: int) -> str | None:
    """SHA-256 of ``length`` bytes at ``offset`` of a file, hex; None if the file ends first."""
    digest = hashlib.sha256()
    left = length
    with path.open("rb") as f:
        f.seek(offset)
        while left > 0:
            block = f.read(min(_BLOCK, left))
            if not block:
                return None
            digest.update(block)
            left -= len(block)
    return digest.hexdigest()
