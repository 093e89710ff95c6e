"""Replay of logged statements: pure reads of client tables are evaluated over our own
clients table, everything else is refused with a reason."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from molehunt.attribute.replay import (
    MIN_CONFIDENCE,
    Plan,
    Refusal,
    Replayer,
    confidence,
    replay_statements,
    split_parameters,
    store_replays,
)
from molehunt.store import Store

CITIES = ["上海市", "杭州市", "苏州市"]


@pytest.fixture
def store() -> Iterator[Store]:
    """Twelve clients C01..C12 with city and branch attributes (no PII)."""
    with Store.open(":memory:") as s:
        s.con.execute("ALTER TABLE clients ADD COLUMN city VARCHAR")
        s.con.execute("ALTER TABLE clients ADD COLUMN branch VARCHAR")
        s.con.execute("ALTER TABLE clients ADD COLUMN mobile_h BIGINT")
        s.con.execute(
            "INSERT INTO client_columns VALUES ('city', 'attribute', NULL), "
            "('branch', 'attribute', NULL), ('mobile', 'pii', 'phone')"
        )
        for i in range(1, 13):
            s.con.execute(
                "INSERT INTO clients VALUES ($id, 'src', $city, $branch, $h)",
                {"id": f"C{i:02d}", "city": CITIES[i % 3], "branch": f"B{i % 2}", "h": i},
            )
        yield s


ACCEPTED = [
    ("SELECT * FROM clients", None, 12),
    ("select client_id, name from public.clients where city = '上海市'", None, 4),
    ("SELECT c.client_id FROM clients c WHERE c.branch = 'B1' AND c.city <> '杭州市'", None, 4),
    ("SELECT * FROM clients WHERE client_id = $1", "C05", 1),
    ("SELECT * FROM clients WHERE client_id = $1", "$1 = 'C05'", 1),
    ("SELECT name FROM clients WHERE client_id = ANY($1)", '"{C01,C02,C99}"', 2),
    ("SELECT name FROM clients WHERE client_id = ANY($1)", "{C03}", 1),
    ("SELECT * FROM clients WHERE client_id BETWEEN 'C03' AND 'C07' ORDER BY client_id", None, 5),
    ("SELECT * FROM clients WHERE client_id IN ('C01', 'C02') OR city LIKE '苏%'", None, 5),
    ("SELECT * FROM clients ORDER BY client_id DESC LIMIT 3", None, 3),
    ("SELECT * FROM clients ORDER BY client_id LIMIT 3 OFFSET 10", None, 2),
    ("SELECT * FROM clients WHERE lower(branch) = 'b0'", None, 6),
    ("DECLARE cur NO SCROLL CURSOR FOR SELECT * FROM clients WHERE branch = 'B0'", None, 6),
    ("DECLARE c BINARY CURSOR WITH HOLD FOR SELECT client_id FROM clients", None, 12),
    ("COPY public.clients TO STDOUT WITH (FORMAT csv, HEADER)", None, 12),
    ("COPY clients (client_id, name) TO '/tmp/x.csv'", None, 12),
    ("COPY (SELECT * FROM clients WHERE city = '杭州市') TO STDOUT", None, 4),
    ("SELECT count(*) FROM clients", None, 0),
]

REFUSED = [
    ("UPDATE clients SET city = 'x' WHERE client_id = 'C01'", "UPDATE"),
    ("DELETE FROM clients WHERE client_id = 'C01'", "DELETE"),
    ("INSERT INTO clients (client_id) VALUES ('C99')", "INSERT"),
    ("DROP TABLE clients", "DROP"),
    ("SELECT 1 FROM clients; DROP TABLE clients", "2 statements"),
    ("SELECT * FROM clients WHERE client_id = 'C01' AND pg_sleep(10) IS NULL", "PG_SLEEP"),
    ("SELECT lo_export(1, '/tmp/x') FROM clients", "LO_EXPORT"),
    ("SELECT set_config('a', 'b', false) FROM clients", "SET_CONFIG"),
    ("SELECT * FROM clients WHERE client_id = nextval('s')", "NEXTVAL"),
    ("SELECT * FROM clients FOR UPDATE", "locks rows"),
    ("SELECT * INTO copy_of_clients FROM clients", "INTO"),
    ("SELECT * FROM clients c JOIN policies p ON p.client_id = c.client_id", "JOIN"),
    ("SELECT * FROM clients WHERE client_id IN (SELECT client_id FROM policies)", "SUBQUERY"),
    ("WITH x AS (SELECT * FROM clients) SELECT * FROM x", "WITH"),
    ("SELECT * FROM policies", "not a known client table"),
    ("SELECT * FROM other_schema.clients", "not a known client table"),
    ("SELECT pid FROM pg_stat_activity", "not a known client table"),
    ("SELECT * FROM clients WHERE mobile = '13800138000'", "not a stored non-PII attribute"),
    ("SELECT * FROM clients WHERE client_id = $1", "parameter $1 not logged"),
    ("COPY clients FROM STDIN", "COPY FROM"),
    ("DECLARE c CURSOR FOR DELETE FROM clients", "cursor"),
    ("SELECT * FROM clients LIMIT $1", "LIMIT"),
    ("SELEC * FROM", "unparsable"),
]


@pytest.mark.parametrize(("statement", "parameters", "rows"), ACCEPTED)
def test_pure_reads_are_replayed_over_our_clients(
    store: Store, statement: str, parameters: str | None, rows: int
) -> None:
    plan = Replayer.from_store(store).plan(statement, parameters)
    assert isinstance(plan, Plan), plan
    assert plan.sql.startswith("SELECT client_id FROM clients")
    assert len(store.con.execute(plan.sql).fetchall()) == rows


@pytest.mark.parametrize(("statement", "reason"), REFUSED)
def test_anything_but_a_pure_read_is_refused_with_a_reason(
    store: Store, statement: str, reason: str
) -> None:
    refusal = Replayer.from_store(store).plan(statement, "C01" if "LIMIT" in statement else None)
    assert isinstance(refusal, Refusal)
    assert reason.lower() in refusal.reason.lower()


def test_replay_never_runs_the_logged_text(store: Store) -> None:
    """A predicate is rebuilt from the AST: quoting tricks stay inside a literal."""
    statement = "SELECT * FROM clients WHERE client_id = $1"
    plan = Replayer.from_store(store).plan(statement, "'x''; DROP TABLE clients; --'")
    assert isinstance(plan, Plan)
    assert store.con.execute(plan.sql).fetchall() == []
    assert store.query("SELECT count(*) AS n FROM clients")[0]["n"] == 12


AGREEMENT = [
    (5, 5, 1.0),
    (4, 5, 0.8),
    (10, 5, 0.5),
    (0, 3, 0.0),
    (7, None, 0.5),
]


@pytest.mark.parametrize(("replayed", "logged", "expected"), AGREEMENT)
def test_confidence_is_the_agreement_of_row_counts(
    replayed: int, logged: int | None, expected: float
) -> None:
    assert confidence(replayed, logged) == pytest.approx(expected)


def test_replays_carry_row_count_agreement_and_refusals(store: Store) -> None:
    events = [
        ("e1", "SELECT * FROM clients WHERE city = '上海市'", None, 4),
        ("e2", "SELECT * FROM clients WHERE city = '上海市'", None, 8),  # logged more: stale?
        ("e3", "SELECT * FROM clients WHERE client_id = $1", "C07", 1),
        ("e4", "UPDATE clients SET city = 'x'", None, 12),
        ("e5", "COPY clients TO STDOUT", None, None),
    ]
    replays, refused = replay_statements(store, events)
    by_id = {r.event_id: r for r in replays}
    assert by_id["e1"].confidence == 1.0
    assert by_id["e2"].confidence == 0.5
    assert by_id["e3"].client_ids == ("C07",)
    assert len(by_id["e5"].client_ids) == 12
    assert set(refused) == {"e4"}
    assert "UPDATE" in refused["e4"]


def test_storing_replays_twice_stores_the_same_rows(store: Store) -> None:
    events = [
        ("e1", "SELECT * FROM clients WHERE branch = 'B1'", None, 6),
        ("e2", "SELECT * FROM clients WHERE branch = 'B1'", None, 60),  # too far off
    ]
    replays, _ = replay_statements(store, events)
    for _ in range(2):
        stored = store_replays(store, replays, [e[0] for e in events])
        assert stored == 6
    rows = store.query("SELECT event_id, count(*) AS n FROM record_access GROUP BY ALL")
    assert rows == [{"event_id": "e1", "n": 6}]
    assert confidence(6, 60) < MIN_CONFIDENCE


PARAMETERS = [
    ("C01", ["C01"]),
    ("'C01', 'C02'", ["C01", "C02"]),
    ("$1 = 'C01', $2 = NULL", ["C01", None]),
    ('"{C01,C02}"', ["{C01,C02}"]),
    ("{C01,C02}, 5", ["{C01,C02}", "5"]),
    ("'it''s'", ["it's"]),
    ("", []),
]


@pytest.mark.parametrize(("text", "values"), PARAMETERS)
def test_logged_parameters_split_into_values(text: str, values: list[str | None]) -> None:
    assert split_parameters(text) == values


LOOKUPS = [
    ("SELECT * FROM clients WHERE client_id = $1", "C05"),
    ("SELECT * FROM clients WHERE client_id = $1", "C99"),
    ("SELECT name FROM clients WHERE client_id = ANY($1)", '"{C01,C02,C99}"'),
    ("SELECT name FROM clients WHERE client_id = ANY($1)", "{C03}"),
    ("SELECT name FROM clients WHERE city = $2 AND client_id = $1", "'C04', '杭州市'"),
]


@pytest.mark.parametrize(("statement", "parameters"), LOOKUPS)
def test_id_lookups_in_bulk_return_what_one_replay_returns(
    store: Store, statement: str, parameters: str
) -> None:
    plan = Replayer(["city", "branch"]).plan(statement, parameters)
    assert isinstance(plan, Plan)
    expected = tuple(sorted(r[0] for r in store.con.execute(plan.sql).fetchall()))
    (replay,), refused = replay_statements(store, [("e", statement, parameters, 1)])
    assert not refused
    assert tuple(sorted(replay.client_ids)) == expected


def test_only_plain_id_lookups_take_the_bulk_path() -> None:
    replayer = Replayer(["city"])
    assert replayer.id_lookup("SELECT * FROM clients WHERE client_id = $1") == 1
    assert replayer.id_lookup("SELECT * FROM clients WHERE client_id = ANY($2)") == 2
    for statement in (
        "SELECT * FROM clients WHERE client_id = $1 FOR UPDATE",
        "DELETE FROM clients WHERE client_id = $1",
        "SELECT * FROM clients WHERE client_id = $1 LIMIT 1",
        "SELECT pg_sleep(1) FROM clients WHERE client_id = $1",
        "SELECT * FROM policies WHERE client_id = $1",
    ):
        assert replayer.id_lookup(statement) is None, statement
