"""Stored reads brought up to date after new events, from the first changed day on.

Attribution keeps every read resolved to a person (``attr_reads`` and the tables
beside it, :mod:`molehunt.attribute.overlap`). A read's row depends only on the read,
the logons at its host up to its time, the reference data as it stands at the end of
the last day, the client master (for the replay of its statement) and the settings
and time zone. So when the store differs from what the stored reads were built from
only by appended events (a new day ingested, late events of a few days before), only
the reads of the local days from the first changed one need resolving again:
:func:`change` finds that day, the attributor deletes the stored rows of those days
and inserts them again, replaying only the statements not replayed before.

What the stored reads were built from (``attr_state.built_from``, :func:`state`):

* ``fixed``: this module's :data:`VERSION`, every reference table's rows and a hash
  of them, the canaries, the client master's fingerprint, the detection settings,
  the time zone and its offset. Any change rebuilds whole;
* ``rows``: per table that only grows (:data:`APPENDED`), its rows and highest rowid.
  Fewer rows, or a rowid step unlike the row step (rows deleted, then others added),
  rebuilds whole: that is not an append;
* ``days``: events per local day of the tables reads are resolved from
  (:data:`DAY_TABLES`, counted incrementally in ``event_days``:
  :func:`molehunt.resolve.stored.count_days`); the first day whose count differs is
  where the extension starts. ``record_access`` rows appended since (the clients of
  late-listed reads) move it back to their read's day;
* ``end``: the end of the last local day. A who-is-who reference row that starts or
  stops being valid between the stored end and today's rebuilds whole (older reads
  would resolve to other owners, hosts or roles);
* ``sources``: the ingested sources; a change of them alone (e.g. proxy logs ingested)
  only records the new state.

Incremental or whole, every stored table holds the same rows
(``tests/attribute/test_extend.py`` holds them to it). What an extension costs: the
reads of the changed days resolved (who-is-who kept in the store extends itself from
the same day), joined with their clients and appended; ``attr_readers`` counted again
over every stored read (clients read are distinct per reader, which no sum of days
gives) and ``attr_links`` over every kept read. On ``bench.attribute``'s synthetic
store (1 M clients, 2,000 people, 40 days, 1.7 M stored reads) one appended day took
3.4-4.9 s (1.4-2.5 s of it who-is-who, 0.4 s the readers' count), a whole rebuild
with who-is-who and replays kept 6.0 s; the whole rebuild's join and sort grow with
every stored read, an extension's with the changed days' only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from molehunt.attribute.replay import master_of
from molehunt.config import DetectionSettings
from molehunt.resolve.stored import WHO_IS_WHO, count_days, reference_moves
from molehunt.store import Store
from molehunt.store.schema import REFERENCE_TABLES

#: Bump when what the stored reads hold changes: every store then rebuilds them whole.
VERSION = 2
#: Event tables reads are resolved from, counted per local day.
DAY_TABLES = ("events_db", "events_app", "events_auth")
#: Tables that only grow while the stored reads can be extended.
APPENDED = (*DAY_TABLES, "record_access")


@dataclass(frozen=True, slots=True)
class Change:
    """How the stored reads are brought up to date: whole (``reason`` says why), from
    a first changed local day ``start``, or not at all (``start`` None)."""

    whole: bool
    reason: str
    start: date | None = None


def state(
    store: Store, settings: DetectionSettings, timezone: str, end: datetime, offset: int
) -> dict[str, Any]:
    """What stored reads built now, up to ``end`` (local days cut ``offset`` seconds
    east of UTC), are built from (module doc)."""
    con = store.con
    fixed_tables = [*(f"ref_{n}" for n in REFERENCE_TABLES), "canaries"]
    sums = con.execute(
        " UNION ALL ".join(
            f"SELECT '{t}', count(*), coalesce(sum(hash(x)), 0)::VARCHAR FROM {t} x"
            for t in fixed_tables
        )
    ).fetchall()
    grown = con.execute(
        " UNION ALL ".join(f"SELECT '{t}', count(*), max(rowid) FROM {t}" for t in APPENDED)
    ).fetchall()
    sources = con.execute(
        'SELECT count(*), sum("offset"), sum(events), max(last_ingest) FROM sources'
    ).fetchall()[0]
    return {
        "fixed": {
            "version": VERSION,
            "reference": {str(t): [int(n), str(h)] for t, n, h in sums},
            "master": master_of(store),
            "settings": settings.model_dump(mode="json"),
            "timezone": timezone,
            "offset": offset,
        },
        "rows": {str(t): [int(n), -1 if top is None else int(top)] for t, n, top in grown},
        "days": _days(store, offset),
        "end": end.astimezone(UTC).isoformat(),
        "sources": [str(v) for v in sources],
    }


def _days(store: Store, offset: int) -> dict[str, dict[str, int]]:
    """Events per local day of each of :data:`DAY_TABLES`."""
    day = f"CAST(time + INTERVAL {offset} SECOND AS DATE)"
    if store.read_only:  # nothing can be kept: count them here
        sql = " UNION ALL ".join(
            f"SELECT '{t}', {day}, count(*) FROM {t} GROUP BY ALL" for t in DAY_TABLES
        )
        found = store.con.execute(sql).fetchall()
    else:
        for t in DAY_TABLES:
            count_days(store, t, offset)
        found = store.con.execute(
            "SELECT tbl, day, events FROM event_days WHERE utc_offset = ? AND tbl IN "
            f"({', '.join(repr(t) for t in DAY_TABLES)})",
            [offset],
        ).fetchall()
    out: dict[str, dict[str, int]] = {t: {} for t in DAY_TABLES}
    for t, d, n in found:
        if int(n):
            out[str(t)][str(d)] = int(n)
    return out


def change(store: Store, stored: str, now: dict[str, Any]) -> Change:
    """How stored reads built from ``stored`` are brought up to the store's state
    ``now`` (module doc)."""
    try:
        then = json.loads(stored)
    except ValueError:
        return Change(True, "no readable state")
    if not isinstance(then, dict) or then.get("fixed") != now["fixed"]:
        return Change(True, "version, settings, time zone, reference data or client master")
    for table in APPENDED:
        (rows, top), (rows_now, top_now) = then["rows"][table], now["rows"][table]
        if rows_now < rows or rows_now - rows != top_now - top:
            return Change(True, f"rows of {table} deleted or replaced")
    end, end_now = datetime.fromisoformat(then["end"]), datetime.fromisoformat(now["end"])
    if end_now < end:
        return Change(True, "the last day moved back")
    if reference_moves(store, WHO_IS_WHO, end, end_now):
        return Change(True, "reference data changed validity between the stored day and today")
    days = [
        date.fromisoformat(d)
        for t in DAY_TABLES
        for d in then["days"][t].keys() | now["days"][t].keys()
        if then["days"][t].get(d) != now["days"][t].get(d)
    ]
    start = min(days, default=None)
    late = _late_access(store, then["rows"]["record_access"][1], start, now["fixed"]["offset"])
    if late is not None and (start is None or late < start):
        start = late
    return Change(False, "appended events" if start else "nothing read changed", start)


def day_start(day: date, offset: int) -> datetime:
    """The UTC start of a local day ``offset`` seconds east of UTC."""
    return datetime.combine(day, time(), UTC) - timedelta(seconds=offset)


def _late_access(store: Store, top: int, start: date | None, offset: int) -> date | None:
    """The first local day of a read whose clients were appended to ``record_access``
    after row ``top`` and before ``start`` (None: none such)."""
    con = store.con
    # Usually every new row is a client of a read of the days from ``start``: those
    # are found among the recent events alone (DuckDB skips older row groups by time).
    recent = (
        ""
        if start is None
        else """ANTI JOIN (SELECT event_id FROM events_db WHERE time >= $begin UNION ALL
                SELECT event_id FROM events_app WHERE time >= $begin) r USING (event_id)"""
    )
    params: dict[str, Any] = {"top": top}
    if start is not None:
        params["begin"] = day_start(start, offset)
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _attr_late AS SELECT DISTINCT event_id
            FROM (SELECT event_id FROM record_access WHERE rowid > $top) a {recent}""",
        params,
    )
    try:
        if not con.execute("SELECT count(*) FROM _attr_late").fetchall()[0][0]:
            return None
        found = con.execute(
            f"""SELECT min(CAST(e.time + INTERVAL {offset} SECOND AS DATE)) FROM _attr_late
                JOIN (SELECT event_id, time FROM events_db UNION ALL
                      SELECT event_id, time FROM events_app) e USING (event_id)"""
        ).fetchall()
    finally:
        con.execute("DROP TABLE _attr_late")
    return found[0][0] if found and found[0][0] is not None else None
