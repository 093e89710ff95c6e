"""Each day's scored people, kept in the store (``risk_days``) so that a history of
months is read in a second instead of scored again.

The table is built from the findings, HR and the scoring settings; ``risk_state``
says from what (settings, time zone, HR's versions, the first day with data) and
``risk_inputs`` holds each day's findings as a count and a hash. Before it is read,
both are compared with the store: a change of settings, zone, HR, first day or of the
scoring rules (:data:`RULES`) has every day scored again; a change of the findings of
some days (a detection pass over the days from its ``since``) has that day and every
later one scored again (a day's scores depend on every earlier day), the days before
kept; new days of data are added. A stale table is never served: when it cannot be
brought up to date (a read-only store) the days are scored in memory, as fast and
exactly the same.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, timedelta
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa

from molehunt.models import RankRow
from molehunt.score.days import DayScore, DayScorer, ReasonText, quiet_gc, reason

if TYPE_CHECKING:
    from molehunt.score import RiskRanker, Threshold

#: The scoring rules' version: stored days scored by other rules (a change of the code,
#: not of the settings) are scored again.
RULES = 5

#: What a day's findings are hashed over: everything the score reads of them.
_DIGEST = (
    "SELECT day, count(*) AS n, bit_xor(hash(finding_id, detector, time, severity, "
    "person_id, host, title, details, event_ids)) AS digest FROM findings"
)


@dataclass(frozen=True, slots=True)
class ScoredDay:
    """One day of a run: its threshold and everyone scored, highest first."""

    day: date
    threshold: Threshold
    scores: list[DayScore]


def walk(
    ranker: RiskRanker, scorer: DayScorer, first: date, last: date, emit: date
) -> Iterator[ScoredDay]:
    """Score the days ``first`` to ``last`` and yield those from ``emit`` on, each with
    its threshold (the trailing days before ``emit`` are scored when an alert budget
    needs them)."""
    s = ranker.settings
    bound = ranker.first_day() or first
    day = max(first, emit)
    if s.alert_budget is not None:
        day = max(first, bound, emit - timedelta(days=s.budget_days))
    above: dict[date, list[float]] = {}
    if day <= last:
        scorer.days(day, last)  # every day at once: far faster than one by one
    while day <= last:
        scores = scorer.day(day)
        above[day] = [p.score for p in scores if p.score >= s.alert_threshold]
        above.pop(day - timedelta(days=s.budget_days + 1), None)
        if day >= emit:
            if s.alert_budget is None:
                threshold = ranker.threshold(day)
            else:
                days = [
                    day - timedelta(days=i)
                    for i in range(1, s.budget_days + 1)
                    if day - timedelta(days=i) >= bound
                ]
                marks = sorted((x for d in days for x in above.get(d, ())), reverse=True)
                threshold = ranker.budgeted(day, days, marks)
            yield ScoredDay(day, threshold, scores)
        day += timedelta(days=1)


class DailyScores:
    """The stored daily scores of one ranker's store, settings and zone."""

    def __init__(self, ranker: RiskRanker) -> None:
        self.ranker = ranker
        self.store = ranker.store
        self._current: tuple[date, date] | None = None

    def _built_from(self) -> str:
        r = self.ranker
        hr = self.store.query("SELECT count(*) AS n, bit_xor(hash(r)) AS h FROM ref_hr r")[0]
        first = r.first_day()
        return json.dumps(
            {
                "rules": RULES,
                "settings": r.settings.model_dump(mode="json"),
                "zone": str(r.zone),
                "hr": [hr["n"], hr["h"]],
                "first": first.isoformat() if first else None,
            },
            sort_keys=True,
        )

    def _inputs(self) -> dict[date, tuple[int, int | None]]:
        rows = self.store.query(f"{_DIGEST} GROUP BY day")
        return {r["day"]: (int(r["n"]), r["digest"]) for r in rows}

    def covered(self) -> tuple[date, date] | None:
        """The days the table holds (the first to the newest with data or findings),
        once brought up to date (building what is missing or stale); None when there is
        no data or the store cannot be written (the caller scores in memory)."""
        if self._current is not None:
            return self._current
        if self.store.read_only and not self.store.has_tables("risk_state"):
            return None  # a read-only store of an older schema: scored in memory
        first = self.ranker.first_day()
        if first is None:
            return None
        newest = self.ranker.last_day() or first
        built_from, inputs = self._built_from(), self._inputs()
        if inputs:
            newest = max(newest, max(inputs))
        state = self.store.query("SELECT * FROM risk_state")
        since: date | None = first
        if state and state[0]["built_from"] == built_from:
            old = self.store.query("SELECT day, n, digest FROM risk_inputs")
            stored = {r["day"]: (int(r["n"]), r["digest"]) for r in old}
            changed = [d for d in stored.keys() | inputs.keys() if stored.get(d) != inputs.get(d)]
            held = state[0]["last_day"]
            since = min([*changed, held + timedelta(days=1)])
            since = None if since > newest else max(since, first)
        if since is not None:
            try:
                self._build(first, since, newest, built_from, inputs)
            except duckdb.Error as e:
                if "read-only" not in str(e):
                    raise
                return None  # a read-only store: not kept, scored in memory
        self._current = (first, newest)
        return self._current

    def _build(
        self,
        first: date,
        since: date,
        last: date,
        built_from: str,
        inputs: dict[date, tuple[int, int | None]],
    ) -> None:
        from molehunt.score import load_findings

        clock = time.perf_counter()
        rows: dict[str, list[Any]] = {k: [] for k in _DAY_COLUMNS}
        thresholds: list[tuple[date, float, str]] = []
        with quiet_gc():
            found = load_findings(self.store, last)
            scorer = DayScorer(found, self.ranker.settings, self.ranker.hr_people())
            for scored in walk(self.ranker, scorer, first, last, since):
                thresholds.append((scored.day, scored.threshold.value, scored.threshold.how))
                _add_rows(rows, scored)
            texts = _texts(scorer)
            table = _day_table(rows)
        with self.store.transaction() as con:
            full = since <= first
            con.execute("DELETE FROM risk_days WHERE day >= ?", [since])
            con.execute("DELETE FROM risk_thresholds WHERE day >= ?", [since])
            con.execute("DELETE FROM risk_reasons WHERE ? OR since >= ?", [full, since.toordinal()])
            con.register("new_days", table)
            con.execute("INSERT INTO risk_days BY NAME SELECT * FROM new_days")
            con.unregister("new_days")
            con.register("new_texts", texts)
            con.execute(
                "INSERT INTO risk_reasons BY NAME SELECT * FROM new_texts n WHERE NOT EXISTS "
                "(SELECT 1 FROM risk_reasons r WHERE r.person_id = n.person_id "
                "AND r.detector = n.detector AND r.since = n.since)"
            )
            con.unregister("new_texts")
            if thresholds:
                con.executemany("INSERT INTO risk_thresholds VALUES (?, ?, ?)", thresholds)
            con.execute("DELETE FROM risk_inputs")
            if inputs:
                con.executemany(
                    "INSERT INTO risk_inputs VALUES (?, ?, ?)",
                    [(d, n, h) for d, (n, h) in inputs.items()],
                )
            con.execute("DELETE FROM risk_state")
            con.execute(
                "INSERT INTO risk_state VALUES (?, ?, ?, now(), ?)",
                [built_from, first, last, time.perf_counter() - clock],
            )

    def threshold(self, day: date) -> Threshold | None:
        from molehunt.score import Threshold

        rows = self.store.query("SELECT value, how FROM risk_thresholds WHERE day = ?", [day])
        return Threshold(rows[0]["value"], rows[0]["how"]) if rows else None

    def days(
        self, first: date, last: date, top: int | None, include_all: bool
    ) -> dict[date, list[RankRow]]:
        """The stored rankings of the days ``first`` to ``last``, as
        :meth:`RiskRanker.rank_rows` gives them."""
        rows = self.store.query(
            "SELECT day, person_id, score, flagged, chain, reasons FROM risk_days "
            "WHERE day BETWEEN $first AND $last AND (flagged OR $all) "
            "QUALIFY $top IS NULL OR row_number() OVER "
            "(PARTITION BY day ORDER BY score DESC, person_id) <= $top",
            {"first": first, "last": last, "all": include_all, "top": top},
        )
        texts = self._texts_of(rows)
        out: dict[date, list[RankRow]] = {}
        for r in sorted(rows, key=lambda r: (r["day"], -r["score"], r["person_id"])):
            day, pid = r["day"], r["person_id"]
            ranked = out.setdefault(day, [])
            who = self.ranker.person(pid, day)
            reasons = tuple(
                reason(det, part, texts[pid, det, since])
                for det, part, since in json.loads(r["reasons"])
            )
            ranked.append(
                RankRow(
                    rank=len(ranked) + 1,
                    person_id=pid,
                    name=who.name if who else None,
                    department=who.department if who else None,
                    role=who.role if who else None,
                    score=r["score"],
                    flagged=r["flagged"],
                    chain=tuple(r["chain"]),
                    reasons=reasons,
                )
            )
        return out

    def _texts_of(self, rows: list[dict[str, Any]]) -> dict[tuple[str, str, int], ReasonText]:
        keys = {(r["person_id"], d, s) for r in rows for d, _, s in json.loads(r["reasons"])}
        if not keys:
            return {}
        wanted = pa.table(
            {
                "person_id": [k[0] for k in keys],
                "detector": [k[1] for k in keys],
                "since": pa.array([k[2] for k in keys], pa.int32()),
            }
        )
        con = self.store.con
        con.register("wanted_texts", wanted)
        try:
            found = con.execute(
                "SELECT r.* FROM risk_reasons r JOIN wanted_texts w "
                "USING (person_id, detector, since)"
            ).fetchall()
        finally:
            con.unregister("wanted_texts")
        return {
            (p, d, s): (summary, a.astimezone(UTC), b.astimezone(UTC), tuple(ev))
            for p, d, s, summary, a, b, ev in found
        }


