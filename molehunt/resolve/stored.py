"""Who-is-who kept in the store and extended day by day.

Resolving events to the people behind them is the costly step every detection pass
and attribution share: cutting each host's time into the pieces where one logon
wins (:meth:`Resolver._logon_segments`), then joining every read of client data,
every proxy request and every Sysmon file creation and process start to them
(:meth:`Resolver.reads`, ``DetectContext.http``, ``DetectContext.endpoint_events``). The
answer for an event depends only on the event, the logons at its host up to its
time, and the reference data as it stood at the end of the pass; a piece of one
local day depends only on logons of that day and the day before (a logon counts for
at most :data:`~molehunt.identity.LOGON_HORIZON`, less than a day). So each of these
relations (:data:`KEPT`) is kept in a table of the store, and a pass resolves only the
days that are new or changed:

* ``kept_state`` says, per relation, what its rows were resolved with (this module's
  :data:`VERSION`, the time zone and its offset, a hash of every reference row it
  reads) and the end of the last day resolved (``through_end``);
* ``kept_days`` holds how many events of each input table every local day had when
  the relation's rows of that day were resolved.

A pass as of day D takes the input events per day up to D (``event_days``, counted from
the rows appended since the last count: :func:`count_days`) and resolves again from the
first day whose count differs (events arrived late, or a new day) to D, every later day
included. Everything is resolved again when the version, the zone or the reference rows
differ, or when a reference row starts or stops being valid between the kept end and the
pass's end (the pass would see other owners, hosts or roles). Event tables only grow
(exactly-once ingest), so a count tells a changed day. A pass of a day before
``through_end`` reads the kept days up to it. Findings are those of a pass that resolves
everything (``tests/detect/test_kept_relations.py`` holds them to it).

The record-level rows (which clients a read returned, ``record_access``) have no time
of their own, so ``access_days`` keeps each with its read's local day, extended from the
rows appended since the last count (:func:`count_access_days`); their per-day digests
in ``event_days`` tell a relation that reads them (``scope``: out_of_scope's clients of
other portfolios per person and day) which days changed, and a round reads one day of
them instead of every row.

Only a writable DuckDB store keeps relations; Spark, and a read-only store, resolve
them in each pass.
"""

from __future__ import annotations

import json
import logging
import time as clock
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as day_time
from typing import TYPE_CHECKING, Any

import ibis
from ibis.backends.sql.datatypes import DuckDBType

from molehunt.store import Store

if TYPE_CHECKING:
    from molehunt.resolve.relations import Resolver

log = logging.getLogger(__name__)

#: Bump when what a kept relation's builder computes changes: every kept relation
#: is then resolved again whole.
VERSION = 1

#: Reference tables that decide who is who (the account owners, hosts, roles).
WHO_IS_WHO = ("ref_hr", "ref_accounts", "ref_assets")


@dataclass(frozen=True, slots=True)
class Kept:
    """A relation kept in the store: its tables, each with the column holding a row's
    local day and how many days before a changed day its rows must be resolved again."""

    name: str
    tables: Mapping[str, tuple[str, int]]  # table -> (day column, days back)
    inputs: tuple[str, ...]  # event tables whose per-day counts it depends on
    references: tuple[str, ...] = WHO_IS_WHO
    #: Tables without validity read whole (the client master): a change of any row
    #: resolves everything again.
    masters: tuple[str, ...] = ()
    #: Input tables each of whose rows of a local day makes the relation's rows of that
    #: day (none: a day's rows may come from other days' events): when none of them has
    #: an event on the days to resolve, those days have no rows and nothing is resolved.
    rows_from: tuple[str, ...] = ()


