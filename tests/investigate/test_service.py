"""The service layer over the scenario store: each function checks its action, writes
exactly one audit row whether it answers or refuses, and returns typed models with
times in UTC."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from insurer import scenario

from molehunt import audit
from molehunt.config import Settings
from molehunt.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    MolehuntError,
    NotFound,
    Unauthenticated,
)
from molehunt.ingest.runner import ingest_paths
from molehunt.investigate import users
from molehunt.investigate.service import Investigation, operator
from molehunt.keys import create_key_file
from molehunt.models import (
    Actor,
    AuditCheck,
    Case,
    CaseFile,
    EventSummary,
    History,
    Ranking,
    TimelineFinding,
    User,
)
from molehunt.store import Store

PASSWORD = "a service test password"
ANALYST = Actor("svc-analyst", "analyst", "red", "api")
INVESTIGATOR = Actor("svc-investigator", "investigator", "red", "api")
BLUE = Actor("svc-blue", "investigator", "blue", "api")
AUDITOR = Actor("svc-auditor", "auditor", "red", "page")
ADMIN = Actor("svc-admin", "admin", "red", "page")
OPERATOR = Actor("os-user", "operator", None, "cli")


@pytest.fixture(scope="module")
def service() -> Investigation:
    world = scenario()
    return Investigation(world.store, world.settings)


def _rows(service: Investigation) -> int:
    found = service.db().con.execute("SELECT count(*) FROM audit_log").fetchall()
    return int(found[0][0])


def _last(service: Investigation) -> dict[str, object]:
    return audit.entries(service.db(), 1)[0]


@dataclass
class Context:
    case_id: str
    event_id: str
    upload: Path
    token: str
    username: str


@pytest.fixture
def ctx(service: Investigation, tmp_path: Path) -> Context:
    """A fresh open case of team red with one item, an event id, a small file to
    attribute, a user to change and a session to end (made before the counting)."""
    case = service.new_case(INVESTIGATOR, "service test case")
    service.add_item(INVESTIGATOR, case.case_id, "person", "E001")
    event_id = service.timeline(INVESTIGATOR, "E007")[0].events[0].event_id
    upload = tmp_path / "leak.csv"
    upload.write_text("id,name\n1,nobody\n", encoding="utf-8")
    name = f"svc-user-{case.case_id.lower()}"
    db = service.db()
    user = users.add_user(db, name, PASSWORD, "analyst", "red")
    token, _ = users.new_session(db, user)
    return Context(case.case_id, event_id, upload, token, name)


Call = Callable[[Investigation, Actor, Context], object]

#: (function, a role that may, a role that may not, the call).
CALLS: list[tuple[str, Actor, Actor, Call]] = [
    ("status", ADMIN, AUDITOR, lambda s, a, c: s.status(a)),
    ("ranking", ANALYST, AUDITOR, lambda s, a, c: s.ranking(a, date(2026, 5, 20), 3)),
    (
        "risk_history",
        ANALYST,
        ADMIN,
        lambda s, a, c: s.risk_history(a, date(2026, 5, 8), 2),
    ),
    ("timeline", ANALYST, AUDITOR, lambda s, a, c: s.timeline(a, "E007")),
    ("person_timeline", ANALYST, ADMIN, lambda s, a, c: s.person_timeline(a, "E007")),
    (
        "who",
        ANALYST,
        ADMIN,
        lambda s, a, c: s.who(a, datetime(2026, 5, 20, 2, tzinfo=UTC), account="zhao_dba"),
    ),
    (
        "accounts",
        ANALYST,
        AUDITOR,
        lambda s, a, c: s.accounts(a, True, datetime(2026, 5, 20, tzinfo=UTC)),
    ),
    ("event", ANALYST, ADMIN, lambda s, a, c: s.event(a, c.event_id)),
    (
        "unmask",
        INVESTIGATOR,
        ANALYST,
        lambda s, a, c: s.unmask(a, c.event_id, "ticket 4711: check the export"),
    ),
    ("attribute", INVESTIGATOR, ANALYST, lambda s, a, c: s.attribute(a, c.upload)),
    ("cases", ANALYST, AUDITOR, lambda s, a, c: s.cases(a)),
    ("new_case", INVESTIGATOR, ANALYST, lambda s, a, c: s.new_case(a, "another case")),
    ("case_file", ANALYST, ADMIN, lambda s, a, c: s.case_file(a, c.case_id)),
    (
        "add_item",
        INVESTIGATOR,
        ANALYST,
        lambda s, a, c: s.add_item(a, c.case_id, "person", "E002", "note"),
    ),
    ("close_case", INVESTIGATOR, ANALYST, lambda s, a, c: s.close_case(a, c.case_id)),
    ("export_case", INVESTIGATOR, ANALYST, lambda s, a, c: s.export_case(a, c.case_id)),
    ("audit_entries", AUDITOR, INVESTIGATOR, lambda s, a, c: s.audit_entries(a, 5)),
    ("audit_verify", AUDITOR, ADMIN, lambda s, a, c: s.audit_verify(a)),
    ("users", ADMIN, INVESTIGATOR, lambda s, a, c: s.users(a)),
    (
        "add_user",
        ADMIN,
        AUDITOR,
        lambda s, a, c: s.add_user(a, c.username + "-new", PASSWORD, "analyst", "red"),
    ),
    (
        "change_user",
        ADMIN,
        ANALYST,
        lambda s, a, c: s.change_user(a, c.username, team="blue"),
    ),
    ("unlock", ADMIN, INVESTIGATOR, lambda s, a, c: s.unlock(a, c.username)),
    (
        "set_password",
        ADMIN,
        ANALYST,
        lambda s, a, c: s.set_password(a, c.username, PASSWORD + " anew"),
    ),
    (
        "sign_out",
        ANALYST,
        Actor("x", "visitor", None, "api"),
        lambda s, a, c: s.sign_out(a, c.token),
    ),
]


@pytest.mark.parametrize(
    ("name", "may", "call"), [(n, m, c) for n, m, _, c in CALLS], ids=[c[0] for c in CALLS]
)
def test_an_allowed_call_writes_exactly_one_audit_row_naming_the_actor(
    service: Investigation, ctx: Context, name: str, may: Actor, call: Call
) -> None:
    before = _rows(service)
    call(service, may, ctx)
    assert _rows(service) == before + 1, name
    last = _last(service)
    assert last["actor"] == may.name
    assert last["action"] not in ("refused", "case denied")


@pytest.mark.parametrize(
    ("name", "may_not", "call"), [(n, m, c) for n, _, m, c in CALLS], ids=[c[0] for c in CALLS]
)
def test_a_refused_call_writes_exactly_one_refused_row_and_says_so(
    service: Investigation, ctx: Context, name: str, may_not: Actor, call: Call
) -> None:
    before = _rows(service)
    with pytest.raises(Forbidden) as refused:
        call(service, may_not, ctx)
    assert refused.value.audited
    assert _rows(service) == before + 1, name
    last = _last(service)
    assert (last["actor"], last["action"]) == (may_not.name, "refused")
    assert "may not do this" in str(last["target"])


Upkeep = Callable[[Investigation, Actor, Path], object]

CLIENTS = (
    "client_id,name,id_number,mobile,branch\n"
    "C001,王小明,110101199003071234,13800138000,SH01\n"
    "C002,陈静,31010119850101002X,13900139000,SH02\n"
)

#: The store's upkeep, the operator's alone: (function, its audit action, the call).
UPKEEP: list[tuple[str, str, Upkeep]] = [
    ("store_scans", "scan", lambda s, a, p: s.store_scans(a, [])),
    ("plant_canaries", "canary plant", lambda s, a, p: s.plant_canaries(a, 2, p / "c.csv")),
    ("quarantine", "quarantine list", lambda s, a, p: s.quarantine(a, kind="squid")),
    ("replay_quarantine", "quarantine replay", lambda s, a, p: s.replay_quarantine(a)),
]


@pytest.mark.parametrize(("name", "action", "call"), UPKEEP, ids=[u[0] for u in UPKEEP])
def test_the_stores_upkeep_is_the_operators_and_audited_once_either_way(
    tmp_path: Path, name: str, action: str, call: Upkeep
) -> None:
    """On a store of its own (two clients): planting canaries adds clients, which the
    shared scenario store must not get."""
    create_key_file(tmp_path / "m.key")
    settings = Settings.load(
        {"db": tmp_path / "m.duckdb", "key_file": tmp_path / "m.key"}, environ={}, cwd=tmp_path
    )
    (tmp_path / "clients.csv").write_text(CLIENTS, encoding="utf-8")
    with Store.open(settings.db) as store:
        ingest_paths(store, settings, [tmp_path / "clients.csv"], kind="clients")
        own = Investigation(store, settings)
        for actor in (ADMIN, INVESTIGATOR, ANALYST, AUDITOR):
            before = _rows(own)
            with pytest.raises(Forbidden) as refused:
                call(own, actor, tmp_path)
            assert refused.value.audited
            assert _rows(own) == before + 1, name
            assert (_last(own)["actor"], _last(own)["action"]) == (actor.name, "refused")
        before = _rows(own)
        call(own, OPERATOR, tmp_path)
        assert _rows(own) == before + 1, name
        assert (_last(own)["actor"], _last(own)["action"]) == (OPERATOR.name, action)


def test_the_operator_may_do_everything_and_sees_every_teams_cases(
    service: Investigation, ctx: Context
) -> None:
    blue = service.new_case(BLUE, "blue's own case")
    seen = {c.case_id for c in service.cases(OPERATOR)}
    assert {blue.case_id, ctx.case_id} <= seen
    assert service.case_file(OPERATOR, blue.case_id).case.team == "blue"


@pytest.mark.parametrize(
    ("call", "error", "action"),
    [
        (lambda s, c: s.event(ANALYST, "no-such-event"), NotFound, "refused"),
        (lambda s, c: s.unmask(INVESTIGATOR, c.event_id, " \u200b" * 12), InvalidInput, "refused"),
        (lambda s, c: s.case_file(BLUE, c.case_id), NotFound, "case denied"),
        (lambda s, c: s.export_case(BLUE, c.case_id), NotFound, "case denied"),
        (lambda s, c: s.add_item(INVESTIGATOR, c.case_id, "gift", "x"), InvalidInput, "refused"),
        (lambda s, c: s.new_case(INVESTIGATOR, "   "), InvalidInput, "refused"),
        (lambda s, c: s.change_user(ADMIN, "svc-nobody", team="x"), NotFound, "refused"),
        (
            lambda s, c: s.add_user(ADMIN, c.username, PASSWORD, "analyst", "red"),
            Conflict,
            "refused",
        ),
        (lambda s, c: s.change_user(ADMIN, ADMIN.name, role="investigator"), Forbidden, "refused"),
        (lambda s, c: s.who(ANALYST, datetime.now(UTC)), InvalidInput, "refused"),
    ],
    ids=[
        "unknown event",
        "invisible reason",
        "other team's case",
        "other team's export",
        "bad item kind",
        "blank title",
        "unknown user",
        "taken user name",
        "own evidence role",
        "who without a subject",
    ],
)
def test_each_other_refusal_is_audited_once_and_typed(
    service: Investigation,
    ctx: Context,
    call: Callable[[Investigation, Context], object],
    error: type[MolehuntError],
    action: str,
) -> None:
    before = _rows(service)
    with pytest.raises(error) as refused:
        call(service, ctx)
    assert refused.value.audited
    assert _rows(service) == before + 1
    assert _last(service)["action"] == action


def test_a_closed_case_refuses_items_as_a_conflict(service: Investigation, ctx: Context) -> None:
    service.close_case(INVESTIGATOR, ctx.case_id)
    with pytest.raises(Conflict, match="closed"):
        service.add_item(INVESTIGATOR, ctx.case_id, "person", "E003")


def test_sign_in_is_audited_once_for_each_outcome(service: Investigation, ctx: Context) -> None:
    before = _rows(service)
    session = service.sign_in(ctx.username, PASSWORD, "10.9.9.9", "api")
    assert isinstance(session.user, User)
    assert service.session(session.token) is not None
    assert (_rows(service), _last(service)["action"]) == (before + 1, "sign-in")
    with pytest.raises(Unauthenticated) as wrong:
        service.sign_in(ctx.username, "not the password", "10.9.9.9", "api")
    assert wrong.value.audited
    assert (_rows(service), _last(service)["action"]) == (before + 2, "sign-in failed")
    assert _last(service)["actor"] == "anonymous"


def test_answers_are_models_with_utc_times(service: Investigation, ctx: Context) -> None:
    ranking = service.ranking(ANALYST, date(2026, 5, 21), include_all=True)
    assert isinstance(ranking, Ranking)
    assert ranking.rows
    assert ranking.rows[0].rank == 1
    reason = ranking.rows[0].reasons[0]
    assert reason.first_seen.tzinfo == UTC
    entries = service.timeline(ANALYST, "E007")
    assert entries
    assert all(isinstance(e, TimelineFinding) for e in entries)
    assert all(e.time.tzinfo == UTC for e in entries)
    assert all(isinstance(ev, EventSummary) for e in entries for ev in e.events)
    assert isinstance(service.risk_history(ANALYST, date(2026, 5, 8), 2), History)
    assert isinstance(service.case_file(ANALYST, ctx.case_id), CaseFile)
    assert all(isinstance(c, Case) for c in service.cases(ANALYST))
    assert isinstance(service.audit_verify(AUDITOR), AuditCheck)
    event = service.event(ANALYST, ctx.event_id)
    assert event.time is not None
    assert event.time.tzinfo == UTC


def test_the_same_store_answers_the_cli_and_the_web_alike(service: Investigation) -> None:
    """An operator's ranking (the CLI) and an analyst's (the web) are the same rows."""
    day = date(2026, 5, 21)
    cli = operator()
    assert (cli.name, cli.role, cli.team) == (audit.actor(), "operator", None)
    assert service.ranking(OPERATOR, day).rows == service.ranking(ANALYST, day).rows
