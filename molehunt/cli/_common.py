"""What every verb of the ``molehunt`` command shares: the app, the consoles, the
output format, the loaded settings, the audited service over the store, how an error
ends a verb, time parsing, the read verbs' answers.

Nothing here imports DuckDB, Ibis or the detectors: ``molehunt --help`` and
``molehunt version`` load only Typer, Rich and pydantic; each verb imports the
library it needs when it runs.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from molehunt.errors import MolehuntError, exit_code

if TYPE_CHECKING:
    from molehunt.config import Settings
    from molehunt.investigate.reads import Ask
    from molehunt.investigate.service import Investigation
    from molehunt.store import Store

out = Console()
err = Console(stderr=True)


def fail(error: MolehuntError) -> int:
    """Say ``error`` on standard error (no traceback) and give the exit status it
    ends the command with: :func:`molehunt.errors.exit_code` (1 failure, 2 invalid
    input, settings or store, 3 not found, 4 conflict, 5 access, 6 try later)."""
    err.print(f"[red]error:[/red] {escape(str(error))}", highlight=False)
    return exit_code(error)


class Verbs(TyperGroup):
    """A group of verbs that ends on a molehunt error itself, by :func:`fail`: for a
    group that also runs on its own (``molehunt case``: its tests invoke it without
    the main app). The main app leaves its errors to :func:`molehunt.cli.main`, which
    ends the same way, so a test invoking :data:`app` sees the error raised."""

    def invoke(self, ctx: Any) -> Any:  # a Typer context
        try:
            return super().invoke(ctx)
        except MolehuntError as e:
            raise typer.Exit(fail(e)) from None


def verbs(help: str) -> typer.Typer:
    """A group of sub-verbs that ends on errors as :class:`Verbs`."""
    return typer.Typer(
        cls=Verbs,
        help=help,
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )


app = typer.Typer(
    help="Catch insiders stealing client personal data, and tell who leaked a dataset.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


class Format(StrEnum):
    table = "table"
    json = "json"


FormatOption = Annotated[Format, typer.Option("--format", "-f", help="Output format.")]


class Context:
    """What ``molehunt --db ... --key-file ...`` asked for; the settings are loaded
    (file, environment, options) when a verb first needs them, so that ``--help`` and
    ``version`` never load pydantic's models."""

    def __init__(self, overrides: dict[str, Any]) -> None:
        self.overrides = overrides
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            from molehunt.config import Settings

            self._settings = Settings.load(self.overrides)
            if self._settings.audit_syslog:
                from molehunt.audit import configure

                configure(syslog=self._settings.audit_syslog)
        return self._settings

    def open_store(self) -> Store:
        """The store, for this process alone (a running server holding it is said in
        words: stop it, or use its web UI)."""
        from molehunt.investigate.local import refuse_write
        from molehunt.store import Store

        refuse_write(self.settings.db)
        return Store.open(self.settings.db, memory_limit=self.settings.memory_limit)


def ctx_of(ctx: typer.Context) -> Context:
    obj = ctx.obj
    assert isinstance(obj, Context)
    return obj


def settings_of(ctx: typer.Context) -> Settings:
    """The settings the main app's callback loaded (``molehunt --db ...``; a group's
    verb looks up the chain of contexts), else the defaults."""
    from molehunt.config import Settings

    c: Any = ctx
    while c is not None:
        found = getattr(c.obj, "settings", None)
        if isinstance(found, Settings):
            return found
        c = c.parent
    return Settings.load({})


@contextmanager
def investigation(ctx: typer.Context) -> Iterator[Investigation]:
    """The audited service (:mod:`molehunt.investigate.service`) over the store, for
    this process alone; the actor of its calls is :func:`operator`."""
    from molehunt.investigate.local import refuse_write
    from molehunt.investigate.service import Investigation
    from molehunt.store import Store

    settings = settings_of(ctx)
    refuse_write(settings.db)
    with Store.open(settings.db, memory_limit=settings.memory_limit) as store:
        yield Investigation(store, settings)


def plain(value: Any) -> Any:
    """A service answer (dataclasses, tuples, UTC datetimes) as JSON values: times
    as ISO strings, as the library's reports give them."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def read_answer(ctx: typer.Context, verb: str, ask: Ask) -> Any:
    """A read verb's answer (JSON values, :mod:`molehunt.investigate.reads`): from the
    running ``molehunt serve`` when it holds the store (its actor ``cli:<os user>``),
    else from the audited service over the store itself, as :func:`operator`."""
    from molehunt.investigate import local as remote
    from molehunt.investigate.reads import READS

    context = ctx_of(ctx)
    settings = context.settings
    found = remote.live_endpoint(settings.db)
    if found is not None:
        answer = remote.ask_server(found, verb, ask.model_dump(mode="json"), _os_user())
        if answer is not None:
            return answer
    from molehunt.investigate.service import operator

    with investigation(ctx) as service:
        return READS[verb].answer(service, operator(), ask)


def _os_user() -> str:
    from molehunt.audit import actor

    return actor()


def require_existing(paths: list[Path]) -> None:
    missing = [p for p in paths if not p.exists()]
    if missing:
        raise typer.BadParameter(f"no such file or folder: {', '.join(map(str, missing))}")


def print_json(data: Any) -> None:
    out.print_json(json.dumps(data, default=str, ensure_ascii=False))


def parse_time(value: str | None, zone: str) -> datetime:
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


def print_detector_failures(failures: list[dict[str, str]]) -> None:
    for f in failures:
        err.print(
            f"[red]detector {f['detector']} failed[/red] at {f['where']}: {f['error']} "
            "(its findings of these days are missing; the others' are stored)"
        )


def parse_day(value: str | None, zone: str) -> date:
    if value is None:
        return datetime.now(ZoneInfo(zone)).date()
    from molehunt.times import checked_day

    try:
        return checked_day(date.fromisoformat(value))
    except ValueError as e:
        raise typer.BadParameter(f"{value!r} is not a date like 2026-05-03 ({e})") from e
