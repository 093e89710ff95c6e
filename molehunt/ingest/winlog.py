"""Windows events mapped to rows of the event tables, for both Windows parsers.

Winlogbeat NDJSON (``winlog-ndjson``) and raw EVTX files (``evtx``) carry the
same events in different wrappings. Each parser unwraps an event into a
:class:`WindowsEvent` and hands it to :class:`WindowsRows`, so the two agree on
every column:

* Security 4624 logon, 4625 logon_failed, 4634 and 4647 logoff, 4648
  explicit_credentials -> ``events_auth``;
* Sysmon 1 -> ``events_process``, 3 -> ``events_network``, 11 (create) and
  23 (delete) -> ``events_file``.

Each keeps what an investigator reads: for a logon the subject account (who
asked), the target account, logon ids, process, authentication package and
elevated token; for 4648 also the target server (``TargetServerName``); for a
process its logon id, parent and integrity level.

Any other event is not silently dropped: :meth:`WindowsRows.add` raises
:class:`UnsupportedEvent` and the parser quarantines it. Windows writes ``-``
for "none" (``IpAddress``, ``WorkstationName``...), stored as NULL. Sysmon's
``User`` is kept as Windows reports it (``DOMAIN\\user``).
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import pyarrow as pa

from molehunt.ingest.base import RAW_LIMIT, ParseResult, Rejected, event_id

SECURITY = "Security"
SYSMON = "Microsoft-Windows-Sysmon/Operational"

AUTH_ACTIVITIES: dict[int, str] = {
    4624: "logon",
    4625: "logon_failed",
    4634: "logoff",
    4647: "logoff",
    4648: "explicit_credentials",
}
SYSMON_TABLES: dict[int, str] = {
    1: "events_process",
    3: "events_network",
    11: "events_file",
    23: "events_file",
}
FILE_ACTIVITIES: dict[int, str] = {11: "create", 23: "delete"}

_TIME = pa.timestamp("us", tz="UTC")
_COMMON: list[tuple[str, pa.DataType]] = [
    ("event_id", pa.string()),
    ("time", _TIME),
    ("source_id", pa.string()),
    ("kind", pa.string()),
]
SCHEMAS: dict[str, pa.Schema] = {
    "events_auth": pa.schema(
        [
            *_COMMON,
            ("activity", pa.string()),
            ("user_name", pa.string()),
            ("user_domain", pa.string()),
            ("logon_type", pa.int32()),
            ("src_ip", pa.string()),
            ("src_port", pa.int32()),
            ("src_host", pa.string()),
            ("dst_host", pa.string()),
            ("session_id", pa.string()),
            ("status", pa.string()),
            ("event_code", pa.int32()),
            ("subject_user_name", pa.string()),
            ("subject_user_domain", pa.string()),
            ("subject_logon_id", pa.string()),
            ("target_server", pa.string()),
            ("process_name", pa.string()),
            ("process_id", pa.int64()),
            ("elevated_token", pa.bool_()),
            ("auth_package", pa.string()),
        ]
    ),
    "events_process": pa.schema(
        [
            *_COMMON,
            ("host", pa.string()),
            ("user_name", pa.string()),
            ("image", pa.string()),
            ("command_line", pa.string()),
            ("pid", pa.int64()),
            ("parent_image", pa.string()),
            ("event_code", pa.int32()),
            ("logon_id", pa.string()),
            ("parent_pid", pa.int64()),
            ("parent_command_line", pa.string()),
            ("integrity_level", pa.string()),
        ]
    ),
    "events_network": pa.schema(
        [
            *_COMMON,
            ("host", pa.string()),
            ("user_name", pa.string()),
            ("image", pa.string()),
            ("src_ip", pa.string()),
            ("src_port", pa.int32()),
            ("dst_ip", pa.string()),
            ("dst_port", pa.int32()),
            ("dst_host", pa.string()),
            ("protocol", pa.string()),
            ("event_code", pa.int32()),
        ]
    ),
    "events_file": pa.schema(
        [
            *_COMMON,
            ("activity", pa.string()),
            ("host", pa.string()),
            ("user_name", pa.string()),
            ("image", pa.string()),
            ("path", pa.string()),
            ("event_code", pa.int32()),
        ]
    ),
}

# RFC 3339 with a mandatory zone: formats.md says times always carry one, and a
# zoneless time would silently take the machine's zone.
_ZONED_TIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}"
    r"(?:\.[0-9]{1,9})?(?:Z|[+-][0-9]{2}:?[0-9]{2})"
)
_INT32_MAX = 2**31 - 1
_NONE_MARKERS = frozenset({"", "-"})


class UnsupportedEvent(ValueError):
    """An event id this module does not map (it is quarantined, not dropped)."""


@dataclass(frozen=True, slots=True)
class WindowsEvent:
    """One Windows event, unwrapped from Winlogbeat JSON or EVTX."""

    time: datetime  # tz-aware
    channel: str
    code: int
    computer: str | None
    data: Mapping[str, object]  # EventData: name -> value (str, or int in EVTX)


def parse_event_lines(
    kind: str,
    data: bytes,
    base_offset: int,
    source_id: str,
    read: Callable[[bytes], WindowsEvent],
) -> ParseResult:
    """The whole lines of ``data``, one event each (JSON lines from an agent): ``read``
    turns a line into an event or raises ``ValueError``, which rejects that line alone,
    located by its offset and length."""
    end = data.rfind(b"\n") + 1
    result = ParseResult(consumed=end)
    rows = WindowsRows(kind, source_id)
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
            rows.add(read(line), event_id(source_id, offset))
        except ValueError as e:
            result.rejected.append(
                Rejected(reason=str(e), offset=offset, raw=_raw(line), length=len(line) + 1)
            )
    result.tables = rows.tables()
    return result


def json_object(line: bytes) -> dict[str, object]:
    """A line's JSON object, or ``ValueError`` saying why it is not one."""
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
    return doc


