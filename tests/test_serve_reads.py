"""Issue 14 item 7: the command line's read verbs while ``molehunt serve`` holds the
store, with a real server in a subprocess and the command run as users run it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
from insurer import borrowed_store

from molehunt.audit import actor, entries
from molehunt.config import Settings
from molehunt.investigate.local import (
    TOKEN_HEADER,
    endpoint_file,
    live_endpoint,
    loopback_for,
    remove_endpoint,
    write_endpoint,
)
from molehunt.store import Store

ROOT = Path(__file__).resolve().parents[1]
AS_OF = "2026-05-09"


@dataclass
class Served:
    settings: Settings
    base: list[str]
    port: int

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``molehunt --db ... ARGS`` in a fresh process, as a user types it."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("MOLEHUNT_")}
        env.update(PYTHONPATH=str(ROOT), COLUMNS="160", NO_COLOR="1", TERM="dumb")
        return subprocess.run(
            [sys.executable, "-m", "molehunt.cli", *self.base, *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            cwd=self.settings.db.parent,
        )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The store the tests here serve, ingested and detected once; each test gets a copy."""
    return borrowed_store(tmp_path_factory.mktemp("serve-reads"), date.fromisoformat(AS_OF))


@pytest.fixture
def served(built: Settings, tmp_path: Path) -> Served:
    """A copy of the :func:`built` store (with the files beside it: its audit chain's
    key, and the key file) of this test's own."""
    for made in (*built.db.parent.glob(built.db.name + "*"), built.key_file):
        shutil.copy(made, tmp_path / made.name)
    settings = Settings.load(
        {"db": tmp_path / built.db.name, "key_file": tmp_path / built.key_file.name},
        environ={},
        cwd=tmp_path,
    )
    base = ["--db", str(settings.db), "--key-file", str(settings.key_file)]
    return Served(settings, base, _free_port())


@pytest.fixture
def server(served: Served) -> Iterator[subprocess.Popen[bytes]]:
    """``molehunt serve`` on a loopback port, until the test ends."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "molehunt.cli", *served.base, "serve", "--port", str(served.port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=served.settings.db.parent,
    )
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{served.port}/healthz", timeout=5):
                break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise AssertionError(proc.stderr.read().decode() if proc.stderr else "") from None
            time.sleep(0.2)
    yield proc
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


READS = (
    ("risk", "--as-of", AS_OF),
    ("risk", "--as-of", AS_OF, "--format", "json"),
    ("risk", "--history", "--as-of", AS_OF, "--top", "1", "--format", "json"),
    ("timeline", "E001"),
    ("timeline", "E001", "--format", "json"),
    ("status",),
    ("status", "--format", "json"),
    ("who", "--account", "resigned_agent", "--at", "2026-05-06T10:00+08:00"),
    ("accounts", "--orphaned", "--at", "2026-05-06T10:00+08:00", "--format", "json"),
)


def test_read_verbs_answer_the_same_while_serve_runs(
    served: Served, request: pytest.FixtureRequest
) -> None:
    alone = [served.cli(*args) for args in READS]
    for args, done in zip(READS, alone, strict=True):
        assert done.returncode == 0, (args, done.stderr)
    assert "E001" in alone[0].stdout

    proc = request.getfixturevalue("server")
    endpoint = endpoint_file(served.settings.db)
    assert stat.S_IMODE(endpoint.stat().st_mode) == 0o600
    with_server = [served.cli(*args) for args in READS]
    for args, before, now in zip(READS, alone, with_server, strict=True):
        assert now.returncode == 0, (args, now.stderr)
        assert now.stdout == before.stdout, args

    # A write verb: the message, not DuckDB's lock text.
    detect = served.cli("detect", "--as-of", AS_OF)
    assert detect.returncode == 2
    assert "in use by `molehunt serve`" in detect.stderr
    assert "lock" not in detect.stderr.lower()

    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=60)
    assert not endpoint.exists()  # removed on exit
    with Store.open(served.settings.db) as store:
        rows = entries(store)
    through = [(r["action"], r["target"]) for r in rows if r["actor"] == f"cli:{actor()}"]
    assert ("risk", f"as of {AS_OF}") in through
    assert ("timeline", "E001") in through
    assert ("who", "account=resigned_agent at 2026-05-06T10:00:00+08:00") in through


def test_a_wrong_token_is_refused_and_audited(
    served: Served, server: subprocess.Popen[bytes]
) -> None:
    found = json.loads(endpoint_file(served.settings.db).read_text(encoding="utf-8"))
    assert found["pid"] == server.pid
    body = json.dumps({"verb": "risk", "ask": {"day": AS_OF}, "user": "mallory"}).encode()
    for token in ("x" * len(found["token"]), ""):
        ask = urllib.request.Request(
            f"http://127.0.0.1:{served.port}/local/cli",
            data=body,
            method="POST",
            headers={TOKEN_HEADER: token, "Content-Type": "application/json"},
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(ask, timeout=30)
        assert refused.value.code == 403
    audit = served.cli("audit", "--format", "json", "--limit", "10")
    assert audit.returncode == 0, audit.stderr
    rows = json.loads(audit.stdout)["entries"]
    refusals = [r for r in rows if r["action"] == "refused" and "wrong token" in r["target"]]
    assert len(refusals) == 2
    assert all("cli:mallory" in r["target"] for r in refusals)
    # The audit verb's own row (written after it read the trail), through the server.
    again = json.loads(served.cli("audit", "--format", "json", "--limit", "1").stdout)
    assert [(r["actor"], r["action"]) for r in again["entries"]] == [(f"cli:{actor()}", "audit")]


def test_a_stale_endpoint_file_is_ignored_and_removed(served: Served) -> None:
    endpoint = endpoint_file(served.settings.db)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    stale = {"pid": int(dead.stdout), "host": "127.0.0.1", "port": served.port, "token": "t"}
    endpoint.write_text(json.dumps(stale), encoding="utf-8")
    done = served.cli("risk", "--as-of", AS_OF, "--format", "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)[0]["person_id"] == "E001"
    assert not endpoint.exists()


def test_the_endpoint_file_is_private_and_removed_only_by_its_server(tmp_path: Path) -> None:
    db = tmp_path / "m.duckdb"
    token = write_endpoint(db, "127.0.0.1", 8123)
    path = endpoint_file(db)
    assert path.name == "m.duckdb.serve"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    written = json.loads(path.read_text(encoding="utf-8"))
    assert written == {"pid": os.getpid(), "host": "127.0.0.1", "port": 8123, "token": token}
    remove_endpoint(db, "another server's token")
    assert path.exists()
    assert live_endpoint(db) is None  # this process is alive, but nothing listens there
    assert path.exists()  # ... which may be a server starting: not removed
    remove_endpoint(db, token)
    assert not path.exists()


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("0.0.0.0", "127.0.0.1"),
        ("localhost", "127.0.0.1"),
        ("::", "::1"),
        ("10.1.2.3", None),  # one other address only: the CLI cannot reach it on loopback
    ],
)
def test_the_loopback_address_of_a_server(host: str, loopback: str | None) -> None:
    assert loopback_for(host) == loopback
