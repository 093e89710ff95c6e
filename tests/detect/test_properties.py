"""A detection pass never dies on data: every registered detector, on odd stores.

Hypothesis builds small stores in the real schema (rows inserted straight into the
event and reference tables): empty tables, one person, one day, reference kinds
missing (no HR, no accounts, no entitlements, no assets, no web categories),
accounts with no owner, reads naming no table (a group of NULLs only), clocks out of
order (reference versions valid to before they are valid from), NULL in every
nullable column, odd strings (empty, unicode), times at the edges of local days.
Values are drawn from small shared pools so that accounts, hosts and people join
and the detectors reach the code that turns their answers into findings; thresholds
are drawn as shipped or as low as the settings allow, for the same reason. Every
detector must return findings that keep the contract (their own name, a reported
day, a severity of 0-100, real event ids), and storing them must work.

A pass of the detectors costs seconds (Ibis compiles every expression), so each
example holds several small companies (see :func:`_stores`) and the example count is
small; ``MOLEHUNT_PROPERTY_EXAMPLES=40`` searches longer (worth doing after a change
of the detectors).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from molehunt.detect import DETECTORS, DetectContext, DetectionSettings, Finding
from molehunt.detect.engines import detection_backend
from molehunt.detect.runner import DetectReport, write_findings
from molehunt.store import Store
from molehunt.store.schema import EVENT_TABLES, REFERENCE_TABLES

_NO_SHRINK = (Phase.explicit, Phase.reuse, Phase.generate, Phase.target)
settings.register_profile(
    "detect-properties",
    max_examples=int(os.environ.get("MOLEHUNT_PROPERTY_EXAMPLES", "3")),
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
        HealthCheck.function_scoped_fixture,
    ],
    print_blob=True,
    # Shrinking replays a pass (seconds) per step: minutes. The failing store is printed
    # whole; MOLEHUNT_PROPERTY_SHRINK=1 shrinks it.
    phases=tuple(Phase) if os.environ.get("MOLEHUNT_PROPERTY_SHRINK") else _NO_SHRINK,
)
PROFILE = settings.get_profile("detect-properties")

#: Tables the generated stores fill (the rest, findings aside, stay empty).
FILLED = (
    *(f"ref_{name}" for name in REFERENCE_TABLES),
    *EVENT_TABLES,
    "clients",
    "file_clients",
    "record_access",
    "canaries",
)

DAYS = (date(2026, 5, 1), date(2026, 5, 2), date(2026, 5, 3), date(2026, 5, 4))
ODD = ("", " ", "Ωé-李雷", "a\x00b", "😀", "'; DROP TABLE x; --", "x" * 300)
CAST = (1, 2, 3)  # the people of one small company
ROLES = {1: "sales", 2: "analyst", 3: "dba"}


def _identity(column: str, table: str, k: int, world: int) -> tuple[str, ...] | None:
    """How the tables name cast member ``k`` in a column (None: not an identity column)."""
    if column in ("employee_id", "owner_employee_id"):
        return (f"e{k}",)
    if column == "manager_id":
        return (f"e{k % len(CAST) + 1}",)
    if column in ("account", "user_name", "db_user"):
        return (f"a{k}", f"A{k}", f"CORP\\a{k}", "svc")  # svc: an account with no owner
    if column in ("hostname", "src_host", "dst_host") or (
        column == "host" and table != "events_http"
    ):
        return (f"ws-{k}", f"WS-{k}.corp.example")
    if column in ("ip", "src_ip", "dst_ip"):
        return (f"10.0.0.{k}",)
    if column == "client_id":
        return (f"c{k}",)
    if column == "role":
        return (ROLES[k],)
    if column in ("path", "host_path") and table in ("events_file", "events_scan"):
        return (f"C:\\Users\\a{k}\\Desktop\\clients.xlsx", f"c:\\users\\a{k}\\desktop\\C.CSV")
    if column == "event_id" and table in ("file_clients", "record_access"):
        return tuple(f"events_{t}:{world}:{k}" for t in ("scan", "db", "app"))
    return None


COUNTS = (0, 1, 2, 30, 199, 200, 1000, 5000, 300_000, 3_000_000, 10**12)
IMAGES = (
    "C:\\Program Files\\DBeaver\\dbeaver.exe",
    "C:\\Program Files\\Microsoft Office\\EXCEL.EXE",
    "C:\\Windows\\explorer.exe",
    "psql",
    "",
)

#: Values of the other columns by name (then by table and name).
BY_NAME: dict[str, tuple[Any, ...]] = {
    "system": ("crm-db", "crm-app", "ad", ""),
    "department": ("sales", "it", ""),
    "resource": ("public.clients", "*", "clients", ""),
    "access": ("read", "write"),
    "logon_type": (2, 3, 7, 10, 11),
    "audit_class": ("READ", "WRITE", "MISC"),
    "command": ("SELECT", "COPY", "DECLARE CURSOR", "FETCH", "UPDATE"),
    "action": ("view", "search", "export"),
    "method": ("GET", "POST", "PUT", "CONNECT"),
    "request_content_type": ("multipart/form-data; boundary=x", "application/json", ""),
    "image": IMAGES,
    "parent_image": IMAGES,
    "app_name": ("DBeaver 23.1", "psql", "crm", ""),
    "category": ("shopping", "internal", "webmail", ""),
    "domain": ("shop.example", "example", "corp", "intranet.corp", ""),
    "allowed": (True, False),
    "rows": COUNTS,
    "n_client_ids": COUNTS[:8],
    "bytes_out": COUNTS,
    "bytes_in": COUNTS,
    "client_records": COUNTS[:8],
    "size": COUNTS,
    "client_id": ("c1", "c2", "c3"),
    "source_id": ("s1", "s2"),
    "verdict": ("bulk-client-data", "personal-data", "clean", "error"),
    "sha256": ("0" * 64,),
    "how": ("listed", "replayed"),
    "findings": ('{"name": 30}', "{}"),
}
BY_TABLE: dict[tuple[str, str], tuple[Any, ...]] = {
    ("events_http", "host"): ("im.shop.example", "shop.example", "intranet.corp", "例子.中国"),
    ("events_http", "path"): ("/chat/upload", "/im/send", "/msg?x=1", "/", ""),
    ("events_auth", "kind"): ("windows_security", "pg_auth", "pg_csv"),
    ("events_auth", "activity"): (
        "logon",
        "logoff",
        "connect",
        "disconnect",
        "logon_failed",
        "explicit_credentials",
    ),
    ("events_file", "activity"): ("create", "delete"),
    ("ref_accounts", "kind"): ("user", "service", "shared", ""),
    ("ref_assets", "kind"): ("workstation", "server", "laptop", ""),
}
#: Sites each world has of its own (see :func:`_tag`).
SITES = {("events_http", "host"), ("ref_web_categories", "domain")}


def _times() -> st.SearchStrategy[datetime]:
    """UTC times at and around the edges of local days (Shanghai midnight is 16:00 UTC)."""
    seconds = st.sampled_from((0, 1, 8 * 3600, 57_599, 57_600, 86_399)) | st.integers(0, 86_399)
    return st.builds(
        lambda day, s, us: (
            datetime(2026, 5, 1, tzinfo=UTC) + timedelta(days=day, seconds=s, microseconds=us)
        ),
        st.integers(-8, 4),  # a few days: people come back, baselines have history
        seconds,
        st.sampled_from((0, 999_999)),
    )


def _tag(value: Any, world: int, site: bool = False) -> Any:
    """``a1`` -> ``a1~w2``, ``WS-1.corp.example`` -> ``WS-1~w2.corp.example``,
    ``10.0.0.1`` -> ``10.2.0.1``, a site ``im.shop.example`` -> ``im.shop.example~w2``
    (suffixes still match): the same value in world 2, unlike any of world 1's; empty
    and odd values stay shared."""
    if not isinstance(value, str) or not value or world == 0 or value in ODD:
        return value
    if site:
        return f"{value}~w{world}"
    if value.startswith("events_") or value in ROLES.values():
        return value
    head, dot, tail = value.partition(".")
    if head.isdigit():
        parts = value.split(".")
        return ".".join([parts[0], str(world), *parts[2:]])
    return f"{head}~w{world}{dot}{tail}"


def _value(
    table: str, column: str, typ: str, nullable: bool, world: int, k: int, noisy: bool
) -> st.SearchStrategy[Any]:
    """A value that joins (cast member ``k`` of world ``world``); in a ``noisy`` column,
    also another member's, an odd one or NULL."""
    if (table, column) == ("canaries", "client_id"):  # its key: unique
        return st.sampled_from([_tag(f"c{j}", world) for j in CAST])
    if column in ("valid_from", "valid_to") and not noisy:
        return st.none()  # a version valid all along
    own = _identity(column, table, k, world)
    clean: st.SearchStrategy[Any]
    noise: st.SearchStrategy[Any] = st.sampled_from(ODD) if typ == "VARCHAR" else st.nothing()
    if own is not None:
        clean = st.sampled_from(sorted(_tag(v, world) for v in own))
        others = {_tag(v, world) for j in CAST for v in _identity(column, table, j, world) or ()}
        noise = noise | st.sampled_from(sorted(others))
    elif column == "objects":
        tables = st.sampled_from(("public.clients", "clients", "pg_catalog.pg_class"))
        clean = st.lists(tables, min_size=1, max_size=2)
        noise = st.lists(st.none() | tables | st.just(""), max_size=3)
    elif (pool := BY_TABLE.get((table, column), BY_NAME.get(column))) is not None:
        site = (table, column) in SITES
        clean = st.sampled_from(tuple(_tag(v, world, site=True) for v in pool) if site else pool)
    elif typ.startswith("TIMESTAMP"):
        clean = _times()
    elif typ == "DATE":
        clean = st.builds(lambda d: date(2026, 5, 1) + timedelta(days=d), st.integers(-60, 5))
    elif typ == "BOOLEAN":
        clean = st.booleans()
    elif typ in ("INTEGER", "BIGINT"):
        clean = st.sampled_from(COUNTS[:6])
    else:  # VARCHAR and JSON free text
        clean = st.text(max_size=5)
    if not noisy:
        return clean
    return (st.none() | clean | noise) if nullable else (clean | noise)


