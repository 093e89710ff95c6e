"""The JSON API: the library's answers, masked by default, unmasking with a reason,
attribution of an upload, upload cap, sessions, cases, security headers."""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pii_store import ID_NUMBER, MOBILE, PII_DAY, PII_EVENT, pii_store

from molehunt import audit
from molehunt.config import Settings
from molehunt.detect.settings import detection_settings
from molehunt.ingest.runner import ingest_paths
from molehunt.investigate.users import add_user, get_user, new_session
from molehunt.keys import create_key_file
from molehunt.pii.mask import mask_text
from molehunt.score import RiskRanker
from molehunt.simulate import params_for, simulate
from molehunt.store import Store
from molehunt.timeline import timeline
from molehunt.web import create_app
from molehunt.web.pages import when

PASSWORD = "another long password"
#: What must never leave the server unmasked: 18-digit ID numbers, 11-digit mobiles.
PERSONAL = re.compile(rb"(?<![0-9])(?:[0-9]{17}[0-9Xx]|1[3-9][0-9]{9})(?![0-9])")


# -- a small store whose evidence holds personal data --------------------------------------


@dataclass(frozen=True, slots=True)
class Site:
    app: FastAPI
    store: Store

    def client(self, username: str) -> TestClient:
        client = TestClient(self.app)
        answer = client.post("/api/session", json={"username": username, "password": PASSWORD})
        assert answer.status_code == 200, answer.text
        client.headers["Authorization"] = f"Bearer {answer.json()['token']}"
        return client


def _users(store: Store) -> None:
    for name in ("analyst", "investigator", "auditor", "admin"):
        add_user(store, name, PASSWORD, name, "red")


@pytest.fixture(scope="module")
def pii_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """One SQL statement and one finding naming a client's ID number and mobile."""
    settings = pii_store(tmp_path_factory.mktemp("pii-site"))
    with Store.open(settings.db) as store:
        _users(store)
        yield Site(create_app(store, settings), store)


def test_the_pii_site_does_hold_personal_data(pii_site: Site) -> None:
    raw = pii_site.store.query("SELECT statement FROM events_db")[0]["statement"]
    assert PERSONAL.search(raw.encode())


def _get_urls(case_id: str) -> list[str]:
    return [
        "/api/me",
        "/api/status",
        f"/api/risk?all=true&as_of={PII_DAY}",
        f"/api/risk/history?until={PII_DAY}",
        "/api/people/E100/timeline",
        "/api/who?account=resigned_agent&at=2026-05-06T14:30",
        "/api/accounts",
        f"/api/events/{PII_EVENT}",
        "/api/cases",
        f"/api/cases/{case_id}",
        f"/?as_of={PII_DAY}",
        "/people/E100",
        "/cases",
        f"/cases/{case_id}",
    ]


def test_no_analyst_answer_holds_an_id_number_or_a_mobile(pii_site: Site) -> None:
    investigator = pii_site.client("investigator")
    case_id = investigator.post("/api/cases", json={"title": "pii"}).json()["case_id"]
    added = investigator.post(
        f"/api/cases/{case_id}/items",
        json={"kind": "event", "ref": PII_EVENT, "note": f"client {MOBILE} called"},
    )
    assert added.status_code == 201, added.text
    analyst = pii_site.client("analyst")
    analyst.cookies.clear()
    for url in _get_urls(case_id):
        answer = analyst.get(url)
        assert answer.status_code == 200, (url, answer.text)
        assert not PERSONAL.search(answer.content), url
    event = analyst.get(f"/api/events/{PII_EVENT}").json()
    assert event["summary"] == mask_text(event["summary"])
    assert "SELECT * FROM clients WHERE id_no" in event["summary"]


