"""Squid access logs in Squid's default ``squid`` logformat (no upload sizes).

The format every Squid writes unless told otherwise::

    logformat squid %ts.%03tu %6tr %>a %Ss/%03>Hs %<st %rm %ru %[un %Sh/%<a %mt

It logs only the bytes sent to the client, so ``bytes_out`` (the upload) is
NULL: unknown, not zero. Host, port and path come from the URL (``host:port``
for CONNECT), the port from the scheme when the URL names none. A user name is
logged %-escaped (``%e5%bc%a0``) and stored decoded. Lines are parsed as in
:mod:`molehunt.ingest.squid`: plain ones by the compiled kernel, the rest in bulk
by DuckDB; only a line whose user name holds a space (Squid 5 writes it raw) goes
through the slower capturing pattern.
"""

from __future__ import annotations

import re
from typing import ClassVar

from molehunt.ingest.base import ParseResult
from molehunt.ingest.squid import (
    EOL,
    FIELD,
    NUM,
    TIME,
    bare_host,
    default_port,
    parse_lines,
    sniff_lines,
    sql_literal,
    typed_select,
    url_steps,
)
from molehunt.ingest.squid_cut import cut_native

#: Squid's built-in definition of the format this parser reads.
LOGFORMAT = "logformat squid %ts.%03tu %6tr %>a %Ss/%03>Hs %<st %rm %ru %[un %Sh/%<a %mt"

# %6tr pads the duration with spaces, hence " +" after the time.
_LAST = r"[^ \r\n]+"
_FAST = (
    rf"{TIME} +{NUM} {FIELD} [^ /]+/[0-9]{{3}} [0-9]+ {FIELD} {FIELD} {FIELD}"
    rf" [^ /]+/{FIELD} {_LAST}{EOL}"
)
_FIELDS = (
    "ts",
    "duration_ms",
    "src_ip",
    "squid_result",
    "status",
    "bytes_in",
    "method",
    "url",
    "user_name",
    "hierarchy",
    "peer",
    "content_type",
)
_SLOW = (
    rf"({TIME}) +({NUM}) ({FIELD}) ([^ /]+)/([0-9]{{3}}) ([0-9]+) ({FIELD}) ({FIELD})"
    rf" ([^ ].*?) ([^ /]+)/({FIELD}) ({_LAST}){EOL}"
)

#: The whole line, as Python's re; the SQL below accepts exactly these lines.
LINE_RE = re.compile(_SLOW)

# One step per CTE, each reading the columns of the one before (see squid.py).
_DERIVED = f"""
{url_steps("path")}
fields AS (
  SELECT o, line, ok, ts, src_ip, method, url, squid_result, hierarchy, status, bytes_in,
    CAST(NULL AS VARCHAR) AS bytes_out, nullif(duration_ms, '-') AS duration_ms,
    CAST(NULL AS VARCHAR) AS request_content_type, CAST(NULL AS VARCHAR) AS user_agent,
    nullif(content_type, '-') AS content_type,
    CASE WHEN user_name = '-' THEN NULL
      WHEN contains(user_name, '%') THEN coalesce(try(url_decode(user_name)), user_name)
      ELSE user_name END AS user_name,
    {bare_host("host_text")} AS host,
    CASE WHEN port_text IS NOT NULL THEN port_text
      WHEN rest IS NOT NULL THEN {default_port("split_part(url, ':', 1)")} END AS port,
    path
  FROM hosted
),
{typed_select("Squid native logformat")}
"""

_DECODED = "decoded AS (SELECT o, try(decode(b)) AS line FROM lines)"

_FAST_SQL = f"""
WITH {_DECODED},
matched AS (
  SELECT o, line, CASE WHEN regexp_full_match(line, {sql_literal(_FAST)}) THEN true END AS ok
  FROM decoded
),
split AS (SELECT o, line, ok, CASE WHEN ok THEN string_split(line, ' ') END AS p FROM matched),
texts AS (
  SELECT o, line, ok, p[1] AS ts, p[-9] AS duration_ms, p[-8] AS src_ip,
    split_part(p[-7], '/', 1) AS squid_result, split_part(p[-7], '/', 2) AS status,
    p[-6] AS bytes_in, nullif(p[-5], '-') AS method, p[-4] AS url, p[-3] AS user_name,
    split_part(p[-2], '/', 1) AS hierarchy, rtrim(p[-1], chr(13) || chr(10)) AS content_type
  FROM split
),
{_DERIVED}"""

_SLOW_SQL = f"""
WITH {_DECODED},
extracted AS (
  SELECT o, line, regexp_full_match(line, {sql_literal(_SLOW)}) AS ok,
    regexp_extract(line, {sql_literal(_SLOW)}, {list(_FIELDS)!r}) AS f
  FROM decoded
),
texts AS (
  SELECT o, line, ok, f.ts, f.duration_ms, f.src_ip, f.squid_result, f.status, f.bytes_in,
    nullif(f.method, '-') AS method, f.url, f.user_name, f.hierarchy, f.content_type
  FROM extracted
),
{_DERIVED}"""


class SquidNativeParser:
    """Squid access log in Squid's default format: downloads only, upload size unknown."""

    kind: ClassVar[str] = "squid-native"
    description: ClassVar[str] = "Squid access log, default squid logformat (no upload bytes)"

    @classmethod
    def sniff(cls, head: bytes) -> bool:
        return sniff_lines(head, LINE_RE)

    def parse(self, data: bytes, *, base_offset: int, source_id: str, path: str) -> ParseResult:
        return parse_lines(
            data,
            _FAST_SQL,
            _SLOW_SQL,
            kernel=cut_native,
            kind=self.kind,
            base_offset=base_offset,
            source_id=source_id,
        )
