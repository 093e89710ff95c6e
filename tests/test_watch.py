"""Running continuously: appended lines are ingested once, detection covers the new days,
and a person is reported as newly flagged once, on the round their evidence arrives."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

from insurer import append_logs, one_day, routine_logs
from typer.testing import CliRunner

from molehunt.attribute import ReadOverlapAttributor
from molehunt.cli import app
from molehunt.config import Settings
from molehunt.detect.settings import detection_settings
from molehunt.ingest.runner import IngestReport
from molehunt.store import Store
from molehunt.watch import Round, Watcher, alerts, watch


def _routine_store(tmp_path: Path, settings: Settings, store: Store) -> list[Path]:
    return routine_logs(store, settings, tmp_path / "in", date(2026, 5, 5))


def test_new_evidence_flags_its_person_once(
    tmp_path: Path, settings: Settings, store: Store
) -> None:
    paths = _routine_store(tmp_path, settings, store)
    watcher = Watcher(store, settings, paths)
    assert watcher.flagged == set()

    append_logs(one_day(date(2026, 5, 6), "E001"), tmp_path / "in")
    first = watcher.round()
    assert first.ingest.stored > 0
    assert first.ingest.rejected == 0
    assert (first.as_of, first.since) == (date(2026, 5, 6), date(2026, 5, 5))
    assert [r["person_id"] for r in first.newly_flagged] == ["E001"]
    assert first.findings > 0

    quiet = watcher.round()  # nothing appended: nothing stored, nothing detected
    assert (quiet.ingest.stored, quiet.as_of, quiet.newly_flagged) == (0, None, [])

    append_logs(one_day(date(2026, 5, 7), "E001", "E002"), tmp_path / "in")
    second = watcher.round()
    assert second.as_of == date(2026, 5, 7)
    assert [r["person_id"] for r in second.newly_flagged] == ["E002"]  # E001 was told already
    assert watcher.flagged >= {"E001", "E002"}


def test_days_before_the_round_keep_their_findings(
    tmp_path: Path, settings: Settings, store: Store
) -> None:
    paths = _routine_store(tmp_path, settings, store)
    watcher = Watcher(store, settings, paths)
    append_logs(one_day(date(2026, 5, 6), "E001"), tmp_path / "in")
    watcher.round()
    before = store.query("SELECT finding_id FROM findings WHERE day = DATE '2026-05-06'")
    append_logs(one_day(date(2026, 5, 8)), tmp_path / "in")
    later = watcher.round()
    assert later.since == date(2026, 5, 6)  # the day the store ended on is detected again
    after = store.query("SELECT finding_id FROM findings WHERE day = DATE '2026-05-06'")
    assert sorted(r["finding_id"] for r in after) == sorted(r["finding_id"] for r in before)


def test_watch_runs_the_rounds_asked_for_and_sleeps_between(
    tmp_path: Path, settings: Settings, store: Store
) -> None:
    paths = _routine_store(tmp_path, settings, store)
    seen: list[Round] = []
    naps: list[float] = []
    watch(store, settings, paths, interval=7.5, rounds=3, on_round=seen.append, sleep=naps.append)
    assert len(seen) == 3
    assert naps == [7.5, 7.5]
    assert all(r.ingest.stored == 0 for r in seen)  # everything was ingested before


def test_cli_watch_prints_newly_flagged_people(tmp_path: Path, run: CliRunner) -> None:
    settings = Settings.load(
        {"db": tmp_path / "w.duckdb", "key_file": tmp_path / "w.key"}, environ={}, cwd=tmp_path
    )
    init = run.invoke(app, ["--db", str(settings.db), "--key-file", str(settings.key_file), "init"])
    assert init.exit_code == 0, init.output
    with Store.open(settings.db) as store:
        paths = _routine_store(tmp_path, settings, store)
    append_logs(one_day(date(2026, 5, 6), "E001"), tmp_path / "in")
    args = ["--db", str(settings.db), "--key-file", str(settings.key_file), "watch"]
    alerts = tmp_path / "alerts.jsonl"
    options = ["--rounds", "1", "--format", "json", "--alerts", str(alerts)]
    result = run.invoke(app, [*args, *options, *map(str, paths)])
    assert result.exit_code == 0, result.output
    (line,) = result.output.strip().splitlines()
    answer = json.loads(line)
    assert answer["as_of"] == "2026-05-06"
    assert [p["person_id"] for p in answer["newly_flagged"]] == ["E001"]
    (alert,) = [json.loads(x) for x in alerts.read_text(encoding="utf-8").splitlines()]
    assert (alert["person_id"], alert["as_of"]) == ("E001", "2026-05-06")
    assert {r["detector"] for r in alert["reasons"]} >= {"borrowed_account"}


def test_alerts_mask_personal_data_in_their_summaries() -> None:
    flagged = {
        "person_id": "E001",
        "name": "Zhang Wei",
        "role": "sales",
        "score": 3.5,
        "reasons": [{"detector": "bulk_read", "summary": "looked up client 13912345678"}],
    }
    result = Round(datetime(2026, 5, 6, tzinfo=UTC), IngestReport(), as_of=date(2026, 5, 6))
    result.newly_flagged = [flagged]
    (alert,) = alerts(result)
    summary = alert["reasons"][0]["summary"]
    assert "13912345678" not in summary
    assert summary.startswith("looked up client 139")
    assert alerts(Round(datetime(2026, 5, 6, tzinfo=UTC), IngestReport())) == []


def test_a_round_keeps_attributions_stored_reads_current(
    tmp_path: Path, settings: Settings, store: Store
) -> None:
    """Once attribution has built its stored reads, each round that stores events
    extends them, so the next leaked file finds them current; a store nobody
    attributed on is not given any."""
    paths = _routine_store(tmp_path, settings, store)
    rounds: list[Round] = []

    def attributor() -> ReadOverlapAttributor:
        return ReadOverlapAttributor(store, detection_settings(settings), settings.timezone)

    append_logs(one_day(date(2026, 5, 6), "E001"), tmp_path / "in")
    watch(store, settings, paths, interval=0, rounds=1, on_round=rounds.append)
    assert rounds[-1].as_of == date(2026, 5, 6)
    assert store.query("SELECT * FROM attr_state") == []  # never attributed: nothing kept

    attributor().prepare()
    assert store.query("SELECT count(*) AS n FROM attr_state")[0]["n"] == 1
    append_logs(one_day(date(2026, 5, 7), "E002"), tmp_path / "in")
    watch(store, settings, paths, interval=0, rounds=1, on_round=rounds.append)
    assert rounds[-1].as_of == date(2026, 5, 7)
    after = attributor()
    after.prepare()
    assert not after.rebuilt  # the round brought them up to date already
    read = store.query(
        "SELECT count(*) AS n FROM attr_reads WHERE time >= TIMESTAMPTZ '2026-05-07 00:00:00+08'"
    )
    assert read[0]["n"] > 0
