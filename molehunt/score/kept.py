"""What a person's findings in force give, kept up as the findings arrive (day by day,
in a run of days) instead of worked out again from all of them each time: a reason's
text, the chain and the corroboration (see :mod:`molehunt.score.days`)."""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from dataclasses import dataclass, field
from datetime import datetime

from molehunt.score import (
    CHAIN_STAGES,
    CORROBORATING,
    STAGES,
    TAKING,
    StoredFinding,
    _family,
    one_reading,
    sends_taken,
    stage_of,
)

#: The static part of a reason: summary, first seen, last seen, events cited.
ReasonText = tuple[str, datetime, datetime, tuple[str, ...]]


@dataclass(slots=True)
class _Text:
    """A reason's text as findings of its detector arrive (rebuilt when some leave)."""

    key: tuple[int, bool]
    upto: int  # ordinal of the day the text was made for
    n: int = 0
    latest: tuple[datetime, str, str] | None = None  # time, finding id, title
    first: datetime | None = None
    last: datetime | None = None
    events: set[str] = field(default_factory=set)
    top: list[str] = field(default_factory=list)  # the smallest ``max_event_ids`` events

    def add(self, f: StoredFinding, max_events: int) -> None:
        self.n += 1
        if self.latest is None or (f.time, f.finding_id) > self.latest[:2]:
            self.latest = (f.time, f.finding_id, f.title)
        self.first = f.time if self.first is None else min(self.first, f.time)
        self.last = f.time if self.last is None else max(self.last, f.time)
        for e in f.event_ids:
            if e in self.events:
                continue
            self.events.add(e)
            if len(self.top) < max_events:
                insort(self.top, e)
            elif e < self.top[-1]:
                insort(self.top, e)
                self.top.pop()

    def text(self) -> ReasonText:
        assert self.latest is not None
        assert self.first is not None
        assert self.last is not None
        more = f" (+{self.n - 1} more)" if self.n > 1 else ""
        return (self.latest[2] + more, self.first, self.last, tuple(self.top))


@dataclass(slots=True)
class _Own:
    """What a person's own findings in force give (corroboration, chain), kept up as
    they arrive and worked out again only when that can change."""

    key: tuple[int, bool]
    upto: int
    active: list[int] = field(default_factory=list)  # finding indices
    critical: set[str] = field(default_factory=set)
    steps: set[tuple[int, str, str]] = field(default_factory=set)
    stages: set[str] = field(default_factory=set)
    seen: set[str] = field(default_factory=set)  # corroborating families met at all
    families: tuple[str, ...] = ()
    chain: tuple[str, ...] = ()
    courses: dict[int, bool] = field(default_factory=dict)
    days: list[tuple[int, int]] = field(default_factory=list)  # (ordinal, index) sorted
    ordered: list[tuple[int, str, str]] = field(default_factory=list)  # ``steps``, sorted
    step_days: list[int] = field(default_factory=list)  # their days
    starts: list[int] = field(default_factory=list)  # the same, once each
    #: Each start day's window (see :func:`_window`); None while not kept up.
    windows: dict[int, tuple[int, set[tuple[str, str]]] | None] | None = None


def _chain(findings: list[StoredFinding], chain_days: int, send_days: int) -> tuple[str, ...]:
    """:func:`~molehunt.score.chain_of`, in time linear in the days (see :func:`_chain_of`)."""
    critical = {f.detector for f in findings if stage_of(f) == "critical"}
    steps = {(f.day.toordinal(), st, f.detector) for f in findings if (st := stage_of(f))}
    steps = {x for x in steps if x[1] in CHAIN_STAGES}
    return _chain_of(critical, steps, {st for _, st, _ in steps}, chain_days, send_days)


