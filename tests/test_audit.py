"""The investigators' audit trail: every look is recorded, and the chain shows tampering."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from molehunt.audit import (
    GENESIS,
    KEYED_ACTION,
    _digest,
    configure,
    ensure_keyed,
    record,
    verify,
)
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
    ensure_keyed(store)  # what init does: an empty trail, keyed from row 1
    assert verify(store).broken_at is None
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


# -- keyed chain, exported head (issue 14) -------------------------------------------


def _recompute_unkeyed(store: Store) -> None:
    """What an attacker who can write the store but not read the audit key can do:
    recompute every hash with the plain SHA-256 of the old, unkeyed chain."""
    rows = store.con.execute(
        "SELECT seq, time, actor, action, target, rows FROM audit_log ORDER BY seq"
    ).fetchall()
    prev = GENESIS
    for seq, time, who, action, target, n in rows:
        digest = _digest(prev, seq, time, who, action, target, n)
        store.con.execute(
            "UPDATE audit_log SET prev_hash = ?, hash = ? WHERE seq = ?", [prev, digest, seq]
        )
        prev = digest


def test_an_edited_row_with_a_recomputed_unkeyed_chain_is_caught(store: Store) -> None:
    _filled(store, 5)
    assert verify(store).keyed_from == 1
    store.con.execute("UPDATE audit_log SET target = 'E999' WHERE seq = 3")
    _recompute_unkeyed(store)
    checked = verify(store)
    assert checked.broken_at == 1  # the first keyed row no longer follows
    assert checked.reason == "its hash does not match its fields"


def test_a_deleted_tail_is_caught_by_the_exported_head(store: Store) -> None:
    _filled(store, 6)
    head_file = Path(store.path + ".audit.head")
    heads = [json.loads(line) for line in head_file.read_text().splitlines()]
    assert [h["seq"] for h in heads] == [1, 2, 3, 4, 5, 6]  # one line per append
    assert heads[-1]["hash"] == verify(store).head
    store.con.execute("DELETE FROM audit_log WHERE seq >= 5")
    checked = verify(store)
    assert checked.broken_at == 5
    assert checked.reason is not None
    assert "exported head at 6" in checked.reason


def test_a_rewritten_last_row_differs_from_its_exported_head(store: Store) -> None:
    _filled(store, 3)
    store.con.execute("UPDATE audit_log SET hash = ? WHERE seq = 3", ["f" * 64])
    assert verify(store).broken_at == 3


def test_the_audit_key_is_kept_apart_from_the_store_and_private(store: Store) -> None:
    _filled(store, 1)
    key_file = Path(store.path + ".audit.key")
    assert key_file.stat().st_mode & 0o777 == 0o600
    key = bytes.fromhex(key_file.read_text().strip())
    assert key.hex() not in Path(store.path).read_bytes().hex()
    key_file.unlink()
    checked = verify(store)
    assert checked.broken_at == 1
    assert checked.reason is not None
    assert "missing" in checked.reason


def test_an_unkeyed_chain_is_verified_the_old_way_then_keyed_from_a_marked_row(
    store: Store,
) -> None:
    # A trail written before keyed chains: plain SHA-256, no audit key, no marker.
    prev = GENESIS
    for seq in (1, 2, 3):
        when = datetime(2026, 4, 1, 9, seq, tzinfo=UTC)
        digest = _digest(prev, seq, when, "old", "risk", None, seq)
        store.con.execute(
            "INSERT INTO audit_log VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [seq, when, "old", "risk", None, seq, prev, digest],
        )
        prev = digest
    store.con.execute("DELETE FROM store_meta WHERE name = 'audit_keyed_from'")
    Path(store.path + ".audit.key").unlink(missing_ok=True)
    record(store, "timeline", "E001", 1, who="inv")
    trail = store.query("SELECT seq, actor, action FROM audit_log ORDER BY seq")
    assert [(r["seq"], r["action"]) for r in trail][2:] == [
        (3, "risk"),
        (4, KEYED_ACTION),
        (5, "timeline"),
    ]
    checked = verify(store)
    assert (checked.broken_at, checked.keyed_from, checked.rows) == (None, 4, 5)
    # Editing an old (unkeyed) row and recomputing the whole chain unkeyed is caught
    # where the keyed part starts.
    store.con.execute("UPDATE audit_log SET rows = 0 WHERE seq = 2")
    _recompute_unkeyed(store)
    assert verify(store).broken_at == 4


def test_heads_go_to_syslog_when_configured(store: Store) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
        sink.bind(("127.0.0.1", 0))
        sink.settimeout(5)
        configure(syslog=f"127.0.0.1:{sink.getsockname()[1]}")
        try:
            seq = record(store, "risk", None, 3, who="inv")
            message = sink.recv(4096).decode()
        finally:
            configure()
    assert "molehunt-audit:" in message
    assert f'"seq": {seq}' in message
    assert verify(store).head in message


def test_a_head_file_shared_by_two_stores_checks_each_against_its_own(tmp_path: Path) -> None:
    configure(head_file=tmp_path / "heads.jsonl")
    try:
        with Store.open(tmp_path / "a.duckdb") as a, Store.open(tmp_path / "b.duckdb") as b:
            _filled(a, 4)
            _filled(b, 2)
            assert verify(a).broken_at is None
            assert verify(b).broken_at is None
            a.con.execute("DELETE FROM audit_log WHERE seq = 4")
            assert verify(a).broken_at == 4
            assert verify(b).broken_at is None
    finally:
        configure()
    lines = (tmp_path / "heads.jsonl").read_text().splitlines()
    assert len(lines) == 6
    assert not (tmp_path / "a.duckdb.audit.head").exists()
