"""The JSON API under ``/api``: thin over :class:`molehunt.web.service.WebService`."""

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
from molehunt.errors import AccessError, InvalidInput, MolehuntError
from molehunt.investigate.users import ROLES
from molehunt.models import User
from molehunt.web.auth import Principal, address, signed_in, web_of
from molehunt.web.service import WebService, private_upload
from molehunt.web.shown import shown, shown_dict

MAX_UPLOAD = 50 * 1024 * 1024


class Error(BaseModel):
    detail: str


_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": Error},
    401: {"model": Error},
    403: {"model": Error},
    404: {"model": Error},
    409: {"model": Error},
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


class ReasonOut(BaseModel):
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
    reasons: list[ReasonOut]


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


def user_out(web: WebService, user: User) -> UserOut:
    return UserOut.model_validate(shown_dict(user, web.zone))


def checked_day(day: date | None) -> date | None:
    """A day of :mod:`molehunt.times`' range, or :class:`InvalidInput` (400)."""
    try:
        return None if day is None else times.checked_day(day)
    except ValueError as e:
        raise InvalidInput(str(e)) from e


def parse_time(value: str | None, zone: str) -> datetime:
    """An ISO time (in ``zone`` when it names none; now when ``None``), or 400."""
    if value is None:
        return datetime.now(ZoneInfo(zone))
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as e:
        raise InvalidInput(f"{value!r} is not an ISO time like 2026-05-03T09:15+08:00") from e
    local = parsed if parsed.tzinfo else parsed.replace(tzinfo=ZoneInfo(zone))
    try:
        return times.checked_time(local)
    except ValueError as e:
        raise InvalidInput(str(e)) from e


Anyone = Annotated[Principal, Depends(signed_in("view-self"))]
StatusReader = Annotated[Principal, Depends(signed_in("view-status"))]
RankingReader = Annotated[Principal, Depends(signed_in("view-ranking"))]
EvidenceReader = Annotated[Principal, Depends(signed_in("view-evidence"))]
CaseReader = Annotated[Principal, Depends(signed_in("view-cases"))]
Unmasker = Annotated[Principal, Depends(signed_in("unmask"))]
Attributor = Annotated[Principal, Depends(signed_in("attribute"))]
CaseManager = Annotated[Principal, Depends(signed_in("manage-cases"))]
Exporter = Annotated[Principal, Depends(signed_in("export-case"))]
AuditReader = Annotated[Principal, Depends(signed_in("view-audit"))]
AuditVerifier = Annotated[Principal, Depends(signed_in("verify-audit"))]
Admin = Annotated[Principal, Depends(signed_in("manage-users"))]


# -- sessions -------------------------------------------------------------------


@router.post("/session", responses={423: {"model": Error}, 429: {"model": Error}})
def sign_in(body: Credentials, request: Request) -> SessionOut:
    """Sign in; the token is a bearer token for API clients. Wrong passwords slow the
    next tries of that name and address (429 with ``Retry-After``); 10 in a row lock
    the name out (423) until an admin unlocks it."""
    web = web_of(request)
    request.state.audited = True  # the service audits every try
    signed = web.sign_in(body.username, body.password, address(request), "api")
    return SessionOut(token=signed.token, csrf=signed.csrf, user=user_out(web, signed.user))


@router.delete("/session", status_code=204)
def sign_out(principal: Anyone, request: Request) -> Response:
    web_of(request).sign_out(principal.actor, principal.token)
    return Response(status_code=204)


@router.get("/me")
def me(principal: Anyone, request: Request) -> UserOut:
    return user_out(web_of(request), principal.user)


# -- evidence -------------------------------------------------------------------


@router.get("/status")
def status(principal: StatusReader, request: Request) -> dict[str, Any]:
    return web_of(request).status(principal.actor)


@router.get("/risk")
def risk(
    principal: RankingReader,
    request: Request,
    as_of: date | None = None,
    top: Annotated[int | None, Query(ge=1, le=10_000)] = None,
    all: bool = False,
) -> Ranking:
    web = web_of(request)
    found = web.ranking(principal.actor, checked_day(as_of), top, all)
    return Ranking(
        as_of=found.as_of.isoformat(),
        threshold=found.threshold,
        threshold_how=found.threshold_how,
        ranking=[RankRow.model_validate(shown(r, web.zone)) for r in found.rows],
    )


@router.get("/risk/history")
def risk_history(
    principal: RankingReader,
    request: Request,
    until: date | None = None,
    top: Annotated[int, Query(ge=1, le=100)] = 5,
) -> History:
    web = web_of(request)
    found = web.risk_history(principal.actor, checked_day(until), top)
    return History(
        until=found.until.isoformat(),
        days=[
            HistoryDay(
                date=d.day.isoformat(),
                top=[DayScore.model_validate(shown(s, web.zone)) for s in d.top],
            )
            for d in found.days
        ],
    )


@router.get("/people/{person_id}/timeline")
def timeline(
    person_id: Annotated[str, PathParam(max_length=64)],
    principal: EvidenceReader,
    request: Request,
    until: date | None = None,
) -> Timeline:
    web = web_of(request)
    entries = web.timeline(principal.actor, person_id, checked_day(until))
    return Timeline(
        person_id=person_id,
        entries=[TimelineEntry.model_validate(shown(e, web.zone)) for e in entries],
    )


