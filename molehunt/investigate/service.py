"""The one audited, masked service behind every face (the CLI and the web).

One method per question. Each takes an :class:`~molehunt.models.Actor` (a web user,
or the operating-system user running the CLI) and plain arguments, and:

1. checks the action against the role (:mod:`molehunt.investigate.permissions`);
2. asks the library (ranking, timeline, identity, attribution, cases, users);
3. writes exactly one ``audit_log`` row naming the actor, before the answer
   leaves, for a refusal too (action ``refused``, or ``case denied`` for another
   team's case; the raised error then has ``audited = True`` so no face writes a
   second row);
4. masks personal data in free text once (:mod:`molehunt.investigate.masking`);
   only :meth:`Investigation.unmask` returns an event as stored, its reason on the
   record first;
5. returns :mod:`molehunt.models` objects, times in UTC.

Errors are those of :mod:`molehunt.errors`; faces map them to HTTP statuses or exit
codes. The case library writes its own audit rows (``case new``, ``case add``,
``case close``, ``case view``, ``case export``), so those methods add none.

Connections: many threads read at once, each over its own DuckDB cursor
(:meth:`Investigation.db`); every write (audit rows, sessions, users, cases) holds
:attr:`Investigation.lock`, the one writer, taken here and never by a face.
"""

from __future__ import annotations

import math
import unicodedata
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from molehunt import audit, cases
from molehunt.config import Settings, detection_settings
from molehunt.digests import file_sha256
from molehunt.errors import (
    Forbidden,
    InvalidInput,
    Locked,
    MolehuntError,
    NotFound,
    Throttled,
    Unauthenticated,
)
from molehunt.identity import Identity
from molehunt.investigate import permissions, users
from molehunt.investigate.answers import (
    attribution,
    audit_check,
    audit_entry,
    case_item,
    event_summary,
    masked_rank_row,
    timeline_finding,
    with_lock,
)
from molehunt.investigate.masking import masked, masked_row
from molehunt.investigate.upkeep import Upkeep
from molehunt.models import (
    Actor,
    Attribution,
    AuditCheck,
    AuditEntry,
    Case,
    CaseFile,
    DayScore,
    EventSummary,
    History,
    HistoryDay,
    PersonTimeline,
    Ranking,
    Session,
    TimelineFinding,
    User,
    Who,
)
from molehunt.score import RiskRanker, Threshold
from molehunt.status import status as store_status
from molehunt.store import Store
from molehunt.timeline import events as event_summaries
from molehunt.timeline import timeline as person_timeline

#: Characters that show nothing: Unicode separators (Z*), controls (Cc) and format
#: characters (Cf, e.g. the zero-width space U+200B and the BOM).
_INVISIBLE = frozenset({"Zs", "Zl", "Zp", "Cc", "Cf"})

#: The fewest visible characters of an unmask reason.
MIN_REASON = 10

LOCKED = "this account is locked after too many wrong passwords: ask an admin to unlock it"
WRONG = "wrong user name or password"
OWN_EVIDENCE_ROLE = (
    "an admin may not give their own account a role that reads evidence: another admin must"
)


def operator() -> Actor:
    """The CLI's actor: the operating-system user running molehunt (the audit rows'
    actor, :func:`molehunt.audit.actor`), role ``operator``, every team's cases."""
    return Actor(audit.actor(), permissions.OPERATOR, None, "cli")


def visible_reason(reason: str) -> str:
    """``reason`` with invisible characters (blanks, tabs, zero-width spaces) taken
    out at both ends and runs inside made one space; :class:`InvalidInput` when fewer
    than :data:`MIN_REASON` visible characters are left."""
    words: list[str] = []
    current: list[str] = []
    for ch in reason:
        if unicodedata.category(ch) in _INVISIBLE:
            if current:
                words.append("".join(current))
                current = []
        else:
            current.append(ch)
    if current:
        words.append("".join(current))
    if sum(len(w) for w in words) < MIN_REASON:
        raise InvalidInput(f"give a reason of at least {MIN_REASON} visible characters")
    return " ".join(words)


