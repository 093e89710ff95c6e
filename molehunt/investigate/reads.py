"""The read verbs' answers, one function each, shared by the command line and the
server's local endpoint (:mod:`molehunt.web.local`).

A verb on the command line checks its options, builds its *ask* (a small pydantic
model, so the server can check it again), and gets its answer here: from the store
when it can open it, else from the running ``molehunt serve``, which calls the same
function over its own connection and audits it through its writer with the actor
``cli:<os user>``. Answers are JSON values (what ``--format json`` prints), so the
command prints the same table or JSON whichever way the answer came.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field

from molehunt.config import Settings
from molehunt.store import Store

#: Writes one audit row: (store, action, target, rows).
Auditor = Callable[[Store, str, str | None, int | None], None]


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


def status(store: Store, settings: Settings, audit: Auditor, ask: StatusAsk) -> Any:
    from molehunt.status import status as store_status

    return as_json({**store_status(store), "db": ask.db})


def who(store: Store, settings: Settings, audit: Auditor, ask: WhoAsk) -> Any:
    from molehunt.identity import Identity

    answer = Identity(store, settings.timezone).who(
        ask.at, ip=ask.ip, account=ask.account, hostname=ask.host
    )
    asked = f"ip={ask.ip}" if ask.ip else f"account={ask.account}" if ask.account else None
    asked = asked or f"host={ask.host}"
    audit(store, "who", f"{asked} at {ask.at.isoformat()}", 1)
    return as_json(answer)


def accounts(store: Store, settings: Settings, audit: Auditor, ask: AccountsAsk) -> Any:
    from molehunt.identity import Identity

    if ask.orphaned:
        rows = Identity(store, settings.timezone).orphaned_accounts(ask.at)
    else:
        rows = store.query("SELECT * FROM accounts ORDER BY account, system")
    audit(store, "accounts", "orphaned" if ask.orphaned else "all", len(rows))
    return as_json(rows)


def risk(store: Store, settings: Settings, audit: Auditor, ask: RiskAsk) -> Any:
    """The days ranked: one day, or (``history``) every day up to ``day``."""
    from molehunt.score import RiskRanker

    ranker = RiskRanker(store, settings.detection, settings.timezone)
    if ask.history:
        until = ask.day or ranker.last_day()
        days = ranker.history(until, top=ask.top, include_all=ask.show_all) if until else []
    else:
        day = ask.day or datetime.now(ZoneInfo(settings.timezone)).date()
        threshold = ranker.threshold(day)
        days = [
            {
                "date": day.isoformat(),
                "threshold": threshold.value,
                "threshold_how": threshold.how,
                "ranking": ranker.ranking(day, top=ask.top, include_all=ask.show_all),
            }
        ]
    shown = sum(len(d["ranking"]) for d in days)
    target = f"as of {ask.asked or 'today'}" + (" history" if ask.history else "")
    audit(store, "risk", target, shown)
    return as_json(days)


def timeline(store: Store, settings: Settings, audit: Auditor, ask: TimelineAsk) -> Any:
    from molehunt.timeline import timeline as person_timeline

    entries = person_timeline(store, ask.person, until=ask.until, timezone=settings.timezone)
    audit(store, "timeline", ask.person, len(entries))
    return as_json(entries)


def audit_trail(store: Store, settings: Settings, audit: Auditor, ask: AuditAsk) -> Any:
    from molehunt.audit import entries
    from molehunt.audit import verify as verify_chain

    rows = entries(store, ask.limit)
    checked = verify_chain(store) if ask.verify else None
    audit(store, "audit", "verify" if ask.verify else None, len(rows))
    verified = None
    if checked is not None:
        verified = {
            "rows": checked.rows,
            "head": checked.head,
            "broken_at": checked.broken_at,
            "reason": checked.reason,
            "keyed_from": checked.keyed_from,
        }
    return as_json({"entries": rows, "verified": verified})


@dataclass(frozen=True, slots=True)
class Read:
    """A read verb: what it is asked, and how it answers."""

    ask: type[Ask]
    answer: Callable[[Store, Settings, Auditor, Any], Any]


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
