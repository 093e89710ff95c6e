"""One SHA-256 for bytes, files and byte ranges (read in blocks, so across block ends)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from molehunt.digests import file_sha256, range_sha256, sha256_hex


def test_file_and_range_digests_match_hashlib_across_block_ends(tmp_path: Path) -> None:
    data = bytes(range(256)) * 8193  # a little over 2 MiB: three blocks
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    assert sha256_hex(data) == hashlib.sha256(data).hexdigest()
    assert sha256_hex(memoryview(data)[5:9]) == hashlib.sha256(data[5:9]).hexdigest()
    assert file_sha256(path) == hashlib.sha256(data).hexdigest()
    start, length = (1 << 20) - 3, (1 << 20) + 7
    assert range_sha256(path, start, length) == sha256_hex(data[start : start + length])
    assert range_sha256(path, 0, 0) == sha256_hex(b"")


def test_a_range_past_the_end_of_the_file_has_no_digest(tmp_path: Path) -> None:
    path = tmp_path / "short.log"
    path.write_bytes(b"one line\n")
    assert range_sha256(path, 4, 5) == sha256_hex(b"line\n")
    assert range_sha256(path, 4, 6) is None
    assert range_sha256(path, 100, 1) is None
