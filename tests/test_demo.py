from __future__ import annotations

from pathlib import Path

from molehunt.demo import run_demo, scenario_people


def test_demo_runs_the_whole_pipeline_on_a_tiny_insurer(tmp_path: Path) -> None:
    steps: list[str] = []
    result = run_demo(
        tmp_path / "demo", preset="tiny", seed=3, step=lambda name, _d, _t: steps.append(name)
    )
    assert {"simulate", "scan endpoint files", "detect", "attribute leaked files"} <= set(steps)
    assert result.scanned > 0
    assert result.ingest.rejected == 0
    assert not result.ingest.errors
    assert result.findings > 0
    assert (tmp_path / "demo" / "sim" / "truth.json").exists()
    assert result.settings.db == tmp_path / "demo" / "molehunt.duckdb"
    planted = scenario_people(result.truth)
    insiders = {p for s in result.truth["scenarios"] for p in s["people"]}
    assert insiders <= set(planted)
    evaluated = {s["id"] for s in result.evaluation["scenarios"]}
    assert evaluated == {s["id"] for s in result.truth["scenarios"]}
    # The founding case is caught: a borrowed database account is flagged within the top K.
    ring = [s for s in result.evaluation["scenarios"] if s["kind"] == "borrowed_account_ring"]
    assert ring
    assert ring[0]["detected_day"] is not None
    # Every leaked file the simulator left points to its true people at rank 1. A
    # sample of 50 of its client records does too, except where the wider benign world
    # (issue 12) plants people whose entitled reads cover the whole client base: they
    # can outrank the ring on a small sample (tests/attribute/test_overlap.py, xfail).
    leaked = [f for s in result.truth["scenarios"] for f in s["leaked_files"]]
    attributed = result.evaluation["attribution"]
    assert sorted(a["file"] for a in attributed) == sorted(leaked)
    for a in attributed:
        assert a["client_records"] > 0, a
        assert a["rank"] == 1, a
        assert a["sample_rank"] is not None, a
