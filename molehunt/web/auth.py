"""Who is asking: the session behind a request, its role, and the CSRF check.

A request is signed in by ``Authorization: Bearer TOKEN`` (API clients) or the
``molehunt_session`` cookie (browsers). Cookie-signed unsafe requests must also
carry the session's CSRF token (form field ``csrf`` or header ``X-CSRF-Token``):
the cookie is sent by the browser whatever page made the request, a header or
field only by our own pages. Every refusal is written to the audit trail.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import HTTPException, Request
from starlette.concurrency import run_in_threadpool

from molehunt.web.service import Web
from molehunt.web.users import (
    User,
    check_password,
    get_user,
    is_locked,
    lock_user,
    new_session,
    session_user,
)

COOKIE = "molehunt_session"
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
ANYONE = ("analyst", "investigator", "auditor", "admin")
EVIDENCE = ("analyst", "investigator")
INVESTIGATOR = ("investigator",)
AUDITOR = ("auditor",)
ADMIN = ("admin",)
STATUS = ("analyst", "investigator", "admin")


@dataclass(frozen=True, slots=True)
class Principal:
    """A signed-in user and how they signed this request."""

    user: User
    token: str
    csrf: str
    by_cookie: bool


def web_of(request: Request) -> Web:
    web = request.app.state.web
    assert isinstance(web, Web)
    return web


def request_token(request: Request) -> tuple[str | None, bool]:
    """(token, came by cookie)."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip(), False
    cookie = request.cookies.get(COOKIE)
    return (cookie, True) if cookie else (None, False)


def lookup(request: Request) -> Principal | None:
    token, by_cookie = request_token(request)
    if token is None:
        return None
    web = web_of(request)
    found = session_user(web.db(), token)
    if found is None:
        return None
    return Principal(found[0], token, found[1], by_cookie)


def deny(web: Web, request: Request, who: str, status: int, detail: str) -> HTTPException:
    web.audit(who, "denied", f"{request.method} {request.url.path}"[:200], None)
    request.state.audited = True
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return HTTPException(status, detail, headers=headers)


def address(request: Request) -> str:
    """The peer's address (a proxy's ``X-Forwarded-For`` is not trusted: anyone can send it)."""
    return request.client.host if request.client else "unknown"


LOCKED = "this account is locked after too many wrong passwords: ask an admin to unlock it"
WRONG = "wrong user name or password"


def sign_in(web: Web, request: Request, username: str, password: str, via: str) -> Principal:
    """Check a password under the throttle and open a session; HTTPException 429
    (back off: ``Retry-After``), 423 (locked out) or 401 (wrong), each audited.
    The argon2 check holds no lock: other requests go on meanwhile."""
    db = web.db()
    name = username[:64]
    where = address(request)
    request.state.audited = True
    # The store is the truth about real users' lockouts (an admin may have lifted one
    # from the CLI); unknown names are locked in memory only.
    if is_locked(db, name):
        web.throttle.lock(name)
    elif get_user(db, name) is not None:
        web.throttle.lifted(name)
    verdict = web.throttle.check(name, where)
    if verdict.locked:
        web.audit("anonymous", "sign-in refused", f"as {name} from {where}: locked out", None)
        raise HTTPException(423, LOCKED)
    if not verdict.allowed:
        seconds = max(1, math.ceil(verdict.wait))
        web.audit("anonymous", "sign-in refused", f"as {name} from {where}: wait {seconds} s", None)
        raise HTTPException(
            429,
            f"too many wrong passwords: try again in {seconds} s",
            {"Retry-After": str(seconds)},
        )
    user = check_password(db, username, password)
    if user is None:
        failures = web.throttle.failed(name, where)
        web.audit("anonymous", "sign-in failed", f"as {name} from {where}", None)
        if failures >= web.throttle.lock_after:
            lock_user(db, name, failures)
            web.audit("system", "sign-in lockout", f"{name} after {failures} failures", None)
        raise HTTPException(401, WRONG, {"WWW-Authenticate": "Bearer"})
    web.throttle.succeeded(name, where)
    token, csrf = new_session(db, user)
    web.audit(user.username, "sign-in", via, None)
    return Principal(user, token, csrf, by_cookie=via == "page")


async def _csrf_sent(request: Request) -> str | None:
    sent = request.headers.get("x-csrf-token")
    if sent:
        return sent
    kind = request.headers.get("content-type", "")
    if kind.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        value = (await request.form()).get("csrf")
        return value if isinstance(value, str) else None
    return None


def signed_in(*roles: str) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency: the principal when their role is one of ``roles``; else 401/403."""

    async def dependency(request: Request) -> Principal:
        web = web_of(request)
        principal = await run_in_threadpool(lookup, request)
        if principal is None:
            raise await run_in_threadpool(deny, web, request, "anonymous", 401, "sign in first")
        request.state.principal = principal
        who = principal.user.username
        if principal.user.role not in roles:
            raise await run_in_threadpool(
                deny, web, request, who, 403, f"a {principal.user.role} may not do this"
            )
        if principal.by_cookie and request.method in UNSAFE:
            sent = await _csrf_sent(request)
            if sent is None or not secrets.compare_digest(sent, principal.csrf):
                raise await run_in_threadpool(
                    deny, web, request, who, 403, "missing or wrong CSRF token"
                )
        return principal

    return dependency
