"""Who read the leaked records: coverage of the leaked set per person, account and host.

Reads come from who-is-who (:meth:`molehunt.resolve.Resolver.reads`: database
statements and application accesses, with the account's owner and the person at
the source host already resolved, service accounts on servers left out). The
client ids each read returned are those the application listed, and those the
replay of database statements found (:mod:`molehunt.attribute.replay`).

Resolving every read to a person and replaying the statements is the costly part,
and the same for every leaked file: it is kept in the store (``attr_reads``: one row
per client a read returned, with who read it; ``attr_readers``, ``attr_links``,
``attr_refused``), with what it was built from (``attr_state``: the row counts of
the tables it reads, the ingested sources, the detection settings and time zone).
It is rebuilt whole when that no longer describes the store (new events ingested,
settings changed). A leaked file then costs one scan of ``attr_reads`` (the reads
of the leaked clients) and, for the group search, the reads of the few linked
people it considers (``attr_reads`` is sorted by reader, so DuckDB skips the rest).

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
"""

from __future__ import annotations

import json
import math
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from molehunt.attribute.replay import MIN_CONFIDENCE, Replayer, replay_statements, store_replays
from molehunt.config import DetectionSettings
from molehunt.resolve import Resolver
from molehunt.store import Store
from molehunt.store.schema import REFERENCE_TABLES

#: Share of a leaked file assumed to come from elsewhere (noise, other sources).
NOISE = 0.05
#: Bits of surprise an overlap needs beyond the cost of naming the suspects among
#: the readers before it counts as evidence: the best of many readers' overlaps
#: passes ``log2 M`` by ``t`` bits with chance about ``2**-t`` (10 bits: 1 in 1,000).
SIGNIFICANCE = 10.0
#: Evidence events listed per suspect.
MAX_EVIDENCE = 10
#: Readers a group search starts from (the best scored ones that are linked to others).
GROUP_SEEDS = 10
#: Most people in one group.
MAX_GROUP = 6
#: What links people (``attr_links``): the accounts they read through and the hosts
#: they read from; ``{reads}`` has who, system, account and hostname.
LINKS_SQL = """SELECT DISTINCT who, 'account ' || system || ':' || account AS link FROM {reads}
UNION
SELECT DISTINCT who, 'host ' || hostname FROM {reads} WHERE hostname IS NOT NULL"""
#: Version of what ``prepare`` stores: a change of it rebuilds stored reads.
BUILD_VERSION = 1
#: Tables the stored reads are built from (their row counts are part of ``built_from``).
BUILT_FROM_TABLES = (
    "clients",
    "client_columns",
    "canaries",
    "events_auth",
    "events_db",
    "events_app",
    "events_http",
    "record_access",
)


@dataclass(slots=True)
class Suspect:
    """One person (or an account nobody could be tied to) and the leaked records they read."""

    rank: int
    person_id: str | None
    name: str | None
    accounts: list[dict[str, Any]]
    hosts: list[dict[str, Any]]
    covered: int
    coverage: float
    first_read: str | None
    last_read: str | None
    score: float
    evidence: list[dict[str, Any]] = field(default_factory=list)
    group: Group | None = None
    bits: float = 0.0  # surprise of the overlap the score rests on (own or group's)
    explanation: str = ""

    @property
    def explained(self) -> int:
        """Leaked records covered by the explanation the score belongs to."""
        return self.group.covered if self.group is not None else self.covered

    def as_json(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "person_id": self.person_id,
            "name": self.name,
            "accounts": self.accounts,
            "hosts": self.hosts,
            "covered": self.covered,
            "coverage": self.coverage,
            "first_read": self.first_read,
            "last_read": self.last_read,
            "score": self.score,
            "evidence": self.evidence,
            "group": None if self.group is None else self.group.as_json(),
            "bits": self.bits,
            "explanation": self.explanation,
        }