_DAY_COLUMNS = (
    "day",
    "person_id",
    "score",
    "flagged",
    "departing",
    "corroborated",
    "chain",
    "reasons",
)


def _add_rows(rows: dict[str, list[Any]], scored: ScoredDay) -> None:
    at = scored.threshold.value
    people = scored.scores
    scores = [p.score for p in people]
    rows["day"].extend([scored.day] * len(people))
    rows["person_id"].extend([p.person_id for p in people])
    rows["score"].extend(scores)
    rows["flagged"].extend([x >= at for x in scores])
    rows["departing"].extend([p.departing for p in people])
    rows["corroborated"].extend([p.corroborated for p in people])
    rows["chain"].extend([p.chain for p in people])
    rows["reasons"].extend([_parts_json(p.parts) for p in people])


def _parts_json(parts: tuple[tuple[str, float, int], ...]) -> str:
    """``json.dumps`` of a day's reasons (detector, score, day its text holds from),
    the same text, written directly (half a million of them in a build)."""
    if len(parts) == 1:
        ((d, v, since),) = parts
        return f"[[{_quoted(d)}, {v!r}, {since}]]"
    if len(parts) == 2:
        (d, v, since), (e, w, held) = parts
        return f"[[{_quoted(d)}, {v!r}, {since}], [{_quoted(e)}, {w!r}, {held}]]"
    return "[" + ", ".join(f"[{_quoted(d)}, {v!r}, {since}]" for d, v, since in parts) + "]"


@functools.cache
def _quoted(word: str) -> str:
    return json.dumps(word)


def _day_table(rows: dict[str, list[Any]]) -> pa.Table:
    words = pa.list_(pa.string())
    types = {"corroborated": words, "chain": words, "day": pa.date32(), "reasons": pa.string()}
    return pa.table({k: pa.array(v, types.get(k)) for k, v in rows.items()})


def _texts(scorer: DayScorer) -> pa.Table:
    versions = scorer.versions
    said = [v[3] for v in versions]
    when = pa.timestamp("us", tz="UTC")
    return pa.table(
        {
            "person_id": pa.array([v[0] for v in versions], pa.string()),
            "detector": pa.array([v[1] for v in versions], pa.string()),
            "since": pa.array([v[2] for v in versions], pa.int32()),
            "summary": pa.array([t[0] for t in said], pa.string()),
            "first_seen": pa.array([t[1] for t in said], when),
            "last_seen": pa.array([t[2] for t in said], when),
            "events": pa.array([t[3] for t in said], pa.list_(pa.string())),
        }
    )
