"""pgAudit payloads: ``AUDIT: SESSION,<statement_id>,...`` split into fields.

:func:`audit_fields` splits the payloads a format parser vouches for in numpy;
the others are read with the regex :data:`AUDIT_PAYLOAD` in DuckDB
(:func:`read_audits` puts both together).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from molehunt.ingest.postgres.kernels import (
    Mask,
    Offsets,
    QuoteCounts,
    all_of,
    as_mask,
    connection,
    digit_field,
    equals,
    find_bytes,
    strings_at,
    windows,
)
from molehunt.ingest.postgres.records import Records

# One field of pgAudit's CSV: quoted with doubled quotes, or free of , " and newlines.
_FIELD = r'("(?:[^"]|"")*"|[^,"\n\r]*)'
AUDIT_PAYLOAD = (
    r"^AUDIT: (SESSION|OBJECT),(\d+),(\d+),([A-Z_]+),([^,\n]*),([^,\n]*),"
    + ",".join([_FIELD] * 3)
    + r"(?:,(-?\d+))?$"
)
_AUDIT_GROUPS = [
    "audit_type",
    "sid",
    "ssid",
    "cls",
    "cmd",
    "otype",
    "obj",
    "stmt",
    "params",
    "rows",
]


def _unquote(col: str) -> str:
    return f"""CASE WHEN starts_with({col}, '"') THEN replace({col}[2:-2], '""', '"')
        ELSE {col} END"""


@dataclass(frozen=True, slots=True)
class SplitPayloads:
    """AUDIT payloads a format parser has split itself (:func:`audit_fields`).

    ``fields`` holds the payloads the numpy split vouches for, ``offset``
    being their position among the AUDIT records; ``text`` gives the payloads
    at some positions, for the regex to read the others.
    """

    fields: pa.Table
    text: Callable[[Offsets], pa.Array[Any]]


def keep_payloads(
    payloads: pa.Array[Any] | SplitPayloads, keep: Mask
) -> pa.Array[Any] | SplitPayloads:
    """The payloads of the AUDIT records ``keep`` holds for, renumbered."""
    if not isinstance(payloads, SplitPayloads):
        return payloads.filter(pa.array(keep))
    kept = np.flatnonzero(keep)
    renumber = np.cumsum(keep) - 1
    position = np.asarray(payloads.fields["offset"].to_numpy(), dtype=np.int64)
    still = keep[position]
    fields = payloads.fields.filter(pa.array(still))
    fields = fields.set_column(0, "offset", pa.array(renumber[position[still]], pa.int64()))
    text = payloads.text
    return SplitPayloads(fields, lambda at: text(kept[at]))


# -- AUDIT lines ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Audits:
    """The AUDIT records of a batch, their payload split into fields."""

    rows: Offsets  # into the records
    offsets: Offsets
    ok: Mask
    bad: Mask  # definitely not a payload (neither ok nor bad: no message to judge)
    fields: pa.Table  # _AUDIT_FIELDS less offset and fast, one row per AUDIT record
    copy_to: Mask
    needs_plan: Mask


def read_audits(recs: Records, payloads: pa.Array[Any] | SplitPayloads) -> Audits:
    """The AUDIT records' payloads split into fields: the numpy split's, and the
    regex's in DuckDB for the rest."""
    rows = recs.rows("audit")
    offsets = recs.offsets[rows]
    if isinstance(payloads, SplitPayloads):
        fast, text = payloads.fields, payloads.text
    else:
        messages = payloads
        if isinstance(messages, pa.ChunkedArray):
            messages = messages.combine_chunks()
        fast = audit_fields(pa.array(np.arange(len(rows)), pa.int64()), messages)

        def text(at: Offsets) -> pa.Array[Any]:
            return messages.take(pa.array(at, pa.int64()))

    names = _AUDIT_FIELDS.names[2:]
    position = np.asarray(fast["offset"].to_numpy(), dtype=np.int64)
    ok = np.zeros(len(rows), dtype=bool)
    bad = np.zeros(len(rows), dtype=bool)
    ok[position] = True
    if len(position) == len(rows):
        fields = fast.select(names)
    else:
        slow = np.flatnonzero(~ok)
        parsed, slow_ok = _slow_audit_fields(text(slow))
        ok[slow] = as_mask(slow_ok)
        bad[slow] = as_mask(pc.invert(slow_ok))
        both = pa.concat_tables([fast.select(names), parsed.select(names)])
        order = np.empty(len(rows), dtype=np.int64)
        order[position] = np.arange(len(position))
        order[slow] = len(position) + np.arange(len(slow))
        fields = both.take(pa.array(order, pa.int64()))
    cls = fields["audit_class"]
    copy_to = as_mask(
        pc.and_(pc.equal(cls, pa.scalar("READ")), pc.equal(fields["command"], pa.scalar("COPY")))
    )
    counted = as_mask(pc.is_in(cls, value_set=pa.array(["READ", "WRITE"])))
    uncounted = as_mask(fields["logged_rows"].is_null()) | as_mask(
        pc.equal(fields["command"], pa.scalar("DECLARE CURSOR"))
    )
    needs_plan = counted & ~copy_to & uncounted
    return Audits(rows, offsets, ok, bad, fields, copy_to, needs_plan)


