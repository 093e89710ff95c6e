"""PostgreSQL through syslog (``log_destination = 'syslog'``) with pgAudit and auto_explain.

Each line is an RFC 3164 syslog line that PostgreSQL numbered::

    Feb  9 09:51:29 db1 postgres[1234]: [5-1] 2021-02-09 09:51:29.164 CST [1234] LOG:  AUDIT: ...
    Feb  9 09:51:29 db1 postgres[1234]: [5-2] #011FROM clients

``[5-1]`` is the process's 5th message, part 1; its further lines come as parts
2, 3... (a line of the message starts with a tab, which syslog daemons write as
``#011``; a long line is split into parts without one). Lines of different
processes interleave, so parts are gathered by process and message number.

The message after ``[n-m]`` is what ``pg-stderr`` reads (``log_line_prefix``,
then ``SEVERITY:  message``): the lines are put back together as the stderr log
the server would have written and read by :class:`PgStderrParser` (the same
prefix setting and inference), and every event keeps the offset of its first
syslog line in this file. Where the prefix holds no time (``%m``/``%t``), the
syslog time is used: its year is the file's (by its modification time; a month
later than that is the year before), its zone ``pg_log_timezone``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from molehunt.ingest.base import FormatMismatchError, ParseResult, Rejected, event_ids
from molehunt.ingest.postgres.kernels import find_bytes, strings_at
from molehunt.ingest.postgres.prefix import PrefixedLogParser, looks_like_syslog
from molehunt.ingest.postgres.stderr import PgStderrParser
from molehunt.ingest.postgres.tables import empty_tables

if TYPE_CHECKING:
    pass

_LINE = (
    r"^(?P<month>[A-Z][a-z]{2}) (?P<day>[ \d]\d) (?P<clock>\d\d:\d\d:\d\d) \S+ "
    r"[^\s\[]+\[(?P<pid>\d+)\]: \[(?P<seq>\d+)-(?P<part>\d+)\] "
)
_MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
_TAB = b"#011"
#: pyarrow.compute, untyped where its stubs know fewer argument kinds than it takes.
_compute: Any = pc
_LOCAL = "SYSLOGLOCAL"  # the zone written after a syslog time: log_timezone


class PgSyslogParser(PrefixedLogParser):
    """PostgreSQL logs sent to syslog with pgAudit: the same events as pg-stderr."""

    kind: ClassVar[str] = "pg-syslog"
    description: ClassVar[str] = (
        "PostgreSQL through syslog (RFC 3164 lines, [n-m] parts) with pgAudit and auto_explain"
    )

    def configure(self, prefix: str) -> None:
        self._set_timed(bool(re.search(r"%-?\d*[mt]", prefix)), prefix)

    def _set_timed(self, timed: bool, prefix: str) -> None:
        """Read the time from the prefix (``timed``) or from the syslog head."""
        self.prefix = prefix
        self.timed = timed
        inner = prefix if timed else "%t " + prefix.replace("%m", "").replace("%t", "")
        # The syslog time is written with a placeholder zone read as log_timezone.
        self.stderr = PgStderrParser(
            inner,
            zones={**self.extra_zones, _LOCAL: self.log_timezone or "UTC"},
            log_timezone=self.log_timezone,
            plan_window=self.plan_window,
        )

    @classmethod
    def sniff(cls, head: bytes) -> bool:
        lines = head.split(b"\n")[:20]
        return any(
            looks_like_syslog(line) and re.match(_LINE.encode(), line) is not None for line in lines
        )

    def parse(
        self, data: bytes, *, base_offset: int, source_id: str, path: str, final: bool = False
    ) -> ParseResult:
        """Parse the whole lines at the start of ``data`` (see :class:`LogParser`).

        When the configured prefix does not fit, the prefix is inferred as for
        pg-stderr: first with the time the messages carry, then with the syslog
        time (a prefix without ``%m``/``%t``).
        """
        try:
            return self._parse(data, base_offset, source_id, path, final)
        except FormatMismatchError:
            if not self.timed:
                raise
            self._set_timed(False, self.prefix)
            return self._parse(data, base_offset, source_id, path, final)

    def _parse(
        self, data: bytes, base_offset: int, source_id: str, path: str, final: bool
    ) -> ParseResult:
        buf = np.frombuffer(data, dtype=np.uint8)
        newlines = find_bytes(buf, b"\n")
        if len(newlines) == 0:
            return ParseResult(tables=empty_tables())
        end = int(newlines[-1]) + 1
        starts = np.concatenate([[0], newlines[:-1] + 1]).astype(np.int64)
        stops = newlines.astype(np.int64)
        buffer = pa.py_buffer(data)
        lines = strings_at(buffer, starts, stops, binary=True)
        head = pc.extract_regex(lines, _LINE)
        ours = np.asarray(head.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
        foreign_at = starts[~ours]
        idx = np.flatnonzero(ours)
        head = head.filter(pa.array(ours))
        pid, seq, part = (_numbers(head, name) for name in ("pid", "seq", "part"))
        # The whole match's length: the fields and the fixed text between them.
        head_len = _match_lengths(lines.filter(pa.array(ours)))
        body = starts[idx] + head_len

        owner = _owners(idx, pid, seq, part)
        orphan_at = starts[idx[owner < 0]]
        keep = np.flatnonzero(owner >= 0)
        out = keep[np.lexsort((keep, owner[keep]))]  # by first line, parts in file order
        is_first = part[out] == 1
        if not final and len(out):
            # A process writes a message's parts at once: a message may still grow
            # only if it is its process's last and was logged in the batch's last
            # second. The batch stops before the first such message.
            cut = _first_open(buf, starts, idx, pid, seq, out, is_first)
            if cut is not None:
                end = int(starts[idx[out[cut]]])
                out, is_first = out[:cut], is_first[:cut]
                if not len(out):
                    return ParseResult(tables=empty_tables(), skipped={})
        if not len(out):
            n = int((foreign_at < end).sum()) + int((orphan_at < end).sum())
            return ParseResult(
                tables=empty_tables(),
                consumed=end,
                records=int(np.searchsorted(starts, end)),
                skipped={"not a PostgreSQL syslog line": n} if n else {},
            )
        content_start, seps = _contents(buf, body[out], is_first)
        texts = strings_at(buffer, content_start, stops[idx[out]], binary=True)
        if not self.timed:
            texts = _compute.binary_join_element_wise(
                self._syslog_times(head, out, path, is_first), texts, pa.scalar(b"")
            )
        converted, record_at = _stderr_log(texts, seps, is_first)
        record_orig = starts[idx[out]][is_first] + base_offset

        inner = self.stderr.parse(
            converted, base_offset=0, source_id=source_id, path=path, final=final
        )
        self.inferred_prefix = self.stderr.inferred_prefix

        def original(at: np.ndarray) -> np.ndarray:
            which = np.clip(np.searchsorted(record_at, at), 0, max(len(record_at) - 1, 0))
            return np.asarray(record_orig[which], dtype=np.int64)

        if inner.consumed >= len(converted) - 1:
            consumed = end
        else:
            # Up to the first line of the first record that waits (lines of other
            # programs and parts of earlier messages after it are read again).
            consumed = int(original(np.array([inner.consumed]))[0]) - base_offset
        return ParseResult(
            tables=_at_original_offsets(inner.tables, original, source_id),
            rejected=[_at_original(r, original) for r in inner.rejected],
            consumed=consumed,
            records=int(np.searchsorted(starts, consumed)),
            skipped=_skipped(foreign_at, orphan_at, consumed, inner.skipped),
            pending=inner.pending,
        )

    def _syslog_times(
        self, head: pa.Array[Any], out: np.ndarray, path: str, is_first: np.ndarray
    ) -> pa.Array[Any]:
        """``YYYY-MM-DD HH:MM:SS <zone> `` from the syslog time of each line ``out``
        (part 1 lines only; empty for the others)."""
        try:
            stamp = datetime.fromtimestamp(os.stat(path).st_mtime, UTC)
        except OSError:
            stamp = datetime.now(UTC)
        picked = head.take(pa.array(out, pa.int64()))
        month_text = pc.cast(pc.struct_field(picked, "month"), pa.string())
        found = np.asarray(
            pc.index_in(month_text, value_set=pa.array(_MONTHS)).to_numpy(zero_copy_only=False),
            dtype=np.float64,
        )
        month = np.nan_to_num(found, nan=0).astype(np.int64) + 1
        year = np.where(month > stamp.month, stamp.year - 1, stamp.year)
        day_text = pc.cast(pc.struct_field(picked, "day"), pa.string())
        day = np.asarray(
            pc.cast(pc.utf8_trim_whitespace(day_text), pa.int64()).to_numpy(zero_copy_only=False),
            dtype=np.int64,
        )
        months = (year - 1970) * 12 + month - 1
        days = months.astype("datetime64[M]").astype("datetime64[D]") + (day - 1)
        dates = pc.strftime(pa.array(days.astype("datetime64[s]")), format="%Y-%m-%d ")
        clock = pc.cast(pc.struct_field(picked, "clock"), pa.string())
        zone = f" {_LOCAL} "
        text = _compute.binary_join_element_wise(dates, clock, pa.scalar(zone), pa.scalar(""))
        chosen: pa.Array[Any] = _compute.if_else(pa.array(is_first), text, pa.scalar(""))
        return chosen.cast(pa.binary())


def _first_open(
    buf: np.ndarray,
    starts: np.ndarray,
    idx: np.ndarray,
    pid: np.ndarray,
    seq: np.ndarray,
    out: np.ndarray,
    is_first: np.ndarray,
) -> int | None:
    """Position in ``out`` of the first message that more parts could still extend."""
    _, which = np.unique(pid, return_inverse=True)
    last = np.full(int(which.max()) + 1, -1, dtype=np.int64)
    np.maximum.at(last, which, np.arange(len(pid)))
    firsts = np.flatnonzero(is_first)
    lines = out[firsts]
    final_of_process = seq[last[which[lines]]] == seq[lines]
    # "Mon dd HH:MM:SS" of the record's first line against the batch's last line.
    stamp = 15
    heads = buf[np.minimum(starts[idx[lines]][:, None] + np.arange(stamp), len(buf) - 1)]
    tail = buf[np.minimum(starts[idx[-1]] + np.arange(stamp), len(buf) - 1)]
    same_second = (heads == tail).all(axis=1)
    open_ = np.flatnonzero(final_of_process & same_second)
    return int(firsts[open_[0]]) if len(open_) else None


def _match_lengths(lines: pa.Array[Any]) -> np.ndarray:
    """Length of the syslog head (up to and with ``[n-m] ``) of each line."""
    rest = pc.replace_substring_regex(lines, _LINE, b"", max_replacements=1)
    full = np.asarray(_compute.binary_length(lines).to_numpy(zero_copy_only=False), dtype=np.int64)
    left = np.asarray(_compute.binary_length(rest).to_numpy(zero_copy_only=False), dtype=np.int64)
    return np.asarray(full - left, dtype=np.int64)


def _owners(idx: np.ndarray, pid: np.ndarray, seq: np.ndarray, part: np.ndarray) -> np.ndarray:
    """For each syslog line of PostgreSQL (``idx``), the index of the part-1 line of
    its message (same process and number), or -1: none in the batch."""
    key = pid * (1 << 32) + seq
    order = np.lexsort((idx, key))
    first = part[order] == 1
    group_start = np.concatenate([[True], key[order][1:] != key[order][:-1]])
    # The latest part 1 at or before each line of its group (-1: none in the batch).
    marker = np.where(first, np.arange(len(order)), -1)
    marker = np.where(group_start & ~first, -2, marker)
    owner_sorted = np.maximum.accumulate(np.where(marker == -2, -1, marker))
    # A group whose first lines precede any part 1 owns nothing for those lines.
    group_id = np.cumsum(group_start) - 1
    group_first = np.flatnonzero(group_start)
    valid_owner = owner_sorted >= group_first[group_id]
    owner = np.full(len(idx), -1, dtype=np.int64)
    owner[order] = np.where(valid_owner, order[np.maximum(owner_sorted, 0)], -1)
    return owner


def _contents(
    buf: np.ndarray, body: np.ndarray, is_first: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Where each part's text starts (after ``#011``, written for a tab) and what
    joins it to the part before (a new line, a new indented line, or nothing)."""
    tab = np.zeros(len(body), dtype=bool)
    cont = np.flatnonzero(~is_first)
    if len(cont):
        window = buf[np.minimum(body[cont][:, None] + np.arange(4), len(buf) - 1)]
        tab[cont] = (window == np.frombuffer(_TAB, dtype=np.uint8)).all(axis=1) | (
            window[:, 0] == ord("\t")
        )
    content_start = body + np.where(tab, len(_TAB), 0)
    # The \t continuation lines written as "#011" may also be a real tab.
    real_tab = tab & (buf[np.minimum(body, len(buf) - 1)] == ord("\t"))
    content_start = np.where(real_tab, body + 1, content_start)
    seps = np.where(is_first, "\n", np.where(tab, "\n\t", ""))
    if len(seps):
        seps[0] = ""
    return content_start, seps


