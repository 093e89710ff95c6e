from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from molehunt.ingest.base import ParseResult, event_id
from molehunt.ingest.winlog_ndjson import WinlogNdjsonParser

SYSMON = "Microsoft-Windows-Sysmon/Operational"
HOST = "WS-0317.corp.example.cn"


def winlogbeat(
    stamp: str, channel: str, code: int, data: dict[str, str], provider: str
) -> dict[str, Any]:
    """An event as Winlogbeat 8.13 writes it to its file output (one line of JSON)."""
    return {
        "@timestamp": stamp,
        "@metadata": {"beat": "winlogbeat", "type": "_doc", "version": "8.13.4"},
        "agent": {"type": "winlogbeat", "version": "8.13.4", "name": "WS-0317"},
        "ecs": {"version": "8.0.0"},
        "host": {"name": HOST},
        "log": {"level": "information"},
        "event": {"code": str(code), "kind": "event", "provider": provider},
        "winlog": {
            "channel": channel,
            "event_id": str(code),
            "computer_name": HOST,
            "record_id": "184467",
            "provider_name": provider,
            "api": "wineventlog",
            "process": {"pid": 668, "thread": {"id": 4360}},
            "event_data": data,
        },
    }


SECURITY = "Microsoft-Windows-Security-Auditing"
RDP_LOGON = winlogbeat(
    "2026-05-03T01:15:22.123Z",
    "Security",
    4624,
    {
        "SubjectUserSid": "S-1-5-18",
        "SubjectUserName": "WS-0317$",
        "SubjectDomainName": "CORP",
        "SubjectLogonId": "0x3e7",
        "TargetUserSid": "S-1-5-21-3838055588-3125202756-3154177548-1104",
        "TargetUserName": "liu.wei",
        "TargetDomainName": "CORP",
        "TargetLogonId": "0x8a3f2c1",
        "LogonType": "10",
        "LogonProcessName": "User32 ",
        "AuthenticationPackageName": "Negotiate",
        "WorkstationName": "WS-0317",
        "TransmittedServices": "-",
        "ProcessId": "0x2b8",
        "ProcessName": "C:\\Windows\\System32\\svchost.exe",
        "IpAddress": "10.20.3.17",
        "IpPort": "0",
    },
    SECURITY,
)
FAILED_LOGON = winlogbeat(
    "2026-05-03T01:14:58.001Z",
    "Security",
    4625,
    {
        "TargetUserName": "admin",
        "TargetDomainName": "CORP",
        "Status": "0xc000006d",
        "SubStatus": "0xc000006a",
        "LogonType": "3",
        "WorkstationName": "-",
        "IpAddress": "::ffff:10.20.9.44",
        "IpPort": "53120",
    },
    SECURITY,
)
LOGOFF = winlogbeat(
    "2026-05-03T03:00:00Z",
    "Security",
    4634,
    {"TargetUserName": "liu.wei", "TargetDomainName": "CORP", "TargetLogonId": "0x8a3f2c1",
     "LogonType": "10"},
    SECURITY,
)  # fmt: skip
USER_LOGOFF = winlogbeat(
    "2026-05-03T02:59:59Z",
    "Security",
    4647,
    {"TargetUserName": "liu.wei", "TargetDomainName": "CORP", "TargetLogonId": "0x8a3f2c1"},
    SECURITY,
)
RUNAS = winlogbeat(
    "2026-05-03T01:30:00Z",
    "Security",
    4648,
    {"SubjectUserName": "liu.wei", "SubjectDomainName": "CORP", "SubjectLogonId": "0x8a3f2c1",
     "TargetUserName": "dba_admin", "TargetDomainName": "CORP",
     "TargetServerName": "db01.corp.example.cn", "TargetInfo": "db01.corp.example.cn",
     "ProcessId": "0x1a2c", "ProcessName": "C:\\Windows\\System32\\runas.exe",
     "IpAddress": "-", "IpPort": "-"},
    SECURITY,
)  # fmt: skip
PRIVILEGES = winlogbeat(
    "2026-05-03T01:15:22.124Z",
    "Security",
    4672,
    {"SubjectUserName": "liu.wei", "PrivilegeList": "SeBackupPrivilege"},
    SECURITY,
)
POWERSHELL = winlogbeat(
    "2026-05-03T01:16:00.500Z",
    SYSMON,
    1,
    {
        "RuleName": "-",
        "UtcTime": "2026-05-03 01:16:00.498",
        "ProcessId": "5120",
        "Image": "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
        "CommandLine": "powershell.exe -c Compress-Archive C:\\Users\\liu.wei\\Desktop\\*.xlsx",
        "User": "CORP\\liu.wei",
        "ParentImage": "C:\\Windows\\explorer.exe",
    },
    "Microsoft-Windows-Sysmon",
)
UPLOAD = winlogbeat(
    "2026-05-03T01:21:10Z",
    SYSMON,
    3,
    {
        "Image": "C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe",
        "User": "CORP\\liu.wei",
        "Protocol": "tcp",
        "Initiated": "true",
        "SourceIp": "10.20.3.17",
        "SourcePort": "51514",
        "DestinationIp": "203.0.113.50",
        "DestinationHostname": "pan.example.net",
        "DestinationPort": "443",
    },
    "Microsoft-Windows-Sysmon",
)
XLSX_CREATED = winlogbeat(
    "2026-05-03T01:20:05.412Z",
    SYSMON,
    11,
    {
        "RuleName": "-",
        "UtcTime": "2026-05-03 01:20:05.410",
        "ProcessGuid": "{94f748d5-4a45-5a42-0000-0010d265f20f}",
        "ProcessId": "7420",
        "Image": "C:\\Program Files\\Microsoft Office\\root\\Office16\\EXCEL.EXE",
        "TargetFilename": "C:\\Users\\liu.wei\\Desktop\\客户名单_export.xlsx",
        "CreationUtcTime": "2026-05-03 01:20:05.410",
        "User": "CORP\\liu.wei",
    },
    "Microsoft-Windows-Sysmon",
)
XLSX_DELETED = winlogbeat(
    "2026-05-03T01:25:00Z",
    SYSMON,
    23,
    {
        "Image": "C:\\Windows\\explorer.exe",
        "TargetFilename": "C:\\Users\\liu.wei\\Desktop\\客户名单_export.xlsx",
        "User": "CORP\\liu.wei",
    },
    "Microsoft-Windows-Sysmon",
)
ALL = [RDP_LOGON, FAILED_LOGON, LOGOFF, USER_LOGOFF, RUNAS, POWERSHELL, UPLOAD, XLSX_CREATED,
       XLSX_DELETED]  # fmt: skip


