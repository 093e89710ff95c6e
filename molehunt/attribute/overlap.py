"""Who read the leaked records: coverage of the leaked set per person, account and host.

Reads come from who-is-who (:meth:`molehunt.resolve.Resolver.reads`: database
statements and application accesses, with the account's owner and the person at
the source host already resolved, service accounts on servers left out). The
client ids each read returned are those the application listed, and those the
replay of database statements found (:mod:`molehunt.attribute.replay`).

Resolving every read to a person and replaying the statements is the costly part,
and the same for every leaked file: it is kept in the store (``attr_reads``: one row
per client a read returned, with who read it; ``attr_readers``, ``attr_links``,
``attr_refused``), with what it was built from (``attr_state``). When the store has
only grown by appended events since (a new day ingested, late events of a few days
before), the rows of the reads of the local days from the first changed one are
replaced and the readers and links counted again
(:mod:`molehunt.attribute.extend`); any other change (settings, reference data,
client master, rows deleted) rebuilds them whole. A leaked file then costs one scan
of ``attr_reads`` (the reads of the leaked clients) and, for the group search, the
reads of the few linked people it considers: ``attr_reads`` is sorted by reader when
built whole, so DuckDB skips the other readers' row groups. Extensions append their
rows sorted among themselves only, so every row group they added is read for each
linked person: loading five people's reads took 0.039 s after five appended days
(11% of the rows) against 0.028 s after a whole build (synthetic store of 1.7 M
stored reads). Once extensions appended more than :data:`RESORT_SHARE` of the rows,
the next change rebuilds whole, sorted again.

Ranking weighs the overlap against how specific the person's reading is. A reader
who read ``R`` of the ``N`` clients would, reading at random, hold ``k`` of the
``n`` leaked records with the hypergeometric probability ``P(X >= k)``; the bits of
that overlap (:func:`surprise_bits`, ``-log2 P``) say how surprising it is: reading
48 of 50 leaked records while reading 3% of the client base is about 233 bits, and
reading every client is 0 bits whatever the file. Some reader always overlaps a
little by luck, so the score is those bits less the cost of picking the suspect
among the ``M`` readers of the leaked records (``log2 M`` bits a person named) and
a margin of :data:`SIGNIFICANCE` bits against luck, never below 0: a score of 0
says the evidence does not single them out (on a sample of 50 records of a file
that holds every client, nobody can be told apart from the DBA who read them all,
and they share the rank). Between equal scores, who explains
more of the file (alone or with their group) ranks first.

A ring splits the work: each member reads part of the clients, and the leaked file
is the union. People linked by what they read through (a shared account, a shared
source host) are therefore also scored as a group: the same score over the union of
their reads, less the cost of naming each member. Which linked people explain the
file together is decided by the log-likelihood ratio (:func:`likelihood_score`,
bits) that the leaked set was drawn from their reads rather than from the whole
client base, which charges every leaked record they did not read: the group is
grown greedily from each promising reader, one linked person at a time while that
gains more than the cost of naming one more person, then pruned of anyone whose
removal costs less than that; each member's score is the better of their own and
their group's, and the group is reported with them.

The scores and explanations are in :mod:`molehunt.attribute.scoring`, the group
search in :mod:`molehunt.attribute.groups` (split for size, issue 15); their
names are re-exported here.
"""

from __future__ import annotations

import json
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import ibis
import pyarrow as pa

from molehunt.attribute import extend
from molehunt.attribute.evidence import accounts_of, evidence_of, hosts_of, iso
from molehunt.attribute.groups import GROUP_SEEDS, MAX_GROUP, GroupSearch, _temp_strings
from molehunt.attribute.replay import MIN_CONFIDENCE, replay_new, same_master
from molehunt.attribute.scoring import (
    NOISE,
    SIGNIFICANCE,
    Group,
    Suspect,
    explanation,
    likelihood_score,
    naming_cost,
    surprise_bits,
)
from molehunt.config import DetectionSettings
from molehunt.resolve import Resolver
from molehunt.store import Store

