"""pg-stderr: PostgreSQL stderr log (log_line_prefix) with pgAudit and auto_explain."""

from __future__ import annotations

import functools
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from molehunt_testing import shared_fixtures

from molehunt.config import Settings
from molehunt.errors import ConfigError
from molehunt.ingest.base import FormatMismatchError, ParseResult, event_id
from molehunt.ingest.postgres import (
    DEFAULT_PREFIX,
    PgCsvlogParser,
    PgStderrParser,
    infer_prefix,
    prefix_pattern,
)

HEAD0 = "2026-11-26 12:30:14.021 UTC [5725] "
HEAD = "2026-11-26 12:30:14.021 UTC [5725] alice@crm 10.20.3.17 app=DBeaver 23.1.0 - Main "
CURSOR = "DECLARE c CURSOR FOR\nSELECT * FROM clients"


def parse(data: bytes, prefix: str = DEFAULT_PREFIX, **kwargs: Any) -> ParseResult:
    return PgStderrParser(prefix).parse(
        data, base_offset=0, source_id="src", path="pg.log", **kwargs
    )


def db_events(result: ParseResult) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = result.tables["events_db"].to_pylist()
    return rows


def log(message: str, head: str = HEAD) -> str:
    return head + "LOG:  " + message.replace("\n", "\n\t") + "\n"


def plan(query: str, rows: int) -> str:
    body = (
        '{\n  "Query Text": "' + query.replace("\n", "\\n") + '",\n  "Plan": {\n'
        '    "Node Type": "Seq Scan",\n    "Actual Rows": ' + str(rows) + "\n  }\n}"
    )
    return log("duration: 0.530 ms  plan:\n" + body)


# -- the real sample ----------------------------------------------------------------


@functools.cache
def _sample() -> tuple[bytes, ParseResult]:
    data = shared_fixtures("postgres", "pgaudit-sample.log").read_bytes()
    return data, parse(data)


@pytest.mark.fixtures
def test_sample_gives_the_same_events_as_its_csvlog_twin() -> None:
    data, result = _sample()
    assert result.rejected == []
    assert result.consumed == len(data)
    csv = shared_fixtures("postgres", "pgaudit-sample.csv").read_bytes()
    twin = PgCsvlogParser().parse(csv, base_offset=0, source_id="src", path="pg.csv")
    keys = (
        "time",
        "db_user",
        "database",
        "src_ip",
        "pid",
        "app_name",
        "command",
        "objects",
        "statement",
        "parameters",
        "rows",
        "rows_source",
        "bulk_unknown",
        "statement_id",
    )
    assert [[e[k] for k in keys] for e in db_events(result)] == [
        [e[k] for k in keys] for e in db_events(twin)
    ]
    auth_keys = ("time", "activity", "user_name", "src_ip", "service", "app_name")
    assert [[a[k] for k in auth_keys] for a in result.tables["events_auth"].to_pylist()] == [
        [a[k] for k in auth_keys] for a in twin.tables["events_auth"].to_pylist()
    ]


@pytest.mark.fixtures
def test_sample_events_do_not_depend_on_where_the_file_is_cut() -> None:
    data, whole = _sample()
    for cut in range(0, len(data), 613):
        first = parse(data[:cut])
        rest = PgStderrParser().parse(
            data[first.consumed :], base_offset=first.consumed, source_id="src", path="p"
        )
        assert first.consumed + rest.consumed == len(data)
        for table in ("events_db", "events_auth"):
            joined = first.tables[table].to_pylist() + rest.tables[table].to_pylist()
            assert joined == whole.tables[table].to_pylist(), (table, cut)


def test_sniff_accepts_the_default_prefix_only() -> None:
    assert PgStderrParser.sniff(log("connection received: host=[local]").encode())
    assert PgStderrParser.sniff(b"2026-11-26 12:30:09.585 UTC [5651] LOG:  starting\n")
    assert not PgStderrParser.sniff(b"2026-11-26 12:30:09.585 UTC,,,5651,,6b08.1613,1,,x\n")


