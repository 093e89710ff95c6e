"""The layout of a Parquet lake: one folder of Parquet files per table.

``molehunt ingest --engine spark`` writes it (rejected records to ``quarantine/``);
``molehunt detect --engine spark --lake LAKE`` reads its event tables.
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