def dump(doc: dict[str, Any]) -> str:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))


def parse(data: str | bytes, base_offset: int = 0) -> ParseResult:
    raw = data.encode() if isinstance(data, str) else data
    return WinlogNdjsonParser().parse(
        raw, base_offset=base_offset, source_id="w", path="wlb.ndjson"
    )


def only_row(result: ParseResult, table: str) -> dict[str, Any]:
    assert result.rejected == []
    (row,) = result.tables[table].to_pylist()
    return row


def test_rdp_logon_from_a_source_ip() -> None:
    row = only_row(parse(dump(RDP_LOGON) + "\n", base_offset=40), "events_auth")

    assert row == {
        "event_id": event_id("w", 40),
        "time": datetime(2026, 5, 3, 1, 15, 22, 123000, tzinfo=UTC),
        "source_id": "w",
        "kind": "winlog-ndjson",
        "activity": "logon",
        "user_name": "liu.wei",
        "user_domain": "CORP",
        "logon_type": 10,
        "src_ip": "10.20.3.17",
        "src_port": 0,
        "src_host": "WS-0317",
        "dst_host": HOST,
        "session_id": "0x8a3f2c1",
        "status": None,
        "event_code": 4624,
        "subject_user_name": "WS-0317$",
        "subject_user_domain": "CORP",
        "subject_logon_id": "0x3e7",
        "target_server": None,
        "process_name": "C:\\Windows\\System32\\svchost.exe",
        "process_id": 0x2B8,
        "elevated_token": None,
        "auth_package": "Negotiate",
    }


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        pytest.param(
            FAILED_LOGON,
            {"activity": "logon_failed", "user_name": "admin", "logon_type": 3,
             "src_ip": "10.20.9.44", "src_port": 53120, "src_host": None,
             "status": "0xc000006a", "event_code": 4625},
            id="4625-ipv4-mapped-and-substatus",
        ),
        pytest.param(
            LOGOFF, {"activity": "logoff", "session_id": "0x8a3f2c1", "event_code": 4634}, id="4634"
        ),
        pytest.param(
            USER_LOGOFF, {"activity": "logoff", "logon_type": None, "event_code": 4647}, id="4647"
        ),
        pytest.param(
            RUNAS,
            {"activity": "explicit_credentials", "user_name": "dba_admin", "src_ip": None,
             "src_port": None, "event_code": 4648, "subject_user_name": "liu.wei",
             "subject_user_domain": "CORP", "subject_logon_id": "0x8a3f2c1",
             "user_domain": "CORP", "target_server": "db01.corp.example.cn",
             "process_name": "C:\\Windows\\System32\\runas.exe", "process_id": 0x1A2C},
            id="4648-dashes-are-null",
        ),
    ],
)  # fmt: skip
def test_security_events_map_to_events_auth(doc: dict[str, Any], expected: dict[str, Any]) -> None:
    row = only_row(parse(dump(doc) + "\n"), "events_auth")
    assert {k: row[k] for k in expected} == expected


