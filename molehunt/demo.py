"""The demo: a simulated insurer, ingested (logs, reference data, scanned endpoint
files), detected on, ranked, its leaked files attributed, and all of it scored
against its truth."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from molehunt.attribute.evaluate import evaluate_attribution
from molehunt.config import Settings
from molehunt.detect.runner import run_detectors, write_findings
from molehunt.evaluate import evaluate
from molehunt.ingest.runner import IngestReport, Progress, ingest_paths
from molehunt.keys import create_key_file, load_key
from molehunt.pii.edm import ClientIndex
from molehunt.pii.scan import scan_paths
from molehunt.pii.stored import store_scans
from molehunt.score import RiskRanker
from molehunt.simulate import params_for, simulate
from molehunt.store import Store

#: Called with a step name, units done and units in all.
Step = Callable[[str, int, int], None]


@dataclass(slots=True)
class DemoResult:
    folder: Path
    settings: Settings
    ingest: IngestReport
    findings: int
    last_day: date
    ranking: list[dict[str, Any]]
    evaluation: dict[str, Any]
    truth: dict[str, Any]
    scanned: int = 0


def run_demo(
    folder: Path,
    *,
    preset: str = "small",
    seed: int = 7,
    step: Step | None = None,
    progress: Progress | None = None,
    base: Settings | None = None,
) -> DemoResult:
    """Simulate into ``folder/sim``, ingest into ``folder/molehunt.duckdb``, detect, rank."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    params = params_for(preset, None, seed=seed)
    simulate(
        folder / "sim",
        params,
        (lambda done, total: step("simulate", done, total)) if step else None,
    )
    settings = world_settings(folder, base)
    create_key_file(settings.key_file)
    report, scanned = ingest_world(folder, settings, step=step, progress=progress)
    truth = json.loads((folder / "sim" / "truth.json").read_text(encoding="utf-8"))
    last_day = date.fromisoformat(truth["period"]["end"])
    with Store.open(settings.db, memory_limit=settings.memory_limit) as store:
        if step:
            step("detect", 0, 1)
        findings = write_findings(
            store, run_detectors(store, settings.detection, last_day, timezone=settings.timezone)
        )
        if step:
            step("detect", 1, 1)
        ranking = RiskRanker(store, settings.detection, settings.timezone).ranking(last_day)
        evaluation = evaluate(store, settings.detection, truth, settings.timezone)
        if step:
            step("attribute leaked files", 0, 1)
        evaluation["attribution"] = evaluate_attribution(
            store, load_key(settings), folder / "sim", truth, seed=seed
        )
        if step:
            step("attribute leaked files", 1, 1)
    return DemoResult(
        folder, settings, report, findings, last_day, ranking, evaluation, truth, scanned
    )


def world_settings(folder: Path, base: Settings | None = None) -> Settings:
    """Settings of a simulated world's store: ``folder/molehunt.duckdb`` and its key."""
    return (base or Settings.load(environ={})).model_copy(
        update={"db": folder / "molehunt.duckdb", "key_file": folder / "molehunt.key"}
    )


def ingest_world(
    folder: Path,
    settings: Settings | None = None,
    *,
    step: Step | None = None,
    progress: Progress | None = None,
) -> tuple[IngestReport, int]:
    """Ingest a simulated world (``folder/sim``: reference data, logs) and scan its
    endpoint files; returns the ingest report and the files scanned."""
    if settings is None:
        settings = world_settings(folder)
        if not settings.key_file.exists():
            create_key_file(settings.key_file)
    with Store.open(settings.db, memory_limit=settings.memory_limit) as store:
        report = ingest_paths(
            store,
            settings,
            [folder / "sim" / "reference", folder / "sim" / "logs"],
            progress=progress,
        )
        endpoint = folder / "sim" / "endpoint"
        scanned = 0
        if endpoint.is_dir():
            if step:
                step("scan endpoint files", 0, 1)
            reports = scan_paths(
                [endpoint], key=load_key(settings), clients=ClientIndex.from_store(store)
            )
            scanned = store_scans(store, reports)
            if step:
                step("scan endpoint files", 1, 1)
    return report, scanned


def detect_world(folder: Path, settings: Settings | None = None) -> dict[str, Any]:
    """Detect afresh on an ingested world and evaluate its rankings against its truth
    (detection only: no attribution)."""
    settings = settings or world_settings(folder)
    truth = json.loads((folder / "sim" / "truth.json").read_text(encoding="utf-8"))
    last_day = date.fromisoformat(truth["period"]["end"])
    with Store.open(settings.db, memory_limit=settings.memory_limit) as store:
        write_findings(
            store, run_detectors(store, settings.detection, last_day, timezone=settings.timezone)
        )
        return evaluate(store, settings.detection, truth, settings.timezone)


def scenario_people(truth: dict[str, Any]) -> dict[str, str]:
    """Person id -> the scenario or decoy they are part of (for the demo's table)."""
    out: dict[str, str] = {}
    for s in truth["scenarios"]:
        for p in s["people"]:
            out[p] = s["id"]
    for d in truth["decoys"]:
        for p in d["people"]:
            out.setdefault(p, f"decoy: {d['id']}")
    return out
