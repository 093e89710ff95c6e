"""Helpers shared by the tests: real components or a clear reason why not."""

from __future__ import annotations

import json
import os
import shutil
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from molehunt.config import Settings
from molehunt.store import Store

REPO = Path(__file__).resolve().parents[1]
SHARED_FIXTURES = REPO.parent / "shared" / "fixtures"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def require_binary(path: str, package: str) -> Path:
    """The binary at ``path`` (or on PATH); skip the test naming the Debian package
    when it is missing, except under ``CI=true`` where a missing package is a failure."""
    found = Path(path) if Path(path).exists() else None
    if found is None and "/" not in path:
        which = shutil.which(path)
        found = Path(which) if which else None
    if found is None:
        reason = f"{path} not found: install the Debian package {package} (make test does, as root)"
        if in_ci():
            pytest.fail(reason + " — under CI=true nothing may be skipped for a missing package")
        pytest.skip(reason)
    return found


def shared_fixtures(*parts: str) -> Path:
    """A file under ../shared/fixtures, or skip: a user's clone has no ../shared."""
    path = SHARED_FIXTURES.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} absent: the shared fixtures live beside the repo only in CI/dev")
    return path


def simulated_store(folder: Path, preset: str, seed: int) -> tuple[Settings, date]:
    """A simulated insurer written under ``folder/sim`` and ingested through the real
    path into ``folder/molehunt.duckdb`` (with its key file): the settings that open
    it and the simulation's last day. Nothing may be rejected."""
    from molehunt.ingest.runner import ingest_paths
    from molehunt.keys import create_key_file
    from molehunt.simulate import params_for, simulate
    from molehunt.store import Store

    sim = folder / "sim"
    simulate(sim, params_for(preset, None, seed=seed))
    truth = json.loads((sim / "truth.json").read_text(encoding="utf-8"))
    key_file = folder / "molehunt.key"
    create_key_file(key_file)
    settings = Settings.load(
        {"db": folder / "molehunt.duckdb", "key_file": key_file}, environ={}, cwd=folder
    )
    with Store.open(settings.db) as store:
        report = ingest_paths(store, settings, [sim / "reference", sim / "logs"])
    assert report.rejected == 0
    return settings, date.fromisoformat(truth["period"]["end"])


def stored_attribution(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of what attribution stores (its tables and the replayed record-level
    rows), in a stable order: to hold one way of building them to another."""
    tables = {
        "attr_reads": "SELECT * FROM attr_reads",
        "attr_readers": "SELECT * FROM attr_readers",
        "attr_links": "SELECT * FROM attr_links",
        "attr_refused": "SELECT * FROM attr_refused",
        "replayed": "SELECT * FROM record_access WHERE how = 'replayed'",
    }
    return {
        name: sorted(store.con.execute(sql).fetchall(), key=repr) for name, sql in tables.items()
    }
