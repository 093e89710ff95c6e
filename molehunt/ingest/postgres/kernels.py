"""Generic byte kernels over a batch's buffer, shared by the PostgreSQL parsers.

Nothing here knows PostgreSQL: finding bytes, fixed-width windows and 8-byte
words at many offsets, counting quotes, reading runs of ASCII digits eight at a
time (SWAR), Arrow strings at byte ranges, invalid UTF-8, and the per-thread
in-memory DuckDB the slow paths share. Offsets are ``int64`` numpy arrays.
"""

from __future__ import annotations

import codecs
import threading
from typing import Any, cast

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc


class _Connections(threading.local):
    con: duckdb.DuckDBPyConnection | None = None


_CONNECTIONS = _Connections()


def connection() -> duckdb.DuckDBPyConnection:
    """This thread's in-memory DuckDB (the slow paths' engine), opened once."""
    # Opening DuckDB costs more than parsing a small batch: one in-memory
    # database per thread, emptied after each batch, serves every batch.
    if _CONNECTIONS.con is None:
        con = duckdb.connect()
        con.execute("SET enable_progress_bar = false")
        con.execute("SET TimeZone = 'UTC'")
        con.execute("SET threads = 1")
        _CONNECTIONS.con = con
    return _CONNECTIONS.con


Mask = npt.NDArray[np.bool_]


def as_mask(values: Any) -> Mask:
    """A boolean Arrow array (NULL as false) as numpy."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if values.null_count:
        values = values.fill_null(False)
    return np.asarray(values.to_numpy(zero_copy_only=False), dtype=bool)


HIGH = np.uint64(0x8080808080808080)


def to_int32(values: pa.Array[Any]) -> pa.Array[Any]:
    """``try_cast(values AS INTEGER)``: digits read in numpy, anything else asked of DuckDB."""
    n = len(values)
    if n == 0:
        return pa.array([], pa.int32())
    try:
        # Arrow reads plain (signed) digits the way DuckDB does and refuses the rest.
        return pc.cast(values, pa.int32())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    starts, stops, data = string_ranges(values)
    length = stops - starts
    valid = as_mask(values.is_valid())
    simple = valid & (length >= 1) & (length <= 9)
    number = np.zeros(n, dtype=np.int64)
    if len(data) and simple.any():
        steps = np.arange(9)
        at = np.minimum(starts[:, None] + steps, len(data) - 1)
        digit = data[at].astype(np.int64) - ord("0")
        inside = steps < length[:, None]
        simple &= (((digit >= 0) & (digit <= 9)) | ~inside).all(axis=1)
        scale = np.where(inside, 10 ** np.maximum(length[:, None] - 1 - steps, 0), 0)
        number = (np.where(inside, digit, 0) * scale).sum(axis=1)
    missing = ~simple
    odd = np.flatnonzero(valid & ~simple & (length > 0))
    if len(odd):
        con = connection()
        picked = pa.array(odd, pa.int64())
        con.register("odd_numbers", pa.table({"i": picked, "v": values.take(picked)}))
        try:
            got = con.execute(
                "SELECT i, try_cast(v AS INTEGER) AS n FROM odd_numbers WHERE n IS NOT NULL"
            ).fetchnumpy()
        finally:
            con.unregister("odd_numbers")
        number[got["i"]] = got["n"]
        missing[got["i"]] = False
    return pa.array(number.astype(np.int32), mask=missing)


def ints_at(
    data: npt.NDArray[np.uint8], buffer: pa.Buffer, begin: Offsets, end: Offsets
) -> pa.Array[Any]:
    """:func:`to_int32` of the text ``data[begin:end]`` (``buffer`` holds ``data``;
    ranges in order, not overlapping), read straight from the bytes.

    Plain digits (up to 9, so they fit) are read in numpy; an empty range is
    NULL; only what else there is becomes text for :func:`to_int32`.
    """
    number, plain = _eight_digits(data, begin, end)
    values = pa.array(number.astype(np.int32), mask=~plain)
    odd = ~plain & (end > begin)
    if not odd.any():
        return values
    which = np.flatnonzero(odd)
    slow = to_int32(strings_at(buffer, begin[which], end[which]))
    if slow.null_count == len(slow):
        return values
    return cast("pa.Array[Any]", pc.replace_with_mask(values, pa.array(odd), slow))


_SWAR_LOW = np.uint64(0x0F0F0F0F0F0F0F0F)
_SWAR_PAIRS = (
    (np.uint64(2561), np.uint64(8), np.uint64(0x00FF00FF00FF00FF)),
    (np.uint64(6553601), np.uint64(16), np.uint64(0x0000FFFF0000FFFF)),
    (np.uint64(42949672960001), np.uint64(32), np.uint64(0xFFFFFFFF)),
)


def _eight_digits(
    data: npt.NDArray[np.uint8], begin: Offsets, end: Offsets
) -> tuple[Offsets, Mask]:
    """The number each ``data[begin:end]`` spells where it is 1-8 digits, and where.

    The 8 bytes ending at ``end`` are one word: the bytes before the field are
    masked off, every byte checked for a digit at once (as for log times) and
    the digits combined pairwise in three multiplies (two digits, four, eight),
    not one pass per digit.
    """
    width = 8
    length = end - begin
    ok = (length >= 1) & (length <= width) & (end >= width)
    word = _words_at(data, np.maximum(end - width, 0))
    # The field's bytes are the word's last (highest) ``length`` bytes.
    keep = _ALL_BYTES << (np.uint64(8) * np.clip(width - length, 0, width - 1).astype(np.uint64))
    x = (word ^ _ZEROS) & keep
    ok &= (((x + _SWAR_DIGIT) | x) & HIGH & keep) == 0
    x &= _SWAR_LOW
    for factor, shift, mask in _SWAR_PAIRS:
        x = ((x * factor) >> shift) & mask
    return np.asarray(x, dtype=np.int64), np.asarray(ok)


_ALL_BYTES = np.uint64(0xFFFFFFFFFFFFFFFF)
_ZEROS = np.uint64(0x3030303030303030)
_SWAR_DIGIT = np.uint64(0x7676767676767676)


def _words_at(data: npt.NDArray[np.uint8], begin: Offsets) -> npt.NDArray[np.uint64]:
    """The 8 bytes at each ``begin`` as a little-endian word (past the end: arbitrary)."""
    if len(data) >= 8 and data.flags.c_contiguous:
        at = np.ndarray((len(data) - 7,), dtype="<u8", buffer=data, strides=(1,))
        return np.asarray(at[np.minimum(begin, len(data) - 8)], dtype=np.uint64)
    return np.asarray(windows(data, begin, 8).view("<u8")[:, 0], dtype=np.uint64)


def string_ranges(values: pa.Array[Any]) -> tuple[Offsets, Offsets, npt.NDArray[np.uint8]]:
    """Where each string of ``values`` lies in its data buffer, and that buffer."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    buffers: list[Any] = values.buffers()
    n = len(values)
    width = np.int64 if pa.types.is_large_string(values.type) else np.int32
    off = np.frombuffer(buffers[1], dtype=width)[values.offset : values.offset + n + 1]
    off = off.astype(np.int64)
    data = (
        np.frombuffer(buffers[2], dtype=np.uint8)
        if buffers[2] is not None
        else np.zeros(0, dtype=np.uint8)
    )
    return np.asarray(off[:-1], dtype=np.int64), np.asarray(off[1:], dtype=np.int64), data


