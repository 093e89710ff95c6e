"""``POST /local/cli``: the command line's read verbs while the server holds the store.

DuckDB lets one process open the store, so ``molehunt risk`` and the other read
verbs ask the running server instead (:mod:`molehunt.investigate.local`). The route answers
loopback clients only (others get a 404), and only with the token ``serve`` wrote to
``<db>.serve`` (mode 0600) in the ``X-Molehunt-Token`` header, compared in constant
time; a wrong or missing token is a 403 with an audit row. It runs an allow-listed
read verb through the same function the command line calls
(:data:`molehunt.investigate.reads.READS`), which asks the server's audited, masked
service as the actor ``cli:<os user>`` (role ``operator``: the store's owner, who alone
can read the token), and answers ``{"answer": ...}``; the verb's own error is a 400
``{"detail": ...}`` that the command prints as it would have (audited once: by the
service when it refused, else here).
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import re
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from molehunt.errors import MolehuntError
from molehunt.investigate.local import PATH, TOKEN_HEADER
from molehunt.investigate.permissions import OPERATOR
from molehunt.investigate.reads import READS
from molehunt.models import Actor
from molehunt.web.service import WebService

router = APIRouter(include_in_schema=False)

#: The largest ask accepted (an ask is a few options).
MAX_BODY = 16 * 1024
_USER = re.compile(r"[A-Za-z0-9._@-]{1,64}")


def _loopback(request: Request) -> bool:
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _token_ok(request: Request) -> bool:
    expected = getattr(request.app.state, "local_token", None)
    given = request.headers.get(TOKEN_HEADER, "")
    if not isinstance(expected, str):
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


async def _refuse(
    request: Request, status: int, detail: str, who: str = "anonymous"
) -> JSONResponse:
    """A refusal in JSON (the command line prints its detail), with its audit row."""
    web = request.app.state.web
    request.state.audited = True
    target = f"POST {PATH}: {status} {detail}"[:300]
    await run_in_threadpool(web.audit, who, "refused", target, None)
    return JSONResponse({"detail": detail}, status_code=status)


@router.post(PATH)
async def local_cli(request: Request) -> JSONResponse:
    """One read verb for the command line of the server's own machine."""
    web = request.app.state.web
    assert isinstance(web, WebService)
    if not _loopback(request) or getattr(request.app.state, "local_token", None) is None:
        raise HTTPException(404, "Not Found")
    body = await request.body()
    if len(body) > MAX_BODY:
        return await _refuse(request, 413, "the request is too large")
    try:
        sent: Any = json.loads(body)
    except ValueError:
        sent = None
    sent = sent if isinstance(sent, dict) else {}
    verb, user = sent.get("verb"), sent.get("user")
    actor = f"cli:{user}" if isinstance(user, str) and _USER.fullmatch(user) else "cli:unknown"
    if not _token_ok(request):
        why = f"wrong token ({str(verb)[:40]} as {actor})"
        return await _refuse(request, 403, why)
    read = READS.get(verb) if isinstance(verb, str) else None
    if read is None:
        why = f"not a read verb the server answers: {str(verb)[:40]}"
        return await _refuse(request, 400, why, actor)
    try:
        ask = read.ask.model_validate(sent.get("ask"))
    except ValidationError as e:
        return await _refuse(request, 400, f"invalid ask for {verb}: {e.errors()[0]['msg']}", actor)

    # The store's owner (they hold the token, readable by them alone): the CLI's role.
    who = Actor(actor, OPERATOR, None, "cli")
    try:
        found = await run_in_threadpool(read.answer, web, who, ask)
    except MolehuntError as e:
        if e.audited:  # the service wrote its refusal's row
            request.state.audited = True
            return JSONResponse({"detail": str(e)}, status_code=400)
        return await _refuse(request, 400, str(e), actor)
    return JSONResponse({"answer": found})
