"""Role entitlements export (``entitlements.csv``)."""

from __future__ import annotations

from molehunt.ingest.reference import ReferenceCsvParser


class EntitlementsParser(ReferenceCsvParser):
    """What each role may do on which system and resource."""

    kind = "entitlements"
    description = "what each role may access (entitlements.csv)"
    table = "entitlements"
    required = ("role", "system", "resource", "access")
    signature = frozenset({"role", "system", "resource", "access"})
