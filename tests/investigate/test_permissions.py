"""The permissions table against the roles the README documents: every action x role."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from molehunt.errors import Forbidden
from molehunt.investigate import permissions
from molehunt.investigate.permissions import ACTIONS, OPERATOR, WEB_ROLES, allowed, check
from molehunt.investigate.users import ROLES
from molehunt.models import Actor

#: What each documented role may do (README, "role | may"), as actions.
DOCUMENTED: dict[str, set[str]] = {
    "analyst": {"view-self", "view-status", "view-ranking", "view-evidence", "view-cases"},
    "investigator": {
        "view-self",
        "view-status",
        "view-ranking",
        "view-evidence",
        "view-cases",
        "unmask",
        "attribute",
        "manage-cases",
        "export-case",
    },
    "auditor": {"view-self", "view-audit", "verify-audit"},
    "admin": {"view-self", "view-status", "manage-users"},
    OPERATOR: set(ACTIONS),
}

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.mark.parametrize("action", sorted(ACTIONS))
@pytest.mark.parametrize("role", [*WEB_ROLES, OPERATOR])
def test_every_action_of_every_role_is_as_documented(role: str, action: str) -> None:
    assert allowed(role, action) is (action in DOCUMENTED[role])


def test_the_web_roles_are_the_users_roles_and_the_readme_table_names_them() -> None:
    assert set(WEB_ROLES) == set(ROLES)
    assert OPERATOR not in ROLES  # nobody signs in to the web as the CLI's operator
    table = re.findall(r"^\| `(\w+)` \| ", README.read_text(encoding="utf-8"), re.MULTILINE)
    assert set(WEB_ROLES) <= set(table)


def test_an_unknown_role_may_do_nothing_and_an_unknown_action_is_a_bug() -> None:
    assert permissions.actions_of("visitor") == frozenset()
    with pytest.raises(KeyError):
        allowed("admin", "view-everything")


def test_check_refuses_with_forbidden_naming_the_role_and_action() -> None:
    check(Actor("ann", "analyst", "red", "api"), "view-evidence")
    with pytest.raises(Forbidden, match=r"a analyst may not do this \(unmask\)"):
        check(Actor("ann", "analyst", "red", "api"), "unmask")


def test_evidence_roles_are_the_ones_an_admin_may_not_give_themselves() -> None:
    assert {r for r in ROLES if permissions.reads_evidence(r)} == {"analyst", "investigator"}


def test_every_action_says_what_users_see() -> None:
    for action in ACTIONS.values():
        assert action.description
        assert action.description[0].islower()
        assert OPERATOR in action.roles
