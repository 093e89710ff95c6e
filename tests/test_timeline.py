"""A person's evidence in time order, and the detect / risk / timeline commands."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from insurer import World, borrowed_day, scenario
from typer.testing import CliRunner

from molehunt.cli import app
from molehunt.config import Settings
from molehunt.store import Store
from molehunt.timeline import timeline


def test_timeline_is_in_time_order_with_the_events_explained() -> None:
    entries = timeline(scenario().store, "E001")
    assert [e["time"] for e in entries] == sorted(e["time"] for e in entries)
    first = entries[0]
    assert first["day"] == "2026-05-06"
    assert all(not e.get("missing") for x in entries for e in x["events"])
    db = [e for x in entries for e in x["events"] if e["table"] == "events_db"]
    assert "resigned_agent" in db[0]["summary"]
    assert "DBeaver" in db[0]["summary"]


def test_timeline_shows_findings_that_name_the_person() -> None:
    entries = timeline(scenario().store, "E004")  # the departed owner of the account
    assert entries
    assert {e["as"] for e in entries} == {"named"}
    assert {e["person_id"] for e in entries} == {"E001", "E002"}


def test_timeline_until_a_day() -> None:
    entries = timeline(scenario().store, "E001", until=date(2026, 5, 6))
    assert {e["day"] for e in entries} == {"2026-05-06"}


def _small_store(settings: Settings, store: Store, tmp_path: Path) -> None:
    w = World()
    w.routine(date(2026, 4, 20), 20, people=("E001", "E002", "E003"))
    borrowed_day(w, date(2026, 5, 6), "E001")
    w.ingest(store, settings, tmp_path / "in")
    store.close()


def test_detect_risk_and_timeline_commands(
    settings: Settings, store: Store, tmp_path: Path
) -> None:
    _small_store(settings, store, tmp_path)
    runner = CliRunner()
    base = ["--db", str(settings.db), "--key-file", str(settings.key_file)]

    detect = runner.invoke(app, [*base, "detect", "--as-of", "2026-05-09", "--format", "json"])
    assert detect.exit_code == 0, detect.output
    assert json.loads(detect.output)["by_detector"]["departed_account"] == 1
    again = runner.invoke(app, [*base, "detect", "--as-of", "2026-05-09", "--format", "json"])
    assert json.loads(again.output)["findings"] == json.loads(detect.output)["findings"]

    risk = runner.invoke(app, [*base, "risk", "--as-of", "2026-05-09", "--format", "json"])
    assert risk.exit_code == 0, risk.output
    ranking = json.loads(risk.output)
    assert ranking[0]["person_id"] == "E001"
    assert ranking[0]["rank"] == 1

    quiet = runner.invoke(app, [*base, "risk", "--as-of", "2026-05-05", "--format", "json"])
    assert json.loads(quiet.output) == []

    history = runner.invoke(
        app, [*base, "risk", "--history", "--as-of", "2026-05-09", "--top", "1", "--format", "json"]
    )
    assert history.exit_code == 0, history.output
    days = json.loads(history.output)
    assert days[0]["date"] == "2026-04-20"
    assert {d["date"]: d["ranking"] for d in days}["2026-05-06"][0]["person_id"] == "E001"

    table = runner.invoke(app, [*base, "risk", "--as-of", "2026-05-09"])
    assert table.exit_code == 0
    assert "E001" in table.output

    tl = runner.invoke(app, [*base, "timeline", "E001", "--format", "json"])
    assert tl.exit_code == 0, tl.output
    assert {e["detector"] for e in json.loads(tl.output)} >= {"departed_account", "file_write"}
