"""Zips and zip-based formats checked before they are read: bombs (ratio, entry
count), unsafe member paths, encrypted or corrupt archives, XML with a DTD."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable
from pathlib import PurePosixPath
from typing import IO, Any

from molehunt.pii.files.common import Limits, Refused

_DTD = re.compile(rb"<!(?:DOCTYPE|ENTITY)", re.IGNORECASE)


# -- zips ---------------------------------------------------------------------------


def check_zip(limits: Limits, archive: zipfile.ZipFile, *, xml_parts: bool = False) -> None:
    """Refuse a zip bomb (entries, ratio, total size) and, with ``xml_parts``
    (xlsx), encrypted XML parts or XML with a DTD."""
    infos = archive.infolist()
    if len(infos) > limits.max_zip_entries:
        raise Refused(f"zip bomb? {len(infos)} entries (limit {limits.max_zip_entries})")
    packed = sum(i.compress_size for i in infos)
    unpacked = sum(i.file_size for i in infos)
    if unpacked > limits.max_zip_ratio * max(packed, 1) and unpacked > 1 << 20:
        ratio = unpacked / max(packed, 1)
        raise Refused(f"zip bomb? expands {ratio:.0f}x (limit {limits.max_zip_ratio:.0f}x)")
    if unpacked > limits.max_member_bytes * 4:
        raise Refused(f"expands to {unpacked} bytes")
    if xml_parts:
        for info in infos:
            if info.filename.endswith((".xml", ".rels")):
                if info.flag_bits & 0x1:
                    raise Refused("encrypted")
                with archive.open(info) as f:
                    head = f.read(4096)
                if _DTD.search(head):
                    raise Refused(f"XML with a DTD in {info.filename} (billion laughs?)")


def read_member(limits: Limits, archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """A member's bytes, never more than the limit whatever its header claims."""
    if info.flag_bits & 0x1:
        raise Refused("encrypted")
    if info.file_size > limits.max_member_bytes:
        raise Refused(f"member too large: {info.file_size} bytes")
    out = io.BytesIO()
    with archive.open(info) as f:
        while chunk := f.read(1 << 20):
            out.write(chunk)
            if out.tell() > limits.max_member_bytes:
                raise Refused("member expands past its limit")
    return out.getvalue()


class _Capped(io.RawIOBase):
    """A zip member's stream that refuses to give more than ``limit`` bytes, whatever
    its header claims."""

    def __init__(self, raw: IO[bytes], limit: int) -> None:
        self._raw, self._limit, self._read = raw, limit, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self._raw.read(len(view))
        self._read += len(data)
        if self._read > self._limit:
            raise Refused("member expands past its limit")
        view[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._raw.close()
        super().close()


def member_opener(
    limits: Limits, archive: zipfile.ZipFile, info: zipfile.ZipInfo
) -> Callable[[str], IO[bytes]]:
    """Opens a zip member as a stream capped at its declared size (refused when
    encrypted or too large)."""
    if info.flag_bits & 0x1:
        raise Refused("encrypted")
    if info.file_size > limits.max_member_bytes:
        raise Refused(f"member too large: {info.file_size} bytes")

    def opener(_mode: str) -> IO[bytes]:
        return io.BufferedReader(_Capped(archive.open(info), limits.max_member_bytes))

    return opener


def unsafe_member(name: str) -> bool:
    """Zip slip: absolute paths, drive letters or ``..`` in a member's name."""
    path = PurePosixPath(name.replace("\\", "/"))
    return path.is_absolute() or ".." in path.parts or (len(name) > 1 and name[1] == ":")
