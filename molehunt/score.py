"""Person risk: findings rolled up to people, weighted, decayed, corroborated, explained.

For a day D, each finding of a day up to D counts for the person behind it (and,
at ``related_share``, for the other person it names, e.g. the owner of a borrowed
account, unless that person had left by then: a departed colleague's account in
someone else's hands is the hands' doing)::

    contribution = weight[detector] * severity / 100 * 0.5 ** (age_days / half_life_days)

Per detector a person's score is the strongest contribution plus ``repeat_share``
of the others, the repeats adding at most half as much again (so a daily nuisance
does not add up to an alert on its own, while repeated evidence still counts);
detectors that measure the same thing (:data:`SAME_EVIDENCE`: a day's volume as a
spike and as sustained excess) count once, by the stronger; the person's score is
the sum over detectors, times ``1 + corroboration_bonus`` for each extra
independent source family (database, file, web) with findings on the same host
within a day (a finding whose details say ``"corroborates": false``, such as a visit
to a blocked site, moves no data and corroborates nothing), times
``departing_multiplier`` while the person is on
notice or within ``departing_days`` of leaving. People at or above
``alert_threshold`` are flagged.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from molehunt.detect import DETECTORS
from molehunt.detect.settings import DetectionSettings
from molehunt.identity import Person, person_from_versions
from molehunt.store import Store
from molehunt.store.schema import EVENT_TABLES

#: Source families that corroborate each other when they meet on one host.
CORROBORATING = ("db", "file", "web")

#: Detectors that read the same evidence: a person's score counts the stronger only.
SAME_EVIDENCE: dict[str, str] = {"volume_spike": "volume", "sustained_excess": "volume"}


@dataclass(frozen=True, slots=True)
class StoredFinding:
    finding_id: str
    detector: str
    time: datetime
    day: date
    severity: int
    person_id: str | None
    related: tuple[str, ...]
    account: str | None
    host: str | None
    title: str
    event_ids: tuple[str, ...]
    details: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Reason:
    detector: str
    summary: str
    first_seen: datetime
    last_seen: datetime
    events: tuple[str, ...]
    score: float


@dataclass(frozen=True, slots=True)
class PersonRisk:
    person_id: str
    score: float
    reasons: tuple[Reason, ...]
    departing: bool
    corroborated: tuple[str, ...]  # source families that met on one host


def load_findings(store: Store, until: date | None = None) -> list[StoredFinding]:
    """Stored findings of days up to ``until`` (all by default), oldest first."""
    rows = store.query(
        "SELECT * FROM findings WHERE $until IS NULL OR day <= $until ORDER BY time, finding_id",
        {"until": until},
    )
    out = []
    for r in rows:
        details = json.loads(r["details"]) if r["details"] else {}
        related = tuple(details.pop("related", []) or [])
        out.append(
            StoredFinding(
                finding_id=r["finding_id"],
                detector=r["detector"],
                time=r["time"].astimezone(UTC),
                day=r["day"],
                severity=int(r["severity"]),
                person_id=r["person_id"],
                related=related,
                account=r["account"],
                host=r["host"],
                title=r["title"],
                event_ids=tuple(r["event_ids"] or ()),
                details=details,
            )
        )
    return out


def _family(detector: str) -> str:
    cls = DETECTORS.get(detector)
    return cls.source if cls is not None else "other"


def _corroborated(findings: list[StoredFinding]) -> tuple[str, ...]:
    """The largest set of source families with findings on one host within a day."""
    by_host: dict[str, list[tuple[date, str]]] = defaultdict(list)
    for f in findings:
        family = _family(f.detector)
        if f.host and family in CORROBORATING and f.details.get("corroborates", True):
            by_host[f.host].append((f.day, family))
    best: set[str] = set()
    for marks in by_host.values():
        for day, _ in marks:
            near = {fam for d, fam in marks if abs((d - day).days) <= 1}
            if len(near) > len(best):
                best = near
    return tuple(sorted(best))


def is_departing(person: Person | None, day: date, settings: DetectionSettings) -> bool:
    if person is None:
        return False
    if person.termination_date is not None and day > person.termination_date:
        return False
    if person.notice_date is not None and day >= person.notice_date:
        return True
    return person.termination_date is not None and day >= person.termination_date - timedelta(
        days=settings.departing_days
    )


def score_people(
    findings: list[StoredFinding],
    as_of: date,
    settings: DetectionSettings,
    departing: set[str] | None = None,
    departed: set[str] | None = None,
) -> list[PersonRisk]:
    """Every person with a finding up to ``as_of``, highest score first; ``departed``
    people get no share of findings that merely name them."""
    gone = departed or set()
    shares: dict[str, list[tuple[StoredFinding, float]]] = defaultdict(list)
    for f in findings:
        if f.day > as_of:
            continue
        if f.person_id:
            shares[f.person_id].append((f, 1.0))
        for other in f.related:
            if other and other != f.person_id and other not in gone:
                shares[other].append((f, settings.related_share))
    out = []
    for person, items in shares.items():
        by_detector: dict[str, list[tuple[StoredFinding, float]]] = defaultdict(list)
        for f, share in items:
            weight = settings.weights.get(f.detector, 0.5)
            decay = 0.5 ** ((as_of - f.day).days / settings.half_life_days)
            by_detector[f.detector].append((f, weight * f.severity / 100 * decay * share))
        reasons = []
        groups: dict[str, float] = defaultdict(float)
        for detector, scored in by_detector.items():
            values = [c for _, c in scored]
            best = max(values)
            part = best + settings.repeat_share * min(sum(values) - best, 2 * best)
            group = SAME_EVIDENCE.get(detector, detector)
            groups[group] = max(groups[group], part)
            latest = max(scored, key=lambda x: (x[0].time, x[0].finding_id))[0]
            events = sorted({e for f, _ in scored for e in f.event_ids})
            more = f" (+{len(scored) - 1} more)" if len(scored) > 1 else ""
            reasons.append(
                Reason(
                    detector=detector,
                    summary=latest.title + more,
                    first_seen=min(f.time for f, _ in scored),
                    last_seen=max(f.time for f, _ in scored),
                    events=tuple(events[: settings.max_event_ids]),
                    score=part,
                )
            )
        total = sum(groups.values())
        own = [f for f, share in items if share == 1.0]
        families = _corroborated(own)
        if len(families) > 1:
            total *= 1 + settings.corroboration_bonus * (len(families) - 1)
        leaving = person in (departing or set())
        if leaving:
            total *= settings.departing_multiplier
        reasons.sort(key=lambda r: (-r.score, r.detector))
        out.append(PersonRisk(person, round(total, 4), tuple(reasons), leaving, families))
    out.sort(key=lambda p: (-p.score, p.person_id))
    return out


class RiskRanker:
    """Rankings of people from the stored findings, as they stood at the end of a day."""

    def __init__(
        self, store: Store, settings: DetectionSettings, timezone: str = "Asia/Shanghai"
    ) -> None:
        self.store = store
        self.settings = settings
        self.zone = ZoneInfo(timezone)
        self._people: dict[tuple[str, date], Person | None] = {}
        self._hr: dict[str, list[dict[str, Any]]] | None = None

    def _person(self, person_id: str, day: date) -> Person | None:
        key = (person_id, day)
        if key not in self._people:
            end = datetime.combine(day, time(23, 59, 59), self.zone)
            self._people[key] = self._person_at(person_id, end)
        return self._people[key]

    def _person_at(self, person_id: str, at: datetime) -> Person | None:
        """What :meth:`Identity.person` answers, from the HR versions read once: a
        ranking of every day would otherwise ask the store twice per person and day."""
        if self._hr is None:
            self._hr = defaultdict(list)
            for r in self.store.query("SELECT * FROM ref_hr ORDER BY source_id"):
                self._hr[r["employee_id"]].append(r)
        return person_from_versions(person_id, self._hr.get(person_id, []), at, self.zone)

    def ranking(
        self,
        as_of: date,
        *,
        top: int | None = None,
        include_all: bool = False,
        findings: list[StoredFinding] | None = None,
    ) -> list[dict[str, Any]]:
        """The issue's JSON shape: rank, person, score and the reasons behind it."""
        found = findings if findings is not None else load_findings(self.store, as_of)
        people = {p for f in found if f.day <= as_of for p in (f.person_id, *f.related) if p}
        known = {p: self._person(p, as_of) for p in sorted(people)}
        departing = {p for p, who in known.items() if is_departing(who, as_of, self.settings)}
        departed = {p for p, who in known.items() if who is not None and who.status == "departed"}
        scored = score_people(found, as_of, self.settings, departing, departed)
        if not include_all:
            scored = [p for p in scored if p.score >= self.settings.alert_threshold]
        if top is not None:
            scored = scored[:top]
        out = []
        for rank, p in enumerate(scored, 1):
            person = self._person(p.person_id, as_of)
            out.append(
                {
                    "rank": rank,
                    "person_id": p.person_id,
                    "name": person.name if person else None,
                    "department": person.department if person else None,
                    "role": person.role if person else None,
                    "score": p.score,
                    "reasons": [
                        {
                            "detector": r.detector,
                            "summary": r.summary,
                            "first_seen": self._show(r.first_seen),
                            "last_seen": self._show(r.last_seen),
                            "events": list(r.events),
                        }
                        for r in p.reasons
                    ],
                }
            )
        return out

    def history(
        self, until: date, *, top: int | None = None, include_all: bool = False
    ) -> list[dict[str, Any]]:
        """The ranking of every day from the first day with data up to ``until``."""
        first = self.first_day()
        if first is None:
            return []
        found = load_findings(self.store, until)
        out = []
        day = first
        while day <= until:
            out.append(
                {
                    "date": day.isoformat(),
                    "ranking": self.ranking(day, top=top, include_all=include_all, findings=found),
                }
            )
            day += timedelta(days=1)
        return out

    def first_day(self) -> date | None:
        return self._day_bound("min")

    def last_day(self) -> date | None:
        return self._day_bound("max")

    def _day_bound(self, fn: str) -> date | None:
        union = " UNION ALL ".join(f"SELECT {fn}(time) AS t FROM {t}" for t in EVENT_TABLES)
        rows = self.store.query(f"SELECT {fn}(t) AS t FROM ({union})")
        value = rows[0]["t"]
        return value.astimezone(self.zone).date() if value is not None else None

    def watch_list(self, as_of: date) -> list[dict[str, Any]]:
        """People on notice or within ``departing_days`` of leaving on ``as_of``."""
        rows = self.store.query(
            "SELECT employee_id FROM hr WHERE notice_date IS NOT NULL "
            "OR termination_date IS NOT NULL ORDER BY employee_id"
        )
        out = []
        for r in rows:
            person = self._person(r["employee_id"], as_of)
            if person is not None and is_departing(person, as_of, self.settings):
                out.append(
                    {
                        "person_id": person.employee_id,
                        "name": person.name,
                        "department": person.department,
                        "notice_date": person.notice_date,
                        "termination_date": person.termination_date,
                    }
                )
        return out

    def _show(self, value: datetime) -> str:
        return value.astimezone(self.zone).isoformat()
