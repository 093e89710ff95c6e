"""Scanning a file or many: each file read as its kind says, zips member by member
(recursively, within the limits)."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from molehunt.pii.engine import (
    Engine,
    default_engine,
)
from molehunt.pii.files.archives import check_zip, member_opener, read_member, unsafe_member
from molehunt.pii.files.common import FileScan, Job, Limits, Refused, kind_of
from molehunt.pii.files.documents import docx_text, pdf_text
from molehunt.pii.files.streams import scan_stream, scan_text
from molehunt.pii.files.workbook import scan_workbook
from molehunt.pii.keyed import KeyedHasher


def scan_file(
    path: Path,
    *,
    key: bytes | None = None,
    limits: Limits | None = None,
    detail: bool = False,
    engine: Engine | None = None,
) -> FileScan:
    """Scan one file; never raises for a bad file (the reason goes to ``errors``)."""
    job = Job(
        engine or default_engine(), KeyedHasher(key) if key else None, limits or Limits(), detail
    )
    kind = kind_of(path.name) or "unsupported"
    result = FileScan(str(path), kind)
    try:
        size = path.stat().st_size
        if size > job.limits.max_file_bytes:
            raise Refused(f"too large: {size} bytes (limit {job.limits.max_file_bytes})")
        if kind == "unsupported":
            raise Refused(f"not a scanned type ({path.suffix or 'no suffix'})")
        if kind in ("txt", "csv"):
            scan_stream(job, path.open, kind, result)
        else:
            _scan_bytes(job, path.read_bytes(), kind, result, depth=0)
    except Refused as e:
        result.errors.append(str(e))
    except Exception as e:  # a corrupt file must not stop the scan of the others
        result.errors.append(f"unreadable {kind}: {type(e).__name__}: {e}")
    return result


def scan_files(
    paths: Sequence[Path],
    *,
    key: bytes | None = None,
    limits: Limits | None = None,
    detail: bool = False,
    workers: int | None = None,
) -> list[FileScan]:
    """Scan files, in order, across processes (both cores) when there are several."""
    if workers == 1 or len(paths) <= 1:
        return [scan_file(p, key=key, limits=limits, detail=detail) for p in paths]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(scan_file, p, key=key, limits=limits, detail=detail) for p in paths]
        return [f.result() for f in futures]


def _scan_bytes(job: Job, data: bytes, kind: str, result: FileScan, depth: int) -> None:
    if kind in ("txt", "csv"):
        scan_stream(job, lambda _mode: io.BytesIO(data), kind, result)
    elif kind == "xlsx":
        check_zip(job.limits, zipfile.ZipFile(io.BytesIO(data)), xml_parts=True)
        scan_workbook(job, data, result)
    elif kind == "xls":
        scan_workbook(job, data, result)
    elif kind == "docx":
        scan_text(job, docx_text(job.limits, data), result)
    elif kind == "pdf":
        scan_text(job, pdf_text(job.limits, data), result)
    elif kind == "zip":
        _scan_zip(job, data, result, depth)
    else:
        raise Refused(f"not a scanned type ({kind})")


def _scan_zip(job: Job, data: bytes, result: FileScan, depth: int) -> None:
    if depth >= job.limits.max_zip_depth:
        raise Refused(f"zips nested deeper than {job.limits.max_zip_depth}")
    archive = zipfile.ZipFile(io.BytesIO(data))
    check_zip(job.limits, archive)
    for info in archive.infolist():
        if info.is_dir():
            continue
        name = info.filename
        kind = kind_of(name)
        if unsafe_member(name):
            result.errors.append(f"{name}: skipped, unsafe path (zip slip)")
            continue
        if kind is None:
            continue
        member = FileScan(name, kind)
        try:
            if kind in ("txt", "csv"):
                # Streamed out of the archive: a member is never held whole.
                scan_stream(job, member_opener(job.limits, archive, info), kind, member)
            else:
                _scan_bytes(job, read_member(job.limits, archive, info), kind, member, depth + 1)
        except Refused as e:
            member.errors.append(str(e))
        except Exception as e:
            member.errors.append(f"unreadable {kind}: {type(e).__name__}: {e}")
        result.add(member, name)
