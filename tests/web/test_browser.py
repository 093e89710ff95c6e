"""The web UI in a real Chromium: sign-in, the analyst's ranking and timelines, an
investigator's unmasking, attribution upload and case export, and what each role may open.

The app runs under uvicorn (the ``live_server`` fixture) over the scenario insurer
(tests/insurer.py); what a page should show is computed with the library over the
same store, under the app's own lock (one DuckDB connection, one thread at a time)."""

from __future__ import annotations

import hashlib
import json
import re
import socket
import threading
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import openpyxl
import pytest
import uvicorn
from fastapi import FastAPI
from insurer import client_pii, own_clients
from molehunt_testing import require_binary
from pii_store import ID_NUMBER, MOBILE, PII_EVENT, PII_PERSON, pii_store
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Locator,
    Page,
    Route,
    expect,
    sync_playwright,
)

from molehunt.attribute import attribute
from molehunt.detect.settings import detection_settings
from molehunt.export import verify_export
from molehunt.investigate.users import add_user, set_user
from molehunt.keys import load_key
from molehunt.pii.mask import mask_text
from molehunt.score import RiskRanker
from molehunt.store import Store
from molehunt.timeline import events
from molehunt.web import create_app
from molehunt.web.service import WebService

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SESSION_COOKIE = "molehunt_session"
TIMEOUT_MS = 10_000

# A Chinese resident ID (17 digits and a digit or X) and a mainland mobile, standing
# alone (not part of a longer run of digits such as an event id's offset).
RESIDENT_ID_RE = re.compile(r"(?<![0-9])[1-9][0-9]{16}[0-9Xx](?![0-9A-Za-z])")
MOBILE_RE = re.compile(r"(?<![0-9])1[3-9][0-9]{9}(?![0-9])")

# Chromium logs most CSP violations as console errors, but not every kind; the DOM
# event is the sure way to hear of them.
_CSP_LISTENER = """
document.addEventListener('securitypolicyviolation', (e) => {
  window.molehuntCspViolation(e.violatedDirective + ' ' + e.blockedURI);
});
"""

# The scenario's low-and-slow reader: nobody else read his own clients but the DBA's
# dump and the auditor's review, which read everybody's and so weigh nothing; a leak
# of them points at him alone.
THIEF = "E008"
REASON = "complaint 2026-117: what left with this event"
NEWCOMER = "browser-newcomer"
# The scenario's evidence holds no client identifier, so masking is shown on a store of
# its own (tests/pii_store.py).
PII_PASSWORD = "a password of the masking store"


# -- the browser and its watchers -------------------------------------------------------


@dataclass
class Watched:
    """A browser context on the live server, collecting what went wrong in its pages."""

    context: BrowserContext
    base_url: str
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    csp_violations: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)

    def new_page(self) -> Page:
        page = self.context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.page_errors.append(str(error)))
        return page

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.console_errors.append(message.text)

    def url(self, path: str) -> str:
        return self.base_url.rstrip("/") + path

    def problems(self) -> list[str]:
        return [*self.console_errors, *self.page_errors, *self.csp_violations, *self.blocked]


def watched_context(browser: Browser, base_url: str) -> Watched:
    """A fresh context whose requests may only reach ``base_url`` (no network)."""
    context = browser.new_context(accept_downloads=True)
    watched = Watched(context, base_url)
    origin = urlsplit(base_url)

    def only_ours(route: Route) -> None:
        target = urlsplit(route.request.url)
        if (target.scheme, target.netloc) == (origin.scheme, origin.netloc):
            route.continue_()
        else:
            watched.blocked.append(f"request outside the server: {route.request.url}")
            route.abort()

    context.route("**/*", only_ours)
    context.expose_function(
        "molehuntCspViolation", lambda text: watched.csp_violations.append(str(text))
    )
    context.add_init_script(_CSP_LISTENER)
    return watched


def path_of(page: Page) -> str:
    return urlsplit(page.url).path


def submit(form: Locator) -> None:
    """Press the form's own submit button, as a person would."""
    form.locator("button[type=submit], input[type=submit]").first.click()


def sign_in(watched: Watched, username: str, password: str) -> Page:
    page = watched.new_page()
    page.goto(watched.url("/login"))
    form = page.get_by_test_id("login-form")
    form.locator("input[name=username]").fill(username)
    form.locator("input[name=password]").fill(password)
    with page.expect_navigation():
        submit(form)
    return page


