"""``molehunt audit``: the investigators' audit trail, and its check."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from molehunt.cli._common import Format, FormatOption, app, out, print_json, read_answer


@app.command()
def audit(
    ctx: typer.Context,
    verify: Annotated[
        bool, typer.Option("--verify", help="Check the hash chain; exit 1 if it is broken.")
    ] = False,
    limit: Annotated[int, typer.Option(help="Show the N newest rows.", min=1)] = 50,
    fmt: FormatOption = Format.table,
) -> None:
    """The investigators' audit trail: who looked at what, when (hash-chained)."""
    from molehunt.investigate.reads import AuditAsk

    data = read_answer(ctx, "audit", AuditAsk(verify=verify, limit=limit))
    rows, checked = data["entries"], data["verified"]
    if fmt is Format.json:
        print_json(data)
    else:
        table = Table("seq", "time", "actor", "action", "target", "rows")
        for r in rows:
            table.add_row(
                str(r["seq"]),
                str(r["time"]),
                r["actor"],
                r["action"],
                r["target"] or "",
                "" if r["rows"] is None else str(r["rows"]),
            )
        out.print(table)
        if checked is not None:
            if checked["broken_at"] is None:
                out.print(f"chain intact: {checked['rows']} rows, head {checked['head']}")
            else:
                broken = f"[red]chain broken at row {checked['broken_at']}[/red]"
                out.print(f"{broken}: {checked['reason']}")
    if checked is not None and checked["broken_at"] is not None:
        raise typer.Exit(1)
