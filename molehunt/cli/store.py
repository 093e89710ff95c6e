"""Verbs over the store itself: ``version``, ``init``, ``ingest``, ``status``, ``who``,
``accounts``."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from molehunt import __version__
from molehunt.cli._common import (
    Format,
    FormatOption,
    app,
    ctx_of,
    err,
    out,
    parse_time,
    print_detector_failures,
    print_json,
    read_answer,
    require_existing,
)
from molehunt.compute.spark import ComputeEngine

if TYPE_CHECKING:
    from molehunt.config import Settings
    from molehunt.ingest.runner import IngestReport


@app.command()
def version() -> None:
    """Print molehunt's version."""
    typer.echo(__version__)


@app.command()
def init(ctx: typer.Context) -> None:
    """Create the store and its keys (beside it, mode 0600): the client-hashing key
    (``<db>.key``), the audit chain's (``<db>.audit.key``) and the export signing key
    (``<db>.sign.key``). On an existing store it never makes a new client-hashing key."""
    from molehunt.audit import ensure_keyed
    from molehunt.keys import check_store_key, create_key_file, load_key, signing_key

    settings = ctx_of(ctx).settings
    existed = settings.db.exists()
    created = False
    if not settings.key:
        if existed and not settings.key_file.exists():
            err.print(
                f"[red]error:[/red] store {settings.db} exists but its key {settings.key_file} "
                "is not there; init never makes a new key for an existing store (its clients "
                "were hashed with the old one): give --key-file or MOLEHUNT_KEY"
            )
            raise typer.Exit(2)
        created = create_key_file(settings.key_file)
    with ctx_of(ctx).open_store() as store:
        note = check_store_key(store, load_key(settings), new_store=not existed)
        signing_key(store)
        ensure_keyed(store)
        version = store.schema_version()
    if settings.key:
        key_note = "from MOLEHUNT_KEY"
    else:
        key_note = f"{settings.key_file} " + ("created" if created else "kept (already there)")
    if note and existed:
        err.print(f"[yellow]note:[/yellow] {note}")
    out.print(f"store {settings.db} at schema version {version}; key {key_note}")