#: The kept relations, by name.
KEPT: dict[str, Kept] = {
    # A piece of day X starts after a logon of day X - 1 at the earliest; a person's
    # own logon in a piece is keyed by the piece's start, which may be on the day before.
    "logons": Kept(
        "logons",
        {"kept_logon_pieces": ("seg_day", 0), "kept_logon_own": ("own_day", 1)},
        ("events_auth",),
        ("ref_accounts",),
    ),
    "reads": Kept(
        "reads",
        {"kept_reads": ("day", 0)},
        ("events_db", "events_app", "events_auth"),
        rows_from=("events_db", "events_app"),
    ),
    # Per person and day: rows and reads, with the peers' median that day.
    "daily": Kept(
        "daily",
        {"kept_daily": ("day", 0)},
        ("events_db", "events_app", "events_auth"),
        rows_from=("events_db", "events_app"),
    ),
    # Sysmon file creations and process starts with the person behind each.
    "file": Kept(
        "file",
        {"kept_file": ("day", 0)},
        ("events_file", "events_auth"),
        rows_from=("events_file",),
    ),
    "process": Kept(
        "process",
        {"kept_process": ("day", 0)},
        ("events_process", "events_auth"),
        rows_from=("events_process",),
    ),
    "http": Kept(
        "http",
        {"kept_http": ("day", 0)},
        ("events_http", "events_auth"),
        (*WHO_IS_WHO, "ref_web_categories", "ref_web_policy"),
        rows_from=("events_http",),
    ),
    # Per person and day: the clients of other portfolios read (out_of_scope), from the
    # reads' record-level rows (:data:`ACCESS`) and the client master's owners.
    "scope": Kept(
        "scope",
        {"kept_scope": ("day", 0)},
        ("events_db", "events_app", "events_auth", "record_access"),
        masters=("clients",),
        rows_from=("record_access",),
    ),
}

#: The record-level rows (which clients a read returned). They have no time of their
#: own: ``event_days`` counts them by their read's local day (:func:`count_access_days`).
ACCESS = "record_access"


@dataclass(frozen=True, slots=True)
class Refresh:
    """What bringing a kept relation up to a pass's day did."""

    relation: str
    resolved_from: date | None  # first day resolved again (None: it was current)
    whole: bool  # everything resolved again (why: ``reason``)
    reason: str
    rows: int  # rows resolved in this refresh
    seconds: float


#: Builds a kept relation's rows of the days from a start (None: every day), one
#: expression per table, each holding exactly the rows its deletion bound removes.
Builder = Callable[[date | None], Mapping[str, Any]]


def kept(
    store: Store, resolver: Resolver, spec: Kept, build: Builder
) -> tuple[dict[str, Any], Refresh]:
    """The relation's tables up to the resolver's day, resolving only what is new or
    changed (module doc)."""
    started = clock.perf_counter()
    con = store.con
    end = resolver.end
    built_from = json.dumps(_built_from(store, resolver, spec), sort_keys=True)
    state = con.execute(
        "SELECT built_from, through_end FROM kept_state WHERE relation = ?", [spec.name]
    ).fetchall()
    exists = store.has_tables(*spec.tables)
    counts = _day_counts(store, resolver, spec)
    whole, reason, start = True, "nothing kept yet", None
    if state and exists:
        kept_end = state[0][1]
        if state[0][0] != built_from:
            reason = "version, time zone or reference data changed"
        elif reference_moves(store, spec.references, min(kept_end, end), max(kept_end, end)):
            reason = "reference data changed validity between the kept day and this one"
        else:
            whole = False
            start = _first_changed(store, spec, counts, resolver.as_of)
    if not whole and start is None:
        if end > state[0][1]:  # a later day without events: only the end moves
            with store.transaction() as tx:
                tx.execute(
                    "UPDATE kept_state SET through_end = ? WHERE relation = ?", [end, spec.name]
                )
        took = clock.perf_counter() - started
        return _up_to(resolver, spec), Refresh(spec.name, None, False, "current", 0, took)
    why = reason if whole else "new or changed days"
    if whole or _has_rows(spec, counts, start):
        exprs = build(None if whole else start)
    else:
        # The days' rows are only removed (they had none unless events were deleted).
        exprs, why = {}, "new or changed days, none with events of its own"
    rows = _store(store, resolver, spec, exprs, start, counts, built_from, whole)
    took = clock.perf_counter() - started
    log.info("kept %s: %s rows resolved from %s in %.1f s (%s)", spec.name, rows, start, took, why)
    first = start if not whole else min((d for d, _, _ in counts), default=None)
    return _up_to(resolver, spec), Refresh(spec.name, first, whole, why, rows, took)


def _has_rows(spec: Kept, counts: list[tuple[date, str, int]], start: date | None) -> bool:
    """Whether the days from ``start`` may have rows of the relation: some table its
    rows come from (:attr:`Kept.rows_from`) has events on them, or it names none."""
    if not spec.rows_from or start is None:
        return True
    return any(n and day >= start and t in spec.rows_from for day, t, n in counts)


def day_start(resolver: Resolver, day: date) -> datetime:
    """The UTC start of a local day, with the pass's one offset."""
    return datetime.combine(day, day_time(), UTC) - timedelta(seconds=resolver.offset)


