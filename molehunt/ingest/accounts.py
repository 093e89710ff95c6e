"""Account inventory export (``accounts.csv``)."""

from __future__ import annotations

from molehunt.ingest.reference import ReferenceCsvParser, one_of


class AccountsParser(ReferenceCsvParser):
    """Accounts on each system, their owner, kind and when they were disabled."""

    kind = "accounts"
    description = "accounts per system (accounts.csv)"
    table = "accounts"
    required = ("account", "system", "kind")
    signature = frozenset({"account", "system", "owner_employee_id"})
    converters = {"kind": one_of("human", "service", "shared", "admin")}
