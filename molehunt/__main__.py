"""``python -m molehunt``: the ``molehunt`` command."""

from molehunt.cli import main

main()
