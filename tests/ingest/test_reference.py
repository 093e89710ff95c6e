from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from molehunt.config import Settings
from molehunt.errors import UnknownKindError
from molehunt.ingest.runner import detect_kind, ingest_paths
from molehunt.store import Store

GOOD = {
    "hr": (
        "employee_id,name,department,title,role,manager_id,hire_date,notice_date,termination_date\n"
        "E001,王伟,sales,Sales rep,sales,E010,2020-01-06,,\n"
        "E010,张强,sales,Manager,manager,,2015-01-01,,\n"
    ),
    "accounts": (
        "account,system,owner_employee_id,kind,created,disabled\n"
        "wang.wei,ad,E001,human,2020-01-06,\ncrm_app,crm-db,,service,2018-01-01,\n"
    ),
    "assets": (
        "hostname,ip,owner_employee_id,kind,department\n"
        "PC-SALES-001,10.20.3.17,E001,workstation,sales\ncrm-db-01,10.1.0.5,,server,it\n"
    ),
    "entitlements": (
        "role,system,resource,access\nsales,crm-app,clients,read\ndba,crm-db,public.clients,read\n"
    ),
    "web-categories": "domain,category\nmall.example.cn,shopping\nchat.example.com,Chat\n",
    "web-policy": "category,allowed\nshopping,yes\nchat,no\n",
}
TABLE = {k: "ref_" + k.replace("-", "_") for k in GOOD}


@pytest.mark.parametrize("kind", sorted(GOOD))
def test_each_reference_kind_is_detected_and_stored(
    kind: str, store: Store, settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / f"{kind}.csv"
    path.write_text(GOOD[kind], encoding="utf-8")
    assert detect_kind(path) == kind
    report = ingest_paths(store, settings, [path])
    assert report.as_dict()["files"] == [
        {"path": str(path), "kind": kind, "stored": 2, "rejected": 0}
    ]
    assert store.table_counts()[TABLE[kind]] == 2


# (kind, bad row appended to the good file, words the reason must contain)
MALFORMED = [
    ("hr", "E002,李娜,sales,x,sales,,2020-13-01,,", "hire_date: not an ISO date"),
    ("hr", "E001,Dup,sales,x,sales,,2020-01-01,,", "duplicate employee_id E001 (first at line 2)"),
    ("hr", "E003,,sales,x,sales,,2020-01-01,,", "name is empty"),
    ("hr", "E004,x,sales", "expected 9 fields, found 3"),
    ("accounts", "zhao,ad,E001,robot,2020-01-01,", "expected one of human, service"),
    ("accounts", "wang.wei,ad,E001,human,2020-01-06,", "duplicate account+system wang.wei/ad"),
    ("assets", "PC-X,10.20.300.1,E001,workstation,sales", "not an IP address"),
    ("web-policy", "games,maybe", "expected yes or no"),
]


@pytest.mark.parametrize(("kind", "bad", "reason"), MALFORMED)
def test_a_bad_row_is_quarantined_with_its_line_and_the_rest_stored(
    kind: str, bad: str, reason: str, store: Store, settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / f"{kind}.csv"
    path.write_text(GOOD[kind] + bad + "\n", encoding="utf-8")
    report = ingest_paths(store, settings, [path], kind=kind)
    assert (report.stored, report.rejected) == (2, 1)
    (row,) = store.query("SELECT path, line, reason, raw FROM quarantine")
    assert row["path"] == str(path)
    assert row["line"] == 4
    assert reason in row["reason"]
    assert row["raw"] == bad


def test_a_missing_column_rejects_the_file_with_a_located_error(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "hr.csv"
    path.write_text("employee_id,name,role,termination_date\nE1,x,sales,\n", encoding="utf-8")
    report = ingest_paths(store, settings, [path], kind="hr")
    (file_report,) = report.files
    assert file_report.error is not None
    assert f"{path}:1" in file_report.error
    assert "missing column(s) department, title, manager_id, hire_date, notice_date" in (
        file_report.error
    )
    assert store.table_counts()["ref_hr"] == 0


def test_rows_in_another_encoding_are_quarantined_not_garbled(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "hr.csv"
    header, *rows = GOOD["hr"].splitlines()
    path.write_bytes(
        (header + "\n" + rows[1] + "\n").encode("utf-8") + (rows[0] + "\n").encode("gbk")
    )
    report = ingest_paths(store, settings, [path], kind="hr")
    assert (report.stored, report.rejected) == (1, 1)
    (row,) = store.query("SELECT line, reason, raw FROM quarantine")
    assert row["line"] == 3
    assert "not valid UTF-8" in row["reason"]
    assert "\\x" in row["raw"]  # the bad bytes are shown, not replaced


def test_the_same_export_twice_stores_nothing_new(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "hr.csv"
    path.write_text(GOOD["hr"], encoding="utf-8")
    ingest_paths(store, settings, [path])
    again = ingest_paths(store, settings, [path])
    assert again.files[0].skipped == "this export was ingested before"
    assert store.table_counts()["ref_hr"] == 2


def test_a_newer_export_replaces_the_snapshot_and_keeps_history(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    first = tmp_path / "hr-1.csv"
    first.write_text(GOOD["hr"], encoding="utf-8")
    second = tmp_path / "hr-2.csv"
    second.write_text(
        GOOD["hr"]
        .replace(
            "E001,王伟,sales,Sales rep,sales,E010,2020-01-06,,",
            "E001,王伟,sales,Senior,sales,E010,2020-01-06,2026-04-01,2026-04-30",
        )
        .replace("E010,张强,sales,Manager,manager,,2015-01-01,,\n", "")
        + "E020,新人,sales,Sales rep,sales,E010,2026-04-01,,\n",
        encoding="utf-8",
    )
    t1 = datetime(2026, 3, 1, tzinfo=UTC)
    t2 = datetime(2026, 4, 2, tzinfo=UTC)
    ingest_paths(store, settings, [first], as_of=t1)
    ingest_paths(store, settings, [second], as_of=t2)
    current = store.query("SELECT employee_id, title, termination_date FROM hr ORDER BY 1")
    assert [(r["employee_id"], r["title"]) for r in current] == [
        ("E001", "Senior"),
        ("E020", "Sales rep"),
    ]
    history = store.query(
        "SELECT employee_id, title, valid_from, valid_to FROM ref_hr "
        "ORDER BY employee_id, valid_from NULLS FIRST"
    )
    assert [(r["employee_id"], r["title"], r["valid_from"], r["valid_to"]) for r in history] == [
        ("E001", "Sales rep", None, t2),
        ("E001", "Senior", t2, None),
        ("E010", "Manager", None, t2),
        ("E020", "Sales rep", t2, None),
    ]


def test_unknown_files_get_a_clear_error_and_others_still_load(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    folder = tmp_path / "exports"
    folder.mkdir()
    odd = folder / "notes.csv"
    odd.write_text("colour,taste\nred,sweet\n", encoding="utf-8")
    with pytest.raises(UnknownKindError, match="cannot tell what kind of file"):
        detect_kind(odd)
    good = folder / "web_policy.csv"
    good.write_text(GOOD["web-policy"], encoding="utf-8")
    report = ingest_paths(store, settings, [folder])
    by_path = {f.path: f for f in report.files}
    assert "name it with --kind" in (by_path[str(odd)].error or "")
    assert by_path[str(good)].stored == 2