Offsets = npt.NDArray[np.int64]


def strings_at(
    buffer: pa.Buffer,
    starts: Offsets,
    stops: Offsets,
    *,
    binary: bool = False,
    valid: Mask | None = None,
) -> pa.Array[Any]:
    """The byte ranges ``[starts[i], stops[i])`` of ``buffer`` as a string array
    (``binary``: as bytes, for text not yet known to be valid UTF-8), NULL
    where ``valid`` is false.

    Ranges must be in file order and not overlap; the strings are copied once,
    straight from the buffer (the gaps between them are laid out as dummy
    strings, then left out).
    """
    n = len(starts)
    kind = pa.binary() if binary else pa.string()
    if n == 0:
        return pa.array([], kind)
    # A buffer under 2 GiB is addressed with 32-bit offsets, so the strings
    # come out in their final layout, with no cast copying them again.
    small = buffer.size < 2**31
    offsets = np.empty(2 * n, dtype=np.int32 if small else np.int64)
    offsets[0::2] = starts
    offsets[1::2] = stops
    if valid is not None:
        offsets[1::2] = np.where(valid, stops, starts)
    layout = kind if small else pa.large_binary() if binary else pa.large_string()
    both = pa.Array.from_buffers(layout, 2 * n - 1, [None, pa.py_buffer(offsets.data), buffer])
    picked = both.take(np.arange(0, 2 * n, 2, dtype=np.int64))
    if not small:
        picked = pc.cast(picked, kind)
    return picked if valid is None else with_nulls(picked, valid)


def with_nulls(values: pa.Array[Any], valid: Mask) -> pa.Array[Any]:
    """``values`` made NULL where ``valid`` is false (sharing their buffers when it can)."""
    if valid.all():
        return values
    if values.offset or values.null_count:
        return cast(
            "pa.Array[Any]", pc.if_else(pa.array(valid), values, pa.scalar(None, values.type))
        )
    bitmap = pa.py_buffer(np.packbits(valid, bitorder="little").data)
    parts: list[Any] = values.buffers()
    return pa.Array.from_buffers(values.type, len(values), [bitmap, *parts[1:]])