def session_cookie(context: BrowserContext) -> dict[str, Any] | None:
    for cookie in context.cookies():
        if cookie.get("name") == SESSION_COOKIE:
            return dict(cookie)
    return None


def identifiers_in(text: str) -> list[str]:
    return RESIDENT_ID_RE.findall(text) + MOBILE_RE.findall(text)


def body_text(page: Page) -> str:
    return page.locator("body").inner_text()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """``app`` under uvicorn on a loopback port in a thread; yields its base URL."""
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="browser-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive(), "the server stopped while starting"
        assert time.monotonic() < deadline, "the server did not start in 20 s"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def pii_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A store whose one finding cites a statement naming a client's ID and mobile."""
    settings = pii_store(tmp_path_factory.mktemp("browser-pii"))
    with Store.open(settings.db) as store:
        for role in ("analyst", "investigator"):
            add_user(store, role, PII_PASSWORD, role, "red")
        with serving(create_app(store, settings)) as base_url:
            yield base_url


@dataclass
class Site:
    """The live server as people of each role meet it, one browser context each."""

    browser: Browser
    base_url: str
    web: WebService
    password: str
    users: tuple[tuple[str, str, str], ...]
    opened: list[Watched] = field(default_factory=list)

    def username(self, role: str, team: str = "red") -> str:
        return next(name for name, r, t in self.users if (r, t) == (role, team))

    def visitor(self) -> Watched:
        watched = watched_context(self.browser, self.base_url)
        self.opened.append(watched)
        return watched

    def signed_in(self, role: str, team: str = "red") -> tuple[Watched, Page]:
        watched = self.visitor()
        return watched, sign_in(watched, self.username(role, team), self.password)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    require_binary(CHROMIUM, "chromium")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def site(
    browser: Browser,
    live_server: str,
    web_app: FastAPI,
    web_users: tuple[tuple[str, str, str], ...],
    web_password: str,
) -> Iterator[Site]:
    web = web_app.state.web
    assert isinstance(web, WebService)
    with web.lock:  # another web test may have changed or disabled one of them
        for name, role, team in web_users:
            set_user(web.store, name, role=role, team=team, disabled=False)
    found = Site(browser, live_server, web, web_password, web_users)
    yield found
    for watched in found.opened:
        watched.context.close()


def _ranking(web: WebService) -> list[dict[str, Any]]:
    with web.lock:
        ranker = RiskRanker(web.store, detection_settings(web.settings), web.settings.timezone)
        last = ranker.last_day()
        assert last is not None
        return ranker.ranking(last)


# -- 1. sign-in ------------------------------------------------------------------------


def test_a_wrong_password_is_refused_without_a_session(site: Site) -> None:
    watched = site.visitor()
    page = sign_in(watched, site.username("analyst"), "not the password at all")
    expect(page.get_by_test_id("login-error")).to_be_visible()
    assert path_of(page) == "/login"
    assert session_cookie(watched.context) is None
    assert page.get_by_test_id("whoami").count() == 0


def test_sign_in_sets_a_strict_http_only_cookie_and_sign_out_ends_the_session(
    site: Site,
) -> None:
    watched, page = site.signed_in("analyst")
    assert path_of(page) == "/"
    whoami = page.get_by_test_id("whoami").inner_text()
    assert site.username("analyst") in whoami
    assert "analyst" in whoami
    cookie = session_cookie(watched.context)
    assert cookie is not None
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"

    with page.expect_navigation():
        page.get_by_test_id("logout").click()
    assert path_of(page) == "/login"
    assert session_cookie(watched.context) is None
    page.go_back()
    page.wait_for_load_state()
    assert path_of(page) == "/login"
    assert page.get_by_test_id("ranking").count() == 0
    page.goto(watched.url("/"))
    assert path_of(page) == "/login"
    assert page.get_by_test_id("whoami").count() == 0


def test_a_stolen_cookie_is_dead_after_sign_out(site: Site) -> None:
    watched, page = site.signed_in("analyst")
    cookie = session_cookie(watched.context)
    assert cookie is not None
    with page.expect_navigation():
        page.get_by_test_id("logout").click()
    thief = site.visitor()
    thief.context.add_cookies(
        [{"name": SESSION_COOKIE, "value": cookie["value"], "url": thief.base_url}]
    )
    page = thief.new_page()
    page.goto(thief.url("/"))
    assert path_of(page) == "/login"


