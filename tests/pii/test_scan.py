"""``molehunt scan``: output shape, verdicts, masked details, endpoint hosts, uploads."""

from __future__ import annotations

import csv
import json
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from molehunt.cli import app
from molehunt.pii.scan import VERDICTS, host_of, scan_paths, scan_upload
from molehunt.synthetic import make_people

KEYS = {"path", "host", "kind", "findings", "client_records", "client_ids", "verdict", "errors"}


def test_scan_prints_the_issue_json_with_masked_details_only(
    run: CliRunner, tmp_path: Path
) -> None:
    people = make_people(np.random.default_rng(3), 15, date(2026, 5, 1))
    rows = list(zip(people.names, people.id_numbers, people.mobiles, people.addresses, strict=True))
    master = tmp_path / "clients.csv"
    with master.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["client_id", "name", "id_number", "mobile", "address"])
        writer.writerows([f"C{i}", *row] for i, row in enumerate(rows))
    assert run.invoke(app, ["init"]).exit_code == 0
    assert run.invoke(app, ["ingest", str(master)]).exit_code == 0

    host_dir = tmp_path / "endpoint" / "PC-SH-0042" / "Users" / "li" / "Desktop"
    host_dir.mkdir(parents=True)
    leaked = host_dir / "list.csv"
    leaked.write_text(
        "姓名,身份证号,手机\n" + "".join(f"{n},{i},{m}\n" for n, i, m, _a in rows),
        encoding="utf-8",
    )
    clean = host_dir / "menu.txt"
    clean.write_text("午餐 12 元", encoding="utf-8")
    broken = host_dir / "broken.xlsx"
    broken.write_bytes(b"not a workbook")

    result = run.invoke(app, ["scan", str(tmp_path / "endpoint"), "--format", "json", "--detail"])
    assert result.exit_code == 0, result.output
    reports = {Path(r["path"]).name: r for r in json.loads(result.stdout)}
    assert set(reports) == {"list.csv", "menu.txt", "broken.xlsx"}
    for report in reports.values():
        assert KEYS | {"details"} == set(report)
        assert report["verdict"] in VERDICTS
        assert report["host"] == "PC-SH-0042"
    assert reports["list.csv"]["verdict"] == "bulk-client-data"
    assert reports["list.csv"]["client_records"] == 15
    assert reports["list.csv"]["findings"] == {
        "china_mobile": 15,
        "china_resident_id": 15,
        "chinese_name": 15,
    }
    detail = reports["list.csv"]["details"][0]
    assert set(detail) == {"type", "confidence", "masked", "location"}
    assert reports["menu.txt"]["verdict"] == "clean"
    assert reports["broken.xlsx"]["verdict"] == "error"
    for id_number, mobile in zip(people.id_numbers, people.mobiles, strict=True):
        assert id_number not in result.stdout
        assert mobile not in result.stdout


def test_scan_without_a_store_still_finds_personal_data(run: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_text("手机：13800138000", encoding="utf-8")
    result = run.invoke(app, ["scan", str(path), "--format", "json", "--host", "PC1"])
    assert result.exit_code == 0, result.output
    (report,) = json.loads(result.stdout)
    assert report["verdict"] == "personal-data"
    assert report["host"] == "PC1"
    assert "details" not in report


def test_host_is_read_from_the_endpoint_layout() -> None:
    assert host_of(Path("/data/endpoint/PC-7/C/Users/x.xlsx")) == "PC-7"
    assert host_of(Path("/data/uploads/x.xlsx")) is None


def test_upload_body_in_pieces_gives_the_findings_of_the_whole() -> None:
    body = "name=王五&idno=11010519491231002X&tel=13800138000".encode()
    whole = scan_upload([body])
    assert [f.type for f in whole] == ["china_resident_id", "china_mobile"]
    assert scan_upload(body[i : i + 5] for i in range(0, len(body), 5)) == whole


@pytest.mark.parametrize(
    ("text", "verdict"),
    [
        ("上海市浦东新区张杨路500号", "clean"),  # an address alone is low confidence
        ("住址：上海市浦东新区张杨路500号", "personal-data"),  # a context word raises it
        ("备注 13800138000", "personal-data"),  # a checksum kind is medium by itself
        ("今天开会", "clean"),
    ],
)
def test_verdict_is_the_same_with_or_without_details(
    tmp_path: Path, text: str, verdict: str
) -> None:
    path = tmp_path / "note.txt"
    path.write_text(text, encoding="utf-8")
    bare, detailed = scan_paths([path]), scan_paths([path], detail=True)
    assert bare[0].verdict == detailed[0].verdict == verdict
    assert bare[0].details is None
