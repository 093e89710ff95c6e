"""Windows events as flat JSON lines (``winlog-flat``), as NXLog and similar agents ship them.

NXLog's ``im_msvistalog`` with ``to_json()`` writes one object a line, the
event's header and its EventData side by side at the top level::

    {"EventTime": "2026-05-03 09:15:22", "Hostname": "WS-0317.corp.example.cn",
     "EventID": 4624, "Channel": "Security", "SourceName": "Microsoft-Windows-Security-Auditing",
     "TargetUserName": "liu.wei", "TargetDomainName": "CORP", "LogonType": "10",
     "IpAddress": "10.20.3.17", ...}

The events map to the same tables and columns as ``winlog-ndjson`` and ``evtx``
(:mod:`molehunt.ingest.winlog`). ``EventTime`` is read with its zone when it
carries one; NXLog's default writing has none and is local time on the sending
machine, read in the ``timezone`` setting. A number is seconds, milliseconds or
microseconds since 1970 (by its size), as ``integer($EventTime)`` writes it.
``Computer`` and ``TimeCreated`` are read where ``Hostname`` and ``EventTime``
are missing (other agents' names for them).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from molehunt.errors import ConfigError
from molehunt.ingest.base import ParseResult
from molehunt.ingest.winlog import WindowsEvent, json_object, parse_event_lines, parse_zoned_time
from molehunt.times import DEFAULT_TIMEZONE

_NAIVE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?")
# A number this large is milliseconds, then microseconds (seconds reach 1e11 in 5138).
_MS, _US = 10**11, 10**14


class WinlogFlatParser:
    """Windows logons and Sysmon events shipped as flat JSON (NXLog ``to_json``)."""

    kind: ClassVar[str] = "winlog-flat"
    description: ClassVar[str] = "Windows Security/Sysmon events, flat JSON (NXLog and others)"

    def __init__(self, timezone: str = DEFAULT_TIMEZONE) -> None:
        try:
            self.zone = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError) as e:
            raise ConfigError(f"timezone: unknown zone {timezone!r}") from e

    @classmethod
    def sniff(cls, head: bytes) -> bool:
        first = head.lstrip(b" \t\r\n").split(b"\n", 1)[0]
        return (
            first.startswith(b"{")
            and b'"EventID"' in first
            and (b'"Hostname"' in first or b'"EventTime"' in first)
            and b'"winlog' not in first
        )

    def parse(self, data: bytes, *, base_offset: int, source_id: str, path: str) -> ParseResult:
        return parse_event_lines(self.kind, data, base_offset, source_id, self._read_event)

    def _read_event(self, line: bytes) -> WindowsEvent:
        doc = json_object(line)
        name = "EventTime" if "EventTime" in doc else "TimeCreated"
        if doc.get(name) is None:
            raise ValueError("missing EventTime")
        time = self._time(doc[name], name)
        channel = doc.get("Channel")
        if not isinstance(channel, str) or not channel:
            raise ValueError("missing Channel")
        code = _event_code(doc.get("EventID"))
        computer = doc.get("Hostname", doc.get("Computer"))
        if computer is not None and not isinstance(computer, str):
            raise ValueError(f"Hostname is not a string: {computer!r}")
        # Header and EventData share the top level; the header's names
        # (EventID, ProcessID with a capital D...) are not EventData names.
        return WindowsEvent(time, channel, code, computer or None, doc)

    def _time(self, value: object, name: str) -> datetime:
        if isinstance(value, int) and not isinstance(value, bool):
            scale = 1 if abs(value) < _MS else 1000 if abs(value) < _US else 1_000_000
            try:
                return datetime.fromtimestamp(value / scale, UTC)
            except (OverflowError, OSError, ValueError):
                raise ValueError(f"{name} out of range: {value!r}") from None
        if isinstance(value, str) and _NAIVE.fullmatch(value.strip()):
            head, _, fraction = value.strip().replace("T", " ").partition(".")
            text = f"{head}.{fraction[:6]}" if fraction else head
            try:
                naive = datetime.fromisoformat(text)
            except ValueError:
                raise ValueError(f"{name} is not a valid time: {value!r}") from None
            return naive.replace(tzinfo=self.zone).astimezone(UTC)
        return parse_zoned_time(value, name)


def _event_code(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 65535:
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit() and int(value) <= 65535:
        return int(value)
    if value is None:
        raise ValueError("missing EventID")
    raise ValueError(f"EventID is not an event id: {value!r}")
