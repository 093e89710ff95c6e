"""``molehunt quarantine``: the records set aside at ingest, listed and replayed.

The library is :mod:`molehunt.quarantine`. Previews are masked; ``replay`` re-reads
each record's bytes from its file with the current settings.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from molehunt.cli._common import Format, FormatOption

if TYPE_CHECKING:
    from molehunt.config import Settings
    from molehunt.store import Store

quarantine_app = typer.Typer(
    help="Records set aside at ingest: list them, replay them after fixing a setting.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console(soft_wrap=True)


SourceOption = Annotated[str | None, typer.Option("--source", help="Only this source id.")]
KindOption = Annotated[str | None, typer.Option("--kind", help="Only this kind of file.")]


def _settings(ctx: typer.Context) -> Settings:
    """The settings ``molehunt --db ...`` loaded (sub-commands inherit its context object)."""
    from molehunt.config import Settings

    found = getattr(ctx.obj, "settings", None)
    return found if isinstance(found, Settings) else Settings.load({})


def _open(ctx: typer.Context) -> Store:
    from molehunt.investigate.local import refuse_write
    from molehunt.store import Store

    settings = _settings(ctx)
    refuse_write(settings.db)
    return Store.open(settings.db, memory_limit=settings.memory_limit)


def _asked(source: str | None, kind: str | None) -> str | None:
    """The audit row's target: the filters (a source id, a kind), never a reason text."""
    asked = [f"source={source}"] if source else []
    asked += [f"kind={kind}"] if kind else []
    return " ".join(asked) or None


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
    from molehunt import audit
    from molehunt.quarantine import list_quarantine

    with _open(ctx) as store:
        rows = list_quarantine(store, reason=reason, source=source, kind=kind, limit=limit)
        audit.record(store, "quarantine list", _asked(source, kind), len(rows))
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
    from molehunt import audit
    from molehunt.quarantine import replay

    settings = _settings(ctx)
    with _open(ctx) as store:
        report = replay(store, settings, source=source, kind=kind)
        audit.record(store, "quarantine replay", _asked(source, kind), len(report.records))
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
