"""Server-rendered pages: the same answers as the API, as plain HTML tables."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from molehunt.errors import MolehuntError
from molehunt.web import auth
from molehunt.web.api import checked_day, own_evidence_role, save_upload, upload_error
from molehunt.web.auth import (
    ADMIN,
    ANYONE,
    AUDITOR,
    COOKIE,
    EVIDENCE,
    INVESTIGATOR,
    Principal,
    lookup,
    signed_in,
    web_of,
)
from molehunt.web.service import NotFound, Upload, private_upload, visible_reason
from molehunt.web.users import (
    ROLES,
    SESSION_TTL,
    UserError,
    add_user,
    end_session,
    list_users,
    locked_users,
    set_user,
    unlock_user,
)

router = APIRouter(include_in_schema=False, default_response_class=HTMLResponse)

Anyone = Annotated[Principal, Depends(signed_in(*ANYONE))]
Analyst = Annotated[Principal, Depends(signed_in(*EVIDENCE))]
Investigator = Annotated[Principal, Depends(signed_in(*INVESTIGATOR))]
Auditor = Annotated[Principal, Depends(signed_in(*AUDITOR))]
Admin = Annotated[Principal, Depends(signed_in(*ADMIN))]

_NAV: dict[str, list[tuple[str, str]]] = {
    "analyst": [("/", "Risk"), ("/cases", "Cases")],
    "investigator": [("/", "Risk"), ("/attribute", "Attribute"), ("/cases", "Cases")],
    "auditor": [("/audit", "Audit trail")],
    "admin": [("/admin/users", "Users")],
}
_LANDING = {"auditor": "/audit", "admin": "/admin/users"}


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
        "nav": _NAV.get(principal.user.role, []) if principal else [],
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
    try:
        signed = auth.sign_in(web, request, username, password, "page")
    except HTTPException as e:
        if e.status_code == 401:
            return render(request, "login.html", None, 401, error="Wrong user name or password.")
        shown = render(request, "login.html", None, e.status_code, error=f"{e.detail}.")
        shown.headers.update(e.headers or {})
        return shown
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
    web = web_of(request)
    end_session(web.db(), principal.token)
    web.audit(principal.user.username, "sign-out", "page", None)
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
        raise HTTPException(400, f"{as_of!r} is not a date like 2026-05-03") from e
    shown, ranking = web.risk(principal.user, checked_day(day), None, False)
    return render(
        request,
        "risk.html",
        principal,
        as_of=shown.isoformat(),
        ranking=ranking,
        threshold=web.threshold(shown),
    )


def _open_cases(principal: Principal, request: Request) -> list[dict[str, Any]]:
    if principal.user.role != "investigator":
        return []
    return [c for c in web_of(request).cases(principal.user) if c["status"] == "open"]


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
    unmasked: dict[str, Any] | None = None,
    error: str | None = None,
    status_code: int = 200,
    min_severity: int = 0,
) -> HTMLResponse:
    web = web_of(request)
    entries = web.timeline(principal.user, person_id, None)
    shown = [e for e in entries if int(e["severity"]) >= min_severity]
    return render(
        request,
        "person.html",
        principal,
        status_code,
        person_id=person_id,
        person=web.person(person_id),
        entries=shown,
        total=len(entries),
        min_severity=min_severity,
        floors=SEVERITY_FLOORS,
        zone=web.settings.timezone,
        unmasked=unmasked,
        error=error,
        cases=_open_cases(principal, request),
        investigator=principal.user.role == "investigator",
    )


@router.get("/people/{person_id}")
def person(
    person_id: str,
    principal: Analyst,
    request: Request,
    min_severity: Annotated[int, Query(ge=0, le=100)] = 0,
) -> Response:
    return _person_page(request, principal, person_id, min_severity=min_severity)


@router.post("/events/{event_id}/unmask")
def unmask(
    event_id: str,
    principal: Investigator,
    request: Request,
    reason: Annotated[str, Form(max_length=500)] = "",
    person: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    web = web_of(request)
    try:
        visible_reason(reason)
    except ValueError as e:
        web.audit(principal.user.username, "refused", f"unmask {event_id[:64]}: {e}", None)
        request.state.audited = True
        if not person:
            raise HTTPException(400, str(e)) from e
        return _person_page(
            request,
            principal,
            person,
            error="Give a reason of at least 10 visible characters to unmask an event.",
            status_code=400,
        )
    try:
        found = web.unmask(principal.user, event_id, reason)
    except NotFound as e:
        raise HTTPException(404, "no such event") from e
    if not person:
        return render(request, "event.html", principal, event=found)
    return _person_page(request, principal, person, unmasked=found)


@router.post("/people/{person_id}/add-to-case")
def add_person_to_case(
    person_id: str,
    principal: Investigator,
    request: Request,
    case_id: Annotated[str, Form(max_length=64)],
    note: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    try:
        web_of(request).add_item(principal.user, case_id, "person", person_id, note or None)
    except NotFound as e:
        raise HTTPException(404, "no such case") from e
    except ValueError as e:
        raise HTTPException(400, str(e)) from e
    return _see(f"/cases/{case_id}")


@router.get("/attribute")
def attribute_page(principal: Investigator, request: Request) -> Response:
    return render(request, "attribute.html", principal, result=None)


@router.post("/attribute")
async def attribute(
    principal: Investigator,
    request: Request,
    file: Annotated[UploadFile, File()],
    complaints: Annotated[bool, Form()] = False,
) -> Response:
    web = web_of(request)
    with private_upload(file.filename) as path:
        size = await save_upload(file, path, request.app.state.max_upload)
        try:
            result = await run_in_threadpool(
                web.attribute, principal.user, Upload(path, size), complaints
            )
        except MolehuntError as e:
            raise HTTPException(400, upload_error(e, path)) from e
    return await run_in_threadpool(
        render, request, "attribute.html", principal, result=result, complaints=complaints
    )


# -- cases ----------------------------------------------------------------------------------


@router.get("/cases")
def cases(principal: Analyst, request: Request) -> Response:
    found = web_of(request).cases(principal.user)
    return render(
        request,
        "cases.html",
        principal,
        cases=found,
        investigator=principal.user.role == "investigator",
    )


@router.post("/cases")
def new_case(
    principal: Investigator, request: Request, title: Annotated[str, Form(max_length=200)]
) -> Response:
    if not title.strip():
        raise HTTPException(400, "a case needs a title")
    made = web_of(request).new_case(principal.user, title.strip())
    return _see(f"/cases/{made['case_id']}")


@router.get("/cases/{case_id}")
def case(case_id: str, principal: Analyst, request: Request) -> Response:
    try:
        found = web_of(request).case(principal.user, case_id)
    except NotFound as e:
        raise HTTPException(404, "no such case") from e
    return render(
        request,
        "case.html",
        principal,
        case=found["case"],
        items=found["items"],
        investigator=principal.user.role == "investigator",
    )


@router.post("/cases/{case_id}/close")
def close_case(case_id: str, principal: Investigator, request: Request) -> Response:
    try:
        web_of(request).close_case(principal.user, case_id)
    except NotFound as e:
        raise HTTPException(404, "no such case") from e
    return _see(f"/cases/{case_id}")


# -- audit and users --------------------------------------------------------------------------


@router.get("/audit")
def audit_page(principal: Auditor, request: Request, limit: int = 200) -> Response:
    web = web_of(request)
    verified = web.audit_verify(principal.user)
    rows = web.audit_entries(principal.user, max(1, min(limit, 10_000)))
    return render(request, "audit.html", principal, rows=rows, verified=verified)


def _users_page(
    request: Request, principal: Principal, error: str | None = None, status_code: int = 200
) -> HTMLResponse:
    web = web_of(request)
    found = list_users(web.db())
    locked = locked_users(web.db())
    web.audit(principal.user.username, "users", None, len(found))
    return render(
        request,
        "users.html",
        principal,
        status_code,
        users=found,
        roles=ROLES,
        error=error,
        locked=locked,
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
    web = web_of(request)
    with web.lock:
        try:
            user = add_user(web.db(), username, password, role, team)
        except UserError as e:
            return _users_page(request, principal, str(e), 400)
        web.audit(principal.user.username, "user add", f"{user.username} as {user.role}", 1)
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
    web = web_of(request)
    flag = {"yes": True, "no": False}.get(disabled)
    refused = own_evidence_role(principal, username, role or None)
    if refused:
        web.audit(principal.user.username, "refused", f"user change {username}: {refused}", None)
        request.state.audited = True
        return _users_page(request, principal, refused, 403)
    with web.lock:
        db = web.db()
        try:
            set_user(db, username, role=role or None, team=team or None, disabled=flag)
            if locked == "no":
                unlock_user(db, username)
                web.throttle.unlock(username)
        except UserError as e:
            if "no user" in str(e):
                raise HTTPException(404, "no such user") from e
            return _users_page(request, principal, str(e), 400)
        change = f"role={role or '-'} team={team or '-'} disabled={disabled or '-'}"
        if locked == "no":
            change += " locked=False"
        web.audit(principal.user.username, "user change", f"{username}: {change}", 1)
    return _see("/admin/users")
