"""The investigators' audit trail: every look is recorded, and the chain shows tampering."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from molehunt.audit import GENESIS, record, verify
from molehunt.cli import app
from molehunt.store import Store

ACCOUNTS = (
    "account,system,owner_employee_id,kind,created,disabled\nli_na,crm-db,E002,human,2019-03-01,\n"
)


def _filled(store: Store, n: int) -> None:
    for i in range(n):
        record(
            store, "timeline", f"E{i:03d}", i, who="inv", now=datetime(2026, 5, 1, 9, i, tzinfo=UTC)
        )


def test_an_untouched_chain_verifies_and_names_its_head(store: Store) -> None:
    assert verify(store).head == GENESIS
    _filled(store, 5)
    checked = verify(store)
    assert (checked.rows, checked.broken_at) == (5, None)
    assert checked.head == store.query("SELECT hash FROM audit_log WHERE seq = 5")[0]["hash"]


TAMPERING = [
    ("UPDATE audit_log SET rows = 999 WHERE seq = 3", 3),
    ("UPDATE audit_log SET target = 'E999' WHERE seq = 2", 2),
    ("UPDATE audit_log SET actor = 'someone else' WHERE seq = 5", 5),
    ("DELETE FROM audit_log WHERE seq = 4", 5),
]


@pytest.mark.parametrize(("sql", "broken_at"), TAMPERING)
def test_a_changed_or_removed_row_breaks_the_chain_there(
    store: Store, sql: str, broken_at: int
) -> None:
    _filled(store, 6)
    store.con.execute(sql)
    assert verify(store).broken_at == broken_at


def test_the_cli_records_each_look_and_verifies(run: CliRunner, tmp_path: Path) -> None:
    assert run.invoke(app, ["init"]).exit_code == 0
    (tmp_path / "accounts.csv").write_text(ACCOUNTS, encoding="utf-8")
    assert run.invoke(app, ["ingest", "accounts.csv"]).exit_code == 0
    assert run.invoke(app, ["who", "--account", "li_na"]).exit_code == 0
    assert run.invoke(app, ["timeline", "E002"]).exit_code == 0
    assert run.invoke(app, ["accounts", "--orphaned"]).exit_code == 0
    leaked = tmp_path / "张三的客户.csv"
    leaked.write_text("姓名,手机\n张三,13800138000\n", encoding="utf-8")
    assert run.invoke(app, ["complaints", str(leaked)]).exit_code == 0

    result = run.invoke(app, ["audit", "--verify", "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    actions = [e["action"] for e in reversed(report["entries"])]
    assert actions == ["who", "timeline", "accounts", "complaints"]
    targets = {e["action"]: e["target"] for e in report["entries"]}
    assert targets["timeline"] == "E002"
    assert targets["who"].startswith("account=li_na at ")
    # A file is named by its content: its name may hold personal data.
    assert targets["complaints"].startswith("file sha256:")
    assert "张三" not in json.dumps(report, ensure_ascii=False)
    assert report["verified"]["broken_at"] is None
    assert report["verified"]["rows"] == 4  # the audit verb itself is recorded after

    with Store.open(tmp_path / "molehunt.duckdb") as store:
        store.con.execute("UPDATE audit_log SET rows = 99 WHERE action = 'timeline'")
    broken = run.invoke(app, ["audit", "--verify"])
    assert broken.exit_code == 1
    assert "chain broken at row 2" in broken.output
