"""The embedded store (DuckDB, reached through Ibis for analytics)."""

from molehunt.store.schema import EVENT_TABLES, MIGRATIONS, REFERENCE_TABLES
from molehunt.store.store import Store

__all__ = ["EVENT_TABLES", "MIGRATIONS", "REFERENCE_TABLES", "Store"]
