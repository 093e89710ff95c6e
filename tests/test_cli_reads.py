"""The six read verbs on the command line go through the one audited, masked service
(issue 15): each writes exactly one audit row as the operating-system user, with the
action, target and row count it always wrote, and a client identifier in the free
text it shows comes out masked. (The same verbs through a running server are in
tests/test_serve_reads.py and tests/web/test_local.py.)"""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from insurer import borrowed_store
from typer.testing import CliRunner

from molehunt.audit import actor, entries
from molehunt.cli import app
from molehunt.config import Settings
from molehunt.store import Store

AS_OF = "2026-05-09"
AT = "2026-05-06T10:00+08:00"
#: A client's resident ID number and mobile, planted in free text the verbs show.
CLIENT_ID = "11010519491231002X"
MOBILE = "13912345678"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A small store, detected once, with a client's ID number planted in a finding's
    title and in a cited statement, and an app login that is a client's mobile."""
    settings = borrowed_store(tmp_path_factory.mktemp("cli-reads"), date.fromisoformat(AS_OF))
    with Store.open(settings.db) as store:
        con = store.con
        con.execute(
            "UPDATE findings SET title = title || ? WHERE detector = 'departed_account'",
            [f" (asked for client {CLIENT_ID})"],
        )
        con.execute(
            "UPDATE events_db SET statement = statement || ? WHERE db_user = 'resigned_agent'",
            [f" -- client {CLIENT_ID}"],
        )
        con.execute(
            "INSERT INTO ref_accounts (account, system, owner_employee_id, kind, created, "
            "disabled, valid_from, valid_to, source_id) VALUES (?, 'crm-app', 'E004', 'human', "
            "DATE '2018-01-01', NULL, TIMESTAMPTZ '2026-01-01 00:00:00+00', NULL, 'planted')",
            [MOBILE],
        )
    return settings


@pytest.fixture
def cli(built: Settings, tmp_path: Path) -> tuple[CliRunner, list[str], Path]:
    """A runner and ``--db ... --key-file ...`` over this test's own copy of the store."""
    for made in (*built.db.parent.glob(built.db.name + "*"), built.key_file):
        shutil.copy(made, tmp_path / made.name)
    db = tmp_path / built.db.name
    base = ["--db", str(db), "--key-file", str(tmp_path / built.key_file.name)]
    return CliRunner(), base, db


def _trail(db: Path) -> list[dict[str, Any]]:
    with Store.open(db) as store:
        return entries(store)


def _run(cli: tuple[CliRunner, list[str], Path], *args: str) -> tuple[str, list[dict[str, Any]]]:
    """The verb's standard output, and the audit rows it wrote (oldest first)."""
    runner, base, db = cli
    before = len(_trail(db))
    done = runner.invoke(app, [*base, *args])
    assert done.exit_code == 0, done.output
    rows = _trail(db)
    return done.stdout, list(reversed(rows[: len(rows) - before]))


def _written(rows: list[dict[str, Any]]) -> tuple[str, str, str | None, int | None]:
    assert len(rows) == 1, rows  # exactly one row per answer
    (row,) = rows
    return row["actor"], row["action"], row["target"], row["rows"]


def _masked(text: str, secret: str, shown: str) -> None:
    assert secret not in text
    assert shown in text


def test_risk_one_day_is_audited_once_and_masked(cli: tuple[CliRunner, list[str], Path]) -> None:
    out, rows = _run(cli, "risk", "--as-of", AS_OF, "--format", "json")
    ranking = json.loads(out)
    assert ranking[0]["person_id"] == "E001"
    assert _written(rows) == (actor(), "risk", f"as of {AS_OF}", len(ranking))
    _masked(out, CLIENT_ID, "110***********002X")
    # Times as the command always printed them: in the configured zone.
    assert ranking[0]["reasons"][0]["first_seen"].endswith("+08:00")

    table, rows = _run(cli, "risk", "--as-of", AS_OF)
    assert _written(rows)[1:3] == ("risk", f"as of {AS_OF}")
    assert CLIENT_ID not in table
    _, rows = _run(cli, "risk", "--format", "json")  # no --as-of: today, said so
    assert _written(rows)[1:3] == ("risk", "as of today")