def _chain_of(
    critical: set[str],
    steps: set[tuple[int, str, str]],
    stages: set[str],
    chain_days: int,
    send_days: int,
) -> tuple[str, ...]:
    """:func:`~molehunt.score.chain_of` from the critical detectors and the distinct
    chain steps (day, stage, detector) of the findings and their stages: it keeps the
    first window (by day) holding the most stages, so only each distinct day's window
    is looked at."""
    if critical:
        return tuple(f"critical: {d}" for d in sorted(critical))
    if len(stages) < 2 or not stages & TAKING:
        return ()
    ordered = sorted(steps)
    days = [x for x, _, _ in ordered]
    windows = [_window(ordered, days, day, chain_days, send_days) for day in sorted(set(days))]
    return _best(windows)


def _own_chain(own: _Own, fresh: list[int], chain_days: int, send_days: int) -> tuple[str, ...]:
    """:func:`_chain_of` of the own findings in force, each start day's window kept:
    only the windows the new steps (of the days ``fresh``) fall in are looked at again."""
    if own.critical:
        return tuple(f"critical: {d}" for d in sorted(own.critical))
    if len(own.stages) < 2 or not own.stages & TAKING:
        own.windows = None
        return ()
    if own.windows is None:
        own.windows, again = {}, own.starts
    else:
        again = sorted(
            {
                d
                for x in fresh
                for d in own.starts[
                    bisect_left(own.starts, x - chain_days) : bisect_right(own.starts, x)
                ]
            }
        )
    for day in again:
        own.windows[day] = _window(own.ordered, own.step_days, day, chain_days, send_days)
    return _best([own.windows[day] for day in own.starts])


def _window(
    ordered: list[tuple[int, str, str]], days: list[int], day: int, chain_days: int, send_days: int
) -> tuple[int, set[tuple[str, str]]] | None:
    """The chain steps within ``chain_days`` from ``day`` (``ordered``, sorted, on
    ``days``) as a chain holds them, and how many stages: None without a taking one."""
    window = ordered[bisect_left(days, day) : bisect_right(days, day + chain_days)]
    taken = [x for x, st, _ in window if st in TAKING]
    if not taken:
        return None
    held = [
        (x, st, d)
        for x, st, d in window
        if st != "exfiltration" or sends_taken(x, taken, send_days)
    ]
    if one_reading(held):
        return None
    near = {(st, d) for _, st, d in held}
    return len({st for st, _ in near}), near


def _best(windows: list[tuple[int, set[tuple[str, str]]] | None]) -> tuple[str, ...]:
    """The first window (by day) holding the most stages, as a chain (none under two)."""
    best: set[tuple[str, str]] = set()
    count = 0
    for w in windows:
        if w is not None and w[0] > count:
            count, best = w
    if count < 2:
        return ()
    order = {st: i for i, st in enumerate(STAGES)}
    return tuple(f"{st}: {d}" for st, d in sorted(best, key=lambda x: (order[x[0]], x[1])))


def _mark(f: StoredFinding) -> tuple[str, int, str] | None:
    """Where a finding may corroborate others: (host, day ordinal, source family)."""
    family = _family(f.detector)
    if f.host and family in CORROBORATING and f.details.get("corroborates", True):
        return (f.host, f.day.toordinal(), family)
    return None


def _families(findings: list[StoredFinding]) -> tuple[str, ...]:
    """:func:`~molehunt.score._corroborated` in linear time (see :func:`_families_of`)."""
    return _families_of([m for f in findings if (m := _mark(f)) is not None])


def _families_of(marks: list[tuple[str, int, str]]) -> tuple[str, ...]:
    """:func:`~molehunt.score._corroborated` from the findings' marks (in the findings'
    order): the first mark (hosts and marks in the same order) whose families within a
    day are the most."""
    by_host: dict[str, dict[int, set[str]]] = {}
    for host, day, family in marks:
        by_host.setdefault(host, {}).setdefault(day, set()).add(family)
    best: set[str] = set()
    order = {host: i for i, host in enumerate(by_host)}
    for host, day, _ in sorted(marks, key=lambda m: order[m[0]]):
        fams = by_host[host]
        near = fams.get(day - 1, set()) | fams[day] | fams.get(day + 1, set())
        if len(near) > len(best):
            best = near
    return tuple(sorted(best))
