"""The whole pipeline on the simulator's tiny preset: simulate, ingest, detect, evaluate."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest

from molehunt.config import Settings
from molehunt.demo import ingest_world
from molehunt.detect import DetectionSettings
from molehunt.detect.runner import run_detectors, write_findings
from molehunt.evaluate import Budget, evaluate, working_days
from molehunt.keys import create_key_file
from molehunt.simulate import params_for, simulate
from molehunt.store import Store

ZONE = "Asia/Shanghai"


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("pipeline")
    sim = folder / "sim"
    truth = simulate(sim, params_for("tiny")).truth
    key_file = folder / "molehunt.key"
    create_key_file(key_file)
    settings = Settings.load(
        {"db": folder / "molehunt.duckdb", "key_file": key_file}, environ={}, cwd=folder
    )
    # The whole pipeline: logs, reference data and the files collected from endpoints.
    report, scanned = ingest_world(folder, settings)
    assert not report.errors, report.as_dict()
    assert scanned > 0
    with Store.open(settings.db) as store:
        detection = DetectionSettings()
        end = date.fromisoformat(truth["period"]["end"])
        write_findings(store, run_detectors(store, detection, end, timezone=ZONE))
        out = evaluate(store, detection, truth, ZONE)
    out["truth"] = truth
    return out


def _scenarios(result: dict[str, Any]) -> list[str]:
    return [s["kind"] for s in result["scenarios"]]


def test_every_planted_scenario_is_evaluated(result: dict[str, Any]) -> None:
    planted = {s["kind"] for s in result["truth"]["scenarios"] if s["start_day"]}
    assert planted
    assert planted == set(_scenarios(result))


def test_every_scenario_is_found_within_the_budget_in_three_working_days(
    result: dict[str, Any],
) -> None:
    late = {
        s["kind"]: (s["detected_day"], s["best_rank"])
        for s in result["scenarios"]
        if s["working_days_to_detect"] is None or s["working_days_to_detect"] > 3
    }
    assert not late, late
    assert all(s["best_rank"] <= result["k"] for s in result["scenarios"])


def test_insider_person_days_are_mostly_within_the_budget(result: dict[str, Any]) -> None:
    assert result["recall_at_k"] >= 0.8


def test_no_decoy_is_ever_flagged(result: dict[str, Any]) -> None:
    flagged = {d["kind"]: d["flagged_days"] for d in result["decoys"] if d["flagged_days"]}
    assert not flagged, flagged


def test_benign_people_are_rarely_flagged(result: dict[str, Any]) -> None:
    assert result["false_alerts_per_1000_staff_days"] <= 5.0, result["benign_flags"]


def test_budget_is_one_percent_of_staff_but_at_least_five() -> None:
    assert Budget(40).k == 5
    assert Budget(3000).k == 30


def test_working_days_skip_weekends() -> None:
    assert working_days(date(2026, 3, 6), date(2026, 3, 9)) == 1  # Friday to Monday


def test_the_pipeline_writes_where_it_was_told(tmp_path: Path) -> None:
    # evaluate reads findings only: an empty store has nothing flagged and no recall.
    key_file = tmp_path / "molehunt.key"
    create_key_file(key_file)
    settings = Settings.load(
        {"db": tmp_path / "molehunt.duckdb", "key_file": key_file}, environ={}, cwd=tmp_path
    )
    truth = {
        "period": {"start": "2026-03-02", "end": "2026-03-04"},
        "staff": 40,
        "scenarios": [
            {
                "id": "x-1",
                "kind": "x",
                "start_day": "2026-03-02",
                "end_day": "2026-03-03",
                "people": ["E1"],
            }
        ],
        "decoys": [],
    }
    with Store.open(settings.db) as store:
        out = evaluate(store, DetectionSettings(), truth, ZONE)
    assert out["recall_at_k"] == 0
    assert out["scenarios"][0]["detected_day"] is None
    assert out["benign_flags"] == 0