def _slow_audit_fields(messages: pa.Array[Any]) -> tuple[pa.Table, pa.Array[Any]]:
    """The fields of payloads the numpy split left out, by :data:`AUDIT_PAYLOAD`."""
    names = ", ".join(f"'{g}'" for g in _AUDIT_GROUPS)
    pattern = "'" + AUDIT_PAYLOAD.replace("'", "''") + "'"
    con = connection()
    numbers = pa.array(np.arange(len(messages)), pa.int64())
    con.register("slow_audits", pa.table({"i": numbers, "message": messages}))
    try:
        table = con.sql(
            f"""
            WITH x AS (
              SELECT i, regexp_extract(message, {pattern}, [{names}]) AS p FROM slow_audits
            )
            SELECT p.audit_type <> '' AS ok,
              p.cls AS audit_class, p.cmd AS command, p.otype AS object_type,
              {_unquote("p.obj")} AS object_name, {_unquote("p.stmt")} AS statement,
              {_unquote("p.params")} AS params_raw,
              try_cast(nullif(p.rows, '') AS BIGINT) AS logged_rows,
              try_cast(p.sid AS BIGINT) AS statement_id,
              try_cast(p.ssid AS BIGINT) AS substatement_id
            FROM x ORDER BY i
            """
        ).to_arrow_table()
    finally:
        con.unregister("slow_audits")
    ok = table["ok"].combine_chunks()
    fields = table.drop_columns(["ok"]).cast(pa.schema(list(_AUDIT_FIELDS)[2:]))
    return fields, ok


_CLASS = np.zeros(256, dtype=bool)
_CLASS[ord("A") : ord("Z") + 1] = True
_CLASS[ord("_")] = True
_AUDIT_FIELDS = pa.schema(
    [  # type: ignore[arg-type]
        ("offset", pa.int64()),
        ("fast", pa.bool_()),
        ("audit_class", pa.string()),
        ("command", pa.string()),
        ("object_type", pa.string()),
        ("object_name", pa.string()),
        ("statement", pa.string()),
        ("params_raw", pa.string()),
        ("logged_rows", pa.int64()),
        ("statement_id", pa.int64()),
        ("substatement_id", pa.int64()),
    ]
)


