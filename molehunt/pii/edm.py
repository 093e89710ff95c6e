"""Exact data match: which of the company's clients a file holds.

The client master is in the store only as keyed 64-bit hashes (``clients.<col>_h``,
see :mod:`molehunt.ingest.clients`). Each record of a scanned file (a row, a line)
brings the keyed hashes of its values, made with the same normalisers and key. A
record is a client record when one of its primary elements (ID number, passport,
mobile) is the hash of a client's value *and* at least one other value of the same
record equals another of that client's hashes (name, phone, address...): one
number alone may be a coincidence or a typo, two fields of one row are not.

Lookups go through one sorted array of every client's primary hashes
(``searchsorted``), so a file of a million rows costs one vectorised search.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from molehunt.pii.files import Record, primary_pairs
from molehunt.store import Store

#: Normalisers of client columns that can be a primary element.
PRIMARY_KINDS = frozenset({"id_number", "phone"})


@dataclass(frozen=True, slots=True)
class Match:
    """Client records found among a file's records."""

    records: int  # records (rows, lines) that are client records
    client_ids: list[str]  # distinct, sorted


class ClientIndex:
    """The client master's keyed hashes, arranged for lookups."""

    def __init__(
        self,
        client_ids: Sequence[str],
        columns: dict[str, tuple[str, npt.NDArray[np.int64], npt.NDArray[np.bool_]]],
    ) -> None:
        """``columns``: name -> (normaliser, hashes, present) with one entry per client."""
        self.client_ids = list(client_ids)
        self.names = list(columns)
        n = len(self.client_ids)
        self.hashes = np.zeros((n, len(self.names)), dtype=np.int64)
        self.present = np.zeros((n, len(self.names)), dtype=np.bool_)
        keys, rows, cols = [], [], []
        for j, name in enumerate(self.names):
            kind, hashes, present = columns[name]
            self.hashes[:, j] = hashes
            self.present[:, j] = present
            if kind in PRIMARY_KINDS:
                where = np.flatnonzero(present)
                keys.append(hashes[where])
                rows.append(where)
                cols.append(np.full(len(where), j, dtype=np.int64))
        key = np.concatenate(keys) if keys else np.zeros(0, np.int64)
        order = np.argsort(key, kind="stable")
        self.keys = key[order]
        self.rows = np.concatenate(rows)[order] if rows else np.zeros(0, np.int64)
        self.cols = np.concatenate(cols)[order] if cols else np.zeros(0, np.int64)

    def __len__(self) -> int:
        return len(self.client_ids)

    @classmethod
    def from_store(cls, store: Store) -> ClientIndex:
        """The current client master of ``store`` (empty when none was ingested)."""
        columns = store.query("SELECT name, pii_kind FROM client_columns WHERE role = 'pii'")
        present_cols = {
            r["column_name"]
            for r in store.query(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'clients'"
            )
        }
        chosen = [(c["name"], c["pii_kind"]) for c in columns if f"{c['name']}_h" in present_cols]
        parts = ["client_id"]
        for j, (name, _kind) in enumerate(chosen):
            parts += [f'coalesce("{name}_h", 0) AS h{j}', f'"{name}_h" IS NOT NULL AS p{j}']
        sql = f"SELECT {', '.join(parts)} FROM clients ORDER BY client_id"
        arrays = store.con.execute(sql).fetchnumpy()
        ids = [str(i) for i in arrays["client_id"].tolist()]
        out: dict[str, tuple[str, npt.NDArray[np.int64], npt.NDArray[np.bool_]]] = {}
        for j, (name, kind) in enumerate(chosen):
            values = np.asarray(arrays[f"h{j}"], dtype=np.int64)
            out[name] = (kind, values, np.asarray(arrays[f"p{j}"], dtype=np.bool_))
        return cls(ids, out)

    def match(self, records: Sequence[Record]) -> Match:
        """Client records among ``records`` (each a list of ``(type, keyed hash)``)."""
        which, hashes = primary_pairs(records)
        if len(which) == 0 or len(self.keys) == 0:
            return Match(0, [])
        lo = np.searchsorted(self.keys, hashes, "left")
        hi = np.searchsorted(self.keys, hashes, "right")
        matched_records: set[int] = set()
        clients: set[int] = set()
        for i in np.flatnonzero(hi > lo).tolist():
            record_index = int(which[i])
            values = {h for _, h in records[record_index]}
            values.discard(int(hashes[i]))
            for k in range(int(lo[i]), int(hi[i])):
                row, col = int(self.rows[k]), int(self.cols[k])
                others = self.present[row].copy()
                others[col] = False
                if values.intersection(self.hashes[row, others].tolist()):
                    matched_records.add(record_index)
                    clients.add(row)
        return Match(len(matched_records), sorted(self.client_ids[c] for c in clients))
