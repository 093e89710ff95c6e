"""Scores of a run of days at once, exactly as :func:`molehunt.score.score_people`
gives them one day at a time.

``score_people`` is the definition: for a day D it walks every finding up to D. A
history of 180 days over 130,000 findings asked it 180 times (minutes). Here the
findings are grouped by person once; a person's chain, corroboration and the static
part of each reason (summary, first and last seen, events) depend only on which of
their findings are in force, so they are worked out again only on the days that set
changes (a new finding, or the person leaving, which drops the shares of findings
that merely name them). What changes every day is the decay: each contribution is
formed as ``score_people`` forms it (same operands, same order, so the same floats),
from a table of the decay of each age in days.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime

from molehunt.detect.settings import DetectionSettings
from molehunt.identity import employment_status
from molehunt.models import Person, PersonRisk, Reason
from molehunt.score import (
    CHAIN_STAGES,
    CORROBORATING,
    SAME_EVIDENCE,
    STAGES,
    TAKING,
    StoredFinding,
    _family,
    is_departing,
    stage_of,
)

#: The static part of a reason: summary, first seen, last seen, events cited.
ReasonText = tuple[str, datetime, datetime, tuple[str, ...]]


@dataclass(frozen=True, slots=True)
class DayScore:
    """A person's score on one day, compact: each reason's score with the day from
    which its text (:data:`ReasonText`) holds (see :meth:`DayScorer.text`)."""

    person_id: str
    score: float
    departing: bool
    corroborated: tuple[str, ...]
    chain: tuple[str, ...]
    #: (detector, score, ordinal of the day its text holds from), highest score first.
    parts: tuple[tuple[str, float, int], ...]


@dataclass(slots=True)
class _Epoch:
    """What a person's findings in force give, until that set changes."""

    key: tuple[int, bool]
    # (detector, group, [(day ordinal, weight * severity / 100, share)]) in the order
    # score_people meets the detectors.
    detectors: list[tuple[str, str, list[tuple[int, float, float]]]]
    labels: dict[str, int]
    families: tuple[str, ...]
    chain: tuple[str, ...]
    own: list[StoredFinding]
    own_days: list[int]  # ordinals of ``own``, sorted
    courses: dict[int, bool] = field(default_factory=dict)


@dataclass(slots=True)
class _Person:
    items: list[tuple[StoredFinding, float, bool]]  # (finding, share, merely named)
    days: list[int]  # ordinals of the items' days, sorted
    named: bool  # any item merely names the person
    epoch: _Epoch | None = None
    texts: dict[str, tuple[int, ReasonText]] = field(default_factory=dict)


class DayScorer:
    """Every day's :class:`DayScore` of one list of findings; ``people`` holds HR's
    view of each person (only the dates are used: notice, termination, hire), a person
    missing from it counts as unknown, as ``score_people``'s callers have it."""

    def __init__(
        self,
        findings: list[StoredFinding],
        settings: DetectionSettings,
        people: Mapping[str, Person],
    ) -> None:
        self.settings = settings
        self.people = people
        items: dict[str, list[tuple[StoredFinding, float, bool]]] = defaultdict(list)
        for f in findings:
            if f.person_id:
                items[f.person_id].append((f, 1.0, False))
            for other in f.related:
                if other and other != f.person_id:
                    items[other].append((f, settings.related_share, True))
        self._people = {
            p: _Person(its, sorted(f.day.toordinal() for f, _, _ in its), any(n for *_, n in its))
            for p, its in items.items()
        }
        self._decay: list[float] = []
        #: Every reason text handed out: (person, detector, from day ordinal, text).
        self.versions: list[tuple[str, str, int, ReasonText]] = []

    def _decays(self, oldest: int) -> list[float]:
        h = self.settings.half_life_days
        while len(self._decay) <= oldest:
            self._decay.append(0.5 ** (len(self._decay) / h))
        return self._decay

    def departed(self, person_id: str, day: date) -> bool:
        who = self.people.get(person_id)
        if who is None:
            return False
        status = employment_status(day, who.hire_date, who.notice_date, who.termination_date)
        return status == "departed"

    def _epoch(self, pid: str, state: _Person, day: date, ordinal: int) -> _Epoch | None:
        n = bisect_right(state.days, ordinal)
        gone = state.named and self.departed(pid, day)
        key = (n, gone)
        if state.epoch is not None and state.epoch.key == key:
            return state.epoch
        if n == 0:
            return None
        active = [(f, s) for f, s, named in state.items if f.day <= day and not (named and gone)]
        if not active:
            state.epoch = None
            return None
        weights = self.settings.weights
        by_detector: dict[str, list[tuple[StoredFinding, float]]] = defaultdict(list)
        for f, share in active:
            by_detector[f.detector].append((f, share))
        detectors = []
        labels: dict[str, int] = {}
        for det, scored in by_detector.items():
            its = [
                (f.day.toordinal(), weights.get(f.detector, 0.5) * f.severity / 100, s)
                for f, s in scored
            ]
            detectors.append((det, SAME_EVIDENCE.get(det, det), its))
            text = _text(scored, self.settings.max_event_ids)
            held = state.texts.get(det)
            if held is None or held[1] != text:
                held = (ordinal, text)
                state.texts[det] = held
                self.versions.append((pid, det, ordinal, text))
            labels[det] = held[0]
        own = [f for f, share in active if share == 1.0]
        state.epoch = _Epoch(
            key=key,
            detectors=detectors,
            labels=labels,
            families=_families(own),
            chain=_chain(own, self.settings.chain_days),
            own=own,
            own_days=sorted(f.day.toordinal() for f in own),
        )
        return state.epoch

    def _course(self, epoch: _Epoch, day: date, ordinal: int) -> bool:
        """``_recent_course`` of the epoch's own findings on ``day``."""
        cut = bisect_left(epoch.own_days, ordinal - self.settings.chain_days)
        if cut not in epoch.courses:
            recent = [f for f in epoch.own if (day - f.day).days <= self.settings.chain_days]
            chain = _chain(recent, self.settings.chain_days)
            epoch.courses[cut] = bool(chain) and (
                chain[0].startswith("critical:")
                or len({f.day for f in recent if stage_of(f) in CHAIN_STAGES}) > 1
            )
        return epoch.courses[cut]

    def day(self, day: date) -> list[DayScore]:
        """Everyone with a finding up to ``day``, highest score first."""
        s = self.settings
        ordinal = day.toordinal()
        out = []
        for pid, state in self._people.items():
            if not state.days or state.days[0] > ordinal:
                continue
            epoch = self._epoch(pid, state, day, ordinal)
            if epoch is None:
                continue
            decay = self._decays(ordinal - state.days[0])
            groups: dict[str, float] = {}
            parts = []
            for det, group, its in epoch.detectors:
                values = [b * decay[ordinal - d] * share for d, b, share in its]
                best = max(values)
                part = best + s.repeat_share * min(sum(values) - best, 2 * best)
                groups[group] = max(groups.get(group, 0.0), part)
                parts.append((det, part, epoch.labels[det]))
            total = sum(groups.values())
            if len(epoch.families) > 1:
                total *= 1 + s.corroboration_bonus * (len(epoch.families) - 1)
            who = self.people.get(pid)
            leaving = who is not None and is_departing(who, day, s)
            if leaving:
                total *= s.departing_multiplier
            if not epoch.chain:
                total = min(total, s.lone_cap * s.alert_threshold)
            elif self._course(epoch, day, ordinal):
                total = max(total, s.alert_threshold)
            parts.sort(key=lambda x: (-x[1], x[0]))
            out.append(
                DayScore(pid, round(total, 4), leaving, epoch.families, epoch.chain, tuple(parts))
            )
        out.sort(key=lambda p: (-p.score, p.person_id))
        return out

    def text(self, person_id: str, detector: str) -> ReasonText:
        return self._people[person_id].texts[detector][1]

    def risks(self, day: date) -> list[PersonRisk]:
        """:meth:`day` as ``score_people`` answers it (reasons in full)."""
        return [
            PersonRisk(
                r.person_id,
                r.score,
                tuple(reason(det, part, self.text(r.person_id, det)) for det, part, _ in r.parts),
                r.departing,
                r.corroborated,
                r.chain,
            )
            for r in self.day(day)
        ]


