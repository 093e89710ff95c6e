"""Cutting csvlog bytes into records and fields without a Python loop.

A newline ends a record when the number of ``"`` before it is even; a record of
another field count than the batch's layout (:data:`LAYOUTS`) is cut around
(:func:`resynced`) at the next line that starts with a timestamp.
"""

from __future__ import annotations

from typing import cast

import numpy as np

from molehunt.ingest.postgres.kernels import Offsets, find_bytes, windows

#: csvlog layouts by their field count: PostgreSQL 9.0 added application_name
#: (23), 13 backend_type (24), 14 leader_pid and query_id (26, as 15, 16 and 17).
#: The columns molehunt reads keep their place in every layout.
LAYOUTS: dict[int, str] = {
    22: "PostgreSQL 8.4",
    23: "PostgreSQL 9.0-12",
    24: "PostgreSQL 13",
    26: "PostgreSQL 14-17",
}
COLUMNS = 26  # the newest layout, the default of a batch with no well-formed record


_ONES = np.uint64(0x0101010101010101)
_TOP_BYTE = np.uint64(56)
_CHUNK = 1 << 20
# Comma positions are the largest array kept: 32 bits hold a batch under 2 GiB.
POSITION = np.int32


def cut_records(data: bytes) -> tuple[Offsets, Offsets, Offsets] | None:
    """Where the whole records end (at their newline), the commas between their
    fields, and how many of those commas precede each end.

    A newline or comma counts when an even number of ``"`` precede it. The
    buffer is read in cache-sized chunks, each in a few numpy passes: a
    running quote count within each 8-byte word takes one multiply (byte ``i``
    of ``word * 0x0101..01`` sums bytes ``0..i``, at most 8, so no byte
    overflows); the parity of the words before (a running XOR over one byte a
    word) is added to every byte of its word, so each byte then says whether it
    lies inside quotes, and a newline or comma outside them is found in the
    same pass that finds it at all (no gather of counts at every comma).
    """
    buf = np.frombuffer(data, dtype=np.uint8)
    position = POSITION if len(buf) < 2**31 else np.int64
    ends: list[Offsets] = []
    commas: list[Offsets] = []
    before: list[Offsets] = []
    chunk = min(len(buf), _CHUNK)
    scratch = np.empty(chunk + 8, dtype=np.uint8)
    hits = np.empty(chunk, dtype=bool)
    parity = 0
    seen = 0
    for lo in range(0, len(buf), _CHUNK):
        part = buf[lo : lo + _CHUNK]
        size = len(part)
        within = scratch[: size + (-size) % 8]
        within[size:] = 0
        np.equal(part, ord('"'), out=within[:size].view(bool))
        words = within.view("<u8")
        np.multiply(words, _ONES, out=words)
        odd = (words >> _TOP_BYTE).astype(np.uint8)
        odd &= 1
        carry = np.bitwise_xor.accumulate(odd)
        carry ^= odd
        if parity:
            carry ^= 1
        words += carry.astype(np.uint64) * _ONES
        words &= _ONES  # each byte: 1 if an odd number of quotes precede or are it
        inside = within[:size]
        found_at = hits[:size]
        np.equal(part, ord("\n"), out=found_at)
        np.less(inside, found_at.view(np.uint8), out=found_at)
        newlines = np.flatnonzero(found_at)
        np.equal(part, ord(","), out=found_at)
        np.less(inside, found_at.view(np.uint8), out=found_at)
        found = np.flatnonzero(found_at)
        before.append(np.searchsorted(found, newlines) + seen)
        ends.append(newlines + lo)
        at = cast("Offsets", found.astype(position))
        at += lo
        commas.append(at)
        seen += len(found)
        parity = int(within[-1])
    if not ends:
        return None
    record_ends = np.concatenate(ends)
    if len(record_ends) == 0:
        return None
    counts = np.concatenate(before)
    return record_ends, np.concatenate(commas)[: int(counts[-1])], counts


def layout(fields: Offsets) -> int:
    """The field count of the batch's layout: the one most of its records have
    (a few broken records cannot change it)."""
    known = np.array(sorted(LAYOUTS), dtype=np.int64)
    tally = np.array([(fields == k).sum() for k in known.tolist()])
    return int(known[int(tally.argmax())]) if tally.any() else COLUMNS


_RESYNCS = 1000  # broken records a batch is cut around; past that the rest stays as cut


