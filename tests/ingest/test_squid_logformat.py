"""``squid-logformat``: Squid access logs in any logformat named in ``squid_logformat``."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from molehunt.config import Settings
from molehunt.errors import ConfigError
from molehunt.ingest import LOG_PARSERS
from molehunt.ingest.base import FormatMismatchError, ParseResult
from molehunt.ingest.runner import make_log_parser
from molehunt.ingest.squid_logformat import SquidLogformatParser, parse_logformat
from molehunt.ingest.squid_native import LOGFORMAT as NATIVE
from molehunt.ingest.squid_native import SquidNativeParser

# Squid's built-in "combined" format (Apache style, local time with its offset).
COMBINED = (
    'logformat combined %>a %[ui %[un [%tl] "%rm %ru HTTP/%rv" %>Hs %<st "%{Referer}>h"'
    ' "%{User-Agent}>h" %Ss:%Sh'
)
# The example: the native format's codes with whole seconds and an upload size.
WHOLE_SECONDS = "logformat sec %ts %6tr %>a %Ss/%03>Hs %>st %<st %rm %ru %[un %Sh/%<a %mt"

# Native lines in the shapes of beats' squid test logs (plain GET, CONNECT,
# a miss with status 000, IPv6 client), written here.
NATIVE_LINES = (
    "1035368729.430    371 210.8.79.228 TCP_MISS/200 2136 GET"
    " http://www.example.edu/~a/nav/bar_r3_c6.jpg - FIRST_PARENT_MISS/proxy2.example.au"
    " image/jpeg\n"
    "1348870295.249  59723 192.168.0.35 TCP_MISS/503 0 CONNECT safe.example.com:443 -"
    " DIRECT/- -\n"
    "1348870325.850      9 192.168.0.35 TCP_MISS/000 0 GET http://www.example.com/s? -"
    " DIRECT/www.example.com -\n"
    "1431966856.793  48016 ::1 TCP_MISS/200 16674 CONNECT 0.docs.example.com:443 -"
    " DIRECT/173.194.206.189 -\n"
    "1431966958.711    276 ::1 TCP_MISS/200 934 POST http://clients1.example.com/ocsp"
    " %e5%bc%a0 DIRECT/173.194.123.105 application/ocsp-response\n"
)


def parse(parser: SquidLogformatParser, text: str, base_offset: int = 0) -> ParseResult:
    return parser.parse(text.encode(), base_offset=base_offset, source_id="s", path="access.log")


def test_custom_path_reads_native_lines_exactly_as_the_native_parser() -> None:
    parser = SquidLogformatParser(f"logformat copy {NATIVE.split(None, 2)[2]}")
    parser._builtin = None  # force the pattern built from the codes
    want = SquidNativeParser().parse(NATIVE_LINES.encode(), base_offset=0, source_id="s", path="x")
    got = parse(parser, NATIVE_LINES)
    assert got.rejected == want.rejected == []
    a, b = want.tables["events_http"], got.tables["events_http"]
    assert a.num_rows == b.num_rows == 5
    for name in a.column_names:
        if name == "kind":
            continue
        assert b.column(name).to_pylist() == a.column(name).to_pylist(), name


def test_the_built_in_native_format_keeps_its_compiled_path() -> None:
    parser = SquidLogformatParser(NATIVE)
    assert parser._builtin is not None
    result = parse(parser, NATIVE_LINES)
    assert result.events == 5
    assert result.tables["events_http"].column("kind").to_pylist() == ["squid-logformat"] * 5


def test_combined_format_with_local_time_and_quoted_request() -> None:
    parser = SquidLogformatParser(COMBINED)
    line = (
        "10.1.2.3 - %e5%bc%a0%e4%b8%89 [10/Oct/2010:13:55:36 +0800]"
        ' "POST http://pan.example.cn:8080/up?x=1 HTTP/1.1" 200 2326'
        ' "http://r.example/" "Mozilla/5.0 (X11; \\"q\\")" TCP_MISS:HIER_DIRECT\n'
    )
    result = parse(parser, line)
    assert result.rejected == []
    (row,) = result.tables["events_http"].to_pylist()
    assert row["time"] == datetime(2010, 10, 10, 5, 55, 36, tzinfo=UTC)
    assert row["user_name"] == "张三"
    assert (row["method"], row["host"], row["port"], row["path"]) == (
        "POST",
        "pan.example.cn",
        8080,
        "/up",
    )
    assert (row["status"], row["bytes_in"], row["bytes_out"]) == (200, 2326, None)
    assert row["user_agent"] == 'Mozilla/5.0 (X11; "q")'
    assert (row["squid_result"], row["hierarchy"]) == ("TCP_MISS", "HIER_DIRECT")


def test_whole_seconds_and_upload_size() -> None:
    parser = SquidLogformatParser(WHOLE_SECONDS)
    line = (
        "1286536309   1234 10.0.0.7 TCP_TUNNEL/200 5242880 4200 CONNECT pan.baidu.com:443 bob"
        " HIER_DIRECT/1.2.3.4 -\n"
    )
    (row,) = parse(parser, line).tables["events_http"].to_pylist()
    assert row["time"] == datetime(2010, 10, 8, 11, 11, 49, tzinfo=UTC)
    assert (row["bytes_out"], row["bytes_in"], row["duration_ms"]) == (5242880, 4200, 1234)
    assert (row["host"], row["port"], row["path"], row["user_name"]) == (
        "pan.baidu.com",
        443,
        None,
        "bob",
    )


def test_bad_lines_are_rejected_with_offset_and_line_and_the_rest_kept() -> None:
    parser = SquidLogformatParser(WHOLE_SECONDS)
    good = (
        "1286536309 5 10.0.0.7 TCP_MISS/200 10 20 GET http://a.example/ - HIER_NONE/- text/html\n"
    )
    bad = "1286536309 5 10.0.0.7 garbage\n"
    result = parse(parser, good + bad + good, base_offset=0)
    assert result.records == 3
    assert result.events == 2
    (rejected,) = result.rejected
    assert (rejected.offset, rejected.line) == (len(good), 2)
    assert rejected.reason == "not a line of the logformat sec"
    assert rejected.raw == bad.rstrip("\n")


def test_a_file_in_another_format_is_refused_whole() -> None:
    parser = SquidLogformatParser(COMBINED)
    with pytest.raises(FormatMismatchError, match="squid_logformat"):
        parse(parser, NATIVE_LINES)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("logformat t %>a %ru", "lacks a time"),
        ("logformat t %ts %ru", "client address"),
        ("logformat t %ts %>a %rm", "the URL"),
        ("logformat t %ts %>a %ru %zz", "unknown format code at character 25"),
        ("logformat t %ts %>a %{User-Agent %ru", "unclosed"),
        ("logformat t", "no format codes"),
    ],
)
def test_unusable_formats_are_configuration_errors(line: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        SquidLogformatParser(line)


def test_the_parser_needs_the_setting_and_the_runner_passes_it() -> None:
    assert LOG_PARSERS["squid-logformat"] is SquidLogformatParser
    with pytest.raises(ConfigError, match="squid_logformat"):
        make_log_parser("squid-logformat", Settings())
    parser = make_log_parser("squid-logformat", Settings(squid_logformat=COMBINED))
    assert isinstance(parser, SquidLogformatParser)
    assert parser.name == "combined"


def test_codes_are_cut_as_squid_cuts_them() -> None:
    name, parts = parse_logformat('logformat f %-10>handshake %{Host}>h %03tu %% "%http::>a"')
    assert name == "f"
    tokens = [p for p in parts if not isinstance(p, str)]
    assert [(t.code, t.arg, t.encoding, t.width, t.left) for t in tokens] == [
        (">handshake", None, "none", True, True),
        (">h", "Host", "none", False, False),
        ("tu", None, "none", False, False),
        (">a", None, "quotes", False, False),
    ]
    assert " % " in "".join(p for p in parts if isinstance(p, str))


def test_fits_tells_its_lines_from_others() -> None:
    parser = SquidLogformatParser(WHOLE_SECONDS)
    line = b"1286536309 5 10.0.0.7 TCP_MISS/200 10 20 GET http://a.example/ - HIER_NONE/- -\n"
    assert parser.fits(line * 3)
    assert not parser.fits(NATIVE_LINES.encode())
    assert not SquidLogformatParser.sniff(line * 3)
