"""Where detectors run: the store's DuckDB, or local Spark over a Parquet copy of it.

The detectors are the same Ibis expressions on either engine and never ask which one
runs them; this module is the only place that knows. A detector reaches the data
through two calls, ``table(name)`` and ``to_pyarrow(expr)``, which the store's Ibis
backend answers for DuckDB and :class:`SparkEngine` answers for Spark.

Spark needs the optional extra (``pip install 'molehunt[spark]'``) and Java 17; the
session and the engine choice are in :mod:`molehunt.compute.spark`.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa

from molehunt.compute.lake import lake_tables
from molehunt.compute.spark import ENGINES, EngineError, spark_session
from molehunt.store import Store


class SparkEngine:
    """Local Spark over the store: each table is copied to Parquet when first read,
    unless a lake holds it already."""

    def __init__(
        self,
        store: Store,
        folder: Path,
        *,
        lake: Path | None = None,
        master: str = "local[2]",
        memory: str = "2g",
    ) -> None:
        import ibis

        self.store = store
        self.folder = folder
        self.lake = lake_tables(lake) if lake else {}
        self.session = spark_session(master, memory, "molehunt-detect")
        self.backend = ibis.pyspark.connect(self.session)
        self._exported: set[str] = set()

    def table(self, name: str) -> Any:
        if name in self.lake:
            if name not in self._exported:
                self.backend.read_parquet(str(self.lake[name] / "*.parquet"), table_name=name)
                self._exported.add(name)
            return self.backend.table(name)
        if name not in self._exported:
            path = self.folder / f"{name}.parquet"
            # The name comes from the detectors' code, never from input; quoted anyway.
            quoted = str(path).replace("'", "''")
            self.store.con.execute(
                f"COPY (SELECT * FROM \"{name}\") TO '{quoted}' (FORMAT parquet)"
            )
            self.backend.read_parquet(path, table_name=name)
            self._exported.add(name)
        return self.backend.table(name)

    def to_pyarrow(self, expr: Any) -> pa.Table:
        out: pa.Table = self.backend.to_pyarrow(expr)
        return out

    @property
    def exported(self) -> tuple[str, ...]:
        """The store tables copied so far (those the detectors read)."""
        return tuple(sorted(self._exported))

    def close(self) -> None:
        self.session.stop()


@contextmanager
def detection_backend(
    store: Store, engine: str = "duckdb", *, lake: Path | None = None
) -> Iterator[Any]:
    """What a :class:`~molehunt.detect.base.DetectContext` reads through, on ``engine``
    (on Spark, the event tables of ``lake`` when given, instead of the store's)."""
    if engine not in ENGINES:
        raise EngineError(f"unknown engine {engine!r}; one of: {', '.join(ENGINES)}")
    if engine == "duckdb":
        if lake is not None:
            raise EngineError("a lake is read on Spark: use --engine spark")
        yield store.ibis
        return
    with tempfile.TemporaryDirectory(prefix="molehunt-spark-") as tmp:
        spark = SparkEngine(store, Path(tmp), lake=lake)
        try:
            yield spark
        finally:
            spark.close()
