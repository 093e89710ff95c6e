"""Squid conformance: lines in the shapes of beats' squid test logs, with the
values beats' pipeline reads from them (see README.md), through both readers of
Squid's native format: ``squid-native`` and ``squid-logformat`` given the
native logformat line (its pattern path, not the compiled one)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from molehunt.ingest.base import ParseResult
from molehunt.ingest.squid_logformat import SquidLogformatParser
from molehunt.ingest.squid_native import LOGFORMAT, SquidNativeParser

HERE = Path(__file__).parent / "squid"
SAMPLE = HERE / "native-beats-mirror.log"


def native() -> ParseResult:
    return SquidNativeParser().parse(SAMPLE.read_bytes(), base_offset=0, source_id="c", path="a")


def by_codes() -> ParseResult:
    parser = SquidLogformatParser(LOGFORMAT)
    parser._builtin = None  # the pattern built from the codes, not the compiled path
    return parser.parse(SAMPLE.read_bytes(), base_offset=0, source_id="c", path="a")


@pytest.mark.parametrize("read", [native, by_codes], ids=["squid-native", "squid-logformat"])
def test_native_lines_give_the_values_beats_reads(read: Any) -> None:
    result = read()
    assert result.rejected == []
    expected = json.loads((HERE / "native-beats-mirror.expected.json").read_text("utf-8"))
    got = result.tables["events_http"].to_pylist()
    assert len(got) == len(expected)
    for row, want in zip(got, expected, strict=True):
        row["time"] = row["time"].isoformat()
        assert {k: row[k] for k in want} == want
