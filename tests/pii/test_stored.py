"""Scans of endpoint files kept in the store: once per content, counts and ids only."""

from __future__ import annotations

import csv
import os
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from molehunt.cli import app
from molehunt.pii.stored import host_path
from molehunt.store import Store
from molehunt.synthetic import make_people

PATHS = [
    ("/c/endpoint/WS-0042/C/Users/li/Desktop/a.xlsx", "C:\\Users\\li\\Desktop\\a.xlsx"),
    ("endpoint/WS-1/D/data/b.csv", "D:\\data\\b.csv"),
    ("/x/endpoint/srv-9/home/li/c.csv", "/home/li/c.csv"),
    ("/x/outside/WS-1/C/a.csv", None),
]


@pytest.mark.parametrize(("path", "expected"), PATHS)
def test_the_path_on_the_host_comes_from_the_collection_layout(
    path: str, expected: str | None
) -> None:
    assert host_path(path) == expected


def test_scanning_an_endpoint_folder_stores_each_file_once_without_values(
    run: CliRunner, tmp_path: Path
) -> None:
    people = make_people(np.random.default_rng(5), 12, date(2026, 5, 1))
    rows = list(zip(people.names, people.id_numbers, people.mobiles, strict=True))
    master = tmp_path / "clients.csv"
    with master.open("w", encoding="utf-8", newline="") as f:
        out = csv.writer(f)
        out.writerow(["client_id", "name", "id_number", "mobile"])
        out.writerows([f"C{i}", *row] for i, row in enumerate(rows))
    assert run.invoke(app, ["init"]).exit_code == 0
    assert run.invoke(app, ["ingest", str(master)]).exit_code == 0

    folder = tmp_path / "endpoint" / "WS-0042" / "C" / "Users" / "li" / "Desktop"
    folder.mkdir(parents=True)
    sheet = folder / "clients.csv"
    sheet.write_text(
        "姓名,身份证号,手机\n" + "".join(f"{n},{i},{m}\n" for n, i, m in rows[:10]),
        encoding="utf-8",
    )
    written = datetime(2026, 5, 6, 6, 30, tzinfo=UTC)
    os.utime(sheet, (written.timestamp(), written.timestamp()))
    (folder / "menu.txt").write_text("午餐 12 元", encoding="utf-8")

    first = run.invoke(app, ["scan", str(tmp_path / "endpoint")])
    assert first.exit_code == 0, first.output
    assert "stored 2 new file scan(s)" in first.output
    again = run.invoke(app, ["scan", str(tmp_path / "endpoint")])
    assert "stored 0 new file scan(s)" in again.output

    with Store.open(tmp_path / "molehunt.duckdb") as store:
        scans = store.query(
            "SELECT host, host_path, verdict, client_records, time, event_id "
            "FROM events_scan ORDER BY host_path"
        )
        clients = store.query("SELECT client_id FROM file_clients ORDER BY client_id")
    assert [(s["host"], s["host_path"], s["verdict"], s["client_records"]) for s in scans] == [
        ("WS-0042", "C:\\Users\\li\\Desktop\\clients.csv", "bulk-client-data", 10),
        ("WS-0042", "C:\\Users\\li\\Desktop\\menu.txt", "clean", 0),
    ]
    assert scans[0]["time"] == written
    assert sorted(c["client_id"] for c in clients) == sorted(f"C{i}" for i in range(10))

    # A changed file is a new event; the old content stays on record.
    with sheet.open("a", encoding="utf-8") as f:
        n, i, m = rows[10]
        f.write(f"{n},{i},{m}\n")
    assert "stored 1 new file scan(s)" in run.invoke(app, ["scan", str(sheet)]).output

    data = (tmp_path / "molehunt.duckdb").read_bytes()
    for name, id_number, mobile in rows:
        for value in (name, id_number, mobile):
            assert value.encode() not in data


def test_files_of_no_known_host_are_not_stored(run: CliRunner, tmp_path: Path) -> None:
    assert run.invoke(app, ["init"]).exit_code == 0
    assert (tmp_path / "molehunt.duckdb").exists()
    loose = tmp_path / "found.txt"
    loose.write_text("手机：13800138000", encoding="utf-8")
    result = run.invoke(app, ["scan", str(loose)])
    assert result.exit_code == 0, result.output
    assert "stored" not in result.output
