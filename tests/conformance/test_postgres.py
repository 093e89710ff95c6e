"""PostgreSQL conformance: logs in the shapes real servers write (see README.md).

Expected values are read from the samples themselves with Python's own csv module
and the zone the server's log names (China Standard Time is UTC+8, CET UTC+1),
never from molehunt's output.
"""

from __future__ import annotations

import csv
import io
import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from molehunt.config import Settings
from molehunt.ingest.base import FormatMismatchError, ParseResult
from molehunt.ingest.postgres import PgCsvlogParser, PgStderrParser, PgSyslogParser
from molehunt.ingest.runner import detect_kind

HERE = Path(__file__).parent / "postgres"
CST = timedelta(hours=8)  # China Standard Time, what Asia/Shanghai prints as CST
CET = timedelta(hours=1)


def _local(text: str) -> datetime:
    stamp, _, _zone = text.rpartition(" ")
    fmt = "%Y-%m-%d %H:%M:%S.%f" if "." in stamp else "%Y-%m-%d %H:%M:%S"
    return datetime.strptime(stamp, fmt)


# -- csvlog from an Asia/Shanghai server, PostgreSQL 15, 13 and 12 layouts -----------------


@pytest.mark.parametrize(
    ("name", "fields"),
    [("shanghai-pg15.csv", 26), ("shanghai-pg13.csv", 24), ("shanghai-pg12.csv", 23)],
)
def test_shanghai_csvlog_stores_every_audit_record_at_its_utc_time(name: str, fields: int) -> None:
    data = (HERE / name).read_bytes()
    rows = list(csv.reader(io.StringIO(data.decode())))
    assert {len(r) for r in rows} == {fields}
    audits = [r for r in rows if r[13].startswith("AUDIT: ")]
    assert len(audits) == 13
    # The parser as `molehunt ingest` makes it: timezone defaults to Asia/Shanghai.
    parser = PgCsvlogParser.from_settings(Settings())
    result = parser.parse(data, base_offset=0, source_id="s", path=name, final=True)
    assert result.rejected == []
    events = result.tables["events_db"].to_pylist()
    assert len(events) == len(audits)
    for event, row in zip(events, audits, strict=True):
        assert row[0].endswith(" CST")
        assert event["time"] == (_local(row[0]) - CST).replace(tzinfo=UTC)
        (payload,) = csv.reader(io.StringIO(row[13][len("AUDIT: ") :]))
        assert (event["audit_class"], event["command"]) == (payload[3], payload[4])
        assert event["statement"] == payload[7]
        assert event["statement_id"] == int(payload[1])
        assert event["objects"] == ([payload[6]] if payload[6] else [])
        assert (event["db_user"], event["database"], event["pid"]) == (row[1], row[2], int(row[3]))
    auth = result.tables["events_auth"].to_pylist()
    said = [r for r in rows if r[13].startswith(("connection authorized", "disconnection"))]
    assert [a["time"] for a in auth] == [(_local(r[0]) - CST).replace(tzinfo=UTC) for r in said]
    assert result.skipped == {"not an audit record: connection received": 1}


def test_the_same_csvlog_read_as_a_chicago_server_is_six_hours_behind_utc() -> None:
    data = (HERE / "shanghai-pg15.csv").read_bytes()
    chicago = PgCsvlogParser.from_settings(Settings(pg_log_timezone="America/Chicago"))
    first = chicago.parse(data, base_offset=0, source_id="s", path="p", final=True)
    row = list(csv.reader(io.StringIO(data.decode())))[1]  # connection authorized
    assert row[13].startswith("connection authorized")
    assert first.tables["events_auth"]["time"][0].as_py() == (
        _local(row[0]) + timedelta(hours=6)
    ).replace(tzinfo=UTC)


# -- stderr with another log_line_prefix (pgbadger's RDS and "light" samples) ---------------


