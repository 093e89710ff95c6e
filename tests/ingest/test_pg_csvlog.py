"""pg-csvlog: PostgreSQL 15 csvlog with pgAudit and auto_explain."""

from __future__ import annotations

import functools
import itertools
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from molehunt_testing import shared_fixtures

from molehunt.ingest.base import ParseResult, event_id
from molehunt.ingest.postgres import PgCsvlogParser, csv_records
from molehunt.ingest.postgres.csv_records import cut_records

SESSION = '"alice","crm",5725,"10.20.3.17:35528",6b082656.165d'


def audit(
    payload: str, *, time: str = "2026-11-26 12:30:14.021 UTC", session: str = SESSION
) -> str:
    message = payload.replace('"', '""')
    return (
        f'{time},{session},3,"SELECT",2026-11-26 12:30:14 UTC,3/4,0,LOG,00000,'
        f'"AUDIT: {message}",,,,,,,,,"DBeaver 23.1.0","client backend",,-59\n'
    )


def record(message: str, *, session: str = SESSION) -> str:
    return (
        f'2026-11-26 12:30:15.000 UTC,{session},4,"idle",2026-11-26 12:30:14 UTC,,0,LOG,00000,'
        f'"{message.replace(chr(34), chr(34) * 2)}",,,,,,,,,"DBeaver 23.1.0","client backend",,0\n'
    )


def plan(query: str, rows: int, *, session: str = SESSION) -> str:
    body = (
        '{\n  "Query Text": "' + query.replace("\n", "\\n") + '",\n  "Plan": {\n'
        '    "Node Type": "Seq Scan",\n    "Actual Rows": ' + str(rows) + "\n  }\n}"
    )
    return record("duration: 0.530 ms  plan:\n" + body, session=session)


DISCONNECT = record("disconnection: session time: 0:00:00.006 user=alice database=crm")


def parse(data: bytes, **kwargs: Any) -> ParseResult:
    return PgCsvlogParser().parse(data, base_offset=0, source_id="src", path="pg.csv", **kwargs)


def db_events(result: ParseResult) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = result.tables["events_db"].to_pylist()
    return rows


# -- the real sample ----------------------------------------------------------------

SAMPLE_EXPECTED = [
    # (user, command, statement start, rows, rows_source, bulk_unknown)
    ("postgres", "INSERT", "INSERT INTO clients SELECT", 5000, "auto_explain", False),
    (
        "resigned_agent",
        "SELECT",
        "SELECT * FROM clients WHERE id <= 3000",
        3000,
        "auto_explain",
        False,
    ),
    ("resigned_agent", "SELECT", "SELECT name, national_id, phone", 5000, "auto_explain", False),
    ("sales_alice", "SELECT", "SELECT name FROM clients WHERE id = 42", 1, "auto_explain", False),
    ("sales_alice", "UPDATE", "UPDATE clients SET phone='0999'", 1, "auto_explain", False),
    ("sales_alice", "PREPARE", "PREPARE q(int)", None, "unknown", False),
    ("sales_alice", "SELECT", "PREPARE q(int)", 9, "auto_explain", False),
    ("postgres", "SELECT", "SELECT r.rolname, s.calls", 5, "auto_explain", False),
    ("postgres", "SELECT", "SELECT pg_reload_conf()", 1, "auto_explain", False),
    ("resigned_agent", "SELECT", "SELECT * FROM clients WHERE id <= 3000", 3000, "pgaudit", False),
    ("sales_alice", "UPDATE", "UPDATE clients SET phone='0998'", 7, "pgaudit", False),
    ("resigned_agent", "DECLARE CURSOR", "DECLARE _psql_cursor", 5000, "auto_explain", False),
    ("resigned_agent", "DECLARE CURSOR", "DECLARE c CURSOR", 350, "auto_explain", False),
    ("resigned_agent", "COPY", "COPY clients TO STDOUT", None, "unknown", True),
    ("postgres", "SELECT", "SELECT r.rolname, s.calls", 12, "pgaudit", False),
]


