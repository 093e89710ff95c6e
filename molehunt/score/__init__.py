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
notice or within ``departing_days`` of leaving.

**Chains, not single signals.** Every detector names the stage of a theft its
findings show (:data:`STAGES`): ``critical`` (enough on its own: a departed person's
account in use, an account used from someone else's host, a canary read, a file of
far more other-portfolio clients than the person's peers hold), ``access`` (beyond
need), ``collection`` (bulk reads, volume, files), ``exfiltration`` (uploads, rings),
``motive`` (a person on notice or about to leave: with any one other step, a chain)
or ``context`` (blocked sites: never a stage of their own). A finding may
name its own stage in its details (an upload to a blocked site is exfiltration, a
visit is context). A person reaches the alert threshold only through a critical
finding or a **chain**: findings of two different stages within ``chain_days`` of
each other, one of them taking data (access or collection), an exfiltration step only
on or after a taking one, while the person's last chain step is within
``chain_memory_days``; steps all of one day and one source are one reading seen
twice, no chain (:func:`one_reading`); a chain whose steps fall within the last
``chain_days`` on more than one day scores at least the threshold.
Everyone else scores at most ``lone_cap`` of ``alert_threshold``, however often a lone
signal repeats. People at or above the day's threshold are flagged; with
``alert_budget`` set, the threshold is calibrated from the trailing days (see
:meth:`RiskRanker.threshold`).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from molehunt.detect import DETECTORS
from molehunt.detect.settings import DetectionSettings
from molehunt.identity import employment_status, person_from_versions
from molehunt.models import Person, PersonRisk, RankRow, Reason
from molehunt.store import Store
from molehunt.store.schema import EVENT_TABLES
from molehunt.times import DEFAULT_TIMEZONE

if TYPE_CHECKING:
    from molehunt.score.stored import DailyScores

#: Source families that corroborate each other when they meet on one host.
CORROBORATING = ("db", "file", "web")

#: The stages of a theft a finding can show, in the order a theft goes through them.
STAGES = ("critical", "motive", "access", "collection", "exfiltration", "context")

#: Stages that form a chain when two different ones meet on one person.
CHAIN_STAGES = ("motive", "access", "collection", "exfiltration")

#: Stages that take data: every chain holds one of them.
TAKING = frozenset({"access", "collection"})

#: Stages that are something done (a motive is a state): a course of action is such
#: steps on more than one day.
ACTING = frozenset({"access", "collection", "exfiltration"})

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


def one_reading(steps: list[tuple[Any, str, str]]) -> bool:
    """Whether chain steps ``(day, stage, detector)`` are one day's reading seen twice:
    all on one day and from one source (the other portfolios' clients and the volume of
    one day's reads are the same reads), not corroborated steps of a course."""
    return len({x for x, _, _ in steps}) == 1 and len({_family(d) for _, _, d in steps}) == 1


def stage_of(finding: StoredFinding) -> str:
    """The theft stage a finding shows: its own word, else its detector's."""
    own = finding.details.get("stage")
    if isinstance(own, str) and own in STAGES:
        return own
    cls = DETECTORS.get(finding.detector)
    return getattr(cls, "stage", "context") if cls is not None else "context"


def sends_taken(day: int, taken: Iterable[int], send_days: int) -> bool:
    """Whether an upload on ``day`` (an ordinal) can be sending what was taken on one
    of the ``taken`` days: on it or within ``send_days`` after it. An upload before
    anything was taken cannot have sent it, and one days after is another matter (an
    auditor's expense receipts four days after a review)."""
    return any(0 <= day - t <= send_days for t in taken)


