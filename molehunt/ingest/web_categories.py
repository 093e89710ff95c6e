"""Web category list (``web_categories.csv``)."""

from __future__ import annotations

from molehunt.ingest.reference import ReferenceCsvParser


def _domain(value: str) -> str:
    return value.lower().strip(".")


class WebCategoriesParser(ReferenceCsvParser):
    """Domain suffixes and their category (shopping, chat, ...)."""

    kind = "web-categories"
    description = "domain categories (web_categories.csv)"
    table = "web_categories"
    required = ("domain", "category")
    signature = frozenset({"domain", "category"})
    converters = {"domain": _domain, "category": str.lower}
