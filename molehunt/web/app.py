"""The FastAPI application: API, pages, static files, security headers, error pages."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from molehunt import __version__
from molehunt.config import Settings
from molehunt.errors import MolehuntError, Throttled, Unauthenticated, http_status
from molehunt.investigate.permissions import roles_for
from molehunt.store import Store
from molehunt.watch import Follower
from molehunt.web import api, local, pages
from molehunt.web.auth import deny, lookup, signed_in
from molehunt.web.service import WebService

HERE = Path(__file__).resolve().parent

#: Sent with every response: no inline script, no framing, nothing from elsewhere.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


#: Room for the multipart framing and form fields around an upload of the largest size.
_FORM_OVERHEAD = 64 * 1024


def _is_api(request: Request) -> bool:
    path = request.url.path
    return path.startswith("/api/") or path in ("/api", "/healthz", "/openapi.json")


#: The routes that take a file, and who may send one.
UPLOADS = {
    ("POST", "/api/attribute"): roles_for("attribute"),
    ("POST", "/attribute"): roles_for("attribute"),
}


class _TooLarge(Exception):
    """The request's body went over the cap while it was being received."""


class BodyGuard:
    """Before any byte of a body is read: an upload route's sender must be signed in
    with a role that may upload (else 401/403, audited, and the body is never read),
    and a declared ``Content-Length`` over the cap is a 413. While the body streams
    in (chunked, or lying about its length), the bytes actually received are counted
    and the request is cut off with a 413 as soon as they pass the cap."""

    def __init__(self, app: ASGIApp, *, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        too_big = f"the request is over {self.limit - _FORM_OVERHEAD} bytes"
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.limit:
            await self._refuse(request, 413, too_big, send)
            return
        roles = UPLOADS.get((request.method, request.url.path))
        if roles is not None:
            principal = await run_in_threadpool(lookup, request)
            if principal is None or principal.user.role not in roles:
                who = "anonymous" if principal is None else principal.user.username
                status = 401 if principal is None else 403
                detail = "sign in first" if principal is None else "you may not upload files"
                web = request.app.state.web
                await run_in_threadpool(deny, web, request, who, status, detail)
                await self._refuse(request, status, detail, send)
                return
        received = 0
        over = False
        started = False

        async def counting() -> Message:
            nonlocal received, over
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    over = True
                    request.state.audited = True  # the 413 below is audited, not the app's
                    raise _TooLarge
            return message

        async def guarded(message: Message) -> None:
            nonlocal started
            if over:
                return  # the app's answer to a body cut short: the 413 replaces it
            started = started or message["type"] == "http.response.start"
            await send(message)

        with suppress(_TooLarge):
            await self.app(scope, counting, guarded)
        if over and not started:
            await self._refuse(request, 413, too_big, send)

    async def _refuse(self, request: Request, status: int, detail: str, send: Send) -> None:
        if status == 413:
            web = request.app.state.web
            await run_in_threadpool(
                web.audit, _actor(request), "refused", f"{_asked(request)}: 413", None
            )
        response: Response
        if _is_api(request):
            headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
            response = JSONResponse({"detail": detail}, status_code=status, headers=headers)
        elif status == 401:
            response = RedirectResponse("/login", status_code=303)
        else:
            response = await run_in_threadpool(pages.error_page, request, status, detail)
        # The unread body is left behind: the server closes the connection after this.
        response.headers["Connection"] = "close"
        await response(request.scope, _nothing, send)


async def _nothing() -> Message:
    return {"type": "http.disconnect"}


def _asked(request: Request) -> str:
    return f"{request.method} {request.url.path}"[:200]


def _actor(request: Request) -> str:
    principal = getattr(request.state, "principal", None)
    if principal is None:
        principal = lookup(request)
    return "anonymous" if principal is None else principal.user.username


#: Asked for by browsers on their own: a 404 there is nobody's refusal.
_UNAUDITED = ("/favicon.ico", "/static/", "/robots.txt")


def audit_refusal(request: Request, status: int, detail: str) -> None:
    """Every refusal leaves an audit row (401/403 of the sign-in gate and sign-in
    itself write their own): who, what was asked, the status and why."""
    if getattr(request.state, "audited", False) or request.url.path.startswith(_UNAUDITED):
        return
    request.state.audited = True
    web = request.app.state.web
    assert isinstance(web, WebService)
    web.audit(_actor(request), "refused", f"{_asked(request)}: {status} {detail}"[:300], None)


def create_app(
    store: Store,
    settings: Settings,
    *,
    https_only: bool = False,
    max_upload: int = api.MAX_UPLOAD,
    follow: Sequence[Path] = (),
    interval: float = 60.0,
    alerts: Path | None = None,
) -> FastAPI:
    """The web UI and HTTP API over one open store; with ``follow``, the server also
    ingests and detects those logs every ``interval`` seconds (:mod:`molehunt.watch`),
    since the store has one writer and the server is it; ``alerts`` names a JSON-lines
    file that gets an alert per person a round newly flags."""
    web = WebService(store, settings, alerts=alerts)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        follower = None
        if follow:
            follower = Follower(
                web.writer(),
                settings,
                follow,
                interval=interval,
                lock=web.rounds,
                on_round=web.watched,
            )
            follower.start()
        app.state.follower = follower
        try:
            yield
        finally:
            if follower is not None:
                follower.stop()

    app = FastAPI(
        lifespan=lifespan,
        title="molehunt",
        version=__version__,
        description="Insider data theft: risk, timelines, attribution, cases, audit trail.",
        docs_url=None,  # Swagger UI loads from a CDN: nothing leaves the building
        redoc_url=None,
        openapi_url=None,
    )
    app.state.web = web
    app.state.https_only = https_only
    app.state.max_upload = max_upload
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.autoescape = True
    templates.env.filters["when"] = pages.when
    app.state.templates = templates

    # Inside the headers middleware below, so its answers carry the same headers.
    app.add_middleware(BodyGuard, limit=max_upload + _FORM_OVERHEAD)

    @app.middleware("http")
    async def security_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        if not request.url.path.startswith("/static/"):
            response.headers["Cache-Control"] = "no-store"
        return response

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if 400 <= exc.status_code < 500:
            await run_in_threadpool(audit_refusal, request, exc.status_code, str(exc.detail))
        if _is_api(request):
            return JSONResponse(
                {"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers
            )
        if exc.status_code == 401:
            return RedirectResponse("/login", status_code=303)
        return pages.error_page(request, exc.status_code, str(exc.detail))

    @app.exception_handler(MolehuntError)
    async def refused(request: Request, exc: MolehuntError) -> Response:
        """Every error of the tree (:mod:`molehunt.errors`) becomes its status here,
        and only here; a refusal the service did not audit yet is audited."""
        status = http_status(exc)
        if exc.audited:
            request.state.audited = True
        headers: dict[str, str] = {}
        if isinstance(exc, Unauthenticated):
            headers["WWW-Authenticate"] = "Bearer"
        if isinstance(exc, Throttled):
            headers["Retry-After"] = str(exc.retry_after)
        return await http_error(request, StarletteHTTPException(status, str(exc), headers))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        await run_in_threadpool(audit_refusal, request, 422, "invalid request")
        if _is_api(request):
            from fastapi.encoders import jsonable_encoder

            return JSONResponse({"detail": jsonable_encoder(exc.errors())}, status_code=422)
        return pages.error_page(request, 422, "the form was not filled in as expected")

    @app.get("/healthz")
    def healthz() -> dict[str, bool]:
        return {"ok": True}

    @app.get(
        "/openapi.json", include_in_schema=False, dependencies=[Depends(signed_in("view-self"))]
    )
    def openapi() -> dict[str, Any]:
        return app.openapi()

    app.include_router(api.router)
    app.include_router(pages.router)
    app.include_router(local.router)  # the command line's read verbs (molehunt.investigate.local)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    return app
