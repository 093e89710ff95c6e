"""pgaudit: the numpy split of AUDIT payloads agrees with the regex it stands in for."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from molehunt.ingest.postgres.audit import _AUDIT_GROUPS, AUDIT_PAYLOAD, _unquote, audit_fields
from molehunt.ingest.postgres.kernels import ints_at, windows
from molehunt.ingest.postgres.times import DEFAULT_ZONES, log_times_at
from molehunt.ingest.postgres.zones import resolve_zone

FIELDS = [
    "audit_class",
    "command",
    "object_type",
    "object_name",
    "statement",
    "params_raw",
    "logged_rows",
    "statement_id",
    "substatement_id",
]


def fast(messages: list[str]) -> dict[int, dict[str, Any]]:
    """Rows the numpy split vouches for, by position."""
    table = audit_fields(pa.array(range(len(messages)), pa.int64()), pa.array(messages))
    return {row.pop("offset"): row for row in table.to_pylist()}


def by_regex(messages: list[str]) -> list[dict[str, Any] | None]:
    """What the SQL regex makes of each message (None: unparseable)."""
    names = ", ".join(f"'{g}'" for g in _AUDIT_GROUPS)
    pattern = "'" + AUDIT_PAYLOAD.replace("'", "''") + "'"
    con = duckdb.connect()
    con.register("m", pa.table({"i": range(len(messages)), "message": messages}))
    rows = con.execute(
        f"""
        WITH x AS (SELECT i, regexp_extract(message, {pattern}, [{names}]) AS p FROM m)
        SELECT p.audit_type <> '' AS ok, p.cls, p.cmd, p.otype, {_unquote("p.obj")},
          {_unquote("p.stmt")}, {_unquote("p.params")}, try_cast(nullif(p.rows, '') AS BIGINT),
          try_cast(p.sid AS BIGINT), try_cast(p.ssid AS BIGINT)
        FROM x ORDER BY i
        """
    ).fetchall()
    return [dict(zip(FIELDS, row[1:], strict=True)) if row[0] else None for row in rows]


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (
            "SESSION,1,1,READ,SELECT,TABLE,public.clients,SELECT 1;,<none>,3000",
            ("READ", "SELECT", "TABLE", "public.clients", "SELECT 1;", "<none>", 3000, 1, 1),
        ),
        (
            'SESSION,12,2,WRITE,UPDATE,TABLE,public.clients,"UPDATE t SET a = 1, ""b"" = 2",'
            '"1,""x""",-1',
            (
                *("WRITE", "UPDATE", "TABLE", "public.clients"),
                *('UPDATE t SET a = 1, "b" = 2', '1,"x"', -1, 12, 2),
            ),
        ),
        (
            'OBJECT,3,1,READ,DECLARE CURSOR,,,"DECLARE c CURSOR FOR\nSELECT 1",<not logged>',
            (
                *("READ", "DECLARE CURSOR", "", "", "DECLARE c CURSOR FOR\nSELECT 1"),
                *("<not logged>", None, 3, 1),
            ),
        ),
    ],
    ids=["plain", "quoted-with-commas-and-quotes", "no-rows-multiline"],
)
def test_well_formed_payloads_are_split_without_the_regex(
    payload: str, expected: tuple[Any, ...]
) -> None:
    (row,) = fast([f"AUDIT: {payload}"]).values()
    assert tuple(row[f] for f in FIELDS) == expected
    assert row["fast"]


@pytest.mark.parametrize(
    "payload",
    [
        'SESSION,1,1,READ,SEL"ECT,TABLE,t,SELECT 1,<none>,1',  # a quote the regex takes as text
        "SESSION,123456789012345678901,1,READ,SELECT,TABLE,t,SELECT 1,<none>,1",
        'SESSION,1,1,READ,SELECT,TABLE,t,"SELECT 1,<none>,1',  # quote never closed
        'SESSION,1,1,READ,SELECT,TABLE,t,"SELECT "1"",<none>,1',  # lone quote inside quotes
        "SESSION,1,1,read,SELECT,TABLE,t,SELECT 1,<none>,1",
        "SESSION,x,1,READ,SELECT",
        "SESSION,1,1,READ,SELECT,TABLE,t,SELECT\n1,<none>,1",  # newline outside quotes
        "SESSION,1,1,READ,SELECT,TABLE,t,SELECT 1,<none>,1,2",
    ],
)
def test_unusual_payloads_are_left_to_the_regex(payload: str) -> None:
    assert fast([f"AUDIT: {payload}"]) == {}


