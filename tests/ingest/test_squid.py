"""The ``squid`` parser: Squid access logs in the molehunt logformat."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from molehunt_testing import shared_fixtures

from molehunt.ingest.base import ParseResult, event_id
from molehunt.ingest.squid import SquidParser
from molehunt.ingest.squid_native import SquidNativeParser
from molehunt.store.schema import MIGRATIONS

GET = (
    "1795696590.242 127.0.0.1 - GET http 127.0.0.1 18080 200 TCP_MISS/HIER_DIRECT 153 153 5246"
    ' 246 "text/html" 2 "Mozilla/5.0 Chrome/120" "-" - "http://127.0.0.1:18080/product/123"'
)
POST = (
    "1795696591.268 10.1.2.3 wang.fang POST http crm.corp.local 80 200 TCP_MISS/HIER_DIRECT"
    ' 2000546 293 262 251 "application/json" 1014 "Mozilla/5.0 Chrome/120"'
    ' "multipart/form-data; boundary=----bd4d" 2000253 "http://crm.corp.local/api/upload"'
)
CONNECT = (
    "1795696592.297 10.1.2.3 - CONNECT - pan.baidu.com 443 200 TCP_TUNNEL/HIER_DIRECT 2003638"
    ' 125 2091 39 "-" 1014 "Mozilla/5.0 Chrome/120" "-" - "pan.baidu.com:443"'
)
# Real lines Squid 5.7 wrote for a garbage request and for a client that hung up.
INVALID_REQUEST = (
    '1795702939.560 127.0.0.1 - GARBAGE - - - 400 NONE_NONE/HIER_NONE 11 11 3376 351 "text/html"'
    ' 0 "-" "-" - "error:invalid-request"'
)
HUNG_UP = (
    '1795702939.561 127.0.0.1 - - - - - 0 NONE_NONE/HIER_NONE 0 0 0 0 "-" 0 "-" "-" -'
    ' "error:transaction-end-before-headers"'
)


def parse(text: str | bytes, base_offset: int = 0) -> ParseResult:
    data = text.encode() if isinstance(text, str) else text
    return SquidParser().parse(data, base_offset=base_offset, source_id="src", path="access.log")


def only_row(text: str) -> dict[str, Any]:
    result = parse(text + "\n")
    assert result.rejected == []
    rows: list[dict[str, Any]] = result.tables["events_http"].to_pylist()
    assert len(rows) == 1
    return rows[0]


def variant(line: str, **fields: str) -> str:
    """``line`` with some space-separated fields (1-based: f1=...) replaced."""
    parts = line.split(" ")
    for key, value in fields.items():
        parts[int(key[1:]) - 1] = value
    return " ".join(parts)


GOOD = [
    pytest.param(
        GET,
        {
            "time": datetime(2026, 11, 26, 12, 36, 30, 242000, tzinfo=UTC),
            "src_ip": "127.0.0.1",
            "user_name": None,
            "method": "GET",
            "url": "http://127.0.0.1:18080/product/123",
            "host": "127.0.0.1",
            "port": 18080,
            "path": "/product/123",
            "status": 200,
            "squid_result": "TCP_MISS",
            "hierarchy": "HIER_DIRECT",
            "bytes_out": 153,
            "bytes_in": 5246,
            "request_content_type": None,
            "content_type": "text/html",
            "user_agent": "Mozilla/5.0 Chrome/120",
            "duration_ms": 2,
            "kind": "squid",
            "source_id": "src",
            "event_id": "src:000000000000",
        },
        id="get",
    ),
    pytest.param(
        POST,
        {
            "user_name": "wang.fang",
            "bytes_out": 2000546,
            "bytes_in": 262,
            "request_content_type": "multipart/form-data; boundary=----bd4d",
            "content_type": "application/json",
            "host": "crm.corp.local",
            "port": 80,
            "path": "/api/upload",
        },
        id="multipart-upload-counts-request-bytes",
    ),
    pytest.param(
        CONNECT,
        {
            "method": "CONNECT",
            "url": "pan.baidu.com:443",
            "host": "pan.baidu.com",
            "port": 443,
            "path": None,
            "bytes_out": 2003638,
            "squid_result": "TCP_TUNNEL",
            "content_type": None,
        },
        id="connect-host-and-port-from-target",
    ),
    pytest.param(
        variant(CONNECT, f6="::1", f20='"[::1]:8443"'),
        {"host": "::1", "port": 8443},
        id="connect-to-ipv6",
    ),
    pytest.param(
        variant(GET, f6="%5B::1%5D", f20='"http://[::1]:18080/a?"'),
        {"host": "::1", "port": 18080, "path": "/a"},
        id="ipv6-domain-as-squid-escapes-it",
    ),
    pytest.param(
        variant(GET, f20='"http://h.example/a/b.php?"'),
        {"path": "/a/b.php", "url": "http://h.example/a/b.php?"},
        id="path-without-query",
    ),
    pytest.param(
        variant(GET, f20='"http://h.example"'), {"path": "/"}, id="url-without-path-is-root"
    ),
    pytest.param(
        GET.replace('"Mozilla/5.0 Chrome/120"', r'"a \"quoted\" \\ agent\t"'),
        {"user_agent": 'a "quoted" \\ agent\\t'},
        id="escaped-quote-and-backslash-in-header",
    ),
    pytest.param(
        GET.replace(" - GET ", " al ice GET "), {"user_name": "al ice"}, id="user-with-space"
    ),
    pytest.param(
        GET.replace(" - GET ", ' 张三"x GET '), {"user_name": '张三"x'}, id="user-utf8-and-quote"
    ),
    pytest.param(
        INVALID_REQUEST,
        {"method": "GARBAGE", "host": None, "port": None, "path": None, "status": 400},
        id="squid-invalid-request",
    ),
    pytest.param(
        HUNG_UP,
        {"method": None, "status": 0, "url": "error:transaction-end-before-headers"},
        id="squid-client-hung-up",
    ),
    pytest.param(
        GET.replace(" 2 ", " - ", 1).replace('"text/html" 2', '"text/html" -'),
        {"duration_ms": None},
        id="unknown-duration",
    ),
]


@pytest.mark.parametrize(("line", "expected"), GOOD)
def test_good_line_becomes_one_event(line: str, expected: dict[str, Any]) -> None:
    row = only_row(line)
    assert {k: row[k] for k in expected} == expected


def test_crlf_line_end_is_accepted() -> None:
    result = parse(GET + "\r\n" + POST + "\r\n")
    assert result.rejected == []
    urls = result.tables["events_http"].column("url").to_pylist()
    assert urls == ["http://127.0.0.1:18080/product/123", "http://crm.corp.local/api/upload"]


BAD = [
    pytest.param("garbage", "not a line", id="garbage"),
    pytest.param("", "not a line", id="empty"),
    pytest.param(GET[:80], "not a line", id="truncated"),
    pytest.param(GET.replace(" 5246 ", " 52x6 "), "not a line", id="size-not-a-number"),
    pytest.param(GET.replace(" 5246 ", " -5246 "), "not a line", id="negative-size"),
    pytest.param(GET.replace(" ", "\t"), "not a line", id="tab-separated"),
    pytest.param(GET + " extra", "not a line", id="extra-field"),
    pytest.param(
        GET.replace("1795696590.242", "1795696590.24"), "not a line", id="two-digit-millis"
    ),
    pytest.param(GET.replace(" 5246 ", " 99999999999999999999 "), "byte count", id="overflow"),
    pytest.param(GET.replace(" 18080 ", " 70000 "), "port out of range", id="port"),
    pytest.param(GET.replace(" 200 ", " 9999999 "), "status out of range", id="status"),
    pytest.param(GET.replace("1795696590.242", "253402300800.000"), "timestamp", id="year-10000"),
    pytest.param(GET.replace('"text/html" 2', '"text/html" 99999999999999999999'), "duration"),
]


@pytest.mark.parametrize(("line", "reason"), BAD)
def test_bad_line_is_rejected_where_it_is_and_neighbours_kept(line: str, reason: str) -> None:
    before = GET + "\n"
    result = parse(before + line + "\n" + POST + "\n")
    assert result.records == 3
    assert [r.offset for r in result.rejected] == [len(before)]
    assert reason in result.rejected[0].reason
    assert result.rejected[0].raw == line
    assert result.rejected[0].line == 2
    assert result.tables["events_http"].column("method").to_pylist() == ["GET", "POST"]


def test_invalid_utf8_is_rejected() -> None:
    data = (GET + "\n").encode() + b"\xff\xfe" + (GET + "\n").encode()
    result = parse(data)
    assert [(r.offset, r.reason) for r in result.rejected] == [(len(GET) + 1, "invalid UTF-8")]
    assert result.tables["events_http"].num_rows == 1


def test_last_line_without_newline_is_left_for_later() -> None:
    data = GET + "\n" + POST
    result = parse(data)
    assert result.consumed == len(GET) + 1
    assert result.records == 1
    assert result.tables["events_http"].num_rows == 1


def test_nothing_complete_consumes_nothing() -> None:
    for data in ("", GET):
        result = parse(data)
        assert (result.consumed, result.records, result.events) == (0, 0, 0)
        assert result.rejected == []


def test_ids_and_offsets_count_from_the_chunk_start_in_the_file() -> None:
    result = parse(GET + "\nbad\n" + POST + "\n", base_offset=1000)
    ids = result.tables["events_http"].column("event_id").to_pylist()
    assert ids == [event_id("src", 1000), event_id("src", 1000 + len(GET) + 5)]
    assert [(r.offset, r.line) for r in result.rejected] == [(1000 + len(GET) + 1, None)]


def test_consumed_counts_bytes_not_characters() -> None:
    line = GET.replace(" - GET ", " 张三 GET ")
    result = parse(line + "\n" + line)
    assert result.consumed == len((line + "\n").encode())


def test_columns_are_events_http_columns() -> None:
    ddl = next(s for s in MIGRATIONS[0].statements if "CREATE TABLE events_http" in s)
    columns = set(re.findall(r"^\s+(\w+) [A-Z]", ddl, re.MULTILINE))
    table = parse(GET + "\n").tables["events_http"]
    assert set(table.column_names) <= columns
    assert table.schema.field("time").type == pa.timestamp("us", tz="UTC")
    assert parse(b"").tables["events_http"].schema == table.schema


NATIVE = (
    "1795696590.242      2 127.0.0.1 TCP_MISS/200 5246 GET http://127.0.0.1:18080/product/123"
    " - HIER_DIRECT/127.0.0.1 text/html"
)


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        pytest.param(GET + "\n" + POST + "\n" + CONNECT[:40], True, id="molehunt"),
        pytest.param(GET, True, id="one-unfinished-line"),
        pytest.param(NATIVE + "\n", False, id="native"),
        pytest.param("garbage\n" * 3, False, id="garbage"),
        pytest.param("", False, id="empty"),
        pytest.param("2026-05-03 09:15:22.123 +08,crm,LOG\n", False, id="csv"),
    ],
)
def test_sniff(head: str, expected: bool) -> None:
    assert SquidParser.sniff(head.encode()) is expected
    if expected:
        assert SquidNativeParser.sniff(head.encode()) is False


@pytest.mark.fixtures
def test_shared_fixture_get_upload_and_tunnel() -> None:
    path = shared_fixtures("squid", "access-molehunt-format.log")
    data = path.read_bytes()
    assert SquidParser.sniff(data[:65536])
    result = SquidParser().parse(data, base_offset=0, source_id="fx", path=str(path))
    assert result.rejected == []
    assert result.consumed == len(data)
    rows = {r["method"]: r for r in result.tables["events_http"].to_pylist()}
    assert set(rows) == {"GET", "POST", "CONNECT"}
    assert rows["POST"]["bytes_out"] == 2000546
    assert rows["POST"]["bytes_out"] > 2_000_000  # the 2 MB upload is visible
    assert rows["POST"]["request_content_type"].startswith("multipart/form-data; boundary=")
    assert (rows["CONNECT"]["host"], rows["CONNECT"]["port"]) == ("127.0.0.1", 18443)
    assert rows["CONNECT"]["bytes_out"] == 2003638
    assert rows["GET"]["bytes_in"] == 5246


def chunked(data: bytes, cuts: list[int]) -> tuple[list[dict[str, Any]], list[int], int]:
    """Parse ``data`` the way the runner does: cut anywhere, carry the rest over."""
    rows: list[dict[str, Any]] = []
    rejected: list[int] = []
    offset = records = 0
    pending = b""
    for cut in [*sorted(cuts), len(data)]:
        if cut <= offset + len(pending):
            continue
        piece = pending + data[offset + len(pending) : cut]
        result = parse(piece, base_offset=offset)
        rows += result.tables["events_http"].to_pylist()
        rejected += [r.offset for r in result.rejected if r.offset is not None]
        records += result.records
        offset += result.consumed
        pending = piece[result.consumed :]
    return rows, rejected, records


def test_cutting_the_file_anywhere_gives_the_same_events() -> None:
    data = (
        "\n".join([GET, "junk", POST, CONNECT, HUNG_UP, GET.replace(" - ", " a b ")]) + "\n"
    ).encode()
    whole = parse(data)
    expected = whole.tables["events_http"].to_pylist()
    for cuts in ([1], [len(GET) + 1], [10, 200, 201, 500, 700], list(range(0, len(data), 97))):
        rows, rejected, records = chunked(data, cuts)
        assert rows == expected
        assert rejected == [r.offset for r in whole.rejected]
        assert records == whole.records == 6


# --- fuzzing: an independent reading of the logformat as the oracle -------------

_Q = r'"((?:[^"\\]|\\.)*)"'
_N = r"(\d+|-)"
REFERENCE = re.compile(
    r"(\d+)(?:\.(\d\d\d))? ([^ ]+) ([^ ].*?) ([^ ]+) ([^ ]+) ([^ ]+) "
    + _N
    + " "
    + _N
    + r" ([^ /]+)/([^ ]+) (\d+) "
    + _N
    + r" (\d+) "
    + _N
    + " "
    + _Q
    + " "
    + _N
    + " "
    + _Q
    + " "
    + _Q
    + " "
    + _N
    + r' "(.*)"\r?',
    re.ASCII,
)
INT64 = 2**63 - 1


def split_part(text: str, sep: str, index: int) -> str:
    parts = text.split(sep)
    return parts[index - 1] if index <= len(parts) else ""


def reference(raw: bytes) -> dict[str, Any] | None:
    """What a line (without its newline) should give, or None to reject it."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    m = REFERENCE.fullmatch(text)
    if m is None:
        return None
    (sec, ms, ip, user, method, _, _, port, status, result, hier, up, _, down, _) = m.groups()[:15]
    mime, duration, agent, request_type, _, url = m.groups()[15:]
    ms = ms or "000"  # whole seconds: %ts without %03tu
    if int(sec) * 1000 + int(ms) >= 253_402_300_800_000:
        return None

    def number(text: str, limit: int) -> int | bool | None:
        if text == "-":
            return None
        value = int(text)
        return value if value <= limit else False

    numbers = {
        "status": number(status, 65535),
        "bytes_out": number(up, INT64),
        "bytes_in": number(down, INT64),
        "duration_ms": number(duration, INT64),
    }
    if method == "CONNECT":
        if url.startswith("["):
            target_port = split_part(split_part(url, "]", 2), ":", 2)
        else:
            target_port = url.split(":")[-1] if ":" in url else ""
        if target_port and not (target_port.isascii() and target_port.isdigit()):
            return None
        numbers["port"] = number(target_port or "-", 65535)
    else:
        numbers["port"] = number(port, 65535)
    if any(v is False for v in numbers.values()):
        return None

    def unescaped(text: str) -> str | None:
        value = re.sub(r'\\(["\\])', r"\1", text)
        return None if value == "-" else value

    return {
        "time": datetime.fromtimestamp(int(sec), UTC).replace(microsecond=int(ms) * 1000),
        "src_ip": ip,
        "user_name": None if user == "-" else user,
        "method": None if method == "-" else method,
        "squid_result": result,
        "hierarchy": hier,
        "content_type": unescaped(mime),
        "user_agent": unescaped(agent),
        "request_content_type": unescaped(request_type),
        "url": url,
        **numbers,
    }


