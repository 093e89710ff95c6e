"""Moved to :mod:`molehunt.investigate.users` (the service layer owns users and
sessions); this name stays for the CLI's imports until its verbs call the service."""

from molehunt.investigate.users import *  # noqa: F403
