"""The group search: which people linked by a shared account or host explain a leaked
file together, grown and pruned on numpy arrays of their reads (the reasoning is in
:mod:`molehunt.attribute.overlap`)."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from molehunt.attribute.scoring import Group, likelihood_score

#: Readers a group search starts from (the best scored ones that are linked to others).
GROUP_SEEDS = 10
#: Most people in one group.
MAX_GROUP = 6


class GroupSearch:
    """Groups of linked readers whose union explains the leaked set best (overlap module doc).

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