def chain_of(findings: list[StoredFinding], chain_days: int, send_days: int) -> tuple[str, ...]:
    """Why these (one person's own) findings may reach the threshold: the critical
    detectors, else the steps of the longest chain of different stages within
    ``chain_days`` of one another, an upload among them only when it follows a taking
    step within ``send_days`` (:func:`sends_taken`); empty when neither."""
    critical = sorted({f.detector for f in findings if stage_of(f) == "critical"})
    if critical:
        return tuple(f"critical: {d}" for d in critical)
    steps = sorted(
        ((f.day, stage_of(f), f.detector) for f in findings if stage_of(f) in CHAIN_STAGES),
    )
    best: set[tuple[str, str]] = set()
    for day, _, _ in steps:
        window = [(x, st, d) for x, st, d in steps if 0 <= (x - day).days <= chain_days]
        # A theft takes data: a chain holds access beyond need or collection (a
        # leaver's one large chat upload is a motive and an upload, nothing taken),
        # and sends out what it took: an upload is a step only soon after a taking.
        taken = [x.toordinal() for x, st, _ in window if st in TAKING]
        if not taken:
            continue
        held = [
            (x, st, d)
            for x, st, d in window
            if st != "exfiltration" or sends_taken(x.toordinal(), taken, send_days)
        ]
        if one_reading(held):
            continue
        near = {(st, d) for _, st, d in held}
        if len({st for st, _ in near}) > len({st for st, _ in best}):
            best = near
    if len({st for st, _ in best}) < 2:
        return ()
    order = {st: i for i, st in enumerate(STAGES)}
    return tuple(f"{st}: {d}" for st, d in sorted(best, key=lambda x: (order[x[0]], x[1])))


def _remembered(findings: list[StoredFinding], as_of: date, settings: DetectionSettings) -> bool:
    """Whether a chain of these findings still lifts the lone cap on ``as_of``: a
    critical finding, or a chain step within the last ``chain_memory_days`` (an old
    chain does not lift the cap of the routine findings that follow it for ever)."""
    memory = settings.chain_memory_days
    return any(
        stage_of(f) == "critical"
        or (stage_of(f) in CHAIN_STAGES and (as_of - f.day).days <= memory)
        for f in findings
    )


def _recent_course(findings: list[StoredFinding], as_of: date, settings: DetectionSettings) -> bool:
    """Whether the last ``chain_days`` hold a critical finding, or a chain whose steps
    of action fall on more than one day (a course of action, not one heavy day; a
    leaver's notice, found every day, is no action: one day of reading others'
    clients during notice counts what it scores)."""
    chain_days = settings.chain_days
    recent = [f for f in findings if (as_of - f.day).days <= chain_days]
    chain = chain_of(recent, chain_days, settings.send_days)
    return bool(chain) and (chain[0].startswith("critical:") or acted_over_days(recent))


def acted_over_days(findings: Iterable[StoredFinding]) -> bool:
    """Whether the findings' action steps (:data:`ACTING`) fall on more than one day."""
    return len({f.day for f in findings if stage_of(f) in ACTING}) > 1


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
        chain = chain_of(own, settings.chain_days, settings.send_days)
        if chain and not _remembered(own, as_of, settings):
            chain = ()
        if not chain:
            total = min(total, settings.lone_cap * settings.alert_threshold)
        elif _recent_course(own, as_of, settings):
            # A recent chain over days (or a critical finding) is the alert, however
            # weak each step; steps of one day alone count what they score.
            total = max(total, settings.alert_threshold)
        reasons.sort(key=lambda r: (-r.score, r.detector))
        out.append(PersonRisk(person, round(total, 4), tuple(reasons), leaving, families, chain))
    out.sort(key=lambda p: (-p.score, p.person_id))
    return out


@dataclass(frozen=True, slots=True)
class Threshold:
    """The alert threshold of one day, and how it was set."""

    value: float
    how: str


