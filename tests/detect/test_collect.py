"""The context's collect gives each column the values ``to_pylist`` gives (dates and
UTC times are made through NumPy, faster): same values, types and zones."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pyarrow as pa
import pytest

from molehunt.resolve.relations import _values


def _described(values: list[Any]) -> list[tuple[Any, ...]]:
    return [(v, type(v), getattr(v, "tzinfo", None)) for v in values]


@pytest.mark.parametrize(
    "column",
    [
        pa.chunked_array(
            [
                pa.array(
                    [
                        datetime(2026, 8, 28, 1, 2, 3, 456789, UTC),
                        None,
                        datetime(1, 1, 1, tzinfo=UTC),
                    ],
                    pa.timestamp("us", tz="UTC"),
                ),
                pa.array(
                    [datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)], pa.timestamp("us", tz="UTC")
                ),
            ]
        ),
        pa.chunked_array([pa.array([datetime(2026, 8, 28, 1, 2, 3), None], pa.timestamp("us"))]),
        pa.chunked_array([pa.array([1_700_000_000_123, None], pa.timestamp("ms", tz="UTC"))]),
        pa.chunked_array(
            [pa.array([1_700_000_000_000_000_123, None], pa.timestamp("ns", tz="UTC"))]
        ),
        pa.chunked_array([pa.array([1_700_000_000, None], pa.timestamp("s", tz="Asia/Shanghai"))]),
        pa.chunked_array(
            [pa.array([date(2026, 8, 28) - timedelta(days=n) for n in range(40)] + [None])]
        ),
        pa.chunked_array([pa.array([], pa.timestamp("us", tz="UTC"))]),
        pa.chunked_array([pa.array([["a", "b"], None, []], pa.list_(pa.string()))]),
        pa.chunked_array([pa.array([1, None, 3], pa.int64())]),
    ],
)
def test_values_are_what_to_pylist_gives(column: pa.ChunkedArray[Any]) -> None:
    assert _described(_values(column)) == _described(column.to_pylist())
