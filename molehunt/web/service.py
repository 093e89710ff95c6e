"""What the web answers, audited and masked: shared by the JSON API and the pages.

Each method takes the web user and does the same as the CLI verb of the same name:
the library call, then one ``audit_log`` row naming the user, written before the
answer is returned. Personal data inside free text (SQL, URLs, paths, summaries)
is masked with :func:`molehunt.pii.mask.mask_texts`; only :meth:`Web.unmask` returns
an event as stored, and only with a reason on the record.
"""

from __future__ import annotations

import logging
import re
import tempfile
import threading
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from molehunt import audit
from molehunt.cases import (
    Case,
    CaseError,
    add_item,
    close_case,
    create_case,
    export_case,
    get_case,
    items,
    list_cases,
)
from molehunt.config import Settings
from molehunt.detect.settings import detection_settings
from molehunt.digests import file_sha256
from molehunt.identity import Identity, Person
from molehunt.pii.mask import mask_texts
from molehunt.score import RiskRanker, Threshold
from molehunt.status import status as store_status
from molehunt.store import Store
from molehunt.timeline import events as event_summaries
from molehunt.timeline import timeline as person_timeline
from molehunt.watch import Round, append_alerts
from molehunt.web.throttle import Throttle
from molehunt.web.users import User

log = logging.getLogger("molehunt.web")

#: Keys whose values are identifiers or times molehunt made, never free text to mask.
_KEEP = frozenset(
    {
        "event_id",
        "finding_id",
        "person_id",
        "related",
        "events",
        "time",
        "day",
        "date",
        "first_seen",
        "last_seen",
        "first_read",
        "last_read",
        "detector",
        "table",
        "case_id",
        "kind",
        "ref",
        "added_by",
        "added_at",
        "created_by",
        "created_at",
        "seq",
    }
)


def masked(value: Any, key: str | None = None) -> Any:
    """``value`` with every free-text string masked (identifier fields kept); the
    strings are masked in one scan (:func:`~molehunt.pii.mask.mask_texts`), which a
    timeline of hundreds of summaries needs."""
    texts: list[str] = []
    _collect(value, key, texts)
    return _rebuild(value, key, iter(mask_texts(texts)))