# -- prefixes -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prefix", "head", "expected"),
    [
        (DEFAULT_PREFIX, HEAD, {"pid": 5725, "src_ip": "10.20.3.17", "session_id": None}),
        (
            "%t [%p]: [%l-1] user=%u,db=%d,app=%a,client=%h,session=%c ",
            "2026-11-26 12:30:14 UTC [5725]: [3-1] user=alice,db=crm,app=DBeaver 23.1.0 - Main,"
            "client=10.20.3.17,session=6b082656.165d ",
            {"pid": 5725, "src_ip": "10.20.3.17", "session_id": "6b082656.165d"},
        ),
        (
            "%m %r %u %d %a %c: ",
            "2026-11-26 12:30:14.021 UTC 10.20.3.17(35528) alice crm DBeaver 23.1.0 - Main "
            "6b082656.165d: ",
            {"pid": None, "src_ip": "10.20.3.17", "src_port": 35528, "session_id": "6b082656.165d"},
        ),
    ],
)
def test_configured_prefix_fields_reach_the_event(
    prefix: str, head: str, expected: dict[str, Any]
) -> None:
    data = log("AUDIT: SESSION,1,1,READ,SELECT,TABLE,public.clients,SELECT 1,<none>,3", head)
    (event,) = db_events(parse(data.encode(), prefix))
    assert event["db_user"] == "alice"
    assert event["database"] == "crm"
    assert event["app_name"] == "DBeaver 23.1.0 - Main"
    assert event["rows"] == 3
    for key, value in expected.items():
        assert event[key] == value, key


def test_a_prefix_without_a_time_is_refused_when_the_parser_is_made() -> None:
    with pytest.raises(ValueError, match="needs %m or %t"):
        prefix_pattern("%u@%d ")
    with pytest.raises(ConfigError, match="pg_log_line_prefix"):
        PgStderrParser("%u@%d ")


def test_a_prefix_without_a_pid_or_with_an_unknown_escape_still_reads_events() -> None:
    # PostgreSQL prints nothing for an escape it does not know.
    for prefix, head in (("%m %u ", "2026-11-26 12:30:14.021 UTC alice "), ("%m [%p] %Z", HEAD0)):
        data = log("AUDIT: SESSION,1,1,READ,SELECT,TABLE,t,SELECT 1,<none>,3", head)
        (event,) = db_events(parse(data.encode(), prefix))
        assert event["rows"] == 3


# -- records ----------------------------------------------------------------------------


def test_indented_lines_continue_the_statement_and_the_plan() -> None:
    declared = log(f'AUDIT: SESSION,1,1,READ,DECLARE CURSOR,,,"{CURSOR}",<none>,0')
    data = declared + plan(CURSOR, 1500)
    result = parse(data.encode())
    (event,) = db_events(result)
    assert event["statement"] == CURSOR
    assert (event["rows"], event["rows_source"]) == (1500, "auto_explain")
    assert result.records == 2
    assert result.consumed == len(data.encode())


def test_last_record_waits_while_more_lines_could_still_belong_to_it() -> None:
    declared = log(f'AUDIT: SESSION,1,1,READ,DECLARE CURSOR,,,"{CURSOR}",<none>,0')
    whole_plan = plan(CURSOR, 1500)
    half = whole_plan[: whole_plan.index('"Plan"')]
    result = parse((declared + half).encode())
    assert result.consumed == 0
    result = parse((declared + half).encode(), final=True)
    (rejected,) = result.rejected
    assert rejected.reason.startswith("auto_explain plan is not valid JSON")
    assert db_events(result)[0]["rows_source"] == "unknown"


def test_cut_multiline_audit_line_waits_then_parses_whole() -> None:
    declared = log(f'AUDIT: SESSION,1,1,READ,SELECT,,,"{CURSOR}",<none>,7')
    first_line = declared[: declared.index("\n") + 1]
    assert parse(first_line.encode()).consumed == 0
    (event,) = db_events(parse(declared.encode()))
    assert event["rows"] == 7


