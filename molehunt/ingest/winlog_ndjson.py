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

from typing import ClassVar

from molehunt.ingest.base import ParseResult
from molehunt.ingest.winlog import WindowsEvent, json_object, parse_event_lines, parse_zoned_time


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
        return parse_event_lines(self.kind, data, base_offset, source_id, _read_event)


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
    doc = json_object(line)
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
