"""The read verbs' answers, one function each, shared by the command line and the
server's local endpoint (:mod:`molehunt.web.local`).

A verb on the command line checks its options, builds its *ask* (a small pydantic
model, so the server can check it again), and gets its answer here: from the store
when it can open it (the actor is :func:`molehunt.investigate.service.operator`, the
operating-system user), else from the running ``molehunt serve``, which calls the
same function with its own service and the actor ``cli:<os user>``. Each function
asks the one audited, masked service (:class:`~molehunt.investigate.service.Investigation`)
exactly once, so the permission check, the one audit row and the masking happen
there, and turns its answer into JSON values (what ``--format json`` prints, times
as the command has always printed them), so the command prints the same table or
JSON whichever way the answer came.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from molehunt.models import Actor, AuditCheck, AuditEntry, TimelineFinding

if TYPE_CHECKING:
    from molehunt.investigate.service import Investigation


class Ask(BaseModel):
    """What a read verb was asked (options already checked by the command line)."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class StatusAsk(Ask):
    db: str = Field(max_length=4096)  # the store as the user named it


class WhoAsk(Ask):
    at: datetime
    ip: str | None = Field(default=None, max_length=200)
    account: str | None = Field(default=None, max_length=200)
    host: str | None = Field(default=None, max_length=200)


class AccountsAsk(Ask):
    orphaned: bool = False
    at: datetime


class RiskAsk(Ask):
    day: date | None = None  # None with history: the last day with findings
    asked: str | None = Field(default=None, max_length=100)  # --as-of as typed, for the audit
    top: int | None = Field(default=None, ge=1)
    show_all: bool = False
    history: bool = False


class TimelineAsk(Ask):
    person: str = Field(max_length=200)
    until: date | None = None


class AuditAsk(Ask):
    verify: bool = False
    limit: int = Field(default=50, ge=1)


def as_json(data: Any) -> Any:
    """The answer as ``--format json`` prints it: JSON values only."""
    return json.loads(json.dumps(data, default=str, ensure_ascii=False))


def status(service: Investigation, actor: Actor, ask: StatusAsk) -> Any:
    """The store's status (audited ``status``), naming the store as the user did."""
    return as_json({**service.status(actor), "db": ask.db})


def who(service: Investigation, actor: Actor, ask: WhoAsk) -> Any:
    """Who owned the account or host, and who sat at it (audited ``who``); the time
    as it was asked."""
    found = service.who(actor, ask.at, ip=ask.ip, account=ask.account, host=ask.host)
    return as_json({"at": found.at.astimezone(ask.at.tzinfo).isoformat(), **found.answer})


def accounts(service: Investigation, actor: Actor, ask: AccountsAsk) -> Any:
    """Every account, or the orphaned ones (audited ``accounts``)."""
    return as_json(service.accounts(actor, ask.orphaned, ask.at))


def risk(service: Investigation, actor: Actor, ask: RiskAsk) -> Any:
    """The days ranked: one day with its threshold, or (``history``) every day up to
    ``day`` (audited ``risk`` ``as of <--as-of or today>``, ``history`` added)."""
    asked = ask.asked or "today"
    if ask.history:
        days = service.ranking_history(
            actor, ask.day, top=ask.top, include_all=ask.show_all, asked=asked
        )
        return as_json(days)
    ranking = service.ranking(actor, ask.day or service.today(), ask.top, ask.show_all, asked=asked)
    return as_json(
        [
            {
                "date": ranking.as_of.isoformat(),
                "threshold": ranking.threshold,
                "threshold_how": ranking.threshold_how,
                "ranking": [r.as_json(service.zone) for r in ranking.rows],
            }
        ]
    )


def timeline(service: Investigation, actor: Actor, ask: TimelineAsk) -> Any:
    """A person's findings, oldest first, with the events they cite (audited
    ``timeline``); times in the configured zone."""
    found = service.timeline(actor, ask.person, until=ask.until)
    return as_json([timeline_json(e, service.zone) for e in found])


def timeline_json(e: TimelineFinding, zone: tzinfo) -> dict[str, Any]:
    """One finding of a timeline as the command prints it, times in ``zone``."""
    return {
        "time": e.time.astimezone(zone).isoformat(),
        "day": e.day.isoformat(),
        "detector": e.detector,
        "stage": e.stage,
        "severity": e.severity,
        "title": e.title,
        "as": e.as_,
        "person_id": e.person_id,
        "related": list(e.related),
        "account": e.account,
        "host": e.host,
        "finding_id": e.finding_id,
        "details": e.details,
        "events": [
            {"event_id": ev.event_id, "missing": True}
            if ev.missing
            else {
                "event_id": ev.event_id,
                "time": ev.time.astimezone(zone).isoformat() if ev.time else None,
                "table": ev.table,
                "summary": ev.summary,
            }
            for ev in e.events
        ],
    }


def audit_trail(service: Investigation, actor: Actor, ask: AuditAsk) -> Any:
    """The newest rows of the trail and, with ``verify``, the chain's check: one
    audit row ``audit`` (target ``verify`` when checked), written after both."""
    rows, checked = service.audit_trail(actor, ask.limit, ask.verify)
    return as_json(
        {
            "entries": [audit_entry_json(r) for r in rows],
            "verified": None if checked is None else audit_check_json(checked),
        }
    )


def audit_entry_json(r: AuditEntry) -> dict[str, Any]:
    """One row of the trail as the command prints it (its time in UTC)."""
    return {
        "seq": r.seq,
        "time": r.time,
        "actor": r.actor,
        "action": r.action,
        "target": r.target,
        "rows": r.rows,
        "prev_hash": r.prev_hash,
        "hash": r.hash,
    }


def audit_check_json(checked: AuditCheck) -> dict[str, Any]:
    """The chain's check as the command prints it."""
    return {
        "rows": checked.rows,
        "head": checked.head,
        "broken_at": checked.broken_at,
        "reason": checked.reason,
        "keyed_from": checked.keyed_from,
    }


@dataclass(frozen=True, slots=True)
class Read:
    """A read verb: what it is asked, and how it answers (through the service, as
    the actor)."""

    ask: type[Ask]
    answer: Callable[[Investigation, Actor, Any], Any]


#: The verbs the server's local endpoint answers for the command line (reads only:
#: a verb that writes anything but its audit row is not here).
READS: dict[str, Read] = {
    "status": Read(StatusAsk, status),
    "who": Read(WhoAsk, who),
    "accounts": Read(AccountsAsk, accounts),
    "risk": Read(RiskAsk, risk),
    "timeline": Read(TimelineAsk, timeline),
    "audit": Read(AuditAsk, audit_trail),
}