@pytest.fixture(scope="module")
def sample() -> bytes:  # the sniff test needs it too
    return shared_fixtures("postgres", "pgaudit-sample.csv").read_bytes()


@pytest.mark.fixtures
def test_sample_gives_one_event_per_audit_line_with_true_rows(sample: bytes) -> None:
    result = parse(sample)
    assert result.rejected == []
    assert result.consumed == len(sample)
    got = [
        (e["db_user"], e["command"], e["statement"], e["rows"], e["rows_source"], e["bulk_unknown"])
        for e in db_events(result)
    ]
    assert len(got) == len(SAMPLE_EXPECTED)
    for (user, command, statement, rows, source, bulk), want in zip(
        got, SAMPLE_EXPECTED, strict=True
    ):
        assert (user, command, rows, source, bulk) == (want[0], want[1], *want[3:])
        assert statement.startswith(want[2])


@pytest.mark.fixtures
def test_sample_sessions_become_connect_and_disconnect_events(sample: bytes) -> None:
    auth = parse(sample).tables["events_auth"].to_pylist()
    assert len(auth) == 28
    assert {a["activity"] for a in auth} == {"connect", "disconnect"}
    first_agent = next(a for a in auth if a["user_name"] == "resigned_agent")
    assert first_agent["activity"] == "connect"
    assert first_agent["app_name"] == "DBeaver 23.1.0 - Main"
    assert (first_agent["src_ip"], first_agent["src_port"]) == ("127.0.0.1", 35528)
    assert first_agent["service"] == "crm"
    assert first_agent["session_id"] == "6b082656.165d"
    assert first_agent["time"] == datetime(2026, 11, 26, 12, 30, 14, 19000, tzinfo=UTC)


@pytest.mark.fixtures
def test_sample_events_do_not_depend_on_where_the_file_is_cut(sample: bytes) -> None:
    whole = parse(sample)
    audit_starts = [i + 1 for i in range(len(sample)) if sample.startswith(b"\n2026", i)]
    after_audits = [s for s, n in itertools.pairwise(audit_starts) if b"AUDIT" in sample[s:n]]
    for cut in sorted({*range(0, len(sample), 797), *after_audits}):
        first = PgCsvlogParser().parse(sample[:cut], base_offset=0, source_id="src", path="p")
        rest = PgCsvlogParser().parse(
            sample[first.consumed :], base_offset=first.consumed, source_id="src", path="p"
        )
        assert first.consumed + rest.consumed == len(sample)
        assert first.records + rest.records == whole.records
        for table in ("events_db", "events_auth"):
            joined = first.tables[table].to_pylist() + rest.tables[table].to_pylist()
            assert joined == whole.tables[table].to_pylist(), (table, cut)


