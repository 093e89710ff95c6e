"""The ``molehunt`` command: a thin face over the library."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from molehunt import __version__
from molehunt.case_cli import case_app
from molehunt.compute.spark import ComputeEngine
from molehunt.config import Settings
from molehunt.detect.runner import run_detectors, write_findings
from molehunt.detect.settings import detection_settings
from molehunt.errors import MolehuntError
from molehunt.identity import Identity
from molehunt.ingest import all_kinds
from molehunt.ingest.runner import ingest_paths
from molehunt.keys import create_key_file
from molehunt.quarantine_cli import quarantine_app
from molehunt.score import RiskRanker
from molehunt.status import status as store_status
from molehunt.store import Store
from molehunt.timeline import timeline as person_timeline

app = typer.Typer(
    help="Catch insiders stealing client personal data, and tell who leaked a dataset.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console()
err = Console(stderr=True)


class Format(StrEnum):
    table = "table"
    json = "json"


FormatOption = Annotated[Format, typer.Option("--format", "-f", help="Output format.")]


@dataclass(slots=True)
class Context:
    settings: Settings

    def open_store(self) -> Store:
        return Store.open(self.settings.db, memory_limit=self.settings.memory_limit)


@app.callback()
def main_options(
    ctx: typer.Context,
    db: Annotated[
        Path | None, typer.Option(help="Store file (default molehunt.duckdb).", show_default=False)
    ] = None,
    key_file: Annotated[
        Path | None,
        typer.Option(help="Client-hashing key file (default: <db>.key, beside the store)."),
    ] = None,
) -> None:
    """molehunt: ingest logs, resolve who acted, detect theft, explain risk."""
    ctx.obj = Context(Settings.load({"db": db, "key_file": key_file}))
    if ctx.obj.settings.audit_syslog:
        from molehunt.audit import configure

        configure(syslog=ctx.obj.settings.audit_syslog)


def _ctx(ctx: typer.Context) -> Context:
    obj = ctx.obj
    assert isinstance(obj, Context)
    return obj


def _audit(store: Store, action: str, target: str | None, rows: int | None) -> None:
    """One row of the investigators' audit trail (see molehunt.audit)."""
    from molehunt.audit import record

    record(store, action, target, rows)


def _file_target(path: Path) -> str:
    """A file named by its content, not its name (names may hold personal data)."""
    from molehunt.digests import file_sha256

    return f"file sha256:{file_sha256(path)[:16]} ({path.stat().st_size} bytes)"


def _require_existing(paths: list[Path]) -> None:
    missing = [p for p in paths if not p.exists()]
    if missing:
        raise typer.BadParameter(f"no such file or folder: {', '.join(map(str, missing))}")


def _print_json(data: Any) -> None:
    out.print_json(json.dumps(data, default=str, ensure_ascii=False))


def _parse_time(value: str | None, zone: str) -> datetime:
    if value is None:
        return datetime.now(ZoneInfo(zone))
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as e:
        raise typer.BadParameter(f"{value!r} is not an ISO time like 2026-05-03T09:15+08:00") from e
    from molehunt.times import checked_time

    try:
        return checked_time(parsed if parsed.tzinfo else parsed.replace(tzinfo=ZoneInfo(zone)))
    except ValueError as e:
        raise typer.BadParameter(str(e)) from e


@app.command()
def version() -> None:
    """Print molehunt's version."""
    out.print(__version__)