@dataclass(frozen=True, slots=True)
class Group:
    """People linked by a shared account or host whose reads together explain the leak."""

    people: tuple[str, ...]
    links: tuple[str, ...]  # the accounts ("system:account") and hosts they share
    read: int
    covered: int
    coverage: float
    likelihood: float  # bits: the leaked set drawn from their reads, not the base
    bits: float = 0.0  # surprise of their overlap (:func:`surprise_bits`)
    score: float = 0.0  # those bits less the cost of naming every member

    def as_json(self) -> dict[str, Any]:
        return {
            "people": list(self.people),
            "links": list(self.links),
            "read": self.read,
            "covered": self.covered,
            "coverage": self.coverage,
            "bits": self.bits,
            "score": self.score,
        }


def likelihood_score(covered: int, leaked: int, read: int, clients: int) -> float:
    """Bits of evidence that the leaked set came from what a reader read (see module doc)."""
    if leaked == 0 or clients == 0:
        return 0.0
    read = max(read, covered, 1)
    hit = math.log2((1 - NOISE) * clients / read + NOISE)
    return covered * hit + (leaked - covered) * math.log2(NOISE)


def surprise_bits(covered: int, leaked: int, read: int, clients: int) -> float:
    """``-log2 P(X >= covered)``, ``X`` hypergeometric: how many of ``leaked`` records
    drawn from ``clients`` fall among the ``read`` ones by chance (module doc)."""
    n, k = leaked, covered
    big_n = max(clients, read, n)
    r = max(read, k)
    low, high = max(0, n - (big_n - r)), min(n, r)
    if n <= 0 or k <= low:
        return 0.0
    if k > high:
        k = high
    mean = n * r / big_n
    spread = math.sqrt(max(mean * (1 - r / big_n) * (big_n - n) / max(big_n - 1, 1), 0.0))
    width = int(12 * spread) + 40

    def log_pmf(j: int) -> float:
        return (
            _log_choose(r, j) + _log_choose(big_n - r, n - j) - _log_choose(big_n, n)
        ) / math.log(2)

    if k > mean:
        # Terms fall from k upwards: sum a window of them (the rest is negligible).
        j = np.arange(k, min(high, k + width) + 1, dtype=np.float64)
        ratios = (r - j[:-1]) * (n - j[:-1]) / ((j[:-1] + 1) * (big_n - r - n + j[:-1] + 1))
        logs = log_pmf(k) + np.concatenate(([0.0], np.cumsum(np.log2(ratios))))
        top = float(logs.max())
        return max(0.0, -(top + math.log2(float(np.exp2(logs - top).sum()))))
    # P(X >= k) = 1 - P(X <= k - 1); terms fall from k - 1 downwards.
    j = np.arange(k - 1, max(low, k - 1 - width) - 1, -1, dtype=np.float64)
    ratios = j[:-1] * (big_n - r - n + j[:-1]) / ((r - j[:-1] + 1) * (n - j[:-1] + 1))
    logs = log_pmf(k - 1) + np.concatenate(([0.0], np.cumsum(np.log2(ratios))))
    below = min(float(np.exp2(logs).sum()), 1.0)
    return max(0.0, -math.log2(max(1.0 - below, 1e-300)))


def _log_choose(a: int, b: int) -> float:
    return math.lgamma(a + 1) - math.lgamma(b + 1) - math.lgamma(a - b + 1)


def naming_cost(readers: int, people: int) -> float:
    """Bits an overlap must exceed to name ``people`` among ``readers`` (module doc)."""
    return people * math.log2(max(readers, 2)) + SIGNIFICANCE