class Investigation(Upkeep):
    """The audited, masked answers over one open store (see the module docstring)."""

    def __init__(self, store: Store, settings: Settings) -> None:
        super().__init__(store, settings)
        # The chart's daily rankings, by (last day, top, state of findings and sources):
        # ranking every day costs seconds, and the home page asks on every visit.
        self._history: dict[tuple[Any, ...], tuple[HistoryDay, ...]] = {}

    def _ranker(self) -> RiskRanker:
        return RiskRanker(self.db(), detection_settings(self.settings), self.settings.timezone)

    # -- sign-in and sessions ---------------------------------------------------------

    def sign_in(self, username: str, password: str, address: str, via: str) -> Session:
        """Check a password under the throttle and open a session. Audited: ``sign-in``
        (as the user), ``sign-in failed`` or ``sign-in refused`` (as ``anonymous``),
        and ``sign-in lockout`` (as ``system``) when this failure locks the name.
        :class:`Throttled` (wait ``retry_after`` s), :class:`Locked` or
        :class:`Unauthenticated`. The argon2 check holds no lock."""
        db = self.db()
        name = username[:64]
        # The store is the truth about real users' lockouts (an admin may have lifted one
        # from the CLI); unknown names are locked in memory only.
        if users.is_locked(db, name):
            self.throttle.lock(name)
        elif users.get_user(db, name) is not None:
            self.throttle.lifted(name)
        verdict = self.throttle.check(name, address)
        if verdict.locked:
            self.audit(
                "anonymous", "sign-in refused", f"as {name} from {address}: locked out", None
            )
            error: MolehuntError = Locked(LOCKED)
            error.audited = True
            raise error
        if not verdict.allowed:
            seconds = max(1, math.ceil(verdict.wait))
            self.audit(
                "anonymous", "sign-in refused", f"as {name} from {address}: wait {seconds} s", None
            )
            error = Throttled(f"too many wrong passwords: try again in {seconds} s", seconds)
            error.audited = True
            raise error
        user = users.check_password(db, username, password)
        if user is None:
            failures = self.throttle.failed(name, address)
            self.audit("anonymous", "sign-in failed", f"as {name} from {address}", None)
            if failures >= self.throttle.lock_after:
                users.lock_user(db, name, failures)
                self.audit("system", "sign-in lockout", f"{name} after {failures} failures", None)
            error = Unauthenticated(WRONG)
            error.audited = True
            raise error
        self.throttle.succeeded(name, address)
        token, csrf = users.new_session(db, user)
        self.audit(user.username, "sign-in", via, None)
        return Session(token, csrf, user)

    def session(self, token: str) -> tuple[User, str] | None:
        """(user, CSRF token) of a live session (not audited: every request asks)."""
        return users.session_user(self.db(), token)

    def sign_out(self, actor: Actor, token: str) -> None:
        """End the session of ``token``; audited ``sign-out`` with how (``via``)."""
        self._allow(actor, "view-self", "sign-out")
        users.end_session(self.db(), token)
        self.audit(actor.name, "sign-out", actor.via, None)

    # -- evidence ------------------------------------------------------------------------

    def status(self, actor: Actor) -> dict[str, Any]:
        """The store's status report (sources, counts, pending bytes)."""
        self._allow(actor, "view-status", "status")
        data = store_status(self.db())
        self.audit(actor.name, "status", None, None)
        return data

    def last_day(self) -> date:
        """The last day with data (today when there is none); no people: not audited."""
        return self._ranker().last_day() or self.today()

    def threshold(self, day: date) -> Threshold:
        """The alert threshold of ``day`` and how it was set (no people: not audited)."""
        return self._ranker().threshold(day)

    def ranking(
        self,
        actor: Actor,
        as_of: date | None,
        top: int | None = None,
        include_all: bool = False,
        *,
        asked: str | None = None,
    ) -> Ranking:
        """The ranking at the end of ``as_of`` (the last day with data by default),
        flagged people only unless ``include_all``, names masked where free text.
        The audit row's target is ``as of <asked>`` (the day as the face was asked
        it, e.g. ``today``), else ``as of <the day>``."""
        self._allow(actor, "view-ranking", f"risk as of {as_of}")
        ranker = self._ranker()
        day = as_of or ranker.last_day() or self.today()
        rows = ranker.rank_rows(day, top=top, include_all=include_all)
        threshold = ranker.threshold(day)
        self.audit(actor.name, "risk", f"as of {asked or day.isoformat()}", len(rows))
        shown = tuple(masked_rank_row(row) for row in rows)
        return Ranking(day, threshold.value, threshold.how, shown)

    def risk_history(self, actor: Actor, until: date | None, top: int = 5) -> History:
        """The top ``top`` of every day's ranking up to ``until`` (the last day with
        data at most)."""
        self._allow(actor, "view-ranking", f"risk history until {until}")
        ranker = self._ranker()
        newest = ranker.last_day() or self.today()
        # Past the newest data every day ranks alike: no need to rank each to year 9999.
        last = min(until, newest) if until else newest
        key = (last, top, *self._data_state())
        days = self._history.get(key)
        if days is None:
            days = tuple(
                HistoryDay(
                    date.fromisoformat(d["date"]),
                    tuple(DayScore(r["person_id"], r["name"], r["score"]) for r in d["ranking"]),
                )
                for d in ranker.history(last, top=top, include_all=True)
            )
            # Only the newest state is worth keeping (two threads may both compute it).
            self._history = {key: days}
        self.audit(actor.name, "risk", f"as of {last.isoformat()} history", len(days))
        return History(last, days)

    def ranking_history(
        self,
        actor: Actor,
        until: date | None,
        *,
        top: int | None = None,
        include_all: bool = False,
        asked: str | None = None,
    ) -> list[dict[str, Any]]:
        """The whole ranking of every day from the first with data up to ``until``
        (the last day with findings by default), flagged people only unless
        ``include_all``, names and summaries masked: ``{"date", "ranking"}`` per day,
        each row as :meth:`molehunt.score.RiskRanker.row_json` gives it (reasons'
        times in the configured zone). One audit row ``risk`` ``as of <asked or the
        day> history`` with the rows shown."""
        self._allow(actor, "view-ranking", f"risk history until {until}")
        ranker = self._ranker()
        last = until or ranker.last_day()
        days = ranker.history(last, top=top, include_all=include_all) if last else []
        shown = sum(len(d["ranking"]) for d in days)
        target = f"as of {asked or (last.isoformat() if last else 'today')} history"
        self.audit(actor.name, "risk", target, shown)
        found = masked(days)
        assert isinstance(found, list)
        return found

    def _data_state(self) -> tuple[Any, ...]:
        """Changes whenever findings are rewritten or anything is ingested."""
        rows = (
            self.db()
            .con.execute(
                "SELECT (SELECT count(*) FROM findings), "
                "(SELECT bit_xor(hash(finding_id, severity, details)) FROM findings), "
                "(SELECT max(last_ingest) FROM sources)"
            )
            .fetchall()
        )
        return tuple(rows[0])

    def timeline(
        self, actor: Actor, person_id: str, until: date | None = None
    ) -> list[TimelineFinding]:
        """Every finding naming ``person_id``, oldest first, with the events it cites."""
        self._allow(actor, "view-evidence", f"timeline {person_id[:64]}")
        entries = self._timeline(person_id, until)
        self.audit(actor.name, "timeline", person_id, len(entries))
        return entries

    def person_timeline(
        self, actor: Actor, person_id: str, until: date | None = None
    ) -> PersonTimeline:
        """Who ``person_id`` is now (name, role, department, employment status) and
        their timeline: one ``timeline`` audit row for both (a person page)."""
        self._allow(actor, "view-evidence", f"timeline {person_id[:64]}")
        entries = self._timeline(person_id, until)
        person = Identity(self.db(), self.settings.timezone).person(
            person_id, datetime.now(self.zone)
        )
        self.audit(actor.name, "timeline", person_id, len(entries))
        return PersonTimeline(person, tuple(entries))

    def _timeline(self, person_id: str, until: date | None) -> list[TimelineFinding]:
        entries = person_timeline(self.db(), person_id, until=until, timezone="UTC")
        return [timeline_finding(e) for e in masked(entries)]

    def who(
        self,
        actor: Actor,
        at: datetime,
        *,
        ip: str | None = None,
        account: str | None = None,
        host: str | None = None,
    ) -> Who:
        """Who owned an account or a host, and who sat at it, at ``at``."""
        asked = f"ip={ip}" if ip else f"account={account}" if account else f"host={host}"
        self._allow(actor, "view-evidence", f"who {asked}"[:100])
        if sum(x is not None for x in (ip, account, host)) != 1:
            raise self._refused(
                actor, f"who {asked}"[:100], InvalidInput("give exactly one of ip, account, host")
            )
        answer = Identity(self.db(), self.settings.timezone).who(
            at, ip=ip, account=account, hostname=host
        )
        self.audit(actor.name, "who", f"{asked} at {at.isoformat()}", 1)
        shown = masked_row({k: v for k, v in answer.items() if k != "at"})
        return Who(at.astimezone(UTC), shown)

    def accounts(self, actor: Actor, orphaned: bool, at: datetime) -> list[dict[str, Any]]:
        """Every account, or those still enabled whose owner had left by ``at``."""
        self._allow(actor, "view-evidence", "accounts")
        if orphaned:
            rows = Identity(self.db(), self.settings.timezone).orphaned_accounts(at)
        else:
            rows = self.db().query("SELECT * FROM accounts ORDER BY account, system")
        self.audit(actor.name, "accounts", "orphaned" if orphaned else "all", len(rows))
        return [masked_row(r) for r in rows]

    def _storedevent_summary(
        self, actor: Actor, event_id: str, doing: str, zone: str = "UTC"
    ) -> dict[str, Any]:
        found = event_summaries(self.db(), [event_id], zone)
        if event_id not in found:
            raise self._refused(actor, f"{doing} {event_id[:64]}", NotFound("no such event"))
        return found[event_id]

    def event(self, actor: Actor, event_id: str) -> EventSummary:
        """One event's summary, masked."""
        self._allow(actor, "view-evidence", f"event {event_id[:64]}")
        found = self._storedevent_summary(actor, event_id, "event")
        self.audit(actor.name, "event", event_id, 1)
        return event_summary(masked_row(found))

    def unmask(self, actor: Actor, event_id: str, reason: str) -> EventSummary:
        """The event as stored; the reason goes on the audit trail first. A reason of
        fewer than 10 visible characters is refused (:func:`visible_reason`)."""
        self._allow(actor, "unmask", f"unmask {event_id[:64]}")
        try:
            shown = visible_reason(reason)
        except InvalidInput as e:
            raise self._refused(actor, f"unmask {event_id[:64]}", e) from None
        found = self._storedevent_summary(actor, event_id, "unmask")
        self.audit(actor.name, "unmask", f"{event_id} reason: {shown}", 1)
        return event_summary(found)

    def attribute(self, actor: Actor, path: Path, complaints: bool = False) -> Attribution:
        """Who read the client records of the file at ``path`` (or, with
        ``complaints``, of a complaints list); the audit row names the file's hash."""
        verb = "complaints" if complaints else "attribute"
        self._allow(actor, "attribute", verb)  # before a byte of the file is read
        size = path.stat().st_size
        target = f"file sha256:{file_sha256(path)[:16]} ({size} bytes)"
        from molehunt.attribute import attribute as attribute_file
        from molehunt.keys import load_key

        try:
            key = load_key(self.settings, self.db())
            result = attribute_file(
                self.db(),
                key,
                path,
                complaints=complaints,
                settings=detection_settings(self.settings),
                timezone=self.settings.timezone,
            )
        except MolehuntError as e:
            text = str(e).replace(str(path.parent), "").replace(str(path), path.name)
            self.audit(actor.name, "refused", f"{verb} {target}: {text}"[:300], None)
            e.audited = True
            raise
        self.audit(actor.name, verb, target, len(result["suspects"]))
        return attribution(masked_row(result))

    # -- cases --------------------------------------------------------------------------

    def cases(self, actor: Actor) -> list[Case]:
        """The cases of the actor's team (every team's for the CLI), newest first."""
        self._allow(actor, "view-cases", "case list")
        found = cases.list_cases(self.db(), actor.team)
        self.audit(actor.name, "case list", f"team {actor.team or 'all'}", len(found))
        return found

    def _own_case(self, actor: Actor, case_id: str, doing: str) -> Case:
        """The case when it is the actor's team's; else :class:`NotFound`, with a
        ``case denied`` audit row (the answer does not tell another team's case from
        none, the trail does)."""
        found = cases.get_case(self.db(), case_id, actor.team)
        if found is None:
            self.audit(actor.name, "case denied", f"{doing} {case_id[:64]}", 0)
            error = cases.UnknownCaseError("no such case")
            error.audited = True
            raise error
        return found

    def new_case(self, actor: Actor, title: str) -> Case:
        """A new open case of the actor's team (audited ``case new`` by the library)."""
        self._allow(actor, "manage-cases", "case new")
        if actor.team is None:
            raise self._refused(actor, "case new", InvalidInput("a case needs a team"))
        with self.lock:
            try:
                return cases.create_case(self.db(), title, actor.team, actor.name)
            except cases.CaseError as e:
                raise self._refused(actor, "case new", e) from None

    def case_file(self, actor: Actor, case_id: str) -> CaseFile:
        """A case of the actor's team and its items (audited ``case view``)."""
        self._allow(actor, "view-cases", f"case view {case_id[:64]}")
        case = self._own_case(actor, case_id, "view")
        found = cases.items(self.db(), case_id, by=actor.name)
        shown = tuple(case_item(masked(item)) for item in found)
        return CaseFile(case, shown)

    def add_item(
        self, actor: Actor, case_id: str, kind: str, ref: str, note: str | None = None
    ) -> int:
        """Add a person, finding, event or attribution to an open case of the actor's
        team; its number (audited ``case add``). An event item keeps the event's
        masked summary."""
        self._allow(actor, "manage-cases", f"case add to {case_id[:64]}")
        self._own_case(actor, case_id, "add to")
        data = (
            masked(self._storedevent_summary(actor, ref, "case add", self.settings.timezone))
            if kind == "event"
            else None
        )
        with self.lock:  # the next item number and its row, as one writer
            try:
                return cases.add_item(self.db(), case_id, kind, ref, note, data, actor.name)
            except cases.CaseError as e:
                raise self._refused(actor, f"case add to {case_id[:64]}", e) from None

    def close_case(self, actor: Actor, case_id: str) -> Case:
        """Close an open case of the actor's team (audited ``case close``)."""
        self._allow(actor, "manage-cases", f"case close {case_id[:64]}")
        self._own_case(actor, case_id, "close")
        with self.lock:
            try:
                cases.close_case(self.db(), case_id, actor.name)
            except cases.CaseError as e:
                raise self._refused(actor, f"case close {case_id[:64]}", e) from None
        closed = cases.get_case(self.db(), case_id, actor.team)
        assert closed is not None
        return closed

    def export_case(self, actor: Actor, case_id: str) -> bytes:
        """The case's signed zip (audited ``case export`` with the content's hash)."""
        self._allow(actor, "export-case", f"case export {case_id[:64]}")
        self._own_case(actor, case_id, "export")
        with self.lock:  # its own audit row and the chain's head it reports, together
            return cases.export_case(self.db(), case_id, actor.name, self.settings.timezone)

    # -- the audit trail -------------------------------------------------------------------

    def audit_entries(self, actor: Actor, limit: int) -> list[AuditEntry]:
        """The newest ``limit`` rows of the audit trail, newest first."""
        self._allow(actor, "view-audit", "audit")
        rows = audit.entries(self.db(), limit)
        self.audit(actor.name, "audit", None, len(rows))
        return [audit_entry(r) for r in rows]

    def audit_verify(self, actor: Actor) -> AuditCheck:
        """Walk the chain and compare it with the exported head."""
        self._allow(actor, "verify-audit", "audit verify")
        checked = audit.verify(self.db())
        self.audit(actor.name, "audit", "verify", checked.rows)
        return audit_check(checked)

    def audit_trail(
        self, actor: Actor, limit: int, verify: bool = False
    ) -> tuple[list[AuditEntry], AuditCheck | None]:
        """The newest ``limit`` rows, newest first, and with ``verify`` the chain
        walked (as :meth:`audit_verify`): one audit row ``audit`` (target ``verify``
        when checked) counting the rows shown, written after both were read."""
        self._allow(actor, "view-audit", "audit")
        if verify:
            self._allow(actor, "verify-audit", "audit verify")
        rows = audit.entries(self.db(), limit)
        checked = audit_check(audit.verify(self.db())) if verify else None
        self.audit(actor.name, "audit", "verify" if verify else None, len(rows))
        return [audit_entry(r) for r in rows], checked

    # -- users ---------------------------------------------------------------------------------

    def users(self, actor: Actor) -> list[User]:
        """Every web user, with whether the sign-in throttle locked them out."""
        self._allow(actor, "manage-users", "users")
        db = self.db()
        found = users.list_users(db)
        locked = users.locked_users(db)
        self.audit(actor.name, "users", None, len(found))
        return [with_lock(u, u.username in locked) for u in found]

    def add_user(self, actor: Actor, username: str, password: str, role: str, team: str) -> User:
        """A new web user (audited ``user add``); the password is kept as argon2id."""
        self._allow(actor, "manage-users", f"user add {username[:64]}")
        with self.lock:
            try:
                user = users.add_user(self.db(), username, password, role, team)
            except users.UserError as e:
                raise self._refused(actor, f"user add {username[:64]}", e) from None
            self.audit(actor.name, "user add", f"{user.username} as {user.role}", 1)
        return user

    def set_password(self, actor: Actor, username: str, password: str) -> User:
        """A new password for a web user, whose sessions end (audited ``user change``,
        never naming the password)."""
        asked = f"user change {username[:64]}"
        self._allow(actor, "manage-users", asked)
        with self.lock:
            db = self.db()
            try:
                user = users.set_password(db, username, password)
            except users.UserError as e:
                raise self._refused(actor, asked, e) from None
            self.audit(actor.name, "user change", f"{username}: password", 1)
            locked = username in users.locked_users(db)
        return with_lock(user, locked)

    def change_user(
        self,
        actor: Actor,
        username: str,
        *,
        role: str | None = None,
        team: str | None = None,
        disabled: bool | None = None,
        unlock: bool = False,
    ) -> User:
        """Change a user's role, team or disabled flag, and with ``unlock`` lift a
        sign-in lockout (audited ``user change``). An admin may not give their own
        account a role that reads evidence (:class:`Forbidden`: another admin must)."""
        asked = f"user change {username[:64]}"
        self._allow(actor, "manage-users", asked)
        if role is not None and username == actor.name and permissions.reads_evidence(role):
            raise self._refused(actor, asked, Forbidden(OWN_EVIDENCE_ROLE))
        with self.lock:
            db = self.db()
            try:
                user = users.set_user(db, username, role=role, team=team, disabled=disabled)
                if unlock:
                    users.unlock_user(db, username)
                    self.throttle.unlock(username)
            except users.UserError as e:
                raise self._refused(actor, asked, e) from None
            given = {"role": role, "team": team, "disabled": disabled}
            change = [f"{k}={v}" for k, v in given.items() if v is not None]
            if unlock:
                change.append("locked=False")
            self.audit(actor.name, "user change", f"{username}: {', '.join(change)}", 1)
            locked = username in users.locked_users(db)
        return with_lock(user, locked)

    def unlock(self, actor: Actor, username: str) -> User:
        """Lift a sign-in lockout (audited ``user change``, ``locked=False``)."""
        return self.change_user(actor, username, unlock=True)