log = logging.getLogger(__name__)

#: Evidence events listed per suspect.
MAX_EVIDENCE = 10
#: What links people (``attr_links``): the accounts they read through and the hosts
#: they read from; ``{reads}`` has who, system, account and hostname.
LINKS_SQL = """SELECT DISTINCT who, 'account ' || system || ':' || account AS link FROM {reads}
UNION
SELECT DISTINCT who, 'host ' || hostname FROM {reads} WHERE hostname IS NOT NULL"""
#: Columns of a resolved read that the stored reads keep (``who`` is added).
READ_COLUMNS = (
    "event_id",
    "time",
    "system",
    "account",
    "hostname",
    "account_owner",
    "host_person",
    "actor",
    "command",
)
#: A logged statement's row count, unless the log does not know it.
STATEMENT_ROWS = "CASE WHEN e.bulk_unknown OR e.rows_source = 'unknown' THEN NULL ELSE e.rows END"
#: How many clients each reader read (``attr_readers``), from the stored reads.
READERS_SQL = """INSERT INTO attr_readers SELECT who, any_value(actor),
    count(DISTINCT client_id) FROM attr_reads GROUP BY who"""
#: The stored rows of the resolved reads in ``_attr_reads``: one per client each returned.
INSERT_READS_SQL = """INSERT INTO attr_reads
    SELECT r.who, r.actor, r.event_id, r.time, r.system, r.account, r.hostname,
           r.account_owner, r.host_person, a.client_id, a.how,
           CASE WHEN a.how = 'replayed' THEN c.confidence END
    FROM _attr_reads r JOIN record_access a USING (event_id)
    LEFT JOIN attr_replayed c USING (event_id)
    ORDER BY r.who, a.client_id"""
#: Share of ``attr_reads`` that extensions appended since the last whole build above
#: which a change rebuilds whole, sorted by reader again (module doc).
RESORT_SHARE = 0.25
#: When the last read happened (its local day is the last one resolved).
LAST_READ_SQL = """SELECT max(time) AS t FROM (SELECT max(time) AS time FROM events_db
    UNION ALL SELECT max(time) FROM events_app)"""


