"""The JSON API under ``/api``: thin over :class:`molehunt.web.service.Web`."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, File, Form, HTTPException, Query, Request, UploadFile
from fastapi import Path as PathParam
from fastapi.responses import Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from molehunt import times
from molehunt.errors import MolehuntError
from molehunt.web import auth
from molehunt.web.auth import (
    ADMIN,
    ANYONE,
    AUDITOR,
    EVIDENCE,
    INVESTIGATOR,
    STATUS,
    Principal,
    signed_in,
    web_of,
)
from molehunt.web.service import NotFound, Upload, Web, private_upload
from molehunt.web.users import (
    ROLES,
    User,
    UserError,
    add_user,
    end_session,
    list_users,
    locked_users,
    set_user,
    unlock_user,
)

MAX_UPLOAD = 50 * 1024 * 1024


class Error(BaseModel):
    detail: str


_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": Error},
    401: {"model": Error},
    403: {"model": Error},
    404: {"model": Error},
}

router = APIRouter(prefix="/api", responses=_ERRORS)

Role = Literal["analyst", "investigator", "auditor", "admin"]
assert set(ROLES) == {"analyst", "investigator", "auditor", "admin"}


class UserOut(BaseModel):
    username: str
    role: str
    team: str
    disabled: bool
    created_at: str
    locked: bool = False


class Credentials(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class SessionOut(BaseModel):
    token: str
    csrf: str
    user: UserOut


class Reason(BaseModel):
    detector: str
    summary: str
    first_seen: str
    last_seen: str
    events: list[str]


class RankRow(BaseModel):
    rank: int
    person_id: str
    name: str | None
    department: str | None
    role: str | None
    score: float
    flagged: bool
    #: Why the person may reach the threshold: ``critical: <detector>`` or a chain's
    #: steps (``access: out_of_scope``...); empty for a lone signal.
    chain: list[str]
    reasons: list[Reason]


class Ranking(BaseModel):
    as_of: str
    threshold: float
    threshold_how: str
    ranking: list[RankRow]


class DayScore(BaseModel):
    person_id: str
    name: str | None
    score: float


class HistoryDay(BaseModel):
    date: str
    top: list[DayScore]


class History(BaseModel):
    until: str
    days: list[HistoryDay]


class Event(BaseModel):
    event_id: str
    time: str | None = None
    table: str | None = None
    summary: str | None = None
    missing: bool = False


class TimelineEntry(BaseModel):
    time: str
    day: str
    detector: str
    severity: int
    title: str
    as_: str = Field(alias="as")
    person_id: str | None
    related: list[str]
    account: str | None
    host: str | None
    finding_id: str
    details: dict[str, Any]
    events: list[Event]


class Timeline(BaseModel):
    person_id: str
    entries: list[TimelineEntry]


class UnmaskIn(BaseModel):
    #: At least 10 visible characters (blanks and zero-width characters do not count).
    reason: str = Field(min_length=10, max_length=500)


class CaseOut(BaseModel):
    case_id: str
    title: str
    team: str
    status: str
    created_by: str
    created_at: str | None


class CaseIn(BaseModel):
    title: str = Field(min_length=1, max_length=200)


class CaseDetail(BaseModel):
    case: CaseOut
    items: list[dict[str, Any]]


class ItemIn(BaseModel):
    kind: Literal["person", "finding", "event", "attribution"]
    ref: str = Field(min_length=1, max_length=200)
    note: str | None = Field(default=None, max_length=2000)


class ItemOut(BaseModel):
    case_id: str
    seq: int


class AuditRow(BaseModel):
    seq: int
    time: str | None
    actor: str
    action: str
    target: str | None
    rows: int | None
    prev_hash: str
    hash: str


class Verified(BaseModel):
    rows: int
    head: str
    broken_at: int | None


class UserIn(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=8, max_length=1024)
    role: Role
    team: str = Field(min_length=1, max_length=64)


class UserChange(BaseModel):
    role: Role | None = None
    team: str | None = Field(default=None, min_length=1, max_length=64)
    disabled: bool | None = None
    #: ``false`` lifts a sign-in lockout (only the sign-in throttle locks).
    locked: Literal[False] | None = None


def user_out(web: Web, user: User, locked: bool = False) -> UserOut:
    return UserOut(
        username=user.username,
        role=user.role,
        team=user.team,
        disabled=user.disabled,
        created_at=web.show_time(user.created_at) or "",
        locked=locked,
    )


def checked_day(day: date | None) -> date | None:
    """A day of :mod:`molehunt.times`' range, or 400."""
    try:
        return None if day is None else times.checked_day(day)
    except ValueError as e:
        raise HTTPException(400, str(e)) from e


