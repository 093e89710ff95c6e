"""The investigators' audit trail: who looked at what, when, and how much came back.

Every verb that shows people, accounts, evidence or client records appends one
``audit_log`` row: time, actor (the operating-system user running molehunt),
action (the verb), target (what was asked: a person id, an account, a file name;
never a personal value) and the number of rows in the answer. Rows are chained:
each ``hash`` is SHA-256 over the previous row's hash and this row's fields, so
changing or deleting a row breaks every hash after it. :func:`verify` walks the
chain; the head hash it returns can be kept elsewhere (a ticket, a printout) to
also prove that nothing was cut from the end.
"""

from __future__ import annotations

import getpass
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from molehunt.store import Store

GENESIS = "0" * 64


@dataclass(frozen=True, slots=True)
class Verified:
    """The outcome of walking the chain."""

    rows: int
    head: str  # hash of the last row (GENESIS when empty)
    broken_at: int | None  # seq of the first row whose hash does not follow


def actor() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name in a bare container
        return "unknown"


def _digest(
    prev: str, seq: int, time: datetime, who: str, action: str, target: str | None, rows: int | None
) -> str:
    fields = [prev, seq, time.astimezone(UTC).isoformat(), who, action, target, rows]
    return hashlib.sha256(json.dumps(fields, ensure_ascii=False).encode()).hexdigest()


def record(
    store: Store,
    action: str,
    target: str | None = None,
    rows: int | None = None,
    *,
    who: str | None = None,
    now: datetime | None = None,
) -> int:
    """Append one row to the trail; returns its sequence number."""
    who = who or actor()
    when = (now or datetime.now(UTC)).astimezone(UTC)
    with store.transaction() as con:
        last = con.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchall()
        seq, prev = (int(last[0][0]) + 1, str(last[0][1])) if last else (1, GENESIS)
        digest = _digest(prev, seq, when, who, action, target, rows)
        con.execute(
            "INSERT INTO audit_log VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [seq, when, who, action, target, rows, prev, digest],
        )
    return seq


def entries(store: Store, limit: int | None = None) -> list[dict[str, Any]]:
    """The trail, newest first."""
    sql = "SELECT * FROM audit_log ORDER BY seq DESC"
    return store.query(sql + (f" LIMIT {int(limit)}" if limit else ""))


def verify(store: Store) -> Verified:
    """Recompute every hash in order; the first row that does not follow is reported."""
    rows = store.con.execute(
        "SELECT seq, time, actor, action, target, rows, prev_hash, hash FROM audit_log ORDER BY seq"
    ).fetchall()
    prev = GENESIS
    expected_seq = 1
    for seq, time, who, action, target, n, prev_hash, digest in rows:
        if (
            seq != expected_seq
            or prev_hash != prev
            or digest != _digest(prev, seq, time, who, action, target, n)
        ):
            return Verified(len(rows), prev, int(seq))
        prev = digest
        expected_seq += 1
    return Verified(len(rows), prev, None)