def test_lines_of_a_record_read_earlier_are_skipped_not_rejected() -> None:
    data = "\t  }\n\t}\n" + log("AUDIT: SESSION,1,1,READ,SELECT,TABLE,t,SELECT 1,<none>,1")
    result = parse(data.encode())
    assert result.rejected == []
    assert result.records == 2
    assert [e["event_id"] for e in db_events(result)] == [event_id("src", 8)]


def test_text_that_does_not_follow_the_prefix_refuses_the_file_whole() -> None:
    data = "Dec 1 12:00:00 host postgres[1]: AUDIT: SESSION,1,1,READ,SELECT,,,x,<none>,1\n" * 3
    with pytest.raises(FormatMismatchError, match="log_line_prefix does not match"):
        parse(data.encode())


def test_invalid_utf8_record_is_rejected_and_neighbours_kept() -> None:
    good = log("AUDIT: SESSION,1,1,READ,SELECT,TABLE,t,SELECT 1,<none>,1").encode()
    bad = log("AUDIT: SESSION,2,1,READ,SELECT,TABLE,t,SELECT 'x',<none>,1").encode()
    bad = bad.replace(b"'x'", b"'\xff\xfe'")
    result = parse(good + bad + good)
    (rejected,) = result.rejected
    assert (rejected.reason, rejected.offset, rejected.line) == ("invalid UTF-8", len(good), 2)
    assert len(db_events(result)) == 2


# -- fuzz ---------------------------------------------------------------------------------

MESSAGES = [
    "AUDIT: SESSION,1,1,READ,SELECT,TABLE,public.clients,SELECT * FROM clients;,<none>,3000",
    'AUDIT: SESSION,2,1,READ,SELECT,TABLE,public.clients,"SELECT a, b FROM clients",<none>,12',
    "AUDIT: SESSION,3,1,READ,COPY,,,COPY clients TO STDOUT;,<none>,0",
    "connection authorized: user=alice database=crm application_name=DBeaver 23.1.0",
    "checkpoint starting: time",
]


def _mutate(message: str, cut: int, junk: bytes, where: int) -> bytes:
    raw = message.encode()
    where %= len(raw) + 1
    mutated = raw[:where] + junk + raw[where:]
    if cut % 3 == 0:
        mutated = mutated[: cut % (len(mutated) + 1)]
    return HEAD.encode() + b"LOG:  " + mutated.replace(b"\n", b" ") + b"\n"


