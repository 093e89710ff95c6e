"""Web policy (``web_policy.csv``)."""

from __future__ import annotations

from molehunt.ingest.reference import ReferenceCsvParser, parse_yes_no


class WebPolicyParser(ReferenceCsvParser):
    """Which web categories staff may use."""

    kind = "web-policy"
    description = "allowed web categories (web_policy.csv)"
    table = "web_policy"
    required = ("category", "allowed")
    signature = frozenset({"category", "allowed"})
    converters = {"category": str.lower, "allowed": parse_yes_no}