def parse_time(value: str | None, zone: str) -> datetime:
    if value is None:
        return datetime.now(ZoneInfo(zone))
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as e:
        raise HTTPException(400, f"{value!r} is not an ISO time like 2026-05-03T09:15+08:00") from e
    local = parsed if parsed.tzinfo else parsed.replace(tzinfo=ZoneInfo(zone))
    try:
        return times.checked_time(local)
    except ValueError as e:
        raise HTTPException(400, str(e)) from e


#: The roles that read evidence: an admin may not give one to their own account.
EVIDENCE_ROLES = frozenset(EVIDENCE)


def own_evidence_role(principal: Principal, username: str, role: str | None) -> str | None:
    """Why an admin may not make this change (None: they may)."""
    if role in EVIDENCE_ROLES and username == principal.user.username:
        return (
            "an admin may not give their own account a role that reads evidence: another admin must"
        )
    return None


def _not_found(what: str) -> HTTPException:
    return HTTPException(404, f"no such {what}")


Anyone = Annotated[Principal, Depends(signed_in(*ANYONE))]
Analyst = Annotated[Principal, Depends(signed_in(*EVIDENCE))]
Investigator = Annotated[Principal, Depends(signed_in(*INVESTIGATOR))]
Auditor = Annotated[Principal, Depends(signed_in(*AUDITOR))]
Admin = Annotated[Principal, Depends(signed_in(*ADMIN))]
StatusReader = Annotated[Principal, Depends(signed_in(*STATUS))]


# -- sessions -------------------------------------------------------------------


@router.post("/session", responses={423: {"model": Error}, 429: {"model": Error}})
def sign_in(body: Credentials, request: Request) -> SessionOut:
    """Sign in; the token is a bearer token for API clients. Wrong passwords slow the
    next tries of that name and address (429 with ``Retry-After``); 10 in a row lock
    the name out (423) until an admin unlocks it."""
    web = web_of(request)
    signed = auth.sign_in(web, request, body.username, body.password, "api")
    return SessionOut(token=signed.token, csrf=signed.csrf, user=user_out(web, signed.user))


@router.delete("/session", status_code=204)
def sign_out(principal: Anyone, request: Request) -> Response:
    web = web_of(request)
    end_session(web.db(), principal.token)
    web.audit(principal.user.username, "sign-out", "api", None)
    return Response(status_code=204)


@router.get("/me")
def me(principal: Anyone, request: Request) -> UserOut:
    return user_out(web_of(request), principal.user)


# -- evidence -------------------------------------------------------------------


@router.get("/status")
def status(principal: StatusReader, request: Request) -> dict[str, Any]:
    return web_of(request).status(principal.user)


@router.get("/risk")
def risk(
    principal: Analyst,
    request: Request,
    as_of: date | None = None,
    top: Annotated[int | None, Query(ge=1, le=10_000)] = None,
    all: bool = False,
) -> Ranking:
    web = web_of(request)
    day, rows = web.risk(principal.user, checked_day(as_of), top, all)
    threshold = web.threshold(day)
    return Ranking(
        as_of=day.isoformat(),
        threshold=threshold.value,
        threshold_how=threshold.how,
        ranking=[RankRow.model_validate(r) for r in rows],
    )


