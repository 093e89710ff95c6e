"""Winlogbeat 8 NDJSON (``winlog-ndjson``): Windows Security and Sysmon events.

One ECS JSON object a line, as Winlogbeat's file or Logstash output writes it::

    {"@timestamp": "2026-05-03T01:15:22.123Z", "event": {"code": "4624", ...},
     "winlog": {"channel": "Security", "event_id": "4624",
                "computer_name": "WS-0317.corp.example.cn",
                "event_data": {"TargetUserName": "liu.wei", "LogonType": "10", ...}}}

Nested objects and flattened dotted keys (``"winlog.channel"``) are both read.
The volume is moderate (logons and Sysmon events, not database reads), and the
``event_data`` keys differ per event, so each line goes through ``json.loads``.
"""

from __future__ import annotations

import json
from typing import ClassVar

from molehunt.ingest.base import ParseResult, Rejected, event_id
from molehunt.ingest.winlog import WindowsEvent, WindowsRows, parse_zoned_time

RAW_LIMIT = 64 * 1024


class WinlogNdjsonParser:
    """Windows logons and Sysmon events shipped by Winlogbeat as JSON lines."""

    kind: ClassVar[str] = "winlog-ndjson"
    description: ClassVar[str] = "Windows Security/Sysmon events, Winlogbeat 8 NDJSON"

    @classmethod
    def sniff(cls, head: bytes) -> bool:
        first = head.lstrip(b" \t\r\n").split(b"\n", 1)[0]
        return (
            first.startswith(b"{")
            and b'"@timestamp"' in first
            and (b'"winlog"' in first or b'"winlog.' in first)
        )

    def parse(self, data: bytes, *, base_offset: int, source_id: str, path: str) -> ParseResult:
        end = data.rfind(b"\n") + 1
        result = ParseResult(consumed=end)
        rows = WindowsRows(self.kind, source_id)
        start = 0
        while start < end:
            stop = data.index(b"\n", start, end)
            line = data[start:stop]
            offset = base_offset + start
            start = stop + 1
            if not line.strip(b" \t\r"):
                continue  # a blank line is no record
            result.records += 1
            try:
                rows.add(_read_event(line), event_id(source_id, offset))
            except ValueError as e:
                result.rejected.append(Rejected(reason=str(e), offset=offset, raw=_raw(line)))
        result.tables = rows.tables()
        return result


def _raw(line: bytes) -> str:
    text = line[:RAW_LIMIT].decode("utf-8", errors="replace")
    if len(line) > RAW_LIMIT:
        text += f"... [{len(line) - RAW_LIMIT} more bytes]"
    return text


def _field(doc: dict[str, object], dotted: str) -> object:
    """``doc["a"]["b"]`` for ``"a.b"``, or a flattened ``doc["a.b"]``."""
    if dotted in doc:
        return doc[dotted]
    node: object = doc
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _read_event(line: bytes) -> WindowsEvent:
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"invalid UTF-8 at byte {e.start} of the line") from None
    try:
        doc = json.loads(text)
    except ValueError as e:  # JSONDecodeError, or an integer too long to convert
        raise ValueError(f"broken JSON: {e}") from None
    except RecursionError:
        raise ValueError("broken JSON: nested too deeply") from None
    if not isinstance(doc, dict):
        raise ValueError("not a JSON object")
    stamp = _field(doc, "@timestamp")
    if stamp is None:
        raise ValueError("missing @timestamp")
    time = parse_zoned_time(stamp, "@timestamp")
    channel = _field(doc, "winlog.channel")
    if not isinstance(channel, str) or not channel:
        raise ValueError("missing winlog.channel")
    code = _event_code(doc)
    computer = _field(doc, "winlog.computer_name")
    if computer is None:
        computer = _field(doc, "host.name")
    if computer is not None and not isinstance(computer, str):
        raise ValueError(f"winlog.computer_name is not a string: {computer!r}")
    event_data = _field(doc, "winlog.event_data")
    if event_data is None:
        event_data = {}
    if not isinstance(event_data, dict):
        raise ValueError("winlog.event_data is not an object")
    return WindowsEvent(time, channel, code, computer or None, event_data)


def _event_code(doc: dict[str, object]) -> int:
    # Winlogbeat 8 writes the id as a string, 7 as a number; event.code is the ECS copy.
    for name in ("winlog.event_id", "event.code"):
        value = _field(doc, name)
        if value is None:
            continue
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 65535:
            return value
        if isinstance(value, str) and value.isascii() and value.isdigit() and int(value) <= 65535:
            return int(value)
        raise ValueError(f"{name} is not an event id: {value!r}")
    raise ValueError("missing winlog.event_id")
