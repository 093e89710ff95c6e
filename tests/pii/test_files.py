"""Files: spreadsheets, CSV in GB18030, Word, PDF, zips, and hostile files."""

from __future__ import annotations

import io
import resource
import time
import zipfile
from pathlib import Path

import openpyxl
import pytest

from molehunt.pii.files import DAMAGED_ID, Limits, decode, scan_file, scan_files, unsafe_member
from molehunt.synthetic import check_digit

ID1 = "11010519491231002X"
ID2 = "31011519880715001" + check_digit("31011519880715001")
MOBILE = "13800138000"


def _xlsx(path: Path, rows: list[list[object]]) -> Path:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "客户"
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path


def _docx_bytes(paragraphs: list[str], doctype: str = "") -> bytes:
    ns = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
    body = "".join(f"<w:p><w:r><w:t>{p}</w:t></w:r></w:p>" for p in paragraphs)
    xml = (
        f'<?xml version="1.0"?>{doctype}<w:document xmlns:w="{ns}">'
        f"<w:body>{body}</w:body></w:document>"
    )
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types/>')
        z.writestr("word/document.xml", xml)
    return out.getvalue()


def _pdf_bytes(lines: list[str]) -> bytes:
    """A minimal one-page PDF with a Helvetica text layer."""
    text = " ".join(f"({line}) Tj 0 -20 Td" for line in lines)
    stream = f"BT /F1 12 Tf 50 750 Td {text} ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for i, obj in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % i + obj + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for off in offsets:
        out.write(b"%010d 00000 n \n" % off)
    out.write(
        b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    )
    return out.getvalue()


def test_xlsx_columns_are_classified_and_findings_located(tmp_path: Path) -> None:
    path = _xlsx(
        tmp_path / "list.xlsx",
        [
            ["姓名", "证件号码", "联系电话", "备注"],
            ["王小明", ID1, 13800138000, "老客户"],
            ["陈静", ID2, 13900139000, ""],
        ],
    )
    scan = scan_file(path, detail=True)
    assert scan.errors == []
    assert scan.findings == {"chinese_name": 2, "china_resident_id": 2, "china_mobile": 2}
    ids = [d for d in scan.details if d.type == "china_resident_id"]
    assert ids[0].location == {"sheet": "客户", "row": 2, "column": 2}
    assert ids[0].masked == "110***********002X"
    assert {d.confidence for d in scan.details} == {"high"}
    assert all(ID1 not in d.masked for d in scan.details)


def test_counts_do_not_depend_on_asking_for_details_or_records(tmp_path: Path) -> None:
    # Without --detail or a key no value is decoded: the counts come from arrays.
    path = _xlsx(
        tmp_path / "mixed.xlsx",
        [
            ["客户", "说明", "地址"],
            ["王小明", f"身份证 {ID1}，手机 {MOBILE}", "上海市浦东新区张杨路500号"],
            ["  陈静 ", f"{ID2}\n备用 13900139000", "北京市朝阳区建国路1号3栋"],
        ],
    )
    bare = scan_file(path)
    full = scan_file(path, detail=True, key=b"k" * 32)
    assert bare.findings == full.findings
    assert sum(full.findings.values()) == len(full.details) == 8
    assert bare.details == []
    assert bare.records == []
    assert full.records  # rows with an ID hold keyed hashes


def test_id_number_stored_as_a_number_is_reported_damaged(tmp_path: Path) -> None:
    path = _xlsx(tmp_path / "damaged.xlsx", [["id"], [float(ID2[:17] + "1")], [13800138000.0]])
    scan = scan_file(path)
    assert scan.findings[DAMAGED_ID] == 1
    assert scan.findings["china_mobile"] == 1


def test_a_column_of_common_names_without_header_is_found(tmp_path: Path) -> None:
    names = ["王伟", "李娜", "张敏", "刘洋", "陈静"]
    rows: list[list[object]] = [["c1"]]
    rows += [[n] for n in names]
    path = _xlsx(tmp_path / "n.xlsx", rows)
    assert scan_file(path).findings == {"chinese_name": 5}


def test_csv_in_gb18030_is_decoded(tmp_path: Path) -> None:
    text = f"姓名,身份证号,手机\n王小明,{ID1},{MOBILE}\n"
    path = tmp_path / "export.csv"
    path.write_bytes(text.encode("gb18030"))
    assert decode(path.read_bytes()) == text
    scan = scan_file(path)
    assert scan.findings == {"chinese_name": 1, "china_resident_id": 1, "china_mobile": 1}


def test_text_offsets_are_characters_in_the_decoded_text(tmp_path: Path) -> None:
    text = f"第一行\n客户王五的身份证号：{ID1}\n"
    path = tmp_path / "note.txt"
    path.write_text(text, encoding="utf-8")
    (detail,) = scan_file(path, detail=True).details
    start, length = detail.location["offset"], detail.location["length"]
    assert text[start : start + length] == ID1


def test_docx_and_pdf_text_are_scanned(tmp_path: Path) -> None:
    docx = tmp_path / "letter.docx"
    docx.write_bytes(_docx_bytes(["客户资料", f"身份证号：{ID1}", f"手机：{MOBILE}"]))
    assert scan_file(docx).findings == {"china_resident_id": 1, "china_mobile": 1}
    pdf = tmp_path / "scan.pdf"
    pdf.write_bytes(_pdf_bytes([f"ID number {ID1}", f"mobile {MOBILE}"]))
    assert scan_file(pdf).findings == {"china_resident_id": 1, "china_mobile": 1}


