from __future__ import annotations

import json
import stat
from pathlib import Path

from typer.testing import CliRunner

from molehunt.cli import app
from molehunt.store import MIGRATIONS

HR = (
    "employee_id,name,department,title,role,manager_id,hire_date,notice_date,termination_date\n"
    "E002,李娜,sales,Sales rep,sales,E010,2019-03-01,2026-03-15,2026-04-15\n"
    "E003,Bad,sales,x,sales,,2020-02-30,,\n"
)
ACCOUNTS = (
    "account,system,owner_employee_id,kind,created,disabled\nli_na,crm-db,E002,human,2019-03-01,\n"
)


def test_help_lists_every_verb_with_one_line(run: CliRunner) -> None:
    result = run.invoke(app, ["--help"])
    assert result.exit_code == 0
    for verb in ("init", "ingest", "status", "who", "accounts", "demo", "version"):
        assert verb in result.output


def test_init_creates_store_and_a_private_key_file(run: CliRunner, tmp_path: Path) -> None:
    result = run.invoke(app, ["init"])
    assert result.exit_code == 0, result.output
    # Beside the store, not in the working directory; and the store's other keys.
    for name in ("molehunt.duckdb.key", "molehunt.duckdb.audit.key", "molehunt.duckdb.sign.key"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600
    assert (tmp_path / "molehunt.duckdb").exists()
    again = run.invoke(app, ["init"])
    assert "kept" in again.output


def test_ingest_json_report_status_and_orphaned_accounts(run: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "hr.csv").write_text(HR, encoding="utf-8")
    (tmp_path / "accounts.csv").write_text(ACCOUNTS, encoding="utf-8")
    db = str(tmp_path / "other.duckdb")
    result = run.invoke(app, ["--db", db, "ingest", "hr.csv", "accounts.csv", "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report == {
        "files": [
            {"path": "hr.csv", "kind": "hr", "stored": 1, "rejected": 1},
            {"path": "accounts.csv", "kind": "accounts", "stored": 1, "rejected": 0},
        ],
        "stored": 2,
        "rejected": 1,
    }
    status = json.loads(run.invoke(app, ["--db", db, "status", "--format", "json"]).output)
    assert status["schema_version"] == max(m.version for m in MIGRATIONS)
    assert status["tables"]["ref_hr"] == 1
    assert status["quarantined"] == 1
    assert {s["kind"] for s in status["sources"]} == {"hr", "accounts"}
    orphaned = run.invoke(
        app, ["--db", db, "accounts", "--orphaned", "--at", "2026-05-01", "--format", "json"]
    )
    rows = json.loads(orphaned.output)
    assert [(r["account"], r["name"]) for r in rows] == [("li_na", "李娜")]
    who = run.invoke(
        app,
        ["--db", db, "who", "--account", "li_na", "--at", "2026-05-01T09:00", "--format", "json"],
    )
    answer = json.loads(who.output)
    assert answer["accounts"][0]["owner"]["status"] == "departed"


def test_unknown_kind_and_missing_files_are_clear_errors(run: CliRunner, tmp_path: Path) -> None:
    result = run.invoke(app, ["ingest", "--kind", "nonsense", "x.csv"])
    assert result.exit_code != 0
    assert "unknown kind" in result.output
    missing = run.invoke(app, ["ingest", "nowhere.csv"])
    assert missing.exit_code != 0
    assert "no such file" in missing.output


def test_who_needs_exactly_one_subject(run: CliRunner) -> None:
    result = run.invoke(app, ["who", "--ip", "10.0.0.1", "--account", "x"])
    assert result.exit_code != 0
    assert "exactly one of" in result.output


# A prefix with no date: nothing to read a time off, so the log is refused whole
# (one whose prefix merely differs from the configured one is read, its prefix inferred).
PG_OTHER_PREFIX = (
    "[5725] 12:30:14 alice LOG:  "
    "AUDIT: SESSION,1,1,DDL,CREATE TABLE,,,CREATE TABLE t(x int),<not logged>\n"
)


def test_a_mismatched_log_is_refused_and_the_quarantine_is_listed_and_replayed(
    run: CliRunner, tmp_path: Path
) -> None:
    (tmp_path / "pg.log").write_text(PG_OTHER_PREFIX * 5, encoding="utf-8")
    refused = run.invoke(app, ["ingest", "pg.log", "--kind", "pg-stderr", "--format", "json"])
    assert refused.exit_code == 1
    report = json.loads(refused.stdout)
    assert report["refused"] == 1
    assert report["files"][0]["refused"] is True
    assert "pg_log_line_prefix" in report["files"][0]["error"]

    good = '{"ts": "2026-05-03T09:00:00+08:00", "app": "crm", "user": "u", "action": "view"}\n'
    (tmp_path / "crm.log").write_text(good + "not json 13800138000\n" + good, encoding="utf-8")
    result = run.invoke(app, ["ingest", "crm.log", "--kind", "app-access", "--format", "json"])
    assert result.exit_code == 0, result.output
    listed = run.invoke(app, ["quarantine", "list", "--format", "json"])
    assert listed.exit_code == 0, listed.output
    (row,) = json.loads(listed.stdout)
    assert (row["offset"], row["length"]) == (len(good), len("not json 13800138000\n"))
    assert "13800138000" not in row["preview"]  # previews are masked
    assert (
        json.loads(run.invoke(app, ["quarantine", "list", "--reason", "nope", "-f", "json"]).stdout)
        == []
    )
    replayed = run.invoke(app, ["quarantine", "replay", "--format", "json"])
    assert replayed.exit_code == 0, replayed.output
    answer = json.loads(replayed.stdout)
    assert (answer["replayed"], answer["stored"], answer["still_rejected"]) == (1, 0, 1)
    table = run.invoke(app, ["quarantine", "replay", "--kind", "app-access"])
    assert "still rejected" in table.output
    trail = json.loads(run.invoke(app, ["audit", "--format", "json"]).stdout)
    actions = [(r["action"], r["target"]) for r in trail["entries"]]
    assert ("quarantine replay", "kind=app-access") in actions
    assert ("quarantine list", None) in actions


def test_status_shows_checkpoints_and_why_bytes_are_pending(run: CliRunner, tmp_path: Path) -> None:
    good = '{"ts": "2026-05-03T09:00:00+08:00", "app": "crm", "user": "u", "action": "view"}\n'
    (tmp_path / "crm.log").write_text(good + good.rstrip("\n"), encoding="utf-8")
    assert run.invoke(app, ["ingest", "crm.log", "--kind", "app-access"]).exit_code == 0
    status = json.loads(run.invoke(app, ["status", "--format", "json"]).stdout)
    (source,) = status["sources"]
    assert (source["checkpoint"], source["offset"]) == ("byte", len(good))
    assert source["pending_bytes"] == len(good) - 1
    assert source["pending_reason"].startswith("unfinished last record")
    table = run.invoke(app, ["status"])
    assert "unfinished" in table.output  # why pending, in the sources table


def test_quarantine_list_and_replay(run: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "hr.csv").write_text(HR, encoding="utf-8")
    assert run.invoke(app, ["ingest", "hr.csv"]).exit_code == 0
    listed = run.invoke(app, ["quarantine", "list", "--format", "json"])
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.output)
    assert [(r["kind"], r["path"]) for r in rows] == [("hr", "hr.csv")]
    table = run.invoke(app, ["quarantine", "list", "--kind", "hr"])
    assert "1 record(s) shown" in table.output
    replayed = run.invoke(app, ["quarantine", "replay", "--format", "json"])
    assert replayed.exit_code == 0, replayed.output
    assert json.loads(replayed.output)["replayed"] == 1  # read whole: not replayable
    assert json.loads(replayed.output)["not_replayable"] == 1