def resynced(data: bytes) -> tuple[Offsets, Offsets, Offsets] | None:
    """:func:`cut_records`, cut again where an unclosed quote swallowed the records after it.

    A record whose field count is wrong, and which runs over a line that starts
    like a record (a timestamp at the line start), ends just before that line:
    the quote count starts afresh there, so one broken record costs only itself.
    The same for the bytes after the last whole record, when a line in them
    starts a record that is whole and well formed.
    """
    cut = cut_records(data)
    if cut is None:
        return _tail_resync(data, 0, None)
    buf = np.frombuffer(data, dtype=np.uint8)
    ends, commas, before = cut
    columns = layout(np.diff(before, prepend=0) + 1)
    done_ends: list[Offsets] = []
    done_commas: list[Offsets] = []
    done_before: list[Offsets] = []
    base = 0  # where the current cut starts in ``data``
    comma_base = 0  # commas kept before it
    for _ in range(_RESYNCS):
        counts = np.diff(before, prepend=0)
        bad = np.flatnonzero(counts != columns - 1)
        restart = None
        for i in bad.tolist():
            start = base + (int(ends[i - 1]) + 1 if i else 0)
            restart = _record_start_within(buf, start, int(ends[i]) + base)
            if restart is not None:
                break
        if restart is None and base == 0:
            # The common case: no record to cut again; the arrays are kept as they are.
            tail = _tail_resync(data, int(ends[-1]) + 1, columns)
            if tail is None:
                return ends, commas, before
        if restart is None:
            done_ends.append(ends + base)
            done_commas.append(commas + base)
            done_before.append(before + comma_base)
            tail = _tail_resync(data, int(ends[-1]) + base + 1, columns)
            if tail is not None:
                t_ends, t_commas, t_before = tail
                done_ends.append(t_ends)
                done_commas.append(t_commas)
                done_before.append(t_before + comma_base + len(commas))
            break
        # Records before i stay; record i ends at the newline before ``restart``
        # (no field counted: it is rejected); the rest is cut afresh.
        kept_commas = int(before[i - 1]) if i else 0
        done_ends.append(np.append(ends[:i] + base, restart - 1))
        done_commas.append(commas[:kept_commas] + base)
        done_before.append(np.append(before[:i], kept_commas) + comma_base)
        comma_base += kept_commas
        rest = cut_records(data[restart:])
        base = restart
        if rest is None:
            tail = _tail_resync(data, restart, columns)
            if tail is not None:
                done_ends.append(tail[0])
                done_commas.append(tail[1])
                done_before.append(tail[2] + comma_base)
            break
        ends, commas, before = rest
    else:
        done_ends.append(ends + base)
        done_commas.append(commas + base)
        done_before.append(before + comma_base)
    return (
        np.concatenate(done_ends).astype(np.int64),
        np.concatenate(done_commas).astype(commas.dtype),
        np.concatenate(done_before).astype(np.int64),
    )


def _tail_resync(
    data: bytes, start: int, columns: int | None
) -> tuple[Offsets, Offsets, Offsets] | None:
    """Records after ``start`` where the bytes from there hold no whole record (an
    unclosed quote) but a later line starts a whole, well-formed one: the bytes
    before that line are one broken record, the rest is cut afresh."""
    if start >= len(data):
        return None
    buf = np.frombuffer(data, dtype=np.uint8)
    restart = _record_start_within(buf, start, len(data))
    if restart is None:
        return None
    rest = resynced(data[restart:])
    if rest is None:
        return None
    ends, commas, before = rest
    counts = np.diff(before, prepend=0)
    if columns is not None and not (counts == columns - 1).any():
        return None
    if columns is None and not np.isin(counts + 1, list(LAYOUTS)).any():
        return None
    return (
        np.concatenate([[restart - 1], ends + restart]).astype(np.int64),
        commas + restart,
        np.concatenate([[0], before]).astype(np.int64),
    )


_STAMP = np.frombuffer(b"dddd-dd-dd dd:dd:dd", dtype=np.uint8)
_STAMP_DIGIT = np.equal(_STAMP, ord("d"))


def _record_start_within(buf: np.ndarray, start: int, stop: int) -> int | None:
    """The first line start after ``start`` and before ``stop`` that begins with a
    timestamp (as every csvlog record does), or None."""
    newlines = find_bytes(buf[start:stop], b"\n") + start + 1
    newlines = newlines[newlines + len(_STAMP) <= len(buf)]
    if len(newlines) == 0:
        return None
    window = windows(buf, newlines, len(_STAMP))
    digits = (window - np.uint8(ord("0")) <= 9)[:, _STAMP_DIGIT].all(axis=1)
    marks = (window[:, ~_STAMP_DIGIT] == _STAMP[~_STAMP_DIGIT]).all(axis=1)
    hits = np.flatnonzero(digits & marks & (newlines < stop))
    return int(newlines[hits[0]]) if len(hits) else None


def field_count(record: bytes) -> int:
    """The number of CSV fields of one record (commas outside quotes, plus one)."""
    buf = np.frombuffer(record, dtype=np.uint8)
    outside = (np.cumsum(buf == ord('"'), dtype=np.uint8) & 1) == 0
    return int(((buf == ord(",")) & outside).sum()) + 1
