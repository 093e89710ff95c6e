"""Run the registered detectors over a store and keep their findings.

Findings have deterministic ids and each belongs to one local day, so a re-run
over the same days replaces exactly what it found before (idempotent), and the
findings of days up to D are those a run as of D would have produced.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from molehunt.detect import DETECTORS, DetectContext, DetectionSettings, Finding
from molehunt.detect.engines import detection_backend
from molehunt.errors import MolehuntError
from molehunt.store import Store


class UnknownDetectorError(MolehuntError):
    """A detector name that is not in the registry."""


@dataclass(slots=True)
class DetectReport:
    as_of: date
    since: date | None
    findings: list[Finding] = field(default_factory=list)

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
    timezone: str = "Asia/Shanghai",
    names: Sequence[str] | None = None,
    engine: str = "duckdb",
    lake: Path | None = None,
) -> DetectReport:
    """Findings of the days from ``since`` (default: all) to ``as_of``, in a stable order,
    computed by ``engine`` (the same detectors on DuckDB or local Spark, which reads
    the event tables of ``lake`` when given)."""
    chosen = list(names) if names else list(DETECTORS)
    unknown = [n for n in chosen if n not in DETECTORS]
    if unknown:
        raise UnknownDetectorError(
            f"unknown detector(s) {', '.join(unknown)}; one of: {', '.join(DETECTORS)}"
        )
    report = DetectReport(as_of, since)
    with (
        detection_backend(store, engine, lake=lake) as backend,
        DetectContext(backend, settings, as_of, since=since, timezone=timezone) as ctx,
    ):
        for name in chosen:
            report.findings.extend(DETECTORS[name]().find(ctx))
    report.findings.sort(key=lambda f: (f.day, f.detector, f.person_id or "", f.finding_id))
    return report


def write_findings(store: Store, report: DetectReport, names: Sequence[str] | None = None) -> int:
    """Replace the stored findings of the report's days and detectors with its own."""
    chosen = list(names) if names else list(DETECTORS)
    rows = [
        (
            f.finding_id,
            f.detector,
            f.time,
            f.day,
            f.severity,
            f.person_id,
            f.account,
            f.host,
            f.title,
            json.dumps({**f.details, "related": list(f.related)}, default=str, ensure_ascii=False),
            list(f.event_ids),
        )
        for f in report.findings
    ]
    marks = ", ".join("?" for _ in chosen)
    since = report.since or date(1900, 1, 1)
    with store.transaction() as con:
        con.execute(
            f"DELETE FROM findings WHERE detector IN ({marks}) AND day BETWEEN ? AND ?",
            [*chosen, since, report.as_of],
        )
        if rows:
            # Two findings of one id can only be the same evidence: keep one.
            con.executemany(
                "INSERT OR REPLACE INTO findings VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows
            )
    return len(rows)
