"""The typed answers every face shares: what the service layer
(:mod:`molehunt.investigate`) returns to the CLI and the web.

Frozen dataclasses, no behaviour beyond small conversions. Times are timezone-aware
``datetime`` in UTC (days are ``date``) until a face shows them: the web formats
them in the configured zone in one place (:func:`molehunt.web.shown.shown`), the
CLI prints them as it likes. Free text in these objects is already masked when the
service returns them (only :meth:`molehunt.investigate.service.Investigation.unmask`
returns an event as stored).

This module imports nothing of molehunt: every layer may use it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo
from typing import Any

# -- who ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Person:
    """An employee as HR had them at some time (:meth:`molehunt.identity.Identity.person`)."""

    employee_id: str
    name: str | None
    department: str | None
    title: str | None
    role: str | None
    status: str  # employed, on_notice, departed, not_yet_hired, unknown
    hire_date: date | None
    notice_date: date | None
    termination_date: date | None


@dataclass(frozen=True, slots=True)
class User:
    """A person who may sign in to the web UI; ``locked`` when the sign-in throttle
    locked them out (only the user lists fill it in)."""

    username: str
    role: str  # analyst, investigator, auditor, admin
    team: str
    disabled: bool
    created_at: datetime
    locked: bool = False


@dataclass(frozen=True, slots=True)
class Actor:
    """Who asks the service: a web user (``via`` ``api`` or ``page``) or the operating
    system user running the CLI (role ``operator``, every team). The audit rows name
    :attr:`name`; the permissions check :attr:`role`; cases are those of :attr:`team`
    (``None``: every team's)."""

    name: str
    role: str
    team: str | None
    via: str = "cli"

    @classmethod
    def of(cls, user: User, via: str) -> Actor:
        """The actor of a signed-in web user."""
        return cls(user.username, user.role, user.team, via)


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-in web session: the bearer token and CSRF token are shown once."""

    token: str
    csrf: str
    user: User


# -- risk ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reason:
    """One detector's part of a person's score."""

    detector: str
    summary: str
    first_seen: datetime
    last_seen: datetime
    events: tuple[str, ...]
    score: float


@dataclass(frozen=True, slots=True)
class PersonRisk:
    """A person's score on a day, and why (:func:`molehunt.score.score_people`)."""

    person_id: str
    score: float
    reasons: tuple[Reason, ...]
    departing: bool
    corroborated: tuple[str, ...]  # source families that met on one host
    #: Why the person may reach the threshold: ``critical: <detector>`` or the chain's
    #: steps (``access: out_of_scope``, ``collection: sustained_excess``...); empty for a
    #: lone signal, whose score is capped below the threshold.
    chain: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RankRow:
    """One line of a day's ranking: the person as HR had them that day, and their risk."""

    rank: int
    person_id: str
    name: str | None
    department: str | None
    role: str | None
    score: float
    flagged: bool
    chain: tuple[str, ...]
    reasons: tuple[Reason, ...]

    def as_json(self, zone: tzinfo) -> dict[str, Any]:
        """The row as the command line prints it (``--format json``), times in ``zone``."""
        return {
            "rank": self.rank,
            "person_id": self.person_id,
            "name": self.name,
            "department": self.department,
            "role": self.role,
            "score": self.score,
            "flagged": self.flagged,
            "chain": list(self.chain),
            "reasons": [
                {
                    "detector": r.detector,
                    "summary": r.summary,
                    "first_seen": r.first_seen.astimezone(zone).isoformat(),
                    "last_seen": r.last_seen.astimezone(zone).isoformat(),
                    "events": list(r.events),
                }
                for r in self.reasons
            ],
        }


@dataclass(frozen=True, slots=True)
class Ranking:
    """A day's ranking and the threshold that flags."""

    as_of: date
    threshold: float
    threshold_how: str
    rows: tuple[RankRow, ...]


@dataclass(frozen=True, slots=True)
class DayScore:
    person_id: str
    name: str | None
    score: float


@dataclass(frozen=True, slots=True)
class HistoryDay:
    day: date
    top: tuple[DayScore, ...]


@dataclass(frozen=True, slots=True)
class History:
    """The top of the ranking of every day up to :attr:`until`."""

    until: date
    days: tuple[HistoryDay, ...]


# -- evidence ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EventSummary:
    """One event as an investigator first sees it (``missing``: cited, not in the store)."""

    event_id: str
    time: datetime | None = None
    table: str | None = None
    summary: str | None = None
    missing: bool = False


@dataclass(frozen=True, slots=True)
class TimelineFinding:
    """A stored finding as a person's timeline shows it (the detectors' own
    :class:`molehunt.detect.base.Finding` is what they emit before it is stored)."""

    time: datetime
    day: date
    detector: str
    stage: str
    severity: int
    title: str
    as_: str  # actor: the person is behind it; named: the other person involved
    person_id: str | None
    related: tuple[str, ...]
    account: str | None
    host: str | None
    finding_id: str
    details: Mapping[str, Any]
    events: tuple[EventSummary, ...]


@dataclass(frozen=True, slots=True)
class PersonTimeline:
    """Who a person is now, and their timeline (a person page)."""

    person: Person | None
    entries: tuple[TimelineFinding, ...]


@dataclass(frozen=True, slots=True)
class Suspect:
    """One person (or an account nobody could be tied to) and the leaked records they
    read (:class:`molehunt.attribute.Suspect` as the faces see it)."""

    rank: int
    person_id: str | None
    name: str | None
    accounts: tuple[Mapping[str, Any], ...]
    hosts: tuple[Mapping[str, Any], ...]
    covered: int
    coverage: float
    first_read: datetime | None
    last_read: datetime | None
    score: float
    evidence: tuple[Mapping[str, Any], ...] = ()
    group: Mapping[str, Any] | None = None
    bits: float = 0.0  # how surprising the overlap the score rests on is
    explanation: str = ""  # the score in words


@dataclass(frozen=True, slots=True)
class Attribution:
    """Who read the client records of a leaked file (or of complaints)."""

    records_in_file: int
    client_records: int
    non_client_rows: int
    damaged: int
    suspects: tuple[Suspect, ...]
    files: tuple[Mapping[str, Any], ...]


@dataclass(frozen=True, slots=True)
class Alert:
    """A person a watch round newly flagged, as a SIEM or a mail relay gets it."""

    time: datetime
    as_of: date | None
    person_id: str
    name: str | None
    role: str | None
    score: float
    reasons: tuple[Mapping[str, str], ...]


# -- cases -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Case:
    """A case file: its id (``C-2026-0001``), title, owning team and status."""

    case_id: str
    title: str
    team: str
    status: str  # open, closed
    created_by: str
    created_at: datetime

    def as_dict(self, zone: Any = None) -> dict[str, Any]:
        """Its fields, the creation time in ISO form (in ``zone`` when given)."""
        made = self.created_at.astimezone(zone) if zone else self.created_at
        return {
            "case_id": self.case_id,
            "title": self.title,
            "team": self.team,
            "status": self.status,
            "created_by": self.created_by,
            "created_at": made.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class CaseItem:
    """One piece of evidence in a case, numbered 1..n in the order added."""

    case_id: str
    seq: int
    kind: str  # person, finding, event, attribution
    ref: str
    note: str | None
    data: Mapping[str, Any] | None
    added_by: str
    added_at: datetime


@dataclass(frozen=True, slots=True)
class CaseFile:
    """A case and its items."""

    case: Case
    items: tuple[CaseItem, ...]


# -- the audit trail -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuditEntry:
    seq: int
    time: datetime | None
    actor: str
    action: str
    target: str | None
    rows: int | None
    prev_hash: str
    hash: str


@dataclass(frozen=True, slots=True)
class AuditCheck:
    """What :func:`molehunt.audit.verify` found: rows checked, the head, the first
    broken row (``None``: intact)."""

    rows: int
    head: str
    broken_at: int | None
    reason: str | None = None  # what is wrong at broken_at, in words
    keyed_from: int | None = None  # the first keyed row (None: not keyed yet)


@dataclass(frozen=True, slots=True)
class Who:
    """Everything known about an IP, an account or a host at a time."""

    at: datetime
    answer: Mapping[str, Any] = field(default_factory=dict)