ODD = ["", '"', ",", "\n", "é", '""', "x y", "-1"]
FIELD_VALUES = [
    ["SESSION", "OBJECT"],
    ["1", "42", "123456789012345678901"],
    ["1", "2"],
    ["READ", "WRITE", "MISC_SET"],
    ["SELECT", "DECLARE CURSOR", 'SEL"ECT'],
    ["TABLE", ""],
    ["public.clients", "", '"a,b"'],
    ["SELECT 1", '"SELECT a, b"', '"SELECT ""x"" FROM t"', '"SELECT\n1"', '"x"y"'],
    ["<none>", "<not logged>", '"1,""two"""'],
    ["1", "-3", "", "x"],
]
payloads = st.tuples(
    *(st.one_of(st.sampled_from(v), st.sampled_from(ODD)) for v in FIELD_VALUES),
    st.booleans(),
).map(lambda t: ",".join(t[:9] if t[10] else t[:10]))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(payloads, min_size=1, max_size=30),
    st.integers(0, 40),
    st.binary(max_size=3),
)
def test_every_row_split_in_numpy_is_what_the_regex_reads(
    payloads: list[str], cut: int, junk: bytes
) -> None:
    messages = [f"AUDIT: {p}" for p in payloads]
    messages[0] = messages[0][:cut] + junk.decode("latin-1") + messages[0][cut:]
    truth = by_regex(messages)
    split = fast(messages)
    for i, row in split.items():
        assert truth[i] is not None, messages[i]
        assert {f: row[f] for f in FIELDS} == truth[i], messages[i]
    # Plain payloads within the fast path's lengths (ids up to 18 digits) are never left out.
    plain = [
        i
        for i, p in enumerate(payloads)
        if p.count('"') == 0 and "\n" not in p and "123456789012345678901" not in p
    ]
    for i in plain:
        if i and truth[i] is not None:
            assert i in split, messages[i]


def _laid_out(texts: list[str]) -> tuple[Any, Any, Any, pa.Buffer]:
    """``texts`` end to end in one buffer (a byte between each), and where each lies."""
    blob = "\x1f".join(texts).encode()
    sizes = np.array([len(t.encode()) for t in texts], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(sizes + 1)[:-1]]).astype(np.int64)
    return np.frombuffer(blob, dtype=np.uint8), starts, starts + sizes, pa.py_buffer(blob)


_TIMES = st.one_of(
    st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(9999, 12, 31)).map(
        lambda d: d.strftime("%Y-%m-%d %H:%M:%S.") + f"{d.microsecond // 1000:03d}"
    ),
    st.datetimes().map(lambda d: d.strftime("%Y-%m-%d %H:%M:%S")),
    st.text(alphabet="0123456789-: .T", min_size=10, max_size=26),
).flatmap(
    lambda t: st.sampled_from(["UTC", "GMT", "Z", "CST", "CEST", "+08", "-0330", "UTCX", ""]).map(
        lambda z: f"{t} {z}" if z else t
    )
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_TIMES, min_size=1, max_size=40))
def test_log_times_read_from_bytes_are_what_duckdb_reads(texts: list[str]) -> None:
    data, starts, stops, _ = _laid_out(texts)
    micros, read = log_times_at(data, starts, stops, DEFAULT_ZONES)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    for text, value, ok in zip(texts, micros.tolist(), read.tolist(), strict=True):
        if not ok:
            continue
        local, _, zone = text.rpartition(" ")
        minutes, _, _ = resolve_zone(zone, DEFAULT_ZONES)
        assert minutes is not None, text  # only a zone of one offset is read from the bytes
        fmt = "%Y-%m-%d %H:%M:%S.%g" if "." in local else "%Y-%m-%d %H:%M:%S"
        ((expected,),) = con.execute("SELECT epoch_us(strptime(?, ?))", [local, fmt]).fetchall()
        assert value == expected - minutes * 60_000_000, text


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("5725", 5725),
        ("0", 0),
        ("00042", 42),
        ("12345678", 12345678),
        ("123456789", 123456789),  # past the word: read as text
        ("99999999999", None),  # does not fit an INTEGER
        ("", None),
        ("12a", None),
        (" 7", 7),  # try_cast trims spaces
        ("-3", -3),
    ],
)
def test_ints_read_from_bytes_are_try_cast_as_integer(text: str, value: int | None) -> None:
    # A long prefix: the 8-byte word that ends each number lies inside the buffer.
    data, starts, stops, buffer = _laid_out(["prefix-of-the-buffer", text, "x"])
    got = ints_at(data, buffer, starts[1:2], stops[1:2]).to_pylist()
    assert got == [value]


@given(
    data=st.binary(max_size=64),
    width=st.integers(1, 40),
    picks=st.lists(st.integers(0, 63), max_size=12),
)
def test_windows_hold_the_bytes_at_each_start_even_near_the_end(
    data: bytes, width: int, picks: list[int]
) -> None:
    # A view that starts one byte in: the word reads must not assume alignment.
    buf = np.frombuffer(b"\0" + data, dtype=np.uint8)[1:]
    begin = np.array([p for p in picks if p < len(data)], dtype=np.int64)
    rows = windows(buf, begin, width)
    assert rows.shape == (len(begin), width)
    for row, start in zip(rows, begin.tolist(), strict=True):
        inside = data[start : start + width]
        assert row[: len(inside)].tobytes() == inside