def explanation(
    covered: int, leaked: int, read: int, clients: int, bits: float, readers: int, people: int
) -> str:
    """What a suspect's score rests on, as investigators read it."""
    share = read / clients if clients else 0.0
    text = (
        f"read {covered:,} of the {leaked:,} leaked records; "
        f"reads {_percent(share)} of the client base ({read:,} of {clients:,}): "
        f"{bits:,.0f} bits"
    )
    if bits <= 0:
        if read >= clients:
            return text + " (reading every client covers any file: no evidence)"
        return text + " (no more overlap than chance gives: no evidence)"
    cost = naming_cost(readers, people)
    named = "one" if people == 1 else str(people)
    score = max(0.0, bits - cost)
    text += (
        f", less {cost:,.1f} bits for picking {named} of the {readers:,} readers "
        f"of these records with a margin against luck"
    )
    if score == 0:
        return text + ": not evidence"
    return text + f": {score:,.0f} bits"


def _percent(share: float) -> str:
    if share >= 0.1 or share == 0:
        return f"{share:.0%}"
    return f"{share:.1%}" if share >= 0.001 else f"{share:.2%}"


class ReadOverlapAttributor:
    """Ranks people by how much of a leaked set of clients they read, and how unusually."""

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
        self.rebuilt = False  # whether the last ``prepare`` had to rebuild stored reads

    def _context(self) -> Resolver:
        last = self.store.query(
            "SELECT max(time) AS t FROM (SELECT max(time) AS time FROM events_db "
            "UNION ALL SELECT max(time) FROM events_app)"
        )[0]["t"]
        as_of = (last or datetime.now(UTC)).astimezone(ZoneInfo(self.timezone)).date()
        return Resolver(self.store.ibis, self.settings, as_of, timezone=self.timezone)

    def built_from(self) -> str:
        """What stored reads built now would be built from (module doc)."""
        con = self.store.con
        tables = [*(f"ref_{n}" for n in REFERENCE_TABLES), *BUILT_FROM_TABLES]
        counts = con.execute(
            " UNION ALL ".join(f"SELECT '{t}', count(*) FROM {t}" for t in tables)
        ).fetchall()
        sources = con.execute(
            'SELECT count(*), sum("offset"), sum(events), max(last_ingest) FROM sources'
        ).fetchall()[0]
        return json.dumps(
            {
                "version": BUILD_VERSION,
                "rows": {str(t): int(n) for t, n in counts},
                "sources": [str(v) for v in sources],
                "settings": self.settings.model_dump(mode="json"),
                "timezone": self.timezone,
            },
            sort_keys=True,
        )

    def prepare(self) -> None:
        """Resolve reads to people and replay their database statements, unless the
        store already holds them for its current state (module doc)."""
        con = self.store.con
        state = con.execute("SELECT built_from FROM attr_state").fetchall()
        self.rebuilt = not state or state[0][0] != self.built_from()
        if self.rebuilt:
            self._build()
        self.refused = {
            str(e): str(r) for e, r in con.execute("SELECT * FROM attr_refused").fetchall()
        }

    def _build(self) -> None:
        started = time.perf_counter()
        con = self.store.con
        with self._context() as ctx:
            cols = ctx.reads().select(
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
            table = ctx.backend.to_pyarrow(cols)
        con.register("_attr_reads_arrow", table)
        con.execute(
            """CREATE OR REPLACE TEMP TABLE _attr_reads AS
               SELECT *, coalesce(actor, '~' || system || ':' || account) AS who
               FROM _attr_reads_arrow"""
        )
        con.unregister("_attr_reads_arrow")
        db = con.execute(
            """SELECT e.event_id, e.statement, e.parameters,
                      CASE WHEN e.bulk_unknown OR e.rows_source = 'unknown' THEN NULL
                           ELSE e.rows END AS rows
               FROM events_db e JOIN _attr_reads r USING (event_id)
               WHERE r.system = 'crm-db' AND e.statement IS NOT NULL"""
        ).fetchall()
        events = [(str(e), str(s), p, None if n is None else int(n)) for e, s, p, n in db]
        replays, refused = replay_statements(self.store, events, Replayer.from_store(self.store))
        store_replays(self.store, replays, [e[0] for e in events])
        confidence = pa.table(
            {
                "event_id": pa.array([r.event_id for r in replays], pa.string()),
                "confidence": pa.array([r.confidence for r in replays], pa.float64()),
            }
        )
        why = pa.table(
            {
                "event_id": pa.array(list(refused), pa.string()),
                "reason": pa.array(list(refused.values()), pa.string()),
            }
        )
        with self.store.transaction() as tx:
            tx.register("_attr_confidence", confidence)
            tx.register("_attr_why", why)
            for t in ("attr_reads", "attr_readers", "attr_links", "attr_refused", "attr_state"):
                tx.execute(f"DELETE FROM {t}")
            tx.execute(
                """INSERT INTO attr_reads
                   SELECT r.who, r.actor, r.event_id, r.time, r.system, r.account,
                          r.hostname, r.account_owner, r.host_person, a.client_id, a.how,
                          CASE WHEN a.how = 'replayed' THEN c.confidence END
                   FROM _attr_reads r JOIN record_access a USING (event_id)
                   LEFT JOIN _attr_confidence c USING (event_id)
                   ORDER BY r.who, a.client_id"""
            )
            tx.execute(
                """INSERT INTO attr_readers SELECT who, any_value(actor),
                          count(DISTINCT client_id) FROM attr_reads GROUP BY who"""
            )
            tx.execute(f"INSERT INTO attr_links {LINKS_SQL.format(reads='_attr_reads')}")
            tx.execute("INSERT INTO attr_refused SELECT event_id, reason FROM _attr_why")
            tx.execute(
                "INSERT INTO attr_state VALUES (?, now(), ?)",
                [self.built_from(), time.perf_counter() - started],
            )
            tx.unregister("_attr_confidence")
            tx.unregister("_attr_why")
        con.execute("DROP TABLE IF EXISTS _attr_reads")

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
            suspect.accounts = self._accounts(events, names)
            suspect.hosts = self._hosts(events, names)
            suspect.evidence = [self._evidence(e) for e in events[:MAX_EVIDENCE]]
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
                        first_read=_iso(first),
                        last_read=_iso(last),
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
                "written": _iso(time),
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

    @staticmethod
    def _accounts(events: list[tuple[Any, ...]], names: dict[str, str]) -> list[dict[str, Any]]:
        """Accounts used, with their owner (named apart when it is not the person)."""
        seen: dict[tuple[str, str], dict[str, Any]] = {}
        clients: dict[tuple[str, str], int] = defaultdict(int)
        for _who, _id, _t, system, account, _host, owner, person, _how, covered, _c in events:
            k = (system, account)
            clients[k] += int(covered)
            if k not in seen:
                seen[k] = {
                    "system": system,
                    "account": account,
                    "owner_id": owner,
                    "owner_name": names.get(owner) if owner else None,
                    "owner_is_person": owner is not None and owner == person,
                }
        order = sorted(seen, key=lambda k: -clients[k])
        return [{**seen[k], "covered_reads": clients[k]} for k in order]

    @staticmethod
    def _hosts(events: list[tuple[Any, ...]], names: dict[str, str]) -> list[dict[str, Any]]:
        """Source hosts, with the person found at each (logged on, else its owner)."""
        seen: dict[str, dict[str, Any]] = {}
        counts: dict[str, int] = defaultdict(int)
        for _who, _id, _t, _system, _account, host, _owner, person, _how, covered, _c in events:
            key = host or "?"
            counts[key] += int(covered)
            seen.setdefault(
                key,
                {
                    "host": host,
                    "person_id": person,
                    "person_name": names.get(person) if person else None,
                },
            )
        order = sorted(seen, key=lambda k: -counts[k])
        return [{**seen[k], "covered_reads": counts[k]} for k in order]

    @staticmethod
    def _evidence(e: tuple[Any, ...]) -> dict[str, Any]:
        _who, event_id, t, system, account, host, _owner, _person, how, covered, confidence = e
        out: dict[str, Any] = {
            "event_id": event_id,
            "time": _iso(t),
            "system": system,
            "account": account,
            "host": host,
            "how": how,
            "covered": int(covered),
        }
        if confidence is not None:
            out["confidence"] = round(float(confidence), 3)
        return out


class GroupSearch:
    """Groups of linked readers whose union explains the leaked set best (module doc).

    Read sets are loaded once per person considered, as sorted arrays of 64-bit
    hashes of client ids (a collision only miscounts a union by one), and leaked
    coverage as boolean masks over the leaked set; unions are then numpy work.
    """

    def __init__(
        self,
        con: Any,
        leaked: int,
        clients: int,
        own: dict[str, float],
        *,
        reads: str = "attr_reads",
        hits: str = "_attr_hits",
        links: str = "attr_links",
    ) -> None:
        """``reads``: (who, client_id) of every read; ``hits``: at least the reads of
        the leaked clients (``_leaked``); ``links``: (who, link)."""
        self.con = con
        self.tables = {"reads": reads, "hits": hits, "links": links}
        self.leaked = leaked
        self.clients = clients
        self.own = own
        self.penalty = math.log2(max(len(own), 2))
        self._reads: dict[str, npt.NDArray[np.uint64]] = {}
        self._covered: dict[str, npt.NDArray[np.bool_]] = {}
        self._by_key: dict[str, set[str]] = defaultdict(set)
        self._unions: dict[tuple[str, ...], tuple[npt.NDArray[np.uint64], Any]] = {}

    def run(self) -> dict[str, Group]:
        links = self._links()
        linked = {w for w, keys in links.items() if any(len(self._by_key[k]) > 1 for k in keys)}
        seeds = sorted(linked, key=lambda w: (-self.own[w], w))[:GROUP_SEEDS]
        best: dict[str, Group] = {}
        seen: set[tuple[str, ...]] = set()
        for seed in seeds:
            members = self._grow(seed, links)
            if len(members) < 2 or tuple(members) in seen:
                continue
            seen.add(tuple(members))
            group = self._group(members, links)
            for w in members:
                current = best.get(w)
                if group.likelihood > self.own[w] and (
                    current is None or group.likelihood > current.likelihood
                ):
                    best[w] = group
        return best

    def _links(self) -> dict[str, set[str]]:
        rows = self.con.execute(f"SELECT who, link FROM {self.tables['links']}").fetchall()
        links: dict[str, set[str]] = defaultdict(set)
        for who, key in rows:
            if who in self.own:
                links[who].add(key)
                self._by_key[key].add(who)
        return links

    def _load(self, people: list[str]) -> None:
        todo = [w for w in people if w not in self._reads]
        if not todo:
            return
        # Each person's reads as one numpy array of hashes: a ring member may have
        # read millions of clients, too many for Python objects.
        _temp_strings(self.con, "_group_who", "who", todo)
        try:
            reads = self.con.execute(
                f"""SELECT DISTINCT who, hash(client_id) AS h FROM {self.tables["reads"]}
                    WHERE who IN (SELECT who FROM _group_who) ORDER BY who, h"""
            ).fetchnumpy()
            covered = self.con.execute(
                f"""SELECT DISTINCT who, i FROM {self.tables["hits"]}
                    JOIN (SELECT client_id, row_number() OVER (ORDER BY client_id) - 1 AS i
                          FROM _leaked) USING (client_id)
                    WHERE who IN (SELECT who FROM _group_who) ORDER BY who"""
            ).fetchnumpy()
        finally:
            self.con.execute("DROP TABLE _group_who")
        for w, hashes in _split(reads["who"], reads["h"]):
            self._reads[w] = hashes.astype(np.uint64)
        for w, idx in _split(covered["who"], covered["i"]):
            mask = np.zeros(self.leaked, dtype=np.bool_)
            mask[idx.astype(np.int64)] = True
            self._covered[w] = mask
        for w in todo:
            self._reads.setdefault(w, np.empty(0, dtype=np.uint64))
            self._covered.setdefault(w, np.zeros(self.leaked, dtype=np.bool_))

    def _union(self, members: tuple[str, ...]) -> tuple[npt.NDArray[np.uint64], Any]:
        """The reads (sorted hashes) and leaked coverage of ``members`` together."""
        if members not in self._unions:
            if len(members) == 1:
                found = (self._reads[members[0]], self._covered[members[0]])
            else:
                reads, covered = self._union(members[:-1])
                merged = np.concatenate((reads, self._reads[members[-1]]))
                merged.sort()
                keep = np.ones(len(merged), dtype=np.bool_)
                keep[1:] = merged[1:] != merged[:-1]
                found = (merged[keep], covered | self._covered[members[-1]])
            self._unions[members] = found
        return self._unions[members]

    def _score(self, members: list[str]) -> tuple[float, int, int]:
        if len(members) == 1:
            reads, covered = self._union(tuple(members))
            size = len(reads)
        else:
            # The group so far is kept; one more person adds the reads it lacks
            # (sorted arrays: a binary search each, no new union built).
            reads, covered = self._union(tuple(members[:-1]))
            extra = self._reads[members[-1]]
            size = len(reads) + len(extra)
            if len(reads) and len(extra):
                at = np.minimum(np.searchsorted(reads, extra), len(reads) - 1)
                size -= int(np.count_nonzero(reads[at] == extra))
            covered = covered | self._covered[members[-1]]
        n_covered = int(covered.sum())
        score = likelihood_score(n_covered, self.leaked, size, self.clients)
        return score, size, n_covered

    def _grow(self, seed: str, links: dict[str, set[str]]) -> list[str]:
        members = [seed]
        self._load(members)
        score = self._score(members)[0]
        while len(members) < MAX_GROUP:
            options = sorted(
                {o for k in set().union(*(links[m] for m in members)) for o in self._by_key[k]}
                - set(members)
            )
            if not options:
                break
            self._load(options)
            scored = [(self._score([*members, o]), o) for o in options]
            # Best score; between equals, the one who adds the fewest reads.
            (gain, _, _), chosen = max(scored, key=lambda x: (x[0][0], -x[0][1], x[1]))
            if gain - score <= self.penalty:
                break
            members.append(chosen)
            score = gain
        while len(members) > 1:
            # Drop whoever the group explains the leak as well without.
            losses = [(score - self._score([m for m in members if m != w])[0], w) for w in members]
            loss, weakest = min(losses)
            if loss >= self.penalty:
                break
            members.remove(weakest)
            score = self._score(members)[0]
        return sorted(members)

    def _group(self, members: list[str], links: dict[str, set[str]]) -> Group:
        score, read, covered = self._score(members)
        shared = sorted(
            k
            for k in set().union(*(links[m] for m in members))
            if len(self._by_key[k] & set(members)) > 1
        )
        return Group(
            people=tuple(members),
            links=tuple(shared),
            read=read,
            covered=covered,
            coverage=round(covered / self.leaked, 4),
            likelihood=round(score, 2),
        )


def _temp_strings(con: Any, table: str, column: str, values: Sequence[str]) -> None:
    """A temporary one-column table of ``values`` (a parameter, not a registered Arrow
    table: registering one makes DuckDB import pandas, seconds a process)."""
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT unnest($v::VARCHAR[]) AS {column}",
        {"v": list(values)},
    )


def _split(keys: Any, values: Any) -> list[tuple[str, Any]]:
    """Rows sorted by ``keys`` -> (key, its values) per key."""
    if len(keys) == 0:
        return []
    keys = np.asarray(keys, dtype=object)
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    ends = np.r_[starts[1:], len(keys)]
    values = np.asarray(values)
    return [(str(keys[a]), values[a:b]) for a, b in zip(starts, ends, strict=True)]


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return str(value)


__all__ = [
    "MIN_CONFIDENCE",
    "Group",
    "GroupSearch",
    "ReadOverlapAttributor",
    "Suspect",
    "explanation",
    "likelihood_score",
    "naming_cost",
    "surprise_bits",
]
