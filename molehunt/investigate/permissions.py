"""Who may do what: named actions, each mapped to the roles that may take it, in one table.

The service (:mod:`molehunt.investigate.service`) checks an action before every
answer, and the web's sign-in gate (:func:`molehunt.web.auth.signed_in`) asks this
table too, so a role's rights are written once. The roles are the README's:

=================  ===========================================================
``analyst``        status, the ranking, timelines, who, accounts, events
                   (masked); reads the cases of their team
``investigator``   all of that, plus attribution, unmasking with a reason, and
                   creating, adding to, closing and exporting their team's cases
``auditor``        the audit trail and its verification only
``admin``          users (add, change, disable, unlock) and status
``operator``       the operating-system user running the CLI: every action (they
                   hold the store file itself), and alone the store's upkeep
                   (scans kept, canaries planted, the quarantine); never a web
                   user's role
=================  ===========================================================
"""

from __future__ import annotations

from dataclasses import dataclass

from molehunt.errors import Forbidden
from molehunt.models import Actor

#: The roles a web user may have (:mod:`molehunt.investigate.users`).
WEB_ROLES = ("analyst", "investigator", "auditor", "admin")
#: The CLI's role: the operating-system user who owns the store.
OPERATOR = "operator"


@dataclass(frozen=True, slots=True)
class Action:
    """A named thing someone may do; ``roles``: who may."""

    name: str
    description: str
    roles: frozenset[str]


def _action(name: str, description: str, *roles: str) -> Action:
    return Action(name, description, frozenset({*roles, OPERATOR}))


_EVIDENCE = ("analyst", "investigator")

#: Every action, by name. One line each; the service names them as strings.
ACTIONS: dict[str, Action] = {
    a.name: a
    for a in (
        _action("view-self", "see one's own account and sign out", *WEB_ROLES),
        _action("view-status", "the store's status", "analyst", "investigator", "admin"),
        _action("view-ranking", "the risk ranking of a day and its history", *_EVIDENCE),
        _action("view-evidence", "timelines, who, accounts, events (masked)", *_EVIDENCE),
        _action("view-cases", "list and read the cases of one's team", *_EVIDENCE),
        _action("unmask", "an event as stored, with a reason on the record", "investigator"),
        _action("attribute", "who read the records of a leaked file or complaints", "investigator"),
        _action("manage-cases", "open, add to and close the cases of one's team", "investigator"),
        _action("export-case", "a case's signed zip for court", "investigator"),
        _action("view-audit", "the audit trail", "auditor"),
        _action("verify-audit", "check the audit trail's chain", "auditor"),
        _action("manage-users", "add, change, disable and unlock web users", "admin"),
        _action("store-scans", "keep the scans of files collected from endpoints"),
        _action("plant-canaries", "make canary clients and register them"),
        _action("view-quarantine", "the records set aside at ingest (masked previews)"),
        _action("replay-quarantine", "parse quarantined records again"),
    )
}

#: Actions that show people or evidence: an admin may not give their own account a
#: role that has one of these (another admin must).
EVIDENCE_ACTIONS = frozenset({"view-ranking", "view-evidence", "view-cases", "unmask"})


def roles_for(action: str) -> frozenset[str]:
    """The roles that may take ``action`` (KeyError for an unknown action: a typo in
    the code, not a refusal)."""
    return ACTIONS[action].roles


def allowed(role: str, action: str) -> bool:
    """Whether ``role`` may take ``action``."""
    return role in roles_for(action)


def actions_of(role: str) -> frozenset[str]:
    """Every action ``role`` may take."""
    return frozenset(name for name, a in ACTIONS.items() if role in a.roles)


def reads_evidence(role: str) -> bool:
    """Whether ``role`` shows people or evidence."""
    return bool(actions_of(role) & EVIDENCE_ACTIONS)


def check(actor: Actor, action: str) -> None:
    """:class:`~molehunt.errors.Forbidden` unless ``actor``'s role may take ``action``
    (the caller audits the refusal)."""
    if not allowed(actor.role, action):
        raise Forbidden(f"a {actor.role} may not do this ({action})")
