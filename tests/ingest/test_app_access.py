from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from molehunt.ingest.app_access import AppAccessParser
from molehunt.ingest.base import ParseResult, event_id, event_ids
from molehunt.store.schema import MIGRATIONS

VIEW = (
    '{"ts": "2026-05-03T09:15:22.123+08:00", "app": "crm", "user": "liu.wei", '
    '"src_ip": "10.20.3.17", "action": "view", "client_ids": ["C00012345"], '
    '"rows": 1, "detail": "client card"}'
)


def parse(text: str | bytes, base_offset: int = 0) -> ParseResult:
    data = text.encode() if isinstance(text, str) else text
    return AppAccessParser().parse(data, base_offset=base_offset, source_id="src", path="app.log")


def line(**fields: Any) -> str:
    """The VIEW line with some fields replaced (None = the key left out)."""
    doc: dict[str, Any] = json.loads(VIEW)
    for key, value in fields.items():
        if value is None:
            doc.pop(key, None)
        else:
            doc[key] = value
    return json.dumps(doc, ensure_ascii=False)


def test_view_line_becomes_an_event_and_a_record_access() -> None:
    result = parse(VIEW + "\n")

    assert result.rejected == []
    assert result.records == 1
    assert result.tables["events_app"].to_pylist() == [
        {
            "event_id": "src:000000000000",
            "time": datetime(2026, 5, 3, 1, 15, 22, 123000, tzinfo=UTC),
            "source_id": "src",
            "app": "crm",
            "user_name": "liu.wei",
            "src_ip": "10.20.3.17",
            "action": "view",
            "rows": 1,
            "detail": "client card",
            "n_client_ids": 1,
        }
    ]
    assert result.tables["record_access"].to_pylist() == [
        {"event_id": "src:000000000000", "client_id": "C00012345", "how": "listed"}
    ]