_CHUNK = 1 << 20


def find_bytes(data: npt.NDArray[np.uint8], chars: bytes) -> Offsets:
    """Where any of ``chars`` occurs in ``data``, in order.

    Read in cache-sized chunks: a whole-buffer comparison would allocate (and
    page in) a temporary as large as the buffer for every byte looked for.
    """
    found: list[Offsets] = []
    for lo in range(0, len(data), _CHUNK):
        part = data[lo : lo + _CHUNK]
        wanted = part == chars[0]
        for c in chars[1:]:
            wanted |= part == c
        found.append(np.flatnonzero(wanted) + lo)
    return np.concatenate(found) if found else np.empty(0, dtype=np.int64)


_DIGITS = np.zeros(256, dtype=bool)
_DIGITS[ord("0") : ord("9") + 1] = True


def digit_field(data: npt.NDArray[np.uint8], begin: Offsets, end: Offsets) -> tuple[Offsets, Mask]:
    """The number each ``data[begin:end]`` spells, and whether it is 1-18 digits.

    Up to 8 digits (nearly every id and count) are read a word at a time
    (:func:`_eight_digits`); only longer fields are read digit by digit.
    """
    value, ok = _eight_digits(data, begin, end)
    longer = np.flatnonzero(~ok & (end - begin > 8))
    if len(longer):
        b, e = begin[longer], end[longer]
        ok[longer] = all_of(data, b, e, _DIGITS, 9, 18)
        value[longer] = _digits_value(data, b, e)
    return value, ok


def _digits_value(data: npt.NDArray[np.uint8], begin: Offsets, end: Offsets) -> Offsets:
    """The number each ``data[begin:end]`` spells, where that is 1-18 digits (else garbage)."""
    length = np.clip(end - begin, 0, 18)
    value = np.zeros(len(begin), dtype=np.int64)
    if len(begin) == 0 or not length.any():
        return value
    digits = windows(data, begin, int(length.max())).astype(np.int64) - ord("0")
    for k in range(digits.shape[1]):
        more = k < length
        value[more] = value[more] * 10 + digits[more, k]
    return value