FIELDS_SEEN = [
    "1795696590.242",
    "127.0.0.1",
    "张三",
    "al ice",
    "GET",
    "CONNECT",
    "-",
    "http",
    "%5B::1%5D",
    "200",
    "TCP_MISS/HIER_DIRECT",
    '"a \\"b\\" c"',
    '"é ü"',
    '"-"',
]
PIECES = [b" ", b'"', b"\\", b"-", b"/", b"0", b"9", b".", b"\xff", b"\xe5\xbc", b"\r", b"\t"]


@st.composite
def mutated_line(draw: st.DrawFn) -> bytes:
    line = draw(st.sampled_from([GET, POST, CONNECT, INVALID_REQUEST, HUNG_UP]))
    parts = line.split(" ")
    for _ in range(draw(st.integers(0, 2))):
        parts[draw(st.integers(0, len(parts) - 1))] = draw(st.sampled_from(FIELDS_SEEN))
    raw = " ".join(parts).encode()
    for _ in range(draw(st.integers(0, 3))):
        op = draw(st.sampled_from(["insert", "delete", "truncate", "keep"]))
        at = draw(st.integers(0, len(raw)))
        if op == "insert":
            raw = raw[:at] + draw(st.sampled_from(PIECES)) + raw[at:]
        elif op == "delete":
            raw = raw[:at] + raw[at + draw(st.integers(1, 12)) :]
        elif op == "truncate":
            raw = raw[:at]
    return raw


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(lines=st.lists(mutated_line(), min_size=1, max_size=40), tail=st.binary(max_size=20))
def test_fuzzed_lines_never_raise_and_every_bad_one_is_rejected(
    lines: list[bytes], tail: bytes
) -> None:
    data = b"".join(line + b"\n" for line in lines) + tail.replace(b"\n", b"")
    result = parse(data, base_offset=5)

    expected_good: dict[int, dict[str, Any]] = {}
    expected_bad: list[int] = []
    offset = 0
    for line in data.split(b"\n")[:-1]:
        want = reference(line)
        if want is None:
            expected_bad.append(offset + 5)
        else:
            expected_good[offset + 5] = want
        offset += len(line) + 1

    assert result.consumed == offset
    assert result.records == len(expected_good) + len(expected_bad)
    assert [r.offset for r in result.rejected] == expected_bad
    rows = result.tables["events_http"].to_pylist()
    assert [r["event_id"] for r in rows] == [event_id("src", o) for o in expected_good]
    for row, want in zip(rows, expected_good.values(), strict=True):
        assert {k: row[k] for k in want} == want
