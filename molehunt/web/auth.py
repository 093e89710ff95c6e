"""Who is asking: the session behind a request, its role, and the CSRF check.

A request is signed in by ``Authorization: Bearer TOKEN`` (API clients) or the
``molehunt_session`` cookie (browsers). Cookie-signed unsafe requests must also
carry the session's CSRF token (form field ``csrf`` or header ``X-CSRF-Token``):
the cookie is sent by the browser whatever page made the request, a header or
field only by our own pages. Every refusal is written to the audit trail.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import HTTPException, Request
from starlette.concurrency import run_in_threadpool

from molehunt.investigate.permissions import roles_for
from molehunt.models import Actor, User
from molehunt.web.service import WebService

COOKIE = "molehunt_session"
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True, slots=True)
class Principal:
    """A signed-in user and how they signed this request."""

    user: User
    token: str
    csrf: str
    by_cookie: bool

    @property
    def actor(self) -> Actor:
        """Who asks the service: the user, via ``page`` (cookie) or ``api`` (bearer)."""
        return Actor.of(self.user, "page" if self.by_cookie else "api")


def web_of(request: Request) -> WebService:
    web = request.app.state.web
    assert isinstance(web, WebService)
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
    found = web_of(request).session(token)
    if found is None:
        return None
    return Principal(found[0], token, found[1], by_cookie)


def deny(web: WebService, request: Request, who: str, status: int, detail: str) -> HTTPException:
    """The gate's refusal (401/403), audited ``denied`` with what was asked."""
    web.audit(who, "denied", f"{request.method} {request.url.path}"[:200], None)
    request.state.audited = True
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return HTTPException(status, detail, headers=headers)


def address(request: Request) -> str:
    """The peer's address (a proxy's ``X-Forwarded-For`` is not trusted: anyone can send it)."""
    return request.client.host if request.client else "unknown"


async def _csrf_sent(request: Request) -> str | None:
    sent = request.headers.get("x-csrf-token")
    if sent:
        return sent
    kind = request.headers.get("content-type", "")
    if kind.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        value = (await request.form()).get("csrf")
        return value if isinstance(value, str) else None
    return None


def signed_in(action: str) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency: the principal when their role may take ``action``
    (:mod:`molehunt.investigate.permissions`); else 401/403, audited ``denied``."""
    roles = roles_for(action)

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
