"""Exact data match against a client master ingested into a real store."""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

import numpy as np
import openpyxl
import pytest

from molehunt.config import Settings
from molehunt.ingest.runner import ingest_paths
from molehunt.keys import load_key
from molehunt.pii.edm import ClientIndex
from molehunt.pii.scan import scan_paths
from molehunt.store import Store
from molehunt.synthetic import make_people

AS_OF = date(2026, 5, 1)


@pytest.fixture
def people() -> list[tuple[str, str, str, str, str]]:
    made = make_people(np.random.default_rng(5), 40, AS_OF)
    return [
        (f"C{i:05d}", made.names[i], made.id_numbers[i], made.mobiles[i], made.addresses[i])
        for i in range(40)
    ]


@pytest.fixture
def index(
    tmp_path: Path, settings: Settings, store: Store, people: list[tuple[str, str, str, str, str]]
) -> ClientIndex:
    master = tmp_path / "clients.csv"
    with master.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["client_id", "name", "id_number", "mobile", "address", "branch"])
        writer.writerows([*row, "SH"] for row in people[:30])  # the last 10 are no clients
    report = ingest_paths(store, settings, [master])
    assert not any(f.error for f in report.files)
    return ClientIndex.from_store(store)


def _xlsx(path: Path, rows: list[list[object]]) -> Path:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path


def test_client_rows_are_matched_and_corroborated(
    tmp_path: Path, settings: Settings, index: ClientIndex, people: list[tuple[str, ...]]
) -> None:
    clients, strangers = people[:12], people[30:36]
    rows: list[list[object]] = [["姓名", "身份证号", "手机", "地址"]]
    rows += [[name, id_no, int(mobile), address] for _cid, name, id_no, mobile, address in clients]
    rows += [
        [name, id_no, int(mobile), address] for _cid, name, id_no, mobile, address in strangers
    ]
    # A client's ID number alone, with someone else's name and phone: not corroborated.
    lone = people[20]
    rows.append([strangers[0][1], lone[2], int(strangers[0][3]), ""])
    # A client's mobile with the client's name: the mobile is primary, the name agrees.
    by_mobile = people[21]
    rows.append([by_mobile[1], "", int(by_mobile[3]), ""])
    path = _xlsx(tmp_path / "export.xlsx", rows)

    (report,) = scan_paths([path], key=load_key(settings), clients=index)
    assert report.client_records == 13
    assert report.client_ids == sorted([c[0] for c in clients] + [by_mobile[0]])
    assert report.verdict == "bulk-client-data"
    assert report.findings["china_resident_id"] == 19


def test_text_lines_are_records_too(
    tmp_path: Path, settings: Settings, index: ClientIndex, people: list[tuple[str, ...]]
) -> None:
    lines = [f"客户 身份证号 {p[2]} 手机 {p[3]}" for p in people[:3]]
    lines.append(f"身份证号 {people[4][2]}")  # no second field on its line
    path = tmp_path / "notes.txt"
    path.write_text("\n".join(lines), encoding="utf-8")
    (report,) = scan_paths([path], key=load_key(settings), clients=index)
    assert report.client_records == 3
    assert report.client_ids == sorted(p[0] for p in people[:3])
    assert report.verdict == "personal-data"


def test_without_a_client_master_nothing_matches(
    tmp_path: Path, settings: Settings, store: Store, people: list[tuple[str, ...]]
) -> None:
    path = tmp_path / "notes.txt"
    path.write_text(f"身份证号 {people[0][2]} 手机 {people[0][3]}", encoding="utf-8")
    empty = ClientIndex.from_store(store)
    assert len(empty) == 0
    (report,) = scan_paths([path], key=load_key(settings), clients=empty)
    assert report.client_records == 0
    assert report.findings == {"china_mobile": 1, "china_resident_id": 1}