def _raw(line: bytes) -> str:
    text = line[:RAW_LIMIT].decode("utf-8", errors="replace")
    if len(line) > RAW_LIMIT:
        text += f"... [{len(line) - RAW_LIMIT} more bytes]"
    return text


def parse_zoned_time(value: object, name: str = "timestamp") -> datetime:
    """An ISO 8601 time that carries a zone, as UTC; ``ValueError`` otherwise."""
    if not isinstance(value, str):
        raise ValueError(f"{name} is not a string: {value!r}")
    if not _ZONED_TIME.fullmatch(value):
        raise ValueError(f"{name} is not an ISO 8601 time with a zone: {value!r}")
    head, dot, tail = value.partition(".")
    if dot:
        # fromisoformat wants at most 6 fractional digits: Windows writes 7.
        digits = len(tail) - len(tail.lstrip("0123456789"))
        value = f"{head}.{tail[: min(digits, 6)]}{tail[digits:]}"
    try:
        return datetime.fromisoformat(value).astimezone(UTC)
    except (ValueError, OverflowError) as e:
        raise ValueError(f"{name} is not a valid time: {value!r}") from e


def _text(value: object) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    return None if text.strip() in _NONE_MARKERS else text


def _int(value: object, name: str, low: int = 0, high: int = 2**63 - 1) -> int | None:
    if value is None or isinstance(value, bool):
        if value is None:
            return None
        raise ValueError(f"{name} is not an integer: {value!r}")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str):
        text = value.strip()
        if text in _NONE_MARKERS:
            return None
        try:
            # Windows writes process ids and logon ids in hex ("0x1f4").
            number = int(text[2:], 16) if text[:2].lower() == "0x" else int(text, 10)
        except ValueError:
            raise ValueError(f"{name} is not an integer: {value!r}") from None
    else:
        raise ValueError(f"{name} is not an integer: {value!r}")
    if not low <= number <= high:
        raise ValueError(f"{name} out of range: {value!r}")
    return number


def _port(value: object, name: str) -> int | None:
    return _int(value, name, 0, 65535)


def _ip(value: object, name: str) -> str | None:
    text = _text(value)
    if text is None:
        return None
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        raise ValueError(f"{name} is not an IP address: {value!r}") from None
    # Windows reports IPv4 peers of dual-stack sockets as ::ffff:a.b.c.d; assets.csv
    # lists them as a.b.c.d.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def _status(data: Mapping[str, object]) -> str | None:
    # SubStatus says why (bad password, disabled account); Status alone is generic.
    sub = _text(data.get("SubStatus"))
    if sub is not None and sub.lower() not in {"0x0", "0x00000000"}:
        return sub
    return _text(data.get("Status"))


# ElevatedToken is written as a message reference: %%1842 "Yes", %%1843 "No".
_YES = frozenset({"%%1842", "yes", "true", "1"})
_NO = frozenset({"%%1843", "no", "false", "0"})


def _flag(value: object, name: str) -> bool | None:
    if isinstance(value, bool):
        return value
    text = _text(value)
    if text is None:
        return None
    folded = text.strip().casefold()
    if folded in _YES:
        return True
    if folded in _NO:
        return False
    raise ValueError(f"{name} is not yes or no: {value!r}")