# -- 2. the analyst --------------------------------------------------------------------


def test_the_analyst_sees_the_ranking_the_library_computes_and_its_chart(site: Site) -> None:
    expected = [r["person_id"] for r in _ranking(site.web)]
    watched, page = site.signed_in("analyst")
    rows = page.get_by_test_id("rank-row")
    expect(rows.first).to_be_visible()
    shown = [rows.nth(i).get_attribute("data-person") for i in range(rows.count())]
    assert shown == expected
    ranks = [int(rows.nth(i).locator("td").first.inner_text()) for i in range(rows.count())]
    assert ranks == list(range(1, len(expected) + 1))

    chart = page.get_by_test_id("risk-chart")
    canvas = chart.locator("canvas").first
    expect(canvas).to_be_attached()
    box = canvas.bounding_box()
    assert box is not None
    assert box["width"] > 0
    assert box["height"] > 0
    # a day per point since the first event: the scenario's two months, not an empty plot
    assert int(chart.get_attribute("data-days") or 0) > 30

    assert identifiers_in(body_text(page)) == []
    assert watched.problems() == []


def test_the_analyst_opens_a_timeline_masked_and_without_unmasking(site: Site) -> None:
    top = _ranking(site.web)[0]["person_id"]
    watched, page = site.signed_in("analyst")
    with page.expect_navigation():
        page.locator(f"[data-testid=rank-row][data-person={top}]").get_by_role(
            "link", name=top
        ).click()
    assert path_of(page) == f"/people/{top}"
    expect(page.get_by_test_id("timeline")).to_be_visible()
    assert page.get_by_test_id("timeline-row").count() > 0
    assert page.get_by_test_id("event").count() > 0
    assert page.get_by_test_id("unmask-form").count() == 0
    assert page.get_by_test_id("add-to-case").count() == 0
    assert identifiers_in(body_text(page)) == []
    assert watched.problems() == []


# -- 3. unmasking, seen by the auditor ----------------------------------------------------


def test_an_unmasked_event_shows_in_clear_and_on_the_audit_trail(site: Site) -> None:
    top = _ranking(site.web)[0]["person_id"]
    investigator = site.username("investigator")
    watched, page = site.signed_in("investigator")
    page.goto(watched.url(f"/people/{top}"))
    event = page.get_by_test_id("event").filter(has=page.get_by_test_id("unmask-form")).first
    event_id = event.get_attribute("data-event")
    assert event_id
    with site.web.lock:
        clear = events(site.web.store, [event_id], site.web.settings.timezone)[event_id]

    form = event.get_by_test_id("unmask-form")
    form.locator("input[name=reason]").fill(REASON)
    with page.expect_navigation():
        submit(form)
    unmasked = page.get_by_test_id("unmasked")
    expect(unmasked).to_have_attribute("data-event", event_id)
    assert unmasked.inner_text().strip() == clear["summary"]
    assert watched.problems() == []

    _, page = site.signed_in("auditor")
    assert path_of(page) == "/audit"
    cells = [
        [c.strip() for c in row.locator("td").all_inner_texts()]
        for row in page.get_by_test_id("audit-row").all()
    ]
    unmasks = [c for c in cells if c[3] == "unmask" and event_id in c[4]]
    assert unmasks, cells[:10]
    assert unmasks[0][2] == investigator
    assert REASON in unmasks[0][4]
    verdict = page.get_by_test_id("audit-verify")
    expect(verdict).to_contain_text("intact")
    expect(verdict).to_have_attribute("data-intact", "yes")


# -- masking, on a store whose evidence names a client ------------------------------------


def test_the_analyst_sees_a_clients_identifiers_masked(browser: Browser, pii_server: str) -> None:
    watched = watched_context(browser, pii_server)
    try:
        page = sign_in(watched, "analyst", PII_PASSWORD)
        page.goto(watched.url(f"/people/{PII_PERSON}"))
        event = page.locator(f"[data-testid=event][data-event='{PII_EVENT}']")
        expect(event).to_be_visible()
        assert "clients WHERE id_no" in event.inner_text()
        assert identifiers_in(body_text(page)) == []
        assert ID_NUMBER not in page.content()
        assert MOBILE not in page.content()
        assert page.get_by_test_id("unmask-form").count() == 0
        assert watched.problems() == []
    finally:
        watched.context.close()