Columns = dict[str, list[tuple[str, str, bool]]]
Rows = dict[str, list[dict[str, Any]]]


def _columns(store: Store) -> Columns:
    rows = store.query(
        "SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns "
        "WHERE table_schema = 'main' ORDER BY table_name, ordinal_position"
    )
    out: Columns = {t: [] for t in FILLED}
    for r in rows:
        if r["table_name"] in out:
            out[r["table_name"]].append(
                (r["column_name"], r["data_type"], r["is_nullable"] == "YES")
            )
    return out


def _schema() -> Columns:
    """The columns of a new store, with the client export's portfolio owner that
    client_file reads when a store has it."""
    with Store.open(":memory:") as store:
        store.con.execute("ALTER TABLE clients ADD COLUMN owner_employee_id VARCHAR")
        return _columns(store)


COLUMNS = _schema()
#: Every column that can be noisy (``table.column``): all but the event ids.
NOISE = tuple(
    f"{t}.{c}"
    for t in FILLED
    for c, _, _ in COLUMNS[t]
    if not (c == "event_id" and t.startswith("events_"))
)


def _row(
    table: str, world: int, noisy: frozenset[str], fixed: dict[str, Any] | None = None
) -> st.SearchStrategy[dict[str, Any]]:
    """A row about one cast member (``fixed`` values, else drawn), its ``noisy``
    columns (``table.column``) aside."""

    def member(k: int) -> st.SearchStrategy[dict[str, Any]]:
        out: dict[str, st.SearchStrategy[Any]] = {}
        for name, typ, nullable in COLUMNS[table]:
            if name == "event_id" and table.startswith("events_"):
                continue
            noisy_here = f"{table}.{name}" in noisy
            if fixed and name in fixed and not noisy_here:
                out[name] = st.just(fixed[name])
            else:
                out[name] = _value(table, name, typ, nullable, world, k, noisy_here)
        return st.fixed_dictionaries(out)

    return st.sampled_from(CAST).flatmap(member)