def _up_to(resolver: Resolver, spec: Kept) -> dict[str, Any]:
    out = {}
    for name, (column, _) in spec.tables.items():
        t = resolver.table(name)
        out[name] = t.filter(t[column] <= ibis.literal(resolver.as_of))
    return out


def _built_from(store: Store, resolver: Resolver, spec: Kept) -> dict[str, Any]:
    sums = store.con.execute(
        " UNION ALL ".join(
            f"SELECT '{t}', count(*), coalesce(sum(hash(x)), 0)::VARCHAR FROM {t} x"
            for t in (*spec.references, *spec.masters)
        )
    ).fetchall()
    return {
        "version": VERSION,
        "timezone": str(resolver.zone),
        "offset": resolver.offset,
        "reference": {str(t): [int(n), str(h)] for t, n, h in sums},
    }


def reference_moves(store: Store, tables: Iterable[str], low: datetime, high: datetime) -> bool:
    """Whether a row of the reference ``tables`` starts or stops being valid in
    (low, high]."""
    if low == high:
        return False
    found = store.con.execute(
        " UNION ALL ".join(
            f"SELECT count(*) FROM {t} WHERE (valid_from > $low AND valid_from <= $high) "
            "OR (valid_to > $low AND valid_to <= $high)"
            for t in tables
        ),
        {"low": low, "high": high},
    ).fetchall()
    return any(int(n) for (n,) in found)


def _day_counts(store: Store, resolver: Resolver, spec: Kept) -> list[tuple[date, str, int]]:
    """Events per local day and input table, up to the resolver's day (each table
    counted once per pass: relations share inputs)."""
    for table in spec.inputs:
        if table not in resolver.day_counts:
            if table == ACCESS:
                # New record-level rows mostly come with the pass's last days' reads.
                recent = day_start(resolver, resolver.as_of - timedelta(days=2))
                count_access_days(store, int(resolver.offset), recent)
            else:
                count_days(store, table, int(resolver.offset))
            found = store.con.execute(
                "SELECT day, events FROM event_days WHERE tbl = ? AND utc_offset = ? AND day <= ?",
                [table, int(resolver.offset), resolver.as_of],
            ).fetchall()
            resolver.day_counts[table] = [(d, int(n)) for d, n in found]
    return sorted((d, t, n) for t in spec.inputs for d, n in resolver.day_counts[t])


def count_days(store: Store, table: str, offset: int) -> bool:
    """Bring ``event_days`` of ``table`` (local days cut ``offset`` seconds east of
    UTC) up to its rows; whether anything changed.

    Event tables only grow (exactly-once ingest appends, nothing deletes), so the rows
    not yet counted are those whose rowid is at least ``rows_seen``, and DuckDB reads
    only their row groups. A table whose rowids have a hole (rows deleted after all)
    or fewer rows than were counted is counted again whole."""
    con = store.con
    rows, top = con.execute(f"SELECT count(*), max(rowid) FROM {table}").fetchall()[0]
    rows = int(rows)
    seen = con.execute(
        "SELECT rows_seen FROM event_days_seen WHERE tbl = ? AND utc_offset = ?",
        [table, offset],
    ).fetchall()
    appended_only = top is None or int(top) + 1 == rows
    since = int(seen[0][0]) if seen and appended_only and int(seen[0][0]) <= rows else None
    if since == rows:
        return False
    day = f"CAST(time + INTERVAL {offset} SECOND AS DATE)"
    new_days = f"""SELECT {day} AS day, count(*) AS events FROM {table}
                   WHERE rowid >= ? AND rowid < ? GROUP BY ALL"""
    # Counted again whole, the rows of a table with a hole run past its row count.
    upto = rows if since is not None or top is None else int(top) + 1
    with store.transaction() as tx:
        _add_days(tx, table, offset, since or 0, upto, new_days)
    return True


