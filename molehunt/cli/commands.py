"""The ``molehunt`` command's Typer application: the verb modules register on it as
they are imported, in the order ``molehunt --help`` lists them."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from molehunt.cli._common import Context, app, fail
from molehunt.cli.case import case_app
from molehunt.cli.quarantine import quarantine_app
from molehunt.errors import MolehuntError

__all__ = ["app", "main"]

# The verbs register themselves on ``app`` as their modules are imported, so these
# imports keep the order in which `molehunt --help` lists them; the groups follow.
# isort: off
from molehunt.cli import store, detection, world, web, evidence, audit
# isort: on

_VERB_MODULES = (store, detection, world, web, evidence, audit)
app.add_typer(web.user_app, name="user")
app.add_typer(case_app, name="case")
app.add_typer(quarantine_app, name="quarantine")
app.add_typer(evidence.canary_app, name="canary")


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
    ctx.obj = Context({"db": db, "key_file": key_file})


def main() -> None:
    """The ``molehunt`` command. A molehunt error ends it with its message on standard
    error and the exit status of its class (:func:`molehunt.cli._common.fail`, by
    :func:`molehunt.errors.exit_code`)."""
    try:
        app()
    except MolehuntError as e:
        sys.exit(fail(e))
