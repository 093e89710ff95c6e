"""Scores of a run of days at once, exactly as :func:`molehunt.score.score_people`
gives them one day at a time.

``score_people`` is the definition: for a day D it walks every finding up to D. A
history of 180 days over 130,000 findings asked it 180 times (minutes). Here the
findings are grouped by person once and each person is scored over the whole run of
days at once:

- the decayed contributions of a detector's findings form a matrix (a finding per
  row, a day per column) made with numpy from the same operands in the same order as
  ``score_people`` (``weight * severity / 100``, times the decay of the age, times the
  share), so the same floats; maxima are exact whatever the order, and sums are added
  row after row as ``sum`` adds a list (groups of detectors in the order
  ``score_people`` meets them wherever that can matter);
- a person's chain, corroboration and the static part of each reason (summary, first
  and last seen, events) depend only on which of their findings are in force: they
  change only on the days that set changes (a new finding, or the person leaving,
  which drops the shares of findings that merely name them), and are kept up as
  findings arrive (:mod:`molehunt.score.kept`) rather than worked out again.
"""

from __future__ import annotations

import gc
from bisect import bisect_left, bisect_right, insort
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import NamedTuple

import numpy as np

from molehunt.detect.settings import DetectionSettings
from molehunt.identity import employment_status
from molehunt.models import Person, Reason
from molehunt.score import (
    CHAIN_STAGES,
    SAME_EVIDENCE,
    StoredFinding,
    acted_over_days,
    is_departing,
    stage_of,
)
from molehunt.score.kept import ReasonText as ReasonText
from molehunt.score.kept import _chain as _chain
from molehunt.score.kept import _families as _families
from molehunt.score.kept import _families_of, _mark, _Own, _own_chain, _Text


class DayScore(NamedTuple):
    """A person's score on one day, compact: each reason's score with the day from
    which its text (:data:`ReasonText`) holds (see :meth:`DayScorer.text`)."""

    person_id: str
    score: float
    departing: bool
    corroborated: tuple[str, ...]
    chain: tuple[str, ...]
    #: (detector, score, ordinal of the day its text holds from), highest score first.
    parts: tuple[tuple[str, float, int], ...]


#: Whether ``sum`` adds floats one after another (Python before 3.12); later versions
#: compensate, and the sums below then ask ``sum`` itself, column by column.
_PLAIN_SUM = sum([1.0, 1e100, 1.0, -1e100]) == 0.0


@contextmanager
def quiet_gc() -> Iterator[None]:
    """No cyclic garbage collection meanwhile: scoring months makes millions of small
    objects, none in a cycle, and the collector would walk them all again and again
    (a third of the time)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _seqsum(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Per column, ``sum`` of the ``valid`` values top to bottom, as ``sum`` adds a list
    of them (an invalid value is 0.0: adding it changes nothing)."""
    if _PLAIN_SUM:
        start = np.zeros((1, values.shape[1]))
        running = np.cumsum(np.concatenate([start, np.where(valid, values, 0.0)]), axis=0)
        last: np.ndarray = running[-1]
        return last
    cols = zip(values.T.tolist(), valid.T.tolist(), strict=True)
    return np.array([sum(v for v, ok in zip(c, m, strict=True) if ok) for c, m in cols])


def _spans(fn: Callable[[date], bool], dates: Iterable[date | None], a: int, b: int) -> np.ndarray:
    """``fn`` of each day from ordinal ``a`` to ``b``, when it compares the day only with
    ``dates``: worked out at ``a`` and where a comparison may turn (a date, the day after)."""
    out = np.empty(b - a + 1, dtype=bool)
    turns = sorted({t for d in dates if d for t in (d.toordinal(), d.toordinal() + 1)})
    at = a
    for t in [*(t for t in turns if a < t <= b), b + 1]:
        out[at - a : t - a] = fn(date.fromordinal(at))
        at = t
    return out


