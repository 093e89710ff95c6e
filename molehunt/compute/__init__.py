"""Compute: where the heavy work runs (the store's DuckDB, or Apache Spark over a lake).

Ingest writes a Parquet lake on Spark and detection reads it on Spark; both take the
session and the lake's layout from here, so neither imports the other.
"""
