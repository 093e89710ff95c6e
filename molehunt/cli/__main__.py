"""``python -m molehunt.cli``: the ``molehunt`` command."""

from molehunt.cli import main

main()