def test_every_get_route_of_evidence_is_checked(pii_site: Site) -> None:
    from fastapi.routing import iter_route_contexts

    checked = {re.sub(r"\?.*", "", u) for u in _get_urls("X")}
    # The auditor's, the admin's, the spec, sign-in pages, the upload form and the
    # zip export (compressed bytes: its events.csv is checked by the cases tests).
    others = {
        "/healthz",
        "/openapi.json",
        "/login",
        "/attribute",
        "/audit",
        "/admin/users",
        "/api/audit",
        "/api/audit/verify",
        "/api/users",
        "/api/cases/{case_id}/export",
    }
    for route in iter_route_contexts(pii_site.app.routes):
        assert route.path is not None
        if "GET" in (route.methods or ()) and route.path not in others:
            concrete = (
                route.path.replace("{case_id}", "X")
                .replace("{person_id}", "E100")
                .replace("{event_id}", PII_EVENT)
            )
            assert concrete in checked, route.path


def test_unmasking_needs_an_investigator_and_a_reason(pii_site: Site) -> None:
    url = f"/api/events/{PII_EVENT}/unmask"
    analyst = pii_site.client("analyst")
    assert analyst.post(url, json={"reason": "ticket 1234 review"}).status_code == 403
    investigator = pii_site.client("investigator")
    assert investigator.post(url, json={}).status_code == 422
    assert investigator.post(url, json={"reason": "why"}).status_code == 422
    assert (
        investigator.post("/api/events/nope/unmask", json={"reason": "x" * 10}).status_code == 404
    )
    before = audit.entries(pii_site.store, 1)[0]["seq"]
    answer = investigator.post(url, json={"reason": "case C-1 ticket 1234"})
    assert answer.status_code == 200
    assert ID_NUMBER in answer.json()["summary"]
    assert MOBILE in answer.json()["summary"]
    rows = [r for r in audit.entries(pii_site.store, 5) if r["seq"] > before]
    assert [(r["action"], r["actor"]) for r in rows] == [("unmask", "investigator")]
    assert rows[0]["target"] == f"{PII_EVENT} reason: case C-1 ticket 1234"
    assert ID_NUMBER not in rows[0]["target"]


def test_the_unmask_page_shows_the_event_unmasked(pii_site: Site) -> None:
    investigator = pii_site.client("investigator")
    page = investigator.get("/people/E100")
    assert 'data-testid="unmask-form"' in page.text
    assert MOBILE not in page.text
    shown = investigator.post(
        f"/events/{PII_EVENT}/unmask", data={"reason": "case C-1 ticket 1234", "person": "E100"}
    )
    assert shown.status_code == 200
    assert re.search(rf'data-testid="unmasked"[^>]*>[^<]*{MOBILE}', shown.text)
    analyst_page = pii_site.client("analyst").get("/people/E100").text
    assert 'data-testid="unmask-form"' not in analyst_page


# -- the scenario insurer: answers equal the library's --------------------------------------


def _masked_summaries(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {**r, "reasons": [{**x, "summary": mask_text(x["summary"])} for x in r["reasons"]]}
        for r in rows
    ]


def test_risk_equals_the_library_ranking(
    app_client: Callable[[str], TestClient], web_store: Store, web_settings: Settings
) -> None:
    ranker = RiskRanker(web_store, detection_settings(web_settings), web_settings.timezone)
    last = ranker.last_day()
    assert last is not None
    answer = app_client("analyst").get("/api/risk").json()
    assert answer["as_of"] == last.isoformat()
    assert answer["ranking"] == _masked_summaries(ranker.ranking(last))
    assert answer["ranking"], "the scenario flags people"
    day = date(2026, 5, 12)
    some = app_client("analyst").get(f"/api/risk?as_of={day}&top=2&all=true").json()
    assert some["ranking"] == _masked_summaries(ranker.ranking(day, top=2, include_all=True))


def test_risk_history_gives_each_days_top_scores(
    app_client: Callable[[str], TestClient], web_store: Store, web_settings: Settings
) -> None:
    ranker = RiskRanker(web_store, detection_settings(web_settings), web_settings.timezone)
    until = date(2026, 5, 20)
    answer = app_client("investigator").get(f"/api/risk/history?until={until}&top=1").json()
    expected = ranker.history(until, top=1, include_all=True)
    assert [d["date"] for d in answer["days"]] == [d["date"] for d in expected]
    assert [[t["score"] for t in d["top"]] for d in answer["days"]] == [
        [r["score"] for r in d["ranking"]] for d in expected
    ]