class RiskRanker:
    """Rankings of people from the stored findings, as they stood at the end of a day."""

    def __init__(
        self, store: Store, settings: DetectionSettings, timezone: str = DEFAULT_TIMEZONE
    ) -> None:
        self.store = store
        self.settings = settings
        self.zone = ZoneInfo(timezone)
        self._people: dict[tuple[str, date], Person | None] = {}
        self._hr: dict[str, list[dict[str, Any]]] | None = None
        self._scores: dict[date, list[PersonRisk]] = {}
        self._thresholds: dict[date, Threshold] = {}
        self._dates: dict[str, Person] | None = None
        self._stored: DailyScores | None = None

    def person(self, person_id: str, day: date) -> Person | None:
        """The person as HR had them at the end of ``day``."""
        return self._person(person_id, day)

    def hr_people(self) -> dict[str, Person]:
        """Everyone HR knows, with their dates (from the latest knowledge, whatever
        the day: what status and leaving are worked out from)."""
        if self._dates is None:
            at = datetime.now(UTC)
            self._dates = {
                p: person_from_versions(p, v, at, self.zone) for p, v in self._versions().items()
            }
        return self._dates

    def _person(self, person_id: str, day: date) -> Person | None:
        key = (person_id, day)
        if key not in self._people:
            end = datetime.combine(day, time(23, 59, 59), self.zone)
            self._people[key] = self._person_at(person_id, end)
        return self._people[key]

    def _person_at(self, person_id: str, at: datetime) -> Person | None:
        """What :meth:`Identity.person` answers, from the HR versions read once: a
        ranking of every day would otherwise ask the store twice per person and day."""
        return person_from_versions(person_id, self._versions().get(person_id, []), at, self.zone)

    def _versions(self) -> dict[str, list[dict[str, Any]]]:
        """Every person's HR versions, read once."""
        if self._hr is None:
            self._hr = defaultdict(list)
            for r in self.store.query("SELECT * FROM ref_hr ORDER BY source_id"):
                self._hr[r["employee_id"]].append(r)
        return self._hr

    def scores(self, as_of: date, findings: list[StoredFinding] | None = None) -> list[PersonRisk]:
        """Everyone with a finding up to ``as_of``, scored, highest first (cached per day
        when ``findings`` is given: a history passes the same list for every day)."""
        if findings is not None and as_of in self._scores:
            return self._scores[as_of]
        found = findings if findings is not None else load_findings(self.store, as_of)
        people = {p for f in found if f.day <= as_of for p in (f.person_id, *f.related) if p}
        known = {p: self._person(p, as_of) for p in sorted(people)}
        departing = {p for p, who in known.items() if is_departing(who, as_of, self.settings)}
        departed = {p for p, who in known.items() if who is not None and who.status == "departed"}
        scored = score_people(found, as_of, self.settings, departing, departed)
        if findings is not None:
            self._scores[as_of] = scored
        return scored

    def staff(self, day: date) -> int:
        """People employed (or on notice) at the end of ``day``."""
        return sum(
            1
            for who in self.hr_people().values()
            if employment_status(day, who.hire_date, who.notice_date, who.termination_date)
            in ("employed", "on_notice")
        )

    def threshold(self, as_of: date, findings: list[StoredFinding] | None = None) -> Threshold:
        """The alert threshold of ``as_of``: ``alert_threshold``, or with ``alert_budget``
        set, the lowest score at or above it that would have flagged at most the budget's
        people over the ``budget_days`` before ``as_of`` (the day itself is not used, so an
        outbreak today is not hidden by its own size)."""
        s = self.settings
        if s.alert_budget is None:
            return Threshold(s.alert_threshold, f"fixed: alert_threshold = {s.alert_threshold}")
        if as_of in self._thresholds:
            return self._thresholds[as_of]
        if findings is None and (stored := self._daily(as_of)) is not None:
            kept = stored.threshold(as_of)
            if kept is not None:
                self._thresholds[as_of] = kept
                return kept
        found = findings if findings is not None else load_findings(self.store, as_of)
        first = self.first_day() or as_of
        days = [
            as_of - timedelta(days=i)
            for i in range(1, s.budget_days + 1)
            if as_of - timedelta(days=i) >= first
        ]
        above = sorted(
            (p.score for d in days for p in self.scores(d, found) if p.score >= s.alert_threshold),
            reverse=True,
        )
        return self.budgeted(as_of, days, above)

    def budgeted(self, as_of: date, days: list[date], above: list[float]) -> Threshold:
        """The threshold of ``as_of`` under the alert budget, from the trailing ``days``
        and their scores at or above ``alert_threshold`` (``above``, highest first)."""
        s = self.settings
        assert s.alert_budget is not None
        staff_days = sum(self.staff(d) for d in days)
        allowed = int(s.alert_budget * staff_days / 1000)
        value = s.alert_threshold
        if len(above) > allowed:
            value = max(value, above[allowed] + 1e-6)
        how = (
            f"alert budget {s.alert_budget:g} per 1,000 staff-days over the {len(days)} days "
            f"before ({staff_days} staff-days: at most {allowed} flagged person-days); "
            + (
                f"raised from {s.alert_threshold} to {value:.4f}"
                if value > s.alert_threshold
                else f"the floor alert_threshold = {s.alert_threshold} is within budget"
            )
        )
        self._thresholds[as_of] = Threshold(round(value, 6), how)
        return self._thresholds[as_of]

    def rank_rows(
        self,
        as_of: date,
        *,
        top: int | None = None,
        include_all: bool = False,
        findings: list[StoredFinding] | None = None,
    ) -> list[RankRow]:
        """The ranking of ``as_of``: rank, the person as HR had them that day, score,
        the chain that lets the person reach the threshold, and the reasons behind the
        score (times in UTC)."""
        if findings is None and (stored := self._daily(as_of)) is not None:
            return stored.days(as_of, as_of, top, include_all).get(as_of, [])
        found = findings if findings is not None else load_findings(self.store, as_of)
        scored = self.scores(as_of, found)
        threshold = self.threshold(as_of, found).value
        if not include_all:
            scored = [p for p in scored if p.score >= threshold]
        if top is not None:
            scored = scored[:top]
        out = []
        for rank, p in enumerate(scored, 1):
            person = self._person(p.person_id, as_of)
            out.append(
                RankRow(
                    rank=rank,
                    person_id=p.person_id,
                    name=person.name if person else None,
                    department=person.department if person else None,
                    role=person.role if person else None,
                    score=p.score,
                    flagged=p.score >= threshold,
                    chain=p.chain,
                    reasons=p.reasons,
                )
            )
        return out

    def ranking(
        self,
        as_of: date,
        *,
        top: int | None = None,
        include_all: bool = False,
        findings: list[StoredFinding] | None = None,
    ) -> list[dict[str, Any]]:
        """:meth:`rank_rows` as JSON, times in the ranker's zone (what the CLI prints)."""
        rows = self.rank_rows(as_of, top=top, include_all=include_all, findings=findings)
        return [self.row_json(r) for r in rows]

    def row_json(self, row: RankRow) -> dict[str, Any]:
        """One :class:`~molehunt.models.RankRow` as JSON, times in the ranker's zone."""
        return row.as_json(self.zone)

    def history(
        self, until: date, *, top: int | None = None, include_all: bool = False
    ) -> list[dict[str, Any]]:
        """The ranking of every day from the first day with data up to ``until``, read
        from the stored daily scores (brought up to date first, see
        :mod:`molehunt.score.stored`)."""
        first = self.first_day()
        if first is None or until < first:
            return []
        stored = self._daily(until)
        if stored is not None:
            days = stored.days(first, until, top, include_all)
        else:
            days = self.computed_history(first, until, top, include_all)
        out = []
        day = first
        while day <= until:
            rows = days.get(day, [])
            out.append({"date": day.isoformat(), "ranking": [self.row_json(r) for r in rows]})
            day += timedelta(days=1)
        return out

    def computed_history(
        self, first: date, until: date, top: int | None, include_all: bool
    ) -> dict[date, list[RankRow]]:
        """:meth:`history`'s days scored in memory (not kept), as fast and the same."""
        from molehunt.score.days import DayScorer, quiet_gc, reason
        from molehunt.score.stored import walk

        with quiet_gc():
            scorer = DayScorer(load_findings(self.store, until), self.settings, self.hr_people())
            out: dict[date, list[RankRow]] = {}
            for scored in walk(self, scorer, first, until, first):
                at = scored.threshold.value
                shown = [p for p in scored.scores if include_all or p.score >= at][:top]
                out[scored.day] = [
                    RankRow(
                        rank=i,
                        person_id=p.person_id,
                        name=who.name if (who := self._person(p.person_id, scored.day)) else None,
                        department=who.department if who else None,
                        role=who.role if who else None,
                        score=p.score,
                        flagged=p.score >= at,
                        chain=p.chain,
                        reasons=tuple(
                            reason(d, part, scorer.text(p.person_id, d, since))
                            for d, part, since in p.parts
                        ),
                    )
                    for i, p in enumerate(shown, 1)
                ]
        return out

    def _daily(self, last: date) -> DailyScores | None:
        """The stored daily scores when they hold ``last`` once brought up to date."""
        from molehunt.score.stored import DailyScores

        if self._stored is None:
            self._stored = DailyScores(self)
        held = self._stored.covered()
        return self._stored if held is not None and held[0] <= last <= held[1] else None

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
