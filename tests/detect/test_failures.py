"""A detector that fails is reported, and the others' findings are stored.

The hand-written insurer is ingested and detected once; then one registered detector
is swapped for one that raises (a bug meeting data it was not written for). The pass
goes on: the report names the detector and its error, the other detectors' findings
replace theirs, the failed detector's stored findings stay as they were, ``molehunt
detect`` says so and exits 1, and ``molehunt status`` shows the last pass's failures.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import ClassVar

import pytest
from insurer import END, scenario_world
from typer.testing import CliRunner

from molehunt.cli import app
from molehunt.config import Settings
from molehunt.detect import DETECTORS, DetectContext, DetectionSettings, Finding
from molehunt.detect.runner import last_run, run_detectors, write_findings
from molehunt.keys import create_key_file
from molehunt.store import Store

SINCE = date(2026, 5, 18)
BROKEN = "bulk_read"  # has findings from SINCE on (the DBA's COPY of 05-20)


class ExplodingDetector:
    """Stands in for a registered detector and raises, as a bug on odd data would."""

    name: ClassVar[str] = BROKEN
    severity: ClassVar[int] = 50
    description: ClassVar[str] = "raises"
    source: ClassVar[str] = "db"

    def find(self, ctx: DetectContext) -> list[Finding]:
        raise TypeError("'NoneType' object is not iterable")


@dataclass(frozen=True, slots=True)
class Insurer:
    folder: Path
    settings: Settings


@pytest.fixture(scope="module")
def insurer(tmp_path_factory: pytest.TempPathFactory) -> Insurer:
    folder = tmp_path_factory.mktemp("failures")
    key_file = folder / "molehunt.key"
    create_key_file(key_file)
    settings = Settings.load(
        {"db": folder / "molehunt.duckdb", "key_file": key_file}, environ={}, cwd=folder
    )
    with Store.open(settings.db) as store:
        scenario_world().ingest(store, settings, folder / "in")
        # Only the detector that will break has findings stored before (it is the
        # one whose findings must be kept); the others' come from the pass under test.
        report = run_detectors(store, DetectionSettings(), END, names=[BROKEN])
        assert not report.failures, report.failures
        write_findings(store, report, names=[BROKEN])
    return Insurer(folder, settings)


def _stored(store: Store) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for r in store.query(
        "SELECT detector, finding_id FROM findings WHERE day >= ? ORDER BY ALL", [SINCE]
    ):
        out.setdefault(r["detector"], set()).add(r["finding_id"])
    return out


def test_a_failing_detector_is_reported_and_the_others_findings_stored(
    insurer: Insurer, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Store.open(insurer.settings.db) as store:
        before = _stored(store)
        assert before.get(BROKEN), "the broken detector should have findings to keep"
        monkeypatch.setitem(DETECTORS, BROKEN, ExplodingDetector)
        report = run_detectors(store, DetectionSettings(), END, since=SINCE)
        assert [(f.detector, f.error) for f in report.failures] == [
            (BROKEN, "TypeError: 'NoneType' object is not iterable")
        ]
        assert report.failures[0].where.startswith("molehunt/detect/")
        assert report.ran == [n for n in DETECTORS if n != BROKEN]
        assert BROKEN not in report.counts()
        write_findings(store, report)
        after = _stored(store)
        assert after.pop(BROKEN) == before[BROKEN]  # kept as they were
        found: dict[str, set[str]] = {}
        for f in report.findings:
            if f.day >= SINCE:
                found.setdefault(f.detector, set()).add(f.finding_id)
        assert after == found  # the others' stored
        assert len(found) >= 5
        run = last_run(store)
    assert run is not None
    assert (run["as_of"], run["since"], run["findings"]) == (END, SINCE, len(report.findings))
    assert BROKEN not in run["detectors"]
    assert [f["detector"] for f in run["failures"]] == [BROKEN]


def test_detect_exits_1_naming_the_detector_and_status_shows_the_last_pass(
    insurer: Insurer, monkeypatch: pytest.MonkeyPatch, run: CliRunner
) -> None:
    db = str(insurer.settings.db)
    days = ["--as-of", END.isoformat(), "--since", END.isoformat()]
    with monkeypatch.context() as patched:
        patched.setitem(DETECTORS, BROKEN, ExplodingDetector)
        result = run.invoke(app, ["--db", db, "detect", *days, "--format", "json"])
    assert result.exit_code == 1, result.output
    assert f"detector {BROKEN} failed" in result.output
    answer = json.loads(result.output[: result.output.rindex("}") + 1])
    assert [f["detector"] for f in answer["failures"]] == [BROKEN]
    assert answer["findings"] > 0  # the others' findings are stored

    status = run.invoke(app, ["--db", db, "status"])
    assert status.exit_code == 0, status.output
    assert f"detector {BROKEN} failed" in status.output
    assert "'NoneType' object is not iterable" in status.output
    shown = json.loads(run.invoke(app, ["--db", db, "status", "--format", "json"]).output)
    assert [f["detector"] for f in shown["last_detection"]["failures"]] == [BROKEN]

    # A pass without failures clears them from status.
    clean = run.invoke(app, ["--db", db, "detect", *days])
    assert clean.exit_code == 0, clean.output
    assert "failed" not in clean.output
    shown = json.loads(run.invoke(app, ["--db", db, "status", "--format", "json"]).output)
    assert shown["last_detection"]["failures"] == []
    assert len(shown["last_detection"]["detectors"]) == len(DETECTORS)
