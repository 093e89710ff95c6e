from __future__ import annotations

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from molehunt.pii.keyed import NORMALIZERS, KeyedHasher, sql_normalize

KEY = bytes(range(32))
# One connection for all examples: connecting per example would dominate the run.
CON = duckdb.connect()


@pytest.mark.parametrize(
    ("kind", "raw", "normalized"),
    [
        ("id_number", "31010119850101002x", "31010119850101002X"),
        ("id_number", " 3101 0119 8501 0100 2X ", "31010119850101002X"),
        ("id_number", "３１０１０１１９８５０１０１００２Ｘ", "31010119850101002X"),
        ("phone", "13800138000", "+8613800138000"),
        ("phone", "138 0013 8000", "+8613800138000"),
        ("phone", "+86 138-0013-8000", "+8613800138000"),
        ("phone", "008613800138000", "+8613800138000"),
        ("phone", "8613800138000", "+8613800138000"),
        ("phone", "021-6234 5678", "+862162345678"),
        ("phone", "１３８００１３８０００", "+8613800138000"),
        ("phone", "", ""),
        ("text", "  上海市  浦东新区\u3000世纪大道 ", "上海市 浦东新区 世纪大道"),
        ("text", "王\t小明", "王 小明"),
    ],
)
def test_normalizers(kind: str, raw: str, normalized: str) -> None:
    assert NORMALIZERS[kind](raw) == normalized


_CHARS = st.text(
    alphabet=st.sampled_from(list("0123456789 +-()xX\t\u3000\u00a0０１２８Ｘ王上海市路号abc")),
    max_size=24,
)


@settings(max_examples=400, deadline=None)
@given(kind=st.sampled_from(sorted(NORMALIZERS)), value=_CHARS)
def test_sql_and_python_normalizers_agree(kind: str, value: str) -> None:
    sql = sql_normalize(kind, "v")
    got = CON.execute(f"SELECT {sql} FROM (SELECT ?::VARCHAR AS v)", [value]).fetchall()[0][0]
    assert got == NORMALIZERS[kind](value)


@settings(max_examples=200, deadline=None)
@given(value=st.text(max_size=40))
def test_sql_and_python_hashes_agree(value: str) -> None:
    hasher = KeyedHasher(KEY)
    sql, params = hasher.sql_hash("v")
    got = CON.execute(f"SELECT {sql} FROM (SELECT ?::VARCHAR AS v)", [*params, value]).fetchall()
    expected = hasher.hash64(value) if value else None
    assert got[0][0] == expected


def test_hash_depends_on_the_key() -> None:
    a, b = KeyedHasher(KEY), KeyedHasher(bytes(reversed(KEY)))
    assert a.hash64("110101199003071234") != b.hash64("110101199003071234")


def test_short_keys_are_refused() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        KeyedHasher(b"short")


def test_repr_never_shows_the_key() -> None:
    assert KEY.hex() not in repr(KeyedHasher(KEY))
