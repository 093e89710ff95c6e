"""Run continuously: ingest what was appended, detect on the days it touched, say who is new.

Each round ingests the same paths again (exactly once: only new bytes, rotated files
recognised, an unchanged reference export skipped), and when anything was stored it
re-runs every detector from the last day the store held before the round up to the
newest day it holds now. Days before that keep their findings, so a round costs about
one day of detection, not the whole history. People at or above the alert threshold
on the newest day who were not flagged at the end of the round before are reported
as newly flagged: an investigator is told once, when it happens.

Once a round's alerts are out, attribution's stored reads (every read resolved to a
person, built by the first ``attribute`` of the store) are extended from the first
changed day (:meth:`Watcher.keep_attribution`), so the investigator's next leaked file
costs what a further file costs, not the extension. A store nobody attributed on
builds none.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from molehunt.config import Settings
from molehunt.detect.runner import run_detectors, write_findings
from molehunt.detect.settings import detection_settings
from molehunt.ingest.runner import IngestReport, Progress, ingest_paths
from molehunt.pii.mask import mask_texts
from molehunt.score import RiskRanker
from molehunt.store import Store


@dataclass(slots=True)
class Round:
    """What one round did."""

    started: datetime
    ingest: IngestReport
    as_of: date | None = None  # the newest day detected on (None: nothing new)
    since: date | None = None  # the first day whose findings were recomputed
    findings: int = 0
    newly_flagged: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    #: Detectors that failed (detector, error, where): their findings are missing.
    failures: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "started": self.started.isoformat(),
            "stored": self.ingest.stored,
            "rejected": self.ingest.rejected,
            "errors": [f.error for f in self.ingest.errors],
            "as_of": self.as_of,
            "since": self.since,
            "findings": self.findings,
            "newly_flagged": self.newly_flagged,
            "seconds": round(self.seconds, 3),
            "failures": self.failures,
        }


class Watcher:
    """Ingest and detect, round after round, remembering who was already flagged."""

    def __init__(self, store: Store, settings: Settings, paths: Sequence[Path]) -> None:
        self.store = store
        self.settings = settings
        self.paths = list(paths)
        ranker = self._ranker()
        last = ranker.last_day()
        self.flagged = {str(r["person_id"]) for r in ranker.ranking(last)} if last else set()

    def _ranker(self) -> RiskRanker:
        # A fresh one each round: it caches people per day, and HR exports may have changed.
        return RiskRanker(self.store, detection_settings(self.settings), self.settings.timezone)

    def round(self, progress: Progress | None = None) -> Round:
        started = datetime.now(UTC)
        clock = time.perf_counter()
        before = self._ranker().last_day()
        report = ingest_paths(self.store, self.settings, self.paths, progress=progress)
        result = Round(started, report)
        ranker = self._ranker()
        after = ranker.last_day() if report.stored else None
        if after is not None:
            detected = run_detectors(
                self.store,
                detection_settings(self.settings),
                after,
                since=min(before, after) if before else None,
                timezone=self.settings.timezone,
            )
            result.as_of, result.since = after, detected.since
            result.findings = write_findings(self.store, detected)
            result.failures = [f.as_dict() for f in detected.failures]
            ranking = ranker.ranking(after)
            result.newly_flagged = [r for r in ranking if r["person_id"] not in self.flagged]
            self.flagged = {str(r["person_id"]) for r in ranking}
        result.seconds = time.perf_counter() - clock
        return result

    def keep_attribution(self, result: Round) -> float | None:
        """After a round that detected (it stored events), extend attribution's stored
        reads when attribution built them before; the seconds it took, None when there
        was nothing to keep. A failure is logged, not raised: the stored reads then stay
        as they were and the next ``attribute`` brings them up to date itself."""
        if result.as_of is None or not self.store.query("SELECT 1 FROM attr_state LIMIT 1"):
            return None
        from molehunt.attribute import ReadOverlapAttributor

        started = time.perf_counter()
        attributor = ReadOverlapAttributor(
            self.store, detection_settings(self.settings), self.settings.timezone
        )
        try:
            attributor.prepare()
        except Exception:  # housekeeping: the round's findings and alerts are stored
            log.exception("watch: attribution's stored reads not brought up to date")
            return None
        seconds = time.perf_counter() - started
        since = attributor.extended_from or ("every day" if attributor.rebuilt else "no day")
        log.info(
            "watch: attribution's stored reads brought up to date from %s (%.1f s)", since, seconds
        )
        return seconds


def watch(
    store: Store,
    settings: Settings,
    paths: Sequence[Path],
    *,
    interval: float,
    rounds: int | None = None,
    on_round: Callable[[Round], None],
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Run rounds every ``interval`` seconds (``rounds`` of them, or until interrupted)."""
    watcher = Watcher(store, settings, paths)
    done = 0
    while rounds is None or done < rounds:
        result = watcher.round()
        on_round(result)
        watcher.keep_attribution(result)
        done += 1
        if rounds is None or done < rounds:
            sleep(interval)


log = logging.getLogger("molehunt.watch")


def alerts(result: Round) -> list[dict[str, Any]]:
    """One alert per person the round newly flagged, as a SIEM or a mail relay gets it:
    who, the score, and each reason's detector and summary, personal data masked."""
    reasons = [x for p in result.newly_flagged for x in p["reasons"]]
    summaries = iter(mask_texts([str(x["summary"]) for x in reasons]))
    return [
        {
            "time": result.started.isoformat(),
            "as_of": None if result.as_of is None else result.as_of.isoformat(),
            "person_id": p["person_id"],
            "name": p["name"],
            "role": p["role"],
            "score": p["score"],
            "reasons": [
                {"detector": x["detector"], "summary": next(summaries)} for x in p["reasons"]
            ],
        }
        for p in result.newly_flagged
    ]


def append_alerts(path: Path, result: Round) -> int:
    """Append the round's alerts to ``path`` as JSON lines (a log shipper tails it)."""
    found = alerts(result)
    if found:
        with path.open("a", encoding="utf-8") as f:
            for alert in found:
                f.write(json.dumps(alert, ensure_ascii=False, default=str) + "\n")
    return len(found)


class Follower:
    """Watch rounds in a background thread, for a server that holds the store: each
    round runs under ``lock`` (DuckDB connections are not thread-safe), so requests
    wait while a round ingests and detects. A failed round is logged, not fatal."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        paths: Sequence[Path],
        *,
        interval: float,
        lock: AbstractContextManager[Any],
        on_round: Callable[[Round], None],
    ) -> None:
        self.store = store
        self.settings = settings
        self.paths = list(paths)
        self.interval = interval
        self.lock = lock
        self.on_round = on_round
        self.rounds = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="molehunt-watch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 60.0) -> None:
        """Ask the loop to end and wait for the round in progress to finish."""
        self._stop.set()
        self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        watcher: Watcher | None = None
        while not self._stop.is_set():
            try:
                with self.lock:
                    watcher = watcher or Watcher(self.store, self.settings, self.paths)
                    result = watcher.round()
                self.rounds += 1
                self.on_round(result)
                with self.lock:
                    watcher.keep_attribution(result)
            except Exception:  # a server outlives one bad round; the next may succeed
                log.exception("watch round failed")
            self._stop.wait(self.interval)