def test_timeline_equals_the_library_timeline(
    app_client: Callable[[str], TestClient], web_store: Store, web_settings: Settings
) -> None:
    expected = timeline(web_store, "E007", timezone=web_settings.timezone)
    answer = app_client("analyst").get("/api/people/E007/timeline").json()
    assert len(answer["entries"]) == len(expected) > 0
    for got, want in zip(answer["entries"], expected, strict=True):
        assert (got["finding_id"], got["detector"], got["time"]) == (
            want["finding_id"],
            want["detector"],
            want["time"],
        )
        assert got["title"] == mask_text(want["title"])
        assert [e["event_id"] for e in got["events"]] == [e["event_id"] for e in want["events"]]
        assert [e.get("summary") for e in got["events"]] == [
            mask_text(e["summary"]) if "summary" in e else None for e in want["events"]
        ]


def test_who_and_accounts_answer_as_the_cli(app_client: Callable[[str], TestClient]) -> None:
    client = app_client("analyst")
    who = client.get("/api/who?account=resigned_agent&at=2026-05-20T10:00").json()
    assert {a["owner_employee_id"] for a in who["accounts"]} == {"E004"}
    assert client.get("/api/who?at=2026-05-20T10:00").status_code == 400
    assert client.get("/api/who?account=x&at=yesterday").status_code == 400
    orphaned = client.get("/api/accounts?orphaned=true&at=2026-05-20T10:00").json()
    assert {r["account"] for r in orphaned} >= {"resigned_agent"}


# -- attribution of an upload ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Leak:
    site: Site
    leaked: Path
    person: str


@pytest.fixture(scope="module")
def leak(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Leak]:
    """A tiny simulated insurer and the low-and-slow insider's leaked file (as
    tests/attribute/test_cli.py does it)."""
    folder = tmp_path_factory.mktemp("attribute-web")
    simulate(folder / "sim", params_for("tiny", None, seed=1, days=5))
    create_key_file(folder / "m.key")
    settings = Settings.load(
        {"db": folder / "m.duckdb", "key_file": folder / "m.key"}, environ={}, cwd=folder
    )
    truth = json.loads((folder / "sim" / "truth.json").read_text(encoding="utf-8"))
    slow = next(s for s in truth["scenarios"] if s["kind"] == "low_and_slow")
    forum = next(f for f in slow["leaked_files"] if "forum" in f)
    with Store.open(settings.db) as store:
        ingest_paths(store, settings, [folder / "sim" / "reference", folder / "sim" / "logs"])
        _users(store)
        app = create_app(store, settings, max_upload=200_000)
        yield Leak(Site(app, store), folder / "sim" / forum, slow["people"][0])


def test_an_uploaded_leak_names_the_person_who_read_it(leak: Leak) -> None:
    client = leak.site.client("investigator")
    content = leak.leaked.read_bytes()
    answer = client.post(
        "/api/attribute", files={"file": (leak.leaked.name, content, "application/octet-stream")}
    )
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert report["suspects"][0]["person_id"] == leak.person
    assert report["client_records"] > 0
    assert report["suspects"][0]["first_read"].endswith("+08:00")  # settings.timezone
    last = audit.entries(leak.site.store, 1)[0]
    assert (last["action"], last["actor"]) == ("attribute", "investigator")
    assert last["target"].startswith("file sha256:")
    assert leak.leaked.name not in last["target"]
    page = client.post(
        "/attribute", files={"file": (leak.leaked.name, content, "application/octet-stream")}
    )
    assert f'data-testid="suspect-row" data-person="{leak.person}"' in page.text
    analyst = leak.site.client("analyst")
    assert analyst.post("/api/attribute", files={"file": ("a.csv", b"x\n")}).status_code == 403