def _collect(value: Any, key: str | None, texts: list[str]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _collect(v, str(k), texts)
    elif isinstance(value, list | tuple):
        for v in value:
            _collect(v, key, texts)
    elif isinstance(value, str) and key not in _KEEP:
        texts.append(value)


def _rebuild(value: Any, key: str | None, done: Iterator[str]) -> Any:
    if isinstance(value, dict):
        return {k: _rebuild(v, str(k), done) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_rebuild(v, key, done) for v in value]
    if isinstance(value, str) and key not in _KEEP:
        return next(done)
    return value


def masked_row(value: dict[str, Any]) -> dict[str, Any]:
    out = masked(value)
    assert isinstance(out, dict)
    return out


class NotFound(LookupError):
    """The thing asked for does not exist (or is another team's)."""


@dataclass(frozen=True, slots=True)
class Upload:
    """An uploaded file, already on disk in a private temporary folder."""

    path: Path
    size: int


_SAFE_SUFFIX = re.compile(r"\.[A-Za-z0-9]{1,8}")


@contextmanager
def private_upload(name: str | None) -> Iterator[Path]:
    """A path in a fresh 0700 folder, removed with its content afterwards; the file
    keeps only the suffix of its name (the scanner reads by kind, and names may hold
    personal data)."""
    suffix = Path(name or "").suffix.lower()
    suffix = suffix if _SAFE_SUFFIX.fullmatch(suffix) else ".bin"
    with tempfile.TemporaryDirectory(prefix="molehunt-upload-") as folder:
        yield Path(folder) / f"upload{suffix}"


class Web:
    """The app's one open store and the audited, masked answers.

    Many requests read at once, each thread over its own DuckDB connection
    (:meth:`db`, a ``con.cursor()`` of the store's); every write (audit rows, sessions,
    users, cases, the watch rounds' transactions) holds :attr:`lock`, the one writer,
    so a page never waits for another investigator's attribution, only for a write.
    """

    def __init__(self, store: Store, settings: Settings, *, alerts: Path | None = None) -> None:
        self.store = store
        self.alerts = alerts
        self.settings = settings
        self.zone = ZoneInfo(settings.timezone)
        #: The one writer: every transaction of :meth:`db` holds it. Code that uses
        #: :attr:`store` itself (its connection is not thread-safe) holds it too.
        self.lock = threading.RLock()
        #: Held by a watch round from start to end (rounds never overlap); requests
        #: do not wait for it.
        self.rounds = threading.Lock()
        self._readers = threading.local()
        self._cursors = threading.Lock()
        #: Sign-in back-off and lockout (:mod:`molehunt.web.throttle`).
        self.throttle = Throttle()
        # The chart's daily rankings, by (last day, top, state of findings and sources):
        # ranking every day costs seconds, and the home page asks on every visit.
        self._history: dict[tuple[Any, ...], list[dict[str, Any]]] = {}

    def db(self) -> Store:
        """This thread's connection to the store (made on first use, kept for the
        thread's life: the server's worker threads are reused)."""
        found = getattr(self._readers, "store", None)
        if found is None:
            with self._cursors:
                found = self.store.cursor(write_lock=self.lock)
            self._readers.store = found
        assert isinstance(found, Store)
        return found

    def writer(self) -> Store:
        """A connection of its own for a background writer (the watch rounds)."""
        with self._cursors:
            return self.store.cursor(write_lock=self.lock)

    def watched(self, result: Round) -> None:
        """A watch round ran inside the server: log it; audit who it newly flagged."""
        if result.ingest.stored or result.ingest.errors:
            log.info(
                "watch: stored %d, rejected %d, %d findings up to %s",
                result.ingest.stored,
                result.ingest.rejected,
                result.findings,
                result.as_of,
            )
        for e in result.ingest.errors:
            log.warning("watch: %s", e.error)
        if self.alerts is not None:
            append_alerts(self.alerts, result)
        if result.newly_flagged:
            people = ",".join(str(p["person_id"]) for p in result.newly_flagged)
            log.warning("watch: newly flagged on %s: %s", result.as_of, people)
            self.audit(
                audit.actor(),
                "watch",
                f"newly flagged on {result.as_of}: {people}",
                len(result.newly_flagged),
            )

    def audit(self, who: str, action: str, target: str | None, rows: int | None) -> None:
        audit.record(self.db(), action, target, rows, who=who)

    def show_time(self, value: datetime | None) -> str | None:
        return None if value is None else value.astimezone(self.zone).isoformat()

    def _ranker(self) -> RiskRanker:
        return RiskRanker(self.db(), detection_settings(self.settings), self.settings.timezone)

    def today(self) -> date:
        return datetime.now(self.zone).date()

    # -- evidence ---------------------------------------------------------------

    def status(self, user: User) -> dict[str, Any]:
        data = store_status(self.db())
        self.audit(user.username, "status", None, None)
        return data

    def last_day(self) -> date:
        return self._ranker().last_day() or self.today()

    def risk(
        self, user: User, as_of: date | None, top: int | None, include_all: bool
    ) -> tuple[date, list[dict[str, Any]]]:
        ranker = self._ranker()
        day = as_of or ranker.last_day() or self.today()
        rows = ranker.ranking(day, top=top, include_all=include_all)
        self.audit(user.username, "risk", f"as of {day.isoformat()}", len(rows))
        return day, masked(rows)

    def threshold(self, day: date) -> Threshold:
        """The alert threshold of ``day`` and how it was set (no people: not audited)."""
        return self._ranker().threshold(day)

    def risk_history(
        self, user: User, until: date | None, top: int
    ) -> tuple[date, list[dict[str, Any]]]:
        ranker = self._ranker()
        newest = ranker.last_day() or self.today()
        # Past the newest data every day ranks alike: no need to rank each to year 9999.
        last = min(until, newest) if until else newest
        key = (last, top, *self._data_state())
        days = self._history.get(key)
        if days is None:
            days = ranker.history(last, top=top, include_all=True)
            # Only the newest state is worth keeping (two threads may both compute it).
            self._history = {key: days}
        self.audit(user.username, "risk", f"as of {last.isoformat()} history", len(days))
        out = [
            {
                "date": d["date"],
                "top": [
                    {"person_id": r["person_id"], "name": r["name"], "score": r["score"]}
                    for r in d["ranking"]
                ],
            }
            for d in days
        ]
        return last, out

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

    def timeline(self, user: User, person_id: str, until: date | None) -> list[dict[str, Any]]:
        entries = person_timeline(
            self.db(), person_id, until=until, timezone=self.settings.timezone
        )
        self.audit(user.username, "timeline", person_id, len(entries))
        return [masked_row(e) for e in entries]

    def person(self, person_id: str) -> Person | None:
        """Who ``person_id`` is now (name, role, department, employment status)."""
        return Identity(self.db(), self.settings.timezone).person(
            person_id, datetime.now(self.zone)
        )

    def who(
        self, user: User, at: datetime, ip: str | None, account: str | None, host: str | None
    ) -> dict[str, Any]:
        answer = Identity(self.db(), self.settings.timezone).who(
            at, ip=ip, account=account, hostname=host
        )
        asked = f"ip={ip}" if ip else f"account={account}" if account else f"host={host}"
        self.audit(user.username, "who", f"{asked} at {at.isoformat()}", 1)
        return masked_row(answer)

    def accounts(self, user: User, orphaned: bool, at: datetime) -> list[dict[str, Any]]:
        if orphaned:
            rows = Identity(self.db(), self.settings.timezone).orphaned_accounts(at)
        else:
            rows = self.db().query("SELECT * FROM accounts ORDER BY account, system")
        self.audit(user.username, "accounts", "orphaned" if orphaned else "all", len(rows))
        return [masked_row(r) for r in rows]

    def _event(self, event_id: str) -> dict[str, Any]:
        found = event_summaries(self.db(), [event_id], self.settings.timezone)
        if event_id not in found:
            raise NotFound(event_id)
        return found[event_id]

    def event(self, user: User, event_id: str) -> dict[str, Any]:
        found = self._event(event_id)
        self.audit(user.username, "event", event_id, 1)
        return masked_row(found)

    def unmask(self, user: User, event_id: str, reason: str) -> dict[str, Any]:
        """The event as stored; the reason goes on the audit trail first. A reason
        of fewer than 10 visible characters is refused (:func:`visible_reason`)."""
        shown = visible_reason(reason)
        found = self._event(event_id)
        self.audit(user.username, "unmask", f"{event_id} reason: {shown}", 1)
        return found

    def attribute(self, user: User, upload: Upload, complaints: bool) -> dict[str, Any]:
        from molehunt.attribute import attribute as attribute_file
        from molehunt.keys import load_key

        key = load_key(self.settings)
        target = f"file sha256:{file_sha256(upload.path)[:16]} ({upload.size} bytes)"
        result = attribute_file(
            self.db(),
            key,
            upload.path,
            complaints=complaints,
            settings=detection_settings(self.settings),
            timezone=self.settings.timezone,
        )
        self.audit(
            user.username,
            "complaints" if complaints else "attribute",
            target,
            len(result["suspects"]),
        )
        shown = self._local_times(masked_row(result), {"first_read", "last_read", "written"})
        assert isinstance(shown, dict)
        return shown

    def _local_times(self, value: Any, keys: set[str], key: str | None = None) -> Any:
        """ISO times under ``keys`` shown in the settings' zone (the library gives UTC)."""
        if isinstance(value, dict):
            return {k: self._local_times(v, keys, str(k)) for k, v in value.items()}
        if isinstance(value, list):
            return [self._local_times(v, keys, key) for v in value]
        if isinstance(value, str) and key in keys:
            try:
                parsed = datetime.fromisoformat(value)
            except ValueError:
                return value
            return parsed.astimezone(self.zone).isoformat() if parsed.tzinfo else value
        return value

    # -- cases ------------------------------------------------------------------

    def cases(self, user: User) -> list[dict[str, Any]]:
        found = list_cases(self.db(), user.team)
        self.audit(user.username, "case list", f"team {user.team}", len(found))
        return [self._case(c) for c in found]

    def _case(self, case: Case) -> dict[str, Any]:
        return case.as_dict(self.zone)

    def _own_case(self, user: User, case_id: str, doing: str) -> Case:
        """The case when it is the user's team's; else :class:`NotFound`, with a
        ``case denied`` audit row (the answer does not tell another team's case
        from none, the trail does)."""
        found = get_case(self.db(), case_id, user.team)
        if found is None:
            self.audit(user.username, "case denied", f"{doing} {case_id[:64]}", 0)
            raise NotFound(case_id)
        return found

    def new_case(self, user: User, title: str) -> dict[str, Any]:
        # The cases library writes the audit rows of what changes or leaves a case.
        case = create_case(self.db(), title, user.team, user.username)
        return self._case(case)

    def case(self, user: User, case_id: str) -> dict[str, Any]:
        case = self._own_case(user, case_id, "view")
        found = items(self.db(), case_id, by=user.username)
        shown = [
            {
                k: self.show_time(v) if isinstance(v, datetime) else v
                for k, v in masked(item).items()
            }
            for item in found
        ]
        return {"case": self._case(case), "items": shown}

    def add_item(
        self, user: User, case_id: str, kind: str, ref: str, note: str | None
    ) -> dict[str, Any]:
        self._own_case(user, case_id, "add to")
        data = masked(self._event(ref)) if kind == "event" else None
        with self.lock:  # the next item number and its row, as one writer
            try:
                seq = add_item(self.db(), case_id, kind, ref, note, data, user.username)
            except CaseError as e:
                raise ValueError(str(e)) from e
        return {"case_id": case_id, "seq": seq}

    def close_case(self, user: User, case_id: str) -> dict[str, Any]:
        self._own_case(user, case_id, "close")
        with self.lock:
            try:
                close_case(self.db(), case_id, user.username)
            except CaseError as e:
                raise ValueError(str(e)) from e
        return self._case(self._own_case(user, case_id, "close"))

    def export_case(self, user: User, case_id: str) -> bytes:
        self._own_case(user, case_id, "export")
        with self.lock:  # its own audit row and the chain's head it reports, together
            return export_case(self.db(), case_id, user.username, self.settings.timezone)

    # -- audit ------------------------------------------------------------------

    def audit_entries(self, user: User, limit: int) -> list[dict[str, Any]]:
        rows = audit.entries(self.db(), limit)
        self.audit(user.username, "audit", None, len(rows))
        return [{**r, "time": self.show_time(r["time"])} for r in rows]

    def audit_verify(self, user: User) -> dict[str, Any]:
        checked = audit.verify(self.db())
        self.audit(user.username, "audit", "verify", checked.rows)
        return {"rows": checked.rows, "head": checked.head, "broken_at": checked.broken_at}


#: Characters that show nothing: Unicode separators (Z*), controls (Cc) and format
#: characters (Cf, e.g. the zero-width space U+200B and the BOM).
_INVISIBLE = frozenset({"Zs", "Zl", "Zp", "Cc", "Cf"})

#: The fewest visible characters of an unmask reason.
MIN_REASON = 10


def visible_reason(reason: str) -> str:
    """``reason`` with invisible characters (blanks, tabs, zero-width spaces) taken
    out at both ends and runs inside made one space; ValueError when fewer than
    :data:`MIN_REASON` visible characters are left."""
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
    shown = " ".join(words)
    if sum(len(w) for w in words) < MIN_REASON:
        raise ValueError(f"give a reason of at least {MIN_REASON} visible characters")
    return shown
