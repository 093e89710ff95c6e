"""Evidence from files and canaries: ``scan``, ``attribute``, ``complaints``,
``canary plant``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from molehunt.cli._common import (
    Format,
    FormatOption,
    app,
    audit_row,
    ctx_of,
    err,
    file_target,
    out,
    print_json,
    require_existing,
)

if TYPE_CHECKING:
    pass


@app.command()
def scan(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(help="Files or folders to scan.")],
    host: Annotated[str | None, typer.Option(help="Host the files came from.")] = None,
    detail: Annotated[bool, typer.Option(help="List every finding, masked.")] = False,
    fmt: FormatOption = Format.table,
) -> None:
    """Find personal data and the company's client records in files (xlsx, csv, docx, pdf, zip)."""
    from molehunt.pii.scan import scan_with_settings

    require_existing(paths)
    settings = ctx_of(ctx).settings
    reports, note = scan_with_settings(settings, paths, host=host, detail=detail)
    if note:
        err.print(f"[yellow]note:[/yellow] {note}")
    on_hosts = [r for r in reports if r.host is not None]
    if settings.db.exists():
        from molehunt.pii.stored import store_scans

        with ctx_of(ctx).open_store() as store:
            if on_hosts:
                stored = store_scans(store, on_hosts)
                err.print(f"stored {stored} new file scan(s) of {len(on_hosts)} on hosts")
            hosts = {r.host for r in on_hosts}
            audit_row(store, "scan", f"{len(reports)} files on {len(hosts)} hosts", len(reports))
    if fmt is Format.json:
        print_json([r.as_json(detail) for r in reports])
        return
    table = Table("path", "kind", "findings", "client records", "verdict", "errors")
    for r in reports:
        found = ", ".join(f"{k} {v}" for k, v in r.findings.items())
        table.add_row(r.path, r.kind, found, str(r.client_records), r.verdict, "; ".join(r.errors))
    out.print(table)
    for r in reports if detail else []:
        for d in r.details or []:
            out.print(f"{r.path}\t{d.type}\t{d.confidence}\t{d.masked}\t{d.location}")


def _attribute(ctx: typer.Context, path: Path, fmt: Format, *, complaints: bool) -> None:
    from molehunt.attribute import attribute as attribute_file
    from molehunt.keys import load_key

    if not path.is_file():
        raise typer.BadParameter(f"no such file: {path}")
    settings = ctx_of(ctx).settings
    with ctx_of(ctx).open_store() as store:
        key = load_key(settings, store)
        result = attribute_file(
            store,
            key,
            path,
            complaints=complaints,
            settings=settings.detection,
            timezone=settings.timezone,
        )
        audit_row(
            store,
            "complaints" if complaints else "attribute",
            file_target(path),
            len(result["suspects"]),
        )
    if fmt is Format.json:
        print_json(result)
        return
    out.print(
        f"{result['records_in_file']} records, {result['client_records']} of our clients, "
        f"{result['non_client_rows']} not clients, {result['damaged']} damaged ID numbers"
    )
    table = Table(
        "rank", "person", "name", "accounts", "hosts", "covered", "window", "score", "with"
    )
    for r in result["suspects"]:
        group = r["group"]
        with_ = (
            ""
            if group is None
            else ", ".join(p for p in group["people"] if p != r["person_id"])
            + f"\n{group['covered']} together ({group['coverage']:.0%})"
        )
        accounts = "\n".join(
            a["account"] + ("" if a["owner_is_person"] else f" (owner {a['owner_id'] or '?'})")
            for a in r["accounts"]
        )
        table.add_row(
            str(r["rank"]),
            r["person_id"] or "?",
            r["name"] or "",
            accounts,
            "\n".join(h["host"] or "?" for h in r["hosts"]),
            f"{r['covered']} ({r['coverage']:.0%})",
            f"{r['first_read']}\n{r['last_read']}",
            f"{r['score']:.1f}",
            with_,
        )
    out.print(table)
    if result["files"]:
        files = Table("host", "file on the host", "written", "leaked records held")
        for f in result["files"]:
            files.add_row(
                f["host"] or "?",
                f["path"],
                f["written"] or "",
                f"{f['covered']} ({f['coverage']:.0%})",
            )
        out.print("Files found on endpoints holding leaked records:")
        out.print(files)


@app.command()
def attribute(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="A leaked file (xlsx, csv, txt, docx, pdf, zip).")],
    fmt: FormatOption = Format.table,
) -> None:
    """Who read the client records of a leaked file: suspects ranked by coverage."""
    _attribute(ctx, path, fmt, complaints=False)


@app.command()
def complaints(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="Phone numbers, ID numbers or client ids.")],
    fmt: FormatOption = Format.table,
) -> None:
    """The common point of compromise of the clients residents complained about."""
    _attribute(ctx, path, fmt, complaints=True)


canary_app = typer.Typer(help="Canary records: made-up clients nobody should read.")


@canary_app.command("plant")
def canary_plant(
    ctx: typer.Context,
    count: Annotated[int, typer.Option(help="How many canaries.", min=1)] = 10,
    out_path: Annotated[
        Path, typer.Option("--out", help="Write FILE.csv and FILE.sql for the client database.")
    ] = Path("canaries.csv"),
) -> None:
    """Make canary clients, register them, and write them for insertion."""
    from molehunt.attribute.canary import plant
    from molehunt.keys import load_key

    settings = ctx_of(ctx).settings
    with ctx_of(ctx).open_store() as store:
        planted = plant(store, load_key(settings, store), count, out_path)
        audit_row(store, "canary plant", f"{planted.count} canaries", planted.count)
    out.print(
        f"{planted.count} canaries registered; insert {planted.sql_path} or {planted.csv_path}"
    )
