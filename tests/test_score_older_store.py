"""A store of an older schema, opened read-only (not migrated: no stored daily
scores), still answers the ranking history, scored in memory."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from molehunt.detect import DetectionSettings, Finding
from molehunt.detect.runner import DetectReport, write_findings
from molehunt.score import RiskRanker
from molehunt.store import Store

DAY = date(2026, 3, 2)


def test_history_of_a_read_only_store_without_stored_scores(tmp_path: Path) -> None:
    s = DetectionSettings()
    path = tmp_path / "old.duckdb"
    with Store.open(path) as store:
        store.con.execute(
            "INSERT INTO events_auth (event_id, time, source_id, kind, activity) "
            "VALUES ('ev-0', ?, 'src', 'winlog', 'logon')",
            [datetime(2026, 3, 2, 2, tzinfo=UTC)],
        )
        found = [
            Finding(
                "departed_account",
                DAY + timedelta(days=d),
                datetime(2026, 3, 2 + d, 3, tzinfo=UTC),
                80,
                "E1",
                "account of departed E9 in use",
                event_ids=("ev-0",),
            )
            for d in range(3)
        ]
        report = DetectReport(DAY + timedelta(days=2), None, found, ran=["departed_account"])
        write_findings(store, report, ["departed_account"])
        expected = RiskRanker(store, s).history(DAY + timedelta(days=2), include_all=True)
        # What an older molehunt left: no tables of stored daily scores.
        for table in ("risk_days", "risk_reasons", "risk_thresholds", "risk_inputs", "risk_state"):
            store.con.execute(f"DROP TABLE {table}")
    with Store.open(path, read_only=True) as store:
        got = RiskRanker(store, s).history(DAY + timedelta(days=2), include_all=True)
    assert [d["ranking"][0]["person_id"] for d in got if d["ranking"]] == ["E1"] * 3
    assert got == expected
