"""Run the registered detectors over a store and keep their findings.

Findings have deterministic ids and each belongs to one local day, so a re-run
over the same days replaces exactly what it found before (idempotent), and the
findings of days up to D are those a run as of D would have produced.

A detector that fails on the data does not stop the pass: its error is reported
(which detector, the error, where), the others' findings are stored, and the
failed detector's stored findings are kept as they were. Each pass is recorded in
``detection_runs`` (``molehunt status`` shows the last one's failures).
"""

from __future__ import annotations

import json
import logging
import time
import traceback
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa

from molehunt.detect import DETECTORS, DetectContext, DetectionSettings, Finding
from molehunt.detect.engines import detection_backend
from molehunt.errors import MolehuntError
from molehunt.pii.mask import mask_text
from molehunt.resolve.stored import Refresh
from molehunt.store import Store
from molehunt.times import DEFAULT_TIMEZONE

log = logging.getLogger(__name__)

#: Passes kept in ``detection_runs`` (older ones are dropped as new ones come).
KEPT_RUNS = 100


class UnknownDetectorError(MolehuntError):
    """A detector name that is not in the registry."""


@dataclass(frozen=True, slots=True)
class DetectorFailure:
    """A detector that raised during a pass: its findings of the pass are missing."""

    detector: str
    error: str  # exception type and message
    where: str  # the innermost molehunt frame, path:line

    @classmethod
    def of(cls, detector: str, exc: BaseException) -> DetectorFailure:
        frames = traceback.extract_tb(exc.__traceback__)
        ours = [f for f in frames if "/molehunt/" in f.filename.replace("\\", "/")]
        last = (ours or frames)[-1] if frames else None
        where = ""
        if last is not None:
            path = last.filename.replace("\\", "/")
            where = f"{path[path.rfind('/molehunt/') + 1 :]}:{last.lineno}"
        # An error may quote data (a value that did not convert): masked, one line.
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return cls(detector, mask_text(f"{type(exc).__name__}: {message}"[:500]), where)

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass(slots=True)
class DetectReport:
    as_of: date
    since: date | None
    findings: list[Finding] = field(default_factory=list)
    #: Detectors that ran to the end, and those that failed (in registry order).
    ran: list[str] = field(default_factory=list)
    failures: list[DetectorFailure] = field(default_factory=list)
    #: Wall seconds each detector took (shared relations charged to the first that asks).
    seconds: dict[str, float] = field(default_factory=dict)
    #: What bringing each kept relation up to the pass's day did (a writable DuckDB
    #: store), in the order detectors asked for them; their seconds are in ``seconds`` too.
    refreshes: dict[str, Refresh] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for f in self.findings:
            out[f.detector] = out.get(f.detector, 0) + 1
        return dict(sorted(out.items()))


def run_detectors(
    store: Store,
    settings: DetectionSettings,
    as_of: date,
    *,
    since: date | None = None,
    timezone: str = DEFAULT_TIMEZONE,
    names: Sequence[str] | None = None,
    engine: str = "duckdb",
    lake: Path | None = None,
    keep_resolved: bool = True,
) -> DetectReport:
    """Findings of the days from ``since`` (default: all) to ``as_of``, in a stable order,
    computed by ``engine`` (the same detectors on DuckDB or local Spark, which reads
    the event tables of ``lake`` when given). On a writable DuckDB store, who-is-who is
    kept in the store and extended day by day (:mod:`molehunt.resolve.stored`) unless
    ``keep_resolved`` is false (then resolved in this pass alone, as on Spark)."""
    chosen = list(names) if names else list(DETECTORS)
    unknown = [n for n in chosen if n not in DETECTORS]
    if unknown:
        raise UnknownDetectorError(
            f"unknown detector(s) {', '.join(unknown)}; one of: {', '.join(DETECTORS)}"
        )
    report = DetectReport(as_of, since)
    with (
        detection_backend(store, engine, lake=lake) as backend,
        DetectContext(
            backend,
            settings,
            as_of,
            since=since,
            timezone=timezone,
            # Reads resolved to people are kept in a writable DuckDB store.
            store=store if keep_resolved and engine == "duckdb" and not store.read_only else None,
        ) as ctx,
    ):
        for name in chosen:
            started = time.perf_counter()
            try:
                found = DETECTORS[name]().find(ctx)
            except Exception as e:  # one detector's failure must not stop the pass
                failure = DetectorFailure.of(name, e)
                log.error("detector %s failed at %s: %s", name, failure.where, failure.error)
                log.debug("detector %s failed", name, exc_info=True)
                report.failures.append(failure)
                report.seconds[name] = time.perf_counter() - started
                continue
            report.seconds[name] = time.perf_counter() - started
            report.findings.extend(found)
            report.ran.append(name)
        report.refreshes = dict(ctx.refreshes)
    report.findings.sort(key=lambda f: (f.day, f.detector, f.person_id or "", f.finding_id))
    return report


