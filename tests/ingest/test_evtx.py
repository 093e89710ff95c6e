"""The EVTX parser on the real sample files of the ``evtx`` crate (../shared/fixtures/evtx).

Expected values were read once from the files' XML rendering (not the JSON the
parser reads) and are written out here, so a mapping mistake cannot agree with
itself. The damaged chunks are located by reading chunk headers directly.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from molehunt_testing import shared_fixtures

from molehunt.ingest.base import ParseResult, event_id
from molehunt.ingest.evtx import EvtxParser

CHUNK = 65536
FILE_HEADER = 4096


def parse(path: Path, resume: int = 0) -> ParseResult:
    return EvtxParser().parse_path(path, source_id="e", resume=resume)


def row(result: ParseResult, table: str, record: int) -> dict[str, Any]:
    rows = result.tables[table].to_pylist()
    (found,) = (r for r in rows if r["event_id"] == event_id("e", record))
    return found


def test_sniff() -> None:
    path = shared_fixtures("evtx", "post-Security.evtx")
    assert EvtxParser.sniff(path.read_bytes()[:64])
    assert not EvtxParser.sniff(b'{"@timestamp": "2026-05-03T01:15:22Z"}\n')
    assert not EvtxParser.sniff(b"")


def test_security_logons_from_post_security() -> None:
    result = parse(shared_fixtures("evtx", "post-Security.evtx"))

    auth = result.tables["events_auth"]
    assert auth["activity"].to_pylist().count("logon") == 25
    assert row(result, "events_auth", 118) == {
        "event_id": event_id("e", 118),
        "time": datetime(2017, 12, 13, 14, 57, 18, 981091, tzinfo=UTC),
        "source_id": "e",
        "kind": "evtx",
        "activity": "logon",
        "user_name": "John",
        "user_domain": "John-PC",
        "logon_type": 2,
        "src_ip": "127.0.0.1",
        "src_port": 0,
        "src_host": "WIN-F0HKLEEGGT1",
        "dst_host": "John-PC",
        "session_id": "0x32f27",
        "status": None,
        "event_code": 4624,
        "subject_user_name": "WIN-F0HKLEEGGT1$",
        "subject_user_domain": "WORKGROUP",
        "subject_logon_id": "0x3e7",
        "target_server": None,
        "process_name": "C:\\Windows\\System32\\winlogon.exe",
        "process_id": 0x190,
        "elevated_token": None,
        "auth_package": "Negotiate",
    }
    service = row(result, "events_auth", 16)
    assert (service["user_name"], service["logon_type"], service["src_ip"]) == ("SYSTEM", 5, None)
    runas = row(result, "events_auth", 117)
    # 4648: who used whose credentials, towards which server, from which process
    # (the values of the record's EventData as the evtx crate reads them).
    assert {k: runas[k] for k in ("activity", "user_name", "user_domain", "src_ip")} == {
        "activity": "explicit_credentials",
        "user_name": "John",
        "user_domain": "John-PC",
        "src_ip": "127.0.0.1",
    }
    assert (
        runas["subject_user_name"],
        runas["subject_user_domain"],
        runas["subject_logon_id"],
        runas["target_server"],
        runas["process_name"],
        runas["process_id"],
    ) == (
        "WIN-F0HKLEEGGT1$",
        "WORKGROUP",
        "0x3e7",
        "localhost",
        "C:\\Windows\\System32\\winlogon.exe",
        400,
    )
    logoff = row(result, "events_auth", 123)
    assert (logoff["activity"], logoff["user_name"], logoff["session_id"]) == (
        "logoff",
        "John",
        "0x33b8e",
    )


def test_other_security_events_are_quarantined_with_their_record_number() -> None:
    result = parse(shared_fixtures("evtx", "post-Security.evtx"))

    assert result.consumed == 126
    assert result.records == 126
    assert result.events + len(result.rejected) == 126
    reasons = {r.offset: r.reason for r in result.rejected}
    assert reasons[1] == "unsupported event id 4608 on channel Security"
    assert sum("event id 4672 " in r for r in reasons.values()) == 20
    assert all(r.raw for r in result.rejected)


def test_failed_rdp_logon_from_security_short_selected() -> None:
    result = parse(shared_fixtures("evtx", "Security_short_selected.evtx"))

    assert row(result, "events_auth", 4) == {
        "event_id": event_id("e", 4),
        "time": datetime(2016, 6, 29, 15, 24, 36, 686000, tzinfo=UTC),
        "source_id": "e",
        "kind": "evtx",
        "activity": "logon_failed",
        "user_name": "Administrator",
        "user_domain": "TEMPORAL",
        "logon_type": 10,
        "src_ip": "23.94.153.202",
        "src_port": 60167,
        "src_host": "TEMPORAL",
        "dst_host": "temporal",
        "session_id": None,
        "status": "0xc000006a",
        "event_code": 4625,
        "subject_user_name": "TEMPORAL$",
        "subject_user_domain": "WORKGROUP",
        "subject_logon_id": "0x3e7",
        "target_server": None,
        "process_name": "C:\\Windows\\System32\\winlogon.exe",
        "process_id": 3128,
        "elevated_token": None,
        "auth_package": "Negotiate",
    }


def test_sysmon_files_network_and_processes() -> None:
    result = parse(shared_fixtures("evtx", "sysmon.evtx"))

    files = result.tables["events_file"]
    assert files.num_rows == 34
    assert set(files["activity"].to_pylist()) == {"create"}
    download = row(result, "events_file", 1858)
    assert download["path"] == "C:\\Users\\tony\\Downloads\\ProcessMonitor.zip"
    assert download["image"] == "C:\\Program Files\\Mozilla Firefox\\firefox.exe"
    assert download["host"] == "DESKTOP-2KGM189"
    assert download["time"] == datetime(2017, 12, 26, 13, 17, 52, 739127, tzinfo=UTC)

    assert result.tables["events_network"].num_rows == 2
    connection = row(result, "events_network", 2061)
    assert {k: connection[k] for k in ("src_ip", "src_port", "dst_ip", "dst_port", "protocol",
                                       "user_name", "dst_host")} == {
        "src_ip": "192.168.2.128", "src_port": 59344, "dst_ip": "185.26.182.117",
        "dst_port": 443, "protocol": "tcp", "user_name": "NT AUTHORITY\\SYSTEM", "dst_host": None,
    }  # fmt: skip

    ping = row(result, "events_process", 1742)
    assert (ping["image"], ping["pid"], ping["parent_image"]) == (
        "C:\\Windows\\SysWOW64\\PING.EXE",
        9112,
        "C:\\Windows\\SysWOW64\\cmd.exe",
    )
    assert ping["command_line"] == "ping  -n 6 127.0.0.1 "


def test_broken_chunks_at_the_end_of_sysmon_are_counted_and_reading_goes_on() -> None:
    path = shared_fixtures("evtx", "sysmon.evtx")
    raw = path.read_bytes()
    broken = [
        n for n in range((len(raw) - FILE_HEADER) // CHUNK)
        if raw[FILE_HEADER + n * CHUNK :][:8] != b"ElfChnk\0"
    ]  # fmt: skip
    assert broken == list(range(9, 17))  # what the file holds, read without the parser

    result = parse(path)

    chunk_errors = [r for r in result.rejected if r.reason.startswith("damaged EVTX chunk")]
    assert [r.reason.split()[3] for r in chunk_errors] == [str(n) for n in broken]
    assert result.consumed == 2099
    assert result.events == 263


def test_resume_reads_only_later_records() -> None:
    path = shared_fixtures("evtx", "sysmon.evtx")
    whole = parse(path)
    later = parse(path, resume=2000)

    numbers = [
        int(str(e).split(":")[1]) for t in later.tables.values() for e in t["event_id"].to_pylist()
    ]
    assert numbers
    assert min(numbers) > 2000
    assert all(r.offset is None or r.offset > 2000 for r in later.rejected)
    assert later.consumed == whole.consumed == 2099
    expected = [
        e for t in whole.tables.values() for e in t["event_id"].to_pylist()
        if int(str(e).split(":")[1]) > 2000
    ]  # fmt: skip
    assert later.events == len(expected)

    again = parse(path, resume=2099)
    assert again.events == 0
    assert again.consumed == 2099


def test_damaged_record_is_quarantined_and_the_others_kept(tmp_path: Path) -> None:
    raw = bytearray(shared_fixtures("evtx", "post-Security.evtx").read_bytes())
    # Overwrite the middle of the second record's binary XML.
    raw[FILE_HEADER + 512 + 3000 : FILE_HEADER + 512 + 3100] = b"A" * 100
    damaged = tmp_path / "damaged.evtx"
    damaged.write_bytes(bytes(raw))

    result = parse(damaged)

    record_errors = [r for r in result.rejected if r.reason.startswith("damaged EVTX record")]
    assert record_errors
    assert all(r.offset is not None for r in record_errors)
    assert result.events > 0
    assert result.records == result.events + len(result.rejected)
    assert row(result, "events_auth", 118)["user_name"] == "John"


@pytest.mark.parametrize(
    "content",
    [b"", b"ElfFile\0" + bytes(200), b"not an event log at all" * 100],
    ids=["empty", "header-only", "text"],
)
def test_unreadable_file_is_reported_not_raised(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.evtx"
    path.write_bytes(content)

    result = parse(path)

    assert result.events == 0
    assert result.rejected
    assert result.consumed == 0