@router.get("/who")
def who(
    principal: EvidenceReader,
    request: Request,
    at: str | None = None,
    ip: str | None = None,
    account: str | None = None,
    host: str | None = None,
) -> dict[str, Any]:
    """Who owned an account or a host, and who sat at it, at a given time."""
    web = web_of(request)
    when = parse_time(at, web.settings.timezone)
    found = web.who(principal.actor, when, ip=ip, account=account, host=host)
    return {"at": shown(found.at, web.zone), **shown_dict(found.answer, web.zone)}


@router.get("/accounts")
def accounts(
    principal: EvidenceReader, request: Request, orphaned: bool = False, at: str | None = None
) -> list[dict[str, Any]]:
    web = web_of(request)
    return web.accounts(principal.actor, orphaned, parse_time(at, web.settings.timezone))


@router.get("/events/{event_id}")
def event(event_id: str, principal: EvidenceReader, request: Request) -> Event:
    """One event's summary, masked."""
    web = web_of(request)
    return Event.model_validate(shown(web.event(principal.actor, event_id), web.zone))


@router.post("/events/{event_id}/unmask")
def unmask(event_id: str, body: UnmaskIn, principal: Unmasker, request: Request) -> Event:
    """The event as stored; the reason is kept on the audit trail."""
    web = web_of(request)
    found = web.unmask(principal.actor, event_id, body.reason)
    return Event.model_validate(shown(found, web.zone))


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


async def attribute_upload(
    web: WebService, principal: Principal, file: UploadFile, cap: int, complaints: bool
) -> dict[str, Any]:
    """Save the upload privately, attribute it, and show the answer; an error about
    the file is a 400 told without the server's temporary folder."""
    with private_upload(file.filename) as path:
        await save_upload(file, path, cap)
        try:
            found = await run_in_threadpool(web.attribute, principal.actor, path, complaints)
        except AccessError:
            raise
        except MolehuntError as e:
            told = InvalidInput(upload_error(e, path))
            told.audited = e.audited
            raise told from None
    return shown_dict(found, web.zone)


@router.post("/attribute", responses={413: {"model": Error}})
async def attribute(
    principal: Attributor,
    request: Request,
    file: Annotated[UploadFile, File()],
    complaints: Annotated[bool, Form()] = False,
) -> dict[str, Any]:
    """Who read the client records of a leaked file (or of complaints)."""
    web = web_of(request)
    return await attribute_upload(web, principal, file, request.app.state.max_upload, complaints)


# -- cases ------------------------------------------------------------------------


@router.get("/cases")
def cases(principal: CaseReader, request: Request) -> list[CaseOut]:
    web = web_of(request)
    return [CaseOut.model_validate(shown(c, web.zone)) for c in web.cases(principal.actor)]


@router.post("/cases", status_code=201)
def new_case(body: CaseIn, principal: CaseManager, request: Request) -> CaseOut:
    web = web_of(request)
    return CaseOut.model_validate(shown(web.new_case(principal.actor, body.title), web.zone))


@router.get("/cases/{case_id}")
def case(case_id: str, principal: CaseReader, request: Request) -> CaseDetail:
    web = web_of(request)
    return CaseDetail.model_validate(shown(web.case_file(principal.actor, case_id), web.zone))


@router.post("/cases/{case_id}/items", status_code=201)
def add_item(case_id: str, body: ItemIn, principal: CaseManager, request: Request) -> ItemOut:
    seq = web_of(request).add_item(principal.actor, case_id, body.kind, body.ref, body.note)
    return ItemOut(case_id=case_id, seq=seq)


@router.post("/cases/{case_id}/close")
def close_case(case_id: str, principal: CaseManager, request: Request) -> CaseOut:
    web = web_of(request)
    return CaseOut.model_validate(shown(web.close_case(principal.actor, case_id), web.zone))


@router.get(
    "/cases/{case_id}/export",
    response_class=Response,
    responses={200: {"content": {"application/zip": {}}, "description": "The case's zip"}},
)
def export_case(case_id: str, principal: Exporter, request: Request) -> Response:
    """The case as a zip a court can check (manifest with SHA-256 of every file)."""
    data = web_of(request).export_case(principal.actor, case_id)
    return Response(
        data,
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{case_id}.zip"'},
    )


# -- audit ------------------------------------------------------------------------


@router.get("/audit")
def audit_trail(
    principal: AuditReader,
    request: Request,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> list[AuditRow]:
    web = web_of(request)
    rows = web.audit_entries(principal.actor, limit)
    return [AuditRow.model_validate(shown(r, web.zone)) for r in rows]


@router.get("/audit/verify")
def audit_verify(principal: AuditVerifier, request: Request) -> Verified:
    web = web_of(request)
    return Verified.model_validate(shown(web.audit_verify(principal.actor), web.zone))


# -- users --------------------------------------------------------------------------


@router.get("/users")
def users(principal: Admin, request: Request) -> list[UserOut]:
    web = web_of(request)
    return [user_out(web, u) for u in web.users(principal.actor)]


@router.post("/users", status_code=201)
def new_user(body: UserIn, principal: Admin, request: Request) -> UserOut:
    web = web_of(request)
    user = web.add_user(principal.actor, body.username, body.password, body.role, body.team)
    return user_out(web, user)


@router.patch("/users/{username}")
def change_user(username: str, body: UserChange, principal: Admin, request: Request) -> UserOut:
    """Change a user's role, team or disabled flag; ``"locked": false`` lifts a
    sign-in lockout. An admin cannot give their own account an evidence role."""
    web = web_of(request)
    user = web.change_user(
        principal.actor,
        username,
        role=body.role,
        team=body.team,
        disabled=body.disabled,
        unlock=body.locked is False,
    )
    return user_out(web, user)


__all__ = ["MAX_UPLOAD", "router"]