def windows(data: npt.NDArray[np.uint8], begin: Offsets, width: int) -> npt.NDArray[np.uint8]:
    """``data[begin[i] : begin[i] + width]`` as the rows of one array.

    Past the end of ``data`` a row holds arbitrary bytes: callers mask by length.
    Rows are gathered as unaligned 8-byte words (a fancy index copies one
    element at a time: a word per element is a few times faster than a byte).
    """
    n = len(begin)
    if n == 0 or width == 0 or len(data) == 0:
        return np.zeros((n, width), dtype=np.uint8)
    words = -(-width // 8)
    padded = 8 * words
    last = len(data) - padded
    out = np.empty((n, padded), dtype=np.uint8)
    if last >= 0 and data.flags.c_contiguous:
        # Every byte position read as the 8-byte word starting there.
        at = np.ndarray((len(data) - 7,), dtype="<u8", buffer=data, strides=(1,))
        near_end = begin > last
        inside = begin if not near_end.any() else np.where(near_end, 0, begin)
        grid = out.view("<u8")
        for k in range(words):
            grid[:, k] = at[inside + 8 * k] if k else at[inside]
        if not near_end.any():
            return out[:, :width]
        begin = np.where(near_end, begin, 0)
    else:
        near_end = np.ones(n, dtype=bool)
    at = np.minimum(begin[near_end, None] + np.arange(padded), len(data) - 1)
    out[near_end] = data[at]
    return out[:, :width]


def equals(
    data: npt.NDArray[np.uint8], begin: Offsets, end: Offsets, word: bytes, *, prefix: bool = False
) -> npt.NDArray[np.bool_]:
    """Whether ``data[begin:end]`` is ``word`` (or, with ``prefix``, starts with it)."""
    length = end - begin
    ok = length >= len(word) if prefix else length == len(word)
    if len(word) == 0 or len(data) == 0:
        return np.asarray(ok & (len(word) == 0))
    if len(word) <= 8:
        # One word compare a row, its bytes past ``word`` masked off.
        mask = np.uint64((1 << (8 * len(word))) - 1)
        want_word = np.uint64(int.from_bytes(word, "little"))
        return np.asarray(ok & ((_words_at(data, begin) & mask) == want_word))
    want = np.frombuffer(word, dtype=np.uint8)
    return np.asarray(ok & (windows(data, begin, len(word)) == want).all(axis=1))


def all_of(
    data: npt.NDArray[np.uint8],
    begin: Offsets,
    end: Offsets,
    allowed: npt.NDArray[np.bool_],
    shortest: int,
    longest: int,
) -> npt.NDArray[np.bool_]:
    """Whether each ``data[begin:end]`` is ``shortest``..``longest`` bytes, all ``allowed``."""
    length = end - begin
    ok = (length >= shortest) & (length <= longest)
    if len(data) == 0:
        return np.asarray(ok & (length == 0))
    if not ok.any():
        return np.asarray(ok)
    # The window is as wide as the longest field in range, usually a few bytes.
    steps = np.arange(int(length[ok].max()))
    fine = allowed[windows(data, begin, len(steps))] | (steps >= length[:, None])
    return np.asarray(ok & fine.all(axis=1))


_ONES = np.uint64(0x0101010101010101)


class QuoteCounts:
    """Running count of ``"`` over a byte buffer, read at any position (mod 256,
    or ``exact``).

    A byte-wise cumsum is a serial loop over every byte; counting within each
    8-byte word takes one multiply (byte ``i`` of ``word * 0x0101..01`` sums
    bytes ``0..i``, at most 8, so no byte overflows) and only the per-word
    totals need a running sum.
    """

    __slots__ = ("_carry", "_carry8", "_within")

    def __init__(self, buf: npt.NDArray[np.uint8], *, exact: bool = False) -> None:
        n = len(buf)
        padded = np.empty(n + (-n) % 8 + 8, dtype=np.uint8)
        padded[n:] = 0
        np.equal(buf, ord('"'), out=padded[:n].view(bool))
        # Little-endian words put the first byte of the buffer in the lowest byte.
        words = padded.view("<u8")
        np.multiply(words, _ONES, out=words)
        totals = padded[7::8]
        self._carry: npt.NDArray[Any]
        self._carry8: npt.NDArray[Any]
        if exact:
            self._carry = np.cumsum(totals, dtype=np.int32)
            self._carry -= totals
            # Narrowed, not summed again: a uint8 running sum is the slower one.
            self._carry8 = self._carry.astype(np.uint8)
        else:
            self._carry8 = np.cumsum(totals, dtype=np.uint8)
            self._carry8 -= totals
            self._carry = self._carry8
        self._within = padded

    def upto(self, at: Offsets) -> npt.NDArray[Any]:
        """Quotes in ``buf[: at + 1]``; ``at`` may be -1."""
        safe = np.maximum(at, 0)
        counts = self._within[safe] + self._carry[safe >> 3]
        counts[at < 0] = 0
        return np.asarray(counts)

    def odd(self, at: Offsets) -> npt.NDArray[np.uint8]:
        """1 where an odd number of ``"`` precede and include position ``at`` (>= 0), else 0."""
        counts = self._within[at] + self._carry8[at >> 3]
        counts &= 1
        return np.asarray(counts, dtype=np.uint8)


class _BadBytes(threading.local):
    found: list[int]

    def __init__(self) -> None:
        self.found = []


_BAD_BYTES = _BadBytes()


def blank_to_null(values: pa.Array[Any], blank: str = "") -> pa.Array[Any]:
    """``values`` with ``blank`` made NULL."""
    is_blank = pc.equal(values, pa.scalar(blank, values.type))
    return cast("pa.Array[Any]", pc.if_else(is_blank, pa.scalar(None, values.type), values))


def _note_bad_bytes(error: UnicodeError) -> tuple[str, int]:
    if not isinstance(error, UnicodeDecodeError):
        raise error
    _BAD_BYTES.found.append(error.start)
    return "\ufffd", error.end


codecs.register_error("molehunt.pgaudit.note", _note_bad_bytes)


def invalid_utf8(data: bytes | memoryview, end: int) -> Offsets:
    """Byte positions in ``data[:end]`` where invalid UTF-8 starts.

    ASCII and valid UTF-8 are vouched for in one fast pass (bytes.isascii,
    then Arrow's UTF-8 check); only a buffer that fails it is decoded, in C,
    to find where.
    """
    none = np.empty(0, dtype=np.int64)
    if end == 0 or (isinstance(data, bytes) and data.isascii()):
        return none
    whole = pa.Array.from_buffers(
        pa.large_binary(),
        1,
        [None, pa.py_buffer(np.array([0, end], dtype=np.int64).data), pa.py_buffer(data)],
    )
    try:
        whole.cast(pa.large_string())
        return none
    except pa.ArrowInvalid:
        pass
    _BAD_BYTES.found = []
    bytes(data[:end]).decode("utf-8", errors="molehunt.pgaudit.note")
    found = np.array(_BAD_BYTES.found, dtype=np.int64)
    _BAD_BYTES.found = []
    return found
