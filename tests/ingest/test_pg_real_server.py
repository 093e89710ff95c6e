"""Both PostgreSQL parsers against the logs of a real PostgreSQL 15 + pgAudit server."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from pg_server import PREFIX, pg_server

from molehunt.ingest.base import ParseResult
from molehunt.ingest.postgres import PgCsvlogParser, PgStderrParser

pytestmark = pytest.mark.postgres

CLIENTS = 3000
SELECTED = 1200  # SELECT * FROM clients WHERE id <= SELECTED
FETCHED = 3 * 500  # rows read through the cursor before it is closed
COPIED = 700


@dataclass(frozen=True, slots=True)
class Logs:
    csvlog: bytes
    stderr: bytes


@pytest.fixture(scope="module")
def logs() -> Logs:
    psycopg = pytest.importorskip("psycopg")
    with pg_server() as server:
        with psycopg.connect(server.admin_dsn(), autocommit=True) as admin:
            admin.execute("CREATE DATABASE crm")
        with psycopg.connect(server.admin_dsn("crm"), autocommit=True) as admin:
            admin.execute(
                "CREATE TABLE clients (id int PRIMARY KEY, name text, national_id text,"
                " phone text, city text)"
            )
            admin.execute(
                "INSERT INTO clients SELECT g, 'name' || g, lpad(g::text, 18, '0'),"
                f" '139' || lpad(g::text, 8, '0'), 'city' FROM generate_series(1, {CLIENTS}) g"
            )
            for role in ("resigned_agent", "crm_app"):
                admin.execute(f"CREATE ROLE {role} LOGIN")
                admin.execute(f"GRANT SELECT, UPDATE ON clients TO {role}")
        agent = server.dsn("resigned_agent", "crm", application_name="DBeaver 23.1.0")
        with psycopg.connect(agent) as conn:
            rows = conn.execute(f"SELECT * FROM clients WHERE id <= {SELECTED}").fetchall()
            assert len(rows) == SELECTED
            conn.commit()
            conn.execute("DECLARE c CURSOR FOR SELECT national_id, phone FROM clients")
            fetched = sum(len(conn.execute("FETCH 500 FROM c").fetchall()) for _ in range(3))
            assert fetched == FETCHED
            conn.execute("CLOSE c")
            conn.commit()
            with conn.cursor() as cur:
                with cur.copy(
                    f"COPY (SELECT id, name FROM clients WHERE id <= {COPIED}) TO STDOUT"
                ) as copy:
                    copied = b"".join(bytes(block) for block in copy)
                assert copied.count(b"\n") == COPIED
                with cur.copy("COPY clients TO STDOUT") as copy:
                    assert b"".join(bytes(block) for block in copy).count(b"\n") == CLIENTS
            conn.commit()
        app = server.dsn("crm_app", "crm", application_name="crm-webapp")
        with psycopg.connect(app, autocommit=True) as conn:
            one = conn.execute("SELECT name FROM clients WHERE id = %s", [42]).fetchall()
            assert one == [("name42",)]
            conn.execute("UPDATE clients SET phone = '0999' WHERE id BETWEEN 1 AND 7")
        csvlog, stderr = server.stop()
    return Logs(csvlog, stderr)


def _parse_csv(data: bytes) -> ParseResult:
    return PgCsvlogParser().parse(data, base_offset=0, source_id="pg", path="postgresql.csv")


def _parse_stderr(data: bytes) -> ParseResult:
    return PgStderrParser(prefix=PREFIX).parse(
        data, base_offset=0, source_id="pg", path="postgresql.log"
    )


def _events(result: ParseResult, user: str) -> list[dict[str, Any]]:
    return [e for e in result.tables["events_db"].to_pylist() if e["db_user"] == user]


def _comparable(result: ParseResult) -> list[tuple[Any, ...]]:
    keys = (
        "time",
        "db_user",
        "database",
        "src_ip",
        "pid",
        "app_name",
        "audit_class",
        "command",
        "objects",
        "statement",
        "parameters",
        "rows",
        "rows_source",
        "bulk_unknown",
        "statement_id",
        "substatement_id",
    )
    return [tuple(str(e[k]) for k in keys) for e in result.tables["events_db"].to_pylist()]


@pytest.mark.parametrize("parse", [_parse_csv, _parse_stderr], ids=["csvlog", "stderr"])
def test_whole_log_is_consumed_without_rejects(logs: Logs, parse: Any) -> None:
    data = logs.csvlog if parse is _parse_csv else logs.stderr
    result = parse(data)
    assert result.rejected == []
    assert result.consumed == len(data)


@pytest.mark.parametrize("parse", [_parse_csv, _parse_stderr], ids=["csvlog", "stderr"])
def test_resigned_agent_reads_carry_user_ip_app_and_true_rows(logs: Logs, parse: Any) -> None:
    data = logs.csvlog if parse is _parse_csv else logs.stderr
    events = _events(parse(data), "resigned_agent")
    assert {e["src_ip"] for e in events} == {"127.0.0.1"}
    assert {e["app_name"] for e in events} == {"DBeaver 23.1.0"}
    assert {e["database"] for e in events} == {"crm"}
    by_statement = {e["statement"]: e for e in events}

    select = by_statement[f"SELECT * FROM clients WHERE id <= {SELECTED}"]
    assert (select["command"], select["objects"]) == ("SELECT", ["public.clients"])
    assert (select["rows"], select["rows_source"]) == (SELECTED, "pgaudit")

    cursor = by_statement["DECLARE c CURSOR FOR SELECT national_id, phone FROM clients"]
    assert cursor["command"] == "DECLARE CURSOR"
    assert (cursor["rows"], cursor["rows_source"]) == (FETCHED, "auto_explain")

    copy_select = f"COPY (SELECT id, name FROM clients WHERE id <= {COPIED}) TO STDOUT"
    inner = [e for e in events if e["statement"] == copy_select and e["command"] == "SELECT"]
    assert [(e["rows"], e["rows_source"], e["bulk_unknown"]) for e in inner] == [
        (COPIED, "pgaudit", False)
    ]
    for statement in (
        copy_select,
        "COPY clients TO STDOUT",
    ):
        copies = [e for e in events if e["statement"] == statement and e["command"] == "COPY"]
        assert copies, statement
        for copy in copies:
            assert copy["bulk_unknown"] is True
            assert copy["rows"] is None
            assert copy["rows_source"] == "unknown"


@pytest.mark.parametrize("parse", [_parse_csv, _parse_stderr], ids=["csvlog", "stderr"])
def test_application_statements_keep_parameters_and_write_counts(logs: Logs, parse: Any) -> None:
    data = logs.csvlog if parse is _parse_csv else logs.stderr
    events = _events(parse(data), "crm_app")
    assert {e["app_name"] for e in events} == {"crm-webapp"}
    lookup = next(e for e in events if e["command"] == "SELECT")
    assert lookup["statement"] == "SELECT name FROM clients WHERE id = $1"
    assert lookup["parameters"] == "42"
    assert lookup["rows"] == 1
    update = next(e for e in events if e["command"] == "UPDATE")
    assert (update["audit_class"], update["rows"], update["rows_source"]) == ("WRITE", 7, "pgaudit")
    assert not any(e["bulk_unknown"] for e in events)


@pytest.mark.parametrize("parse", [_parse_csv, _parse_stderr], ids=["csvlog", "stderr"])
def test_connections_and_disconnections_become_auth_events(logs: Logs, parse: Any) -> None:
    data = logs.csvlog if parse is _parse_csv else logs.stderr
    auth = parse(data).tables["events_auth"].to_pylist()
    agent = [a for a in auth if a["user_name"] == "resigned_agent"]
    assert [a["activity"] for a in agent] == ["connect", "disconnect"]
    assert {a["app_name"] for a in agent} == {"DBeaver 23.1.0"}
    assert {a["src_ip"] for a in agent} == {"127.0.0.1"}
    assert {a["service"] for a in agent} == {"crm"}
    assert agent[1]["src_port"] is not None


def test_csvlog_and_stderr_give_the_same_events(logs: Logs) -> None:
    from_csv, from_stderr = _parse_csv(logs.csvlog), _parse_stderr(logs.stderr)
    assert _comparable(from_csv) == _comparable(from_stderr)
    assert from_csv.tables["events_auth"].num_rows == from_stderr.tables["events_auth"].num_rows
    csv_sessions = {e["session_id"] for e in from_csv.tables["events_db"].to_pylist()}
    assert None not in csv_sessions  # csvlog names the session; stderr's prefix lacks %c


@pytest.mark.parametrize("parse", [_parse_csv, _parse_stderr], ids=["csvlog", "stderr"])
def test_events_do_not_depend_on_where_the_log_is_cut(logs: Logs, parse: Any) -> None:
    data = logs.csvlog if parse is _parse_csv else logs.stderr
    whole = parse(data)
    step = max(1, len(data) // 23)
    for cut in range(1, len(data), step):
        first = parse(data[:cut])
        rest = (PgCsvlogParser() if parse is _parse_csv else PgStderrParser(prefix=PREFIX)).parse(
            data[first.consumed :], base_offset=first.consumed, source_id="pg", path="p"
        )
        assert first.consumed + rest.consumed == len(data)
        for table in ("events_db", "events_auth"):
            joined = first.tables[table].to_pylist() + rest.tables[table].to_pylist()
            assert joined == whole.tables[table].to_pylist(), (table, cut)