@dataclass(slots=True)
class _Items:
    """A person's findings, prepared once: per finding its day (ordinal),
    ``weight * severity / 100``, share and whether it merely names the person."""

    ords: np.ndarray
    bases: np.ndarray
    shares: np.ndarray
    named: np.ndarray
    days: list[int]  # the same ordinals
    by_detector: dict[str, list[int]]  # finding indices, in the findings' order
    detector_order: dict[str, list[int]]  # the same, by day
    detector_days: dict[str, list[int]]  # their ordinals, sorted
    named_detectors: dict[str, bool]  # whether some of them merely name the person
    own_order: list[int]  # findings with share 1.0 (``score_people``'s own), by day
    own_days: list[int]  # their ordinals, sorted
    named_own: bool
    stages: list[str]  # each finding's stage
    marks: list[tuple[str, int, str] | None]  # (host, ordinal, family) of a corroborating one


@dataclass(slots=True)
class _Person:
    items: list[tuple[StoredFinding, float, bool]]  # (finding, share, merely named)
    days: list[int]  # ordinals of the items' days, sorted
    named: bool  # any item merely names the person
    texts: dict[str, tuple[int, ReasonText]] = field(default_factory=dict)
    prepared: _Items | None = None


@dataclass(slots=True)
class _Run:
    """One person over a run of days: what holds on each stretch of days between two
    changes of their findings in force (``stretch[i]`` the stretch of day ``i``)."""

    stretch: list[int] = field(default_factory=list)
    bounds: list[tuple[int, int]] = field(default_factory=list)  # day offsets [lo, hi)
    labels: list[dict[str, int]] = field(default_factory=list)
    families: list[tuple[str, ...]] = field(default_factory=list)
    orders: list[tuple[str, ...]] = field(default_factory=list)  # groups, as met
    courses: list[bool] = field(default_factory=list)  # per day
    day_chains: list[tuple[str, ...]] = field(default_factory=list)  # per day, as remembered


