"""The FastAPI application: API, pages, static files, security headers, error pages."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from molehunt import __version__
from molehunt.config import Settings
from molehunt.store import Store
from molehunt.watch import Follower
from molehunt.web import api, pages
from molehunt.web.auth import ANYONE, signed_in
from molehunt.web.service import Web

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
    web = Web(store, settings, alerts=alerts)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        follower = None
        if follow:
            follower = Follower(
                store,
                settings,
                follow,
                interval=interval,
                lock=web.lock,
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

    @app.middleware("http")
    async def security_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        declared = request.headers.get("content-length", "")
        # Refused before the body is read: the form parser would spool it all to disk.
        if declared.isdigit() and int(declared) > max_upload + _FORM_OVERHEAD:
            too_big = f"the request is over {max_upload} bytes"
            response: Response = (
                JSONResponse({"detail": too_big}, status_code=413)
                if _is_api(request)
                else pages.error_page(request, 413, too_big)
            )
        else:
            response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        if not request.url.path.startswith("/static/"):
            response.headers["Cache-Control"] = "no-store"
        return response

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if _is_api(request):
            return JSONResponse(
                {"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers
            )
        if exc.status_code == 401:
            return RedirectResponse("/login", status_code=303)
        return pages.error_page(request, exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        if _is_api(request):
            from fastapi.encoders import jsonable_encoder

            return JSONResponse({"detail": jsonable_encoder(exc.errors())}, status_code=422)
        return pages.error_page(request, 422, "the form was not filled in as expected")

    @app.get("/healthz")
    def healthz() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/openapi.json", include_in_schema=False, dependencies=[Depends(signed_in(*ANYONE))])
    def openapi() -> dict[str, Any]:
        return app.openapi()

    app.include_router(api.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    return app
