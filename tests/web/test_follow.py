"""The server that follows logs: theft appended to the logs while investigators browse
shows up in the ranking the API serves, and the round is audited."""

from __future__ import annotations

import json
import time
from datetime import date
from pathlib import Path

from fastapi.testclient import TestClient
from insurer import append_logs, one_day, routine_logs

from molehunt import audit
from molehunt.config import Settings
from molehunt.investigate.users import add_user
from molehunt.store import Store
from molehunt.web import create_app

PASSWORD = "a password for following"


def _flagged(client: TestClient, day: date) -> set[str]:
    answer = client.get(f"/api/risk?as_of={day}")
    assert answer.status_code == 200, answer.text
    return {r["person_id"] for r in answer.json()["ranking"]}


def test_a_following_server_ranks_theft_appended_while_it_runs(
    tmp_path: Path, settings: Settings, store: Store
) -> None:
    logs = routine_logs(store, settings, tmp_path / "in", date(2026, 5, 5))
    add_user(store, "analyst", PASSWORD, "analyst", "red")
    alerts = tmp_path / "alerts.jsonl"
    app = create_app(store, settings, follow=logs, interval=0.05, alerts=alerts)
    with TestClient(app) as client:  # runs the app's lifespan: the follower starts
        token = client.post("/api/session", json={"username": "analyst", "password": PASSWORD})
        client.headers["Authorization"] = f"Bearer {token.json()['token']}"
        theft = date(2026, 5, 6)
        assert "E001" not in _flagged(client, theft)

        append_logs(one_day(theft, "E001"), tmp_path / "in")
        deadline = time.monotonic() + 120
        while "E001" not in _flagged(client, theft):
            assert time.monotonic() < deadline, "the follower did not rank the theft in 120 s"
            time.sleep(0.2)
        follower = app.state.follower
        assert follower.running
    assert not follower.running  # stopped with the app
    rows = [r for r in audit.entries(store) if r["action"] == "watch"]
    assert [r["target"] for r in rows] == ["newly flagged on 2026-05-06: E001"]
    assert audit.verify(store).broken_at is None
    lines = alerts.read_text(encoding="utf-8").splitlines()
    assert [json.loads(x)["person_id"] for x in lines] == ["E001"]


def test_a_server_without_follow_paths_runs_no_follower(settings: Settings, store: Store) -> None:
    app = create_app(store, settings)
    with TestClient(app) as client:
        assert client.get("/healthz").json() == {"ok": True}
        assert app.state.follower is None
