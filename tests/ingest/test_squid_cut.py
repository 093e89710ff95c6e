"""The compiled cutter of Squid lines: each line it takes yields what the SQL yields."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from molehunt.ingest import squid, squid_native
from molehunt.ingest.base import ParseResult
from molehunt.ingest.squid import SquidParser, line_starts, parse_lines
from molehunt.ingest.squid_cut import Kernel, cut, cut_molehunt, cut_native
from molehunt.ingest.squid_native import SquidNativeParser

REPO = Path(__file__).resolve().parents[2]


def _take_nothing(*_: Any) -> int:
    """A kernel that takes no line: every line goes to the SQL, as before the kernel."""
    return 0


FORMATS: dict[str, tuple[Any, str, str, Kernel]] = {
    "squid": (SquidParser, squid._FAST_SQL, squid._SLOW_SQL, cut_molehunt),
    "squid-native": (
        SquidNativeParser,
        squid_native._FAST_SQL,
        squid_native._SLOW_SQL,
        cut_native,
    ),
}


def by_sql(kind: str, data: bytes, base_offset: int) -> ParseResult:
    _, fast, slow, _ = FORMATS[kind]
    return parse_lines(
        data, fast, slow, kernel=_take_nothing, kind=kind, base_offset=base_offset, source_id="s"
    )


def by_parser(kind: str, data: bytes, base_offset: int) -> ParseResult:
    parser = FORMATS[kind][0]()
    result: ParseResult = parser.parse(data, base_offset=base_offset, source_id="s", path="x")
    return result


def taken(kind: str, data: bytes) -> int:
    """How many of the lines of ``data`` the kernel takes."""
    starts, consumed = line_starts(data)
    bounds = np.append(starts, consumed)
    rows, _ = cut(FORMATS[kind][3], data, bounds)
    return len(rows)


def assert_same(kind: str, data: bytes, base_offset: int = 0) -> None:
    want, got = by_sql(kind, data, base_offset), by_parser(kind, data, base_offset)
    assert (got.consumed, got.records) == (want.consumed, want.records)
    assert got.rejected == want.rejected
    a, b = want.tables["events_http"], got.tables["events_http"]
    assert b.schema == a.schema
    for name in a.column_names:
        assert b.column(name).to_pylist() == a.column(name).to_pylist(), name


# Field values: (ones the kernel takes, corner cases it may leave to the SQL).
Pool = tuple[list[str], list[str]]
TIMES = (
    ["1795702934.797", "001795702934.000", "253402300799.999", "1795702934", "253402300799"],
    ["0001795702934.000", "253402300800.000", "12.5", "253402300800", "0001795702934"],
)
IPS: Pool = (["10.0.0.1", "::1", "fe80::1%eth0", "-"], [])
USERS = (["bob", "-", "x\\y"], ["a%20b", "%e5%bc%a0", "al ice", "b\xf6b", 'q"t'])
METHODS: Pool = (["GET", "POST", "CONNECT", "-", "connect", "PUT"], [])
SCHEMES: Pool = (["http", "-", "HTTPS"], [])
DOMAINS = (["example.com", "-", "ex:am"], ["%5B::1%5D", "[::1]", "a%41"])
PORTS = (["80", "-", "65535", "0080"], ["65536", "99999999999999999999"])
STATUSES = (["200", "-", "000", "65535"], ["70000", "2000000"])
RESULTS = (["TCP_MISS/HIER_DIRECT", "NONE_NONE/HIER_NONE", "TCP_MISS/HIER_DIRECT/1.2.3.4"], ["X/-"])
COUNTS = (
    ["0", "180", "999999999999999999"],
    ["9223372036854775807", "9223372036854775808", "123456789012345678901"],
)
NUMS = (["-", "0", "250"], ["99999999999999999999"])
HEADERS = (
    ["text/html", "-", "", "a b", "multipart/form-data; boundary=----x7"],
    ['x\\"y', "\xe9"],
)
URLS = (
    [
        "http://h/p?q#f",
        "http://u:p@h:8080/x",
        "https://h",
        "HTTP://H:0/",
        "ftp://h/",
        "ws://h",
        "wss://h#x/y",
        "http://h?x/y",
        "http://a@b@c:1/",
        "http://h:/x",
        "gopher://h/x",
        "a:b://h/x",
        "http:///x",
        "h:443",
        ":443",
        "h:",
        "h:1:2",
        "-",
        "/relative",
        "error:transaction-end-before-headers",
        "a\\b",
    ],
    ["http://h:99999/x", "http://h:8a/x", "http://[::1]:80/x", "h:abc", "[::1]:443", "x y", 'q"u'],
)
DURATIONS = (["1", "-", "1234567"], ["99999999999999999999"])
HIERS: Pool = (["HIER_DIRECT/1.2.3.4", "HIER_NONE/-", "HIER_DIRECT/::1", "HIER_DIRECT/a/b"], [])
TYPES: Pool = (["text/html", "-", "a/b;c=d"], [])
PADS: Pool = (["", "     "], [])
CODES: Pool = (["TCP_MISS", "NONE_NONE"], [])
THREE: Pool = (["200", "000", "502"], [])


def molehunt_line(pick: Callable[[Pool], str]) -> str:
    return (
        f"{pick(TIMES)} {pick(IPS)} {pick(USERS)} {pick(METHODS)} {pick(SCHEMES)}"
        f" {pick(DOMAINS)} {pick(PORTS)} {pick(STATUSES)} {pick(RESULTS)} {pick(COUNTS)}"
        f' {pick(NUMS)} {pick(COUNTS)} {pick(NUMS)} "{pick(HEADERS)}" {pick(DURATIONS)}'
        f' "{pick(HEADERS)}" "{pick(HEADERS)}" {pick(NUMS)} "{pick(URLS)}"'
    )


def native_line(pick: Callable[[Pool], str]) -> str:
    return (
        f"{pick(TIMES)} {pick(PADS)}{pick(DURATIONS)} {pick(IPS)}"
        f" {pick(CODES)}/{pick(THREE)} {pick(COUNTS)} {pick(METHODS)}"
        f" {pick(URLS)} {pick(USERS)} {pick(HIERS)} {pick(TYPES)}"
    )


LINES = {"squid": molehunt_line, "squid-native": native_line}
PIECES = [b" ", b'"', b"\\", b"-", b"/", b":", b"0", b"9", b".", b"\xff", b"\xe5\xbc", b"\r", b"\t"]


def batch(kind: str, seed: int, count: int) -> bytes:
    """Generated lines, a tenth of them mutated, and a partial last line."""
    rng = random.Random(seed)
    lines: list[bytes] = []
    for _ in range(count):
        # Mostly values the kernel takes: a line with a corner case in every
        # field would be one it never takes.
        text = LINES[kind](
            lambda pool: rng.choice(pool[0] + pool[1] if rng.random() < 0.1 else pool[0])
        )
        raw = text.encode()
        if rng.random() < 0.1:
            for _ in range(rng.randrange(1, 4)):
                at = rng.randrange(len(raw) + 1)
                op = rng.randrange(3)
                if op == 0:
                    raw = raw[:at] + rng.choice(PIECES) + raw[at:]
                elif op == 1:
                    raw = raw[:at] + raw[at + rng.randrange(1, 9) :]
                else:
                    raw = raw[:at]
        ending = b"\r\n" if rng.random() < 0.05 else b"\n"
        lines.append(raw.replace(b"\n", b"") + ending)
    return b"".join(lines) + b"1795702934.797 partial"


def test_kernel_output_equals_the_sql_on_a_mixed_batch_of_both_formats() -> None:
    for kind in FORMATS:
        data = batch(kind, seed=5, count=4000)
        # The comparison is only worth something if the kernel takes many lines
        # and leaves many to the SQL.
        assert 400 < taken(kind, data) < 3600, kind
        assert_same(kind, data, base_offset=1234)


def test_kernel_takes_every_plain_line() -> None:
    plain = {
        "squid": (
            "1795702934.797 10.0.0.1 bob GET http example.com 80 200 TCP_MISS/HIER_DIRECT 0 180"
            ' 5000 250 "text/html" 12 "curl/8.5.0" "-" - "http://example.com/x?y=1"\n'
            "1795702934.798 10.0.0.2 - CONNECT - pan.baidu.com 443 200 TCP_TUNNEL/HIER_DIRECT"
            ' 900 300 70 250 "-" 4 "Mozilla/5.0 (X11)" "-" - "pan.baidu.com:443"\n'
        ),
        "squid-native": (
            "1795702934.797      1 127.0.0.1 TCP_MISS/502 3414 GET http://h.invalid/x bob"
            " HIER_NONE/- text/html\n"
            "1795702934.831      5 127.0.0.1 TCP_TUNNEL/200 524 CONNECT 127.0.0.1:39180 -"
            " HIER_DIRECT/127.0.0.1 -\n"
        ),
    }
    for kind, text in plain.items():
        data = text.encode() * 50
        assert taken(kind, data) == 100, kind
        assert_same(kind, data)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from(sorted(FORMATS)),
    choices=st.lists(st.lists(st.integers(0, 10**6), min_size=20, max_size=20), max_size=12),
    base_offset=st.integers(0, 10**9),
)
def test_kernel_fast_path_equals_the_sql_on_generated_lines(
    kind: str, choices: list[list[int]], base_offset: int
) -> None:
    lines = []
    for picks in choices:
        draws = iter(picks)

        def pick(pool: Pool, draws: Iterator[int] = draws) -> str:
            return pool[0][next(draws) % len(pool[0])]

        lines.append(LINES[kind](pick) + "\n")
    assert_same(kind, "".join(lines).encode(), base_offset)


def test_without_a_writable_cache_the_kernel_is_compiled_in_memory() -> None:
    # No locator finds a place to cache (ZipCacheLocator serves only zipped
    # modules): numba refuses cache=True, as with a read-only install.
    code = (
        "from molehunt.ingest.squid_native import SquidNativeParser\n"
        "line = b'1795702934.797 1 10.0.0.1 TCP_MISS/200 9 GET http://h/x - HIER_NONE/- -\\n'\n"
        "r = SquidNativeParser().parse(line, base_offset=0, source_id='s', path='x')\n"
        "print(r.events, r.tables['events_http'].column('host').to_pylist())\n"
    )
    env = {**os.environ, "NUMBA_CACHE_LOCATOR_CLASSES": "ZipCacheLocator"}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1", "['h']"]
