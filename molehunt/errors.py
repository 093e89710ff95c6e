"""Errors raised by molehunt, as one tree.

Every error molehunt raises on purpose derives from :class:`MolehuntError`. The
faces turn them into answers in one place each: the web's exception handler
(:func:`molehunt.web.app.create_app`) by :func:`http_status`, the CLI by
:func:`exit_code`. Nothing reads a message to choose a status. The tree (HTTP
status, exit code)::

    MolehuntError                   anything else went wrong on purpose     500  1
     ├── ConfigError                a setting is missing or invalid         500  2
     │    └── KeyMismatchError      the key is not the store's key          500  2
     │                              (molehunt.keys)
     ├── KeyMissingError            no client-hashing key (molehunt init)   500  2
     ├── StoreError                 the store cannot be opened or migrated  500  2
     │                              (in use by another process, too new)
     ├── InputError                 input that cannot be read (a Location)  400  1
     │    ├── UnknownKindError      a file's kind cannot be told            400  1
     │    └── FormatMismatchError   records do not fit the configured       400  1
     │         │                    format (molehunt.ingest.base)
     │         └── PrefixMismatchError  wrong log_line_prefix
     │                              (molehunt.ingest.postgres)
     ├── InvalidInput               a request's argument is wrong            400  2
     │    ├── CaseError             a case cannot be changed as asked       400  2
     │    │                         (molehunt.cases)
     │    └── UserError             a user cannot be added or changed as    400  2
     │                              asked (molehunt.investigate.users)
     ├── NotFound                   no such thing (or another team's)       404  3
     │    ├── UnknownCaseError      no such case (also a CaseError)         404  3
     │    └── UnknownUserError      no such user (also a UserError)         404  3
     ├── Conflict                   the thing is not in a state that allows 409  4
     │    │                         it
     │    ├── CaseClosedError       the case is closed (also a CaseError)   409  4
     │    └── UserExistsError       the user name is taken (a UserError)    409  4
     ├── AccessError                who is asking may not have this          403  5
     │    ├── Unauthenticated       nobody signed in, or a wrong password   401  5
     │    └── Forbidden             the role may not do this action         403  5
     ├── TryLater                   not now                                  429  6
     │    ├── Throttled             too many wrong passwords: wait          429  6
     │    │                         (``retry_after`` seconds)
     │    └── Locked                the account is locked out until an      423  6
     │                              admin unlocks it
     ├── EngineError                a detection engine failed               500  1
     │                              (molehunt.detect.engines)
     └── UnknownDetectorError       no detector of that name                500  1
                                    (molehunt.detect.runner)

Bad *records* inside a readable file are not raised: parsers set them aside as
:class:`molehunt.ingest.base.Rejected` and the store keeps them in quarantine.

An error the service layer has already written to the audit trail (a refusal) has
``audited = True``, so a face does not write a second row for it.
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

    #: True once the refusal is on the audit trail (the service wrote its row).
    audited: bool = False


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


class InvalidInput(MolehuntError):
    """An argument of a request is wrong (a bad day, a blank reason, an unknown role)."""


class NotFound(MolehuntError):
    """The thing asked for does not exist, or is not the asker's to see (another
    team's case is answered as none)."""


class Conflict(MolehuntError):
    """The thing exists but is not in a state that allows what was asked."""


class AccessError(MolehuntError):
    """Who is asking may not have this."""


class Unauthenticated(AccessError):
    """Nobody is signed in, or the name or password is wrong."""


class Forbidden(AccessError):
    """The asker's role does not allow the action
    (:mod:`molehunt.investigate.permissions`)."""


class TryLater(MolehuntError):
    """Not now: the same request may succeed later."""


class Throttled(TryLater):
    """Too many wrong passwords: the next try must wait ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: int) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class Locked(TryLater):
    """The account is locked out until an admin unlocks it."""


#: The HTTP status of each kind of error; the most specific class listed wins.
HTTP_STATUS: dict[type[MolehuntError], int] = {
    MolehuntError: 500,
    InputError: 400,
    InvalidInput: 400,
    NotFound: 404,
    Conflict: 409,
    AccessError: 403,
    Unauthenticated: 401,
    Forbidden: 403,
    TryLater: 429,
    Throttled: 429,
    Locked: 423,
}

#: The CLI's exit status of each kind of error; the most specific class listed wins.
EXIT_CODE: dict[type[MolehuntError], int] = {
    MolehuntError: 1,
    ConfigError: 2,
    KeyMissingError: 2,
    StoreError: 2,
    InvalidInput: 2,
    NotFound: 3,
    Conflict: 4,
    AccessError: 5,
    TryLater: 6,
}


def _lookup(exc: MolehuntError, table: dict[type[MolehuntError], int]) -> int:
    for cls in type(exc).__mro__:
        if cls in table:
            return table[cls]
    return table[MolehuntError]


def http_status(exc: MolehuntError) -> int:
    """The HTTP status a web answer gives for ``exc`` (the tree above)."""
    return _lookup(exc, HTTP_STATUS)


def exit_code(exc: MolehuntError) -> int:
    """The exit status a CLI verb ends with for ``exc`` (the tree above)."""
    return _lookup(exc, EXIT_CODE)
