"""Both Squid parsers against the logs of a real Squid carrying real traffic.

One Squid logs every transaction twice, in the molehunt logformat and in
Squid's default one: a GET, a ~1 MB multipart upload and a CONNECT tunnel
carrying a known number of bytes each way, all on loopback.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from molehunt_testing import require_binary
from squid_server import (
    origin_server,
    proxied_request,
    proxy_headers,
    running_squid,
    stop,
    tunnel,
    tunnel_sink,
)

from molehunt.ingest.squid import SquidParser
from molehunt.ingest.squid_native import SquidNativeParser

pytestmark = pytest.mark.squid

GET_SIZE = 50_000
UPLOAD_SIZE = 1_000_000
TUNNEL_UP = 300_000
TUNNEL_DOWN = 20_000
# A quote and a backslash: Squid escapes them inside the quoted header field.
AGENT = 'molehunt-test/1.0 "quoted" \\ agent'
USERS = {"GET": "bob", "POST": "张三", "CONNECT": "al ice"}


@dataclass(frozen=True, slots=True)
class Traffic:
    molehunt_log: bytes
    native_log: bytes
    http_port: int
    sink_port: int
    upload_body: int
    boundary: str
    auth: bool
    started: float
    ended: float


@pytest.fixture(scope="module")
def traffic() -> Traffic:
    binary = require_binary("/usr/sbin/squid", "squid")
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="c.csv"\r\n'
            "Content-Type: text/csv\r\n\r\n"
        ).encode()
        + b"1" * UPLOAD_SIZE
        + f"\r\n--{boundary}--\r\n".encode()
    )
    with (
        origin_server(GET_SIZE) as http_port,
        tunnel_sink(TUNNEL_UP, TUNNEL_DOWN) as sink_port,
        running_squid(binary, tunnel_ports=(sink_port,)) as squid,
    ):
        started = time.time()
        base = f"http://127.0.0.1:{http_port}"
        status, got = proxied_request(
            squid,
            "GET",
            f"{base}/report/7",
            headers={"User-Agent": AGENT, **proxy_headers(squid, USERS["GET"])},
        )
        assert (status, len(got)) == (200, GET_SIZE)
        status, got = proxied_request(
            squid,
            "POST",
            f"{base}/upload",
            headers={
                "User-Agent": AGENT,
                "Content-Type": f"multipart/form-data; boundary={boundary}",
                **proxy_headers(squid, USERS["POST"]),
            },
            body=body,
        )
        assert (status, got) == (200, f'{{"received": {len(body)}}}'.encode())
        status, received = tunnel(
            squid,
            sink_port,
            headers={"User-Agent": AGENT, **proxy_headers(squid, USERS["CONNECT"])},
            send=TUNNEL_UP,
        )
        assert (status, received) == (200, TUNNEL_DOWN)
        ended = time.time()
        stop(squid)
        return Traffic(
            molehunt_log=squid.access_log.read_bytes(),
            native_log=squid.native_log.read_bytes(),
            http_port=http_port,
            sink_port=sink_port,
            upload_body=len(body),
            boundary=boundary,
            auth=squid.auth,
            started=started,
            ended=ended,
        )


def by_method(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    # The start-up probe (connect, hang up) is logged too, as Squid's error line.
    probes = [r for r in rows if r["url"] == "error:transaction-end-before-headers"]
    assert len(probes) == 1
    assert (probes[0]["method"], probes[0]["status"]) == (None, 0)
    requests = {r["method"]: r for r in rows if r not in probes}
    assert len(requests) == 3
    return requests


def test_molehunt_log_shows_upload_and_tunnel_sizes(traffic: Traffic) -> None:
    data = traffic.molehunt_log
    result = SquidParser().parse(data, base_offset=0, source_id="real", path="access.log")
    assert result.rejected == []
    assert (result.consumed, result.records) == (len(data), data.count(b"\n"))
    rows = by_method(result.tables["events_http"].to_pylist())

    get, post, connect = rows["GET"], rows["POST"], rows["CONNECT"]
    assert get["url"] == f"http://127.0.0.1:{traffic.http_port}/report/7"
    assert (get["host"], get["port"], get["path"]) == ("127.0.0.1", traffic.http_port, "/report/7")
    assert (get["status"], get["squid_result"], get["hierarchy"]) == (
        200,
        "TCP_MISS",
        "HIER_DIRECT",
    )
    assert GET_SIZE <= get["bytes_in"] < GET_SIZE + 1024
    assert get["bytes_out"] < 1024
    assert get["content_type"] == "text/plain"
    assert get["user_agent"] == AGENT

    assert post["url"] == f"http://127.0.0.1:{traffic.http_port}/upload"
    assert post["status"] == 200
    assert traffic.upload_body <= post["bytes_out"] < traffic.upload_body + 2048
    assert post["bytes_in"] < 1024
    assert post["request_content_type"] == f"multipart/form-data; boundary={traffic.boundary}"
    assert post["content_type"] == "application/json"

    assert connect["url"] == f"127.0.0.1:{traffic.sink_port}"
    assert (connect["host"], connect["port"], connect["path"]) == (
        "127.0.0.1",
        traffic.sink_port,
        None,
    )
    assert (connect["status"], connect["squid_result"]) == (200, "TCP_TUNNEL")
    assert TUNNEL_UP <= connect["bytes_out"] < TUNNEL_UP + 1024
    assert TUNNEL_DOWN <= connect["bytes_in"] < TUNNEL_DOWN + 1024

    for method, row in rows.items():
        assert row["src_ip"] == "127.0.0.1"
        assert row["user_name"] == (USERS[method] if traffic.auth else None)
        assert traffic.started - 1 <= row["time"].timestamp() <= traffic.ended + 1
        assert row["kind"] == "squid"


def test_native_log_tells_the_same_story_without_upload_sizes(traffic: Traffic) -> None:
    ours = SquidParser().parse(traffic.molehunt_log, base_offset=0, source_id="m", path="a")
    native = SquidNativeParser().parse(traffic.native_log, base_offset=0, source_id="n", path="b")
    assert native.rejected == []
    assert native.consumed == len(traffic.native_log)
    full = by_method(ours.tables["events_http"].to_pylist())
    plain = by_method(native.tables["events_http"].to_pylist())
    same = (
        *("time", "src_ip", "user_name", "url", "host", "port", "path", "status"),
        *("squid_result", "hierarchy", "bytes_in", "content_type", "duration_ms"),
    )
    for method in ("GET", "POST", "CONNECT"):
        assert {k: plain[method][k] for k in same} == {k: full[method][k] for k in same}
        assert plain[method]["bytes_out"] is None
        assert plain[method]["kind"] == "squid-native"


def test_sniff_tells_the_two_real_logs_apart(traffic: Traffic) -> None:
    assert SquidParser.sniff(traffic.molehunt_log)
    assert not SquidNativeParser.sniff(traffic.molehunt_log)
    assert SquidNativeParser.sniff(traffic.native_log)
    assert not SquidParser.sniff(traffic.native_log)


def test_real_log_cut_into_small_chunks_gives_the_same_events(traffic: Traffic) -> None:
    data = traffic.molehunt_log
    parser = SquidParser()
    whole = parser.parse(data, base_offset=0, source_id="r", path="a").tables["events_http"]
    rows: list[dict[str, Any]] = []
    offset = 0
    while offset < len(data):
        piece = data[offset : offset + 150]
        result = parser.parse(piece, base_offset=offset, source_id="r", path="a")
        if result.consumed == 0:  # a line longer than the piece: read more
            piece = data[offset:]
            result = parser.parse(piece, base_offset=offset, source_id="r", path="a")
        rows += result.tables["events_http"].to_pylist()
        offset += result.consumed
    assert rows == whole.to_pylist()
