"""``molehunt case``: case files from the command line, through the service
(:class:`molehunt.investigate.service.Investigation`) as on the web.

The actor of every audit row is the operating-system user (role ``operator``, every
team's cases; ``--team`` acts for one team), as for the other verbs; the rows are
the web's (``case new``, ``case list``, ``case view``, ``case add``, ``case close``,
``case export``).
``case verify`` checks an export zip against its manifest and needs no store.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from molehunt.cli._common import Format, FormatOption, investigation, settings_of, verbs

if TYPE_CHECKING:
    from molehunt.config import Settings
    from molehunt.models import Actor
    from molehunt.store import Store

#: What a case item may be (:data:`molehunt.cases.KINDS`, which loads the store; a
#: test keeps the two equal).
KINDS = ("person", "finding", "event", "attribution")

case_app = verbs("Case files: collect evidence, close, export for court, verify an export.")
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

#: The old spelling of ``--format json``, kept working (hidden from the help).
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.", hidden=True)]


def _open(settings: Settings) -> Store:
    """The store itself, for ``case verify`` (a check that shows no evidence and
    writes no audit row)."""
    from molehunt.investigate.local import refuse_write
    from molehunt.store import Store

    refuse_write(settings.db)
    return Store.open(settings.db, memory_limit=settings.memory_limit)


def _operator(team: str | None = None) -> Actor:
    """The CLI's actor (every team's cases), or acting for ``team`` alone."""
    from molehunt.investigate.service import operator

    return dataclasses.replace(operator(), team=team)


def _fail(message: str) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(1)


def _print_json(data: Any) -> None:
    out.print_json(json.dumps(data, default=str, ensure_ascii=False))


@case_app.command("new")
def new(
    ctx: typer.Context,
    title: Annotated[str, typer.Argument(help="What the case is about (no personal data).")],
    team: Annotated[str, typer.Option(help="Team that owns the case (only it sees it).")],
) -> None:
    """Open a new case; prints its id."""
    with investigation(ctx) as service:
        case = service.new_case(_operator(team), title)
    out.print(case.case_id, highlight=False)


@case_app.command("list")
def list_(
    ctx: typer.Context,
    team: Annotated[str | None, typer.Option(help="Only this team's cases.")] = None,
    fmt: FormatOption = Format.table,
    as_json: JsonOption = False,
) -> None:
    """Cases, newest first."""
    with investigation(ctx) as service:
        found = service.cases(_operator(team))
    if as_json or fmt is Format.json:
        _print_json([c.as_dict() for c in found])
        return
    table = Table("case", "title", "team", "status", "created by", "created at")
    for c in found:
        table.add_row(c.case_id, c.title, c.team, c.status, c.created_by, c.created_at.isoformat())
    out.print(table)


@case_app.command("show")
def show(
    ctx: typer.Context,
    case_id: Annotated[str, typer.Argument(help="Case id, like C-2026-0001.")],
    fmt: FormatOption = Format.table,
    as_json: JsonOption = False,
) -> None:
    """A case and its items (free text masked)."""
    with investigation(ctx) as service:
        shown = service.case_file(_operator(), case_id)
    case = shown.case
    items = [dataclasses.asdict(i) for i in shown.items]
    if as_json or fmt is Format.json:
        _print_json({**case.as_dict(), "items": items})
        return
    out.print(f"{case.case_id}  {case.title}  team {case.team}  {case.status}", highlight=False)
    table = Table("#", "kind", "ref", "note", "added by", "added at")
    for i in shown.items:
        table.add_row(str(i.seq), i.kind, i.ref, i.note or "", i.added_by, str(i.added_at))
    out.print(table)


@case_app.command("add")
def add(
    ctx: typer.Context,
    case_id: Annotated[str, typer.Argument(help="Case id.")],
    kind: Annotated[str, typer.Option(help=f"One of: {', '.join(KINDS)}.")],
    ref: Annotated[str, typer.Option(help="Person, finding or event id.")],
    note: Annotated[str | None, typer.Option(help="Why it matters.")] = None,
) -> None:
    """Add one piece of evidence to an open case; prints its number. An event must be
    in the store: the case keeps its masked summary."""
    with investigation(ctx) as service:
        seq = service.add_item(_operator(), case_id, kind, ref, note)
    out.print(f"{case_id} #{seq}", highlight=False)


@case_app.command("close")
def close(
    ctx: typer.Context,
    case_id: Annotated[str, typer.Argument(help="Case id.")],
) -> None:
    """Close a case: it takes no more items."""
    with investigation(ctx) as service:
        service.close_case(_operator(), case_id)
    out.print(f"{case_id} closed", highlight=False)


@case_app.command("export")
def export(
    ctx: typer.Context,
    case_id: Annotated[str, typer.Argument(help="Case id.")],
    dest: Annotated[Path, typer.Option("--out", help="Zip file to write (must not exist).")],
) -> None:
    """Write the case as a zip a court can check (``molehunt case verify``)."""
    if dest.exists():
        raise _fail(f"{dest} exists: not overwritten")
    with investigation(ctx) as service:
        data = service.export_case(_operator(), case_id)
    # Evidence: readable by its owner only, and never written over.
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    out.print(f"wrote {dest} ({len(data)} bytes)", highlight=False)


@case_app.command("verify")
def verify(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="An export zip.")],
) -> None:
    """Check an export zip: every file's SHA-256 and size against the manifest, and
    the manifest's Ed25519 signature. With the store at hand (``--db``), also that
    the signing key is the store's and that the store's audit trail holds this export."""
    from molehunt import cases
    from molehunt.export import verify_export

    if not path.is_file():
        raise _fail(f"no such file: {path}")
    settings = settings_of(ctx)
    if settings.db.exists():
        with _open(settings) as store:
            problems = cases.verify_against_store(store, path.read_bytes())
        checked = f"every file matches the manifest, signed by the store {settings.db}'s key"
    else:
        problems = verify_export(path.read_bytes())
        checked = "every file matches the manifest and its signature (no store to name the key)"
    if problems:
        for p in problems:
            err.print(f"[red]changed:[/red] {p}", highlight=False)
        raise typer.Exit(1)
    out.print(f"{path}: {checked}", highlight=False)