def test_sysmon_file_create_of_an_xlsx() -> None:
    row = only_row(parse(dump(XLSX_CREATED) + "\n"), "events_file")

    assert row["activity"] == "create"
    assert row["path"] == "C:\\Users\\liu.wei\\Desktop\\客户名单_export.xlsx"
    assert row["image"] == "C:\\Program Files\\Microsoft Office\\root\\Office16\\EXCEL.EXE"
    assert row["user_name"] == "CORP\\liu.wei"
    assert row["host"] == HOST
    assert row["event_code"] == 11
    assert row["time"] == datetime(2026, 5, 3, 1, 20, 5, 412000, tzinfo=UTC)


def test_sysmon_file_delete_process_and_network() -> None:
    data = "".join(dump(d) + "\n" for d in (XLSX_DELETED, POWERSHELL, UPLOAD))
    result = parse(data)

    assert result.rejected == []
    assert only_row(result, "events_file")["activity"] == "delete"
    process = only_row(result, "events_process")
    assert (process["image"], process["pid"], process["parent_image"]) == (
        "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
        5120,
        "C:\\Windows\\explorer.exe",
    )
    assert "Compress-Archive" in process["command_line"]
    network = only_row(result, "events_network")
    assert {k: network[k] for k in ("src_ip", "src_port", "dst_ip", "dst_port", "dst_host",
                                    "protocol", "user_name")} == {
        "src_ip": "10.20.3.17", "src_port": 51514, "dst_ip": "203.0.113.50", "dst_port": 443,
        "dst_host": "pan.example.net", "protocol": "tcp", "user_name": "CORP\\liu.wei",
    }  # fmt: skip


def test_unknown_event_id_is_quarantined_not_dropped() -> None:
    first = dump(RDP_LOGON) + "\n"
    result = parse(first + dump(PRIVILEGES) + "\n" + dump(LOGOFF) + "\n")

    assert [(r.reason, r.offset) for r in result.rejected] == [
        ("unsupported event id 4672 on channel Security", len(first.encode()))
    ]
    assert result.rejected[0].raw == dump(PRIVILEGES)
    assert result.tables["events_auth"].num_rows == 2
    assert result.records == 3


def flat(doc: dict[str, Any]) -> dict[str, Any]:
    """The same event with dotted keys, as some shippers flatten it."""
    out: dict[str, Any] = {}
    for key, value in doc.items():
        if isinstance(value, dict) and key in {"winlog", "event"}:
            out.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            out[key] = value
    return out


