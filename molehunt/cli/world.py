"""A simulated world: ``simulate``, ``evaluate``, ``demo``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from molehunt.cli._common import Format, FormatOption, app, ctx_of, err, out, print_json


@app.command()
def simulate(
    folder: Annotated[Path, typer.Option("--out", help="Empty folder to write into.")],
    preset: Annotated[str, typer.Option(help="tiny, small or large.")] = "small",
    staff: Annotated[int | None, typer.Option(help="People employed.")] = None,
    clients: Annotated[int | None, typer.Option(help="Clients in the master.")] = None,
    days: Annotated[int | None, typer.Option(help="Days simulated.")] = None,
    start: Annotated[str | None, typer.Option(help="First day, YYYY-MM-DD.")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (same seed, same bytes).")] = None,
    scenarios: Annotated[str | None, typer.Option(help="Comma-separated scenarios.")] = None,
) -> None:
    """Simulate an insurer's logs with planted insiders and a ground-truth file."""
    from rich.progress import Progress

    from molehunt.simulate import params_for
    from molehunt.simulate import simulate as run_simulation

    params = params_for(
        preset, scenarios, staff=staff, clients=clients, days=days, start=start, seed=seed
    )
    with Progress(console=err, transient=True, disable=not err.is_terminal) as bars:
        task = bars.add_task("simulating", total=params.days)
        result = run_simulation(
            folder, params, lambda done, _all: bars.update(task, completed=done)
        )
    truth = result.truth
    out.print(
        f"wrote {result.bytes_written / 1e6:.0f} MB to {folder} in {result.seconds:.1f} s: "
        f"{len(truth['scenarios'])} scenarios, {len(truth['decoys'])} decoys "
        f"(ground truth in {folder / 'truth.json'})"
    )


@app.command()
def evaluate(
    ctx: typer.Context,
    truth: Annotated[Path, typer.Option(help="The simulator's truth.json.")],
    attribution: Annotated[
        bool, typer.Option(help="Also attribute the leaked files next to truth.json.")
    ] = True,
    fmt: FormatOption = Format.table,
) -> None:
    """Detection quality against ground truth: time to detect, recall at K, false alerts;
    and where the true people rank when their leaked files are attributed."""
    from molehunt.evaluate import evaluate as run_evaluation

    settings = ctx_of(ctx).settings
    data = json.loads(truth.read_text(encoding="utf-8"))
    with ctx_of(ctx).open_store() as store:
        result = run_evaluation(store, settings.detection, data, settings.timezone)
        if attribution:
            from molehunt.attribute.evaluate import evaluate_attribution
            from molehunt.keys import load_key

            result["attribution"] = evaluate_attribution(
                store, load_key(settings, store), truth.parent, data
            )
    if fmt is Format.json:
        print_json(result)
        return
    _print_evaluation(result)


def _print_evaluation(result: dict[str, Any]) -> None:
    table = Table("scenario", "started", "detected", "working days", "best rank")
    for s in result["scenarios"]:
        table.add_row(
            s["id"],
            s["start_day"],
            s["detected_day"] or "[red]not within top K[/red]",
            "" if s["working_days_to_detect"] is None else str(s["working_days_to_detect"]),
            "" if s["best_rank"] is None else str(s["best_rank"]),
        )
    out.print(table)
    recall = result["recall_at_k"]
    out.print(
        f"K = {result['k']} of {result['staff']} staff; recall at K over "
        f"{result['insider_person_days']} insider person-days: "
        f"{'n/a' if recall is None else f'{recall:.0%}'}; benign people flagged: "
        f"{result['false_alerts_per_1000_staff_days']:.1f} per 1,000 staff-days"
    )
    decoys = Table("decoy", "days flagged", "best rank")
    for d in result["decoys"]:
        decoys.add_row(
            d["id"],
            str(len(d["flagged_days"])),
            "" if d["best_rank"] is None else str(d["best_rank"]),
        )
    out.print(decoys)
    if result.get("attribution"):
        table = Table(
            "scenario", "leaked file", "client records", "true people's rank", "of 50 records"
        )
        for a in result["attribution"]:
            table.add_row(
                a["scenario"],
                a["file"],
                str(a["client_records"]),
                _rank_text(a["rank"], a["others"]),
                _rank_text(a["sample_rank"], a["sample_others"]),
            )
        out.print(table)


def _rank_text(rank: int | None, others: int) -> str:
    if rank is None:
        return "[red]not found[/red]"
    return f"{rank}" + (f" (tied with {others} other)" if others else "")


@app.command()
def demo(
    ctx: typer.Context,
    folder: Annotated[Path, typer.Option("--out", help="Folder for the demo's files.")] = Path(
        "demo-out"
    ),
    seed: Annotated[int, typer.Option(help="Simulator seed.")] = 7,
    serve: Annotated[bool, typer.Option("--serve", help="Then open the web UI.")] = False,
) -> None:
    """Simulate an insurer, ingest it, detect, and print the explained risk ranking."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from molehunt.cli.web import serve_demo
    from molehunt.demo import run_demo, scenario_people

    out.print(f"Simulating a small insurer (seed {seed}) into {folder}/sim ...")
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    ) as bars:
        tasks: dict[str, Any] = {}

        def step(name: str, done: int, total: int) -> None:
            if name not in tasks:
                tasks[name] = bars.add_task(name, total=total)
            bars.update(tasks[name], completed=done, total=total)

        def progress(path: str, done: int, total: int) -> None:
            step(f"ingest {Path(path).name}", done, max(total, done))

        result = run_demo(
            folder, seed=seed, step=step, progress=progress, base=ctx_of(ctx).settings
        )
    out.print(
        f"Ingested {result.ingest.stored:,} records ({result.ingest.rejected} rejected); "
        f"scanned {result.scanned} endpoint files; {result.findings:,} findings."
    )
    where = scenario_people(result.truth)
    table = Table(
        "rank",
        "person",
        "role",
        "score",
        "planted as",
        "why (see `molehunt timeline PERSON`)",
        title=f"People flagged at the end of {result.last_day} (top 15)",
    )
    for r in result.ranking[:15]:
        table.add_row(
            str(r["rank"]),
            f"{r['person_id']} {r['name'] or ''}",
            r["role"] or "",
            f"{r['score']:.2f}",
            where.get(r["person_id"], "[dim]not planted[/dim]"),
            ", ".join(x["detector"] for x in r["reasons"]),
        )
    out.print(table)
    out.print("[bold]Where each planted scenario landed[/bold] (rankings day by day, no peeking):")
    _print_evaluation(result.evaluation)
    db = result.settings.db
    out.print(
        f"Files: simulated logs and truth in {folder}/sim, store {db}. Explore with\n"
        f"  molehunt --db {db} risk --as-of {result.last_day}\n"
        f"  molehunt --db {db} timeline PERSON"
    )
    if serve:
        serve_demo(result.settings)