@router.get("/risk/history")
def risk_history(
    principal: Analyst,
    request: Request,
    until: date | None = None,
    top: Annotated[int, Query(ge=1, le=100)] = 5,
) -> History:
    last, days = web_of(request).risk_history(principal.user, checked_day(until), top)
    return History(until=last.isoformat(), days=[HistoryDay.model_validate(d) for d in days])


@router.get("/people/{person_id}/timeline")
def timeline(
    person_id: Annotated[str, PathParam(max_length=64)],
    principal: Analyst,
    request: Request,
    until: date | None = None,
) -> Timeline:
    entries = web_of(request).timeline(principal.user, person_id, checked_day(until))
    return Timeline(person_id=person_id, entries=[TimelineEntry.model_validate(e) for e in entries])


@router.get("/who")
def who(
    principal: Analyst,
    request: Request,
    at: str | None = None,
    ip: str | None = None,
    account: str | None = None,
    host: str | None = None,
) -> dict[str, Any]:
    """Who owned an account or a host, and who sat at it, at a given time."""
    if sum(x is not None for x in (ip, account, host)) != 1:
        raise HTTPException(400, "give exactly one of ip, account, host")
    web = web_of(request)
    return web.who(principal.user, parse_time(at, web.settings.timezone), ip, account, host)


@router.get("/accounts")
def accounts(
    principal: Analyst, request: Request, orphaned: bool = False, at: str | None = None
) -> list[dict[str, Any]]:
    web = web_of(request)
    return web.accounts(principal.user, orphaned, parse_time(at, web.settings.timezone))


@router.get("/events/{event_id}")
def event(event_id: str, principal: Analyst, request: Request) -> Event:
    """One event's summary, masked."""
    try:
        return Event.model_validate(web_of(request).event(principal.user, event_id))
    except NotFound as e:
        raise _not_found("event") from e


@router.post("/events/{event_id}/unmask")
def unmask(event_id: str, body: UnmaskIn, principal: Investigator, request: Request) -> Event:
    """The event as stored; the reason is kept on the audit trail."""
    try:
        found = web_of(request).unmask(principal.user, event_id, body.reason)
    except NotFound as e:
        raise _not_found("event") from e
    except ValueError as e:
        raise HTTPException(400, str(e)) from e
    return Event.model_validate(found)


async def save_upload(file: UploadFile, path: Path, cap: int) -> int:
    """Copy an upload to ``path`` a piece at a time; 413 once it is over ``cap`` bytes."""
    size = 0
    with path.open("wb") as out:
        while chunk := await file.read(1024 * 1024):
            size += len(chunk)
            if size > cap:
                raise HTTPException(413, f"the file is over {cap} bytes")
            out.write(chunk)
    return size


def upload_error(error: Exception, path: Path) -> str:
    """An error about an upload, told without the server's temporary folder."""
    text = str(error)
    for where in (str(path), str(path.parent), path.name):
        text = text.replace(where, "the uploaded file")
    return text


@router.post("/attribute", responses={413: {"model": Error}})
async def attribute(
    principal: Investigator,
    request: Request,
    file: Annotated[UploadFile, File()],
    complaints: Annotated[bool, Form()] = False,
) -> dict[str, Any]:
    """Who read the client records of a leaked file (or of complaints)."""
    web = web_of(request)
    cap: int = request.app.state.max_upload
    with private_upload(file.filename) as path:
        size = await save_upload(file, path, cap)
        try:
            return await run_in_threadpool(
                web.attribute, principal.user, Upload(path, size), complaints
            )
        except MolehuntError as e:
            raise HTTPException(400, upload_error(e, path)) from e


# -- cases ------------------------------------------------------------------------


@router.get("/cases")
def cases(principal: Analyst, request: Request) -> list[CaseOut]:
    return [CaseOut.model_validate(c) for c in web_of(request).cases(principal.user)]


@router.post("/cases", status_code=201)
def new_case(body: CaseIn, principal: Investigator, request: Request) -> CaseOut:
    return CaseOut.model_validate(web_of(request).new_case(principal.user, body.title))