def count_access_days(store: Store, offset: int, recent: datetime | None = None) -> bool:
    """Bring ``access_days`` (each record-level row with its read's local day, days cut
    ``offset`` seconds east of UTC) and its per-day numbers in ``event_days`` up to the
    rows of :data:`ACCESS`; whether anything changed.

    A day's number is a digest of its rows (each adds 1 plus 20 bits of its hash), so
    that rows replaced by others change it too. Rows are appended (ingest, attribution)
    and only those not yet counted are read: those from the next rowid after the last
    count (``access_days_seen``), as long as the rows below it are as many as were
    counted. Fewer (rows deleted), another offset, or attribution replacing replays
    (:func:`forget_access_days`) count every row again. A row whose read is not stored
    (yet) is kept without a day and looked for again in each pass until it is. New
    rows' reads are looked for among those from ``recent`` on first (the others only
    for rows not found there)."""
    con = store.con
    rows, top = con.execute(f"SELECT count(*), max(rowid) FROM {ACCESS}").fetchall()[0]
    rows, end = int(rows), 0 if top is None else int(top) + 1
    seen = con.execute(
        "SELECT next_rowid, rows_counted FROM access_days_seen WHERE utc_offset = ?", [offset]
    ).fetchall()
    since = None
    if seen:
        after = con.execute(
            f"SELECT count(*) FROM {ACCESS} WHERE rowid >= ?", [int(seen[0][0])]
        ).fetchall()[0][0]
        if rows - int(after) == int(seen[0][1]):
            since = int(seen[0][0])
    waiting = con.execute("SELECT count(*) FROM access_days WHERE day IS NULL").fetchall()[0][0]
    if since is not None and since >= end and not waiting:
        return False
    day = f"CAST(e.time + INTERVAL {offset} SECOND AS DATE)"
    reads = (
        "SELECT event_id, time FROM events_app{0} UNION ALL SELECT event_id, time FROM events_db{0}"
    )
    with store.transaction() as tx:
        if since is None:
            tx.execute("DELETE FROM access_days")
            tx.execute("DELETE FROM event_days WHERE tbl = ?", [ACCESS])
        # The new rows and those still waiting for their read.
        tx.execute(
            f"""CREATE OR REPLACE TEMP TABLE _rows AS
                SELECT event_id, client_id FROM {ACCESS} WHERE rowid >= ? AND rowid < ?
                UNION ALL SELECT event_id, client_id FROM access_days WHERE day IS NULL""",
            [since or 0, end],
        )
        # Their reads (the database's statements, the application's look-ups): looked
        # for among the recent ones first (new rows come with new events; the scan
        # skips older ones by the time's min/max), among all of them for the rest.
        tx.execute("CREATE OR REPLACE TEMP TABLE _reads (event_id VARCHAR, time TIMESTAMPTZ)")
        if since is not None and recent is not None:
            latest = reads.format(" WHERE time >= $recent")
            tx.execute(
                f"""INSERT INTO _reads SELECT event_id, time FROM ({latest})
                    WHERE event_id IN (SELECT event_id FROM _rows)""",
                {"recent": recent},
            )
        rest = "SELECT event_id FROM _rows WHERE event_id NOT IN (SELECT event_id FROM _reads)"
        if tx.execute(f"SELECT count(*) FROM ({rest})").fetchall()[0][0]:
            tx.execute(
                f"""INSERT INTO _reads SELECT event_id, time FROM ({reads.format("")})
                    WHERE event_id IN ({rest})"""
            )
        tx.execute(
            f"""CREATE OR REPLACE TEMP TABLE _new_access AS
                SELECT {day} AS day, a.event_id, a.client_id
                FROM _rows a LEFT JOIN _reads e ON e.event_id = a.event_id"""
        )
        tx.execute("DROP TABLE _rows")
        tx.execute("DROP TABLE _reads")
        if waiting:
            tx.execute("DELETE FROM access_days WHERE day IS NULL")
        # In day order: a day's rows are then read from few row groups.
        tx.execute("INSERT INTO access_days SELECT * FROM _new_access ORDER BY day")
        tx.execute(
            """CREATE OR REPLACE TEMP TABLE _new_days AS
               SELECT day, sum(1 + hash(event_id, client_id) % 1048576) AS events
               FROM _new_access WHERE day IS NOT NULL GROUP BY ALL"""
        )
        _merge_days(tx, ACCESS, offset)
        tx.execute("DROP TABLE _new_access")
        tx.execute("DELETE FROM access_days_seen")
        tx.execute("INSERT INTO access_days_seen VALUES (?, ?, ?)", [offset, end, rows])
    return True


def forget_access_days(con: Any) -> None:
    """Have the next pass count every record-level row again (:func:`count_access_days`):
    for a writer that replaces rows (DuckDB may reuse the rowids of deleted rows)."""
    con.execute("DELETE FROM access_days_seen")