def write_findings(store: Store, report: DetectReport, names: Sequence[str] | None = None) -> int:
    """Replace the stored findings of the report's days and detectors with its own
    (a detector that failed keeps what it had stored), and record the pass."""
    failed = {f.detector for f in report.failures}
    chosen = [n for n in (list(names) if names else list(DETECTORS)) if n not in failed]
    # Two findings of one id can only be the same evidence: keep one (the last).
    unique = list({f.finding_id: f for f in report.findings}.values())
    table = pa.table(
        {
            "finding_id": pa.array([f.finding_id for f in unique], pa.string()),
            "detector": pa.array([f.detector for f in unique], pa.string()),
            "time": pa.array([f.time for f in unique], pa.timestamp("us", tz="UTC")),
            "day": pa.array([f.day for f in unique], pa.date32()),
            "severity": pa.array([f.severity for f in unique], pa.int32()),
            "person_id": pa.array([f.person_id for f in unique], pa.string()),
            "account": pa.array([f.account for f in unique], pa.string()),
            "host": pa.array([f.host for f in unique], pa.string()),
            "title": pa.array([f.title for f in unique], pa.string()),
            "details": pa.array(
                [
                    json.dumps(
                        {**f.details, "related": list(f.related)}, default=str, ensure_ascii=False
                    )
                    for f in unique
                ],
                pa.string(),
            ),
            "event_ids": pa.array([list(f.event_ids) for f in unique], pa.list_(pa.string())),
        }
    )
    marks = ", ".join("?" for _ in chosen)
    since = report.since or date(1900, 1, 1)
    with store.transaction() as con:
        if chosen:
            con.execute(
                f"DELETE FROM findings WHERE detector IN ({marks}) AND day BETWEEN ? AND ?",
                [*chosen, since, report.as_of],
            )
        _record_run(con, report, len(report.findings))
        if len(table):
            # One statement for every finding (a row at a time is slow at 100,000s).
            con.register("_found", table)
            con.execute(
                "INSERT OR REPLACE INTO findings SELECT finding_id, detector, time, day, "
                "severity, person_id, account, host, title, details::JSON, event_ids "
                "FROM _found"
            )
            con.unregister("_found")
    return len(report.findings)


def _record_run(con: Any, report: DetectReport, findings: int) -> None:
    failures = json.dumps([f.as_dict() for f in report.failures], ensure_ascii=False)
    con.execute(
        "INSERT INTO detection_runs VALUES (now(), ?, ?, ?, ?, ?)",
        [report.as_of, report.since, report.ran, findings, failures],
    )
    con.execute(
        "DELETE FROM detection_runs WHERE run_at < (SELECT min(run_at) FROM "
        f"(SELECT run_at FROM detection_runs ORDER BY run_at DESC LIMIT {KEPT_RUNS}))"
    )


def last_run(store: Store) -> dict[str, Any] | None:
    """The last recorded detection pass: when, which days, the detectors that ran,
    the findings stored and the failures (``[]`` when none), or None."""
    rows = store.query(
        "SELECT run_at, as_of, since, detectors, findings, failures FROM detection_runs "
        "ORDER BY run_at DESC LIMIT 1"
    )
    if not rows:
        return None
    run = rows[0]
    run["failures"] = json.loads(run["failures"]) if run["failures"] else []
    return run