class ReadOverlapAttributor:
    """Ranks people by how much of a leaked set of clients they read, and how unusually."""

    #: Whether stored reads are extended after appended events (else rebuilt whole).
    extends = True

    def __init__(
        self,
        store: Store,
        settings: DetectionSettings | None = None,
        timezone: str = "Asia/Shanghai",
    ) -> None:
        self.store = store
        self.settings = settings or DetectionSettings()
        self.timezone = timezone
        self.refused: dict[str, str] = {}
        self.rebuilt = False  # whether the last ``prepare`` had to bring stored reads up to date
        self.extended_from: date | None = None  # and the first day it did so from, if not whole
        self.steps: dict[str, float] = {}  # seconds into the last build or extension, per step
        self.unsorted = 0  # rows of ``attr_reads`` extensions appended since a whole build

    def _context(self) -> Resolver:
        last = self.store.query(LAST_READ_SQL)[0]["t"]
        keep = None if self.store.read_only else self.store
        return Resolver(
            self.store.ibis,
            self.settings,
            self.as_of(last),
            timezone=self.timezone,
            store=keep,
        )

    def as_of(self, last: datetime | None) -> date:
        """The local day reads are resolved up to: that of the last read (``last``, UTC)."""
        if last is not None and last.tzinfo is None:
            last = last.replace(tzinfo=UTC)
        return (last or datetime.now(UTC)).astimezone(ZoneInfo(self.timezone)).date()

    def built_from(self) -> str:
        """What stored reads built now would be built from (:func:`extend.state`)."""
        last = self.store.query(LAST_READ_SQL)[0]["t"]
        pass_ = Resolver(self.store.ibis, self.settings, self.as_of(last), timezone=self.timezone)
        found = extend.state(self.store, self.settings, self.timezone, pass_.end, pass_.offset)
        return json.dumps(found, sort_keys=True)

    def describes(self, stored: str) -> bool:
        """Whether stored reads built from ``stored`` (their ``attr_state``) still
        describe the store. Reads built on Spark from a lake
        (:mod:`molehunt.attribute.on_spark`) name the lake too; only a run on Spark
        checks it, so they serve every later attribution until the store changes."""
        found = json.loads(stored)
        found.pop("lake", None)
        found.pop("unsorted", None)
        return bool(found == json.loads(self.built_from()))

    def prepare(self) -> None:
        """Resolve reads to people and replay their database statements, unless the
        store already holds them for its current state; after appended events, only
        those of the days from the first changed one (module doc)."""
        con = self.store.con
        state = con.execute("SELECT built_from FROM attr_state").fetchall()
        stored = str(state[0][0]) if state else None
        self.extended_from = None
        self.steps = {}
        self.rebuilt = stored is None or not self.describes(stored)
        if not self.rebuilt:
            pass  # current: used as they are
        elif stored is None or not self.extends:
            self._build()
        else:
            now = self.built_from()
            found = extend.change(self.store, stored, json.loads(now))
            self.unsorted = int(json.loads(stored).get("unsorted", 0))
            rows = int(con.execute("SELECT count(*) FROM attr_reads").fetchall()[0][0])
            if found.start is not None and self.unsorted > RESORT_SHARE * rows:
                found = replace(found, whole=True, reason="stored reads mostly unsorted")
            if found.whole:
                log.info("stored reads rebuilt whole: %s", found.reason)
                self._build()
            elif found.start is None:
                self.rebuilt = False
                with self.store.transaction() as tx:
                    tx.execute("UPDATE attr_state SET built_from = ?", [self._state(now)])
            else:
                self.extended_from = found.start
                self._extend(found.start)
        self.refused = {
            str(e): str(r) for e, r in con.execute("SELECT * FROM attr_refused").fetchall()
        }

    def _resolve(self, start: date | None) -> tuple[dict[str, str], int]:
        """Resolve the reads of the local days from ``start`` (None: every day) into
        ``_attr_reads`` (and, for an extension, who read through what in every read
        into ``_attr_every``), replaying their statements not replayed before: the
        refusals among them, and the offset east of UTC the days are cut with."""
        con = self.store.con
        started = time.perf_counter()
        with self._context() as ctx:
            reads = ctx.reads()
            self.steps["who-is-who"] = time.perf_counter() - started
            if start is not None:
                every = ibis.to_sql(reads.select(*READ_COLUMNS), dialect="duckdb")
                con.execute(
                    f"""CREATE OR REPLACE TEMP TABLE _attr_every AS SELECT DISTINCT
                        coalesce(actor, '~' || system || ':' || account) AS who, system,
                        account, hostname FROM ({every})"""
                )
                self.steps["links"] = time.perf_counter() - started
                reads = reads.filter(reads.day >= start)
            cols = reads.select(*READ_COLUMNS)
            # Straight from the store's kept reads (or this pass's), never through Python.
            con.execute(
                f"""CREATE OR REPLACE TEMP TABLE _attr_reads AS
                    SELECT *, coalesce(actor, '~' || system || ':' || account) AS who
                    FROM ({ibis.to_sql(cols, dialect="duckdb")})"""
            )
            offset = ctx.offset
        self.steps["reads"] = time.perf_counter() - started
        # Only the statements not replayed before against this master leave the store.
        same_master(self.store)
        db = con.execute(
            f"""SELECT e.event_id, e.statement, e.parameters, {STATEMENT_ROWS} AS rows
               FROM events_db e JOIN _attr_reads r USING (event_id)
               WHERE r.system = 'crm-db' AND e.statement IS NOT NULL
               AND e.event_id NOT IN (SELECT event_id FROM attr_replayed)"""
        ).fetchall()
        self.replay(db)
        refused = {
            str(e): str(why)
            for e, why in con.execute(
                """SELECT p.event_id, p.reason FROM attr_replayed p
                   SEMI JOIN _attr_reads r USING (event_id) WHERE p.reason IS NOT NULL"""
            ).fetchall()
        }
        self.steps["replayed"] = time.perf_counter() - started
        return refused, offset

    def _build(self) -> None:
        started = time.perf_counter()
        refused, _offset = self._resolve(None)

        def fill(tx: Any) -> None:
            tx.execute(INSERT_READS_SQL)
            tx.execute(READERS_SQL)
            tx.execute(f"INSERT INTO attr_links {LINKS_SQL.format(reads='_attr_reads')}")

        self.save(fill, refused, started)
        self.store.con.execute("DROP TABLE IF EXISTS _attr_reads")

    def _extend(self, start: date) -> None:
        """Bring the stored reads up to date from local day ``start`` on: its rows of
        those days replaced, the readers and links counted again (module doc)."""
        started = time.perf_counter()
        refused, offset = self._resolve(start)
        begin = extend.day_start(start, offset)

        def fill(tx: Any) -> None:
            tx.execute("DELETE FROM attr_reads WHERE time >= ?", [begin])
            # Appended: sorted by reader within the new part only (module doc).
            tx.execute(INSERT_READS_SQL)
            self.unsorted += int(
                tx.execute("SELECT count(*) FROM attr_reads WHERE time >= ?", [begin]).fetchall()[
                    0
                ][0]
            )
            tx.execute("DELETE FROM attr_readers")
            tx.execute(READERS_SQL)
            tx.execute("DELETE FROM attr_links")
            tx.execute(f"INSERT INTO attr_links {LINKS_SQL.format(reads='_attr_every')}")
            tx.execute(
                """DELETE FROM attr_refused WHERE event_id IN
                   (SELECT event_id FROM events_db WHERE time >= ?)""",
                [begin],
            )

        self.save(fill, refused, started, whole=False)
        for temp in ("_attr_reads", "_attr_every"):
            self.store.con.execute(f"DROP TABLE IF EXISTS {temp}")
        self.steps["stored"] = time.perf_counter() - started
        log.info("stored reads extended from %s: %s", start, self.steps)

    def _state(self, built_from: str) -> str:
        """``built_from`` with the rows extensions appended since the last whole build."""
        return json.dumps({**json.loads(built_from), "unsorted": self.unsorted}, sort_keys=True)

    def replay(self, statements: Sequence[tuple[Any, Any, Any, Any]]) -> dict[str, str]:
        """Replay ``(event_id, statement, parameters, logged rows)`` of the database reads:
        each one's confidence in ``attr_replayed``, the clients of the confident ones in
        ``record_access``; the refusals.
        Statements replayed before against the same client master are not replayed
        again (:func:`~molehunt.attribute.replay.replay_new`)."""
        events = [(str(e), str(s), p, None if n is None else int(n)) for e, s, p, n in statements]
        return replay_new(self.store, events)

    def save(
        self,
        fill: Callable[[Any], None],
        refused: dict[str, str],
        started: float,
        *,
        whole: bool = True,
    ) -> None:
        """Replace the stored reads in one transaction (``whole``; else ``fill`` removes
        what it replaces): ``fill(tx)`` inserts ``attr_reads``, ``attr_readers`` and
        ``attr_links``; then the refusals and what they were built from."""
        why = pa.table(
            {
                "event_id": pa.array(list(refused), pa.string()),
                "reason": pa.array(list(refused.values()), pa.string()),
            }
        )
        if whole:
            self.unsorted = 0
        built_from = self.built_from()  # counts the days first (its own transaction)
        with self.store.transaction() as tx:
            cleared = ("attr_reads", "attr_readers", "attr_links", "attr_refused")
            for t in (*cleared, "attr_state") if whole else ("attr_state",):
                tx.execute(f"DELETE FROM {t}")
            fill(tx)
            tx.register("_attr_why", why)
            tx.execute("INSERT INTO attr_refused SELECT event_id, reason FROM _attr_why")
            tx.unregister("_attr_why")
            tx.execute(
                "INSERT INTO attr_state VALUES (?, now(), ?)",
                [self._state(built_from), time.perf_counter() - started],
            )

    def rank(self, client_ids: Sequence[str], limit: int = 20) -> list[Suspect]:
        """Suspects for a leaked set of client ids, best first."""
        self.prepare()
        leaked = sorted(set(client_ids))
        if not leaked:
            return []
        con = self.store.con
        clients = int(con.execute("SELECT count(*) FROM clients").fetchall()[0][0])
        clients += int(
            con.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_name = 'canaries'"
            ).fetchall()[0][0]
            and con.execute("SELECT count(*) FROM canaries").fetchall()[0][0]
        )
        _temp_strings(con, "_leaked", "client_id", leaked)
        try:
            # The one scan of the stored reads: those of the leaked clients.
            con.execute(
                """CREATE OR REPLACE TEMP TABLE _attr_hits AS
                   SELECT a.* FROM attr_reads a SEMI JOIN _leaked l USING (client_id)"""
            )
            per_who = con.execute(
                """SELECT h.who, any_value(h.actor) AS actor, any_value(r.read) AS read,
                          count(DISTINCT h.client_id) AS covered,
                          min(h.time) AS first_read, max(h.time) AS last_read
                   FROM _attr_hits h JOIN attr_readers r USING (who)
                   GROUP BY h.who ORDER BY h.who"""
            ).fetchall()
            own = {
                str(who): likelihood_score(int(covered), len(leaked), int(read), clients)
                for who, _actor, read, covered, _first, _last in per_who
            }
            groups = GroupSearch(con, len(leaked), clients, own).run()
            chosen = self._ranked(per_who, groups, len(leaked), clients)[:limit]
            by_who = self._hits([who for who, _s in chosen])
        finally:
            con.execute("DROP TABLE IF EXISTS _leaked")
            con.execute("DROP TABLE IF EXISTS _attr_hits")
        names = self._names()
        for who, suspect in chosen:
            events = by_who[who]
            suspect.name = names.get(suspect.person_id) if suspect.person_id else None
            suspect.accounts = accounts_of(events, names)
            suspect.hosts = hosts_of(events, names)
            suspect.evidence = [evidence_of(e) for e in events[:MAX_EVIDENCE]]
        return [s for _who, s in chosen]

    def _hits(self, people: list[str]) -> dict[str, list[tuple[Any, ...]]]:
        """The events of ``people`` that read leaked clients, most leaked first."""
        _temp_strings(self.store.con, "_attr_chosen", "who", people)
        try:
            hits = self.store.con.execute(
                """SELECT who, event_id, any_value(time) AS time, any_value(system),
                          any_value(account), any_value(hostname), any_value(account_owner),
                          any_value(host_person), string_agg(DISTINCT how, ',') AS how,
                          count(DISTINCT client_id) AS covered, max(confidence)
                   FROM _attr_hits SEMI JOIN _attr_chosen USING (who)
                   GROUP BY who, event_id
                   ORDER BY who, covered DESC, time, event_id"""
            ).fetchall()
        finally:
            self.store.con.execute("DROP TABLE _attr_chosen")
        by_who: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
        for h in hits:
            by_who[h[0]].append(h)
        return by_who

    @staticmethod
    def _ranked(
        per_who: list[tuple[Any, ...]], groups: dict[str, Group], leaked: int, clients: int
    ) -> list[tuple[str, Suspect]]:
        """Every reader of leaked clients with their score, ranked (module doc)."""
        readers = len(per_who)
        suspects: list[tuple[str, Suspect]] = []
        scored: dict[tuple[str, ...], Group] = {}
        for who, actor, read, covered, first, last in per_who:
            bits = surprise_bits(int(covered), leaked, int(read), clients)
            score = max(0.0, bits - naming_cost(readers, 1))
            why = explanation(int(covered), leaked, int(read), clients, bits, readers, 1)
            group = groups.get(who)
            if group is not None:
                if group.people not in scored:
                    g_bits = surprise_bits(group.covered, leaked, group.read, clients)
                    scored[group.people] = replace(
                        group,
                        bits=round(g_bits, 2),
                        score=round(max(0.0, g_bits - naming_cost(readers, len(group.people))), 2),
                    )
                group = scored[group.people]
                # The group stands when it is stronger evidence, or as strong and
                # explains more of the file.
                if (group.score, group.covered) > (round(score, 2), int(covered)):
                    others = ", ".join(p for p in group.people if p != who)
                    shared = ", ".join(group.links[:3])
                    if len(group.links) > 3:
                        shared += f" and {len(group.links) - 3} more"
                    why = f"with {others} ({shared}), together: " + explanation(
                        group.covered,
                        leaked,
                        group.read,
                        clients,
                        group.bits,
                        readers,
                        len(group.people),
                    )
                    score, bits = group.score, group.bits
                else:
                    group = None
            suspects.append(
                (
                    str(who),
                    Suspect(
                        rank=0,
                        person_id=actor,
                        name=None,
                        accounts=[],
                        hosts=[],
                        covered=int(covered),
                        coverage=round(int(covered) / leaked, 4),
                        first_read=iso(first),
                        last_read=iso(last),
                        score=round(score, 2),
                        group=group,
                        bits=round(bits, 2),
                        explanation=why,
                    ),
                )
            )
        suspects.sort(
            key=lambda x: (-x[1].score, -x[1].explained, -x[1].covered, x[1].person_id or "~")
        )
        # Suspects the evidence cannot tell apart share a rank (1, 1, 3): on a small
        # client base, people who read every client cover any leaked set equally,
        # and the members of a group share its score.
        for i, (_who, s) in enumerate(suspects):
            before = suspects[i - 1][1] if i else None
            same = before is not None and (before.score, before.explained) == (
                s.score,
                s.explained,
            )
            s.rank = before.rank if same and before is not None else i + 1
        return suspects

    def files(self, client_ids: Sequence[str], limit: int = 50) -> list[dict[str, Any]]:
        """Files found on endpoints (stored scans) that hold leaked records, most first."""
        leaked = sorted(set(client_ids))
        if not leaked:
            return []
        con = self.store.con
        _temp_strings(con, "_leaked_files", "client_id", leaked)
        try:
            rows = con.execute(
                """SELECT s.event_id, s.host, s.host_path, s.path, s.time,
                          count(DISTINCT f.client_id) AS covered
                   FROM file_clients f JOIN _leaked_files USING (client_id)
                   JOIN events_scan s USING (event_id)
                   GROUP BY ALL ORDER BY covered DESC, s.time, s.event_id LIMIT ?""",
                [limit],
            ).fetchall()
        finally:
            con.execute("DROP TABLE _leaked_files")
        return [
            {
                "event_id": event_id,
                "host": host,
                "path": on_host or path,
                "written": iso(time),
                "covered": int(covered),
                "coverage": round(int(covered) / len(leaked), 4),
            }
            for event_id, host, on_host, path, time, covered in rows
        ]

    def _names(self) -> dict[str, str]:
        rows = self.store.con.execute(
            "SELECT employee_id, arg_max(name, coalesce(valid_from, TIMESTAMPTZ '1900-01-01')) "
            "FROM ref_hr GROUP BY employee_id"
        ).fetchall()
        return {str(e): str(n) for e, n in rows if n is not None}


__all__ = [
    "GROUP_SEEDS",
    "MAX_GROUP",
    "MIN_CONFIDENCE",
    "NOISE",
    "SIGNIFICANCE",
    "Group",
    "GroupSearch",
    "ReadOverlapAttributor",
    "Suspect",
    "explanation",
    "likelihood_score",
    "naming_cost",
    "surprise_bits",
]
