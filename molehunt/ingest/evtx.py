"""Raw Windows event log files (``evtx``): Security logons and Sysmon events.

Read with the Rust-backed ``evtx`` package (about 1000x faster than
python-evtx). Records are addressed by their EVTX record number: event ids are
``event_id(source_id, record_number)`` and the checkpoint is the highest record
number read. A damaged record or chunk does not stop the file: the reader
reports it, we quarantine it with its place and go on to the next one.

A damaged chunk has no readable record numbers, so it is reported again each
time the file is read from the start or resumed; the checkpoint cannot say it
was already reported.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

from evtx import PyEvtxParser

from molehunt.ingest.base import RAW_LIMIT, ParseResult, Rejected, event_id
from molehunt.ingest.winlog import WindowsEvent, WindowsRows, parse_zoned_time

MAGIC = b"ElfFile\0"
_FILE_HEADER = 4096
_CHUNK = 65536
_RECORD_ERROR = re.compile(r"record number (\d+)")
_CHUNK_ERROR = re.compile(r"chunk number (\d+)")


class EvtxParser:
    """Windows logons and Sysmon events read from raw .evtx files."""

    kind: ClassVar[str] = "evtx"
    # The file header and chunk headers are rewritten as the log grows; the first
    # record (after the 4 KiB file header and the 512-byte chunk header) is not.
    head_range: ClassVar[tuple[int, int]] = (4096 + 512, 4096 + 1024)
    description: ClassVar[str] = "Windows Security/Sysmon events, raw .evtx files"

    @classmethod
    def sniff(cls, head: bytes) -> bool:
        return head.startswith(MAGIC)

    def parse_path(self, path: Path, *, source_id: str, resume: int) -> ParseResult:
        result = ParseResult(consumed=resume)
        rows = WindowsRows(self.kind, source_id)
        with path.open("rb"):
            pass  # a file we cannot open is the runner's to report (OSError)
        try:
            records = PyEvtxParser(str(path)).records_json()
        except (OSError, RuntimeError, ValueError) as e:  # the reader's word for a bad header
            result.rejected.append(Rejected(reason=f"not a readable EVTX file: {e}", offset=0))
            result.records = 1
            return result
        # The reader resumes after each error; the bound only guards against a
        # reader that would report the same error for ever.
        budget = 16 + path.stat().st_size // 24
        while budget > 0:
            try:
                record = next(records)
            except StopIteration:
                break
            except (OSError, RuntimeError, ValueError) as e:
                budget -= 1
                rejected = _damaged(str(e), resume)
                if rejected is not None:
                    result.rejected.append(rejected)
                    result.records += 1
                    if rejected.offset is not None:
                        result.consumed = max(result.consumed, rejected.offset)
                continue
            if not isinstance(record, dict):
                continue  # the reader yields None for a record it skipped
            number = int(record["event_record_id"])
            if number <= resume:
                continue
            result.consumed = max(result.consumed, number)
            result.records += 1
            try:
                rows.add(_read_event(record), event_id(source_id, number))
            except ValueError as e:
                raw = str(record.get("data", ""))[:RAW_LIMIT]
                result.rejected.append(Rejected(reason=str(e), offset=number, raw=raw))
        else:
            result.rejected.append(Rejected(reason="too many errors: gave up reading the file"))
            result.records += 1
        result.tables = rows.tables()
        return result


def _damaged(message: str, resume: int) -> Rejected | None:
    """The quarantine entry for a reader error (None: a record before ``resume``)."""
    record = _RECORD_ERROR.search(message)
    if record:
        number = int(record.group(1))
        if number <= resume:
            return None
        return Rejected(reason=f"damaged EVTX record {number}: {message}", offset=number)
    chunk = _CHUNK_ERROR.search(message)
    if chunk:
        start = _FILE_HEADER + int(chunk.group(1)) * _CHUNK
        where = f"chunk {chunk.group(1)} (bytes {start}-{start + _CHUNK - 1})"
        return Rejected(reason=f"damaged EVTX {where}: {message}")
    return Rejected(reason=f"damaged EVTX: {message}")


def _read_event(record: Mapping[str, object]) -> WindowsEvent:
    try:
        doc = json.loads(str(record["data"]))
        system = doc["Event"]["System"]
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"unreadable event: {e!r}") from None
    if not isinstance(system, dict):
        raise ValueError("unreadable event: no System element")
    code = system.get("EventID")
    if isinstance(code, dict):  # <EventID Qualifiers="...">4624</EventID>
        code = code.get("#text")
    if not isinstance(code, int) or isinstance(code, bool):
        raise ValueError(f"EventID is not a number: {code!r}")
    channel = system.get("Channel")
    if not isinstance(channel, str) or not channel:
        raise ValueError("missing Channel")
    created = system.get("TimeCreated")
    stamp = created.get("#attributes", {}).get("SystemTime") if isinstance(created, dict) else None
    time = parse_zoned_time(stamp, "TimeCreated")
    computer = system.get("Computer")
    data = doc["Event"].get("EventData")
    fields = (
        {k: v for k, v in data.items() if not k.startswith("#")} if isinstance(data, dict) else {}
    )
    return WindowsEvent(
        time, channel, code, computer if isinstance(computer, str) and computer else None, fields
    )