class DayScorer:
    """Every day's :class:`DayScore` of one list of findings; ``people`` holds HR's
    view of each person (only the dates are used: notice, termination, hire), a person
    missing from it counts as unknown, as ``score_people``'s callers have it.

    Days are scored a run at a time (:meth:`days`), person by person: the decayed
    contributions of a detector's findings over all the days at once (numpy, the same
    products in the same order as ``score_people``, so the same floats), and what
    depends only on the findings in force (reason texts, corroboration, chain) kept up
    as findings arrive."""

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
        self._decay_array = np.zeros(0)
        self._ready: dict[int, list[DayScore]] = {}
        #: Every reason text handed out: (person, detector, from day ordinal, text).
        self.versions: list[tuple[str, str, int, ReasonText]] = []
        self._said: dict[tuple[str, str, int], ReasonText] = {}

    def _decays(self, oldest: int) -> np.ndarray:
        h = self.settings.half_life_days
        if len(self._decay) <= oldest:
            while len(self._decay) <= oldest:
                self._decay.append(0.5 ** (len(self._decay) / h))
            self._decay_array = np.array(self._decay)
        return self._decay_array

    def departed(self, person_id: str, day: date) -> bool:
        who = self.people.get(person_id)
        if who is None:
            return False
        status = employment_status(day, who.hire_date, who.notice_date, who.termination_date)
        return status == "departed"

    def day(self, day: date) -> list[DayScore]:
        """Everyone with a finding up to ``day``, highest score first."""
        ordinal = day.toordinal()
        if ordinal not in self._ready:
            self.days(day, day)
        return self._ready.pop(ordinal)

    def days(self, first: date, last: date) -> None:
        """Score the days ``first`` to ``last`` at once, for :meth:`day` to hand out."""
        a, b = first.toordinal(), last.toordinal()
        out: list[list[DayScore]] = [[] for _ in range(b - a + 1)]
        for pid, state in self._people.items():
            if state.days and state.days[0] <= b:
                self._person(pid, state, a, b, out)
        for i, scored in enumerate(out):
            scored.sort(key=lambda p: (-p.score, p.person_id))
            self._ready[a + i] = scored

    def text(self, person_id: str, detector: str, since: int) -> ReasonText:
        """The text of a reason, from the day it holds from (a :class:`DayScore` part's)."""
        return self._said[person_id, detector, since]

    def _prepare(self, state: _Person) -> _Items:
        if state.prepared is None:
            weights = self.settings.weights
            by_detector: dict[str, list[int]] = defaultdict(list)
            for i, (f, _, _) in enumerate(state.items):
                by_detector[f.detector].append(i)
            days = [f.day.toordinal() for f, _, _ in state.items]
            named = [n for *_, n in state.items]
            order = {d: sorted(its, key=days.__getitem__) for d, its in by_detector.items()}
            own = sorted(
                (i for i, (_, share, _) in enumerate(state.items) if share == 1.0),
                key=days.__getitem__,
            )
            state.prepared = _Items(
                ords=np.array(days, dtype=np.int64),
                bases=np.array(
                    [weights.get(f.detector, 0.5) * f.severity / 100 for f, _, _ in state.items]
                ),
                shares=np.array([share for _, share, _ in state.items]),
                named=np.array(named, dtype=bool),
                days=days,
                by_detector=dict(by_detector),
                detector_order=order,
                detector_days={d: [days[i] for i in its] for d, its in order.items()},
                named_detectors={d: any(named[i] for i in its) for d, its in order.items()},
                own_order=own,
                own_days=[days[i] for i in own],
                named_own=any(named[i] for i in own),
                stages=[stage_of(f) for f, _, _ in state.items],
                marks=[_mark(f) for f, _, _ in state.items],
            )
        return state.prepared

    def _gone(self, pid: str, state: _Person, a: int, b: int) -> np.ndarray | None:
        who = self.people.get(pid)
        if not state.named or who is None:
            return None
        dates = (who.hire_date, who.notice_date, who.termination_date)
        return _spans(lambda d: self.departed(pid, d), dates, a, b)

    def _leaving(self, pid: str, a: int, b: int) -> np.ndarray:
        who = self.people.get(pid)
        if who is None:
            return np.zeros(b - a + 1, dtype=bool)
        end = who.termination_date
        ahead = end - timedelta(days=self.settings.departing_days) if end else None
        dates = (who.notice_date, end, ahead)
        return _spans(lambda d: is_departing(who, d, self.settings), dates, a, b)

    def _person(self, pid: str, state: _Person, a: int, b: int, out: list[list[DayScore]]) -> None:
        """Score one person on the days ``a`` to ``b`` (ordinals) into ``out``."""
        s = self.settings
        its = self._prepare(state)
        s0 = max(a, state.days[0])
        gone = self._gone(pid, state, s0, b)
        parts, present = self._parts(its, s0, b, gone)
        groups = {SAME_EVIDENCE.get(d, d) for d in parts}
        run = self._stretches(pid, state, its, s0, b, gone, len(groups) > 2 or not _PLAIN_SUM)
        total = self._total(run, parts, present)
        bonus = [
            1 + s.corroboration_bonus * (len(f) - 1) if len(f) > 1 else 1.0 for f in run.families
        ]
        total = total * np.array(bonus)[run.stretch]
        leaving = self._leaving(pid, s0, b)
        total = np.where(leaving, total * s.departing_multiplier, total)
        lone = np.array([not c for c in run.day_chains], dtype=bool)
        total = np.where(lone, np.minimum(total, s.lone_cap * s.alert_threshold), total)
        total = np.where(run.courses, np.maximum(total, s.alert_threshold), total)
        scores, away = total.tolist(), leaving.tolist()
        on = np.logical_or.reduce(list(present.values())).tolist()
        values = {d: p.tolist() for d, p in parts.items()}
        shown = {d: p.tolist() for d, p in present.items()}
        only = next(iter(parts)) if len(parts) == 1 else None
        columns = [(d, values[d], shown[d]) for d in values]
        for t, k in enumerate(run.stretch):
            if not on[t]:
                continue
            labels = run.labels[k]
            if only is not None:
                held: tuple[tuple[str, float, int], ...] = ((only, values[only][t], labels[only]),)
            else:
                some = [(d, v[t], labels[d]) for d, v, on_days in columns if on_days[t]]
                if len(some) == 2:
                    x, y = some
                    ahead = y[1] > x[1] or (y[1] == x[1] and y[0] < x[0])
                    held = (y, x) if ahead else (x, y)
                else:
                    some.sort(key=lambda x: (-x[1], x[0]))
                    held = tuple(some)
            out[s0 - a + t].append(
                DayScore(
                    pid, round(scores[t], 4), away[t], run.families[k], run.day_chains[t], held
                )
            )

    def _parts(
        self, its: _Items, s0: int, b: int, gone: np.ndarray | None
    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Each detector's part of the score on every day from ``s0`` to ``b``, and the
        days it has findings in force: ``score_people``'s arithmetic, a day per column."""
        s = self.settings
        decay = self._decays(b - int(its.ords.min()))
        offsets = np.arange(b - s0 + 1)
        parts, present = {}, {}
        for det, idx in its.by_detector.items():
            if its.detector_days[det][0] > b:
                continue
            ix = np.array(idx)
            ages = (s0 - its.ords[ix])[:, None] + offsets
            valid = ages >= 0
            if gone is not None:
                named = its.named[ix]
                if named.any():
                    valid &= ~(named[:, None] & gone)
            values = its.bases[ix][:, None] * decay[np.maximum(ages, 0)] * its.shares[ix][:, None]
            on = valid.any(axis=0)
            best = np.where(on, np.where(valid, values, -np.inf).max(axis=0), 0.0)
            total = _seqsum(values, valid)
            parts[det] = best + s.repeat_share * np.minimum(total - best, 2 * best)
            present[det] = on
        return parts, present

    def _total(
        self, run: _Run, parts: dict[str, np.ndarray], present: dict[str, np.ndarray]
    ) -> np.ndarray:
        """The sum over groups of detectors (each the strongest of its own), in the order
        ``score_people`` meets them when that order can matter (three groups or more)."""
        groups: dict[str, np.ndarray] = {}
        held: dict[str, np.ndarray] = {}
        for det, part in parts.items():
            g = SAME_EVIDENCE.get(det, det)
            value = np.where(present[det], part, 0.0)
            groups[g] = np.maximum(groups.get(g, 0.0), value)
            held[g] = held[g] | present[det] if g in held else present[det]
        if not run.orders:
            names = list(groups)
            return _seqsum(np.array([groups[g] for g in names]), np.array([held[g] for g in names]))
        total = np.zeros(len(run.stretch))
        for (lo, hi), order in zip(run.bounds, run.orders, strict=True):
            if order:
                total[lo:hi] = _seqsum(
                    np.array([groups[g][lo:hi] for g in order]),
                    np.array([held[g][lo:hi] for g in order]),
                )
        return total

    def _stretches(
        self,
        pid: str,
        state: _Person,
        its: _Items,
        s0: int,
        b: int,
        gone: np.ndarray | None,
        ordered: bool,
    ) -> _Run:
        """What holds between two changes of the person's findings in force (a new
        finding, or leaving, which drops those that merely name them): reason texts
        (a new version kept when one changes), corroboration, chain, the recent course."""
        turns = {o for o in state.days if s0 < o <= b}
        if gone is not None:
            turns.update(int(x) + s0 for x in np.flatnonzero(gone[1:] != gone[:-1]) + 1)
        starts = [s0, *sorted(turns)]
        run = _Run()
        texts: dict[str, _Text] = {}
        own: _Own | None = None
        for k, (lo, hi) in enumerate(zip(starts, [*starts[1:], b + 1], strict=True)):
            g = bool(gone[lo - s0]) if gone is not None else False
            labels: dict[str, int] = {}
            for det in its.by_detector:
                count = bisect_right(its.detector_days[det], lo)
                if count == 0:
                    continue
                key = (count, g and its.named_detectors[det])
                text = texts.get(det)
                if text is None or text.key != key:
                    text = texts[det] = self._text(state, its, det, key, lo, g, text)
                    if text.n:
                        said = text.text()
                        held = state.texts.get(det)
                        if held is None or held[1] != said:
                            state.texts[det] = (lo, said)
                            self.versions.append((pid, det, lo, said))
                            self._said[pid, det, lo] = said
                if text.n:
                    labels[det] = state.texts[det][0]
            count = bisect_right(its.own_days, lo)
            key = (count, g and its.named_own)
            if own is None or own.key != key:
                own = self._own(state, its, key, lo, g, own)
            run.stretch.extend([k] * (hi - lo))
            run.bounds.append((lo - s0, hi - s0))
            run.labels.append(labels)
            run.families.append(own.families)
            if own.chain:
                for d in range(lo, hi):
                    chain = self._remembered(own, d)
                    run.day_chains.append(chain)
                    run.courses.append(bool(chain) and self._course(state, own, d))
            else:
                run.day_chains.extend([()] * (hi - lo))
                run.courses.extend([False] * (hi - lo))
            if ordered:
                run.orders.append(self._order(its, labels, lo, g))
        return run

    def _text(
        self,
        state: _Person,
        its: _Items,
        det: str,
        key: tuple[int, bool],
        lo: int,
        g: bool,
        was: _Text | None,
    ) -> _Text:
        """The reason text of ``det`` on day ``lo``: ``was`` with the findings since its
        day added, or made again when some left (or the days went back)."""
        order = its.detector_order[det]
        if was is not None and was.key[1] == key[1] and was.key[0] < key[0]:
            text, start = was, was.key[0]
        else:
            text, start = _Text(key, lo), 0
        for i in order[start : key[0]]:
            f, _, named = state.items[i]
            if not (named and g):
                text.add(f, self.settings.max_event_ids)
        text.key, text.upto = key, lo
        return text

    def _own(
        self, state: _Person, its: _Items, key: tuple[int, bool], lo: int, g: bool, was: _Own | None
    ) -> _Own:
        """The person's own findings in force on day ``lo``: ``was`` with those since its
        day added, or made again; corroboration and chain worked out again only when
        their inputs changed."""
        grow = was is not None and was.key[1] == key[1] and was.key[0] < key[0]
        if was is not None and grow:
            own, start = was, was.key[0]
        else:
            own, start = _Own(key, lo), 0
        before = (len(own.critical), len(own.steps), len(own.seen))
        fresh: list[int] = []
        for i in its.own_order[start : key[0]]:
            f, _, named = state.items[i]
            if named and g:
                continue
            stage = its.stages[i]
            if stage == "critical":
                own.critical.add(f.detector)
            elif (
                stage in CHAIN_STAGES
                and (step := (its.days[i], stage, f.detector)) not in own.steps
            ):
                own.steps.add(step)
                own.stages.add(stage)
                at = bisect_right(own.ordered, step)
                own.ordered.insert(at, step)
                own.step_days.insert(at, step[0])
                if step[0] not in own.starts:
                    insort(own.starts, step[0])
                fresh.append(step[0])
            mark = its.marks[i]
            if mark is not None:
                own.seen.add(mark[2])
            own.active.append(i)
            insort(own.days, (its.days[i], i))
        own.key, own.upto = key, lo
        own.courses.clear()
        if not grow or before[:2] != (len(own.critical), len(own.steps)):
            own.chain = _own_chain(own, fresh, self.settings.chain_days, self.settings.send_days)
        if not grow or before[2] != len(own.seen) or own.families != tuple(sorted(own.seen)):
            marks = [its.marks[i] for i in sorted(own.active)]
            own.families = _families_of([m for m in marks if m is not None])
        return own

    def _remembered(self, own: _Own, day: int) -> tuple[str, ...]:
        """The chain on ``day`` (ordinal) of the own findings in force, while it lifts
        the lone cap (``score._remembered``): a critical finding, or the last chain
        step within ``chain_memory_days``."""
        if own.critical or (
            own.step_days and own.step_days[-1] >= day - self.settings.chain_memory_days
        ):
            return own.chain
        return ()

    def _course(self, state: _Person, own: _Own, day: int) -> bool:
        """``_recent_course`` of the own findings in force on ``day`` (ordinal), when
        they hold a chain."""
        chain_days = self.settings.chain_days
        cut = bisect_left(own.days, (day - chain_days, -1))
        if cut not in own.courses:
            recent = [state.items[i][0] for _, i in own.days[cut:]]
            chain = _chain(recent, chain_days, self.settings.send_days)
            own.courses[cut] = bool(chain) and (
                chain[0].startswith("critical:") or acted_over_days(recent)
            )
        return own.courses[cut]

    def _order(self, its: _Items, labels: dict[str, int], lo: int, g: bool) -> tuple[str, ...]:
        """The groups of the detectors in force on day ``lo``, in the order
        ``score_people`` meets them (by each detector's first finding in force)."""
        first = {}
        for det in labels:
            first[det] = next(
                i for i in its.by_detector[det] if its.days[i] <= lo and not (its.named[i] and g)
            )
        groups: dict[str, None] = {}
        for det in sorted(first, key=first.__getitem__):
            groups.setdefault(SAME_EVIDENCE.get(det, det), None)
        return tuple(groups)


def reason(detector: str, score: float, text: ReasonText) -> Reason:
    summary, first, last, events = text
    return Reason(detector, summary, first, last, events, score)