@pytest.mark.parametrize("slice_bytes", [1, 250, 700, 1 << 30])
def test_records_read_slice_by_slice_give_the_events_of_one_pass(
    slice_bytes: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Slices of the batch are read one by one: AUDIT positions, the payloads
    # left to the regex and the plans must still line up across slices.
    other = '"bob","crm",5726,"10.20.3.18:35529",6b082657.165e'
    data = "".join(
        [
            audit('SESSION,1,1,READ,SELECT,TABLE,public.clients,"SELECT a, b FROM t",<none>,2'),
            audit("SESSION,2,1,READ,DECLARE CURSOR,,,DECLARE c CURSOR FOR SELECT 1,<none>,0"),
            audit("SESSION,123456789012345678901,1,READ,SELECT,,,SELECT 2,<none>,1", session=other),
            audit("SESSION,x,1,READ,SELECT"),
            plan("DECLARE c CURSOR FOR SELECT 1", 40),
            audit('SESSION,3,1,WRITE,UPDATE,TABLE,public.clients,UPDATE t SET a = 1,"x,""y""",1'),
            audit('SESSION,4,1,READ,SEL"ECT,TABLE,t,SELECT 3,<none>,1', session=other),
            DISCONNECT,
        ]
    ).encode()
    whole = parse(data, final=True)
    monkeypatch.setattr("molehunt.ingest.postgres.csvlog._SLICE", slice_bytes)
    sliced = parse(data, final=True)
    assert [(e["command"], e["rows"]) for e in db_events(whole)] == [
        ("SELECT", 2),
        ("DECLARE CURSOR", 40),
        ("SELECT", 1),
        ("UPDATE", 1),
        ('SEL"ECT', 1),
    ]
    broken = data.rindex(b"\n", 0, data.index(b"SESSION,x")) + 1
    assert [(r.offset, r.reason) for r in whole.rejected] == [(broken, "unparseable AUDIT payload")]
    assert [(r.offset, r.reason) for r in sliced.rejected] == [
        (broken, "unparseable AUDIT payload")
    ]
    assert (sliced.consumed, sliced.records) == (whole.consumed, whole.records)
    for table in ("events_db", "events_auth"):
        assert sliced.tables[table].to_pylist() == whole.tables[table].to_pylist(), table


def test_sniff_accepts_csvlog_and_refuses_other_text(sample: bytes) -> None:
    assert PgCsvlogParser.sniff(sample[:65536])
    assert not PgCsvlogParser.sniff(b"2026-11-26 12:30:14.021 UTC [5725] LOG:  hello\n")
    assert not PgCsvlogParser.sniff(b'{"ts": "2026-05-03T09:15:22+08:00"}\n')


# -- records, rows and chunk boundaries -------------------------------------------------


def test_event_ids_are_source_and_byte_offset_of_each_record() -> None:
    first = audit("SESSION,1,1,READ,SELECT,TABLE,public.clients,SELECT 1,<none>,1")
    second = audit("SESSION,2,1,READ,SELECT,TABLE,public.clients,SELECT 2,<none>,2")
    result = PgCsvlogParser().parse(
        (first + second).encode(), base_offset=1000, source_id="src", path="p"
    )
    ids = [e["event_id"] for e in db_events(result)]
    assert ids == [event_id("src", 1000), event_id("src", 1000 + len(first.encode()))]
    assert result.records == 2


def test_unfinished_last_record_is_left_for_later() -> None:
    done = audit("SESSION,1,1,READ,SELECT,TABLE,public.clients,SELECT 1,<none>,1")
    half = audit('SESSION,2,1,READ,SELECT,TABLE,public.clients,"SELECT 2,\n3",<none>,2')
    for cut in (5, len(half) // 2, half.index("\n") + 1, len(half) - 1):
        result = parse((done + half[:cut]).encode())
        assert result.consumed == len(done.encode())
        assert len(db_events(result)) == 1


def test_multiline_quoted_statement_and_parameters_are_unquoted() -> None:
    data = audit(
        'SESSION,1,1,READ,SELECT,TABLE,public.clients,"SELECT *\nFROM clients WHERE a = $1, ""x""",'
        '"1,""two""",5'
    )
    (event,) = db_events(parse(data.encode()))
    assert event["statement"] == 'SELECT *\nFROM clients WHERE a = $1, "x"'
    assert event["parameters"] == '1,"two"'
    assert (event["rows"], event["rows_source"]) == (5, "pgaudit")
    assert (event["src_ip"], event["src_port"], event["pid"]) == ("10.20.3.17", 35528, 5725)
    assert event["objects"] == ["public.clients"]


CURSOR = "DECLARE c CURSOR FOR SELECT * FROM clients"


@pytest.mark.parametrize(
    ("after", "final", "waits", "rows", "source"),
    [
        pytest.param(plan(CURSOR, 1500), False, False, 1500, "auto_explain", id="plan-follows"),
        pytest.param("", False, True, None, None, id="plan-may-still-come"),
        pytest.param("", True, False, None, "unknown", id="file-is-final"),
        pytest.param(DISCONNECT, False, False, None, "unknown", id="session-ended"),
        pytest.param(
            DISCONNECT + plan(CURSOR, 9), False, False, None, "unknown", id="plan-too-late"
        ),
        pytest.param(
            plan(CURSOR, 7, session='"bob","crm",5800,"10.0.0.9:1",6b082656.16a8'),
            False,
            True,
            None,
            None,
            id="other-session-plan",
        ),
        pytest.param(
            plan("SELECT 1", 1) + plan(CURSOR, 42),
            False,
            False,
            42,
            "auto_explain",
            id="same-text-only",
        ),
    ],
)
def test_cursor_read_takes_its_rows_from_the_next_plan_of_its_session(
    after: str, final: bool, waits: bool, rows: int | None, source: str | None
) -> None:
    declared = audit(f"SESSION,1,1,READ,DECLARE CURSOR,,,{CURSOR},<none>,0")
    result = parse((declared + after).encode(), final=final)
    if waits:
        assert result.consumed == 0
        assert db_events(result) == []
        return
    assert result.consumed == len((declared + after).encode())
    (event,) = db_events(result)
    assert (event["rows"], event["rows_source"]) == (rows, source)


def test_plan_window_bounds_the_wait_for_a_plan() -> None:
    declared = audit(f"SESSION,1,1,READ,DECLARE CURSOR,,,{CURSOR},<none>,0")
    filler = record("checkpoint starting: time") * 20
    parser = PgCsvlogParser(plan_window=len(declared) + 100)
    result = parser.parse((declared + filler).encode(), base_offset=0, source_id="s", path="p")
    (event,) = db_events(result)
    assert (event["rows"], event["rows_source"]) == (None, "unknown")
    assert result.consumed == len((declared + filler).encode())


def test_without_log_rows_a_write_counts_the_rows_fed_to_modify_table() -> None:
    statement = "UPDATE clients SET phone = '0' WHERE id < 8"
    body = (
        '{"Query Text": "' + statement + '", "Plan": {"Node Type": "ModifyTable", '
        '"Actual Rows": 0, "Plans": [{"Node Type": "Seq Scan", "Actual Rows": 7}]}}'
    )
    data = audit(f"SESSION,1,1,WRITE,UPDATE,TABLE,public.clients,{statement},<none>") + record(
        "duration: 0.1 ms  plan:\n" + body
    )
    (event,) = db_events(parse(data.encode()))
    assert (event["rows"], event["rows_source"]) == (7, "auto_explain")


def test_copy_to_is_a_bulk_read_of_unknown_size() -> None:
    data = audit("SESSION,2,1,READ,COPY,,,COPY clients TO STDOUT;,<none>,0")
    (event,) = db_events(parse(data.encode()))
    assert (event["bulk_unknown"], event["rows"], event["rows_source"]) == (True, None, "unknown")
    assert event["objects"] == []


@pytest.mark.parametrize(
    ("zone", "zones", "expected"),
    [
        ("UTC", None, datetime(2026, 11, 26, 12, 30, 14, 21000, tzinfo=UTC)),
        ("+08", None, datetime(2026, 11, 26, 4, 30, 14, 21000, tzinfo=UTC)),
        ("-0330", None, datetime(2026, 11, 26, 16, 0, 14, 21000, tzinfo=UTC)),
        ("CST", {"CST": "Asia/Shanghai"}, datetime(2026, 11, 26, 4, 30, 14, 21000, tzinfo=UTC)),
    ],
)
def test_log_time_is_stored_in_utc(
    zone: str, zones: dict[str, str] | None, expected: datetime
) -> None:
    data = audit(
        "SESSION,1,1,READ,SELECT,TABLE,t,SELECT 1,<none>,1", time=f"2026-11-26 12:30:14.021 {zone}"
    )
    result = PgCsvlogParser(zones=zones).parse(
        data.encode(), base_offset=0, source_id="s", path="p"
    )
    (event,) = db_events(result)
    assert event["time"] == expected


def test_ambiguous_zone_abbreviation_is_rejected_not_guessed() -> None:
    data = audit(
        "SESSION,1,1,READ,SELECT,TABLE,t,SELECT 1,<none>,1", time="2026-11-26 12:30:14.021 CST"
    )
    result = parse(data.encode())
    assert db_events(result) == []
    (rejected,) = result.rejected
    assert "CST" in rejected.reason
    assert rejected.offset == 0


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ("2026-11-26 12:30:14.021 UTC,only,three\n", "expected 26 CSV fields, found 3"),
        (
            audit("SESSION,1,1,READ,SELECT,TABLE,t,SELECT 1,<none>,1").replace(
                "alice", "al\udcffice"
            ),
            "invalid UTF-8",
        ),
        (audit("SESSION,x,1,READ,SELECT"), "unparseable AUDIT payload"),
        (
            audit("SESSION,1,1,READ,SELECT,TABLE,t,SELECT 1,<none>,1", time="yesterday"),
            "unreadable log time",
        ),
    ],
)
def test_bad_record_is_rejected_with_offset_and_line_and_neighbours_kept(
    bad: str, reason: str
) -> None:
    good = audit("SESSION,1,1,READ,SELECT,TABLE,t,SELECT 1,<none>,1")
    data = good.encode() + bad.encode("utf-8", "surrogateescape") + good.encode()
    result = parse(data)
    (rejected,) = result.rejected
    assert rejected.reason.startswith(reason)
    assert rejected.offset == len(good.encode())
    assert rejected.line == 2
    assert rejected.raw
    assert [e["event_id"] for e in db_events(result)] == [
        event_id("src", 0),
        event_id("src", len(data) - len(good.encode())),
    ]
    assert result.records == 3


