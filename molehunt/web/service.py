"""The server's state: the one open store and its service
(:class:`molehunt.investigate.service.Investigation`, which every answer goes
through, audited and masked), plus what only a server has: the watch rounds it runs
(``serve --follow``) and the private folder an upload is written to."""

from __future__ import annotations

import logging
import re
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from molehunt import audit
from molehunt.config import Settings
from molehunt.investigate.service import Investigation
from molehunt.store import Store
from molehunt.watch import Round, append_alerts

log = logging.getLogger("molehunt.web")

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


class WebService(Investigation):
    """The service of a server: many requests read at once, each thread over its own
    DuckDB connection (:meth:`db`); every write holds :attr:`lock`, the one writer, so
    a page never waits for another investigator's attribution, only for a write."""

    def __init__(self, store: Store, settings: Settings, *, alerts: Path | None = None) -> None:
        super().__init__(store, settings)
        self.alerts = alerts
        #: Held by a watch round from start to end (rounds never overlap); requests
        #: do not wait for it.
        self.rounds = threading.Lock()

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
