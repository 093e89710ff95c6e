from __future__ import annotations

from pathlib import Path

import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from molehunt.config import Settings
from molehunt.errors import KeyMissingError
from molehunt.ingest.runner import detect_kind, ingest_paths
from molehunt.keys import load_key
from molehunt.pii.keyed import KeyedHasher
from molehunt.store import Store

HEADER = ["client_id", "name", "id_number", "mobile", "address", "city", "branch"]
ROWS = [
    [
        "C001",
        "王小明",
        "110101199003071234",
        "13800138000",
        "上海市浦东新区世纪大道1号 1203室",
        "Shanghai",
        "SH01",
    ],
    [
        "C002",
        "陈静",
        "31010119850101002X",
        "139 0013 9000",
        "上海市徐汇区漕溪北路88号",
        "Shanghai",
        "SH02",
    ],
    [
        "C003",
        "刘洋",
        "440106199912315678",
        "+86 137-0000-1234",
        "广州市天河区体育西路5号",
        "Guangzhou",
        "GZ01",
    ],
]
PII_VALUES = [v for row in ROWS for v in row[1:5]]


def _csv(path: Path, rows: list[list[str]]) -> Path:
    lines = [",".join(HEADER)] + [",".join(r) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _xlsx(path: Path, rows: list[list[str]]) -> Path:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(HEADER)
    for row in rows:
        # Excel users store phones as numbers: calamine reads them back as floats.
        sheet.append([*row[:3], int(row[3]) if row[3].isdigit() else row[3], *row[4:]])
    book.save(path)
    return path


def _parquet(path: Path, rows: list[list[str]]) -> Path:
    pq.write_table(pa.table({h: [r[i] for r in rows] for i, h in enumerate(HEADER)}), path)
    return path


@pytest.mark.parametrize("writer", [_csv, _xlsx, _parquet], ids=["csv", "xlsx", "parquet"])
def test_client_master_is_stored_as_keyed_hashes_and_attributes(
    writer: object, store: Store, settings: Settings, tmp_path: Path
) -> None:
    suffix = {"_csv": ".csv", "_xlsx": ".xlsx", "_parquet": ".parquet"}[writer.__name__]  # type: ignore[attr-defined]
    path = writer(tmp_path / f"clients{suffix}", ROWS)  # type: ignore[operator]
    assert detect_kind(path) == "clients"
    report = ingest_paths(store, settings, [path])
    assert (report.stored, report.rejected) == (3, 0)
    hasher = KeyedHasher(load_key(settings))
    rows = store.query("SELECT * FROM clients ORDER BY client_id")
    assert [r["client_id"] for r in rows] == ["C001", "C002", "C003"]
    assert rows[1]["city"] == "Shanghai"
    assert rows[1]["branch"] == "SH02"
    assert rows[1]["id_number_h"] == hasher.hash_value("id_number", "31010119850101002x")
    assert rows[1]["mobile_h"] == hasher.hash_value("phone", "+8613900139000")
    assert rows[2]["mobile_h"] == hasher.hash_value("phone", "13700001234")
    assert rows[0]["address_h"] == hasher.hash_value("text", "上海市浦东新区世纪大道1号  1203室")
    assert "name" not in rows[0]
    assert "id_number" not in rows[0]


def _db_bytes(store: Store, settings: Settings) -> bytes:
    store.con.execute("CHECKPOINT")
    data = settings.db.read_bytes()
    wal = Path(str(settings.db) + ".wal")
    return data + (wal.read_bytes() if wal.exists() else b"")


def test_no_pii_value_and_no_key_ever_reach_the_database_file(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    bad = [
        *ROWS,
        ["C002", "重复人", "11010119900307999X", "13912345678", "北京市", "Beijing", "BJ"],
    ]
    ingest_paths(store, settings, [_csv(tmp_path / "clients.csv", bad)])
    assert store.table_counts()["quarantine"] == 1
    key = load_key(settings)
    blob = _db_bytes(store, settings)
    for value in [*PII_VALUES, "11010119900307999X", "13912345678", "重复人"]:
        for encoded in {value.encode("utf-8"), value.replace(" ", "").encode("utf-8")}:
            assert encoded not in blob, f"{value!r} found in clear in the database file"
    assert key not in blob
    assert key.hex().encode() not in blob


def test_bad_client_rows_are_quarantined_by_line_without_their_pii(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "clients.csv"
    good = [",".join(HEADER)] + [",".join(r) for r in ROWS]
    path.write_bytes(
        ("\n".join(good) + "\n").encode()
        + b"C004,\xcd\xf5,110101199003079999,13800000000,x,y,z\n"  # GBK name
        + b",nobody,1,2,3,4,5\n"
        + b"C005,too,few\n"
        + ",".join(ROWS[0]).encode()
        + b"\n"
    )
    report = ingest_paths(store, settings, [path])
    assert (report.stored, report.rejected) == (3, 4)
    rows = store.query("SELECT line, reason, raw FROM quarantine ORDER BY line")
    assert [(r["line"], r["reason"]) for r in rows] == [
        (5, "not valid UTF-8 (is the file in another encoding?)"),
        (6, "client_id is empty"),
        (7, "expected 7 fields, found 3"),
        (8, "duplicate client_id C001 (first at line 2)"),
    ]
    assert all("withheld" in r["raw"] for r in rows)


def test_re_ingesting_the_same_master_stores_nothing_and_a_new_one_replaces_it(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    first = _csv(tmp_path / "clients.csv", ROWS)
    ingest_paths(store, settings, [first])
    assert ingest_paths(store, settings, [first]).files[0].skipped
    second = _csv(tmp_path / "clients-2.csv", ROWS[:2])
    ingest_paths(store, settings, [second])
    assert [r["client_id"] for r in store.query("SELECT client_id FROM clients ORDER BY 1")] == [
        "C001",
        "C002",
    ]


def test_without_a_key_the_master_is_refused_clearly(store: Store, tmp_path: Path) -> None:
    settings = Settings.load({"key_file": tmp_path / "none.key"}, environ={}, cwd=tmp_path)
    report = ingest_paths(store, settings, [_csv(tmp_path / "clients.csv", ROWS)])
    assert report.files[0].error is not None
    assert "molehunt init" in report.files[0].error
    assert store.table_counts()["clients"] == 0


def test_a_key_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    key_file = tmp_path / "k"
    key_file.write_text("00" * 32)
    key_file.chmod(0o644)
    with pytest.raises(Exception, match="chmod 600"):
        load_key(Settings.load({"key_file": key_file}, environ={}, cwd=tmp_path))


def test_key_from_the_environment(tmp_path: Path) -> None:
    settings = Settings.load({}, environ={"MOLEHUNT_KEY": "ab" * 32}, cwd=tmp_path)
    assert load_key(settings) == bytes.fromhex("ab" * 32)
    with pytest.raises(KeyMissingError):
        load_key(Settings.load({"key_file": tmp_path / "x"}, environ={}, cwd=tmp_path))
