"""The ``molehunt`` command: a thin face over the library.

One module per group of verbs (:mod:`.store`, :mod:`.detection`, :mod:`.world`,
:mod:`.web`, :mod:`.evidence`, :mod:`.audit`, :mod:`.case`, :mod:`.quarantine`); what
they share is in :mod:`._common`. Importing this package loads no heavy library:
each verb imports what it needs when it runs.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from molehunt.cli.commands import app

__all__ = ["app", "main"]


def main() -> None:
    """The ``molehunt`` command. ``molehunt version`` is answered before the command
    line framework is imported (it needs none of it); everything else goes to
    :func:`molehunt.cli.commands.main`."""
    if sys.argv[1:] == ["version"]:
        from molehunt import __version__

        print(__version__)
        return
    from molehunt.cli.commands import main as run

    run()


def __getattr__(name: str) -> Any:
    """``app`` is imported on first use, so that ``molehunt version`` loads no Typer."""
    if name == "app":
        from molehunt.cli.commands import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
