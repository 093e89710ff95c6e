"""The service's plumbing, shared by every group of its functions: the store's
connections (one per thread, one writer), the audit row, the permission check and
the refusal's row (:class:`ServiceCore`; :class:`molehunt.investigate.service.Investigation`
builds on it)."""

from __future__ import annotations

import threading
from datetime import date, datetime
from zoneinfo import ZoneInfo

from molehunt import audit
from molehunt.config import Settings
from molehunt.errors import Forbidden, MolehuntError
from molehunt.investigate import permissions
from molehunt.investigate.throttle import Throttle
from molehunt.models import Actor
from molehunt.store import Store


class ServiceCore:
    """One open store and its settings, the one writer's lock, and the audit row."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self.zone = ZoneInfo(settings.timezone)
        #: The one writer: every transaction of :meth:`db` holds it. Code that uses
        #: :attr:`store` itself (its connection is not thread-safe) holds it too.
        self.lock = threading.RLock()
        self._readers = threading.local()
        self._cursors = threading.Lock()
        #: Sign-in back-off and lockout (:mod:`molehunt.investigate.throttle`).
        self.throttle = Throttle()

    def db(self) -> Store:
        """This thread's connection to the store (made on first use, kept for the
        thread's life: a server's worker threads are reused)."""
        found = getattr(self._readers, "store", None)
        if found is None:
            with self._cursors:
                found = self.store.cursor(write_lock=self.lock)
            self._readers.store = found
        assert isinstance(found, Store)
        return found

    def audit(self, who: str, action: str, target: str | None, rows: int | None) -> None:
        """One audit row (for the faces' own refusals, e.g. the sign-in gate)."""
        audit.record(self.db(), action, target, rows, who=who)

    def _refused(self, actor: Actor | str, target: str, error: MolehuntError) -> MolehuntError:
        """``error``, after its ``refused`` audit row."""
        who = actor if isinstance(actor, str) else actor.name
        self.audit(who, "refused", f"{target}: {error}"[:300], None)
        error.audited = True
        return error

    def _allow(self, actor: Actor, action: str, target: str) -> None:
        """Go on when ``actor`` may take ``action``; else the refusal, audited."""
        try:
            permissions.check(actor, action)
        except Forbidden as e:
            raise self._refused(actor, target, e) from None

    def today(self) -> date:
        return datetime.now(self.zone).date()
