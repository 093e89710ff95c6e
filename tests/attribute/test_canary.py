"""Canaries: made-up clients nobody has, registered, found in leaked files, and any
read of one is a critical finding naming the account and host."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from molehunt.attribute import attribute
from molehunt.attribute.canary import canary_index, plant
from molehunt.config import Settings
from molehunt.detect import DetectContext, DetectionSettings
from molehunt.detect.canary_access import CanaryAccessDetector
from molehunt.ingest.runner import ingest_paths
from molehunt.keys import create_key_file, load_key
from molehunt.pii.edm import ClientIndex
from molehunt.pii.files import decode, scan_file
from molehunt.simulate import params_for, simulate
from molehunt.store import Store
from molehunt.synthetic import valid_id_number

CST = ZoneInfo("Asia/Shanghai")


@dataclass(slots=True)
class Company:
    folder: Path
    settings: Settings
    store: Store
    key: bytes
    truth: dict[str, object]


@pytest.fixture(scope="module")
def company(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Company]:
    folder = tmp_path_factory.mktemp("canary")
    simulate(folder / "sim", params_for("tiny", None, seed=11, days=4))
    settings = Settings.load(environ={}).model_copy(
        update={"db": folder / "molehunt.duckdb", "key_file": folder / "molehunt.key"}
    )
    create_key_file(settings.key_file)
    with Store.open(settings.db) as store:
        ingest_paths(store, settings, [folder / "sim" / "reference", folder / "sim" / "logs"])
        truth = json.loads((folder / "sim" / "truth.json").read_text(encoding="utf-8"))
        yield Company(folder, settings, store, load_key(settings), truth)


@pytest.fixture(scope="module")
def planted(company: Company) -> list[dict[str, str]]:
    result = plant(company.store, company.key, 5, company.folder / "out" / "canaries.csv")
    assert result.count == 5
    text = decode(result.csv_path.read_bytes())
    return list(csv.DictReader(text.splitlines()))


def test_canaries_look_like_real_clients(company: Company, planted: list[dict[str, str]]) -> None:
    real = next(
        csv.DictReader((company.folder / "sim/reference/clients.csv").open(encoding="utf-8"))
    )
    assert set(planted[0]) == set(real)  # the client master's columns, for insertion
    ids = {r["client_id"] for r in planted}
    assert len(ids) == 5
    for r in planted:
        assert valid_id_number(r["id_number"])
        assert len(r["client_id"]) == len(real["client_id"])
    scan = scan_file(company.folder / "out" / "canaries.csv")
    assert scan.findings["china_resident_id"] == 5
    assert scan.findings["china_mobile"] == 5  # allocated prefixes only


def test_no_real_client_has_a_canarys_values(
    company: Company, planted: list[dict[str, str]]
) -> None:
    scan = scan_file(company.folder / "out" / "canaries.csv", key=company.key)
    assert ClientIndex.from_store(company.store).match(scan.records).records == 0
    index = canary_index(company.store)
    assert index is not None
    assert index.match(scan.records).client_ids == sorted(r["client_id"] for r in planted)
    existing = company.store.query(
        "SELECT count(*) AS n FROM clients WHERE client_id IN (SELECT client_id FROM canaries)"
    )
    assert existing[0]["n"] == 0


def test_the_sql_inserts_every_canary(company: Company, planted: list[dict[str, str]]) -> None:
    sql = (company.folder / "out" / "canaries.sql").read_text(encoding="utf-8")
    assert sql.startswith("INSERT INTO clients (client_id,")
    for r in planted:
        assert f"'{r['id_number']}'" in sql
        assert f"'{r['client_id']}'" in sql


def test_the_store_keeps_no_canary_in_clear(
    company: Company, planted: list[dict[str, str]]
) -> None:
    row = company.store.query("SELECT * FROM canaries LIMIT 1")[0]
    values = {str(v) for v in row.values()}
    for r in planted:
        assert not {r["id_number"], r["mobile"], r["name"]} & values


def test_planting_again_adds_new_canaries(company: Company, planted: list[dict[str, str]]) -> None:
    more = plant(company.store, company.key, 3, company.folder / "out2" / "more.csv")
    rows = list(csv.DictReader(decode(more.csv_path.read_bytes()).splitlines()))
    assert not {r["client_id"] for r in rows} & {r["client_id"] for r in planted}
    assert company.store.query("SELECT count(*) AS n FROM canaries")[0]["n"] == 8


def test_a_read_canary_is_a_critical_finding_and_names_the_reader(
    company: Company, planted: list[dict[str, str]]
) -> None:
    # A sales person opens two canary cards in the CRM from their own workstation.
    reader = company.store.query(
        """SELECT e.user_name, e.src_ip, e.time, a.hostname, h.owner_employee_id AS person
           FROM events_app e JOIN assets a ON a.ip = e.src_ip
           JOIN accounts h ON h.account = e.user_name AND h.system = 'crm-app'
           WHERE a.kind = 'workstation' AND h.owner_employee_id = a.owner_employee_id
           ORDER BY e.time LIMIT 1"""
    )[0]
    at = (reader["time"] + timedelta(seconds=1)).astimezone(CST)
    ts = at.isoformat(timespec="milliseconds")
    lines = [
        json.dumps(
            {
                "ts": ts,
                "app": "crm",
                "user": reader["user_name"],
                "src_ip": reader["src_ip"],
                "action": "view",
                "client_ids": [r["client_id"]],
                "rows": 1,
                "detail": "client card",
            },
            ensure_ascii=False,
        )
        for r in planted[:2]
    ]
    log = company.folder / "extra" / "crm" / "access.log"
    log.parent.mkdir(parents=True)
    log.write_text("\n".join(lines) + "\n", encoding="utf-8")
    ingest_paths(company.store, company.settings, [log])

    ctx = DetectContext(company.store.ibis, DetectionSettings(), at.date())
    (finding,) = CanaryAccessDetector().find(ctx)
    assert finding.severity >= 90
    assert finding.person_id == reader["person"]
    assert finding.account == reader["user_name"]
    assert finding.host == reader["hostname"].lower()
    assert finding.details["canaries"] == 2
    assert len(finding.event_ids) == 2

    result = attribute(company.store, company.key, company.folder / "out" / "canaries.csv")
    assert result["client_records"] == 5
    assert result["non_client_rows"] == 0
    top = result["suspects"][0]
    assert (top["rank"], top["person_id"], top["covered"]) == (1, reader["person"], 2)


def test_no_canaries_no_findings(tmp_path: Path) -> None:
    with (
        Store.open(tmp_path / "empty.duckdb") as store,
        DetectContext(store.ibis, DetectionSettings(), params_for("tiny").start) as ctx,
    ):
        assert CanaryAccessDetector().find(ctx) == []
        assert canary_index(store) is None
