"""The web face: ``serve`` and the web users (``molehunt user ...``)."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from molehunt.cli._common import (
    Format,
    FormatOption,
    app,
    ctx_of,
    investigation,
    out,
    print_json,
    require_existing,
)

if TYPE_CHECKING:
    from molehunt.config import Settings


def serve_demo(settings: Settings) -> None:
    """The web UI over the demo's store, with a user ``demo`` whose password is shown once."""
    import secrets

    from molehunt.investigate.service import Investigation, operator
    from molehunt.investigate.users import get_user
    from molehunt.store import Store

    password = secrets.token_urlsafe(12)
    with Store.open(settings.db, memory_limit=settings.memory_limit) as store:
        service = Investigation(store, settings)
        if get_user(service.db(), "demo") is None:
            service.add_user(operator(), "demo", password, "investigator", "demo")
        else:
            service.set_password(operator(), "demo", password)
    out.print(
        "Web UI at http://127.0.0.1:8000 : sign in as [bold]demo[/bold] with password "
        f"[bold]{password}[/bold] (shown only now). Ctrl-C stops it."
    )
    _run_server(settings, "127.0.0.1", 8000, https_only=False)


def _run_server(
    settings: Settings,
    host: str,
    port: int,
    *,
    https_only: bool,
    follow: list[Path] | None = None,
    interval: float = 60.0,
    alerts: Path | None = None,
) -> None:
    import uvicorn

    from molehunt.investigate import local as remote
    from molehunt.store import Store
    from molehunt.web import create_app

    with Store.open(settings.db, memory_limit=settings.memory_limit) as store:
        app = create_app(
            store,
            settings,
            https_only=https_only,
            follow=follow or (),
            interval=interval,
            alerts=alerts,
        )
        # Where the command line's read verbs find this server (molehunt.investigate.local).
        loopback = remote.loopback_for(host)
        token = None if loopback is None else remote.write_endpoint(settings.db, loopback, port)
        app.state.local_token = token
        try:
            uvicorn.run(app, host=host, port=port, log_level="info", server_header=False)
        finally:
            if token is not None:
                remote.remove_endpoint(settings.db, token)


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8000,
    https_only: Annotated[
        bool,
        typer.Option("--https-only", help="Mark the session cookie Secure (behind a TLS proxy)."),
    ] = False,
    follow: Annotated[
        list[Path] | None,
        typer.Option(help="Also ingest and detect these logs continuously (as `watch` does)."),
    ] = None,
    interval: Annotated[
        float, typer.Option(help="Seconds between --follow rounds.", min=0.0)
    ] = 60.0,
    alerts: Annotated[
        Path | None,
        typer.Option(help="With --follow: append newly flagged people to this JSON-lines file."),
    ] = None,
) -> None:
    """The investigators' web UI and HTTP API over the store (sign in with `molehunt user`)."""
    if follow:
        require_existing(follow)
    _run_server(
        ctx_of(ctx).settings,
        host,
        port,
        https_only=https_only,
        follow=follow,
        interval=interval,
        alerts=alerts,
    )


user_app = typer.Typer(help="Web UI users: analysts, investigators, auditors, admins.")


class Role(StrEnum):
    analyst = "analyst"
    investigator = "investigator"
    auditor = "auditor"
    admin = "admin"


@user_app.command("add")
def user_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="User name.")],
    role: Annotated[Role, typer.Option(help="What the user may do.")],
    team: Annotated[str, typer.Option(help="Team: cases are shared within a team.")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
) -> None:
    """Add a web user (the password is asked for, never given on the command line)."""
    from molehunt.investigate.service import operator

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    with investigation(ctx) as service:
        user = service.add_user(operator(), name, password, role.value, team)
    out.print(f"added {user.username} ({user.role}, team {user.team})")


@user_app.command("list")
def user_list(ctx: typer.Context, fmt: FormatOption = Format.table) -> None:
    """List web users."""
    from molehunt.investigate.service import operator

    with investigation(ctx) as service:
        users = service.users(operator())
    if fmt is Format.json:
        print_json(
            [
                {
                    "username": u.username,
                    "role": u.role,
                    "team": u.team,
                    "disabled": u.disabled,
                    "created_at": u.created_at.isoformat(),
                }
                for u in users
            ]
        )
        return
    table = Table("user", "role", "team", "state", "created")
    for u in users:
        state = "disabled" if u.disabled else "enabled"
        table.add_row(u.username, u.role, u.team, state, u.created_at.isoformat())
    out.print(table)


@user_app.command("disable")
def user_disable(
    ctx: typer.Context, name: Annotated[str, typer.Argument(help="User name.")]
) -> None:
    """Disable a web user: they cannot sign in, and their sessions end."""
    from molehunt.investigate.service import operator

    with investigation(ctx) as service:
        service.change_user(operator(), name, disabled=True)
    out.print(f"disabled {name}")


@user_app.command("unlock")
def user_unlock(
    ctx: typer.Context, name: Annotated[str, typer.Argument(help="User name.")]
) -> None:
    """Lift a sign-in lockout (10 wrong passwords in a row lock a web user out).
    While `serve` runs, an admin does this on the web Users page instead."""
    from molehunt.investigate.service import operator
    from molehunt.investigate.users import is_locked

    with investigation(ctx) as service:
        was = is_locked(service.db(), name)
        service.unlock(operator(), name)
    out.print(f"unlocked {name}" if was else f"{name} was not locked out")
