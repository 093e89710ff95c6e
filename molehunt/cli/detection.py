"""Detection verbs: ``detect``, ``watch``, ``risk``, ``timeline``."""

from __future__ import annotations

import json
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
    out,
    parse_day,
    print_detector_failures,
    print_json,
    read_answer,
    require_existing,
)
from molehunt.compute.spark import ComputeEngine

if TYPE_CHECKING:
    pass


@app.command()
def detect(
    ctx: typer.Context,
    as_of: Annotated[
        str | None, typer.Option(help="Last local day to detect on (default today).")
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="First day whose findings are recomputed (default all).")
    ] = None,
    engine: Annotated[
        ComputeEngine,
        typer.Option(
            help="Where the detectors run: the store's DuckDB, or local Spark over a "
            "Parquet copy (needs molehunt[spark] and Java 17)."
        ),
    ] = ComputeEngine.duckdb,
    lake: Annotated[
        Path | None,
        typer.Option(help="Read the event tables from this Parquet lake (with --engine spark)."),
    ] = None,
    fmt: FormatOption = Format.table,
) -> None:
    """Run every detector and store the findings (re-runs replace, never duplicate);
    a detector that fails is named and the command exits 1, the others' findings stored."""
    from molehunt.detect.runner import run_detectors, write_findings

    settings = ctx_of(ctx).settings
    day = parse_day(as_of, settings.timezone)
    first = parse_day(since, settings.timezone) if since else None
    with ctx_of(ctx).open_store() as store:
        report = run_detectors(
            store,
            settings.detection,
            day,
            since=first,
            timezone=settings.timezone,
            engine=engine,
            lake=lake,
        )
        stored = write_findings(store, report)
    failures = [f.as_dict() for f in report.failures]
    if fmt is Format.json:
        print_json(
            {
                "as_of": day,
                "since": first,
                "findings": stored,
                "by_detector": report.counts(),
                "failures": failures,
            }
        )
    else:
        table = Table("detector", "findings")
        for name, n in report.counts().items():
            table.add_row(name, str(n))
        out.print(table)
        out.print(f"{stored} findings stored for days up to {day}")
    print_detector_failures(failures)
    if failures:
        raise typer.Exit(1)


@app.command()
def watch(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(help="Log files and folders to follow.")],
    interval: Annotated[float, typer.Option(help="Seconds between rounds.", min=0.0)] = 60.0,
    rounds: Annotated[
        int | None, typer.Option(help="Stop after N rounds (default: until Ctrl-C).", min=1)
    ] = None,
    alerts: Annotated[
        Path | None,
        typer.Option(help="Append an alert per newly flagged person to this JSON-lines file."),
    ] = None,
    fmt: FormatOption = Format.table,
) -> None:
    """Run continuously: ingest what was appended, detect, and name newly flagged people."""
    from molehunt.audit import record
    from molehunt.watch import Round, append_alerts
    from molehunt.watch import watch as follow

    require_existing(paths)
    settings = ctx_of(ctx).settings
    with ctx_of(ctx).open_store() as store:

        def show(r: Round) -> None:
            if alerts is not None:
                append_alerts(alerts, r)
            if r.newly_flagged:
                people = ",".join(p["person_id"] for p in r.newly_flagged)
                record(
                    store, "watch", f"newly flagged on {r.as_of}: {people}", len(r.newly_flagged)
                )
            if fmt is Format.json:
                print(json.dumps(r.as_dict(), default=str, ensure_ascii=False), flush=True)
                return
            line = f"{r.started:%Y-%m-%d %H:%M:%S} stored {r.ingest.stored}"
            line += f", rejected {r.ingest.rejected}"
            if r.as_of:
                line += f"; detected {r.since or 'all days'}..{r.as_of}: {r.findings} findings"
            out.print(line + f" ({r.seconds:.1f} s)")
            for e in r.ingest.errors:
                err.print(f"[red]error[/red] {e.error}")
            print_detector_failures(r.failures)
            for p in r.newly_flagged:
                reasons = ", ".join(x["detector"] for x in p["reasons"])
                out.print(
                    f"  [bold red]newly flagged[/bold red] {p['person_id']} {p['name'] or ''} "
                    f"({p['role'] or '?'}) score {p['score']:.2f}: {reasons}"
                )

        try:
            follow(store, settings, paths, interval=interval, rounds=rounds, on_round=show)
        except KeyboardInterrupt:
            err.print("stopped")


@app.command()
def risk(
    ctx: typer.Context,
    as_of: Annotated[
        str | None, typer.Option(help="Rank as at the end of this local day (default today).")
    ] = None,
    top: Annotated[int | None, typer.Option(help="Only the N highest.", min=1)] = None,
    show_all: Annotated[
        bool, typer.Option("--all", help="Everyone with a finding, not only those flagged.")
    ] = False,
    history: Annotated[
        bool, typer.Option("--history", help="The ranking of every day up to --as-of.")
    ] = False,
    fmt: FormatOption = Format.table,
) -> None:
    """People ranked by risk, each with the evidence behind it."""
    from molehunt.investigate.reads import RiskAsk

    zone = ctx_of(ctx).settings.timezone
    # With --history and no --as-of: up to the last day with findings (the store knows).
    day = parse_day(as_of, zone) if as_of or not history else None
    ask = RiskAsk(day=day, asked=as_of, top=top, show_all=show_all, history=history)
    days = read_answer(ctx, "risk", ask)
    if fmt is Format.json:
        print_json(days if history else days[0]["ranking"])
        return
    for entry in days:
        if history:
            out.print(f"[bold]{entry['date']}[/bold]")
        if "threshold" in entry:
            flagged = sum(1 for r in entry["ranking"] if r["flagged"])
            out.print(
                f"alert threshold {entry['threshold']:.4g} ({entry['threshold_how']}); "
                f"{flagged} flagged"
            )
        if not entry["ranking"]:
            out.print("nobody flagged" if not show_all else "no findings")
            continue
        table = Table("rank", "person", "name", "role", "score", "chain", "reasons")
        for r in entry["ranking"]:
            reasons = "\n".join(f"{x['detector']}: {x['summary']}" for x in r["reasons"])
            table.add_row(
                str(r["rank"]),
                r["person_id"],
                r["name"] or "",
                r["role"] or "",
                f"{r['score']:.2f}",
                "\n".join(r["chain"]) or "lone signal",
                reasons,
            )
        out.print(table)


@app.command()
def timeline(
    ctx: typer.Context,
    person: Annotated[str, typer.Argument(help="Employee id.")],
    as_of: Annotated[str | None, typer.Option(help="Only findings up to this day.")] = None,
    fmt: FormatOption = Format.table,
) -> None:
    """A person's evidence in time order."""
    from molehunt.investigate.reads import TimelineAsk

    until = parse_day(as_of, ctx_of(ctx).settings.timezone) if as_of else None
    entries = read_answer(ctx, "timeline", TimelineAsk(person=person, until=until))
    if fmt is Format.json:
        print_json(entries)
        return
    if not entries:
        out.print(f"no findings name {person}")
        return
    table = Table("time", "stage", "detector", "sev", "title", "events")
    for e in entries:
        table.add_row(
            e["time"],
            e["stage"],
            e["detector"],
            str(e["severity"]),
            e["title"],
            str(len(e["events"])),
        )
    out.print(table)
