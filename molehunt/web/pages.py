"""Server-rendered pages: the same answers as the API, as plain HTML tables."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from molehunt.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    MolehuntError,
    NotFound,
    Throttled,
    http_status,
)
from molehunt.investigate.permissions import allowed
from molehunt.investigate.users import ROLES, SESSION_TTL
from molehunt.models import EventSummary
from molehunt.web.api import attribute_upload, checked_day
from molehunt.web.auth import COOKIE, Principal, address, lookup, signed_in, web_of
from molehunt.web.shown import shown, shown_dict

router = APIRouter(include_in_schema=False, default_response_class=HTMLResponse)

Anyone = Annotated[Principal, Depends(signed_in("view-self"))]
RankingReader = Annotated[Principal, Depends(signed_in("view-ranking"))]
EvidenceReader = Annotated[Principal, Depends(signed_in("view-evidence"))]
CaseReader = Annotated[Principal, Depends(signed_in("view-cases"))]
Unmasker = Annotated[Principal, Depends(signed_in("unmask"))]
Attributor = Annotated[Principal, Depends(signed_in("attribute"))]
CaseManager = Annotated[Principal, Depends(signed_in("manage-cases"))]
AuditReader = Annotated[Principal, Depends(signed_in("view-audit"))]
Admin = Annotated[Principal, Depends(signed_in("manage-users"))]

#: The pages of the navigation bar, each shown to the roles that may take its action.
_NAV: tuple[tuple[str, str, str], ...] = (
    ("/", "Risk", "view-ranking"),
    ("/attribute", "Attribute", "attribute"),
    ("/cases", "Cases", "view-cases"),
    ("/audit", "Audit trail", "view-audit"),
    ("/admin/users", "Users", "manage-users"),
)
_LANDING = {"auditor": "/audit", "admin": "/admin/users"}


def nav(role: str) -> list[tuple[str, str]]:
    """The navigation of ``role``: the pages whose action it may take."""
    return [(url, label) for url, label, action in _NAV if allowed(role, action)]


def _templates(request: Request) -> Jinja2Templates:
    found = request.app.state.templates
    assert isinstance(found, Jinja2Templates)
    return found


def render(
    request: Request,
    name: str,
    principal: Principal | None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    web = web_of(request)
    base = {
        "me": principal.user if principal else None,
        "csrf": principal.csrf if principal else "",
        "nav": nav(principal.user.role) if principal else [],
        "timezone": web.settings.timezone,
    }
    return _templates(request).TemplateResponse(
        request, name, {**base, **context}, status_code=status_code
    )


def error_page(request: Request, status: int, detail: str) -> HTMLResponse:
    principal = lookup(request)
    testid = {403: "forbidden", 404: "not-found"}.get(status, "error")
    return render(
        request, "error.html", principal, status, status=status, testid=testid, detail=detail
    )


def _see(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


# -- sign-in --------------------------------------------------------------------------


@router.get("/login")
def login_page(request: Request) -> Response:
    principal = lookup(request)
    if principal is not None:
        return _see(_LANDING.get(principal.user.role, "/"))
    return render(request, "login.html", None)


@router.post("/login")
def login(
    request: Request,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=1024)],
) -> Response:
    web = web_of(request)
    request.state.audited = True  # the service audits every try
    try:
        signed = web.sign_in(username, password, address(request), "page")
    except MolehuntError as e:
        status = http_status(e)
        if status == 401:
            return render(request, "login.html", None, 401, error="Wrong user name or password.")
        shown_page = render(request, "login.html", None, status, error=f"{e}.")
        if isinstance(e, Throttled):
            shown_page.headers["Retry-After"] = str(e.retry_after)
        return shown_page
    response = _see(_LANDING.get(signed.user.role, "/"))
    response.set_cookie(
        COOKIE,
        signed.token,
        max_age=int(SESSION_TTL.total_seconds()),
        path="/",
        httponly=True,
        samesite="strict",
        secure=bool(request.app.state.https_only),
    )
    return response


@router.post("/logout")
def logout(principal: Anyone, request: Request) -> Response:
    web_of(request).sign_out(principal.actor, principal.token)
    response = _see("/login")
    response.delete_cookie(COOKIE, path="/")
    return response


# -- evidence -----------------------------------------------------------------------------


@router.get("/")
def home(principal: Anyone, request: Request, as_of: str | None = None) -> Response:
    if principal.user.role in _LANDING:
        return _see(_LANDING[principal.user.role])
    web = web_of(request)
    try:
        day = date.fromisoformat(as_of) if as_of else None
    except ValueError as e:
        raise InvalidInput(f"{as_of!r} is not a date like 2026-05-03") from e
    found = web.ranking(principal.actor, checked_day(day), None, False)
    return render(
        request,
        "risk.html",
        principal,
        as_of=found.as_of.isoformat(),
        ranking=shown(found.rows, web.zone),
        threshold={"value": found.threshold, "how": found.threshold_how},
    )


def _open_cases(principal: Principal, request: Request) -> list[dict[str, Any]]:
    if not allowed(principal.user.role, "manage-cases"):
        return []
    web = web_of(request)
    return [shown_dict(c, web.zone) for c in web.cases(principal.actor) if c.status == "open"]


def when(value: str | None) -> str:
    """An ISO time as people read it: ``2026-03-02 14:48:42`` (the page says the zone)."""
    if not value:
        return ""
    try:
        return datetime.fromisoformat(value).strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return value


#: The severity floors the timeline page offers (0: every finding).
SEVERITY_FLOORS = (0, 30, 60)


def _person_page(
    request: Request,
    principal: Principal,
    person_id: str,
    *,
    unmasked: EventSummary | None = None,
    error: str | None = None,
    status_code: int = 200,
    min_severity: int = 0,
) -> HTMLResponse:
    web = web_of(request)
    found = web.person_timeline(principal.actor, person_id)
    entries = found.entries
    shown_entries = [shown(e, web.zone) for e in entries if e.severity >= min_severity]
    return render(
        request,
        "person.html",
        principal,
        status_code,
        person_id=person_id,
        person=None if found.person is None else shown(found.person, web.zone),
        entries=shown_entries,
        total=len(entries),
        min_severity=min_severity,
        floors=SEVERITY_FLOORS,
        zone=web.settings.timezone,
        unmasked=None if unmasked is None else shown(unmasked, web.zone),
        error=error,
        cases=_open_cases(principal, request),
        investigator=allowed(principal.user.role, "manage-cases"),
    )


@router.get("/people/{person_id}")
def person(
    person_id: str,
    principal: EvidenceReader,
    request: Request,
    min_severity: Annotated[int, Query(ge=0, le=100)] = 0,
) -> Response:
    return _person_page(request, principal, person_id, min_severity=min_severity)


@router.post("/events/{event_id}/unmask")
def unmask(
    event_id: str,
    principal: Unmasker,
    request: Request,
    reason: Annotated[str, Form(max_length=500)] = "",
    person: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    web = web_of(request)
    try:
        found = web.unmask(principal.actor, event_id, reason)
    except InvalidInput as e:
        if not person:
            raise
        request.state.audited = e.audited
        return _person_page(
            request,
            principal,
            person,
            error="Give a reason of at least 10 visible characters to unmask an event.",
            status_code=400,
        )
    if not person:
        return render(request, "event.html", principal, event=shown(found, web.zone))
    return _person_page(request, principal, person, unmasked=found)


@router.post("/people/{person_id}/add-to-case")
def add_person_to_case(
    person_id: str,
    principal: CaseManager,
    request: Request,
    case_id: Annotated[str, Form(max_length=64)],
    note: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    web_of(request).add_item(principal.actor, case_id, "person", person_id, note or None)
    return _see(f"/cases/{case_id}")


@router.get("/attribute")
def attribute_page(principal: Attributor, request: Request) -> Response:
    return render(request, "attribute.html", principal, result=None)


@router.post("/attribute")
async def attribute(
    principal: Attributor,
    request: Request,
    file: Annotated[UploadFile, File()],
    complaints: Annotated[bool, Form()] = False,
) -> Response:
    web = web_of(request)
    result = await attribute_upload(web, principal, file, request.app.state.max_upload, complaints)
    return await run_in_threadpool(
        render, request, "attribute.html", principal, result=result, complaints=complaints
    )


# -- cases ----------------------------------------------------------------------------------


@router.get("/cases")
def cases(principal: CaseReader, request: Request) -> Response:
    web = web_of(request)
    return render(
        request,
        "cases.html",
        principal,
        cases=shown(web.cases(principal.actor), web.zone),
        investigator=allowed(principal.user.role, "manage-cases"),
    )


@router.post("/cases")
def new_case(
    principal: CaseManager, request: Request, title: Annotated[str, Form(max_length=200)]
) -> Response:
    made = web_of(request).new_case(principal.actor, title)
    return _see(f"/cases/{made.case_id}")


@router.get("/cases/{case_id}")
def case(case_id: str, principal: CaseReader, request: Request) -> Response:
    web = web_of(request)
    found = shown_dict(web.case_file(principal.actor, case_id), web.zone)
    return render(
        request,
        "case.html",
        principal,
        case=found["case"],
        items=found["items"],
        investigator=allowed(principal.user.role, "manage-cases"),
    )


@router.post("/cases/{case_id}/close")
def close_case(case_id: str, principal: CaseManager, request: Request) -> Response:
    web_of(request).close_case(principal.actor, case_id)
    return _see(f"/cases/{case_id}")


# -- audit and users --------------------------------------------------------------------------


@router.get("/audit")
def audit_page(principal: AuditReader, request: Request, limit: int = 200) -> Response:
    web = web_of(request)
    verified = web.audit_verify(principal.actor)
    rows = web.audit_entries(principal.actor, max(1, min(limit, 10_000)))
    return render(
        request,
        "audit.html",
        principal,
        rows=shown(rows, web.zone),
        verified=shown(verified, web.zone),
    )


def _users_page(
    request: Request, principal: Principal, error: str | None = None, status_code: int = 200
) -> HTMLResponse:
    web = web_of(request)
    found = web.users(principal.actor)
    return render(
        request,
        "users.html",
        principal,
        status_code,
        users=shown(found, web.zone),
        roles=ROLES,
        error=error,
        locked={u.username for u in found if u.locked},
    )


@router.get("/admin/users")
def users_page(principal: Admin, request: Request) -> Response:
    return _users_page(request, principal)


@router.post("/admin/users")
def add_user_page(
    principal: Admin,
    request: Request,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=1024)],
    role: Annotated[str, Form(max_length=20)],
    team: Annotated[str, Form(max_length=64)],
) -> Response:
    try:
        web_of(request).add_user(principal.actor, username, password, role, team)
    except (InvalidInput, Conflict) as e:
        return _users_page(request, principal, str(e), http_status(e))
    return _see("/admin/users")


@router.post("/admin/users/{username}")
def change_user_page(
    username: str,
    principal: Admin,
    request: Request,
    role: Annotated[str, Form(max_length=20)] = "",
    team: Annotated[str, Form(max_length=64)] = "",
    disabled: Annotated[str, Form(max_length=5)] = "",
    locked: Annotated[str, Form(max_length=5)] = "",
) -> Response:
    try:
        web_of(request).change_user(
            principal.actor,
            username,
            role=role or None,
            team=team or None,
            disabled={"yes": True, "no": False}.get(disabled),
            unlock=locked == "no",
        )
    except NotFound:
        raise
    except (InvalidInput, Forbidden) as e:
        return _users_page(request, principal, str(e), http_status(e))
    return _see("/admin/users")