def _reference(world: int) -> dict[str, list[dict[str, Any]]]:
    """What a company's reference data says when it is complete: each cast member's
    HR record, accounts and workstation, the roles' entitlements, the sites' categories."""
    out: dict[str, list[dict[str, Any]]] = {
        "ref_hr": [{"employee_id": _tag(f"e{k}", world), "role": ROLES[k]} for k in CAST],
        "ref_accounts": [
            {
                "account": _tag(f"a{k}", world),
                "system": system,
                "owner_employee_id": _tag(f"e{k}", world),
                "kind": "user",
            }
            for k in CAST
            for system in ("ad", "crm-db", "crm-app")
        ]
        + [
            {"account": _tag("svc", world), "system": system, "kind": "shared"}
            for system in ("ad", "crm-db")
        ],
        "ref_assets": [
            {
                "hostname": _tag(f"WS-{k}.corp.example", world),
                "ip": _tag(f"10.0.0.{k}", world),
                "owner_employee_id": _tag(f"e{k}", world),
                "kind": "workstation",
            }
            for k in CAST
        ],
        "ref_entitlements": [
            {"role": "sales", "system": "crm-app", "resource": "clients", "access": "read"},
            {"role": "analyst", "system": "crm-db", "resource": "public.clients"},
            {"role": "dba", "system": "crm-db", "resource": "*"},
        ],
        "ref_web_categories": [
            {"domain": _tag("shop.example", world, site=True), "category": "shopping"},
            {"domain": _tag("intranet.corp", world, site=True), "category": "internal"},
        ],
        "ref_web_policy": [
            {"category": "shopping", "allowed": True},
            {"category": "internal", "allowed": True},
            {"category": "webmail", "allowed": False},
        ],
    }
    for rows in out.values():
        for row in rows:
            row.setdefault("source_id", "s1")
    return out