def test_export_of_5000_ids_lists_every_one() -> None:
    ids = [f"C{n:08d}" for n in range(5000)]
    result = parse(line(action="export", client_ids=ids, rows=5000) + "\n")

    access = result.tables["record_access"]
    assert access.num_rows == 5000
    assert access["client_id"].to_pylist() == ids
    assert set(access["event_id"].to_pylist()) == {"src:000000000000"}
    assert result.tables["events_app"]["n_client_ids"].to_pylist() == [5000]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(line(app=None, src_ip=None, detail=None, rows=None), {}, id="only-required"),
        pytest.param(line(client_ids=None), {"n_client_ids": None}, id="no-client-ids"),
        pytest.param(line(client_ids=[]), {"n_client_ids": 0}, id="empty-client-ids"),
        pytest.param(
            line(src_ip=None, client_ids=None), {"src_ip": None}, id="no-src-ip-nor-client-ids"
        ),
        pytest.param(line().replace('"rows": 1', '"rows": null'), {"rows": None}, id="null-rows"),
        pytest.param(
            line(ts="2026-05-03 09:15:22Z"),
            {"time": datetime(2026, 5, 3, 9, 15, 22, tzinfo=UTC)},
            id="space-and-z",
        ),
        pytest.param(
            line(ts="2026-05-03T09:15:22.1234567-0130"),
            {"time": datetime(2026, 5, 3, 10, 45, 22, 123456, tzinfo=UTC)},
            id="nanoseconds-and-offset-without-colon",
        ),
        pytest.param(line(user="张伟", detail="客户卡"), {"user_name": "张伟"}, id="chinese"),
        pytest.param(line(user='a\\"b'), {"user_name": 'a\\"b'}, id="escapes"),
        pytest.param(line(rows=9223372036854775807), {"rows": 2**63 - 1}, id="largest-rows"),
        pytest.param(VIEW[:-1] + ', "extra": [1, {"x": null}]}', {}, id="unknown-keys-ignored"),
        pytest.param(VIEW[:-1] + ",}", {}, id="trailing-comma-as-duckdb-reads-it"),
        pytest.param(
            VIEW[:-1] + ', "user": "other"}', {"user_name": "liu.wei"}, id="first-key-wins"
        ),
        pytest.param("  " + VIEW + " \r", {}, id="spaces-and-crlf"),
    ],
)
def test_good_line_variants_are_kept(text: str, expected: dict[str, Any]) -> None:
    result = parse(text + "\n")

    assert result.rejected == []
    (row,) = result.tables["events_app"].to_pylist()
    assert {k: row[k] for k in expected} == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        pytest.param(VIEW[:63], "broken JSON: Unterminated string", id="truncated"),
        pytest.param("{'ts': 1}", "broken JSON: Expecting property name", id="single-quotes"),
        pytest.param('["C1"]', "not a JSON object", id="array"),
        pytest.param("null", "not a JSON object", id="null"),
        pytest.param(line(ts=None), "missing ts", id="no-ts"),
        pytest.param(line(ts="2026-05-03T09:15:22.123"), "with a zone", id="ts-without-zone"),
        pytest.param(line(ts="2026-05-03"), "with a zone", id="date-only"),
        pytest.param(line(ts="2026-05-03T24:00:00Z"), "with a zone", id="hour-24"),
        pytest.param(line(ts="2026-05-03T09:00:00+08:60"), "with a zone", id="offset-minute-60"),
        pytest.param(line(ts="2026-02-30T09:00:00Z"), "not a valid time", id="february-30"),
        pytest.param(line(ts="0001-01-01T00:00:00+08:00"), "not a valid time", id="before-year-1"),
        pytest.param(line(ts=1777770922), "ts is not a string", id="epoch-number"),
        pytest.param(line(user=None), "missing user", id="no-user"),
        pytest.param(line(user=""), "user is not a non-empty string", id="empty-user"),
        pytest.param(line(user=42), "user is not a non-empty string", id="numeric-user"),
        pytest.param(line(action="delete"), "unknown action", id="unknown-action"),
        pytest.param(line(action="VIEW"), "unknown action", id="action-case"),
        pytest.param(line(action=None), "missing action", id="no-action"),
        pytest.param(line(app=7), "app is not a string", id="numeric-app"),
        pytest.param(line(src_ip=["10.0.0.1"]), "src_ip is not a string", id="list-ip"),
        pytest.param(line(detail=True), "detail is not a string", id="bool-detail"),
        pytest.param(line(rows=-1), "rows is not a non-negative integer", id="negative-rows"),
        pytest.param(line(rows=1.5), "rows is not a non-negative integer", id="fraction-rows"),
        pytest.param(line(rows="3"), "rows is not a non-negative integer", id="string-rows"),
        pytest.param(line(rows=2**63), "rows is not a non-negative integer", id="rows-overflow"),
        pytest.param(VIEW.replace('"rows": 1', '"rows": NaN'), "rows is not", id="nan-rows"),
        pytest.param(line(client_ids="C00012345"), "not a list of strings", id="ids-string"),
        pytest.param(line(client_ids=["C1", 2]), "not a list of strings", id="ids-number"),
        pytest.param(line(client_ids=["C1", None]), "not a list of strings", id="ids-null"),
        pytest.param(line(client_ids=[["C1"]]), "not a list of strings", id="ids-nested"),
        pytest.param(line(client_ids=["C1", ""]), "holds an empty id", id="ids-empty-string"),
    ],
)
def test_bad_line_is_rejected_where_it_is_and_neighbours_kept(text: str, reason: str) -> None:
    other = line(user="wang.fang")
    data = f"{VIEW}\n{text}\n{other}\n"
    result = parse(data, base_offset=100)

    assert len(result.rejected) == 1
    rejected = result.rejected[0]
    assert reason in rejected.reason
    assert rejected.offset == 100 + len(VIEW) + 1
    assert rejected.raw == text
    users = result.tables["events_app"]["user_name"].to_pylist()
    assert users == ["liu.wei", "wang.fang"]
    assert result.records == 3


# Strings whose text is also what a number, a literal, an object or a list
# would read as: the parser must look at the JSON types to keep them.
LOOKALIKES = [
    line(user="nina", app="true", detail="1.5", src_ip="10"),
    line(user="12345", app="NaN", detail="-Infinity", src_ip="[1]"),
    line(client_ids=["12345", "null", "{}", "1e5", "10.20.3.17", "fe80::1"]),
    line(src_ip="1.2", rows=0),
]


