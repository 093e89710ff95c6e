"""Squid access logs in any ``logformat``, read with the definition from squid.conf.

Set ``squid_logformat`` to the ``logformat`` line of the Squid whose logs you
ingest (``molehunt.toml``)::

    squid_logformat = "logformat myfmt %ts.%03tu %6tr %>a %Ss/%03>Hs %<st %rm %ru %[un %Sh/%<a %mt"

and ingest with ``--kind squid-logformat``. The line is cut into Squid's format
codes (a closed set: Squid's ``src/format/Token.cc`` and the ``logformat``
documentation) and the literal text between them; each code is mapped onto a
column of ``events_http``:

=====================  =====================================================
column                 codes, first present wins
=====================  =====================================================
time (required)        ``%ts`` (+ ``%tu``), ``%tS``, ``%tg``, ``%tl``
src_ip (required)      ``%>a``, ``%>A``
url (required)         ``%ru``, ``%>ru``, ``%<ru``
user_name              ``%un``, ``%ul``, ``%ue``, ``%ui``
method                 ``%rm``, ``%>rm``
status                 ``%>Hs``, ``%Hs``, ``%<Hs``
squid_result           ``%Ss``;  hierarchy: ``%Sh``
bytes_out / bytes_in   ``%>st`` / ``%<st``
duration_ms            ``%tr``
host / port            ``%>rd`` / ``%>rP``, else from the URL
content_type           ``%mt``
user_agent             ``%{User-Agent}>h``; request_content_type: ``%{Content-Type}>h``
=====================  =====================================================

Codes with no column are matched and skipped. A format without a time, a client
or a URL code cannot give events and is refused as a configuration error; so is
an unknown code. Lines are matched in bulk by DuckDB with one pattern built from
the codes (the built-in ``squid`` and ``molehunt`` formats keep their compiled
fast path); a line that does not fit is rejected with its offset and the reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

from molehunt.errors import ConfigError
from molehunt.ingest import squid, squid_native
from molehunt.ingest.base import FormatMismatchError, ParseResult
from molehunt.ingest.squid import (
    bare_host,
    default_port,
    parse_lines,
    sniff_lines,
    sql_literal,
    typed_select,
    unescape,
    url_steps,
)
from molehunt.ingest.squid_cut import cut_molehunt, cut_native

# Value encodings (Squid's Quoting): how a code's value is escaped in the line.
NONE, QUOTES, MIMEBLOB, URL, RAW, SHELL = "none", "quotes", "mimeblob", "url", "raw", "shell"
_ENCODINGS = {'"': QUOTES, "'": RAW, "[": MIMEBLOB, "#": URL, "/": SHELL}

# What a code's value looks like.
NUMBER = "number"  # digits, or '-' when unknown
SECONDS = "seconds"  # %ts
SUBSECOND = "subsecond"  # %tu
START = "start"  # %tS: seconds.milliseconds
CLF_TIME = "clf"  # %tl / %tg: 10/Oct/2010:13:55:36 +0800
WORD = "word"  # no spaces
TEXT = "text"  # may hold spaces unless quoted (user names, headers)

#: Every format code Squid knows (Token.cc and the logformat docs), with the
#: shape of its value. Namespaced codes (``icap::``, ``ssl::``...) are words.
CODES: dict[str, str] = {
    # connection
    ">a": WORD,
    ">A": WORD,
    ">p": NUMBER,
    ">eui": WORD,
    ">la": WORD,
    ">lp": NUMBER,
    "la": WORD,
    "lp": NUMBER,
    "<a": WORD,
    "<A": WORD,
    "<p": NUMBER,
    "<la": WORD,
    "<lp": NUMBER,
    "oa": WORD,
    ">qos": WORD,
    "<qos": WORD,
    ">nfmark": WORD,
    "<nfmark": WORD,
    ">handshake": WORD,
    "busy_time": NUMBER,
    "request_attempts": NUMBER,
    "master_xaction": WORD,
    # time
    "ts": SECONDS,
    "tu": SUBSECOND,
    "tl": CLF_TIME,
    "tg": CLF_TIME,
    "tS": START,
    "tr": NUMBER,
    "<pt": NUMBER,
    "<tt": NUMBER,
    "dt": NUMBER,
    # headers
    ">h": TEXT,
    "<h": TEXT,
    ">ha": TEXT,
    ">v": WORD,
    # users
    "un": TEXT,
    "ul": TEXT,
    "ui": TEXT,
    "ue": TEXT,
    "us": TEXT,
    "credentials": TEXT,
    # status and cache result
    "Hs": NUMBER,
    ">Hs": NUMBER,
    "<Hs": NUMBER,
    "<bs": NUMBER,
    "Ss": WORD,
    "Sh": WORD,
    "mt": TEXT,
    "err_code": WORD,
    "err_detail": WORD,
    # request
    ">rm": WORD,
    ">ru": WORD,
    ">rs": WORD,
    ">rd": WORD,
    ">rP": NUMBER,
    ">rp": WORD,
    ">rv": WORD,
    "rm": WORD,
    "ru": WORD,
    "rp": WORD,
    "rv": WORD,
    "rG": WORD,
    "<rm": WORD,
    "<ru": WORD,
    "<rs": WORD,
    "<rd": WORD,
    "<rP": NUMBER,
    "<rp": WORD,
    "<rv": WORD,
    # sizes
    ">st": NUMBER,
    ">sh": NUMBER,
    "<st": NUMBER,
    "<sH": NUMBER,
    "<sS": NUMBER,
    "<sh": NUMBER,
    "st": NUMBER,
    # other
    "et": TEXT,
    "ea": TEXT,
    "sn": NUMBER,
    "note": TEXT,
    "%": WORD,
}
# Longest first, as Squid scans them (">handshake" before ">h", ">rd" before ">r...").
_BY_LENGTH = sorted(CODES, key=len, reverse=True)
_WIDTH = re.compile(r"(0?)([0-9]*)(?:\.[0-9]+)?")
_NAMESPACES = ("adapt", "icap", "tls", "ssl", "transport", "proxy_protocol", "http")

#: Columns and the codes that fill them, first present wins.
ROLES: dict[str, tuple[str, ...]] = {
    "src_ip": (">a", ">A"),
    "user_name": ("un", "ul", "ue", "ui"),
    "method": ("rm", ">rm"),
    "url": ("ru", ">ru", "<ru"),
    "status": (">Hs", "Hs", "<Hs"),
    "squid_result": ("Ss",),
    "hierarchy": ("Sh",),
    "bytes_out": (">st",),
    "bytes_in": ("<st",),
    "duration_ms": ("tr",),
    "content_type": ("mt",),
    "host": (">rd",),
    "port": (">rP",),
}
_HEADER_ROLES = {"user-agent": "user_agent", "content-type": "request_content_type"}


@dataclass(frozen=True, slots=True)
class Token:
    """One ``%`` code of a logformat: its code, argument, encoding and padding."""

    code: str
    arg: str | None
    encoding: str
    width: bool  # a minimum width: the value may be padded with spaces
    left: bool  # left-aligned: the padding comes after the value


Part = str | Token


def parse_logformat(line: str) -> tuple[str, list[Part]]:
    """The name and the parts (literal text and :class:`Token`) of a logformat.

    ``line`` is the squid.conf line (``logformat NAME SPEC``) or the SPEC alone.
    Raises :class:`ConfigError` for an unknown code, naming its position.
    """
    text = line.strip()
    name = "custom"
    words = text.split(None, 2)
    if len(words) >= 2 and words[0] == "logformat":
        name = words[1]
        text = words[2] if len(words) == 3 else ""
    # Positions in messages count from the start of the line as the user wrote it.
    base = len(line.strip()) - len(text)
    if not text:
        raise ConfigError("squid_logformat: the logformat line has no format codes")
    parts: list[Part] = []
    literal: list[str] = []
    quoting = NONE
    i = 0
    while i < len(text):
        ch = text[i]
        if ch != "%":
            # Squid switches the default encoding inside literal quotes and brackets.
            if ch == '"':
                quoting = {NONE: QUOTES, QUOTES: NONE}.get(quoting, quoting)
            elif ch == "[" and quoting == NONE:
                quoting = MIMEBLOB
            elif ch == "]" and quoting == MIMEBLOB:
                quoting = NONE
            literal.append(ch)
            i += 1
            continue
        start = i
        i += 1
        if text.startswith("%", i):
            literal.append("%")
            i += 1
            continue
        encoding = quoting
        if i < len(text) and text[i] in _ENCODINGS:
            encoding = _ENCODINGS[text[i]]
            i += 1
        left = text.startswith("-", i)
        i += left
        # [[0]width][.max]: zero-padding pads with digits, a width alone with spaces.
        width_m = _WIDTH.match(text, i)
        assert width_m is not None  # every part of it is optional
        width = bool(width_m.group(2)) and not width_m.group(1)
        i = width_m.end()
        arg = None
        if text.startswith("{", i):
            close = text.find("}", i)
            if close < 0:
                raise ConfigError(f"squid_logformat: unclosed {{ at character {base + i + 1}")
            arg, i = text[i + 1 : close], close + 1
        code = _scan_code(text, i)
        if code is None:
            raise ConfigError(
                f"squid_logformat: unknown format code at character {base + start + 1}:"
                f" {text[start : start + 12]!r} (see Squid's logformat documentation)"
            )
        i += len(code)
        if code.startswith("http::"):
            code = code[len("http::") :]
        if arg is None and text.startswith("{", i):
            close = text.find("}", i)
            if close < 0:
                raise ConfigError(f"squid_logformat: unclosed {{ at character {base + i + 1}")
            arg, i = text[i + 1 : close], close + 1
        if literal:
            parts.append("".join(literal))
            literal = []
        parts.append(Token(code, arg, encoding, width, left))
    if literal:
        parts.append("".join(literal))
    return name, parts


def _scan_code(text: str, i: int) -> str | None:
    for space in _NAMESPACES:
        prefix = f"{space}::"
        if text.startswith(prefix, i):
            if space == "http" and not text.startswith("%", i + len(prefix)):
                inner = _scan_code(text, i + len(prefix))
                return prefix + inner if inner is not None else None
            m = re.compile(r"[<>]?[A-Za-z_]+").match(text, i + len(prefix))
            return prefix + m.group(0) if m else None
    for code in _BY_LENGTH:
        if text.startswith(code, i):
            return code
    return None


# -- the line pattern ---------------------------------------------------------

_QUOTED_VALUE = r'(?:[^"\\]|\\.)*'
_URL_CODES = frozenset({"ru", ">ru", "<ru", ">rp", "rp", "<rp"})


def _value_pattern(token: Token, following: str) -> str:
    """The pattern of one code's value (without capture or padding), given the
    literal text that follows it ('' at the end of the line)."""
    shape = CODES.get(token.code, WORD)
    if token.encoding == QUOTES:
        # Inside quotes Squid escapes quote and backslash: free text (headers,
        # URLs, MIME types) may hold spaces, codes of one word do not.
        if shape == TEXT or token.code in _URL_CODES:
            return _QUOTED_VALUE
        if shape == WORD:
            return r'(?:[^" \\]|\\.)*'
    if shape == NUMBER:
        core = r"-?[0-9]+|-"
    elif shape in (SECONDS, SUBSECOND):
        core = r"[0-9]+"
    elif shape == START:
        core = r"[0-9]+(?:\.[0-9]{3})?"
    elif shape == CLF_TIME and token.arg is None:
        core = r"[0-9]{2}/[A-Za-z]{3}/[0-9]{4}:[0-9]{2}:[0-9]{2}:[0-9]{2} [+-][0-9]{4}"
    elif shape == TEXT and token.encoding in (NONE, MIMEBLOB, RAW):
        # A user name or header may hold spaces (Squid 5 writes %un raw): the
        # shortest run that lets the rest of the line match.
        core = r"[^ ].*?" if following else r".+?"
    else:
        stop = following[:1] if following[:1] not in ("", " ") else ""
        core = f"[^ {re.escape(stop)}]+" if stop else r"[^ ]+"
        if not following:
            core = r"[^ \r\n]+"
    return core


def line_pattern(parts: list[Part]) -> tuple[str, list[Token]]:
    """The whole-line pattern (RE2 and Python ``re`` alike) with one capture per
    code, and the codes in capture order."""
    out: list[str] = []
    tokens: list[Token] = []
    skip = -1
    for index, part in enumerate(parts):
        if index <= skip:
            continue
        if isinstance(part, str):
            out.append(re.escape(part))
            continue
        after = parts[index + 1 : index + 3]
        if (
            part.code == "ts"
            and len(after) == 2
            and after[0] == "."
            and isinstance(after[1], Token)
            and after[1].code == "tu"
        ):
            # %ts.%03tu: whole seconds without the fraction are read as well,
            # as the built-in parsers read them.
            out.append(r"([0-9]+)(?:\.([0-9]+))?")
            tokens += [part, after[1]]
            skip = index + 2
            continue
        following = ""
        if index + 1 < len(parts) and isinstance(parts[index + 1], str):
            following = str(parts[index + 1])
        value = _value_pattern(part, following)
        # A minimum width pads with spaces, before the value unless left-aligned;
        # the padding stays outside the capture.
        lead = " *" if part.width and not part.left else ""
        trail = " *" if part.width and part.left else ""
        out.append(f"{lead}({value}){trail}")
        tokens.append(part)
    return "".join(out) + r"\r?\n", tokens


# -- the SQL ------------------------------------------------------------------


def _pick(tokens: list[Token], codes: tuple[str, ...], arg: str | None = None) -> int | None:
    for code in codes:
        for index, token in enumerate(tokens):
            if token.code != code:
                continue
            if arg is not None and (token.arg or "").casefold() != arg:
                continue
            return index
    return None


def _text_expr(index: int, token: Token, *, decode: bool) -> str:
    """SQL: the value of capture ``index`` as text, unescaped, NULL for '-'."""
    raw = f"f.g{index}"
    if token.encoding == QUOTES:
        raw = unescape(raw)
    elif decode and token.encoding in (MIMEBLOB, URL, NONE):
        # %-escaped by the encoding, or by Squid's own user-name quoting (as in
        # the native format).
        raw = (
            f"CASE WHEN contains({raw}, '%')"
            f" THEN coalesce(try(url_decode({raw})), {raw}) ELSE {raw} END"
        )
    return f"nullif({raw}, '-')"


def _time_expr(tokens: list[Token]) -> str | None:
    """SQL: the time as ``seconds[.mmm]`` text (what :func:`typed_select` reads)."""
    sec = _pick(tokens, ("ts",))
    if sec is not None:
        sub = _pick(tokens, ("tu",))
        if sub is None:
            return f"f.g{sec}"
        return (
            f"CASE WHEN f.g{sub} = '' THEN f.g{sec}"
            f" WHEN length(f.g{sub}) <= 3 THEN f.g{sec} || '.' || lpad(f.g{sub}, 3, '0') END"
        )
    start = _pick(tokens, ("tS",))
    if start is not None:
        return f"f.g{start}"
    for code in ("tg", "tl"):
        index = _pick(tokens, (code,))
        if index is not None and tokens[index].arg is None:
            ms = f"epoch_ms(try_strptime(f.g{index}, '%d/%b/%Y:%H:%M:%S %z'))"
            return (
                f"CAST({ms} // 1000 AS VARCHAR) || '.'"
                f" || lpad(CAST({ms} % 1000 AS VARCHAR), 3, '0')"
            )
    return None


def build_sql(name: str, tokens: list[Token], pattern: str) -> str:
    """The SQL reading ``lines(o, b)`` in this format (see :func:`parse_lines`)."""
    time = _time_expr(tokens)
    missing = []
    if time is None:
        missing.append("a time (%ts, %tS, %tg or %tl)")
    if _pick(tokens, ROLES["src_ip"]) is None:
        missing.append("the client address (%>a)")
    if _pick(tokens, ROLES["url"]) is None:
        missing.append("the URL (%ru)")
    if missing:
        raise ConfigError(
            f"squid_logformat {name!r} lacks {', '.join(missing)}: molehunt cannot read"
            " events from it; add the code(s) to the logformat in squid.conf"
        )
    texts: dict[str, str] = {}
    for column, codes in ROLES.items():
        index = _pick(tokens, codes)
        if index is None:
            texts[column] = "CAST(NULL AS VARCHAR)"
        else:
            texts[column] = _text_expr(index, tokens[index], decode=column == "user_name")
    for header, column in _HEADER_ROLES.items():
        index = _pick(tokens, (">h",), header)
        texts[column] = (
            "CAST(NULL AS VARCHAR)"
            if index is None
            else _text_expr(index, tokens[index], decode=False)
        )
    names = [f"g{i}" for i in range(len(tokens))]
    selected = ",\n    ".join(f"{expr} AS {column}" for column, expr in texts.items())
    return f"""