def _stderr_log(
    texts: pa.Array[Any], seps: np.ndarray, is_first: np.ndarray
) -> tuple[bytes, np.ndarray]:
    """The parts joined into the stderr log the server would have written, and
    where each record (part 1) starts in it."""
    joined = _compute.binary_join_element_wise(
        pa.array(seps.tolist(), pa.binary()), texts, pa.scalar(b"")
    )
    lengths = np.asarray(
        _compute.binary_length(joined).to_numpy(zero_copy_only=False), dtype=np.int64
    )
    data_buffer = joined.buffers()[2]
    total = int(lengths.sum())
    converted = (data_buffer.to_pybytes()[:total] if data_buffer else b"") + b"\n"
    position = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    sep_len = np.where(is_first, np.where(np.arange(len(seps)) == 0, 0, 1), 0)
    return converted, (position + sep_len)[is_first]


def _at_original_offsets(
    tables: dict[str, pa.Table], original: Callable[[np.ndarray], np.ndarray], source_id: str
) -> dict[str, pa.Table]:
    """The event tables of the stderr log with the ids of the syslog lines."""
    out: dict[str, pa.Table] = {}
    for name, table in tables.items():
        if table.num_rows:
            # Inner ids are "<source>:<offset in converted, 12 digits>".
            digits = pc.utf8_slice_codeunits(table["event_id"], -12)
            conv = np.asarray(pc.cast(digits, pa.int64()).to_numpy(), dtype=np.int64)
            table = table.set_column(
                table.schema.get_field_index("event_id"),
                "event_id",
                event_ids(source_id, original(conv)),
            )
        out[name] = table
    return out