# -- fuzz ---------------------------------------------------------------------------------

GOOD_LINES = [
    audit(
        "SESSION,1,1,READ,SELECT,TABLE,public.clients,"
        "SELECT * FROM clients WHERE id <= 3000;,<none>,3000"
    ),
    audit('SESSION,2,1,READ,SELECT,TABLE,public.clients,"SELECT a, b FROM clients",<none>,12'),
    audit("SESSION,3,1,READ,COPY,,,COPY clients TO STDOUT;,<none>,0"),
    record("connection authorized: user=alice database=crm application_name=DBeaver 23.1.0"),
    record("checkpoint starting: time"),
]


def _mutate(line: str, cut: int, junk: bytes, where: int) -> bytes:
    raw = line.encode()[:-1]
    cut %= len(raw) + 1
    where %= len(raw) + 1
    mutated = raw[:where] + junk + raw[where:]
    mutated = mutated[: max(cut, 1)] if cut < len(raw) // 2 else mutated
    if mutated.count(b'"') % 2:
        mutated += b'"'  # keeps the fuzz about records, not about swallowing the file
    return mutated.replace(b"\n", b" ") + b"\n"


junk_bytes = st.binary(min_size=0, max_size=6).map(lambda b: b.replace(b"\n", b""))
lines_strategy = st.lists(
    st.one_of(
        st.sampled_from(GOOD_LINES).map(lambda line: (True, line.encode())),
        st.tuples(
            st.sampled_from(GOOD_LINES), st.integers(0, 400), junk_bytes, st.integers(0, 400)
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


@functools.cache
def _sample_events() -> tuple[bytes, dict[str, dict[str, Any]]]:
    sample = shared_fixtures("postgres", "pgaudit-sample.csv").read_bytes()
    return sample, {e["event_id"]: e for e in db_events(parse(sample))}


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 40000))
def test_any_truncation_of_the_sample_is_a_prefix_of_its_events(cut: int) -> None:
    sample, whole = _sample_events()
    part = parse(sample[:cut])
    assert part.consumed <= cut
    assert part.rejected == []
    for event in db_events(part):
        assert event == whole[event["event_id"]]


def _records_one_byte_at_a_time(data: bytes) -> tuple[list[int], list[int]]:
    """Record ends and field commas, the plain way: a comma or newline counts
    outside quotes."""
    ends: list[int] = []
    commas: list[int] = []
    quoted = False
    for i, byte in enumerate(data):
        if byte == ord('"'):
            quoted = not quoted
        elif not quoted and byte == ord("\n"):
            ends.append(i)
        elif not quoted and byte == ord(","):
            commas.append(i)
    return ends, [c for c in commas if ends and c < ends[-1]]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([b"a", b",", b'"', b"\n", b'""', b"xyz,"]), max_size=400))