@router.get("/cases/{case_id}")
def case(case_id: str, principal: Analyst, request: Request) -> CaseDetail:
    try:
        return CaseDetail.model_validate(web_of(request).case(principal.user, case_id))
    except NotFound as e:
        raise _not_found("case") from e


@router.post("/cases/{case_id}/items", status_code=201)
def add_item(case_id: str, body: ItemIn, principal: Investigator, request: Request) -> ItemOut:
    try:
        added = web_of(request).add_item(principal.user, case_id, body.kind, body.ref, body.note)
    except NotFound as e:
        raise _not_found("case" if str(e.args[0]) == case_id else "event") from e
    except ValueError as e:
        raise HTTPException(400, str(e)) from e
    return ItemOut.model_validate(added)


@router.post("/cases/{case_id}/close")
def close_case(case_id: str, principal: Investigator, request: Request) -> CaseOut:
    try:
        return CaseOut.model_validate(web_of(request).close_case(principal.user, case_id))
    except NotFound as e:
        raise _not_found("case") from e


@router.get(
    "/cases/{case_id}/export",
    response_class=Response,
    responses={200: {"content": {"application/zip": {}}, "description": "The case's zip"}},
)
def export_case(case_id: str, principal: Investigator, request: Request) -> Response:
    """The case as a zip a court can check (manifest with SHA-256 of every file)."""
    try:
        data = web_of(request).export_case(principal.user, case_id)
    except NotFound as e:
        raise _not_found("case") from e
    return Response(
        data,
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{case_id}.zip"'},
    )


# -- audit ------------------------------------------------------------------------


@router.get("/audit")
def audit_trail(
    principal: Auditor, request: Request, limit: Annotated[int, Query(ge=1, le=10_000)] = 100
) -> list[AuditRow]:
    return [
        AuditRow.model_validate(r) for r in web_of(request).audit_entries(principal.user, limit)
    ]


@router.get("/audit/verify")
def audit_verify(principal: Auditor, request: Request) -> Verified:
    return Verified.model_validate(web_of(request).audit_verify(principal.user))


# -- users --------------------------------------------------------------------------


@router.get("/users")
def users(principal: Admin, request: Request) -> list[UserOut]:
    web = web_of(request)
    db = web.db()
    found = list_users(db)
    locked = locked_users(db)
    web.audit(principal.user.username, "users", None, len(found))
    return [user_out(web, u, u.username in locked) for u in found]


@router.post("/users", status_code=201)
def new_user(body: UserIn, principal: Admin, request: Request) -> UserOut:
    web = web_of(request)
    with web.lock:
        try:
            user = add_user(web.db(), body.username, body.password, body.role, body.team)
        except UserError as e:
            raise HTTPException(400, str(e)) from e
        web.audit(principal.user.username, "user add", f"{user.username} as {user.role}", 1)
    return user_out(web, user)


@router.patch("/users/{username}")
def change_user(username: str, body: UserChange, principal: Admin, request: Request) -> UserOut:
    """Change a user's role, team or disabled flag; ``"locked": false`` lifts a
    sign-in lockout. An admin cannot give their own account an evidence role."""
    web = web_of(request)
    refused = own_evidence_role(principal, username, body.role)
    if refused:
        raise HTTPException(403, refused)
    with web.lock:
        db = web.db()
        try:
            user = set_user(db, username, role=body.role, team=body.team, disabled=body.disabled)
            if body.locked is False:
                unlock_user(db, username)
                web.throttle.unlock(username)
        except UserError as e:
            raise HTTPException(404 if "no user" in str(e) else 400, str(e)) from e
        change = ", ".join(f"{k}={v}" for k, v in body.model_dump(exclude_none=True).items())
        web.audit(principal.user.username, "user change", f"{username}: {change}", 1)
        locked = username in locked_users(db)
    return user_out(web, user, locked)


__all__ = ["MAX_UPLOAD", "router"]