@app.command()
def ingest(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(help="Files or folders to ingest.")],
    kind: Annotated[
        str | None,
        typer.Option(help="Kind of every file (default: told from each file's content)."),
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option(help="Time a reference export was taken (default: the file's mtime)."),
    ] = None,
    engine: Annotated[
        ComputeEngine,
        typer.Option(
            help="Parse in this process into the store, or on local Spark into --lake "
            "(needs molehunt[spark] and Java 17)."
        ),
    ] = ComputeEngine.duckdb,
    lake: Annotated[
        Path | None, typer.Option(help="Parquet lake folder written by --engine spark.")
    ] = None,
    fmt: FormatOption = Format.table,
) -> None:
    """Read logs and reference exports into the store, exactly once."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    from molehunt.ingest import all_kinds
    from molehunt.ingest.runner import ingest_paths

    settings = ctx_of(ctx).settings
    kinds = all_kinds()
    if kind is not None and kind not in kinds:
        raise typer.BadParameter(f"unknown kind {kind!r}; one of: {', '.join(sorted(kinds))}")
    when = parse_time(as_of, settings.timezone) if as_of else None
    require_existing(paths)
    if (engine is ComputeEngine.spark) != (lake is not None):
        raise typer.BadParameter("--engine spark writes a --lake, and a --lake needs it")
    if lake is not None:
        _ingest_to_lake(settings, paths, lake, fmt)
        return
    with (
        ctx_of(ctx).open_store() as store,
        Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TimeRemainingColumn(),
            console=err,
            transient=True,
            disable=fmt is Format.json or not err.is_terminal,
        ) as bars,
    ):
        tasks: dict[str, Any] = {}

        def progress(path: str, done: int, total: int) -> None:
            if path not in tasks:
                tasks[path] = bars.add_task(Path(path).name, total=total)
            bars.update(tasks[path], completed=done, total=max(total, done))

        report = ingest_paths(store, settings, paths, kind=kind, as_of=when, progress=progress)
    if fmt is Format.json:
        print_json(report.as_dict())
    else:
        _print_ingest(report)
    for f in report.errors:
        err.print(f"[red]error[/red] {f.error}")
    if report.errors:
        raise typer.Exit(1)


def _print_ingest(report: IngestReport) -> None:
    table = Table("path", "kind", "stored", "rejected", "note")
    for f in report.files:
        note = f.error or f.skipped or ""
        if f.skipped_lines:
            counted = ", ".join(f"{n} {why}" for why, n in sorted(f.skipped_lines.items()))
            note = f"{note}; skipped lines: {counted}" if note else f"skipped lines: {counted}"
        table.add_row(f.path, f.kind or "?", str(f.stored), str(f.rejected), note)
    out.print(table)
    skipped = sum(report.skipped_lines.values())
    out.print(
        f"stored {report.stored}, rejected {report.rejected}, skipped lines {skipped} "
        "(see `molehunt status`, `molehunt quarantine list`)"
    )


def _ingest_to_lake(settings: Settings, paths: list[Path], lake: Path, fmt: Format) -> None:
    from molehunt.ingest.lake import ingest_to_lake

    report = ingest_to_lake(settings, paths, lake)
    if fmt is Format.json:
        print_json(report.as_dict())
    else:
        per_file: dict[tuple[str, str], list[int]] = {}
        for piece in report.pieces:
            events = sum(n for t, n in piece["tables"].items() if t.startswith("events_"))
            counts = per_file.setdefault((piece["path"], piece["kind"]), [0, 0, 0])
            counts[0] += 1
            counts[1] += events
            counts[2] += piece["rejected"]
        table = Table("path", "kind", "pieces", "events", "rejected")
        for (path, kind), (pieces, events, rejected) in per_file.items():
            table.add_row(path, kind, str(pieces), str(events), str(rejected))
        out.print(table)
        out.print(f"wrote {report.stored} events to {lake}, rejected {report.rejected}")
    for error in report.errors:
        err.print(f"[red]error[/red] {error}")
    if report.errors:
        raise typer.Exit(1)


@app.command()
def status(ctx: typer.Context, fmt: FormatOption = Format.table) -> None:
    """Table counts, sources with their checkpoints, quarantine, schema version."""
    from molehunt.investigate.reads import StatusAsk

    data = read_answer(ctx, "status", StatusAsk(db=str(ctx_of(ctx).settings.db)))
    if fmt is Format.json:
        print_json(data)
        return
    out.print(f"store {data['db']}  schema version {data['schema_version']}")
    counts = Table("table", "rows")
    for name, n in data["tables"].items():
        counts.add_row(name, str(n))
    out.print(counts)
    sources = Table("source", "kind", "path", "checkpoint", "size", "pending", "events", "rejected")
    for s in data["sources"]:
        sources.add_row(
            s["source_id"],
            s["kind"],
            s["path"],
            f"{s['checkpoint']} {s['offset']}",
            str(s["size"]),
            "-" if s["pending_bytes"] is None else str(s["pending_bytes"]),
            str(s["events"]),
            str(s["rejected"]),
        )
    out.print(sources)
    for s in data["sources"]:
        if s["pending_reason"]:
            pending = "" if s["pending_bytes"] is None else f"{s['pending_bytes']} bytes "
            out.print(f"{s['source_id']} {s['path']}: {pending}pending: {s['pending_reason']}")
    quarantine = Table("kind", "reason", "count")
    for q in data["quarantine"]:
        quarantine.add_row(q["kind"], q["reason"], str(q["count"]))
    out.print(quarantine)
    kept = data.get("kept") or []
    if kept:
        through = min(k["through_end"] for k in kept)
        names = ", ".join(k["relation"] for k in kept)
        out.print(f"who-is-who kept in the store through {through} UTC ({names})")
    run = data["last_detection"]
    if run is None:
        out.print("no detection pass yet")
        return
    since = run["since"] or "all days"
    run_at = datetime.fromisoformat(run["run_at"])
    out.print(
        f"last detection {run_at:%Y-%m-%d %H:%M:%S} UTC, days {since}..{run['as_of']}: "
        f"{run['findings']} findings, {len(run['detectors'])} detectors ran"
    )
    print_detector_failures(run["failures"])


@app.command()
def who(
    ctx: typer.Context,
    at: Annotated[str | None, typer.Option(help="ISO time (default now).")] = None,
    ip: Annotated[str | None, typer.Option(help="A client IP.")] = None,
    account: Annotated[str | None, typer.Option(help="An account name.")] = None,
    host: Annotated[str | None, typer.Option(help="A host name.")] = None,
    fmt: FormatOption = Format.table,
) -> None:
    """Who owned an account or a host, and who sat at it, at a given time."""
    from molehunt.investigate.reads import WhoAsk

    if sum(x is not None for x in (ip, account, host)) != 1:
        raise typer.BadParameter("give exactly one of --ip, --account, --host")
    when = parse_time(at, ctx_of(ctx).settings.timezone)
    ask = WhoAsk(at=when, ip=ip, account=account, host=host)
    answer = read_answer(ctx, "who", ask)
    if fmt is Format.json:
        print_json(answer)
    else:
        out.print_json(json.dumps(answer, default=str, ensure_ascii=False, indent=2))


@app.command()
def accounts(
    ctx: typer.Context,
    orphaned: Annotated[
        bool, typer.Option("--orphaned", help="Only enabled accounts of departed people.")
    ] = False,
    at: Annotated[str | None, typer.Option(help="ISO time (default now).")] = None,
    fmt: FormatOption = Format.table,
) -> None:
    """List accounts; with --orphaned, those of departed people still enabled."""
    from molehunt.investigate.reads import AccountsAsk

    when = parse_time(at, ctx_of(ctx).settings.timezone)
    rows = read_answer(ctx, "accounts", AccountsAsk(orphaned=orphaned, at=when))
    if fmt is Format.json:
        print_json(rows)
        return
    if not rows:
        out.print("no accounts" + (" of departed people still enabled" if orphaned else ""))
        return
    table = Table(*rows[0].keys())
    for r in rows:
        table.add_row(*("" if v is None else str(v) for v in r.values()))
    out.print(table)
