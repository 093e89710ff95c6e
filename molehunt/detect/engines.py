"""Where detectors run: the store's DuckDB, or local Spark over a Parquet copy of it.

The detectors are the same Ibis expressions on either engine and never ask which one
runs them; this module is the only place that knows. A detector reaches the data
through two calls, ``table(name)`` and ``to_pyarrow(expr)``, which the store's Ibis
backend answers for DuckDB and :class:`~molehunt.compute.tables.SparkTables` (a lake's
tables where it holds them, else a Parquet copy of the store's) answers for Spark.

Spark needs the optional extra (``pip install 'molehunt[spark]'``) and Java 17; the
session and the engine choice are in :mod:`molehunt.compute.spark`.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from molehunt.compute.spark import ENGINES, EngineError
from molehunt.compute.tables import SparkTables
from molehunt.store import Store


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
        spark = SparkTables(store, Path(tmp), lake=lake, name="molehunt-detect")
        try:
            yield spark
        finally:
            spark.close()
