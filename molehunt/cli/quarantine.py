"""``molehunt quarantine``: the records set aside at ingest, listed and replayed.

Through the service (:mod:`molehunt.investigate.upkeep`; the library is
:mod:`molehunt.quarantine`), one audit row each. Previews are masked; ``replay`` re-reads
each record's bytes from its file with the current settings.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from molehunt.cli._common import Format, FormatOption, investigation

quarantine_app = typer.Typer(
    help="Records set aside at ingest: list them, replay them after fixing a setting.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console(soft_wrap=True)


SourceOption = Annotated[str | None, typer.Option("--source", help="Only this source id.")]
KindOption = Annotated[str | None, typer.Option("--kind", help="Only this kind of file.")]


def _print_json(data: Any) -> None:
    out.print_json(json.dumps(data, default=str, ensure_ascii=False))


@quarantine_app.command("list")
def list_(
    ctx: typer.Context,
    reason: Annotated[
        str | None, typer.Option(help="Only records whose reason holds this text.")
    ] = None,
    source: SourceOption = None,
    kind: KindOption = None,
    limit: Annotated[int, typer.Option(help="At most this many records.")] = 100,
    fmt: FormatOption = Format.table,
) -> None:
    """Quarantined records: where they are (file, offset, length), why, a masked preview."""
    from molehunt.investigate.service import operator

    with investigation(ctx) as service:
        rows = service.quarantine(operator(), reason=reason, source=source, kind=kind, limit=limit)
    if fmt is Format.json:
        _print_json(rows)
        return
    table = Table("id", "kind", "source", "path", "offset", "length", "reason", "preview")
    for r in rows:
        table.add_row(
            str(r["id"]),
            r["kind"],
            r["source_id"],
            r["path"],
            "" if r["offset"] is None else str(r["offset"]),
            "" if r["length"] is None else str(r["length"]),
            r["reason"],
            r["preview"] or "",
        )
    out.print(table)
    out.print(f"{len(rows)} record(s) shown (at most {limit})")


@quarantine_app.command("replay")
def replay_(
    ctx: typer.Context,
    source: SourceOption = None,
    kind: KindOption = None,
    fmt: FormatOption = Format.table,
) -> None:
    """Parse quarantined log records again from their files with the current settings.

    What parses now is stored exactly once and leaves the quarantine; what still
    fails stays with its new reason; a file gone or changed is said so per record.
    """
    from molehunt.investigate.service import operator

    with investigation(ctx) as service:
        report = service.replay_quarantine(operator(), source=source, kind=kind)
    data = report.as_dict()
    if fmt is Format.json:
        _print_json(data)
        return
    table = Table("id", "path", "offset", "length", "outcome", "stored", "reason")
    for r in report.records:
        table.add_row(
            str(r.id),
            r.path,
            "" if r.offset is None else str(r.offset),
            "" if r.length is None else str(r.length),
            r.outcome,
            str(r.stored),
            r.reason or "",
        )
    out.print(table)
    out.print(
        f"replayed {data['replayed']}: stored {data['stored']} event(s), "
        f"{data['cleared']} record(s) cleared, {data['still_rejected']} still rejected, "
        f"{data['gone']} file gone, {data['changed']} file changed, "
        f"{data['not_replayable']} not replayable"
    )