def test_values_that_read_like_other_json_types_are_kept_in_order() -> None:
    lines = [LOOKALIKES[0], VIEW, line(user=5), LOOKALIKES[1], VIEW, *LOOKALIKES[2:], VIEW]
    result = parse("".join(f"{text}\n" for text in lines))

    assert [r.reason for r in result.rejected] == ["user is not a non-empty string"]
    rows = result.tables["events_app"].to_pylist()
    kept = [json.loads(text) for text in lines if text != line(user=5)]
    assert [(r["user_name"], r["app"], r["src_ip"], r["detail"], r["rows"]) for r in rows] == [
        (d["user"], d["app"], d["src_ip"], d["detail"], d["rows"]) for d in kept
    ]
    offsets = [int(r["event_id"].split(":")[1]) for r in rows]
    assert offsets == sorted(offsets)
    access = result.tables["record_access"]["client_id"].to_pylist()
    assert access == [i for d in kept for i in d["client_ids"]]


def test_invalid_utf8_is_rejected_and_raw_kept_readable() -> None:
    data = VIEW.encode() + b"\n" + b'{"user": "\xff\xfe"}\n' + VIEW.encode() + b"\n"
    result = parse(data)

    assert [(r.reason, r.offset) for r in result.rejected] == [("invalid UTF-8", len(VIEW) + 1)]
    assert result.rejected[0].raw == '{"user": "\ufffd\ufffd"}'
    assert result.events == 2


def test_blank_lines_are_no_records() -> None:
    result = parse(f"\n{VIEW}\n  \r\n\n{VIEW}\n")

    assert result.records == 2
    assert result.rejected == []
    assert result.tables["events_app"]["event_id"].to_pylist() == [
        event_id("src", 1),
        event_id("src", len(VIEW) + 7),
    ]


def test_last_line_without_newline_is_left_for_later() -> None:
    result = parse(f"{VIEW}\n{VIEW[:50]}")

    assert result.consumed == len(VIEW) + 1
    assert result.records == 1
    assert result.rejected == []


def test_nothing_complete_consumes_nothing() -> None:
    result = parse(VIEW)

    assert (result.consumed, result.records, result.events) == (0, 0, 0)
    assert result.tables["events_app"].num_rows == 0


def test_ids_and_offsets_count_from_the_chunk_start_in_the_file() -> None:
    result = parse(f"{VIEW}\n{VIEW}\n", base_offset=10**6)

    assert result.tables["events_app"]["event_id"].to_pylist() == [
        event_id("src", 10**6),
        event_id("src", 10**6 + len(VIEW) + 1),
    ]


def test_consumed_counts_bytes_not_characters() -> None:
    text = line(user="张伟") + "\n"
    assert parse(text * 2).consumed == 2 * len(text.encode())


def test_cutting_the_file_anywhere_gives_the_same_events() -> None:
    lines = [line(user=f"u{n}", client_ids=[f"C{n}", f"D{n}"]) for n in range(30)]
    lines[7] = "not json"
    data = "".join(f"{t}\n" for t in lines).encode()
    whole = parse(data)
    for cut in (1, 57, len(data) // 2, len(data) - 3):
        first = parse(data[:cut])
        rest = parse(data[first.consumed :], base_offset=first.consumed)
        assert first.consumed + rest.consumed == len(data)
        for table in ("events_app", "record_access"):
            joined = pa.concat_tables([first.tables[table], rest.tables[table]])
            assert joined.equals(whole.tables[table])
        assert [r.offset for r in first.rejected + rest.rejected] == [
            r.offset for r in whole.rejected
        ]


def test_columns_are_store_columns_with_store_types() -> None:
    statements = MIGRATIONS[0].statements
    result = parse(VIEW + "\n")
    for table in ("events_app", "record_access"):
        ddl = next(s for s in statements if f"CREATE TABLE {table} " in s)
        columns = set(re.findall(r"^\s+(\w+) [A-Z]", ddl, re.MULTILINE))
        assert set(result.tables[table].column_names) <= columns
    schema = result.tables["events_app"].schema
    assert schema.field("time").type == pa.timestamp("us", tz="UTC")
    assert schema.field("n_client_ids").type == pa.int32()
    assert parse(b"").tables["events_app"].schema == schema


@pytest.mark.parametrize(
    "offsets", [[0, 9, 123456789012], [10**12, 5], []], ids=["fast", "beyond-12-digits", "none"]
)
def test_event_ids_in_bulk_match_event_id(offsets: list[int]) -> None:
    import numpy as np

    built = event_ids("源-1", np.array(offsets, dtype=np.int64)).to_pylist()
    assert built == [event_id("源-1", o) for o in offsets]


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        pytest.param(VIEW + "\n" + VIEW[:30], True, id="app-access"),
        pytest.param(VIEW[:2000], True, id="one-unfinished-line"),
        pytest.param('{"@timestamp": "x", "winlog": {}}\n', False, id="winlogbeat"),
        pytest.param("2026-05-03 09:15:22.123 UTC,crm,LOG\n", False, id="csv"),
        pytest.param("", False, id="empty"),
    ],
)
def test_sniff(head: str, expected: bool) -> None:
    assert AppAccessParser.sniff(head.encode()) is expected