@st.composite
def _world(draw: st.DrawFn, world: int, missing: frozenset[str]) -> Rows:
    """One small company's rows per table: coherent, but for some noisy columns (NULLs,
    odd strings, another person's values) or, in a chaotic world, every column noisy.
    Event ids are ``table:world:index`` (unique, as checkpoints make them)."""
    if draw(st.booleans(), label="chaos"):
        noisy = frozenset(NOISE)
    else:
        noisy = frozenset(draw(st.sets(st.sampled_from(NOISE), max_size=10), label="noisy"))
    complete = _reference(world)
    out: Rows = {}
    for table in FILLED:
        if table in missing:
            out[table] = []
            continue
        unique = (lambda r: r["client_id"]) if table == "canaries" else None  # its key
        rows = [draw(_row(table, world, noisy, fixed)) for fixed in complete.get(table, [])]
        most = 8 if table.startswith("events_") else 3
        rows += draw(st.lists(_row(table, world, noisy), max_size=most, unique_by=unique))
        if table.startswith("events_"):
            rows = [{**r, "event_id": f"{table}:{world}:{i}"} for i, r in enumerate(rows)]
        out[table] = rows
    return out


@st.composite
def _stores(draw: st.DrawFn) -> Rows:
    """Several independent small companies in one store (people, accounts, hosts,
    addresses, sites and clients of their own, see :func:`_tag`), so that one pass of
    the detectors, whose compiling costs seconds, checks many; some tables are left
    empty for all of them (a reference kind missing)."""
    missing = frozenset(draw(st.sets(st.sampled_from(FILLED), max_size=3), label="empty"))
    worlds = draw(st.integers(1, 6), label="worlds")
    out: Rows = {t: [] for t in FILLED}
    for w in range(worlds):
        for table, rows in draw(_world(w, missing)).items():
            out[table].extend(rows)
    return out


#: As shipped, and as lax as allowed (so that little data reaches every finding).
HAIR_TRIGGER = DetectionSettings(
    baseline_days=3,
    min_history_days=1,
    bulk_rows=1,
    offhours_rows=1,
    spike_min_rows=1,
    sustained_min_days=1,
    sustained_min_reads=1,
    out_of_scope_min_clients=1,
    out_of_scope_min_reads=1,
    file_min_clients=1,
    upload_request_bytes=1,
    upload_min_bits=0,
    ring_min_bits=0,
    critical_file_clients=1,
    follow_hours=24 * 14,  # longer is laxer: more follow-ups and rings to report
    ring_days=30,
    departing_days=0,
    max_event_ids=1,
)


@pytest.fixture(scope="module")
def shared_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """One store file for every example (emptied and filled again by each: opening and
    migrating one per example would cost more than the example)."""
    path: Path = tmp_path_factory.mktemp("properties") / "molehunt.duckdb"
    with Store.open(path) as store:
        store.con.execute("ALTER TABLE clients ADD COLUMN owner_employee_id VARCHAR")
        yield store


def _fill(store: Store, data: Rows) -> None:
    # Emptied in a transaction of its own: DuckDB refuses a key deleted and inserted
    # again in one.
    with store.transaction() as con:
        for table in (*FILLED, "findings"):
            con.execute(f"DELETE FROM {table}")
    with store.transaction() as con:
        for table, rows in data.items():
            for row in rows:
                names = ", ".join(f'"{n}"' for n in row)
                marks = ", ".join("?" for _ in row)
                con.execute(f"INSERT INTO {table} ({names}) VALUES ({marks})", list(row.values()))