WITH decoded AS (SELECT o, try(decode(b)) AS line FROM lines),
extracted AS (
  SELECT o, line, regexp_full_match(line, {sql_literal(pattern)}) AS ok,
    regexp_extract(line, {sql_literal(pattern)}, {names!r}) AS f
  FROM decoded
),
texts AS (
  SELECT o, line, ok, {time} AS ts,
    {selected}
  FROM extracted
),
{url_steps("url_path")}
fields AS (
  SELECT o, line, ok, ts, src_ip, method, url, squid_result, hierarchy, status, bytes_in,
    bytes_out, duration_ms, request_content_type, user_agent, content_type, user_name,
    CASE WHEN host IS NOT NULL AND method IS DISTINCT FROM 'CONNECT'
      THEN {bare_host("replace(replace(host, '%5B', '['), '%5D', ']')")}
      ELSE {bare_host("host_text")} END AS host,
    CASE WHEN port IS NOT NULL AND method IS DISTINCT FROM 'CONNECT' THEN port
      WHEN port_text IS NOT NULL THEN port_text
      WHEN rest IS NOT NULL THEN {default_port("split_part(url, ':', 1)")} END AS port,
    url_path AS path
  FROM hosted
),
{typed_select(f"logformat {name}")}
"""


def _spec(parts: list[Part]) -> list[object]:
    return [
        p if isinstance(p, str) else (p.code, p.arg, p.encoding, p.width, p.left) for p in parts
    ]


_NATIVE = _spec(parse_logformat(squid_native.LOGFORMAT)[1])
_MOLEHUNT = _spec(parse_logformat(squid.LOGFORMAT)[1])


class SquidLogformatParser:
    """Squid access log in the logformat named by the ``squid_logformat`` setting."""

    kind: ClassVar[str] = "squid-logformat"
    description: ClassVar[str] = "Squid access log in the custom logformat set in squid_logformat"

    def __init__(self, logformat: str | None = None) -> None:
        if not logformat:
            raise ConfigError(
                "squid-logformat needs the setting squid_logformat: the 'logformat NAME ...'"
                " line from squid.conf"
            )
        self.name, parts = parse_logformat(logformat)
        self.pattern, tokens = line_pattern(parts)
        self.line_re = re.compile(self.pattern)
        self._sql = build_sql(self.name, tokens, self.pattern)
        spec = _spec(parts)
        # The built-in formats keep their compiled fast path.
        self._builtin = None
        if spec == _NATIVE:
            self._builtin = (squid_native._FAST_SQL, squid_native._SLOW_SQL, cut_native)
        elif spec == _MOLEHUNT:
            self._builtin = (squid._FAST_SQL, squid._SLOW_SQL, cut_molehunt)

    @classmethod
    def sniff(cls, head: bytes) -> bool:
        # Without the setting nothing tells a custom format; see :meth:`fits`.
        return False

    def fits(self, head: bytes) -> bool:
        """Whether most of the first lines of ``head`` are lines of this format."""
        return sniff_lines(head, self.line_re)

    def parse(self, data: bytes, *, base_offset: int, source_id: str, path: str) -> ParseResult:
        if self._builtin is not None:
            fast, slow, kernel = self._builtin
        else:
            fast, slow, kernel = self._sql, self._sql, None
        result = parse_lines(
            data,
            fast,
            slow,
            kernel=kernel,
            kind=self.kind,
            base_offset=base_offset,
            source_id=source_id,
        )
        unfit = f"not a line of the logformat {self.name}"
        if (
            result.records
            and result.events == 0
            and len(result.rejected) == result.records
            and all(r.reason == unfit for r in result.rejected)
            and self._builtin is None
        ):
            raise FormatMismatchError(
                f"no line of {path} fits the logformat {self.name} set in squid_logformat;"
                " set squid_logformat to the logformat line of the Squid that wrote it"
            )
        return result