def reason(detector: str, score: float, text: ReasonText) -> Reason:
    summary, first, last, events = text
    return Reason(detector, summary, first, last, events, score)


def _text(scored: list[tuple[StoredFinding, float]], max_events: int) -> ReasonText:
    """A reason's summary, first and last seen and events, as ``score_people`` words them."""
    latest = max(scored, key=lambda x: (x[0].time, x[0].finding_id))[0]
    events = sorted({e for f, _ in scored for e in f.event_ids})
    more = f" (+{len(scored) - 1} more)" if len(scored) > 1 else ""
    return (
        latest.title + more,
        min(f.time for f, _ in scored),
        max(f.time for f, _ in scored),
        tuple(events[:max_events]),
    )


def _chain(findings: list[StoredFinding], chain_days: int) -> tuple[str, ...]:
    """:func:`~molehunt.score.chain_of`, in time linear in the days: it depends only on
    the distinct (day, stage, detector) steps, and keeps the first window (by day)
    holding the most stages, so only each distinct day's window is looked at."""
    critical = sorted({f.detector for f in findings if stage_of(f) == "critical"})
    if critical:
        return tuple(f"critical: {d}" for d in critical)
    steps = {(f.day.toordinal(), st, f.detector) for f in findings if (st := stage_of(f))}
    steps = {x for x in steps if x[1] in CHAIN_STAGES}
    stages = {st for _, st, _ in steps}
    if len(stages) < 2 or not stages & TAKING:
        return ()
    ordered = sorted(steps)
    days = [x for x, _, _ in ordered]
    best: set[tuple[str, str]] = set()
    count = 0
    for day in sorted(set(days)):
        window = ordered[bisect_left(days, day) : bisect_right(days, day + chain_days)]
        taken = [x for x, st, _ in window if st in TAKING]
        if not taken:
            continue
        near = {(st, d) for x, st, d in window if st != "exfiltration" or x >= taken[0]}
        n = len({st for st, _ in near})
        if n > count:
            best, count = near, n
    if count < 2:
        return ()
    order = {st: i for i, st in enumerate(STAGES)}
    return tuple(f"{st}: {d}" for st, d in sorted(best, key=lambda x: (order[x[0]], x[1])))


def _families(findings: list[StoredFinding]) -> tuple[str, ...]:
    """:func:`~molehunt.score._corroborated` in linear time: the first mark (hosts and
    marks in the same order) whose families within a day are the most."""
    by_host: dict[str, dict[int, set[str]]] = {}
    marks: list[tuple[str, int]] = []
    for f in findings:
        family = _family(f.detector)
        if f.host and family in CORROBORATING and f.details.get("corroborates", True):
            by_host.setdefault(f.host, {}).setdefault(f.day.toordinal(), set()).add(family)
            marks.append((f.host, f.day.toordinal()))
    best: set[str] = set()
    order = {host: i for i, host in enumerate(by_host)}
    for host, day in sorted(marks, key=lambda m: order[m[0]]):
        fams = by_host[host]
        near = fams.get(day - 1, set()) | fams[day] | fams.get(day + 1, set())
        if len(near) > len(best):
            best = near
    return tuple(sorted(best))
