"""Event ids stay byte-identical: the store's deterministic ids are ``source:offset``.

The digests below were taken of the shared fixtures before the two ``event_ids``
(PostgreSQL and the other log parsers) were folded into one in ingest/base.py.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from molehunt_testing import shared_fixtures

from molehunt.ingest.base import event_id, event_ids
from molehunt.ingest.postgres import PgCsvlogParser, PgStderrParser
from molehunt.ingest.squid import SquidParser

FAR = 987_654_321_098  # a base offset with every digit group in use

BEFORE = [
    (PgCsvlogParser, "postgres", "pgaudit-sample.csv", 0, 43, "8f04a0641e98bb83"),
    (PgStderrParser, "postgres", "pgaudit-sample.log", 0, 43, "b42206abddca54d7"),
    (SquidParser, "squid", "access-molehunt-format.log", 0, 3, "f777b06b6a10f8b7"),
    (PgCsvlogParser, "postgres", "pgaudit-sample.csv", FAR, 43, "ab9ad7a4116243bb"),
    (PgStderrParser, "postgres", "pgaudit-sample.log", FAR, 43, "7bf2b29bc9cec196"),
    (SquidParser, "squid", "access-molehunt-format.log", FAR, 3, "f0b0f8b48078206d"),
]


@pytest.mark.fixtures
@pytest.mark.parametrize(("parser", "folder", "name", "base", "count", "digest"), BEFORE)
def test_event_ids_of_fixtures_are_those_of_before_the_fold(
    parser: Any, folder: str, name: str, base: int, count: int, digest: str
) -> None:
    data = shared_fixtures(folder, name).read_bytes()
    options = {"final": True} if parser is not SquidParser else {}
    result = parser().parse(data, base_offset=base, source_id="源-7", path=name, **options)
    ids = [
        i
        for table in sorted(result.tables)
        if table.startswith("events_")
        for i in result.tables[table]["event_id"].to_pylist()
    ]
    assert len(ids) == count
    assert hashlib.sha256("\n".join(ids).encode()).hexdigest()[:16] == digest


@given(
    st.text(min_size=1, max_size=12),
    st.lists(st.integers(min_value=-(10**3), max_value=10**13), max_size=30),
)
def test_event_ids_in_bulk_are_event_id_of_each_offset(source: str, offsets: list[int]) -> None:
    built = event_ids(source, np.array(offsets, dtype=np.int64)).to_pylist()
    assert built == [event_id(source, o) for o in offsets]