def _add_days(tx: Any, table: str, offset: int, since: int, rows: int, new_days: str) -> None:
    """Add the per-day counts ``new_days`` (a query of (day, events) of the rows from
    rowid ``since`` to ``rows``) of ``table`` to ``event_days`` (replacing what was
    counted when ``since`` is 0) and note the rows seen, in the transaction ``tx``."""
    if since == 0:
        tx.execute("DELETE FROM event_days WHERE tbl = ? AND utc_offset = ?", [table, offset])
    tx.execute(f"CREATE OR REPLACE TEMP TABLE _new_days AS {new_days}", [since, rows])
    _merge_days(tx, table, offset)
    tx.execute("DELETE FROM event_days_seen WHERE tbl = ? AND utc_offset = ?", [table, offset])
    tx.execute("INSERT INTO event_days_seen VALUES (?, ?, ?)", [table, offset, rows])


def _merge_days(tx: Any, table: str, offset: int) -> None:
    """Add the numbers of ``_new_days`` (day, events) to ``event_days`` of ``table``."""
    tx.execute(
        """UPDATE event_days SET events = event_days.events + n.events FROM _new_days n
           WHERE tbl = ? AND utc_offset = ? AND event_days.day IS NOT DISTINCT FROM n.day""",
        [table, offset],
    )
    tx.execute(
        """INSERT INTO event_days SELECT ?, ?, n.day, n.events FROM _new_days n
           WHERE NOT EXISTS (SELECT 1 FROM event_days e WHERE e.tbl = ? AND
                 e.utc_offset = ? AND e.day IS NOT DISTINCT FROM n.day)""",
        [table, offset, table, offset],
    )
    tx.execute("DROP TABLE _new_days")


def _first_changed(
    store: Store, spec: Kept, counts: list[tuple[date, str, int]], as_of: date
) -> date | None:
    kept_counts = {
        (d, str(t)): int(n)
        for d, t, n in store.con.execute(
            "SELECT day, tbl, events FROM kept_days WHERE relation = ? AND day <= ?",
            [spec.name, as_of],
        ).fetchall()
    }
    now = {(d, t): n for d, t, n in counts}
    keys = kept_counts.keys() | now.keys()
    return min((k[0] for k in keys if kept_counts.get(k) != now.get(k)), default=None)


def _columns(expr: Any) -> str:
    """The DDL columns of an expression's schema."""
    return ", ".join(
        '"{}" {}'.format(name.replace('"', '""'), DuckDBType.to_string(dtype))
        for name, dtype in expr.schema().items()
    )


def _store(
    store: Store,
    resolver: Resolver,
    spec: Kept,
    exprs: Mapping[str, Any],
    start: date | None,
    counts: list[tuple[date, str, int]],
    built_from: str,
    whole: bool,
) -> int:
    """Keep the rows resolved from ``start`` (every row when ``whole``), the day
    counts and the state, in one transaction."""
    sql = {name: ibis.to_sql(expr, dialect="duckdb") for name, expr in exprs.items()}
    rows = 0
    with store.transaction() as tx:
        for name, (column, back) in spec.tables.items():
            if whole:
                # Typed as the expression says (DuckDB would keep a sum as HUGEINT, which
                # reads back as a DECIMAL whose median rounds).
                tx.execute(f"CREATE OR REPLACE TABLE {name} ({_columns(exprs[name])})")
                # In day order: a pass of the last days then skips the rest by the
                # column's min/max per row group (later days are appended in order).
                # (An INSERT answers with the rows it inserted.)
                rows += int(
                    tx.execute(
                        f"INSERT INTO {name} BY NAME SELECT * FROM ({sql[name]}) ORDER BY {column}"
                    ).fetchall()[0][0]
                )
                continue
            assert start is not None
            bound = start - timedelta(days=back)
            tx.execute(f"DELETE FROM {name} WHERE {column} >= ?", [bound])
            if name in sql:
                rows += int(tx.execute(f"INSERT INTO {name} BY NAME {sql[name]}").fetchall()[0][0])
        if whole:
            tx.execute("DELETE FROM kept_days WHERE relation = ?", [spec.name])
            fresh = counts
        else:
            assert start is not None
            tx.execute("DELETE FROM kept_days WHERE relation = ? AND day >= ?", [spec.name, start])
            fresh = [c for c in counts if c[0] >= start]
        if fresh:
            tx.executemany(
                "INSERT INTO kept_days VALUES (?, ?, ?, ?)", [(spec.name, *c) for c in fresh]
            )
        tx.execute("DELETE FROM kept_state WHERE relation = ?", [spec.name])
        tx.execute(
            "INSERT INTO kept_state VALUES (?, ?, ?, now())", [spec.name, built_from, resolver.end]
        )
    return rows
