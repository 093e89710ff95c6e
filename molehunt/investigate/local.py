"""Read verbs while ``molehunt serve`` holds the store.

DuckDB lets one process open a store file, even to read. So ``serve`` writes a local
endpoint file beside the store, ``<db>.serve`` (mode 0600: its process id, a
loopback address and port, and a random token), and removes it when it stops. A read
verb that finds a live endpoint (the process is alive and the port answers) sends its
ask there with the token in the ``X-Molehunt-Token`` header; the server answers it
through the same function the command line calls (:mod:`molehunt.investigate.reads`),
which asks its audited, masked service as the actor ``cli:<os user>``. A stale file
(process gone, or nothing listening) is ignored, and removed when its process is gone.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from molehunt.errors import MolehuntError, StoreError

TOKEN_HEADER = "X-Molehunt-Token"  # noqa: S105 - the header's name
PATH = "/local/cli"
#: Seconds a read may take on the server (a long ranking history is seconds).
TIMEOUT = 600.0


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A running server's local endpoint, as its file says."""

    pid: int
    host: str
    port: int
    token: str

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{PATH}"


def endpoint_file(db: Path) -> Path:
    """``<db>.serve``, beside the store."""
    return db.with_name(db.name + ".serve")


def loopback_for(host: str) -> str | None:
    """The loopback address a local client reaches a server listening on ``host`` by,
    or None when it listens on one other address only."""
    if host in ("", "0.0.0.0", "127.0.0.1", "localhost"):  # noqa: S104 - names, no bind
        return "127.0.0.1"
    if host in ("::", "::1"):
        return "::1"
    return None


def write_endpoint(db: Path, host: str, port: int) -> str:
    """Write ``<db>.serve`` (owner-only) for a server of this process; its token."""
    token = secrets.token_urlsafe(32)
    path = endpoint_file(db)
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump({"pid": os.getpid(), "host": host, "port": port, "token": token}, f)
    return token


def remove_endpoint(db: Path, token: str) -> None:
    """Remove ``<db>.serve`` if it is still this server's."""
    found = _read(endpoint_file(db))
    if found is not None and secrets.compare_digest(found.token, token):
        endpoint_file(db).unlink(missing_ok=True)


def _read(path: Path) -> Endpoint | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Endpoint(int(data["pid"]), str(data["host"]), int(data["port"]), str(data["token"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True


def _listening(endpoint: Endpoint) -> bool:
    try:
        with socket.create_connection((endpoint.host, endpoint.port), timeout=2.0):
            return True
    except OSError:
        return False


def live_endpoint(db: Path) -> Endpoint | None:
    """The endpoint of the server holding ``db``, if one is running; a file left by
    a server that died is removed."""
    path = endpoint_file(db)
    if not path.exists():
        return None
    found = _read(path)
    if found is None:
        return None
    if not _alive(found.pid):
        path.unlink(missing_ok=True)
        return None
    return found if _listening(found) else None


def refuse_write(db: Path) -> None:
    """A verb that writes cannot run while a server holds the store: say what to do."""
    found = live_endpoint(db)
    if found is not None:
        raise StoreError(
            f"the store {db} is in use by `molehunt serve` (PID {found.pid}): a DuckDB store "
            "has one process at a time. Read verbs (status, who, accounts, risk, timeline, "
            "audit) go through the server; for this one, use its web UI or HTTP API, or stop "
            "the server and run this command again"
        )


def ask_server(endpoint: Endpoint, verb: str, ask: dict[str, Any], user: str) -> Any | None:
    """The server's answer to a read verb; None when it cannot be reached (it
    stopped meanwhile): the caller then opens the store itself."""
    body = json.dumps({"verb": verb, "ask": ask, "user": user}).encode()
    request = urllib.request.Request(  # noqa: S310 - a loopback http URL we built
        endpoint.url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", TOKEN_HEADER: endpoint.token},
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:  # noqa: S310
            return json.loads(response.read())["answer"]
    except urllib.error.HTTPError as e:
        raise MolehuntError(_refusal(e)) from e
    except (urllib.error.URLError, ConnectionError):
        return None


def _refusal(error: urllib.error.HTTPError) -> str:
    try:
        detail = json.loads(error.read()).get("detail")
    except (ValueError, AttributeError):
        detail = None
    if error.code == 400 and isinstance(detail, str):
        return detail  # the verb's own error, as it would have been said here
    return f"the running `molehunt serve` refused the request ({error.code}: {detail})"
