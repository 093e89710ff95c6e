"""The store's tables on local Spark: a lake's Parquet folders where it holds them,
else a Parquet copy of the store's table made when first read.

It answers the two calls Ibis code reads through (``table(name)``, ``to_pyarrow(expr)``),
as the store's Ibis backend does on DuckDB; attribution on Spark
(:mod:`molehunt.attribute.on_spark`) reads the store this way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa

from molehunt.compute.lake import lake_tables
from molehunt.compute.spark import spark_session
from molehunt.store import Store


class SparkTables:
    """Local Spark over the store, and over ``lake`` for the tables it holds."""

    def __init__(
        self,
        store: Store,
        folder: Path,
        *,
        lake: Path | None = None,
        master: str = "local[2]",
        memory: str = "2g",
        name: str = "molehunt",
    ) -> None:
        import ibis

        self.store = store
        self.folder = folder
        self.lake = lake_tables(lake) if lake else {}
        self.session = spark_session(master, memory, name)
        self.backend = ibis.pyspark.connect(self.session)
        self._read: set[str] = set()
        self._copied: set[str] = set()

    def table(self, name: str) -> Any:
        if name not in self._read:
            if name in self.lake:
                self.backend.read_parquet(str(self.lake[name] / "*.parquet"), table_name=name)
            else:
                path = self.folder / f"{name}.parquet"
                # Names come from molehunt's code, never from input; quoted anyway.
                quoted = str(path).replace("'", "''")
                self.store.con.execute(
                    f"COPY (SELECT * FROM \"{name}\") TO '{quoted}' (FORMAT parquet)"
                )
                self.backend.read_parquet(path, table_name=name)
                self._copied.add(name)
            self._read.add(name)
        return self.backend.table(name)

    def to_pyarrow(self, expr: Any) -> pa.Table:
        out: pa.Table = self.backend.to_pyarrow(expr)
        return out

    def to_parquet(self, expr: Any, folder: Path) -> Path:
        """Write ``expr`` on Spark as a folder of Parquet files (nothing through the driver)."""
        self.backend.to_parquet(expr, folder)
        return folder

    @property
    def copied(self) -> tuple[str, ...]:
        """The store tables copied to Parquet so far (those read that the lake lacks)."""
        return tuple(sorted(self._copied))

    def close(self) -> None:
        self.session.stop()