@pytest.mark.parametrize("size", [200_001, 400_000], ids=["just over", "far over"])
def test_an_upload_over_the_cap_is_refused(leak: Leak, size: int) -> None:
    client = leak.site.client("investigator")
    answer = client.post("/api/attribute", files={"file": ("big.csv", b"1" * size)})
    assert answer.status_code == 413
    assert "over" in answer.json()["detail"]


# -- sessions -------------------------------------------------------------------------------


def test_sign_out_invalidates_the_token(web_app: FastAPI, web_password: str) -> None:
    client = TestClient(web_app)
    body = client.post(
        "/api/session", json={"username": "analyst", "password": web_password}
    ).json()
    bearer = {"Authorization": f"Bearer {body['token']}"}
    assert client.get("/api/me", headers=bearer).json()["role"] == "analyst"
    assert client.delete("/api/session", headers=bearer).status_code == 204
    assert client.get("/api/me", headers=bearer).status_code == 401


def test_page_sign_out_ends_the_cookie_session(web_app: FastAPI, web_password: str) -> None:
    client = TestClient(web_app)
    client.post("/login", data={"username": "analyst", "password": web_password})
    token = client.cookies["molehunt_session"]
    page = client.get("/")
    assert 'data-testid="whoami"' in page.text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None
    out = client.post("/logout", data={"csrf": csrf.group(1)}, follow_redirects=False)
    assert (out.status_code, out.headers["location"]) == (303, "/login")
    again = TestClient(web_app)
    again.cookies.set("molehunt_session", token)
    assert again.get("/", follow_redirects=False).headers["location"] == "/login"


