"""Leak attribution: from a file of client data found outside to the people who read it.

:func:`attribute` recognises the client records of a leaked file (exact data
match), then ranks who read them (:class:`ReadOverlapAttributor`); complaints
(:func:`attribute` with ``complaints=True``) match one identifier a row. Canaries
(:mod:`molehunt.attribute.canary`) are planted clients that nobody should read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from molehunt.attribute.leaked import LeakedSet, leaked_set
from molehunt.attribute.overlap import ReadOverlapAttributor, Suspect
from molehunt.config import DetectionSettings
from molehunt.store import Store
from molehunt.times import DEFAULT_TIMEZONE


def attribute(
    store: Store,
    key: bytes,
    path: Path,
    *,
    complaints: bool = False,
    settings: DetectionSettings | None = None,
    timezone: str = DEFAULT_TIMEZONE,
    attributor: ReadOverlapAttributor | None = None,
    limit: int = 20,
) -> dict[str, Any]:
    """The attribution report of ``path`` as the CLI prints it in JSON. A key that is
    not the store's is refused (:class:`molehunt.keys.KeyMismatchError`): it would
    match no client and name no suspect."""
    from molehunt.keys import check_store_key

    check_store_key(store, key)
    found = leaked_set(path, store, key, single_identifier=complaints)
    attributor = attributor or ReadOverlapAttributor(store, settings, timezone)
    suspects = attributor.rank(found.client_ids, limit=limit)
    return report(found, suspects, attributor.files(found.client_ids))


def report(
    found: LeakedSet, suspects: list[Suspect], files: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """The JSON report; ``files``: files found on endpoints that hold leaked records."""
    return {
        "records_in_file": found.records_in_file,
        "client_records": found.client_records,
        "non_client_rows": found.non_client_rows,
        "damaged": found.damaged,
        "suspects": [s.as_json() for s in suspects],
        "files": files or [],
    }


__all__ = ["LeakedSet", "ReadOverlapAttributor", "Suspect", "attribute", "leaked_set", "report"]