# -- fuzzing against a plain-Python reading of the same rules ----------------------

ACTIONS = ("view", "search", "export", "print")
TS = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[T ]([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:\.([0-9]{1,9}))?(Z|([+-])([0-9]{2}):?([0-9]{2}))"
)
BLANK = "blank"


def reference_time(value: object) -> datetime | None:
    if not isinstance(value, str) or not (m := TS.fullmatch(value)):
        return None
    year, month, day, hour, minute, second, fraction, zone, sign, zh, zm = m.groups()
    if year == "0000" or int(hour) > 23 or int(minute) > 59 or int(second) > 59:
        return None
    if zone != "Z" and (int(zh) > 23 or int(zm) > 59):
        return None
    offset = timedelta(0)
    if zone != "Z":
        offset = (1 if sign == "+" else -1) * timedelta(hours=int(zh), minutes=int(zm))
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    try:
        local = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), micro,
            tzinfo=timezone(offset),
        )  # fmt: skip
        return local.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def first_wins(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        out.setdefault(key, value)
    return out


def has_lone_surrogate(value: object) -> bool:
    """A "\\ud800" escape: Python reads it, DuckDB refuses it (it is not Unicode text)."""
    if isinstance(value, str):
        return any("\ud800" <= c <= "\udfff" for c in value)
    if isinstance(value, list):
        return any(has_lone_surrogate(v) for v in value)
    if isinstance(value, dict):
        return any(has_lone_surrogate(k) or has_lone_surrogate(v) for k, v in value.items())
    return False


def reference(raw: bytes) -> dict[str, Any] | str | None:
    """The row a line should give, BLANK, or None for a rejected line."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if not text.strip(" \t\r"):
        return BLANK
    # DuckDB's reader also takes trailing commas; the first of two equal keys wins.
    text = re.sub(r'("(?:[^"\\]|\\.)*")|,(\s*[\]}])', lambda m: m.group(1) or m.group(2), text)
    try:
        doc = json.loads(text, object_pairs_hook=first_wins)
    except (ValueError, RecursionError):
        return None
    if not isinstance(doc, dict) or has_lone_surrogate(doc):
        return None
    time = reference_time(doc.get("ts"))
    user, action, rows, ids = (
        doc.get("user"),
        doc.get("action"),
        doc.get("rows"),
        doc.get("client_ids"),
    )
    if time is None or not isinstance(user, str) or not user:
        return None
    if not isinstance(action, str) or action not in ACTIONS:
        return None
    if any(
        doc.get(k) is not None and not isinstance(doc[k], str) for k in ("app", "src_ip", "detail")
    ):
        return None
    if rows is not None and (type(rows) is not int or not 0 <= rows < 2**63):
        return None
    if ids is not None and not (
        isinstance(ids, list) and all(isinstance(i, str) and i for i in ids)
    ):
        return None
    return {
        "time": time,
        "app": doc.get("app"),
        "user_name": user,
        "src_ip": doc.get("src_ip"),
        "action": action,
        "rows": rows,
        "detail": doc.get("detail"),
        "n_client_ids": None if ids is None else len(ids),
        "ids": ids or [],
    }


TIMES = st.one_of(
    st.datetimes(
        min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
    ).map(lambda d: d.isoformat().replace("+00:00", "Z")),
    st.sampled_from(
        [
            "2026-05-03T09:15:22.123+08:00",
            "2026-05-03 09:15:22+0800",
            "2026-05-03T09:15:22.123456789-05:30",
            "2026-05-03T09:15:22.123",
            "2026-05-03T24:00:00Z",
            "2026-02-29T00:00:00Z",
            "9999-12-31T23:59:59-01:00",
            "0000-01-01T00:00:00Z",
            "2026-05-03T09:15:22+08",
        ]
    ),
)
ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=2)
    ),
    max_leaves=5,
)
IDS = st.lists(st.text(min_size=1, max_size=10), max_size=6)
FIELDS = {
    "ts": TIMES | ANY_JSON,
    "app": st.sampled_from(["crm", "core"]) | ANY_JSON,
    "user": st.sampled_from(["liu.wei", "张伟", 'a"b\\c']) | ANY_JSON,
    "src_ip": st.sampled_from(["10.20.3.17", "::1"]) | ANY_JSON,
    "action": st.sampled_from(ACTIONS) | ANY_JSON,
    "client_ids": IDS | ANY_JSON,
    "rows": st.integers(min_value=-2, max_value=2**64) | ANY_JSON,
    "detail": st.text(max_size=20) | ANY_JSON,
}
PIECES = [
    b",",
    b'"',
    b"\\",
    b"}",
    b"]",
    b"{",
    b" ",
    b"0",
    b"-",
    b"\t",
    b"\x00",
    b"\xff",
    b"\xe5\xbc",
]


@st.composite
def mutated_line(draw: st.DrawFn) -> bytes:
    doc: dict[str, Any] = {}
    for key, strategy in FIELDS.items():
        choice = draw(st.sampled_from(["good", "good", "good", "any", "absent"]))
        if choice == "absent":
            continue
        good = json.loads(VIEW)[key] if key != "client_ids" else draw(IDS)
        doc[key] = good if choice == "good" else draw(strategy)
    raw = json.dumps(doc, ensure_ascii=draw(st.booleans())).encode()
    for _ in range(draw(st.integers(0, 2))):
        op = draw(st.sampled_from(["insert", "delete", "truncate", "keep", "keep"]))
        at = draw(st.integers(0, len(raw)))
        if op == "insert":
            raw = raw[:at] + draw(st.sampled_from(PIECES)) + raw[at:]
        elif op == "delete":
            raw = raw[:at] + raw[at + draw(st.integers(1, 8)) :]
        elif op == "truncate":
            raw = raw[:at]
    return raw.replace(b"\n", b" ")


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(lines=st.lists(mutated_line(), min_size=1, max_size=30), tail=st.binary(max_size=20))
def test_fuzzed_lines_never_raise_and_every_bad_one_is_rejected(
    lines: list[bytes], tail: bytes
) -> None:
    data = b"".join(raw + b"\n" for raw in lines) + tail.replace(b"\n", b"")
    result = parse(data, base_offset=7)

    good: dict[int, dict[str, Any]] = {}
    bad: list[int] = []
    offset = 0
    for raw in data.split(b"\n")[:-1]:
        want = reference(raw)
        if want is None:
            bad.append(offset + 7)
        elif want != BLANK:
            assert isinstance(want, dict)
            good[offset + 7] = want
        offset += len(raw) + 1

    assert result.consumed == offset
    assert result.records == len(good) + len(bad)
    assert [r.offset for r in result.rejected] == bad
    assert all(r.reason for r in result.rejected)
    rows = result.tables["events_app"].to_pylist()
    assert [r["event_id"] for r in rows] == [event_id("src", o) for o in good]
    for row, want in zip(rows, good.values(), strict=True):
        assert {k: row[k] for k in want if k != "ids"} == {
            k: v for k, v in want.items() if k != "ids"
        }
    access = result.tables["record_access"].to_pylist()
    assert [(a["event_id"], a["client_id"]) for a in access] == [
        (event_id("src", o), i) for o, want in good.items() for i in want["ids"]
    ]