def test_records_are_cut_where_the_quotes_allow(parts: list[bytes]) -> None:
    data = b"".join(parts)
    ends, commas = _records_one_byte_at_a_time(data)
    chunk = csv_records._CHUNK
    # Tiny chunks carry the quote parity across many chunk edges, in mid-word too.
    for size in (chunk, 8, 13):
        csv_records._CHUNK = size
        try:
            cut = cut_records(data)
        finally:
            csv_records._CHUNK = chunk
        if not ends:
            assert cut is None
            continue
        assert cut is not None
        got_ends, got_commas, before = cut
        assert got_ends.tolist() == ends
        assert got_commas.tolist() == commas
        assert before.tolist() == [sum(c < e for c in commas) for e in ends]


# -- layouts of PostgreSQL 8.4 to 17 ----------------------------------------------------

#: The fields after application_name in each layout (PostgreSQL docs, "Using CSV-Format
#: Log Output"): 13 added backend_type, 14 leader_pid and query_id.
_TAILS = {
    22: "",
    23: ',"DBeaver 23.1.0"',
    24: ',"DBeaver 23.1.0","client backend"',
    26: ',"DBeaver 23.1.0","client backend",,-59',
}


def _in_layout(fields: int) -> str:
    return (
        f'2026-11-26 12:30:14.021 UTC,{SESSION},3,"SELECT",2026-11-26 12:30:14 UTC,3/4,0,LOG,'
        '00000,"AUDIT: SESSION,1,1,READ,SELECT,TABLE,t,SELECT 1,<none>,1",,,,,,,,'
        f"{_TAILS[fields]}\n"
    )