def _numbers(head: pa.Array[Any], name: str) -> np.ndarray:
    """The field ``name`` of the syslog heads as integers."""
    values = pc.cast(pc.cast(pc.struct_field(head, name), pa.string()), pa.int64())
    return np.asarray(values.to_numpy(zero_copy_only=False), dtype=np.int64)


def _skipped(
    foreign_at: np.ndarray, orphan_at: np.ndarray, consumed: int, inner: dict[str, int]
) -> dict[str, int]:
    """Lines consumed that hold no event, by reason: other programs' lines, parts of
    messages read before, and what the stderr parser skipped."""
    skipped: dict[str, int] = {}
    for reason, at in (
        ("not a PostgreSQL syslog line", foreign_at),
        ("continuation of a message read before", orphan_at),
    ):
        n = int((at < consumed).sum())
        if n:
            skipped[reason] = n
    for reason, n in inner.items():
        skipped[reason] = skipped.get(reason, 0) + n
    return skipped


def _at_original(rejected: Rejected, original: Callable[[np.ndarray], np.ndarray]) -> Rejected:
    """A record the stderr parser set aside, at its offset in the syslog file (its
    line and length in the stderr log it was read from say nothing here)."""
    at = None if rejected.offset is None else int(original(np.array([rejected.offset]))[0])
    return Rejected(reason=rejected.reason, offset=at, raw=rejected.raw)
