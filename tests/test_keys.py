"""The store remembers its key: a wrong key is refused, init never makes a new one,
keys live beside the store, and the store and its keys are private (issue 14)."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from molehunt.cli import app
from molehunt.keys import KeyMismatchError, check_store_key, create_key_file, fingerprint
from molehunt.store import Store

CLIENTS = (
    "client_id,name,id_number,mobile,address,city,branch\n"
    "C001,王小明,110101199003071234,13800138000,上海市浦东新区世纪大道1号,Shanghai,SH01\n"
    "C002,陈静,31010119850101002X,13900139000,上海市徐汇区漕溪北路88号,Shanghai,SH02\n"
)


def _set_up(run: CliRunner, tmp_path: Path) -> Path:
    result = run.invoke(app, ["init"])
    assert result.exit_code == 0, result.output
    (tmp_path / "clients.csv").write_text(CLIENTS, encoding="utf-8")
    result = run.invoke(app, ["ingest", "clients.csv", "--kind", "clients"])
    assert result.exit_code == 0, result.output
    other = tmp_path / "other.key"
    create_key_file(other)
    return other


@pytest.mark.parametrize("verb", ["attribute", "complaints", "scan"])
def test_every_verb_that_hashes_refuses_another_key(
    run: CliRunner, tmp_path: Path, verb: str
) -> None:
    other = _set_up(run, tmp_path)
    leaked = tmp_path / "leak.csv"
    leaked.write_text("姓名,手机\n王小明,13800138000\n陈静,13900139000\n", encoding="utf-8")
    right = run.invoke(app, [verb, str(leaked)])
    assert right.exit_code == 0, right.output
    wrong = run.invoke(app, ["--key-file", str(other), verb, str(leaked)])
    assert wrong.exit_code != 0
    assert isinstance(wrong.exception, KeyMismatchError)
    assert "this key is not the store's key" in str(wrong.exception)


def test_ingesting_clients_and_planting_canaries_refuse_another_key(
    run: CliRunner, tmp_path: Path
) -> None:
    other = _set_up(run, tmp_path)
    again = run.invoke(
        app, ["--key-file", str(other), "ingest", "clients.csv", "--kind", "clients"]
    )
    assert again.exit_code == 1
    assert "this key is not the store's key" in again.output
    plant = run.invoke(app, ["--key-file", str(other), "canary", "plant", "--count", "1"])
    assert isinstance(plant.exception, KeyMismatchError)
    assert not (tmp_path / "canaries.csv").exists()


def test_the_key_defaults_to_beside_the_store_not_the_working_directory(
    run: CliRunner, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "cases" / "m.duckdb"
    elsewhere.parent.mkdir()
    result = run.invoke(app, ["--db", str(elsewhere), "init"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "cases" / "m.duckdb.key").exists()
    assert not (tmp_path / "molehunt.key").exists()
    assert not (tmp_path / "molehunt.duckdb.key").exists()


def test_init_on_an_existing_store_never_makes_a_new_key(run: CliRunner, tmp_path: Path) -> None:
    assert run.invoke(app, ["init"]).exit_code == 0
    key = tmp_path / "molehunt.duckdb.key"
    before = key.read_text()
    kept = run.invoke(app, ["init"])
    assert kept.exit_code == 0
    assert key.read_text() == before
    key.rename(tmp_path / "moved.key")
    refused = run.invoke(app, ["init"])
    assert refused.exit_code == 2
    assert "never makes a new key" in refused.output
    assert not key.exists()
    # With the key named where it now is, init is content again.
    named = run.invoke(app, ["--key-file", str(tmp_path / "moved.key"), "init"])
    assert named.exit_code == 0, named.output


def test_a_store_without_a_fingerprint_records_the_first_key_used_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    key, other = b"k" * 32, b"o" * 32
    with Store.open(tmp_path / "old.duckdb") as store:
        note = check_store_key(store, key)
        assert caplog.messages == [note]
        assert note is not None
        assert "had no key fingerprint" in note
        recorded = store.query("SELECT action, target FROM audit_log")
        assert recorded == [
            {"action": "key fingerprint", "target": f"recorded {fingerprint(key)[:12]}"}
        ]
        assert check_store_key(store, key) is None
        with pytest.raises(KeyMismatchError, match="not the store's key"):
            check_store_key(store, other)
        # The store holds the fingerprint, never the key.
    data = (tmp_path / "old.duckdb").read_bytes()
    assert key not in data
    assert key.hex().encode() not in data


_MODES = """
import os, stat, sys
from pathlib import Path
os.umask(0)
from molehunt.store import Store
from molehunt.keys import create_key_file
db = Path(sys.argv[1])
with Store.open(db) as store:
    store.con.execute("CREATE TABLE t AS SELECT range AS x FROM range(1000)")
    wal = Path(str(db) + ".wal")
    print(oct(stat.S_IMODE(db.stat().st_mode)), oct(stat.S_IMODE(wal.stat().st_mode)))
create_key_file(db.with_name("k.key"))
print(oct(stat.S_IMODE(db.with_name("k.key").stat().st_mode)))
"""


def test_the_store_its_log_and_key_files_are_private_even_under_umask_000(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _MODES, str(tmp_path / "s.duckdb")],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    assert done.stdout.split() == ["0o600", "0o600", "0o600"]
    assert stat.S_IMODE((tmp_path / "s.duckdb").stat().st_mode) == 0o600