junk_bytes = st.binary(max_size=6).map(lambda b: b.replace(b"\n", b""))
lines_strategy = st.lists(
    st.one_of(
        st.sampled_from(MESSAGES).map(lambda m: (True, log(m).encode())),
        st.tuples(
            st.sampled_from(MESSAGES), st.integers(0, 300), junk_bytes, st.integers(0, 300)
        ).map(lambda t: (False, _mutate(*t))),
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines_strategy)
def test_fuzzed_records_never_raise_and_good_ones_are_kept(lines: list[tuple[bool, bytes]]) -> None:
    data = b"".join(line for _, line in lines)
    offsets = []
    position = 0
    for _, line in lines:
        offsets.append(position)
        position += len(line)
    result = parse(data, final=True)
    assert result.consumed == len(data)
    assert result.records == len(lines)
    stored = {e["event_id"] for t in result.tables.values() for e in t.to_pylist()}
    rejected = {r.offset for r in result.rejected}
    for (good, line), offset in zip(lines, offsets, strict=True):
        if good:
            assert offset not in rejected
            if b"AUDIT" in line or b"authorized" in line:
                assert event_id("src", offset) in stored
        assert not (offset in rejected and event_id("src", offset) in stored)
    assert rejected <= set(offsets)


# -- another log_line_prefix ---------------------------------------------------------

#: An RDS-style prefix ('%t:%r:%u@%d:[%p]:'), background lines with empty fields.
RDS = (
    "2020-03-11 20:40:43 CET::@:[12760]:LOG:  database system is ready to accept connections\n"
    "2020-03-11 20:41:02 CET:192.168.1.201(50916):alice@crm:[14386]:LOG:  "
    "AUDIT: SESSION,1,1,READ,SELECT,TABLE,public.clients,SELECT * FROM clients,<none>,12\n"
    "2020-03-11 20:41:02 CET:192.168.1.201(50916):alice@crm:[14386]:LOG:  "
    "duration: 0.054 ms\n"
)


def test_a_file_with_another_prefix_is_read_with_the_prefix_its_lines_show() -> None:
    parser = PgStderrParser(log_timezone="Europe/Paris")
    result = parser.parse(RDS.encode(), base_offset=0, source_id="src", path="rds.log")
    assert parser.inferred_prefix == "%t:%r:%u@%d:[%p]:"
    (event,) = db_events(result)
    assert (event["db_user"], event["database"], event["pid"]) == ("alice", "crm", 14386)
    assert (event["src_ip"], event["src_port"], event["rows"]) == ("192.168.1.201", 50916, 12)
    assert event["time"].isoformat() == "2020-03-11T19:41:02+00:00"
    assert result.skipped == {
        "not an audit record: server start or stop": 1,
        "not an audit record: duration": 1,
    }
    configured = PgStderrParser("%t:%r:%u@%d:[%p]:", log_timezone="Europe/Paris")
    same = configured.parse(RDS.encode(), base_offset=0, source_id="src", path="rds.log")
    assert configured.inferred_prefix is None
    assert db_events(same) == db_events(result)


def test_a_file_whose_prefix_cannot_be_told_is_refused_whole_with_a_guess() -> None:
    data = "".join(
        f"{i} 2026-11-26 12:30:1{i}.021 UTC pid{i} zz=q LOG:  AUDIT: x\n" for i in range(5)
    )
    with pytest.raises(FormatMismatchError) as raised:
        parse(data.encode())
    message = str(raised.value)
    assert message.startswith("pg.log: log_line_prefix does not match: set pg_log_line_prefix")
    assert "configured: '%m [%p] %q%u@%d %h app=%a '" in message


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (
            [
                "2017-09-06 08:40:10 UTC [20]: [1-1] user=,db=,app=,client= LOG:  database",
                "2017-09-06 08:41:41 UTC [36]: [121-1] user=postgres,db=postgres,app=pgbench,"
                "client=172.23.0.1 LOG:  duration: 2.280 ms  statement: END;",
            ],
            "%t [%p]: [%l-1] user=%u,db=%d,app=%a,client=%h ",
        ),
        (["2026-11-26 12:30:09.585 UTC [5651] LOG:  starting"], "%m [%p] "),
        (
            [
                "2026-11-26 12:30:09.585 CST [5651] LOG:  starting",
                "2026-11-26 12:30:10.001 CST [5652] alice@crm LOG:  AUDIT: x",
            ],
            "%m [%p] %q%u@%d ",
        ),
        (["2026-11-26 12:30:09.585 UTC 5651 6b082656.165d LOG:  x"], "%m %p %c "),
    ],
)
def test_prefix_is_inferred_from_lines(lines: list[str], expected: str) -> None:
    found, _ = infer_prefix(lines)
    assert found is not None
    for line in lines:
        assert re.match(prefix_pattern(found), line)
    assert found in (expected, expected.replace("%h", "%r"))


def test_kind_detection_honours_the_configured_prefix() -> None:
    odd = "%m|%p|%u|%d| "
    line = b"2026-11-26 12:30:14.021 UTC|5725|alice|crm| LOG:  AUDIT: x\n"
    assert PgStderrParser.sniff_configured(line, Settings(pg_log_line_prefix=odd))
    assert not PgStderrParser.sniff_configured(b"Feb  9 09:51:29 h postgres[1]: [5-1] x\n", odd)


def test_the_parsers_default_prefix_is_the_settings_default() -> None:
    from molehunt.config import DEFAULT_PG_PREFIX, Settings

    assert DEFAULT_PREFIX == DEFAULT_PG_PREFIX == Settings().pg_log_line_prefix