def test_an_expired_session_is_refused(web_app: FastAPI, web_store: Store) -> None:
    user = get_user(web_store, "analyst")
    assert user is not None
    token, _ = new_session(web_store, user, now=datetime.now(UTC) - timedelta(hours=8, seconds=1))
    answer = TestClient(web_app).get("/api/me", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 401


def test_disabled_users_cannot_sign_in(
    app_client: Callable[[str], TestClient], web_app: FastAPI
) -> None:
    admin = app_client("admin")
    name = f"temp-{datetime.now(UTC):%H%M%S%f}"
    made = admin.post(
        "/api/users",
        json={"username": name, "password": "a fine password", "role": "analyst", "team": "red"},
    )
    assert made.status_code == 201, made.text
    client = TestClient(web_app)
    signed = client.post("/api/session", json={"username": name, "password": "a fine password"})
    assert signed.status_code == 200
    bearer = {"Authorization": f"Bearer {signed.json()['token']}"}
    assert admin.patch(f"/api/users/{name}", json={"disabled": True}).json()["disabled"]
    assert client.get("/api/me", headers=bearer).status_code == 401
    again = client.post("/api/session", json={"username": name, "password": "a fine password"})
    assert again.status_code == 401
    assert name in {u["username"] for u in admin.get("/api/users").json()}


# -- cases, audit, headers -------------------------------------------------------------------


def test_a_case_from_opening_to_export(app_client: Callable[[str], TestClient]) -> None:
    client = app_client("investigator")
    case = client.post("/api/cases", json={"title": "E007 leaving with clients"}).json()
    case_id = case["case_id"]
    assert (case["team"], case["status"], case["created_by"]) == ("red", "open", "investigator")
    event_id = client.get("/api/people/E007/timeline").json()["entries"][0]["events"][0]
    for kind, ref in (("person", "E007"), ("event", event_id["event_id"])):
        added = client.post(f"/api/cases/{case_id}/items", json={"kind": kind, "ref": ref})
        assert added.status_code == 201, added.text
    shown = client.get(f"/api/cases/{case_id}").json()
    assert [i["ref"] for i in shown["items"]] == ["E007", event_id["event_id"]]
    export = client.get(f"/api/cases/{case_id}/export")
    assert export.status_code == 200
    assert export.headers["content-disposition"].startswith("attachment")
    with zipfile.ZipFile(io.BytesIO(export.content)) as z:
        assert "manifest.json" in z.namelist()
        assert not PERSONAL.search(z.read("events.csv"))
    closed = client.post(f"/api/cases/{case_id}/close").json()
    assert closed["status"] == "closed"
    late = client.post(f"/api/cases/{case_id}/items", json={"kind": "person", "ref": "E001"})
    assert late.status_code == 409  # Conflict: the case is closed
    assert case_id in {c["case_id"] for c in app_client("analyst").get("/api/cases").json()}


def test_the_auditor_sees_the_trail_and_its_verification(
    app_client: Callable[[str], TestClient],
) -> None:
    app_client("analyst").get("/api/people/E001/timeline")
    client = app_client("auditor")
    rows = client.get("/api/audit?limit=20").json()
    assert any(r["action"] == "timeline" and r["actor"] == "analyst" for r in rows)
    assert rows[0]["time"].endswith("+08:00")  # shown in settings.timezone
    verified = client.get("/api/audit/verify").json()
    assert verified["broken_at"] is None
    assert 'data-testid="audit-verify"' in client.get("/audit").text


@pytest.mark.parametrize("url", ["/", "/api/me", "/login"])
def test_security_headers_on_pages_and_api(
    app_client: Callable[[str], TestClient], url: str
) -> None:
    answer = app_client("analyst").get(url, follow_redirects=False)
    assert answer.headers["content-security-policy"] == (
        "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'"
    )
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["referrer-policy"] == "no-referrer"
    assert answer.headers["cache-control"] == "no-store"


def test_the_chart_history_follows_new_findings(pii_site: Site) -> None:
    client = pii_site.client("analyst")
    url = f"/api/risk/history?until={PII_DAY}&top=3"
    first = client.get(url).json()
    assert client.get(url).json() == first  # the second answer comes from the cache
    web = pii_site.app.state.web
    with web.lock:
        pii_site.store.con.execute(
            "INSERT INTO findings VALUES ('f-new', 'bulk_read', ?, ?, 90, 'E101', "
            "'zhao_dba', 'ws-101', 'read 3,000 clients', '{}', ['no-such-event'])",
            [datetime(2026, 5, 6, 7, tzinfo=UTC), PII_DAY],
        )
    try:
        after = client.get(url).json()
        people = {t["person_id"] for d in after["days"] for t in d["top"]}
        assert "E101" in people
        assert "E101" not in {t["person_id"] for d in first["days"] for t in d["top"]}
    finally:
        with web.lock:
            pii_site.store.con.execute("DELETE FROM findings WHERE finding_id = 'f-new'")


@pytest.mark.parametrize("floor", [0, 30, 60])
def test_the_timeline_page_shows_findings_at_or_above_a_severity(
    app_client: Callable[[str], TestClient], web_store: Store, web_settings: Settings, floor: int
) -> None:
    entries = timeline(web_store, "E001", timezone=web_settings.timezone)
    page = app_client("analyst").get(f"/people/E001?min_severity={floor}").text
    expected = sum(int(e["severity"]) >= floor for e in entries)
    assert page.count('data-testid="timeline-row"') == expected
    assert f"{expected} of {len(entries)} findings" in page
    assert 0 < expected <= len(entries)


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("2026-03-02T14:48:42.768000+08:00", "2026-03-02 14:48:42"),
        ("2026-03-02T14:48:42+08:00", "2026-03-02 14:48:42"),
        (None, ""),
        ("not a time", "not a time"),
    ],
)
def test_times_are_shown_as_people_read_them(value: str | None, shown: str) -> None:
    assert when(value) == shown


@pytest.mark.parametrize(
    ("person", "shown"),
    [
        ("E001", ["Zhang Wei", "sales, Sales; employed"]),
        ("E004", ["Chen Jie", "underwriter, Underwriting; departed (last day 2026-04-30)"]),
    ],
)
def test_the_timeline_page_says_who_the_person_is(
    app_client: Callable[[str], TestClient], person: str, shown: list[str]
) -> None:
    page = app_client("analyst").get(f"/people/{person}").text
    for text in shown:
        assert text in page
