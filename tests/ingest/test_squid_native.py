"""The ``squid-native`` parser: Squid's default ``squid`` logformat."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from molehunt.ingest.base import ParseResult, event_id
from molehunt.ingest.squid import SquidParser
from molehunt.ingest.squid_native import SquidNativeParser

# Lines as Squid 5.7 wrote them (%6tr pads the duration).
GET = (
    "1795702934.797      1 127.0.0.1 TCP_MISS/502 3414 GET http://nonexistent.invalid/x bob"
    " HIER_NONE/- text/html"
)
CONNECT = (
    "1795702934.831      5 127.0.0.1 TCP_TUNNEL/200 524 CONNECT 127.0.0.1:39180 bob"
    " HIER_DIRECT/127.0.0.1 -"
)
PUT_V6 = (
    "1795702934.811      2 127.0.0.1 TCP_MISS/503 3424 PUT http://[::1]:39180/x? bob"
    " HIER_DIRECT/::1 text/html"
)
UTF8_USER = (
    "1795702913.004      1 127.0.0.1 TCP_MISS/200 710 GET http://127.0.0.1:39180/"
    " %e5%bc%a0%e4%b8%89 HIER_DIRECT/127.0.0.1 text/html"
)
SPACE_USER = (
    '1795702912.983     15 127.0.0.1 TCP_MISS/200 710 GET http://127.0.0.1:39180/ al ice"x'
    " HIER_DIRECT/127.0.0.1 text/html"
)
HUNG_UP = (
    "1795702939.561      0 127.0.0.1 NONE_NONE/000 0 - error:transaction-end-before-headers -"
    " HIER_NONE/- -"
)
SLOW = (
    "1795702939.561 1234567 10.0.0.1 TCP_TUNNEL/200 99 CONNECT pan.baidu.com:443 -"
    " HIER_DIRECT/1.2.3.4 -"
)


def parse(text: str | bytes, base_offset: int = 0) -> ParseResult:
    data = text.encode() if isinstance(text, str) else text
    return SquidNativeParser().parse(data, base_offset=base_offset, source_id="n", path="x")


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        pytest.param(
            GET,
            {
                "time": datetime(2026, 11, 26, 14, 22, 14, 797000, tzinfo=UTC),
                "duration_ms": 1,
                "src_ip": "127.0.0.1",
                "squid_result": "TCP_MISS",
                "status": 502,
                "bytes_in": 3414,
                "bytes_out": None,
                "method": "GET",
                "url": "http://nonexistent.invalid/x",
                "host": "nonexistent.invalid",
                "port": 80,
                "path": "/x",
                "user_name": "bob",
                "hierarchy": "HIER_NONE",
                "content_type": "text/html",
                "user_agent": None,
                "kind": "squid-native",
                "event_id": "n:000000000000",
            },
            id="get-default-port",
        ),
        pytest.param(
            CONNECT,
            {"host": "127.0.0.1", "port": 39180, "path": None, "content_type": None},
            id="connect",
        ),
        pytest.param(PUT_V6, {"host": "::1", "port": 39180, "path": "/x"}, id="ipv6-url"),
        pytest.param(UTF8_USER, {"user_name": "张三"}, id="escaped-user-decoded"),
        pytest.param(SPACE_USER, {"user_name": 'al ice"x'}, id="user-with-space"),
        pytest.param(HUNG_UP, {"method": None, "status": 0, "host": None}, id="client-hung-up"),
        pytest.param(SLOW, {"duration_ms": 1234567, "port": 443}, id="duration-fills-padding"),
        pytest.param(
            GET.replace("http://nonexistent.invalid/x", "https://a.example:8443/p/q?#f"),
            {"host": "a.example", "port": 8443, "path": "/p/q"},
            id="explicit-port",
        ),
    ],
)
def test_good_line_becomes_one_event(line: str, expected: dict[str, Any]) -> None:
    result = parse(line + "\n")
    assert result.rejected == []
    (row,) = result.tables["events_http"].to_pylist()
    assert {k: row[k] for k in expected} == expected


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        pytest.param("garbage", "not a line", id="garbage"),
        pytest.param(GET[:60], "not a line", id="truncated"),
        pytest.param(GET.replace(" 3414 ", " 34x4 "), "not a line", id="size-not-a-number"),
        pytest.param(GET.replace("/502 ", "/5020 "), "not a line", id="status-four-digits"),
        pytest.param(GET.rsplit(" ", 1)[0], "not a line", id="missing-field"),
        pytest.param(GET.replace(" 3414 ", " 99999999999999999999 "), "byte count", id="big"),
        pytest.param(CONNECT.replace(":39180", ":99999"), "port out of range", id="port"),
    ],
)
def test_bad_line_is_rejected_where_it_is_and_neighbours_kept(line: str, reason: str) -> None:
    result = parse(GET + "\n" + line + "\n" + CONNECT + "\n")
    assert [r.offset for r in result.rejected] == [len(GET) + 1]
    assert reason in result.rejected[0].reason
    assert result.rejected[0].raw == line
    assert result.tables["events_http"].column("method").to_pylist() == ["GET", "CONNECT"]


def test_extra_field_is_read_as_part_of_the_user_name() -> None:
    # Squid logs user names raw, spaces included: the grammar cannot tell.
    (row,) = parse(GET + " extra\n").tables["events_http"].to_pylist()
    assert (row["user_name"], row["content_type"]) == ("bob HIER_NONE/-", "extra")


def test_last_line_without_newline_is_left_for_later() -> None:
    result = parse(GET + "\n" + CONNECT)
    assert (result.consumed, result.records, result.events) == (len(GET) + 1, 1, 1)


def test_sniff_tells_native_from_molehunt() -> None:
    head = (GET + "\n" + CONNECT + "\n").encode()
    assert SquidNativeParser.sniff(head)
    assert not SquidParser.sniff(head)
    assert not SquidNativeParser.sniff(b"garbage\n")


# --- fuzzing: an independent reading of the logformat as the oracle -------------

REFERENCE = re.compile(
    r"(\d+)(?:\.(\d\d\d))? +(\d+|-) ([^ ]+) ([^ /]+)/(\d\d\d) (\d+) ([^ ]+) ([^ ]+) ([^ ].*?)"
    r" ([^ /]+)/([^ ]+) ([^ \r\n]+)\r?",
    re.ASCII,
)


def reference(raw: bytes) -> dict[str, Any] | None:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    m = REFERENCE.fullmatch(text)
    if m is None:
        return None
    sec, ms, duration, ip, result, status, down, method, url, _user, hier, _, mime = m.groups()
    ms = ms or "000"  # whole seconds: %ts without %03tu
    if int(sec) * 1000 + int(ms) >= 253_402_300_800_000:
        return None
    if int(down) >= 2**63 or (duration != "-" and int(duration) >= 2**63):
        return None
    if method == "CONNECT":
        target = url
    elif "://" in url:
        rest = url.split("://", 1)[1]
        target = rest.split("/")[0].split("?")[0].split("#")[0].split("@")[-1]
    else:
        target = ""
    if target.startswith("["):
        after = target.split("]")[1] if "]" in target else ""
        port = after.split(":")[1] if ":" in after else ""
    else:
        port = target.split(":")[-1] if ":" in target else ""
    if port and not (port.isascii() and port.isdigit() and int(port) < 65536):
        return None
    return {
        "time": datetime.fromtimestamp(int(sec), UTC).replace(microsecond=int(ms) * 1000),
        "duration_ms": None if duration == "-" else int(duration),
        "src_ip": ip,
        "squid_result": result,
        "status": int(status),
        "bytes_in": int(down),
        "method": None if method == "-" else method,
        "url": url,
        "hierarchy": hier,
        "content_type": None if mime == "-" else mime,
    }


PIECES = [
    b" ",
    b"  ",
    b"/",
    b"[",
    b"]",
    b"@",
    b"?",
    b"0",
    b"9",
    b".",
    b"-",
    b":",
    b"\xff",
    b"\xe5\xbc",
    b"\r",
    b"%",
]


@st.composite
def mutated_line(draw: st.DrawFn) -> bytes:
    raw = draw(st.sampled_from([GET, CONNECT, UTF8_USER, SPACE_USER, HUNG_UP, SLOW])).encode()
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
    result = parse(data, base_offset=7)
    good: dict[int, dict[str, Any]] = {}
    bad: list[int] = []
    offset = 0
    for line in data.split(b"\n")[:-1]:
        want = reference(line)
        if want is None:
            bad.append(offset + 7)
        else:
            good[offset + 7] = want
        offset += len(line) + 1
    assert result.consumed == offset
    assert result.records == len(good) + len(bad)
    assert [r.offset for r in result.rejected] == bad
    rows = result.tables["events_http"].to_pylist()
    assert [r["event_id"] for r in rows] == [event_id("n", o) for o in good]
    for row, want in zip(rows, good.values(), strict=True):
        assert {k: row[k] for k in want} == want


def test_whole_second_times_are_read_like_their_millisecond_twins() -> None:
    # ``logformat ... %ts %6tr ...`` (no %03tu) writes whole seconds.
    whole = GET.replace("1795702934.797", "1795702934")
    result = parse(f"{whole}\n{GET}\n")
    assert result.rejected == []
    times = result.tables["events_http"].column("time").to_pylist()
    assert times == [
        datetime(2026, 11, 26, 14, 22, 14, tzinfo=UTC),
        datetime(2026, 11, 26, 14, 22, 14, 797000, tzinfo=UTC),
    ]