def test_an_investigator_unmasks_one_event_and_only_that(browser: Browser, pii_server: str) -> None:
    watched = watched_context(browser, pii_server)
    try:
        page = sign_in(watched, "investigator", PII_PASSWORD)
        page.goto(watched.url(f"/people/{PII_PERSON}"))
        event = page.locator(f"[data-testid=event][data-event='{PII_EVENT}']")
        masked = event.locator(".summary").inner_text()
        assert identifiers_in(masked) == []
        form = event.get_by_test_id("unmask-form")
        reason = form.locator("input[name=reason]")
        reason.fill("too short")  # the server asks for 10 characters; so does the form
        assert reason.evaluate("(input) => input.form.checkValidity()") is False
        submit(form)
        assert page.get_by_test_id("unmasked").count() == 0
        assert path_of(page) == f"/people/{PII_PERSON}"

        event = page.locator(f"[data-testid=event][data-event='{PII_EVENT}']")
        form = event.get_by_test_id("unmask-form")
        form.locator("input[name=reason]").fill(REASON)
        with page.expect_navigation():
            submit(form)
        unmasked = page.get_by_test_id("unmasked").inner_text()
        assert ID_NUMBER in unmasked
        assert MOBILE in unmasked
        assert mask_text(unmasked) != unmasked
        # the timeline around it stays masked
        timeline_text = page.get_by_test_id("timeline").inner_text()
        assert identifiers_in(timeline_text) == []
        assert watched.problems() == []
    finally:
        watched.context.close()


# -- 4. attribution upload --------------------------------------------------------------


def _leaked_workbook(folder: Path) -> Path:
    """A spreadsheet of the thief's clients as found on a forum: names and mobiles."""
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["姓名", "手机"])
    for client in own_clients(THIEF):
        sheet.append(list(client_pii(client)))
    # named after a client, as leaks are: the name must not reach a page or the trail
    path = folder / f"客户名单_{client_pii(own_clients(THIEF)[0])[1]}.xlsx"
    book.save(path)
    return path


def test_an_uploaded_leak_names_the_person_who_read_it(site: Site, tmp_path: Path) -> None:
    leaked = _leaked_workbook(tmp_path)
    web = site.web
    with web.lock:
        report = attribute(
            web.store,
            load_key(web.settings),
            leaked,
            settings=detection_settings(web.settings),
            timezone=web.settings.timezone,
        )
    expected = [s["person_id"] for s in report["suspects"]]
    assert expected[0] == THIEF

    watched, page = site.signed_in("investigator")
    page.goto(watched.url("/attribute"))
    form = page.get_by_test_id("attribute-form")
    form.locator("input[type=file][name=file]").set_input_files(leaked)
    with page.expect_navigation():
        submit(form)
    rows = page.get_by_test_id("suspect-row")
    expect(rows.first).to_have_attribute("data-person", THIEF)
    assert [r.get_attribute("data-person") for r in rows.all()] == expected
    summary = page.get_by_test_id("attribute-summary").inner_text()
    assert f"{len(own_clients(THIEF))} of our clients" in summary
    assert identifiers_in(body_text(page)) == []
    assert watched.problems() == []

    _, page = site.signed_in("auditor")
    trail = body_text(page)
    assert identifiers_in(trail) == []
    assert leaked.name not in trail
    cells = [
        [c.strip() for c in row.locator("td").all_inner_texts()]
        for row in page.get_by_test_id("audit-row").all()
    ]
    uploads = [c for c in cells if c[3] == "attribute" and c[2] == site.username("investigator")]
    assert uploads, cells[:10]
    assert f"({leaked.stat().st_size} bytes)" in uploads[0][4]


# -- 5. case files ------------------------------------------------------------------------


def _new_case(watched: Watched, page: Page, title: str) -> str:
    """Open a case on /cases; returns its id."""
    page.goto(watched.url("/cases"))
    form = page.get_by_test_id("new-case")
    form.locator("input[name=title]").fill(title)
    with page.expect_navigation():
        submit(form)
    assert path_of(page).startswith("/cases/")
    expect(page.locator("h1")).to_contain_text(title)
    return path_of(page).rsplit("/", 1)[1]


