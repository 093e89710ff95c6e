"""Canary records: made-up clients planted in the client database.

A canary looks like any client (a valid resident ID, a mobile on an allocated
prefix, a name and an address) and no real client has its values. Only its keyed
hashes are registered in the store, like the client master, so the store never
tells which records are canaries in clear. Any read of a canary is a critical
finding (:mod:`molehunt.detect.canary_access`); a canary in a leaked file names who
read it through the usual attribution.
"""

from __future__ import annotations

import csv
import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import sqlglot.expressions as exp

from molehunt.errors import InputError
from molehunt.pii.edm import ClientIndex
from molehunt.pii.keyed import KeyedHasher
from molehunt.store import Store
from molehunt.synthetic import make_people

#: Client-master columns a canary fills with made-up personal data, and their normaliser.
PII = {"name": "text", "id_number": "id_number", "mobile": "phone", "address": "text"}


@dataclass(frozen=True, slots=True)
class Planted:
    """Canaries written for insertion into the client database."""

    count: int
    csv_path: Path
    sql_path: Path


def has_canaries(store: Store) -> bool:
    rows = store.query(
        "SELECT count(*) AS n FROM information_schema.tables WHERE table_name = 'canaries'"
    )
    return bool(rows[0]["n"])


def canary_index(store: Store) -> ClientIndex | None:
    """The registered canaries as an exact-data-match index (None when there are none)."""
    if not has_canaries(store):
        return None
    cols = ", ".join(f"coalesce({c}_h, 0), {c}_h IS NOT NULL" for c in PII)
    sql = f"SELECT client_id, {cols} FROM canaries ORDER BY client_id"
    rows = store.con.execute(sql).fetchall()
    if not rows:
        return None
    columns: dict[str, tuple[str, npt.NDArray[np.int64], npt.NDArray[np.bool_]]] = {}
    for j, (name, kind) in enumerate(PII.items()):
        hashes = np.array([r[1 + 2 * j] for r in rows], dtype=np.int64)
        present = np.array([r[2 + 2 * j] for r in rows], dtype=np.bool_)
        columns[name] = (kind, hashes, present)
    return ClientIndex([str(r[0]) for r in rows], columns)


def plant(store: Store, key: bytes, count: int, out: Path, *, today: date | None = None) -> Planted:
    """Make ``count`` canaries, register their hashes, write ``out`` as CSV and SQL."""
    if count < 1:
        raise InputError("plant at least one canary")
    hasher = KeyedHasher(key)
    columns = [r["name"] for r in store.query("SELECT name FROM client_columns ORDER BY name")]
    attributes = [
        r["name"] for r in store.query("SELECT name FROM client_columns WHERE role = 'attribute'")
    ]
    existing = {str(r[0]) for r in store.con.execute("SELECT client_id FROM clients").fetchall()}
    if not existing:
        raise InputError("no client master in the store: ingest clients.csv before planting")
    taken = _taken_hashes(store)
    rng = np.random.default_rng(secrets.randbits(64))
    rows: list[dict[str, str]] = []
    hashes: list[dict[str, int | None]] = []
    template = sorted(existing)
    while len(rows) < count:
        people = make_people(rng, max(count * 2, 16), today or date.today())
        for i in range(len(people.names)):
            values = {
                "name": people.names[i],
                "id_number": people.id_numbers[i],
                "mobile": people.mobiles[i],
                "address": people.addresses[i],
            }
            h = {c: hasher.hash_value(kind, values[c]) for c, kind in PII.items()}
            if h["id_number"] in taken or h["mobile"] in taken:
                continue  # a real client's number: the canary must be nobody
            taken.update(v for v in (h["id_number"], h["mobile"]) if v is not None)
            client_id = _new_id(rng, template, existing)
            existing.add(client_id)
            like = template[int(rng.integers(0, len(template)))]
            real = store.query(
                f"SELECT {', '.join(exp.to_identifier(a).sql() for a in attributes) or '1'} "
                "FROM clients WHERE client_id = $id",
                {"id": like},
            )[0]
            row = {"client_id": client_id, **values}
            for a in attributes:
                row[a] = "" if real.get(a) is None else str(real[a])
            rows.append(row)
            hashes.append(h)
            if len(rows) == count:
                break
    header = ["client_id", *[c for c in columns if c in PII or c in attributes]]
    csv_path, sql_path = out.with_suffix(".csv"), out.with_suffix(".sql")
    out.parent.mkdir(parents=True, exist_ok=True)
    with csv_path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows([[r.get(c, "") for c in header] for r in rows])
    insert = exp.insert(
        exp.values([tuple(exp.Literal.string(r.get(c, "")) for c in header) for r in rows]),
        "clients",
        columns=header,
    )
    sql_path.write_text(insert.sql(dialect="postgres") + ";\n", encoding="utf-8")
    _register(store, [r["client_id"] for r in rows], hashes)
    return Planted(len(rows), csv_path, sql_path)


def _taken_hashes(store: Store) -> set[int]:
    taken: set[int] = set()
    present = {
        r["column_name"]
        for r in store.query(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'clients'"
        )
    }
    for col in ("id_number_h", "mobile_h"):
        if col in present:
            rows = store.con.execute(f"SELECT {col} FROM clients WHERE {col} IS NOT NULL")
            taken.update(int(r[0]) for r in rows.fetchall())
    if has_canaries(store):
        for r in store.con.execute("SELECT id_number_h, mobile_h FROM canaries").fetchall():
            taken.update(int(v) for v in r if v is not None)
    return taken


def _new_id(rng: np.random.Generator, template: list[str], existing: set[str]) -> str:
    """An unused id shaped like a random real one (same prefix and digit count), so
    nothing in the id tells a canary apart."""
    while True:
        like = template[int(rng.integers(0, len(template)))]
        digits = [i for i, ch in enumerate(like) if ch.isdigit()]
        if not digits:
            raise InputError(f"client ids like {like!r} have no digits to vary")
        chars = list(like)
        # Keep the leading digits (often a zero-padded range) and redraw the rest.
        for i in digits[len(digits) // 3 :]:
            chars[i] = str(int(rng.integers(0, 10)))
        candidate = "".join(chars)
        if candidate not in existing:
            return candidate


def _register(store: Store, ids: list[str], hashes: list[dict[str, int | None]]) -> None:
    table = pa.table(
        {
            "client_id": pa.array(ids, pa.string()),
            **{f"{c}_h": pa.array([h[c] for h in hashes], pa.int64()) for c in PII},
        }
    )
    with store.transaction() as con:
        con.register("_new_canaries", table)
        cols = ", ".join(f"{c}_h" for c in PII)
        con.execute(
            f"INSERT INTO canaries (client_id, {cols}, planted_at) "
            f"SELECT client_id, {cols}, $at FROM _new_canaries",
            {"at": datetime.now(UTC)},
        )
        con.unregister("_new_canaries")
