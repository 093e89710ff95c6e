"""Attribution's once-per-store step on local Spark, over a Parquet lake.

``molehunt attribute FILE --engine spark --lake LAKE`` builds the stored reads
(:mod:`molehunt.attribute.overlap`: ``attr_reads``, ``attr_readers``,
``attr_links``, ``attr_refused``) on Spark instead of DuckDB; ranking a file then
reads them from the store as ever, so the suspects and their scores are the same.

On Spark, reads are resolved to people by the same :class:`~molehunt.resolve.Resolver`
as detection uses, over the lake's event tables (the store's reference tables and
client master are copied to Parquet when read; without a lake, every table is). The
database statements among them come back to the driver and are replayed there
against the store's client master, as on DuckDB (one evaluation per distinct
statement; the application's listed reads, most of the rows, never leave Spark).
Spark joins every read with the clients it returned (the lake's ``record_access``
and the replayed rows) and writes ``attr_reads`` as Parquet, which the store loads
sorted by reader (counting each reader's clients as it goes); the links come back as
a small table.

What the stored reads were built from names the lake (its files, bytes and last
change): a run on Spark rebuilds them when the lake or the store changed; any other
attribution uses them until the store changes.

Spark's outputs go to a temporary folder of the driver, which ``local[2]`` executors
share; on a cluster it would have to be a shared filesystem, as the lake is.
"""

from __future__ import annotations

import json
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import ibis
import pyarrow as pa
import pyarrow.parquet as pq

from molehunt.attribute.overlap import READ_COLUMNS, READERS_SQL, ReadOverlapAttributor
from molehunt.attribute.replay import MIN_CONFIDENCE
from molehunt.compute.lake import lake_state
from molehunt.compute.tables import SparkTables
from molehunt.config import DetectionSettings, Settings, detection_settings
from molehunt.resolve import Resolver
from molehunt.store import Store
from molehunt.times import DEFAULT_TIMEZONE

#: Columns of ``attr_reads``, in the store's order.
STORED_COLUMNS = (
    "who",
    "actor",
    "event_id",
    "time",
    "system",
    "account",
    "hostname",
    "account_owner",
    "host_person",
    "client_id",
    "how",
    "confidence",
)


