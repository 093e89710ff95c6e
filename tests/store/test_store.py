from __future__ import annotations

from pathlib import Path

import pytest

from molehunt.errors import StoreError
from molehunt.store import EVENT_TABLES, MIGRATIONS, REFERENCE_TABLES, Store


def test_new_store_is_migrated_to_the_latest_version(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.duckdb") as store:
        assert store.schema_version() == max(m.version for m in MIGRATIONS)
        counts = store.table_counts()
    for table in [*EVENT_TABLES, *(f"ref_{t}" for t in REFERENCE_TABLES), "clients"]:
        assert counts[table] == 0


def test_reopening_applies_nothing_twice(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    Store.open(path).close()
    with Store.open(path) as store:
        assert store.migrate() == []
        rows = store.query("SELECT count(*) AS n FROM schema_migrations")
    assert rows[0]["n"] == len(MIGRATIONS)


def test_a_store_from_a_newer_molehunt_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    with Store.open(path) as store:
        store.con.execute("INSERT INTO schema_migrations VALUES (999, 'future', now())")
    with pytest.raises(StoreError, match="newer than this molehunt"):
        Store.open(path)


def _crash_mid_transaction(store: Store) -> None:
    with store.transaction() as con:
        con.execute(
            "INSERT INTO quarantine (source_id, kind, path, line, reason, raw, quarantined_at) "
            "VALUES ('s', 'hr', 'p', 1, 'r', 'raw', now())"
        )
        raise RuntimeError("crash")


def test_a_failed_transaction_stores_nothing(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.duckdb") as store:
        with pytest.raises(RuntimeError):
            _crash_mid_transaction(store)
        assert store.table_counts()["quarantine"] == 0


def test_a_bad_memory_limit_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="not a size"):
        Store.open(tmp_path / "s.duckdb", memory_limit="lots")