@pytest.mark.parametrize("fields", sorted(_TAILS))
def test_every_csvlog_layout_is_told_by_its_field_count(fields: int) -> None:
    line = _in_layout(fields)
    assert csv_records.field_count(line.encode()) == fields
    assert PgCsvlogParser.sniff(line.encode())
    result = parse((line * 3).encode())
    assert result.rejected == []
    events = db_events(result)
    assert len(events) == 3
    assert events[0]["db_user"] == "alice"
    assert events[0]["app_name"] == (None if fields == 22 else "DBeaver 23.1.0")
    assert events[0]["time"] == datetime(2026, 11, 26, 12, 30, 14, 21000, tzinfo=UTC)


def test_a_record_of_another_layout_is_rejected_beside_the_file_s_own() -> None:
    data = _in_layout(24) * 3 + _in_layout(26)
    result = parse(data.encode())
    assert len(db_events(result)) == 3
    (rejected,) = result.rejected
    assert rejected.reason == (
        "expected 24 CSV fields, found 26 (the other records are PostgreSQL 13 csvlog)"
    )


@pytest.mark.fixtures
def test_lines_that_hold_no_event_are_counted_by_reason() -> None:
    data = shared_fixtures("postgres", "pgaudit-sample.csv").read_bytes()
    result = parse(data, final=True)
    assert result.rejected == []
    # Every record is an event or counted as skipped, none silently.
    assert result.events + sum(result.skipped.values()) == result.records
    assert result.skipped["not an audit record: duration"] == data.count(b'"duration: ')
    assert result.skipped["not an audit record: connection received"] == data.count(
        b'"connection received: '
    )