def _check(name: str, found: list[Finding], ctx: DetectContext, ids: set[str]) -> None:
    for f in found:
        assert f.detector == name
        assert ctx.reported(f.day), (name, f.day)
        assert 0 <= f.severity <= 100, (name, f.severity)
        assert f.time.tzinfo is not None
        assert set(f.event_ids) <= ids, (name, set(f.event_ids) - ids)
        assert len(f.event_ids) <= ctx.settings.max_event_ids


def _detect_all(
    store: Store, rows: Rows, chosen: DetectionSettings, as_of: date, since: date | None, zone: str
) -> list[Finding]:
    """Fill the store, run every registered detector on DuckDB, store the findings."""
    _fill(store, rows)
    ids = {r["event_id"] for t in EVENT_TABLES for r in rows.get(t, [])}
    report = DetectReport(as_of, since)
    with (
        detection_backend(store, "duckdb") as backend,
        DetectContext(backend, chosen, as_of, since=since, timezone=zone) as ctx,
    ):
        for name, detector in DETECTORS.items():
            found = detector().find(ctx)
            _check(name, found, ctx, ids)
            report.findings.extend(found)
    write_findings(store, report)
    stored = store.query("SELECT count(*) AS n FROM findings")[0]["n"]
    assert stored == len({f.finding_id for f in report.findings})
    return report.findings


def test_the_strategy_covers_every_column() -> None:
    """Every column of the tables filled has a strategy (else the property is hollow)."""
    assert all(COLUMNS[t] for t in FILLED), [t for t in FILLED if not COLUMNS[t]]
    known = {
        "VARCHAR",
        "VARCHAR[]",
        "BIGINT",
        "INTEGER",
        "BOOLEAN",
        "DATE",
        "JSON",
        "TIMESTAMP WITH TIME ZONE",
    }
    unknown = {(t, c, typ) for t in FILLED for c, typ, _ in COLUMNS[t] if typ not in known}
    assert not unknown, f"no strategy for column types {unknown}"


#: A sales person reading the database with statements that name no table, with no
#: entitlement to it: the group's resources are NULLs only (the independent insurer's
#: crash of outside_entitlement).
NO_TABLE_NAMED: Rows = {
    "ref_hr": [{"employee_id": "e1", "role": "sales", "source_id": "s1"}],
    "ref_accounts": [
        {"account": "a1", "system": "crm-db", "owner_employee_id": "e1", "source_id": "s1"}
    ],
    "events_db": [
        {
            "event_id": f"events_db:0:{i}",
            "time": datetime(2026, 5, 2, 2, i, tzinfo=UTC),
            "source_id": "s1",
            "kind": "pgaudit",
            "db_user": "a1",
            "audit_class": "READ",
            "command": "SELECT",
            "objects": objects,
            "rows": 5,
            "bulk_unknown": False,
        }
        for i, objects in enumerate((None, [], [None]))
    ],
}


def test_reads_naming_no_table_are_reported_not_fatal(shared_store: Store) -> None:
    found = _detect_all(
        shared_store, NO_TABLE_NAMED, DetectionSettings(), DAYS[3], None, "Asia/Shanghai"
    )
    outside = [f for f in found if f.detector == "outside_entitlement"]
    assert [f.person_id for f in outside] == ["e1"]
    assert outside[0].details["resources"] == []
    assert "(no table named)" in outside[0].title


def test_an_empty_store_gives_no_findings(shared_store: Store) -> None:
    assert _detect_all(shared_store, {}, HAIR_TRIGGER, DAYS[0], None, "Asia/Shanghai") == []


@PROFILE
@given(
    rows=_stores(),
    chosen=st.sampled_from((DetectionSettings(), HAIR_TRIGGER)),
    as_of=st.sampled_from(DAYS),
    since=st.none() | st.sampled_from(DAYS[:2]),
    zone=st.sampled_from(("Asia/Shanghai", "UTC", "Europe/Berlin")),
)
def test_no_detector_raises_on_any_store(
    shared_store: Store,
    rows: Rows,
    chosen: DetectionSettings,
    as_of: date,
    since: date | None,
    zone: str,
) -> None:
    _detect_all(shared_store, rows, chosen, as_of, since, zone)
