"""No text a case or an event returns holds a planted identifier in clear (issue 14).

Identifiers (ID numbers, mobiles, emails, labelled names), fragments of ID numbers in
SQL literals and names compared with name columns are planted in every text field a
case takes (title, note, reference, item data) and in the statement of an event the
case cites; then every text the service functions give back is searched for them: the
case list, one case, its items, and every file of its export (items.csv, items.xlsx,
events.csv, manifest.json). The web and CLI faces show these same values.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from functools import cache

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import load_workbook

from molehunt.cases import add_item, create_case, export_case, get_case, items, list_cases
from molehunt.pii.mask import is_name_column, mask_sql_literals, mask_texts
from molehunt.pii.recognizers.china_mobile import allocated_prefixes
from molehunt.pii.recognizers.china_resident_id import CHECK_CHARS, WEIGHTS, region_table
from molehunt.store import Store


@cache
def _regions() -> np.ndarray[tuple[int], np.dtype[np.int64]]:
    return np.flatnonzero(region_table())


@st.composite
def resident_ids(draw: st.DrawFn) -> str:
    regions = _regions()
    region = int(regions[draw(st.integers(0, len(regions) - 1))])
    born = date(1940, 1, 1) + timedelta(days=draw(st.integers(0, 365 * 80)))
    body = f"{region:06d}{born:%Y%m%d}{draw(st.integers(0, 999)):03d}"
    return body + chr(CHECK_CHARS[int(np.array([int(c) for c in body]) @ WEIGHTS) % 11])


@st.composite
def mobiles(draw: st.DrawFn) -> str:
    prefixes = np.flatnonzero(allocated_prefixes())
    prefix = str(int(prefixes[draw(st.integers(0, len(prefixes) - 1))]))
    rest = 11 - len(prefix)  # the table's prefixes are PREFIX_DIGITS long
    return f"{prefix}{draw(st.integers(0, 10**rest - 1)):0{rest}d}"


SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "小明静伟芳娜敏强磊军洋勇艳杰娟涛超秀瑶"
NAMES = st.builds(
    lambda s, g: s + g,
    st.sampled_from(SURNAMES),
    st.text(alphabet=GIVEN, min_size=1, max_size=2),
)
NAME_COLUMNS = st.sampled_from(["name", "client_name", "c.cust_nm", '"客户姓名"', "full_name"])


@st.composite
def planted(draw: st.DrawFn) -> tuple[str, list[str]]:
    """A text with an identifier or a name planted the way people and logs write them,
    and the strings that must not come back."""
    ident, mobile, name = draw(resident_ids()), draw(mobiles()), draw(NAMES)
    cut = draw(st.integers(7, 17))
    column = draw(NAME_COLUMNS)
    form = draw(st.integers(0, 6))
    text, secrets = [
        (f"Leak by {ident}", [ident]),
        (f"call {mobile[:3]} {mobile[3:7]} {mobile[7:]}", [mobile]),
        (f"SELECT * FROM clients WHERE id_number LIKE '{ident[:cut]}%'", [ident[:cut]]),
        (f"SELECT * FROM clients WHERE {column} = '{name}'", [name]),
        (f"SELECT * FROM clients WHERE {column} LIKE '{name[0]}%'", [f"'{name[0]}%'"]),
        (f"{column} IN ('{name}', '{mobile}')", [name, mobile]),
        (f"客户姓名：{name}，手机{mobile}", [name, mobile]),
    ][form]
    around = draw(st.text(alphabet="abc xyz-_:;,.()", max_size=12))
    return around + text + around, secrets


def _texts(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield str(k)
            yield from _texts(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _texts(v)
    elif value is not None:
        yield str(value)


def _export_texts(data: bytes) -> Iterator[str]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for name in ("items.csv", "events.csv", "manifest.json"):
            yield zf.read(name).decode("utf-8")
        sheet = load_workbook(io.BytesIO(zf.read("items.xlsx"))).active
        assert sheet is not None
        yield from (str(c.value) for row in sheet.iter_rows() for c in row if c.value)


def _clear(secret: str, texts: list[str]) -> list[str]:
    squeezed = re.sub(r"[\s-]", "", secret)
    return [t for t in texts if secret in t or (squeezed.isdigit() and squeezed in t)]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    title=planted(),
    note=planted(),
    ref=planted(),
    data=planted(),
    statement=planted(),
)
def test_no_case_or_event_text_returns_a_planted_identifier(
    title: tuple[str, list[str]],
    note: tuple[str, list[str]],
    ref: tuple[str, list[str]],
    data: tuple[str, list[str]],
    statement: tuple[str, list[str]],
) -> None:
    with Store.open(":memory:") as store:
        store.con.execute(
            "INSERT INTO events_db (event_id, time, source_id, kind, db_user, src_ip, "
            "command, statement, rows) VALUES ('ev-1', ?, 's1', 'pg-csvlog', 'li_na', "
            "'10.0.0.5', 'SELECT', ?, 1)",
            [datetime(2026, 5, 3, 1, 15, tzinfo=UTC), statement[0]],
        )
        case = create_case(store, title[0], "blue", "ann")
        add_item(store, case.case_id, "event", "ev-1", note[0], {"seen": data[0]}, "ann")
        add_item(store, case.case_id, "person", ref[0], None, None, "ann")
        shown = get_case(store, case.case_id, "blue")
        assert shown is not None
        texts = [
            *_texts([c.as_dict() for c in list_cases(store, None)]),
            *_texts(shown.as_dict()),
            *_texts(items(store, case.case_id, by="bob")),
            *_export_texts(export_case(store, case.case_id, "bob", "Asia/Shanghai")),
        ]
    for secret in (*title[1], *note[1], *ref[1], *data[1], *statement[1]):
        assert _clear(secret, texts) == [], secret


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(planted(), min_size=1, max_size=6))
def test_event_summaries_never_return_a_planted_identifier(
    summaries: list[tuple[str, list[str]]],
) -> None:
    masked = mask_texts([s for s, _ in summaries])
    for (_, secrets), text in zip(summaries, masked, strict=True):
        for secret in secrets:
            assert _clear(secret, [text]) == [], secret


SQL = [
    (
        "SELECT * FROM clients WHERE id_number LIKE '3205081969091020%'",
        "SELECT * FROM clients WHERE id_number LIKE '320*************%'",
    ),
    ("SELECT * FROM c WHERE name = '郭瑶军'", "SELECT * FROM c WHERE name = '郭**'"),
    ("WHERE c.name LIKE '张%' LIMIT 10", "WHERE c.name LIKE '*%' LIMIT 10"),
    ("client_name IN ('张三', 'Li Si')", "client_name IN ('张*', 'L****')"),
    ("\"客户姓名\" = '王小明'", "\"客户姓名\" = '王**'"),
    # Not people's names, and literals too short to be a fragment: unchanged.
    ("username = 'li_na' AND branch_name = '上海分行'", None),
    ("dt = '2026-05-03' AND code = '320508'", None),
    ("client_id = 'C0001234' AND policy = 'P-2026-0001234'", None),
    (
        "birth LIKE '%19690910%' OR phone LIKE '138 0013%'",
        "birth LIKE '%196*****%' OR phone LIKE '138 0013%'",
    ),
    ("no literal here 3205081969091020", None),
]


@pytest.mark.parametrize(("text", "expected"), SQL)
def test_sql_fragments_and_names_in_predicates_are_masked(text: str, expected: str | None) -> None:
    assert mask_sql_literals(text) == (expected or text)


@pytest.mark.parametrize(
    ("column", "names"),
    [
        ("name", True),
        ("t.client_name", True),
        ("cust_nm", True),
        ("_name", True),
        ('"姓名"', True),
        ("username", False),
        ("table_name", False),
        ("branch_name", False),
        ("db_name", False),
    ],
)
def test_name_columns_are_told_from_names_of_things(column: str, names: bool) -> None:
    assert is_name_column(column) is names


def test_case_titles_and_refs_are_stored_masked() -> None:
    with Store.open(":memory:") as store:
        case = create_case(store, "客户 13800138000 投诉", "blue", "ann")
        add_item(store, case.case_id, "person", "11010519491231002X", None, None, "ann")
        stored = store.con.execute(
            "SELECT title, ref FROM cases JOIN case_items USING (case_id)"
        ).fetchall()
        trail = json.dumps(store.query("SELECT target FROM audit_log"), ensure_ascii=False)
    assert stored == [("客户 138****8000 投诉", "110***********002X")]
    assert "11010519491231002X" not in trail