def with_field(doc: dict[str, Any], path: str, value: object) -> dict[str, Any]:
    copy = json.loads(json.dumps(doc))
    node = copy
    *parents, last = path.split(".")
    for part in parents:
        node = node[part]
    if value is None:
        node.pop(last)
    else:
        node[last] = value
    return copy  # type: ignore[no-any-return]


def test_flattened_keys_and_winlogbeat_7_numbers_are_read() -> None:
    older = with_field(RDP_LOGON, "winlog.event_id", 4624)
    result = parse(dump(flat(RDP_LOGON)) + "\n" + dump(older) + "\n")

    assert result.rejected == []
    assert result.tables["events_auth"]["user_name"].to_pylist() == ["liu.wei", "liu.wei"]


@pytest.mark.parametrize(
    ("doc", "reason"),
    [
        pytest.param(with_field(RDP_LOGON, "@timestamp", None), "missing @timestamp", id="no-time"),
        pytest.param(
            with_field(RDP_LOGON, "@timestamp", "2026-05-03T01:15:22.123"),
            "@timestamp is not an ISO 8601 time with a zone",
            id="zoneless",
        ),
        pytest.param(
            with_field(RDP_LOGON, "@timestamp", "2026-13-03T01:15:22Z"),
            "@timestamp is not a valid time",
            id="month-13",
        ),
        pytest.param(with_field(RDP_LOGON, "winlog.channel", None), "missing winlog.channel",
                     id="no-channel"),
        pytest.param(
            with_field(with_field(RDP_LOGON, "winlog.event_id", None), "event.code", None),
            "missing winlog.event_id",
            id="no-event-id",
        ),
        pytest.param(with_field(RDP_LOGON, "winlog.event_id", "46x"), "is not an event id",
                     id="bad-event-id"),
        pytest.param(with_field(RDP_LOGON, "winlog.event_data", "x"), "event_data is not an object",
                     id="bad-event-data"),
        pytest.param(with_field(RDP_LOGON, "winlog.event_data.LogonType", "ten"),
                     "LogonType is not an integer", id="bad-logon-type"),
        pytest.param(with_field(RDP_LOGON, "winlog.event_data.IpAddress", "10.20.3"),
                     "IpAddress is not an IP address", id="bad-ip"),
        pytest.param(with_field(UPLOAD, "winlog.event_data.DestinationPort", "70000"),
                     "DestinationPort out of range", id="port-out-of-range"),
        pytest.param(with_field(UPLOAD, "winlog.channel", "Security"),
                     "unsupported event id 3 on channel Security", id="sysmon-id-on-security"),
    ],
)  # fmt: skip
def test_bad_event_is_rejected_where_it_is_and_neighbours_kept(
    doc: dict[str, Any], reason: str
) -> None:
    first = dump(LOGOFF) + "\n"
    result = parse(first + dump(doc) + "\n" + dump(LOGOFF) + "\n", base_offset=9)

    assert len(result.rejected) == 1
    assert reason in result.rejected[0].reason
    assert result.rejected[0].offset == 9 + len(first.encode())
    assert result.tables["events_auth"].num_rows == 2


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        pytest.param(b"{not json", "broken JSON", id="broken"),
        pytest.param(b"[1, 2]", "not a JSON object", id="array"),
        pytest.param(b'{"@timestamp": "\xff"}', "invalid UTF-8", id="utf8"),
        pytest.param(b"[" * 100_000, "broken JSON", id="deeply-nested"),
    ],
)
def test_unreadable_line_is_rejected(line: bytes, reason: str) -> None:
    result = parse(line + b"\n" + dump(LOGOFF).encode() + b"\n")

    assert [r.offset for r in result.rejected] == [0]
    assert reason in result.rejected[0].reason
    assert result.events == 1


