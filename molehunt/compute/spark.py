"""The engine choice (DuckDB or Spark) and the Spark session molehunt runs on.

Spark needs the optional extra (``pip install 'molehunt[spark]'``) and Java 17;
PySpark is imported only when a session is asked for.
"""

from __future__ import annotations

import os
import sys
from enum import StrEnum
from typing import Any

from molehunt.errors import MolehuntError


class ComputeEngine(StrEnum):
    """Where detectors run: the store's DuckDB, or local Spark (``--engine``)."""

    duckdb = "duckdb"
    spark = "spark"


ENGINES = tuple(e.value for e in ComputeEngine)


class EngineError(MolehuntError):
    """A detection engine that is unknown or cannot start."""


def spark_session(master: str, memory: str, name: str) -> Any:
    """A Spark session set up as molehunt needs it (UTC, no UI, Arrow transfers)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError as e:
        raise EngineError("the spark engine needs PySpark: pip install 'molehunt[spark]'") from e
    # Python tasks (ingest on Spark) run in this interpreter, where molehunt is installed.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = (
        SparkSession.builder.master(master)
        .appName(name)
        # Set at launch as well as by Ibis: timestamps must mean UTC on both engines.
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.memory", memory)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        # The answers are small; Arrow makes bringing them back cheap.
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        # Parquet written on Spark (attribution's stored reads) holds UTC instants that
        # DuckDB reads as TIMESTAMPTZ, not INT96 wall times.
        .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
        # Local data of one store: the default 200 shuffle partitions only add overhead.
        .config("spark.sql.shuffle.partitions", "8")
    )
    try:
        session = builder.getOrCreate()
    except Exception as e:  # PySpark raises its own runtime errors when Java is missing
        raise EngineError(f"Spark did not start (is Java 17 installed?): {e}") from e
    session.sparkContext.setLogLevel("ERROR")
    return session
