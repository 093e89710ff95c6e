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


#: Test files that take a minute or more, longest first. Under pytest-xdist (``make test``
#: runs two workers, each taking whole files) they start before the rest, so that no
#: worker is left running one of them alone at the end while the other idles.
SLOW_FILES = (
    "tests/detect/test_spark.py",
    "tests/attribute/test_spark.py",
    "tests/ingest/test_runner_pool.py",
    "tests/ingest/test_lake.py",
    "tests/attribute/test_overlap.py",
    "tests/ingest/test_squid_cut.py",
    "tests/ingest/test_runner.py",
    "tests/web/test_browser.py",
    "tests/test_serve_reads.py",
    "tests/web/test_security.py",
    "tests/ingest/test_squid_native.py",
    "tests/web/test_openapi_fuzz.py",
    "tests/ingest/test_pgaudit.py",
    "tests/ingest/test_squid.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under xdist, put the :data:`SLOW_FILES` first (in that order); the rest keep theirs."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return
    rank = {name: n for n, name in enumerate(SLOW_FILES)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))


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
