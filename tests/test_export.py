"""Spreadsheet-safe cells and export zips a court can check."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl import load_workbook

from molehunt.export import (
    FORMULA_STARTS,
    MANIFEST,
    SIGNATURE,
    build_zip,
    csv_bytes,
    public_key_hex,
    safe_cell,
    verify_export,
    xlsx_bytes,
)

HOSTILE = [
    "=1+2",
    "+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(A1)",
    "\t=1",
    "\r=1",
    "＝1",
    "＋1",
    "－1",
    "＠x",
]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("＠SUM(A1)", "'＠SUM(A1)"),
        ("plain text", "plain text"),
        (" =not at start", " =not at start"),
        ("", ""),
        (None, ""),
        (3, "3"),
        (2.5, "2.5"),
        (0, "0"),
        # A negative number is prefixed like any text starting with a minus (see safe_cell).
        (-3, "'-3"),
        ("'already", "'already"),
    ],
)
def test_safe_cell_examples(value: object, expected: str) -> None:
    assert safe_cell(value) == expected


@settings(max_examples=2000, deadline=None)
@given(st.text())
def test_safe_cell_never_starts_a_formula_and_keeps_other_text(text: str) -> None:
    out = safe_cell(text)
    assert not out or out[0] not in FORMULA_STARTS
    if not text or text[0] not in FORMULA_STARTS:
        assert out == text
    else:
        assert out == "'" + text


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.integers(), st.floats(allow_nan=False)))
def test_numbers_stay_readable(number: float) -> None:
    out = safe_cell(number)
    assert float(out.removeprefix("'")) == float(number)
    assert out.startswith("'") == str(number).startswith("-")


def test_csv_and_xlsx_cells_are_all_neutralised() -> None:
    rows = [[v, "ok"] for v in HOSTILE] + [["\x01=hidden by a control character", 1]]
    parsed = list(csv.reader(io.StringIO(csv_bytes(["a", "b"], rows).decode("utf-8-sig"))))
    assert parsed[0] == ["a", "b"]
    assert all(not cell or cell[0] not in FORMULA_STARTS for row in parsed for cell in row)
    sheet = load_workbook(io.BytesIO(xlsx_bytes("items", ["a", "b"], rows))).active
    assert sheet is not None
    values = [cell.value for row in sheet.iter_rows() for cell in row]
    assert len(values) == 2 * (len(rows) + 1)
    for value in values:
        assert isinstance(value, str)
        assert value[0] not in FORMULA_STARTS
    # The control character XML cannot hold is dropped, and the formula it hid is not let out.
    assert values[-2] == "'=hidden by a control character"
    assert all(cell.data_type == "s" for row in sheet.iter_rows() for cell in row)


KEY = Ed25519PrivateKey.generate()


def _zip(files: dict[str, bytes]) -> bytes:
    return build_zip(files, {"case": {"case_id": "C-2026-0001"}}, KEY)


def _rewritten(zip_bytes: bytes, name: str, data: bytes | None) -> bytes:
    """The zip with one member replaced (or removed when ``data`` is None), or added."""
    out = io.BytesIO()
    src = zipfile.ZipFile(io.BytesIO(zip_bytes))
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            if info.filename != name:
                dst.writestr(info, src.read(info.filename))
        if data is not None:
            dst.writestr(name, data)
    return out.getvalue()


FILES = {"items.csv": b"seq,kind\r\n1,person\r\n", "events.csv": b"event_id\r\ne1\r\n"}


def test_untouched_export_verifies_and_manifest_lists_each_file() -> None:
    data = _zip(FILES)
    assert verify_export(data) == []
    manifest = json.loads(zipfile.ZipFile(io.BytesIO(data)).read(MANIFEST))
    assert manifest["files"]["items.csv"]["size"] == len(FILES["items.csv"])
    assert len(manifest["files"]["items.csv"]["sha256"]) == 64
    assert manifest["case"] == {"case_id": "C-2026-0001"}


def test_one_byte_changed_inside_the_zip_is_reported() -> None:
    data = bytearray(_zip(FILES))
    zf = zipfile.ZipFile(io.BytesIO(bytes(data)))
    info = zf.getinfo("items.csv")
    # The member's data starts after its local header (30 bytes, name, extra field).
    header = data[info.header_offset : info.header_offset + 30]
    start = info.header_offset + 30 + int.from_bytes(header[26:28], "little")
    start += int.from_bytes(header[28:30], "little")
    data[start + info.compress_size // 2] ^= 0x01
    problems = verify_export(bytes(data))
    assert problems
    assert all(p.startswith("items.csv") for p in problems)


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        ("items.csv", b"seq,kind\r\n1,persoN\r\n", "items.csv: SHA-256 differs from the manifest"),
        ("items.csv", b"seq,kind\r\n", "items.csv: 10 bytes, the manifest says 20"),
        ("items.csv", None, "items.csv: in the manifest but missing from the zip"),
        ("extra.csv", b"x", "extra.csv: in the zip but not in the manifest"),
        (MANIFEST, None, "manifest.json is missing"),
        (MANIFEST, b"{not json", "manifest.json cannot be read"),
    ],
)
def test_changed_added_or_removed_files_are_reported(
    name: str, data: bytes | None, expected: str
) -> None:
    problems = verify_export(_rewritten(_zip(FILES), name, data))
    assert any(p.startswith(expected) for p in problems), problems


def test_not_a_zip_is_reported() -> None:
    assert verify_export(b"PK\x03\x04 nonsense")[0].startswith("not a zip file")


def _manifest_recomputed(zip_bytes: bytes, name: str, data: bytes) -> bytes:
    """A forger's zip: ``name`` rewritten and the manifest's entry for it recomputed."""
    zf = zipfile.ZipFile(io.BytesIO(zip_bytes))
    manifest = json.loads(zf.read(MANIFEST))
    manifest["files"][name] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    text = json.dumps(manifest, ensure_ascii=False, indent=2, sort_keys=True) + "\n"
    return _rewritten(_rewritten(zip_bytes, name, data), MANIFEST, text.encode())


def test_a_rewritten_file_with_a_recomputed_manifest_fails_the_signature() -> None:
    forged = _manifest_recomputed(_zip(FILES), "items.csv", b"seq,kind\r\n1,nothing\r\n")
    assert verify_export(forged) == [
        f"{MANIFEST}: the signature does not match (the manifest was changed)"
    ]


def test_a_zip_re_signed_by_another_key_is_refused_given_the_store_key() -> None:
    other = Ed25519PrivateKey.generate()
    forged = build_zip(
        {**FILES, "items.csv": b"seq,kind\r\n1,nothing\r\n"}, {"case": {"case_id": "C"}}, other
    )
    assert verify_export(forged) == []  # self-consistent, by itself
    problems = verify_export(forged, public_key_hex(KEY))
    assert problems == [
        f"{MANIFEST}: signed by key {public_key_hex(other)[:16]}, "
        f"not the store's signing key {public_key_hex(KEY)[:16]}"
    ]
    assert verify_export(_zip(FILES), public_key_hex(KEY)) == []


def test_an_unsigned_or_signature_stripped_export_is_reported() -> None:
    unsigned = build_zip(FILES, {"case": {"case_id": "C"}})
    assert verify_export(unsigned) == [f"{MANIFEST} is not signed"]
    assert verify_export(unsigned, require_signature=False) == []
    stripped = _rewritten(_zip(FILES), SIGNATURE, None)
    assert verify_export(stripped) == [f"{MANIFEST}: the signature or its public key is missing"]