@app.command()
def init(ctx: typer.Context) -> None:
    """Create the store and its keys (beside it, mode 0600): the client-hashing key
    (``<db>.key``), the audit chain's (``<db>.audit.key``) and the export signing key
    (``<db>.sign.key``). On an existing store it never makes a new client-hashing key."""
    from molehunt.audit import ensure_keyed
    from molehunt.keys import check_store_key, load_key, signing_key

    settings = _ctx(ctx).settings
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
    with _ctx(ctx).open_store() as store:
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
    settings = _ctx(ctx).settings
    kinds = all_kinds()
    if kind is not None and kind not in kinds:
        raise typer.BadParameter(f"unknown kind {kind!r}; one of: {', '.join(sorted(kinds))}")
    when = _parse_time(as_of, settings.timezone) if as_of else None
    _require_existing(paths)
    if (engine is ComputeEngine.spark) != (lake is not None):
        raise typer.BadParameter("--engine spark writes a --lake, and a --lake needs it")
    if lake is not None:
        _ingest_to_lake(settings, paths, lake, fmt)
        return
    with (
        _ctx(ctx).open_store() as store,
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
        _print_json(report.as_dict())
    else:
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
    for f in report.errors:
        err.print(f"[red]error[/red] {f.error}")
    if report.errors:
        raise typer.Exit(1)


def _ingest_to_lake(settings: Settings, paths: list[Path], lake: Path, fmt: Format) -> None:
    from molehunt.ingest.lake import ingest_to_lake

    report = ingest_to_lake(settings, paths, lake)
    if fmt is Format.json:
        _print_json(report.as_dict())
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
    with _ctx(ctx).open_store() as store:
        data = store_status(store)
    if fmt is Format.json:
        _print_json(data)
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
    run = data["last_detection"]
    if run is None:
        out.print("no detection pass yet")
        return
    since = run["since"] or "all days"
    out.print(
        f"last detection {run['run_at']:%Y-%m-%d %H:%M:%S} UTC, days {since}..{run['as_of']}: "
        f"{run['findings']} findings, {len(run['detectors'])} detectors ran"
    )
    _print_detector_failures(run["failures"])


def _print_detector_failures(failures: list[dict[str, str]]) -> None:
    for f in failures:
        err.print(
            f"[red]detector {f['detector']} failed[/red] at {f['where']}: {f['error']} "
            "(its findings of these days are missing; the others' are stored)"
        )


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
    if sum(x is not None for x in (ip, account, host)) != 1:
        raise typer.BadParameter("give exactly one of --ip, --account, --host")
    settings = _ctx(ctx).settings
    when = _parse_time(at, settings.timezone)
    with _ctx(ctx).open_store() as store:
        answer = Identity(store, settings.timezone).who(when, ip=ip, account=account, hostname=host)
        asked = f"ip={ip}" if ip else f"account={account}" if account else f"host={host}"
        _audit(store, "who", f"{asked} at {when.isoformat()}", 1)
    if fmt is Format.json:
        _print_json(answer)
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
    settings = _ctx(ctx).settings
    when = _parse_time(at, settings.timezone)
    with _ctx(ctx).open_store() as store:
        if orphaned:
            rows = Identity(store, settings.timezone).orphaned_accounts(when)
        else:
            rows = store.query("SELECT * FROM accounts ORDER BY account, system")
        _audit(store, "accounts", "orphaned" if orphaned else "all", len(rows))
    if fmt is Format.json:
        _print_json(rows)
        return
    if not rows:
        out.print("no accounts" + (" of departed people still enabled" if orphaned else ""))
        return
    table = Table(*rows[0].keys())
    for r in rows:
        table.add_row(*("" if v is None else str(v) for v in r.values()))
    out.print(table)


def _parse_day(value: str | None, zone: str) -> date:
    if value is None:
        return datetime.now(ZoneInfo(zone)).date()
    from molehunt.times import checked_day

    try:
        return checked_day(date.fromisoformat(value))
    except ValueError as e:
        raise typer.BadParameter(f"{value!r} is not a date like 2026-05-03 ({e})") from e


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
    settings = _ctx(ctx).settings
    day = _parse_day(as_of, settings.timezone)
    first = _parse_day(since, settings.timezone) if since else None
    with _ctx(ctx).open_store() as store:
        report = run_detectors(
            store,
            detection_settings(settings),
            day,
            since=first,
            timezone=settings.timezone,
            engine=engine,
            lake=lake,
        )
        stored = write_findings(store, report)
    failures = [f.as_dict() for f in report.failures]
    if fmt is Format.json:
        _print_json(
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
    _print_detector_failures(failures)
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
    from molehunt.watch import Round, append_alerts
    from molehunt.watch import watch as follow

    _require_existing(paths)
    settings = _ctx(ctx).settings
    with _ctx(ctx).open_store() as store:

        def show(r: Round) -> None:
            if alerts is not None:
                append_alerts(alerts, r)
            if r.newly_flagged:
                people = ",".join(p["person_id"] for p in r.newly_flagged)
                _audit(
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
            _print_detector_failures(r.failures)
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
    settings = _ctx(ctx).settings
    with _ctx(ctx).open_store() as store:
        ranker = RiskRanker(store, detection_settings(settings), settings.timezone)
        if history:
            until = _parse_day(as_of, settings.timezone) if as_of else ranker.last_day()
            days = ranker.history(until, top=top, include_all=show_all) if until else []
        else:
            day = _parse_day(as_of, settings.timezone)
            threshold = ranker.threshold(day)
            days = [
                {
                    "date": day.isoformat(),
                    "threshold": threshold.value,
                    "threshold_how": threshold.how,
                    "ranking": ranker.ranking(day, top=top, include_all=show_all),
                }
            ]
        shown = sum(len(d["ranking"]) for d in days)
        _audit(store, "risk", f"as of {as_of or 'today'}" + (" history" if history else ""), shown)
    if fmt is Format.json:
        _print_json(days if history else days[0]["ranking"])
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
    settings = _ctx(ctx).settings
    until = _parse_day(as_of, settings.timezone) if as_of else None
    with _ctx(ctx).open_store() as store:
        entries = person_timeline(store, person, until=until, timezone=settings.timezone)
        _audit(store, "timeline", person, len(entries))
    if fmt is Format.json:
        _print_json(entries)
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

    settings = _ctx(ctx).settings
    data = json.loads(truth.read_text(encoding="utf-8"))
    with _ctx(ctx).open_store() as store:
        result = run_evaluation(store, settings.detection, data, settings.timezone)
        if attribution:
            from molehunt.attribute.evaluate import evaluate_attribution
            from molehunt.keys import load_key

            result["attribution"] = evaluate_attribution(
                store, load_key(settings, store), truth.parent, data
            )
    if fmt is Format.json:
        _print_json(result)
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

        result = run_demo(folder, seed=seed, step=step, progress=progress, base=_ctx(ctx).settings)
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
        _serve_demo(result.settings)


def _serve_demo(settings: Settings) -> None:
    import secrets

    from molehunt.web.users import add_user, get_user, set_password

    password = secrets.token_urlsafe(12)
    with Store.open(settings.db, memory_limit=settings.memory_limit) as store:
        if get_user(store, "demo") is None:
            add_user(store, "demo", password, "investigator", "demo")
        else:
            set_password(store, "demo", password)
        _audit(store, "user add", "demo as investigator", 1)
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
        uvicorn.run(app, host=host, port=port, log_level="info", server_header=False)


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
        _require_existing(follow)
    _run_server(
        _ctx(ctx).settings,
        host,
        port,
        https_only=https_only,
        follow=follow,
        interval=interval,
        alerts=alerts,
    )


user_app = typer.Typer(help="Web UI users: analysts, investigators, auditors, admins.")
app.add_typer(user_app, name="user")


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
    from molehunt.web.users import add_user

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    with _ctx(ctx).open_store() as store:
        user = add_user(store, name, password, role.value, team)
        _audit(store, "user add", f"{user.username} as {user.role}", 1)
    out.print(f"added {user.username} ({user.role}, team {user.team})")


@user_app.command("list")
def user_list(ctx: typer.Context, fmt: FormatOption = Format.table) -> None:
    """List web users."""
    from molehunt.web.users import list_users

    with _ctx(ctx).open_store() as store:
        users = list_users(store)
        _audit(store, "users", None, len(users))
    if fmt is Format.json:
        _print_json(
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
    from molehunt.web.users import disable_user

    with _ctx(ctx).open_store() as store:
        disable_user(store, name)
        _audit(store, "user disable", name, 1)
    out.print(f"disabled {name}")


@user_app.command("unlock")
def user_unlock(
    ctx: typer.Context, name: Annotated[str, typer.Argument(help="User name.")]
) -> None:
    """Lift a sign-in lockout (10 wrong passwords in a row lock a web user out).
    While `serve` runs, an admin does this on the web Users page instead."""
    from molehunt.web.users import unlock_user

    with _ctx(ctx).open_store() as store:
        was = unlock_user(store, name)
        _audit(store, "user unlock", name, 1 if was else 0)
    out.print(f"unlocked {name}" if was else f"{name} was not locked out")


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

    _require_existing(paths)
    settings = _ctx(ctx).settings
    reports, note = scan_with_settings(settings, paths, host=host, detail=detail)
    if note:
        err.print(f"[yellow]note:[/yellow] {note}")
    on_hosts = [r for r in reports if r.host is not None]
    if settings.db.exists():
        from molehunt.pii.stored import store_scans

        with _ctx(ctx).open_store() as store:
            if on_hosts:
                stored = store_scans(store, on_hosts)
                err.print(f"stored {stored} new file scan(s) of {len(on_hosts)} on hosts")
            hosts = {r.host for r in on_hosts}
            _audit(store, "scan", f"{len(reports)} files on {len(hosts)} hosts", len(reports))
    if fmt is Format.json:
        _print_json([r.as_json(detail) for r in reports])
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
    settings = _ctx(ctx).settings
    with _ctx(ctx).open_store() as store:
        key = load_key(settings, store)
        result = attribute_file(
            store,
            key,
            path,
            complaints=complaints,
            settings=detection_settings(settings),
            timezone=settings.timezone,
        )
        _audit(
            store,
            "complaints" if complaints else "attribute",
            _file_target(path),
            len(result["suspects"]),
        )
    if fmt is Format.json:
        _print_json(result)
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


app.add_typer(case_app, name="case")
app.add_typer(quarantine_app, name="quarantine")

canary_app = typer.Typer(help="Canary records: made-up clients nobody should read.")
app.add_typer(canary_app, name="canary")


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

    settings = _ctx(ctx).settings
    with _ctx(ctx).open_store() as store:
        planted = plant(store, load_key(settings, store), count, out_path)
        _audit(store, "canary plant", f"{planted.count} canaries", planted.count)
    out.print(
        f"{planted.count} canaries registered; insert {planted.sql_path} or {planted.csv_path}"
    )


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
    from molehunt.audit import entries
    from molehunt.audit import verify as verify_chain

    with _ctx(ctx).open_store() as store:
        rows = entries(store, limit)
        checked = verify_chain(store) if verify else None
        _audit(store, "audit", "verify" if verify else None, len(rows))
    if fmt is Format.json:
        _print_json(
            {
                "entries": rows,
                "verified": None
                if checked is None
                else {
                    "rows": checked.rows,
                    "head": checked.head,
                    "broken_at": checked.broken_at,
                    "reason": checked.reason,
                    "keyed_from": checked.keyed_from,
                },
            }
        )
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
            if checked.broken_at is None:
                out.print(f"chain intact: {checked.rows} rows, head {checked.head}")
            else:
                out.print(f"[red]chain broken at row {checked.broken_at}[/red]: {checked.reason}")
    if checked is not None and checked.broken_at is not None:
        raise typer.Exit(1)


def main() -> None:
    try:
        app()
    except MolehuntError as e:
        err.print(f"[red]error:[/red] {e}")
        sys.exit(2)