def audit_fields(offsets: pa.Array[Any], messages: Any) -> pa.Table:
    """The fields of the AUDIT payloads that are plainly well formed, split in numpy.

    Only payloads that :data:`AUDIT_PAYLOAD` certainly matches the same way are
    returned (a comma splits fields unless an odd number of ``"`` precede it in
    the payload, and each field is then checked against its part of the
    pattern); anything unusual (a quote in the command, a 20-digit id) is left
    to the regex in SQL, which has the last word.
    """
    if isinstance(messages, pa.ChunkedArray):
        messages = messages.combine_chunks()
    n = len(messages)
    buffers: list[Any] = messages.buffers()
    if n == 0 or buffers[2] is None:
        return _AUDIT_FIELDS.empty_table()
    width = np.int64 if pa.types.is_large_string(messages.type) else np.int32
    first, last = messages.offset, messages.offset + n + 1
    off: Offsets = np.frombuffer(buffers[1], dtype=width)[first:last].astype(np.int64)
    data = np.frombuffer(buffers[2], dtype=np.uint8)[: int(off[-1])]
    valid = (
        np.asarray(messages.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
        if messages.null_count
        else None
    )
    f = _split_fields(data, off, valid)
    breaks = find_bytes(data, b"\n\r")
    ok, ids, logged = _plain_fields(data, f, breaks)
    texts = [_quoted_field(data, buffers[2], f, k, breaks, ok) for k in (6, 7, 8)]
    everything = bool(ok.all())
    keep = pa.array(ok)

    def kept(values: pa.Array[Any]) -> pa.Array[Any]:
        return values if everything else values.filter(keep)

    def text(k: int) -> pa.Array[Any]:
        return kept(strings_at(buffers[2], f.begin[k], f.end[k]))

    fast = f.rows[ok]
    return pa.table(
        {
            "offset": offsets.take(pa.array(fast, pa.int64())),
            "fast": pa.array(np.ones(len(fast), dtype=bool)),
            "audit_class": text(3),
            "command": text(4),
            "object_type": text(5),
            "object_name": kept(texts[0]),
            "statement": kept(texts[1]),
            "params_raw": kept(texts[2]),
            "logged_rows": pa.array(logged[ok], mask=~f.has_rows[ok]),
            "statement_id": pa.array(ids[0][ok], pa.int64()),
            "substatement_id": pa.array(ids[1][ok], pa.int64()),
        },
        schema=_AUDIT_FIELDS,
    )


@dataclass(frozen=True, slots=True)
class _Fields:
    """The byte ranges of the ten fields of the payloads at ``rows`` (the candidates)."""

    rows: Offsets
    begin: list[Offsets]
    end: list[Offsets]
    has_rows: Mask  # a tenth field (``pgaudit.log_rows``)
    quotes: QuoteCounts


def _split_fields(data: npt.NDArray[np.uint8], off: Offsets, valid: Mask | None) -> _Fields:
    """Split the payloads (end to end in ``data`` at ``off``) at their unquoted commas."""
    n = len(off) - 1
    starts, stops = off[:-1], off[1:]
    head = starts + len(b"AUDIT: ")
    cand = (stops >= head) & equals(data, starts, stops, b"AUDIT: ", prefix=True)
    if valid is not None:
        cand &= valid
    quotes = QuoteCounts(data, exact=True)
    before = quotes.upto(head - 1)
    cand &= ((quotes.upto(stops - 1) - before) & 1) == 0
    before_odd = (before & 1).astype(np.uint8)
    commas = find_bytes(data, b",")
    # Messages lie end to end in the buffer: each one owns the commas up to its end.
    bounds = np.searchsorted(commas, off)
    commas = commas[bounds[0] : bounds[-1]]
    owner = np.repeat(np.arange(n), np.diff(bounds))
    # Usually every payload holds its quotes in pairs: then none shifts the next.
    start_odd = before_odd[owner] if before_odd.any() else np.uint8(0)
    split = quotes.odd(commas) == start_odd
    commas, owner = commas[split], owner[split]
    count = np.bincount(owner, minlength=n)
    cand &= (count == 8) | (count == 9)
    rows = np.flatnonzero(cand)
    first = (np.cumsum(count) - count)[rows]
    has_rows = count[rows] == 9
    around = commas[np.minimum(first[:, None] + np.arange(9), len(commas) - 1)]
    sep = [around[:, k] for k in range(8)]
    sep.append(np.where(has_rows, around[:, 8], stops[rows]))
    begin = [head[rows], *(c + 1 for c in sep)]
    end = [*sep, stops[rows]]
    begin[9] = np.minimum(begin[9], end[9])  # no rows: an empty range at the end
    return _Fields(rows, begin, end, has_rows, quotes)


def _count_in(marks: Offsets | QuoteCounts, b: Offsets, e: Offsets) -> Offsets:
    """How many of ``marks`` (offsets, or the quotes) lie in each range ``b:e``."""
    if isinstance(marks, QuoteCounts):
        return np.asarray(marks.upto(e - 1) - marks.upto(b - 1), dtype=np.int64)
    return np.asarray(np.searchsorted(marks, e) - np.searchsorted(marks, b), dtype=np.int64)


def _plain_fields(
    data: npt.NDArray[np.uint8], f: _Fields, breaks: Offsets
) -> tuple[Mask, list[Offsets], Offsets]:
    """Check fields 0-5 and the rows (which the numpy split vouches for), and read
    the two ids and the rows: (ok, [statement ids, substatement ids], rows)."""
    begin, end = f.begin, f.end
    # Fields 0-5 hold no quote and no line break, so no comma hides in them.
    ok = (_count_in(f.quotes, begin[0], end[5]) == 0) & (_count_in(breaks, begin[0], end[5]) == 0)
    kinds = windows(data, begin[0], len(b"SESSION"))
    length = end[0] - begin[0]
    ok &= ((length == 7) & (kinds == np.frombuffer(b"SESSION", np.uint8)).all(axis=1)) | (
        (length == 6) & (kinds[:, :6] == np.frombuffer(b"OBJECT", np.uint8)).all(axis=1)
    )
    ids = []
    for k in (1, 2):
        value, plain = digit_field(data, begin[k], end[k])
        ok &= plain
        ids.append(value)
    ok &= all_of(data, begin[3], end[3], _CLASS, 1, 32)
    for k in (4, 5):
        ok &= end[k] - begin[k] <= 64
    negative = f.has_rows & (data[np.minimum(begin[9], len(data) - 1)] == ord("-"))
    count, plain = digit_field(data, begin[9] + negative, end[9])
    ok &= ~f.has_rows | plain
    return ok, ids, np.where(negative, -count, count)


def _quoted_field(
    data: npt.NDArray[np.uint8], buffer: Any, f: _Fields, k: int, breaks: Offsets, ok: Mask
) -> pa.Array[Any]:
    """Field ``k`` (object, statement, parameter: quoted or plain) unquoted; clears
    ``ok`` where it is neither plainly quoted nor plain."""
    b, e = f.begin[k], f.end[k]
    inside = _count_in(f.quotes, b, e)
    quoted = (e - b >= 2) & (data[np.minimum(b, len(data) - 1)] == ord('"')) & (inside >= 2)
    quoted &= data[np.maximum(e - 1, 0)] == ord('"')
    ok &= quoted | ((inside == 0) & (_count_in(breaks, b, e) == 0))
    inner = strings_at(buffer, b + quoted, e - quoted)
    escaped = quoted & (inside > 2)
    if escaped.any():
        doubled: Any = pc.count_substring(inner, '""')  # type: ignore[call-overload]
        pairs = np.asarray(doubled.to_numpy(zero_copy_only=False))
        # Inside quotes every " comes doubled: the left-to-right pairs hold them all.
        ok &= ~escaped | (2 * pairs.astype(np.int64) == inside - 2)
        inner = pc.replace_substring(inner, '""', '"')
    return inner