def test_risk_history_is_audited_once_and_masked(cli: tuple[CliRunner, list[str], Path]) -> None:
    out, rows = _run(cli, "risk", "--history", "--as-of", AS_OF, "--all", "--format", "json")
    days = json.loads(out)
    assert days[0]["date"] == "2026-04-20"
    assert days[-1]["date"] == AS_OF
    shown = sum(len(d["ranking"]) for d in days)
    assert shown > 0
    assert _written(rows) == (actor(), "risk", f"as of {AS_OF} history", shown)
    _masked(out, CLIENT_ID, "110***********002X")


def test_timeline_is_audited_once_and_masked(cli: tuple[CliRunner, list[str], Path]) -> None:
    out, rows = _run(cli, "timeline", "E001", "--format", "json")
    found = json.loads(out)
    assert {e["detector"] for e in found} >= {"departed_account", "file_write"}
    assert _written(rows) == (actor(), "timeline", "E001", len(found))
    _masked(out, CLIENT_ID, "110***********002X")  # in titles and in cited statements
    summaries = [ev["summary"] for e in found for ev in e["events"] if ev.get("summary")]
    assert any("110***********002X" in s for s in summaries)
    assert found[0]["time"].endswith("+08:00")

    table, rows = _run(cli, "timeline", "E001")
    assert _written(rows)[1:3] == ("timeline", "E001")
    assert CLIENT_ID not in table


def test_who_is_audited_once_and_masked(cli: tuple[CliRunner, list[str], Path]) -> None:
    out, rows = _run(cli, "who", "--account", MOBILE, "--at", AT, "--format", "json")
    answer = json.loads(out)
    assert answer["at"] == "2026-05-06T10:00:00+08:00"
    assert answer["accounts"][0]["owner"]["employee_id"] == "E004"
    target = f"account={MOBILE} at 2026-05-06T10:00:00+08:00"
    assert _written(rows) == (actor(), "who", target, 1)
    _masked(out, MOBILE, "139****5678")


def test_accounts_are_audited_once_and_masked(cli: tuple[CliRunner, list[str], Path]) -> None:
    out, rows = _run(cli, "accounts", "--orphaned", "--at", AT, "--format", "json")
    orphaned = json.loads(out)
    assert {r["account"] for r in orphaned} == {"resigned_agent", "chen.jie", "139****5678"}
    assert _written(rows) == (actor(), "accounts", "orphaned", len(orphaned))
    _masked(out, MOBILE, "139****5678")

    out, rows = _run(cli, "accounts", "--format", "json")
    every = json.loads(out)
    assert _written(rows) == (actor(), "accounts", "all", len(every))
    _masked(out, MOBILE, "139****5678")


def test_status_is_audited_once(cli: tuple[CliRunner, list[str], Path]) -> None:
    """The store's status names no person: one row, no target, no row count."""
    out, rows = _run(cli, "status", "--format", "json")
    assert json.loads(out)["tables"]["findings"] > 0
    assert _written(rows) == (actor(), "status", None, None)


def test_audit_and_its_check_are_one_row(cli: tuple[CliRunner, list[str], Path]) -> None:
    _run(cli, "timeline", "E001", "--format", "json")
    out, rows = _run(cli, "audit", "--verify", "--limit", "2", "--format", "json")
    data = json.loads(out)
    assert len(data["entries"]) == 2
    assert data["entries"][0]["action"] == "timeline"  # read before its own row
    assert data["verified"]["broken_at"] is None
    assert data["verified"]["keyed_from"] is not None
    assert data["verified"]["rows"] == 2  # checked before its own row
    assert _written(rows) == (actor(), "audit", "verify", 2)

    out, rows = _run(cli, "audit", "--limit", "2", "--format", "json")
    assert json.loads(out)["verified"] is None
    assert _written(rows) == (actor(), "audit", None, 2)
