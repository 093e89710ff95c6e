"""Which of our clients a leaked file or a complaints list names.

A leaked file is matched like ``molehunt scan`` does (:class:`ClientIndex`: a primary
element plus a second field of the same client). A complaints list often holds one
identifier a row (a phone number, an ID number, a client id), so it is matched on
the primary element alone, and on client ids written in clear.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from molehunt.errors import InputError
from molehunt.pii.edm import ClientIndex
from molehunt.pii.files import DAMAGED_ID, Record, decode, primary_pairs, scan_file
from molehunt.store import Store

_TOKEN = re.compile(r"[A-Za-z0-9_-]+")


@dataclass(frozen=True, slots=True)
class LeakedSet:
    """The clients a file names, with what could not be matched."""

    records_in_file: int  # records holding a personal identifier (rows, lines)
    client_records: int  # of them, records of one of our clients (or canaries)
    non_client_rows: int
    damaged: int  # ID numbers Excel cut to 15 digits: not matchable
    client_ids: tuple[str, ...]  # distinct, sorted
    errors: tuple[str, ...] = ()


def leaked_set(
    path: Path,
    store: Store,
    key: bytes,
    *,
    single_identifier: bool = False,
    indexes: list[ClientIndex] | None = None,
) -> LeakedSet:
    """Clients named in ``path``; ``single_identifier`` for complaints (one value a row)."""
    scan = scan_file(path, key=key)
    if scan.errors and not scan.records:
        raise InputError(f"{path}: {'; '.join(scan.errors)}")
    indexes = indexes if indexes is not None else client_indexes(store)
    records = scan.records
    matched = 0
    ids: set[str] = set()
    for index in indexes:
        # A value is either a client's or a canary's (canaries are checked against
        # the master when planted), so the counts of the indexes add up.
        if single_identifier:
            found = primary_matches(index, records)
            matched += len({r for r, _ in found})
            ids.update(c for _, c in found)
        else:
            match = index.match(records)
            matched += match.records
            ids.update(match.client_ids)
    extra = 0
    if single_identifier:
        listed = listed_client_ids(path, store)
        extra = len(listed - ids)
        ids |= listed
    return LeakedSet(
        records_in_file=len(records) + extra,
        client_records=matched + extra,
        non_client_rows=len(records) - matched,
        damaged=int(scan.findings.get(DAMAGED_ID, 0)),
        client_ids=tuple(sorted(ids)),
        errors=tuple(scan.errors),
    )


def client_indexes(store: Store) -> list[ClientIndex]:
    """The client master and, when any are registered, the canaries."""
    from molehunt.attribute.canary import canary_index

    out = [ClientIndex.from_store(store)]
    canaries = canary_index(store)
    if canaries is not None:
        out.append(canaries)
    return out


def primary_matches(index: ClientIndex, records: Sequence[Record]) -> list[tuple[int, str]]:
    """(record, client id) for every record whose primary element is a client's."""
    which, hashes = primary_pairs(records)
    if len(which) == 0 or len(index.keys) == 0:
        return []
    lo = np.searchsorted(index.keys, hashes, "left")
    hi = np.searchsorted(index.keys, hashes, "right")
    out: list[tuple[int, str]] = []
    for i in np.flatnonzero(hi > lo).tolist():
        for k in range(int(lo[i]), int(hi[i])):
            out.append((int(which[i]), index.client_ids[int(index.rows[k])]))
    return out


def listed_client_ids(path: Path, store: Store) -> set[str]:
    """Client ids written in clear in a text or CSV file (complaints by client id)."""
    if path.suffix.lower() not in {".csv", ".tsv", ".txt"}:
        return set()
    tokens = sorted(set(_TOKEN.findall(decode(path.read_bytes()))))
    if not tokens:
        return set()
    import pyarrow as pa

    store.con.register("_listed_tokens", pa.table({"t": pa.array(tokens, pa.string())}))
    try:
        rows = store.con.execute(
            "SELECT DISTINCT client_id FROM clients JOIN _listed_tokens ON client_id = t"
        ).fetchall()
    finally:
        store.con.unregister("_listed_tokens")
    return {str(r[0]) for r in rows}
