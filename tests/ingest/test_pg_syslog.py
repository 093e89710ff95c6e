"""pg-syslog: PostgreSQL through syslog, [n-m] parts gathered per process."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from molehunt.ingest import LOG_PARSERS
from molehunt.ingest.base import FormatMismatchError, ParseResult, event_id
from molehunt.ingest.postgres import PgStderrParser, PgSyslogParser

SELECT = (
    "Feb  9 09:51:29 db1 postgres[1234]: [5-1] 2021-02-09 09:51:29.164 CST [1234] alice@crm "
    '10.0.0.5 app=psql LOG:  AUDIT: SESSION,1,1,READ,SELECT,TABLE,public.clients,"SELECT *\n'
)
OTHER = "Feb  9 09:51:29 db1 systemd[1]: Started Daily apt download activities.\n"
CHECKPOINT = (
    "Feb  9 09:51:29 db1 postgres[1240]: [7-1] 2021-02-09 09:51:29.200 CST [1240] LOG:  "
    "checkpoint starting: time\n"
)
SELECT_2 = 'Feb  9 09:51:29 db1 postgres[1234]: [5-2] #011FROM public.clients",<none>,42\n'
DELETE = (
    "Feb  9 09:51:30 db1 postgres[1234]: [6-1] 2021-02-09 09:51:30.001 CST [1234] alice@crm "
    "10.0.0.5 app=psql LOG:  AUDIT: SESSION,2,1,WRITE,DELETE,TABLE,public.clients,"
    "DELETE FROM public.clients WHERE id = 1,<none>,1\n"
)
LOG = SELECT + OTHER + CHECKPOINT + SELECT_2 + DELETE


def parse(data: str, path: str = "syslog", **kwargs: Any) -> ParseResult:
    parser = PgSyslogParser(log_timezone="Asia/Shanghai")
    return parser.parse(data.encode(), base_offset=0, source_id="src", path=path, **kwargs)


def test_parts_of_a_message_are_gathered_across_other_processes_lines() -> None:
    result = parse(LOG, final=True)
    assert result.rejected == []
    assert result.consumed == len(LOG)
    events = result.tables["events_db"].to_pylist()
    assert [e["event_id"] for e in events] == [
        event_id("src", 0),
        event_id("src", len(LOG) - len(DELETE)),
    ]
    first = events[0]
    assert first["statement"] == "SELECT *\nFROM public.clients"
    assert (first["db_user"], first["database"], first["pid"], first["rows"]) == (
        "alice",
        "crm",
        1234,
        42,
    )
    # CST on a Shanghai server is +08:00.
    assert first["time"] == datetime(2021, 2, 9, 1, 51, 29, 164000, tzinfo=UTC)
    assert result.skipped == {
        "not a PostgreSQL syslog line": 1,
        "not an audit record: checkpoint": 1,
    }


def test_a_message_whose_parts_are_not_all_in_yet_waits() -> None:
    result = parse(SELECT + OTHER + CHECKPOINT)
    assert result.consumed == 0
    assert result.tables["events_db"].num_rows == 0


def test_a_prefix_without_a_time_takes_the_syslog_time(tmp_path: Path) -> None:
    path = tmp_path / "postgresql.log"
    line = (
        "Feb 11 13:15:40 test-pc postgres[10819]: [6-1] db=crm,user=alice,app=psql,client=[local] "
        "LOG:  AUDIT: SESSION,1,1,READ,SELECT,TABLE,t,SELECT 1,<none>,1\n"
    )
    path.write_text(line)
    stamp = datetime(2019, 3, 1, tzinfo=UTC).timestamp()
    os.utime(path, (stamp, stamp))
    parser = PgSyslogParser(log_timezone="Europe/Paris")
    result = parser.parse(line.encode(), base_offset=0, source_id="s", path=str(path), final=True)
    (event,) = result.tables["events_db"].to_pylist()
    # %r reads a host with or without its (port): either writes this line.
    assert parser.inferred_prefix in (
        "%t db=%d,user=%u,app=%a,client=%h ",
        "%t db=%d,user=%u,app=%a,client=%r ",
    )
    assert event["time"] == datetime(2019, 2, 11, 12, 15, 40, tzinfo=UTC)
    assert event["db_user"] == "alice"


def test_kind_is_told_from_the_lines() -> None:
    assert PgSyslogParser.sniff(LOG.encode())
    assert not PgStderrParser.sniff(LOG.encode())
    assert LOG_PARSERS["pg-syslog"] is PgSyslogParser


def test_syslog_lines_of_no_prefix_at_all_are_refused_whole() -> None:
    data = "Feb  9 09:51:29 db1 postgres[1]: [5-1] this is no PostgreSQL message\n" * 3
    with pytest.raises(FormatMismatchError, match="log_line_prefix does not match"):
        parse(data, final=True)