def test_a_case_with_a_person_exports_a_zip_a_court_can_check(site: Site, tmp_path: Path) -> None:
    top = _ranking(site.web)[0]["person_id"]
    watched, page = site.signed_in("investigator")
    case_id = _new_case(watched, page, "Forum leak May 2026")

    page.goto(watched.url(f"/people/{top}"))
    form = page.get_by_test_id("add-to-case")
    form.locator("select[name=case_id]").select_option(case_id)
    form.locator("input[name=note]").fill("top of the ranking")
    with page.expect_navigation():
        submit(form)
    assert path_of(page) == f"/cases/{case_id}"
    item = page.get_by_test_id("case-items").locator(f"[data-ref={top}]")
    expect(item).to_contain_text("top of the ranking")

    with page.expect_download() as download_info:
        page.get_by_test_id("export").click()
    saved = tmp_path / "case.zip"
    download_info.value.save_as(saved)
    data = saved.read_bytes()
    assert verify_export(data) == []
    with zipfile.ZipFile(saved) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        assert set(manifest["files"]) == {"items.csv", "items.xlsx", "events.csv"}
        for name, entry in manifest["files"].items():
            content = archive.read(name)
            assert hashlib.sha256(content).hexdigest() == entry["sha256"]
            assert len(content) == entry["size"]
        items_csv = archive.read("items.csv").decode("utf-8-sig")
    assert manifest["case"]["case_id"] == case_id
    assert manifest["exported_by"] == site.username("investigator")
    assert top in items_csv
    assert "top of the ranking" in items_csv
    assert watched.problems() == []


# -- 6. roles -------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/attribute", "/audit", "/admin/users"])
def test_an_analyst_is_forbidden_what_other_roles_do(site: Site, path: str) -> None:
    watched, page = site.signed_in("analyst")
    response = page.goto(watched.url(path))
    assert response is not None
    assert response.status == 403
    expect(page.get_by_test_id("forbidden")).to_be_visible()
    assert page.get_by_test_id("attribute-form").count() == 0
    assert page.get_by_test_id("audit").count() == 0
    assert page.get_by_test_id("users").count() == 0


def test_the_analysts_navigation_offers_only_what_the_role_may_open(site: Site) -> None:
    _, page = site.signed_in("analyst")
    links = page.locator("header nav a").evaluate_all("(links) => links.map(a => a.pathname)")
    assert "/" in links
    assert not {"/attribute", "/audit", "/admin/users"} & set(links)


def test_an_auditor_lands_on_the_audit_trail_and_sees_no_people(site: Site) -> None:
    watched, page = site.signed_in("auditor")
    page.goto(watched.url("/"))
    assert path_of(page) == "/audit"
    expect(page.get_by_test_id("audit")).to_be_visible()
    response = page.goto(watched.url(f"/people/{THIEF}"))
    assert response is not None
    assert response.status == 403
    expect(page.get_by_test_id("forbidden")).to_be_visible()


def test_an_admin_adds_a_user_who_can_then_sign_in(site: Site) -> None:
    _, page = site.signed_in("admin")
    assert path_of(page) == "/admin/users"
    form = page.get_by_test_id("add-user")
    password = "a long enough passphrase 42"
    form.locator("input[name=username]").fill(NEWCOMER)
    form.locator("input[name=password]").fill(password)
    form.locator("select[name=role]").select_option("analyst")
    form.locator("input[name=team]").fill("blue")
    with page.expect_navigation():
        submit(form)
    expect(page.locator(f"[data-testid=user-row][data-user={NEWCOMER}]")).to_contain_text("analyst")

    newcomer = site.visitor()
    page = sign_in(newcomer, NEWCOMER, password)
    assert path_of(page) == "/"
    expect(page.get_by_test_id("whoami")).to_contain_text(NEWCOMER)
    expect(page.get_by_test_id("whoami")).to_contain_text("blue")


def test_a_case_of_another_team_is_not_found(site: Site) -> None:
    red, page = site.signed_in("investigator", "red")
    case_id = _new_case(red, page, "Red team only")
    blue, page = site.signed_in("investigator", "blue")
    response = page.goto(blue.url(f"/cases/{case_id}"))
    assert response is not None
    assert response.status == 404
    expect(page.get_by_test_id("not-found")).to_be_visible()
    assert "Red team only" not in body_text(page)
    page.goto(blue.url("/cases"))
    assert case_id not in page.get_by_test_id("cases").inner_text()