def test_last_line_without_newline_is_left_for_later_and_blank_lines_skipped() -> None:
    first = "\n" + dump(LOGOFF) + "\r\n"
    result = parse(first + dump(LOGOFF)[:80])

    assert result.consumed == len(first.encode())
    assert result.records == 1
    assert result.tables["events_auth"]["event_id"].to_pylist() == [event_id("w", 1)]


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        pytest.param(dump(RDP_LOGON) + "\n", True, id="winlogbeat"),
        pytest.param(dump(flat(RDP_LOGON))[:500], True, id="flattened-unfinished"),
        pytest.param('{"ts": "2026-05-03T09:15:22Z", "user": "u", "action": "view"}\n', False,
                     id="app-access"),
        pytest.param("ElfFile\0", False, id="evtx"),
    ],
)  # fmt: skip
def test_sniff(head: str, expected: bool) -> None:
    assert WinlogNdjsonParser.sniff(head.encode()) is expected


# -- fuzzing ------------------------------------------------------------------------

LINES = [dump(d).encode() for d in [*ALL, PRIVILEGES]]
PIECES = [b",", b'"', b"\\", b"}", b"{", b" ", b"0", b"-", b"\x00", b"\xff", b"\xe5\xbc", b"\r"]
VALUES: list[object] = ["-", "", "0x1f", "99999999999", "::1", "a\\b", 7, -1, None, [], {}, True]
DATA_KEYS = ["LogonType", "IpAddress", "IpPort", "ProcessId", "SourcePort", "DestinationIp",
             "TargetUserName", "TargetFilename"]  # fmt: skip


@st.composite
def mutated_line(draw: st.DrawFn) -> tuple[bytes, bool]:
    """A line and whether it was left as Winlogbeat wrote it."""
    index = draw(st.integers(0, len(ALL)))
    if draw(st.booleans()) and index < len(ALL):
        doc = json.loads(json.dumps(ALL[index]))
        for _ in range(draw(st.integers(1, 3))):
            target = draw(st.sampled_from(["data", "data", "@timestamp", "winlog.event_id"]))
            value = draw(st.sampled_from(VALUES))
            if target == "data":
                doc["winlog"]["event_data"][draw(st.sampled_from(DATA_KEYS))] = value
            elif target == "@timestamp":
                doc["@timestamp"] = value
            else:
                doc["winlog"]["event_id"] = value
        raw = dump(doc).encode()
    else:
        raw = LINES[index]
    original = raw in LINES[: len(ALL)]
    for _ in range(draw(st.integers(0, 2))):
        op = draw(st.sampled_from(["insert", "delete", "truncate"]))
        at = draw(st.integers(0, len(raw)))
        if op == "insert":
            raw = raw[:at] + draw(st.sampled_from(PIECES)) + raw[at:]
        elif op == "delete":
            raw = raw[:at] + raw[at + draw(st.integers(1, 8)) :]
        else:
            raw = raw[:at]
        original = False
    return raw.replace(b"\n", b" "), original


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(lines=st.lists(mutated_line(), min_size=1, max_size=30), tail=st.binary(max_size=20))
def test_fuzzed_lines_never_raise_and_each_is_an_event_or_rejected(
    lines: list[tuple[bytes, bool]], tail: bytes
) -> None:
    data = b"".join(raw + b"\n" for raw, _ in lines) + tail.replace(b"\n", b"")
    result = parse(data, base_offset=3)

    starts: list[int] = []
    kept: list[int] = []
    offset = 3
    for raw, original in lines:
        if raw.strip(b" \t\r"):
            starts.append(offset)
            if original:
                kept.append(offset)
        offset += len(raw) + 1

    assert result.consumed == offset - 3
    assert result.records == len(starts)
    stored = {
        row["event_id"]
        for table in result.tables.values()
        for row in table.select(["event_id"]).to_pylist()
    }
    rejected = [r.offset for r in result.rejected if r.offset is not None]
    assert all(r.reason for r in result.rejected)
    assert len(stored) + len(result.rejected) == len(starts)
    assert sorted([*rejected, *(int(e.split(":")[1]) for e in stored)]) == starts
    assert {event_id("w", o) for o in kept} <= stored
