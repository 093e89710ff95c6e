"""The embedded store: one DuckDB file, one writer, migrations, an Ibis view."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from molehunt.errors import StoreError
from molehunt.store.schema import EVENT_TABLES, MIGRATIONS, REFERENCE_TABLES

if TYPE_CHECKING:
    import ibis.backends.duckdb


class Store:
    """A molehunt store in a DuckDB file (or in memory with ``":memory:"``).

    Writes go through :meth:`transaction`; analytics through :attr:`ibis`, which
    shares this connection, so one process holds the file (DuckDB allows one writer).

    >>> with Store.open(":memory:") as store:
    ...     store.schema_version() >= 1
    True
    """

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        path: str,
        *,
        write_lock: AbstractContextManager[Any] | None = None,
        read_only: bool = False,
    ) -> None:
        self.con = con
        self.path = path
        self.read_only = read_only
        self._ibis: ibis.backends.duckdb.Backend | None = None
        # Held by every transaction when set: the one writer of a multi-threaded server.
        self.write_lock = write_lock

    @classmethod
    def open(cls, path: str | Path, *, memory_limit: str = "1GB", read_only: bool = False) -> Store:
        """Open (creating and migrating if needed) the store at ``path``.

        The store holds evidence, the audit trail and password hashes: its file and
        its write-ahead log are made readable by their owner only (0600), whatever
        the umask. DuckDB creates the log again after each checkpoint, so opening a
        store file tightens the process's umask to at least 077 for good.
        """
        where = str(path)
        if not where.startswith(":memory:"):
            os.umask(os.umask(0o077) | 0o077)
        try:
            con = duckdb.connect(where, read_only=read_only)
        except duckdb.Error as e:
            raise StoreError(_open_failure(where, e)) from e
        con.execute("SET enable_progress_bar = false")
        con.execute(f"SET memory_limit = '{_checked_size(memory_limit)}'")
        con.execute("SET TimeZone = 'UTC'")
        store = cls(con, where, read_only=read_only)
        if not read_only:
            store.migrate()
        return store

    def close(self) -> None:
        self.con.close()

    def cursor(self, *, write_lock: AbstractContextManager[Any] | None = None) -> Store:
        """The same database over a new DuckDB connection (``con.cursor()``), for one
        thread: many such readers run at once while one writer writes. ``write_lock``
        (else this store's) is held by every :meth:`transaction` of the new store."""
        cur = self.con.cursor()
        cur.execute("SET TimeZone = 'UTC'")
        return Store(
            cur, self.path, write_lock=write_lock or self.write_lock, read_only=self.read_only
        )

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def ibis(self) -> ibis.backends.duckdb.Backend:
        """An Ibis backend on this connection, for engine-portable analytics."""
        if self._ibis is None:
            import ibis

            self._ibis = ibis.duckdb.from_connection(self.con)
        return self._ibis

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """Run a block in one transaction: all of it is stored, or none (under the
        store's write lock, when it has one)."""
        with self.write_lock or nullcontext():
            self.con.execute("BEGIN TRANSACTION")
            try:
                yield self.con
            except BaseException:
                self.con.execute("ROLLBACK")
                raise
            else:
                self.con.execute("COMMIT")

    # -- schema ---------------------------------------------------------------

    def schema_version(self) -> int:
        exists = self.con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_migrations'"
        ).fetchall()
        if not exists[0][0]:
            return 0
        rows = self.con.execute(
            "SELECT coalesce(max(version), 0) FROM schema_migrations"
        ).fetchall()
        return int(rows[0][0])

    def migrate(self) -> list[int]:
        """Apply every migration newer than the store; return the versions applied."""
        self.con.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            "version INTEGER PRIMARY KEY, description VARCHAR, applied_at TIMESTAMPTZ)"
        )
        current = self.schema_version()
        latest = max(m.version for m in MIGRATIONS)
        if current > latest:
            raise StoreError(
                f"store {self.path} has schema version {current}, newer than this "
                f"molehunt ({latest}): upgrade molehunt"
            )
        applied: list[int] = []
        for migration in MIGRATIONS:
            if migration.version <= current:
                continue
            with self.transaction() as con:
                for statement in migration.statements:
                    con.execute(statement)
                con.execute(
                    "INSERT INTO schema_migrations VALUES (?, ?, now())",
                    [migration.version, migration.description],
                )
            applied.append(migration.version)
        return applied

    # -- reading helpers --------------------------------------------------------

    def query(
        self, sql: str, params: list[Any] | dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """Run a read query and return its rows as dicts (for small answers)."""
        cur = self.con.execute(sql, params if params is not None else [])
        names = [d[0] for d in cur.description or []]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def has_tables(self, *names: str) -> bool:
        """Whether every named table exists (a read-only store of an older schema
        lacks the later migrations' tables)."""
        marks = ", ".join("?" for _ in names)
        found = self.con.execute(
            "SELECT count(DISTINCT table_name) FROM duckdb_tables() "
            f"WHERE schema_name = 'main' AND table_name IN ({marks})",
            list(names),
        ).fetchall()
        return int(found[0][0]) == len(set(names))

    def table_counts(self) -> dict[str, int]:
        names = [
            *(f"ref_{n}" for n in REFERENCE_TABLES),
            "clients",
            *EVENT_TABLES,
            "record_access",
            "file_clients",
            "findings",
            "canaries",
            "quarantine",
        ]
        counts: dict[str, int] = {}
        for name in names:
            rows = self.con.execute(f"SELECT count(*) FROM {name}").fetchall()
            counts[name] = int(rows[0][0])
        return counts


_HOLDER = re.compile(r"Conflicting lock is held in (.*?) \(PID (\d+)\)")


def _open_failure(where: str, error: duckdb.Error) -> str:
    """What to tell the user when DuckDB will not open the file: another process
    holding it (a running ``molehunt serve`` or ``watch``) is said in words."""
    text = str(error)
    if "Could not set lock" not in text and "Conflicting lock" not in text:
        return f"cannot open store {where}: {text}"
    held = _HOLDER.search(text)
    who = f" (PID {held.group(2)})" if held else ""
    return (
        f"the store {where} is in use by another process{who}, most likely `molehunt serve` "
        "or `molehunt watch`: a DuckDB store has one process at a time. While it runs, use "
        "its web UI or HTTP API (every look there is audited too), or stop it and run this "
        "command again"
    )


def _checked_size(value: str) -> str:
    cleaned = value.strip().upper()
    number = cleaned.rstrip("KMGTIB")
    if not number.replace(".", "", 1).isdigit() or cleaned == number:
        raise StoreError(f"memory limit {value!r} is not a size like 2GB")
    return cleaned