@pytest.mark.parametrize(
    ("name", "prefix"),
    [
        ("pgbadger-rds.log", "%t:%r:%u@%d:[%p]:"),
        ("pgbadger-light.log", "%t [%p]: [%l-1] user=%u,db=%d,app=%a,client=%h "),
    ],
)
def test_stderr_with_another_prefix_is_read_configured_and_inferred(name: str, prefix: str) -> None:
    data = (HERE / name).read_bytes()
    text = data.decode()
    lines = text.splitlines()
    durations = sum(1 for line in lines if "LOG:  duration: " in line)
    configured = PgStderrParser.from_settings(
        Settings(pg_log_line_prefix=prefix, pg_log_timezone="Europe/Paris")
    )
    inferred = PgStderrParser.from_settings(Settings(pg_log_timezone="Europe/Paris"))
    results: list[ParseResult] = []
    for parser in (configured, inferred):
        result = parser.parse(data, base_offset=0, source_id="s", path=name, final=True)
        assert result.rejected == []
        assert result.records == len(lines)  # every line is a record of its own
        assert result.consumed == len(data)
        assert result.skipped["not an audit record: duration"] == durations
        assert sum(result.skipped.values()) == len(lines)  # no line silently dropped
        results.append(result)
    assert configured.inferred_prefix is None
    assert inferred.inferred_prefix is not None
    assert re.match(configured.pattern, lines[-1])
    assert results[0].skipped == results[1].skipped


def test_kind_detection_honours_the_configured_prefix(tmp_path: Path) -> None:
    path = tmp_path / "postgresql.log"
    path.write_bytes((HERE / "pgbadger-rds.log").read_bytes())
    settings = Settings(pg_log_line_prefix="%t:%r:%u@%d:[%p]:")
    assert detect_kind(path, settings) == "pg-stderr"


def test_a_log_read_as_the_wrong_kind_is_refused_whole_with_the_reason() -> None:
    data = (HERE / "pgbadger-syslog.log").read_bytes()
    with pytest.raises(FormatMismatchError, match="log_line_prefix does not match") as raised:
        PgStderrParser().parse(data, base_offset=0, source_id="s", path="p", final=True)
    assert "pg-syslog" in str(raised.value)


# -- syslog (pgbadger's pg-syslog sample: a prefix without a time) -----------------------------


def test_syslog_sample_gives_each_connection_at_its_syslog_time(tmp_path: Path) -> None:
    path = tmp_path / "syslog"
    data = (HERE / "pgbadger-syslog.log").read_bytes()
    path.write_bytes(data)
    # The sample says its year itself: "database system was shut down at 2019-02-11 ... CET".
    assert b"shut down at 2019-02-11 13:14:59 CET" in data
    stamp = datetime(2019, 2, 12, tzinfo=UTC).timestamp()
    os.utime(path, (stamp, stamp))
    assert detect_kind(path, Settings()) == "pg-syslog"
    parser = PgSyslogParser.from_settings(
        Settings(pg_log_line_prefix="db=%d,user=%u,app=%a,client=%h ", timezone="Europe/Paris")
    )
    result = parser.parse(data, base_offset=0, source_id="s", path=str(path), final=True)
    assert result.rejected == []
    assert result.consumed == len(data)
    said = [
        line
        for line in data.decode().splitlines()
        if "LOG:  connection authorized" in line or "LOG:  disconnection" in line
    ]
    auth = result.tables["events_auth"].to_pylist()
    assert len(auth) == len(said) == 10
    for event, line in zip(auth, said, strict=True):
        local = datetime.strptime("2019 " + line[:15], "%Y %b %d %H:%M:%S")
        assert event["time"] == (local - CET).replace(tzinfo=UTC)
        assert event["user_name"] == re.search(r" user=(\S+)", line).group(1)  # type: ignore[union-attr]
        assert event["activity"] == ("connect" if "authorized" in line else "disconnect")
