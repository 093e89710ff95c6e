"""The layout of a Parquet lake: one folder of Parquet files per table.

``molehunt ingest --engine spark`` writes it (rejected records to ``quarantine/``);
``molehunt detect --engine spark --lake LAKE`` reads its event tables, and
``molehunt attribute FILE --engine spark --lake LAKE`` its reads and record-level rows.
"""

from __future__ import annotations

from pathlib import Path

#: The lake's folder of rejected records (not a table detectors read).
QUARANTINE = "quarantine"


def lake_tables(lake: Path) -> dict[str, Path]:
    """The tables a lake holds, each a folder of Parquet files."""
    if not lake.is_dir():
        return {}
    return {
        d.name: d
        for d in sorted(lake.iterdir())
        if d.is_dir() and d.name != QUARANTINE and any(d.glob("*.parquet"))
    }


def lake_state(lake: Path) -> dict[str, list[int]]:
    """What a lake holds now, per table: its Parquet files, bytes and latest change
    (nanoseconds). Ingest replaces a piece's file whole, so any new or re-parsed
    piece changes it."""
    state: dict[str, list[int]] = {}
    for name, folder in lake_tables(lake).items():
        files = [f.stat() for f in folder.glob("*.parquet")]
        state[name] = [len(files), sum(s.st_size for s in files), max(s.st_mtime_ns for s in files)]
    return state