def test_zip_members_and_nested_zips_are_scanned(tmp_path: Path) -> None:
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as z:
        z.writestr("deep/ids.txt", f"身份证 {ID2}")
    path = tmp_path / "out.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("a.txt", f"手机 {MOBILE}")
        z.writestr("inner.zip", inner.getvalue())
        z.writestr("photo.jpg", b"\xff\xd8")
    scan = scan_file(path, detail=True)
    assert scan.findings == {"china_mobile": 1, "china_resident_id": 1}
    members = {d.location["member"] for d in scan.details}
    assert members == {"a.txt", "inner.zip!deep/ids.txt"}


# -- hostile files: refused or skipped with a reason, fast, in bounded memory -----------


def _billion_laughs() -> str:
    entities = ['<!ENTITY lol "lol">'] + [
        f'<!ENTITY lol{i} "{"&lol" + str(i - 1) + ";" if i > 1 else "&lol;"}' * 10 + '">'
        for i in range(1, 10)
    ]
    return f"<!DOCTYPE lolz [{''.join(entities)}]>"


def _zip_bomb(path: Path) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("zeros.txt", b"\0" * (200 << 20))
    return path


def _many_entries(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for i in range(10_001):
            z.writestr(f"f{i}.txt", b"")
    return path


def _zip_slip(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("../../etc/cron.d/evil.txt", f"手机 {MOBILE}")
        z.writestr("ok.txt", f"手机 {MOBILE}")
    return path


def _encrypted(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("secret.txt", b"\0" * 64)
    # zipfile cannot encrypt: set the "encrypted" flag in the local and central headers.
    data = bytearray(path.read_bytes())
    for signature, at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        where = data.index(signature) + at
        data[where] |= 0x1
    path.write_bytes(bytes(data))
    return path


def _billion_laughs_docx(path: Path) -> Path:
    path.write_bytes(_docx_bytes(["&lol9;"], _billion_laughs()))
    return path


def _billion_laughs_xlsx(path: Path) -> Path:
    _xlsx(path, [["a"], ["b"]])
    source = zipfile.ZipFile(path).read("xl/worksheets/sheet1.xml").decode()
    poisoned = _billion_laughs() + source.split("?>", 1)[-1]
    out = io.BytesIO()
    with zipfile.ZipFile(path) as old, zipfile.ZipFile(out, "w") as new:
        for item in old.infolist():
            data = old.read(item)
            new.writestr(item, poisoned if item.filename == "xl/worksheets/sheet1.xml" else data)
    path.write_bytes(out.getvalue())
    return path


def _corrupt(path: Path) -> Path:
    path.write_bytes(b"PK\x03\x04 this is not really a zip")
    return path


def _huge(path: Path) -> Path:
    with path.open("wb") as f:
        f.truncate(2 << 30)  # sparse: 2 GB on paper, nothing on disk
    return path


HOSTILE = [
    ("bomb.zip", _zip_bomb, "zip bomb"),
    ("many.zip", _many_entries, "entries"),
    ("slip.zip", _zip_slip, "zip slip"),
    ("locked.zip", _encrypted, "encrypted"),
    ("laughs.docx", _billion_laughs_docx, "DTD"),
    ("laughs.xlsx", _billion_laughs_xlsx, "DTD"),
    ("broken.xlsx", _corrupt, "unreadable"),
    ("huge.csv", _huge, "too large"),
]


@pytest.mark.parametrize(("name", "make", "reason"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_file_is_refused_quickly_with_a_reason(
    tmp_path: Path, name: str, make: object, reason: str
) -> None:
    assert callable(make)
    path = make(tmp_path / name)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    scan = scan_file(path)
    assert time.perf_counter() - started < 2.0
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200 * 1024  # KiB
    assert any(reason in e for e in scan.errors), scan.errors


def test_zip_slip_member_is_skipped_but_the_rest_is_scanned(tmp_path: Path) -> None:
    scan = scan_file(_zip_slip(tmp_path / "slip.zip"))
    assert scan.findings == {"china_mobile": 1}
    assert unsafe_member("/etc/passwd")
    assert unsafe_member("C:\\x.txt")
    assert not unsafe_member("a/b.txt")


def test_the_scan_carries_on_after_hostile_files_across_processes(tmp_path: Path) -> None:
    good = tmp_path / "good.txt"
    good.write_text(f"手机 {MOBILE}", encoding="utf-8")
    paths = [_zip_bomb(tmp_path / "bomb.zip"), _corrupt(tmp_path / "bad.xlsx"), good]
    scans = scan_files(paths, workers=2)
    assert [bool(s.errors) for s in scans] == [True, True, False]
    assert scans[2].findings == {"china_mobile": 1}


def test_member_larger_than_its_header_claims_is_cut_off(tmp_path: Path) -> None:
    path = tmp_path / "liar.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("a.txt", b"1" * (3 << 20))
    scan = scan_file(path, limits=Limits(max_member_bytes=1 << 20))
    assert any("too large" in e or "limit" in e for e in scan.errors), scan.errors