def test_skipped_lines_after_a_waiting_statement_are_not_counted_yet() -> None:
    cursor = "SESSION,1,1,READ,DECLARE CURSOR,TABLE,t,DECLARE c CURSOR FOR SELECT 1,<none>,0"
    data = audit(cursor) + record("checkpoint starting: time") + record("statement: SELECT 1")
    result = parse(data.encode())
    assert result.consumed == 0
    assert result.skipped == {}
    done = parse(data.encode(), final=True)
    assert done.skipped == {
        "not an audit record: checkpoint": 1,
        "not an audit record: statement": 1,
    }


# -- which records wait for a plan, and for how long -------------------------------------


def test_complete_records_never_wait_for_a_plan() -> None:
    data = audit("SESSION,1,1,WRITE,DELETE,TABLE,t,DELETE FROM t,<none>,3") + audit(
        "SESSION,2,1,READ,SELECT,TABLE,t,SELECT 1,<none>,1"
    )
    result = parse(data.encode())
    assert result.consumed == len(data)
    assert result.pending is None
    assert [e["rows"] for e in db_events(result)] == [3, 1]


def test_a_statement_without_a_count_waits_only_until_its_session_moves_on() -> None:
    # pgaudit.log_rows off: the SELECT's plan would come before the session's next statement.
    select = audit("SESSION,1,1,READ,SELECT,TABLE,t,SELECT * FROM t,<none>")
    alone = parse(select.encode())
    assert alone.consumed == 0
    assert alone.pending is not None
    assert "row count of a SELECT" in alone.pending
    data = select + audit("SESSION,2,1,WRITE,DELETE,TABLE,t,DELETE FROM t,<none>")
    result = parse(data.encode())
    # The first is decided (no plan came before the next statement); the second waits.
    assert result.consumed == len(select)
    (event,) = db_events(result)
    assert (event["rows"], event["rows_source"]) == (None, "unknown")


def test_a_cursor_waits_for_its_plan_but_not_past_the_log_time_bound() -> None:
    cursor = "SESSION,1,1,READ,DECLARE CURSOR,TABLE,t,DECLARE c CURSOR FOR SELECT 1,<none>,0"
    declared = audit(cursor, time="2026-11-26 12:30:14.021 UTC")
    other = '"bob","crm",5800,"10.0.0.9:1",6b082656.16a8'
    soon = audit("SESSION,1,1,READ,SELECT,TABLE,t,SELECT 2,<none>,1", session=other).replace(
        "12:30:14.021", "12:31:00.000"
    )
    waiting = parse((declared + soon).encode())
    assert waiting.consumed == 0  # the other session's complete record waits behind it
    assert waiting.pending is not None
    assert "cursor" in waiting.pending
    assert "600 s of log time" in waiting.pending
    late = soon.replace("12:31:00.000", "12:40:14.022")
    result = parse((declared + late).encode())
    assert result.consumed == len(declared + late)
    assert result.pending is None
    assert [e["rows_source"] for e in db_events(result)] == ["unknown", "pgaudit"]


# -- an unclosed quote costs only its own record -------------------------------------------


@pytest.mark.parametrize("where", [0, 5, 119])
def test_an_unclosed_quote_costs_only_its_own_record(where: int) -> None:
    lines = [audit(f"SESSION,{i},1,READ,SELECT,TABLE,t,SELECT {i},<none>,1") for i in range(120)]
    # A writer cut short inside the message (a crash, a truncated copy): the quote never closes.
    broken = lines[where]
    lines[where] = broken[: broken.index("AUDIT") + 20] + "\n"
    data = "".join(lines).encode()
    result = parse(data, final=True)
    (rejected,) = result.rejected
    assert rejected.reason.startswith("unclosed quote")
    assert rejected.offset == sum(len(line) for line in lines[:where])
    assert rejected.line == where + 1
    events = db_events(result)
    assert len(events) == 119
    assert where not in [e["statement_id"] for e in events]
    assert result.consumed == len(data)