def _auth(event: WindowsEvent) -> dict[str, object]:
    d = event.data
    return {
        "activity": AUTH_ACTIVITIES[event.code],
        "user_name": _text(d.get("TargetUserName")),
        "user_domain": _text(d.get("TargetDomainName")),
        "logon_type": _int(d.get("LogonType"), "LogonType", 0, _INT32_MAX),
        "src_ip": _ip(d.get("IpAddress"), "IpAddress"),
        "src_port": _port(d.get("IpPort"), "IpPort"),
        "src_host": _text(d.get("WorkstationName")),
        "dst_host": event.computer,
        "session_id": _text(d.get("TargetLogonId")),
        "status": _status(d) if event.code == 4625 else None,
        "subject_user_name": _text(d.get("SubjectUserName")),
        "subject_user_domain": _text(d.get("SubjectDomainName")),
        "subject_logon_id": _text(d.get("SubjectLogonId")),
        "target_server": _text(d.get("TargetServerName")),
        "process_name": _text(d.get("ProcessName")),
        "process_id": _int(d.get("ProcessId"), "ProcessId"),
        "elevated_token": _flag(d.get("ElevatedToken"), "ElevatedToken"),
        "auth_package": _text(d.get("AuthenticationPackageName")),
    }


def _process(event: WindowsEvent) -> dict[str, object]:
    d = event.data
    return {
        "host": event.computer,
        "user_name": _text(d.get("User")),
        "image": _text(d.get("Image")),
        "command_line": _text(d.get("CommandLine")),
        "pid": _int(d.get("ProcessId"), "ProcessId"),
        "parent_image": _text(d.get("ParentImage")),
        "logon_id": _text(d.get("LogonId")),
        "parent_pid": _int(d.get("ParentProcessId"), "ParentProcessId"),
        "parent_command_line": _text(d.get("ParentCommandLine")),
        "integrity_level": _text(d.get("IntegrityLevel")),
    }


def _network(event: WindowsEvent) -> dict[str, object]:
    d = event.data
    return {
        "host": event.computer,
        "user_name": _text(d.get("User")),
        "image": _text(d.get("Image")),
        "src_ip": _ip(d.get("SourceIp"), "SourceIp"),
        "src_port": _port(d.get("SourcePort"), "SourcePort"),
        "dst_ip": _ip(d.get("DestinationIp"), "DestinationIp"),
        "dst_port": _port(d.get("DestinationPort"), "DestinationPort"),
        "dst_host": _text(d.get("DestinationHostname")),
        "protocol": _text(d.get("Protocol")),
    }


def _file(event: WindowsEvent) -> dict[str, object]:
    d = event.data
    return {
        "activity": FILE_ACTIVITIES[event.code],
        "host": event.computer,
        "user_name": _text(d.get("User")),
        "image": _text(d.get("Image")),
        "path": _text(d.get("TargetFilename")),
    }


_SYSMON_ROWS: dict[str, Callable[[WindowsEvent], dict[str, object]]] = {
    "events_process": _process,
    "events_network": _network,
    "events_file": _file,
}


def table_for(channel: str, code: int) -> str | None:
    """The event table an event goes to, or None if it is not one we map."""
    # Channel names are case-insensitive in Windows.
    folded = channel.casefold()
    if folded == SECURITY.casefold() and code in AUTH_ACTIVITIES:
        return "events_auth"
    if folded == SYSMON.casefold() and code in SYSMON_TABLES:
        return SYSMON_TABLES[code]
    return None


class WindowsRows:
    """Collects mapped events and builds one Arrow table per event table."""

    def __init__(self, kind: str, source_id: str) -> None:
        self.kind = kind
        self.source_id = source_id
        self._rows: dict[str, list[dict[str, object]]] = {name: [] for name in SCHEMAS}

    def add(self, event: WindowsEvent, event_id: str) -> None:
        """Map ``event``; raises :class:`UnsupportedEvent` or ``ValueError`` (bad field)."""
        table = table_for(event.channel, event.code)
        if table is None:
            raise UnsupportedEvent(f"unsupported event id {event.code} on channel {event.channel}")
        row = _auth(event) if table == "events_auth" else _SYSMON_ROWS[table](event)
        row.update(
            event_id=event_id,
            time=event.time,
            source_id=self.source_id,
            kind=self.kind,
            event_code=event.code,
        )
        self._rows[table].append(row)

    def tables(self) -> dict[str, pa.Table]:
        """One table per event table, empty ones included."""
        return {
            name: pa.Table.from_pylist(rows, schema=SCHEMAS[name])
            for name, rows in self._rows.items()
        }
