"""``molehunt attribute``, ``complaints`` and ``canary plant`` from the command line."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from molehunt.cli import app
from molehunt.simulate import params_for, simulate

KEYS = {"records_in_file", "client_records", "non_client_rows", "damaged", "suspects", "files"}
SUSPECT_KEYS = {
    "group",
    "rank",
    "person_id",
    "name",
    "accounts",
    "hosts",
    "covered",
    "coverage",
    "first_read",
    "last_read",
    "score",
    "bits",
    "explanation",
    "evidence",
}


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("attribute-cli")
    simulate(folder / "sim", params_for("tiny", None, seed=1, days=5))
    return folder


def _run(sim: Path, *args: str) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOLEHUNT_")}
    common = ["--db", str(sim / "m.duckdb"), "--key-file", str(sim / "m.key")]
    result = CliRunner().invoke(app, [*common, *args], env=env)
    return result.exit_code, result.output


def test_attribute_complaints_and_canary_from_the_command_line(sim: Path) -> None:
    assert _run(sim, "init")[0] == 0
    code, output = _run(sim, "ingest", str(sim / "sim" / "reference"), str(sim / "sim" / "logs"))
    assert code == 0, output
    truth = json.loads((sim / "sim" / "truth.json").read_text(encoding="utf-8"))
    slow = next(s for s in truth["scenarios"] if s["kind"] == "low_and_slow")
    forum, complaints = (
        next(f for f in slow["leaked_files"] if word in f) for word in ("forum", "complaint")
    )

    code, output = _run(sim, "attribute", str(sim / "sim" / forum), "--format", "json")
    assert code == 0, output
    report = json.loads(output)
    assert set(report) == KEYS
    assert set(report["suspects"][0]) == SUSPECT_KEYS
    assert report["suspects"][0]["person_id"] == slow["people"][0]

    code, output = _run(sim, "complaints", str(sim / "sim" / complaints), "-f", "json")
    assert code == 0, output
    assert json.loads(output)["suspects"][0]["person_id"] == slow["people"][0]

    code, output = _run(sim, "attribute", str(sim / "sim" / forum))
    assert code == 0, output
    assert slow["people"][0] in output

    code, output = _run(sim, "canary", "plant", "--count", "3", "--out", str(sim / "c.csv"))
    assert code == 0, output
    assert (sim / "c.sql").read_text(encoding="utf-8").startswith("INSERT INTO clients")
    assert len((sim / "c.csv").read_text(encoding="utf-8").splitlines()) == 4


def test_a_missing_file_is_a_clear_error(sim: Path) -> None:
    code, output = _run(sim, "attribute", str(sim / "nowhere.xlsx"))
    assert code != 0
    assert "no such file" in output


def test_scanned_endpoint_files_holding_the_leak_are_printed(sim: Path) -> None:
    _run(sim, "init")  # the module's first test may have done it already
    code, output = _run(sim, "ingest", str(sim / "sim" / "reference"), str(sim / "sim" / "logs"))
    assert code == 0, output
    code, output = _run(sim, "scan", str(sim / "sim" / "endpoint"))
    assert code == 0, output
    assert "new file scan(s)" in output
    truth = json.loads((sim / "sim" / "truth.json").read_text(encoding="utf-8"))
    dump = next(s for s in truth["scenarios"] if s["kind"] == "privileged_dump")
    code, output = _run(sim, "attribute", str(sim / "sim" / dump["leaked_files"][0]))
    assert code == 0, output
    assert "Files found on endpoints holding leaked records" in output
    assert Path(dump["endpoint_files"][0]).parts[1] in output  # the DBA's host
