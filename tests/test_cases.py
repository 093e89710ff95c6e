"""Case files: numbering, team visibility, items, closing, audit rows and the export."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from molehunt import audit
from molehunt.cases import (
    CaseClosedError,
    CaseError,
    UnknownCaseError,
    add_item,
    close_case,
    create_case,
    export_case,
    get_case,
    items,
    list_cases,
    verify_against_store,
)
from molehunt.errors import MolehuntError
from molehunt.export import FORMULA_STARTS, verify_export
from molehunt.keys import signing_public_key
from molehunt.store import Store

ID = "11010519491231002X"
MOBILE = "13800138000"


def _trail(store: Store) -> list[tuple[str, str, str | None, int | None]]:
    rows = reversed(audit.entries(store))
    return [(r["actor"], r["action"], r["target"], r["rows"]) for r in rows]


def test_case_ids_run_in_sequence_within_each_year(store: Store) -> None:
    made = [
        create_case(store, "a", "blue", "ann", now=datetime(2026, 1, 1, tzinfo=UTC)),
        create_case(store, "b", "red", "bob", now=datetime(2026, 12, 31, tzinfo=UTC)),
        create_case(store, "c", "blue", "ann", now=datetime(2027, 1, 1, tzinfo=UTC)),
        create_case(store, "d", "blue", "ann", now=datetime(2026, 6, 1, tzinfo=UTC)),
    ]
    assert [c.case_id for c in made] == ["C-2026-0001", "C-2026-0002", "C-2027-0001", "C-2026-0003"]
    assert all(c.status == "open" for c in made)


def test_another_teams_case_is_invisible(store: Store) -> None:
    red = create_case(store, "red's case", "red", "rita")
    blue = create_case(store, "blue's case", "blue", "ann")
    assert get_case(store, red.case_id, team="blue") is None
    assert get_case(store, "C-1999-0001", team="blue") is None
    assert get_case(store, red.case_id, team="red") == red
    assert get_case(store, red.case_id, team=None) == red
    assert [c.case_id for c in list_cases(store, "blue")] == [blue.case_id]
    assert {c.case_id for c in list_cases(store, None)} == {red.case_id, blue.case_id}


def test_items_are_numbered_masked_and_audited(store: Store) -> None:
    case = create_case(store, "Leak of policy holders", "blue", "ann")
    first = add_item(store, case.case_id, "person", "E001", "seen exporting", None, "ann")
    second = add_item(
        store,
        case.case_id,
        "event",
        "ev-1",
        f"client called from {MOBILE}",
        {"summary": f"WHERE id_number='{ID}'", "rows": 3},
        "bob",
    )
    assert (first, second) == (1, 2)
    got = items(store, case.case_id, by="carol")
    assert [(i["seq"], i["kind"], i["ref"], i["added_by"]) for i in got] == [
        (1, "person", "E001", "ann"),
        (2, "event", "ev-1", "bob"),
    ]
    assert got[1]["note"] == "client called from 138****8000"
    assert got[1]["data"] == {"summary": "WHERE id_number='110***********002X'", "rows": 3}
    trail = _trail(store)
    assert trail == [
        ("ann", "case new", case.case_id, 1),
        ("ann", "case add", f"{case.case_id} #1 person E001", 1),
        ("bob", "case add", f"{case.case_id} #2 event ev-1", 1),
        ("carol", "case view", case.case_id, 2),
    ]
    # Titles and notes may hold personal data: they never reach the trail.
    assert not any("policy" in (t or "") or "called" in (t or "") for _, _, t, _ in trail)


def test_items_without_viewer_write_no_row(store: Store) -> None:
    case = create_case(store, "t", "blue", "ann")
    before = len(audit.entries(store))
    assert items(store, case.case_id) == []
    assert len(audit.entries(store)) == before


@pytest.mark.parametrize(
    ("kind", "ref", "error"),
    [("suspect", "E001", CaseError), ("person", "  ", CaseError)],
)
def test_bad_items_are_refused(store: Store, kind: str, ref: str, error: type[Exception]) -> None:
    case = create_case(store, "t", "blue", "ann")
    with pytest.raises(error):
        add_item(store, case.case_id, kind, ref, None, None, "ann")
    assert items(store, case.case_id) == []


def test_closed_case_refuses_items_and_a_second_close(store: Store) -> None:
    case = create_case(store, "t", "blue", "ann")
    add_item(store, case.case_id, "person", "E001", None, None, "ann")
    close_case(store, case.case_id, "ann")
    closed = get_case(store, case.case_id, "blue")
    assert closed is not None
    assert closed.status == "closed"
    with pytest.raises(CaseClosedError, match="closed"):
        add_item(store, case.case_id, "person", "E002", None, None, "ann")
    with pytest.raises(CaseClosedError):
        close_case(store, case.case_id, "ann")
    assert issubclass(CaseClosedError, MolehuntError)
    assert len(items(store, case.case_id)) == 1
    assert ("ann", "case close", case.case_id, None) in _trail(store)


def test_unknown_case_is_refused(store: Store) -> None:
    with pytest.raises(UnknownCaseError):
        add_item(store, "C-2026-0099", "person", "E001", None, None, "ann")
    with pytest.raises(UnknownCaseError):
        close_case(store, "C-2026-0099", "ann")
    with pytest.raises(UnknownCaseError):
        export_case(store, "C-2026-0099", "ann", "Asia/Shanghai")


def _evidence(store: Store) -> None:
    """Two database events (one holding a client's ID and mobile) and a finding citing both."""
    t = datetime(2026, 5, 3, 1, 15, tzinfo=UTC)
    statement = f"SELECT * FROM clients WHERE id_number='{ID}' OR phone='{MOBILE}'"
    for event_id, text in (("ev-1", statement), ("ev-2", "=cmd|' /C calc'!A0")):
        store.con.execute(
            "INSERT INTO events_db (event_id, time, source_id, kind, db_user, src_ip, "
            "command, statement, rows) "
            "VALUES (?, ?, 's1', 'pg-csvlog', 'li_na', '10.0.0.5', 'SELECT', ?, 1)",
            [event_id, t, text],
        )
    store.con.execute(
        "INSERT INTO findings (finding_id, detector, time, day, severity, person_id, title, "
        "event_ids) VALUES ('f1', 'bulk-read', ?, DATE '2026-05-03', 80, 'E001', 'bulk read', "
        "['ev-1', 'ev-2', 'ev-gone'])",
        [t],
    )


def _read(zip_bytes: bytes) -> tuple[dict[str, Any], list[list[str]], list[list[str]]]:
    zf = zipfile.ZipFile(io.BytesIO(zip_bytes))
    manifest = json.loads(zf.read("manifest.json"))
    item_rows = list(csv.reader(io.StringIO(zf.read("items.csv").decode("utf-8-sig"))))
    event_rows = list(csv.reader(io.StringIO(zf.read("events.csv").decode("utf-8-sig"))))
    return manifest, item_rows, event_rows


def test_export_holds_items_cited_events_masked_and_a_checkable_manifest(store: Store) -> None:
    _evidence(store)
    case = create_case(store, "Leak", "blue", "ann")
    add_item(store, case.case_id, "finding", "f1", '=HYPERLINK("http://x")', None, "ann")
    add_item(store, case.case_id, "event", "ev-1", None, None, "ann")
    add_item(store, case.case_id, "person", "E001", "@the actor", None, "ann")
    data = export_case(store, case.case_id, "bob", "Asia/Shanghai")
    assert verify_export(data) == []
    manifest, item_rows, event_rows = _read(data)

    assert [r[:3] for r in item_rows] == [
        ["seq", "kind", "ref"],
        ["1", "finding", "f1"],
        ["2", "event", "ev-1"],
        ["3", "person", "E001"],
    ]
    assert item_rows[1][3] == '\'=HYPERLINK("http://x")'
    assert item_rows[3][3] == "'@the actor"
    by_id = {r[0]: r for r in event_rows[1:]}
    assert set(by_id) == {"ev-1", "ev-2", "ev-gone"}
    assert by_id["ev-1"][1] == "2026-05-03T09:15:00+08:00"
    assert "110***********002X" in by_id["ev-1"][3]
    assert "138****8000" in by_id["ev-1"][3]
    assert by_id["ev-1"][4] == "1 2 3"  # cited by the finding, the event and the person
    assert by_id["ev-gone"][3] == "(not in the store)"
    text = zipfile.ZipFile(io.BytesIO(data)).read("events.csv").decode()
    assert ID not in text
    assert MOBILE not in text
    for rows in (item_rows, event_rows):
        assert all(not cell or cell[0] not in FORMULA_STARTS for row in rows for cell in row)
    sheet = load_workbook(io.BytesIO(zipfile.ZipFile(io.BytesIO(data)).read("items.xlsx"))).active
    assert sheet is not None
    assert [c.value for c in sheet[2]][:4] == [
        "1",
        "finding",
        "f1",
        '\'=HYPERLINK("http://x")',
    ]

    assert manifest["case"]["case_id"] == case.case_id
    assert manifest["exported_by"] == "bob"
    assert datetime.fromisoformat(manifest["exported_at"]).utcoffset() is not None
    assert set(manifest["files"]) == {"items.csv", "items.xlsx", "events.csv"}
    chain = audit.verify(store)
    # The export's own audit row is written before the data leaves, and the manifest's
    # chain head covers it.
    digest = manifest["content_sha256"]
    assert _trail(store)[-1] == ("bob", "case export", f"{case.case_id} content sha256:{digest}", 3)
    assert manifest["audit"] == {"head": chain.head, "rows": chain.rows, "broken_at": None}


def test_an_export_is_checked_against_the_store_key_and_its_audit_row(
    store: Store, tmp_path: Path
) -> None:
    case = create_case(store, "Leak", "blue", "ann")
    add_item(store, case.case_id, "person", "E001", None, None, "ann")
    data = export_case(store, case.case_id, "bob", "Asia/Shanghai")
    assert verify_against_store(store, data) == []
    manifest = json.loads(zipfile.ZipFile(io.BytesIO(data)).read("manifest.json"))
    assert manifest["signature"]["public_key"] == signing_public_key(store)
    # An export made by another store (another signing key) is refused here.
    with Store.open(tmp_path / "other.duckdb") as other:
        theirs = create_case(other, "Leak", "blue", "ann")
        foreign = export_case(other, theirs.case_id, "eve", "Asia/Shanghai")
    assert verify_export(foreign) == []
    (problem,) = verify_against_store(store, foreign)
    assert "not the store's signing key" in problem
    # An export whose audit row was removed from the trail is reported.
    store.con.execute("DELETE FROM audit_log WHERE action = 'case export'")
    assert verify_against_store(store, data) == [
        f"no `case export` of {case.case_id} with this content on the store's audit trail"
    ]
