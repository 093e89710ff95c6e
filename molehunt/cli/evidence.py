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
    ctx_of,
    err,
    investigation,
    out,
    plain,
    print_json,
    require_existing,
)
from molehunt.compute.spark import ComputeEngine

if TYPE_CHECKING:
    from datetime import datetime


@app.command()
def scan(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(help="Files or folders to scan.")],
    host: Annotated[str | None, typer.Option(help="Host the files came from.")] = None,
    detail: Annotated[bool, typer.Option(help="List every finding, masked.")] = False,
    fmt: FormatOption = Format.table,
) -> None:
    """Find personal data and the company's client records in files (xlsx, csv, docx, pdf, zip)."""
    from molehunt.investigate.service import operator
    from molehunt.pii.scan import scan_with_settings

    require_existing(paths)
    settings = ctx_of(ctx).settings
    reports, note = scan_with_settings(settings, paths, host=host, detail=detail)
    if note:
        err.print(f"[yellow]note:[/yellow] {note}")
    on_hosts = [r for r in reports if r.host is not None]
    if settings.db.exists():
        with investigation(ctx) as service:
            stored = service.store_scans(operator(), reports)
        if on_hosts:
            err.print(f"stored {stored} new file scan(s) of {len(on_hosts)} on hosts")
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


def _when(value: datetime | None) -> str:
    return "" if value is None else value.isoformat()


def _attribute(
    ctx: typer.Context,
    path: Path,
    fmt: Format,
    *,
    complaints: bool,
    engine: ComputeEngine = ComputeEngine.duckdb,
    lake: Path | None = None,
) -> None:
    from molehunt.investigate.service import operator

    if not path.is_file():
        raise typer.BadParameter(f"no such file: {path}")
    if lake is not None and engine is not ComputeEngine.spark:
        raise typer.BadParameter("a --lake is read on Spark: use --engine spark")
    if engine is ComputeEngine.spark:
        from molehunt.attribute.on_spark import prepare_on_spark

        with ctx_of(ctx).open_store() as store:
            rebuilt = prepare_on_spark(store, ctx_of(ctx).settings, lake)
        if rebuilt and fmt is not Format.json:
            err.print("stored reads built on Spark" + (f" from {lake}" if lake else ""))
    with investigation(ctx) as service:
        result = service.attribute(operator(), path, complaints=complaints)
    if fmt is Format.json:
        print_json(plain(result))
        return
    out.print(
        f"{result.records_in_file} records, {result.client_records} of our clients, "
        f"{result.non_client_rows} not clients, {result.damaged} damaged ID numbers"
    )
    table = Table(
        "rank", "person", "name", "accounts", "hosts", "covered", "window", "score", "with"
    )
    for r in result.suspects:
        group = r.group
        with_ = (
            ""
            if group is None
            else ", ".join(p for p in group["people"] if p != r.person_id)
            + f"\n{group['covered']} together ({group['coverage']:.0%})"
        )
        accounts = "\n".join(
            a["account"] + ("" if a["owner_is_person"] else f" (owner {a['owner_id'] or '?'})")
            for a in r.accounts
        )
        table.add_row(
            str(r.rank),
            r.person_id or "?",
            r.name or "",
            accounts,
            "\n".join(h["host"] or "?" for h in r.hosts),
            f"{r.covered} ({r.coverage:.0%})",
            f"{_when(r.first_read)}\n{_when(r.last_read)}",
            f"{r.score:.1f}",
            with_,
        )
    out.print(table)
    if result.files:
        files = Table("host", "file on the host", "written", "leaked records held")
        for f in result.files:
            written = f["written"]
            files.add_row(
                f["host"] or "?",
                f["path"],
                written.isoformat() if hasattr(written, "isoformat") else written or "",
                f"{f['covered']} ({f['coverage']:.0%})",
            )
        out.print("Files found on endpoints holding leaked records:")
        out.print(files)


EngineOption = Annotated[
    ComputeEngine,
    typer.Option(
        help="Where the reads are resolved to people, once per store: the store's "
        "DuckDB, or local Spark (needs molehunt[spark] and Java 17)."
    ),
]
LakeOption = Annotated[
    Path | None,
    typer.Option(help="Read the events from this Parquet lake (with --engine spark)."),
]


@app.command()
def attribute(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="A leaked file (xlsx, csv, txt, docx, pdf, zip).")],
    engine: EngineOption = ComputeEngine.duckdb,
    lake: LakeOption = None,
    fmt: FormatOption = Format.table,
) -> None:
    """Who read the client records of a leaked file: suspects ranked by coverage."""
    _attribute(ctx, path, fmt, complaints=False, engine=engine, lake=lake)


@app.command()
def complaints(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="Phone numbers, ID numbers or client ids.")],
    engine: EngineOption = ComputeEngine.duckdb,
    lake: LakeOption = None,
    fmt: FormatOption = Format.table,
) -> None:
    """The common point of compromise of the clients residents complained about."""
    _attribute(ctx, path, fmt, complaints=True, engine=engine, lake=lake)


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
    from molehunt.investigate.service import operator

    with investigation(ctx) as service:
        planted = service.plant_canaries(operator(), count, out_path)
    out.print(
        f"{planted.count} canaries registered; insert {planted.sql_path} or {planted.csv_path}"
    )