class SparkAttributor(ReadOverlapAttributor):
    """A :class:`ReadOverlapAttributor` whose stored reads are built on local Spark,
    from ``lake`` when given (module doc)."""

    def __init__(
        self,
        store: Store,
        settings: DetectionSettings | None = None,
        timezone: str = DEFAULT_TIMEZONE,
        *,
        lake: Path | None = None,
        master: str = "local[2]",
        memory: str = "2g",
    ) -> None:
        super().__init__(store, settings, timezone)
        self.lake = lake.resolve() if lake is not None else None
        self.master = master
        self.memory = memory
        self.copied: tuple[str, ...] = ()  # store tables the last build copied to Spark

    #: Rebuilt whole on Spark whenever the store or the lake changed.
    extends = False

    def built_from(self) -> str:
        found = json.loads(super().built_from())
        if self.lake is not None:
            found["lake"] = {"path": str(self.lake), "tables": lake_state(self.lake)}
        return json.dumps(found, sort_keys=True)

    def describes(self, stored: str) -> bool:
        """Exactly: built from this store and this lake (or from the store alone)."""
        found = json.loads(stored)
        found.pop("unsorted", None)
        return bool(found == json.loads(self.built_from()))

    def _build(self) -> None:
        started = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="molehunt-attribute-") as tmp:
            spark = SparkTables(
                self.store,
                Path(tmp),
                lake=self.lake,
                master=self.master,
                memory=self.memory,
                name="molehunt-attribute",
            )
            try:
                self._build_on(spark, Path(tmp), started)
            finally:
                self.copied = spark.copied
                spark.close()

    def _replayed_rows(self, events: list[str], path: Path) -> None:
        """Write to ``path`` the clients the confident replays of ``events`` returned
        (``record_access`` rows with how 'replayed'), with each replay's confidence."""
        con = self.store.con
        con.register("_spark_events", pa.table({"event_id": pa.array(events, pa.string())}))
        quoted = str(path).replace("'", "''")
        try:
            con.execute(
                f"""COPY (SELECT a.event_id, a.client_id, a.how, p.confidence
                          FROM record_access a JOIN attr_replayed p USING (event_id)
                          SEMI JOIN _spark_events s USING (event_id)
                          WHERE a.how = 'replayed' AND p.confidence >= {MIN_CONFIDENCE}
                          ORDER BY a.event_id, a.client_id)
                    TO '{quoted}' (FORMAT parquet)"""
            )
        finally:
            con.unregister("_spark_events")

    def _build_on(self, spark: SparkTables, tmp: Path, started: float) -> None:
        with Resolver(
            spark, self.settings, self.as_of(_last_read(spark)), timezone=self.timezone
        ) as ctx:
            reads = ctx.reads().select(*READ_COLUMNS)
            reads = reads.mutate(
                who=ibis.coalesce(
                    reads.actor, ibis.literal("~") + reads.system + ":" + reads.account
                )
            )
            statements = _statements(spark, reads, tmp / "statements")
            refused = self.replay(statements)
            replayed = tmp / "replayed.parquet"
            self._replayed_rows([str(s[0]) for s in statements], replayed)
            listed = spark.table("record_access")
            access = listed.filter(listed.how != "replayed").select(
                "event_id", "client_id", "how", confidence=ibis.null("float64")
            )
            access = access.union(spark.backend.read_parquet(replayed))
            stored = reads.join(access, "event_id").select(*STORED_COLUMNS)
            folder = spark.to_parquet(stored, tmp / "attr_reads")
            links = spark.to_pyarrow(_links(reads))
        files = str(folder / "*.parquet").replace("'", "''")
        written = any(folder.glob("*.parquet"))  # none when nobody read a client

        def fill(tx: Any) -> None:
            if written:
                tx.execute(
                    f"""INSERT INTO attr_reads SELECT {", ".join(STORED_COLUMNS)}
                        FROM read_parquet('{files}') ORDER BY who, client_id"""
                )
            # Counted by the scan that loads them (a second Spark job cost more here).
            tx.execute(READERS_SQL)
            tx.register("_attr_links", links)
            tx.execute("INSERT INTO attr_links SELECT who, link FROM _attr_links")
            tx.unregister("_attr_links")

        self.save(fill, refused, started)


def _last_read(spark: SparkTables) -> datetime | None:
    """The time of the last database statement or application access."""
    times = spark.table("events_db").select("time").union(spark.table("events_app").select("time"))
    found = spark.to_pyarrow(times.aggregate(last=times.time.max())).column(0).to_pylist()
    last = found[0] if found else None
    return last if isinstance(last, datetime) else None


def _statements(spark: SparkTables, reads: Any, folder: Path) -> list[tuple[Any, ...]]:
    """The logged statements of the database reads, with their row counts (overlap's
    ``STATEMENT_ROWS``), brought to the driver for replay (as Parquet: Ibis collects
    through pandas, which costs memory and turns counts into floats)."""
    db = spark.table("events_db")
    db = db.filter(db.statement.notnull()).select(
        "event_id",
        "statement",
        "parameters",
        rows=ibis.cases(
            (db.bulk_unknown | (db.rows_source == "unknown"), ibis.null("int64")),
            else_=db.rows,
        ),
    )
    crm = reads.filter(reads.system == "crm-db").select("event_id")
    found = pq.read_table(spark.to_parquet(db.join(crm, "event_id"), folder))
    if found.num_rows == 0:
        return []
    return list(
        zip(
            *(found[c].to_pylist() for c in ("event_id", "statement", "parameters", "rows")),
            strict=True,
        )
    )


def _links(reads: Any) -> Any:
    """What links people (overlap's ``LINKS_SQL``): accounts and source hosts."""
    accounts = reads.select(
        "who", link=ibis.literal("account ") + reads.system + ":" + reads.account
    )
    hosts = reads.filter(reads.hostname.notnull()).select(
        "who", link=ibis.literal("host ") + reads.hostname
    )
    return accounts.union(hosts, distinct=True)


def prepare_on_spark(store: Store, settings: Settings, lake: Path | None = None) -> bool:
    """Build the stored reads on Spark (from ``lake`` when given) unless they are
    current for this store and lake; whether they were rebuilt."""
    attributor = SparkAttributor(store, detection_settings(settings), settings.timezone, lake=lake)
    attributor.prepare()
    return attributor.rebuilt


__all__ = ["SparkAttributor", "prepare_on_spark"]
