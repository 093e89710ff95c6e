"""Who may do what: every route of the app against every role, object-level checks
(another team's case does not exist), CSRF, and the audit rows of refusals."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from starlette.routing import Mount

from molehunt import audit
from molehunt.store import Store

PUBLIC = frozenset({"anonymous", "analyst", "investigator", "auditor", "admin"})
ANYONE = frozenset({"analyst", "investigator", "auditor", "admin"})
EVIDENCE = frozenset({"analyst", "investigator"})
INVESTIGATOR = frozenset({"investigator"})
AUDITOR = frozenset({"auditor"})
ADMIN = frozenset({"admin"})
STATUS = frozenset({"analyst", "investigator", "admin"})
WHO = ("anonymous", "analyst", "investigator", "auditor", "admin")

#: (method, route path) -> (who may, a request to send: url and keyword arguments).
#: Requests are chosen so that an allowed user changes nothing (a missing body, an
#: unknown object): the answer shows whether the gate let them through.
ROUTES: dict[tuple[str, str], tuple[frozenset[str], str, dict[str, Any]]] = {
    ("GET", "/healthz"): (PUBLIC, "/healthz", {}),
    ("GET", "/openapi.json"): (ANYONE, "/openapi.json", {}),
    ("POST", "/api/session"): (PUBLIC, "/api/session", {}),
    ("DELETE", "/api/session"): (ANYONE, "/api/session", {}),
    ("GET", "/api/me"): (ANYONE, "/api/me", {}),
    ("GET", "/api/status"): (STATUS, "/api/status", {}),
    ("GET", "/api/risk"): (EVIDENCE, "/api/risk?top=1", {}),
    ("GET", "/api/risk/history"): (EVIDENCE, "/api/risk/history?until=2026-05-08", {}),
    ("GET", "/api/people/{person_id}/timeline"): (EVIDENCE, "/api/people/E001/timeline", {}),
    ("GET", "/api/who"): (EVIDENCE, "/api/who?account=zhao_dba", {}),
    ("GET", "/api/accounts"): (EVIDENCE, "/api/accounts?orphaned=true", {}),
    ("GET", "/api/events/{event_id}"): (EVIDENCE, "/api/events/no-such-event", {}),
    ("POST", "/api/events/{event_id}/unmask"): (
        INVESTIGATOR,
        "/api/events/no-such-event/unmask",
        {"json": {"reason": "access table check"}},
    ),
    ("POST", "/api/attribute"): (INVESTIGATOR, "/api/attribute", {}),
    ("GET", "/api/cases"): (EVIDENCE, "/api/cases", {}),
    ("POST", "/api/cases"): (INVESTIGATOR, "/api/cases", {}),
    ("GET", "/api/cases/{case_id}"): (EVIDENCE, "/api/cases/C-0000-0000", {}),
    ("POST", "/api/cases/{case_id}/items"): (INVESTIGATOR, "/api/cases/C-0000-0000/items", {}),
    ("POST", "/api/cases/{case_id}/close"): (INVESTIGATOR, "/api/cases/C-0000-0000/close", {}),
    ("GET", "/api/cases/{case_id}/export"): (INVESTIGATOR, "/api/cases/C-0000-0000/export", {}),
    ("GET", "/api/audit"): (AUDITOR, "/api/audit?limit=5", {}),
    ("GET", "/api/audit/verify"): (AUDITOR, "/api/audit/verify", {}),
    ("GET", "/api/users"): (ADMIN, "/api/users", {}),
    ("POST", "/api/users"): (ADMIN, "/api/users", {}),
    ("PATCH", "/api/users/{username}"): (ADMIN, "/api/users/nobody", {"json": {}}),
    ("GET", "/login"): (PUBLIC, "/login", {}),
    ("POST", "/login"): (PUBLIC, "/login", {}),
    ("POST", "/logout"): (ANYONE, "/logout", {}),
    ("GET", "/"): (ANYONE, "/", {}),
    ("GET", "/people/{person_id}"): (EVIDENCE, "/people/E001", {}),
    ("POST", "/events/{event_id}/unmask"): (
        INVESTIGATOR,
        "/events/no-such-event/unmask",
        {"data": {"reason": "access table check", "person": "E001"}},
    ),
    ("POST", "/people/{person_id}/add-to-case"): (
        INVESTIGATOR,
        "/people/E001/add-to-case",
        {"data": {"case_id": "C-0000-0000"}},
    ),
    ("GET", "/attribute"): (INVESTIGATOR, "/attribute", {}),
    ("POST", "/attribute"): (INVESTIGATOR, "/attribute", {}),
    ("GET", "/cases"): (EVIDENCE, "/cases", {}),
    ("POST", "/cases"): (INVESTIGATOR, "/cases", {}),
    ("GET", "/cases/{case_id}"): (EVIDENCE, "/cases/C-0000-0000", {}),
    ("POST", "/cases/{case_id}/close"): (INVESTIGATOR, "/cases/C-0000-0000/close", {}),
    ("GET", "/audit"): (AUDITOR, "/audit", {}),
    ("GET", "/admin/users"): (ADMIN, "/admin/users", {}),
    ("POST", "/admin/users"): (ADMIN, "/admin/users", {}),
    ("POST", "/admin/users/{username}"): (ADMIN, "/admin/users/nobody", {"data": {"role": ""}}),
}

#: Routes that end the session they are called with: each call gets a fresh one.
SIGN_OUT = {("DELETE", "/api/session"), ("POST", "/logout")}


def app_routes(app: FastAPI) -> set[tuple[str, str]]:
    """(method, path) of every route the app answers, through included routers."""
    out = set()
    for route in iter_route_contexts(app.routes):
        if isinstance(route.original_route, Mount):
            continue
        assert route.path is not None
        out |= {(m, route.path) for m in route.methods or () if m != "HEAD"}
    return out


#: Not for sessions: the command line's endpoint (molehunt.web.local) answers loopback
#: clients with the token of ``<db>.serve`` only (tests/web/test_local.py).
LOCAL = {("POST", "/local/cli")}


def test_the_table_covers_every_route(web_app: FastAPI) -> None:
    assert app_routes(web_app) == set(ROUTES) | LOCAL


@pytest.fixture(scope="module")
def clients(
    web_app: FastAPI, sign_in: Callable[[str], TestClient]
) -> Iterator[dict[str, TestClient]]:
    signed = {role: sign_in(role) for role in WHO if role != "anonymous"}
    out: dict[str, TestClient] = {"anonymous": TestClient(web_app), **signed}
    yield out
    for client in out.values():
        client.close()


def _last_audit(web_store: Store) -> dict[str, Any]:
    return audit.entries(web_store, 1)[0]


@pytest.mark.parametrize("who", WHO)
@pytest.mark.parametrize(("method", "path"), sorted(ROUTES), ids=lambda x: str(x))
def test_every_route_lets_in_only_its_roles(
    method: str,
    path: str,
    who: str,
    clients: dict[str, TestClient],
    sign_in: Callable[[str], TestClient],
    web_store: Store,
) -> None:
    allowed, url, kwargs = ROUTES[(method, path)]
    client = clients[who]
    if (method, path) in SIGN_OUT and who != "anonymous":
        client = sign_in(who)
    before = _last_audit(web_store)["seq"]
    answer = client.request(method, url, follow_redirects=False, **kwargs)
    page = not (url.startswith("/api") or url in ("/healthz", "/openapi.json"))
    assert answer.status_code < 500, answer.text
    if who in allowed:
        assert answer.status_code not in (401, 403), answer.text
        if page and answer.is_redirect and (method, path) not in SIGN_OUT:
            assert answer.headers["location"] != "/login" or who == "anonymous"
        return
    last = _last_audit(web_store)
    assert last["seq"] > before
    assert (last["action"], last["actor"]) == ("denied", who)
    if who == "anonymous" and page:
        assert (answer.status_code, answer.headers["location"]) == (303, "/login")
    elif who == "anonymous":
        assert answer.status_code == 401
        assert answer.json()["detail"]
    else:
        assert answer.status_code == 403
        if page:
            assert 'data-testid="forbidden"' in answer.text
        else:
            assert answer.json()["detail"]


def test_static_files_are_public(clients: dict[str, TestClient]) -> None:
    for path in ("/static/style.css", "/static/risk_chart.js", "/static/vendor/uPlot.iife.min.js"):
        answer = clients["anonymous"].get(path)
        assert answer.status_code == 200, path
        assert "no-store" not in answer.headers.get("cache-control", "")


@pytest.fixture
def red_case(app_client: Callable[[str], TestClient]) -> str:
    made = app_client("investigator").post("/api/cases", json={"title": "red team's case"})
    assert made.status_code == 201, made.text
    case_id: str = made.json()["case_id"]
    return case_id


def test_another_teams_case_does_not_exist(
    red_case: str, app_client: Callable[[str], TestClient]
) -> None:
    blue = app_client("blue-investigator")
    asks = [
        ("GET", f"/api/cases/{red_case}", {}),
        ("POST", f"/api/cases/{red_case}/items", {"json": {"kind": "person", "ref": "E001"}}),
        ("GET", f"/api/cases/{red_case}/export", {}),
        ("POST", f"/api/cases/{red_case}/close", {}),
        ("GET", f"/cases/{red_case}", {}),
        ("POST", f"/cases/{red_case}/close", {}),
        ("POST", "/people/E001/add-to-case", {"data": {"case_id": red_case}}),
    ]
    for method, url, kwargs in asks:
        answer = blue.request(method, url, follow_redirects=False, **kwargs)
        assert answer.status_code == 404, (method, url, answer.text)
        assert red_case not in answer.text
    assert red_case not in blue.get("/api/cases").text
    assert red_case not in app_client("blue-analyst").get("/cases").text
    red = app_client("investigator")
    assert red.get(f"/api/cases/{red_case}").status_code == 200
    assert app_client("analyst").get(f"/cases/{red_case}").status_code == 200


def test_a_cookie_signed_post_needs_the_csrf_token(
    web_app: FastAPI, web_store: Store, app_client: Callable[[str], TestClient]
) -> None:
    signed = app_client("investigator")
    token, csrf = signed.cookies["molehunt_session"], signed.headers["X-CSRF-Token"]
    bare = TestClient(web_app)
    bare.cookies.set("molehunt_session", token)
    refused = bare.post("/api/cases", json={"title": "forged"})
    assert refused.status_code == 403
    assert _last_audit(web_store)["action"] == "denied"
    wrong = bare.post("/api/cases", json={"title": "forged"}, headers={"X-CSRF-Token": "x" * 43})
    assert wrong.status_code == 403
    form = bare.post("/cases", data={"title": "forged"}, follow_redirects=False)
    assert form.status_code == 403
    accepted = bare.post("/api/cases", json={"title": "real"}, headers={"X-CSRF-Token": csrf})
    assert accepted.status_code == 201
    by_form = bare.post("/cases", data={"title": "real too", "csrf": csrf}, follow_redirects=False)
    assert by_form.status_code == 303
    # A bearer token is not sent by browsers on their own: no CSRF token needed.
    bearer = TestClient(web_app).post(
        "/api/cases", json={"title": "api"}, headers={"Authorization": f"Bearer {token}"}
    )
    assert bearer.status_code == 201


def test_sign_ins_are_audited_and_the_chain_stays_intact(
    web_app: FastAPI, web_store: Store, web_password: str
) -> None:
    client = TestClient(web_app)
    assert (
        client.post("/api/session", json={"username": "auditor", "password": "no"}).status_code
        == 401
    )
    assert _last_audit(web_store)["action"] == "sign-in failed"
    assert _last_audit(web_store)["actor"] == "anonymous"
    page = client.post(
        "/login", data={"username": "auditor", "password": web_password}, follow_redirects=False
    )
    assert (page.status_code, page.headers["location"]) == (303, "/audit")
    assert "httponly" in page.headers["set-cookie"].lower()
    assert "samesite=strict" in page.headers["set-cookie"].lower()
    assert (_last_audit(web_store)["action"], _last_audit(web_store)["actor"]) == (
        "sign-in",
        "auditor",
    )
    out = client.post("/logout", headers={"X-CSRF-Token": "wrong"}, follow_redirects=False)
    assert out.status_code == 403
    checked = audit.verify(web_store)
    assert checked.broken_at is None
    assert checked.rows > 0
