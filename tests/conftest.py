from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from molehunt.config import Settings
from molehunt.keys import create_key_file
from molehunt.store import Store


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    key_file = tmp_path / "molehunt.key"
    create_key_file(key_file)
    return Settings.load(
        {"db": tmp_path / "molehunt.duckdb", "key_file": key_file}, environ={}, cwd=tmp_path
    )


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    with Store.open(settings.db) as opened:
        yield opened


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """A CLI runner in ``tmp_path`` with no MOLEHUNT_* setting from the environment."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("MOLEHUNT_"):
            monkeypatch.delenv(name)
    return CliRunner()


_EXIT: list[int] = []


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _EXIT.append(int(exitstatus))


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """Leave at once, with pytest's own exit status, when daemon threads are still alive
    (a web server's or watch round's, inside DuckDB's C++ code): at interpreter exit the
    runtime kills them mid-call and the process aborts ("FATAL: exception not rethrown")
    after every test has passed and the summary is printed, which made CI fail by chance."""
    alive = [t for t in threading.enumerate() if t is not threading.main_thread() and t.daemon]
    if alive and _EXIT:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_EXIT[-1])
