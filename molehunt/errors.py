"""Errors raised by molehunt.

Every error molehunt raises on purpose derives from :class:`MolehuntError`, and
errors about input carry where the input came from::

    MolehuntError
     ├── ConfigError          a setting is missing or invalid
     ├── KeyMissingError      no client-hashing key (run ``molehunt init``)
     ├── StoreError           the store cannot be opened or migrated
     └── InputError           input that cannot be read (carries a Location)
          └── UnknownKindError  the kind of a file cannot be told from its content

Bad *records* inside a readable file are not raised: parsers set them aside as
:class:`molehunt.ingest.base.Rejected` and the store keeps them in quarantine.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Location:
    """Where something came from: a file and, when known, a line or byte offset."""

    path: str
    line: int | None = None
    offset: int | None = None

    def __str__(self) -> str:
        where = self.path
        if self.line is not None:
            where += f":{self.line}"
        elif self.offset is not None:
            where += f"@{self.offset}"
        return where


class MolehuntError(Exception):
    """Root of every error molehunt raises on purpose."""


class ConfigError(MolehuntError):
    """A setting is missing or invalid."""


class KeyMissingError(MolehuntError):
    """The client-hashing key is not available."""


class StoreError(MolehuntError):
    """The store cannot be opened, migrated or written."""


class InputError(MolehuntError):
    """Input that cannot be read at all."""

    def __init__(self, message: str, location: Location | None = None) -> None:
        self.location = location
        super().__init__(f"{location}: {message}" if location else message)


class UnknownKindError(InputError):
    """The kind of a file cannot be told from its content."""
