"""Personal data masked inside free text: SQL statements, URLs, paths, event summaries.

Whatever the scanner recognises (:mod:`molehunt.pii.engine`: resident ID numbers,
mobiles, landlines, bank cards, passports, emails, addresses, labelled names) is
replaced by :func:`molehunt.pii.engine.mask` of it, in place; the rest of the text
is left as it was. Employees' names are not masked: the name recognizer only finds
names after a label (``姓名：``, ``客户姓名``...), which are clients' names in free text.

Speed: the engine's databases are compiled once per process
(:func:`~molehunt.pii.engine.default_engine`). Most summaries hold nothing to mask,
and a scan costs ~0.25 ms whatever the text; ASCII text is first searched for what
every identifier needs (seven digits, optionally grouped by single spaces or
hyphens, or an ``@``): a Python ``re`` search of a few microseconds that lets most
summaries skip the scan. Text with any other character is always scanned (CJK
addresses and names, full-width digits).

SQL literals get two more rules (:func:`mask_sql_literals`), since a statement can
name a client without holding a whole identifier:

- a quoted literal that is a number of seven or more digits, with wildcards, spaces or
  hyphens around or between (``LIKE '3205081969091020%'``: 16 of an ID number's 18
  digits; ``'%19690910%'``: a birth date; ``'1380013%'``: a mobile's first digits)
  keeps the first three digits of each run, the rest become ``*``; literals with
  letters (``'C0001234'``, a client id) are left to the recognizers;
- the literal compared with a name column (``name``, ``client_name``, ``cust_nm``,
  ``姓名``...; not ``user_name``, ``table_name``, ``branch_name`` and other names of
  things) is masked: ``WHERE name = '郭瑶军'`` -> ``'郭**'``, ``name LIKE '张%'`` ->
  ``'*%'`` (a pattern keeps only its wildcards), and every literal of ``IN (...)``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from molehunt.pii.engine import default_engine, fold_text, mask
from molehunt.pii.recognizers import Recognizer

#: What any identifier holds in ASCII text: the shortest digit pattern is a
#: passport's seven digits; grouped numbers (cards, mobiles 3-4-4, landlines with a
#: hyphen) separate their digits by single spaces or hyphens.
_CANDIDATE = re.compile(r"[0-9](?:[ -]?[0-9]){6}|@")


def might_hold_identifiers(text: str) -> bool:
    """False only when ``text`` certainly holds nothing :func:`mask_text` masks."""
    return not text.isascii() or _CANDIDATE.search(text) is not None


#: A span of the joined text: start, end (characters) and the kind ("" for spans
#: merged from overlapping findings of different kinds).
_Span = tuple[int, int, str]


def mask_text(text: str) -> str:
    """``text`` with every identifier the scanner recognises masked in place, and
    SQL literals that are fragments of identifiers or names (:func:`mask_sql_literals`)."""
    if might_hold_identifiers(text):
        text = _apply(text, _spans(text), 0)
    return mask_sql_literals(text)


def mask_texts(texts: Sequence[str]) -> list[str]:
    """:func:`mask_text` of each text, in one scan: a timeline's hundreds of summaries
    cost one engine call (~0.1 ms of overhead each otherwise).

    The texts are scanned joined by newlines, which every fixed-width pattern takes
    as a boundary, as it does the start and end of a text scanned alone. A finding
    that runs across a newline joining two texts (a variable-length one could) is
    not trusted: the texts it touches are scanned alone.
    """
    out = list(texts)
    todo = [i for i, t in enumerate(texts) if might_hold_identifiers(t)]
    if not todo:
        return [mask_sql_literals(t) for t in out]
    parts = [texts[i] for i in todo]
    joined = "\n".join(parts)
    firsts = np.cumsum([0] + [len(t) + 1 for t in parts[:-1]])
    per: list[list[_Span]] = [[] for _ in parts]
    alone: set[int] = set()
    for span in _spans(joined):
        first = int(np.searchsorted(firsts, span[0], "right")) - 1
        last = int(np.searchsorted(firsts, span[1] - 1, "right")) - 1
        if first == last and span[1] <= firsts[first] + len(parts[first]):
            per[first].append(span)
        else:
            alone.update(range(first, last + 1))
    for j, i in enumerate(todo):
        if j in alone:
            out[i] = mask_text(parts[j])
        elif per[j]:
            out[i] = _apply(parts[j], per[j], int(firsts[j]))
    return [mask_sql_literals(t) for t in out]


def _spans(text: str) -> list[_Span]:
    """What to mask in ``text``: character spans in order, overlapping ones merged."""
    found = default_engine().find(text)
    if len(found) == 0:
        return []
    starts, ends = found.scanned_start, found.scanned_end
    if not text.isascii():
        # Folding keeps one character for one: character offsets in the scanned
        # bytes are those of ``text``. A byte starts a character unless it is a
        # UTF-8 continuation byte.
        scanned = np.frombuffer(found.scanned, dtype=np.uint8)
        before = np.concatenate(([0], np.cumsum((scanned & 0xC0) != 0x80)))
        starts, ends = before[starts], before[ends]
    names = found.engine.names
    spans = sorted(
        zip(starts.tolist(), ends.tolist(), found.kind.tolist(), strict=True),
        key=lambda s: (s[0], -s[1]),
    )
    # Fixed-width kinds are found at every position: overlapping findings are masked
    # as one span (generic form), so no digit of either survives.
    merged: list[_Span] = []
    for start, end, kind in spans:
        if merged and start < merged[-1][1]:
            s, e, _ = merged[-1]
            merged[-1] = (s, max(e, end), "")
        else:
            merged.append((start, end, names[kind]))
    return merged


def _apply(text: str, spans: list[_Span], offset: int) -> str:
    """``text`` with ``spans`` (offsets ``offset`` characters ahead of it) masked."""
    engine = default_engine()
    out: list[str] = []
    at = 0
    for start, end, name in spans:
        s, e = start - offset, end - offset
        out.append(text[at:s])
        out.append(_masked(text[s:e], name, engine.recognizers, engine.names))
        at = e
    out.append(text[at:])
    return "".join(out)


def _masked(
    matched: str, name: str, recognizers: Sequence[Recognizer], names: Sequence[str]
) -> str:
    """A match masked; a label in it (``客户姓名：``) stays readable."""
    if not name:
        return mask(matched)
    value = recognizers[names.index(name)].value(fold_text(matched))
    label = len(matched) - len(value)
    return matched[:label] + mask(matched[label:], name)


# A single-quoted SQL literal ('' inside is a quote), and the digit runs inside one
# (ASCII or full-width, with an ID number's final X).
_LITERAL = re.compile(r"'(?:[^']|'')*'")
_DIGIT_RUN = re.compile(r"[0-9\uff10-\uff19]{7,}[Xx\uff38\uff58]?")
# A literal that is a number (a fragment of one): digits and what a pattern or a
# grouping puts between them.
_NUMBER_LITERAL = re.compile(r"[0-9\uff10-\uff19%_*?\s\-+]*[Xx\uff38\uff58]?[%_*?\s]*")
# An operator comparing with a literal, up to the literal's opening quote. The column
# before it is read backwards (:func:`_column_before`): a regex starting with the
# column would try every start inside long words (quadratic on a long token).
_OPERATOR = re.compile(
    r"""(==?|<>|!=|\b(?:NOT\s+)?(?:I?LIKE|SIMILAR\s+TO)\b|\b(?:NOT\s+)?IN\s*\()\s*(?=')""",
    re.IGNORECASE,
)
_CLOSERS = {'"': '"', "`": "`", "]": "["}
#: Longest column name looked at (a qualified, quoted name).
_MAX_COLUMN = 128
_NAME_COLUMN = re.compile(r"(\w*?)_?(?:name|nm)", re.IGNORECASE)
#: Columns named for a client's name (exactly these, or ``<prefix>_name`` / ``<prefix>name``
#: / ``<prefix>_nm`` with a prefix not naming a thing).
NAME_COLUMNS = frozenset({"name", "xm", "姓名", "客户姓名", "名字", "客户名", "户名"})
_NOT_PEOPLE = frozenset(
    (
        "user",
        "usr",
        "db",
        "database",
        "datname",
        "table",
        "tab",
        "schema",
        "relation",
        "rel",
        "column",
        "col",
        "index",
        "idx",
        "host",
        "hostname",
        "file",
        "path",
        "app",
        "application",
        "branch",
        "dept",
        "department",
        "org",
        "company",
        "corp",
        "product",
        "prod",
        "role",
        "group",
        "grp",
        "account",
        "acct",
        "login",
        "nick",
        "screen",
        "domain",
        "server",
        "service",
        "type",
        "kind",
        "class",
        "tag",
        "field",
        "view",
        "func",
        "function",
        "proc",
        "procedure",
        "sequence",
        "seq",
        "key",
        "constraint",
        "trigger",
        "event",
        "job",
        "task",
        "queue",
        "topic",
        "bucket",
        "device",
        "sheet",
        "city",
        "province",
        "region",
        "district",
        "street",
        "channel",
        "agent",
        "plan",
        "policy",
    )
)
_WILDCARDS = frozenset("%_*?")


def is_name_column(column: str) -> bool:
    """Whether a (possibly qualified or quoted) column holds people's names."""
    base = column.rsplit(".", 1)[-1].strip('"`[]').strip().lower()
    if base in NAME_COLUMNS or base.endswith("姓名"):
        return True
    found = _NAME_COLUMN.fullmatch(base)
    return found is not None and found.group(1).rstrip("_") not in _NOT_PEOPLE


def mask_sql_literals(text: str) -> str:
    """Number literals with seven or more digits in a run, and literals compared with
    a name column, masked (see the module's docstring); the rest left as it was."""
    if "'" not in text:
        return text
    names: list[tuple[int, int]] = []
    for found in _OPERATOR.finditer(text):
        column = _column_before(text, found.start())
        if not column or not is_name_column(column):
            continue
        at = found.end()
        many = found.group(1).rstrip().endswith("(")
        while True:
            literal = _LITERAL.match(text, at)
            if literal is None:
                break
            names.append(literal.span())
            if not many:
                break
            rest = re.match(r"\s*,\s*", text[literal.end() :])
            if rest is None:
                break
            at = literal.end() + rest.end()
    out: list[str] = []
    at = 0
    for literal in _LITERAL.finditer(text):
        start, end = literal.span()
        out.append(text[at:start])
        body = text[start + 1 : end - 1]
        if any(s <= start and end <= e for s, e in names):
            out.append("'" + _masked_name(body) + "'")
        else:
            number = _NUMBER_LITERAL.fullmatch(body) is not None
            out.append("'" + (_DIGIT_RUN.sub(_masked_digits, body) if number else body) + "'")
        at = end
    out.append(text[at:])
    return "".join(out)


def _column_before(text: str, end: int) -> str:
    """The (possibly qualified or quoted) column name ending before ``end`` (spaces
    between skipped); empty when there is none."""
    at = end
    while at > 0 and text[at - 1].isspace() and end - at < _MAX_COLUMN:
        at -= 1
    stop = at
    floor = max(0, stop - _MAX_COLUMN)
    if at > 0 and text[at - 1] in _CLOSERS:
        opening = text.rfind(_CLOSERS[text[at - 1]], floor, at - 1)
        return text[opening:stop] if opening >= 0 else ""
    while at > floor and (text[at - 1].isalnum() or text[at - 1] in "_$."):
        at -= 1
    return text[at:stop]


def _masked_digits(run: re.Match[str]) -> str:
    digits = run.group(0)
    return digits[:3] + "*" * (len(digits) - 3)


def _masked_name(body: str) -> str:
    """A name literal masked: the first character kept only for a whole name of two
    or more characters; a pattern keeps only its wildcards."""
    if any(c in _WILDCARDS for c in body) or len(body.strip()) < 2:
        return "".join(c if c in _WILDCARDS else "*" for c in body)
    return mask(body, "chinese_name")


def mask_data(value: object) -> object:
    """Every string inside JSON-like ``value`` (dicts, lists) through :func:`mask_text`."""
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {k: mask_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask_data(v) for v in value]
    return value
