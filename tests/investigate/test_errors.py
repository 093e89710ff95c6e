"""The one error tree: every class in the docstring's tree, mapped to one HTTP status
and one exit code, the most specific class winning."""

from __future__ import annotations

import re

import pytest

from molehunt import errors
from molehunt.cases import CaseClosedError, CaseError, UnknownCaseError
from molehunt.compute.spark import EngineError
from molehunt.detect.runner import UnknownDetectorError
from molehunt.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    Locked,
    MolehuntError,
    NotFound,
    Throttled,
    Unauthenticated,
    exit_code,
    http_status,
)
from molehunt.ingest.base import FormatMismatchError
from molehunt.ingest.postgres.stderr import PrefixMismatchError
from molehunt.investigate.users import UnknownUserError, UserError, UserExistsError
from molehunt.keys import KeyMismatchError

ALL = [
    errors.ConfigError,
    KeyMismatchError,
    errors.KeyMissingError,
    errors.StoreError,
    errors.InputError,
    errors.UnknownKindError,
    FormatMismatchError,
    PrefixMismatchError,
    InvalidInput,
    CaseError,
    UserError,
    NotFound,
    UnknownCaseError,
    UnknownUserError,
    Conflict,
    CaseClosedError,
    UserExistsError,
    errors.AccessError,
    Unauthenticated,
    Forbidden,
    errors.TryLater,
    Throttled,
    Locked,
    EngineError,
    UnknownDetectorError,
]


def _make(cls: type[MolehuntError]) -> MolehuntError:
    if cls is Throttled:
        return Throttled("wait", 3)
    return cls("x")


@pytest.mark.parametrize(
    ("cls", "status", "code"),
    [
        (MolehuntError, 500, 1),
        (errors.ConfigError, 500, 2),
        (KeyMismatchError, 500, 2),
        (errors.StoreError, 500, 2),
        (errors.InputError, 400, 1),
        (PrefixMismatchError, 400, 1),
        (InvalidInput, 400, 2),
        (CaseError, 400, 2),
        (UserError, 400, 2),
        (NotFound, 404, 3),
        (UnknownCaseError, 404, 3),
        (UnknownUserError, 404, 3),
        (Conflict, 409, 4),
        (CaseClosedError, 409, 4),
        (UserExistsError, 409, 4),
        (Unauthenticated, 401, 5),
        (Forbidden, 403, 5),
        (Throttled, 429, 6),
        (Locked, 423, 6),
    ],
)
def test_each_error_has_one_status_and_one_exit_code(
    cls: type[MolehuntError], status: int, code: int
) -> None:
    assert http_status(_make(cls)) == status
    assert exit_code(_make(cls)) == code


def test_the_docstring_tree_names_every_error_class() -> None:
    doc = errors.__doc__ or ""
    named = set(re.findall(r"[├└]── (\w+)", doc)) | {"MolehuntError"}
    assert {c.__name__ for c in ALL} <= named
    for cls in ALL:
        assert issubclass(cls, MolehuntError)


def test_errors_of_two_branches_keep_both() -> None:
    """A closed case is a Conflict to the faces and still a CaseError to its callers."""
    assert issubclass(CaseClosedError, CaseError)
    assert issubclass(UnknownCaseError, CaseError)
    assert issubclass(UnknownUserError, UserError)
    assert not MolehuntError("x").audited
