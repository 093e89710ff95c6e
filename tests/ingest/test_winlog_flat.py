"""``winlog-flat``: Windows events as flat JSON lines (NXLog ``to_json`` and others)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from molehunt.config import Settings
from molehunt.errors import ConfigError
from molehunt.ingest.base import ParseResult
from molehunt.ingest.runner import make_log_parser
from molehunt.ingest.winlog_flat import WinlogFlatParser

LOGON: dict[str, Any] = {
    "EventTime": "2026-05-03 09:15:22",
    "Hostname": "WS-0317",
    "EventID": 4624,
    "Channel": "Security",
    "ProcessID": 684,
    "TargetUserName": "liu.wei",
    "TargetDomainName": "CORP",
    "LogonType": "10",
    "IpAddress": "10.20.3.17",
    "ElevatedToken": "%%1843",
}
SYSMON_PROCESS: dict[str, Any] = {
    "EventTime": "2026-05-03T01:16:00.123456Z",
    "Hostname": "WS-0317",
    "EventID": 1,
    "Channel": "Microsoft-Windows-Sysmon/Operational",
    "ProcessId": "5120",
    "Image": "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
    "User": "CORP\\liu.wei",
    "LogonId": "0x8a3f2c1",
    "ParentProcessId": "4012",
    "ParentCommandLine": "C:\\Windows\\explorer.exe",
    "IntegrityLevel": "Medium",
}


def line(doc: dict[str, Any]) -> str:
    return json.dumps(doc, ensure_ascii=False) + "\n"


def parse(text: str, zone: str = "Asia/Shanghai", base_offset: int = 0) -> ParseResult:
    return WinlogFlatParser(timezone=zone).parse(
        text.encode(), base_offset=base_offset, source_id="f", path="nx.json"
    )


def test_zone_less_event_time_is_read_in_the_configured_zone() -> None:
    (row,) = parse(line(LOGON)).tables["events_auth"].to_pylist()
    assert row["time"] == datetime(2026, 5, 3, 1, 15, 22, tzinfo=UTC)
    assert (row["user_name"], row["logon_type"], row["elevated_token"]) == ("liu.wei", 10, False)
    (utc,) = parse(line(LOGON), zone="UTC").tables["events_auth"].to_pylist()
    assert utc["time"] == datetime(2026, 5, 3, 9, 15, 22, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1777770922, datetime(2026, 5, 3, 1, 15, 22, tzinfo=UTC)),
        (1777770922123, datetime(2026, 5, 3, 1, 15, 22, 123000, tzinfo=UTC)),
        (1777770922123456, datetime(2026, 5, 3, 1, 15, 22, 123456, tzinfo=UTC)),
        ("2026-05-03T09:15:22.1234567+08:00", datetime(2026, 5, 3, 1, 15, 22, 123456, tzinfo=UTC)),
    ],
)
def test_epoch_numbers_and_zoned_times(value: object, expected: datetime) -> None:
    (row,) = parse(line({**LOGON, "EventTime": value})).tables["events_auth"].to_pylist()
    assert row["time"] == expected


def test_sysmon_process_keeps_logon_id_parent_and_integrity() -> None:
    (row,) = parse(line(SYSMON_PROCESS)).tables["events_process"].to_pylist()
    assert (row["pid"], row["logon_id"], row["parent_pid"], row["integrity_level"]) == (
        5120,
        "0x8a3f2c1",
        4012,
        "Medium",
    )
    assert row["parent_command_line"] == "C:\\Windows\\explorer.exe"


def test_bad_and_unsupported_lines_are_rejected_where_they_are() -> None:
    other = {**LOGON, "EventID": 4672}
    no_time = {k: v for k, v in LOGON.items() if k != "EventTime"}
    bad_flag = {**LOGON, "ElevatedToken": "maybe"}
    lines = [line(LOGON), line(other), "{not json\n", line(no_time), line(bad_flag), line(LOGON)]
    result = parse("".join(lines), base_offset=100)
    assert result.records == 6
    assert result.events == 2
    offsets = [100 + sum(len(x.encode()) for x in lines[:i]) for i in range(len(lines))]
    got = [(r.offset, r.length, r.reason.split(":")[0]) for r in result.rejected]
    assert got == [
        (offsets[1], len(lines[1].encode()), "unsupported event id 4672 on channel Security"),
        (offsets[2], len(lines[2].encode()), "broken JSON"),
        (offsets[3], len(lines[3].encode()), "missing EventTime"),
        (offsets[4], len(lines[4].encode()), "ElevatedToken is not yes or no"),
    ]


def test_partial_last_line_waits() -> None:
    text = line(LOGON) + line(LOGON)[:20]
    result = parse(text)
    assert result.consumed == len(line(LOGON).encode())
    assert result.events == 1


def test_sniff_and_settings() -> None:
    assert WinlogFlatParser.sniff(line(LOGON).encode())
    assert not WinlogFlatParser.sniff(b'{"@timestamp": "x", "winlog": {"EventID": 1}}\n')
    parser = make_log_parser("winlog-flat", Settings(timezone="UTC"))
    assert isinstance(parser, WinlogFlatParser)
    assert str(parser.zone) == "UTC"
    with pytest.raises(ConfigError, match="timezone"):
        WinlogFlatParser(timezone="Mars/Olympus")
