"""Compiled cutting of Squid access log lines: one pass over the batch's bytes.

The Squid parsers' SQL (:mod:`molehunt.ingest.squid`) costs a dozen string
functions per field; here a numba kernel walks each line once, checks its
shape, parses its numbers and notes where each text field starts and ends,
then the fields are gathered into Arrow string buffers.

The kernel takes only lines it is sure of: printable ASCII, each field in its
plain form, numbers in range, no IPv6 brackets, %-escapes or escaped quotes.
Every other line is *flagged* and left to the SQL, which keeps the last word on
what a line means and why a bad one is rejected. What the kernel yields for a
line it takes is what the SQL yields for it (the tests hold both to that).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import numpy as np
import numpy.typing as npt
import pyarrow as pa
from numba import njit

F = TypeVar("F", bound=Callable[..., Any])


def _compiled(function: F) -> F:
    """``function`` compiled with numba, its machine code cached on disk.

    Caching needs a writable place (beside the module, else the user's cache
    folder); with none, numba refuses to cache at all, and the function is
    compiled in memory on first use instead (a few seconds, once per process).
    """
    try:
        compiled = cast(F, njit(cache=True, nogil=True)(function))
    except RuntimeError:
        compiled = cast(F, njit(nogil=True)(function))
    return compiled


# Indices of the numeric outputs (one int64 row each, -1 for NULL).
US, PORT, STATUS, BYTES_OUT, BYTES_IN, DURATION = range(6)
NUMBERS = 6

#: Text columns the kernel cuts, in the order of its position rows.
TEXTS = (
    "src_ip",
    "user_name",
    "method",
    "url",
    "host",
    "path",
    "squid_result",
    "hierarchy",
    "request_content_type",
    "content_type",
    "user_agent",
)
(
    _SRC_IP,
    _USER,
    _METHOD,
    _URL,
    _HOST,
    _PATH,
    _RESULT,
    _HIER,
    _REQ_CT,
    _CT,
    _UA,
) = range(len(TEXTS))

# Later than 9999-12-31 is no clock's time (the SQL rejects it: leave it there).
_MAX_MS = 253_402_300_800_000
_SPACE, _QUOTE, _SLASH, _BACKSLASH = 32, 34, 47, 92
_DOT, _COLON, _AT, _DASH, _PERCENT = 46, 58, 64, 45, 37
_QUESTION, _HASH, _BRACKET = 63, 35, 91


@_compiled
def _plain(buf: Any, p: int, end: int, stop: int) -> int:
    """End of the run of printable bytes from ``p`` holding no space, quote or
    ``stop``; ``p`` itself when there is none."""
    while p < end:
        b = buf[p]
        if b <= _SPACE or b >= 127 or b in (_QUOTE, stop):
            break
        p += 1
    return p


@_compiled
def _quoted(buf: Any, p: int, end: int, backslash: bool) -> int:
    """End of the run of printable bytes (spaces too) from ``p`` holding no quote
    (nor backslash unless allowed)."""
    while p < end:
        b = buf[p]
        if b < _SPACE or b >= 127 or b == _QUOTE or (b == _BACKSLASH and not backslash):
            break
        p += 1
    return p


@_compiled
def _digits(buf: Any, p: int, end: int) -> int:
    while p < end and 48 <= buf[p] <= 57:
        p += 1
    return p


@_compiled
def _value(buf: Any, a: int, b: int) -> int:
    """The decimal number ``buf[a:b]``; -2 when too long to be sure it fits."""
    if b - a > 18:
        return -2
    v = 0
    for k in range(a, b):
        v = v * 10 + (buf[k] - 48)
    return v


@_compiled
def _num(buf: Any, p: int, end: int) -> tuple[int, int]:
    """``[0-9]+|-`` at ``p`` followed by a space: (position after the space,
    value, -1 for '-'); position -1 when absent or too long."""
    q = _digits(buf, p, end)
    if q == p:
        if p < end and buf[p] == _DASH:
            q = p + 1
            if q < end and buf[q] == _SPACE:
                return q + 1, -1
        return -1, 0
    if q >= end or buf[q] != _SPACE:
        return -1, 0
    v = _value(buf, p, q)
    if v < 0:
        return -1, 0
    return q + 1, v


@_compiled
def _find(buf: Any, a: int, b: int, byte: int) -> int:
    while a < b:
        if buf[a] == byte:
            return a
        a += 1
    return -1


@_compiled
def _rfind(buf: Any, a: int, b: int, byte: int) -> int:
    while b > a:
        b -= 1
        if buf[b] == byte:
            return b
    return -1


@_compiled
def _scheme_end(buf: Any, a: int, b: int) -> int:
    """Where ``://`` starts in ``buf[a:b]``, -1 when absent."""
    k = a
    while k + 2 < b:
        if buf[k] == _COLON and buf[k + 1] == _SLASH and buf[k + 2] == _SLASH:
            return k
        k += 1
    return -1


@_compiled
def _set(texts: Any, column: int, row: int, a: int, b: int) -> None:
    texts[column, 0, row] = a
    texts[column, 1, row] = b


@_compiled
def _set_or_null(texts: Any, column: int, row: int, buf: Any, a: int, b: int) -> None:
    """The text ``buf[a:b]``, NULL when it is '-'."""
    if b - a == 1 and buf[a] == _DASH:
        a = -1
    texts[column, 0, row] = a
    texts[column, 1, row] = b


@_compiled
def _port(buf: Any, a: int, b: int) -> int:
    """A port written ``buf[a:b]`` (non-empty): its number; -2 when the SQL must
    judge it (not all digits, or out of range)."""
    if b - a > 5 or _digits(buf, a, b) != b:
        return -2
    v = _value(buf, a, b)
    return v if v <= 65535 else -2


@_compiled
def _path(texts: Any, row: int, buf: Any, sep: int, a: int, b: int) -> None:
    """The path of a URL whose ``://`` is at ``sep`` and whose part after it runs
    ``a``..``b``: from the first '/' before any query or fragment; the '/' of
    ``://`` stands for a URL that names none."""
    cut = a
    while cut < b and buf[cut] != _QUESTION and buf[cut] != _HASH:
        cut += 1
    slash = _find(buf, a, cut, _SLASH)
    if slash >= 0:
        _set(texts, _PATH, row, slash, cut)
    else:
        _set(texts, _PATH, row, sep + 1, sep + 2)


@_compiled
def _host(texts: Any, row: int, buf: Any, a: int, b: int) -> None:
    """``buf[a:b]`` as the host, NULL when empty or '-'."""
    if a == b or (b - a == 1 and buf[a] == _DASH):
        a = -1
    _set(texts, _HOST, row, a, b)


@_compiled
def _is_connect(buf: Any, a: int, b: int) -> bool:
    # "CONNECT", byte by byte
    return bool(
        b - a == 7
        and buf[a] == 67
        and buf[a + 1] == 79
        and buf[a + 2] == 78
        and buf[a + 3] == 78
        and buf[a + 4] == 69
        and buf[a + 5] == 67
        and buf[a + 6] == 84
    )


@_compiled
def _line_end(buf: Any, start: int, stop: int) -> int:
    """End of a line's text: before its ``\\n`` and a ``\\r`` before that."""
    end = stop - 1
    if end > start and buf[end - 1] == 13:
        end -= 1
    return end


@_compiled
def _time(buf: Any, p: int, end: int) -> tuple[int, int]:
    """``[0-9]+(\\.[0-9]{3})?`` at ``p``: (position after it, microseconds);
    position -1 when absent or later than the SQL accepts."""
    q = _digits(buf, p, end)
    if q == p or q - p > 12:
        return -1, 0
    if q < end and buf[q] == _SPACE:  # whole seconds (%ts without %03tu)
        millis = _value(buf, p, q) * 1000
        if millis >= _MAX_MS:
            return -1, 0
        return q, millis * 1000
    if q + 4 > end or buf[q] != _DOT:
        return -1, 0
    if _digits(buf, q + 1, q + 4) != q + 4:
        return -1, 0
    millis = _value(buf, p, q) * 1000 + _value(buf, q + 1, q + 4)
    if millis >= _MAX_MS:
        return -1, 0
    return q + 4, millis * 1000


@_compiled
def cut_molehunt(buf: Any, bounds: Any, rows: Any, numbers: Any, texts: Any) -> int:
    """Cut the lines ``buf[bounds[i]:bounds[i + 1]]`` of the molehunt logformat.

    For the k-th line taken, ``rows[k]`` is its index, ``numbers[:, k]`` its
    numbers and ``texts[:, :, k]`` where its text fields start and end (start
    -1: NULL). Returns how many lines were taken.
    """
    taken = 0
    # src_ip, user, method, scheme, domain
    starts = np.empty(5, dtype=np.int64)
    ends = np.empty(5, dtype=np.int64)
    for i in range(len(bounds) - 1):
        s = bounds[i]
        end = _line_end(buf, s, bounds[i + 1])
        p, us = _time(buf, s, end)
        if p < 0 or p >= end or buf[p] != _SPACE:
            continue
        p += 1
        bad = False
        for f in range(5):
            q = _plain(buf, p, end, _QUOTE)
            if q == p or q >= end or buf[q] != _SPACE:
                bad = True
                break
            starts[f] = p
            ends[f] = q
            p = q + 1
        if bad:
            continue
        p, port_field = _num(buf, p, end)
        if p < 0:
            continue
        p, status = _num(buf, p, end)
        if p < 0 or status > 65535:
            continue
        result_a = p
        result_b = _plain(buf, p, end, _SLASH)
        if result_b == result_a or result_b >= end or buf[result_b] != _SLASH:
            continue
        hier_a = result_b + 1
        hier_b = _plain(buf, hier_a, end, _QUOTE)
        if hier_b == hier_a or hier_b >= end or buf[hier_b] != _SPACE:
            continue
        p = hier_b + 1
        p, bytes_out = _num(buf, p, end)
        if p < 0 or bytes_out < 0:
            continue
        p, _ = _num(buf, p, end)
        if p < 0:
            continue
        p, bytes_in = _num(buf, p, end)
        if p < 0 or bytes_in < 0:
            continue
        p, _ = _num(buf, p, end)
        if p < 0 or p >= end or buf[p] != _QUOTE:
            continue
        mt_a = p + 1
        mt_b = _quoted(buf, mt_a, end, False)
        if mt_b + 2 >= end or buf[mt_b] != _QUOTE or buf[mt_b + 1] != _SPACE:
            continue
        p, duration = _num(buf, mt_b + 2, end)
        if p < 0 or p >= end or buf[p] != _QUOTE:
            continue
        ua_a = p + 1
        ua_b = _quoted(buf, ua_a, end, False)
        if ua_b + 2 >= end or buf[ua_b] != _QUOTE or buf[ua_b + 1] != _SPACE:
            continue
        if buf[ua_b + 2] != _QUOTE:
            continue
        ct_a = ua_b + 3
        ct_b = _quoted(buf, ct_a, end, False)
        if ct_b + 1 >= end or buf[ct_b] != _QUOTE or buf[ct_b + 1] != _SPACE:
            continue
        p, _ = _num(buf, ct_b + 2, end)
        if p < 0 or p >= end or buf[p] != _QUOTE:
            continue
        url_a = p + 1
        url_b = _quoted(buf, url_a, end, True)
        if url_b + 1 != end or buf[url_b] != _QUOTE:
            continue

        k = taken
        m_a, m_b = starts[2], ends[2]
        connect = _is_connect(buf, m_a, m_b)
        if connect:
            if _find(buf, url_a, url_b, _BRACKET) >= 0:
                continue
            colon = _find(buf, url_a, url_b, _COLON)
            host_b = colon if colon >= 0 else url_b
            port = -1
            last = _rfind(buf, url_a, url_b, _COLON)
            if last >= 0 and last + 1 < url_b:
                port = _port(buf, last + 1, url_b)
                if port < 0:
                    continue
            _host(texts, k, buf, url_a, host_b)
            _set(texts, _PATH, k, -1, 0)
        else:
            d_a, d_b = starts[4], ends[4]
            if _find(buf, d_a, d_b, _PERCENT) >= 0 or _find(buf, d_a, d_b, _BRACKET) >= 0:
                continue
            port = port_field
            if port > 65535:
                continue
            _host(texts, k, buf, d_a, d_b)
            sep = _scheme_end(buf, url_a, url_b)
            if sep >= 0:
                _path(texts, k, buf, sep, sep + 3, url_b)
            else:
                _set(texts, _PATH, k, -1, 0)

        rows[k] = i
        numbers[US, k] = us
        numbers[PORT, k] = port
        numbers[STATUS, k] = status
        numbers[BYTES_OUT, k] = bytes_out
        numbers[BYTES_IN, k] = bytes_in
        numbers[DURATION, k] = duration
        _set(texts, _SRC_IP, k, starts[0], ends[0])
        _set_or_null(texts, _USER, k, buf, starts[1], ends[1])
        _set_or_null(texts, _METHOD, k, buf, m_a, m_b)
        _set(texts, _URL, k, url_a, url_b)
        _set(texts, _RESULT, k, result_a, result_b)
        _set(texts, _HIER, k, hier_a, hier_b)
        _set_or_null(texts, _CT, k, buf, mt_a, mt_b)
        _set_or_null(texts, _UA, k, buf, ua_a, ua_b)
        _set_or_null(texts, _REQ_CT, k, buf, ct_a, ct_b)
        taken += 1
    return taken


@_compiled
def _default_port(buf: Any, a: int, b: int) -> int:
    """The port a URL's scheme ``buf[a:b]`` implies (any case), -1 when none."""
    n = b - a
    if n < 2 or n > 5:
        return -1
    c0 = buf[a] | 32
    c1 = buf[a + 1] | 32
    if n == 4 and c0 == 104 and c1 == 116 and buf[a + 2] | 32 == 116 and buf[a + 3] | 32 == 112:
        return 80
    if n == 5 and c0 == 104 and c1 == 116 and buf[a + 2] | 32 == 116 and buf[a + 3] | 32 == 112:
        return 443 if buf[a + 4] | 32 == 115 else -1
    if n == 3 and c0 == 102 and c1 == 116 and buf[a + 2] | 32 == 112:
        return 21
    if n == 2 and c0 == 119 and c1 == 115:
        return 80
    if n == 3 and c0 == 119 and c1 == 115 and buf[a + 2] | 32 == 115:
        return 443
    return -1


@_compiled
def cut_native(buf: Any, bounds: Any, rows: Any, numbers: Any, texts: Any) -> int:
    """Cut lines of Squid's default logformat; outputs as :func:`cut_molehunt`."""
    taken = 0
    # method, url, user
    starts = np.empty(3, dtype=np.int64)
    ends = np.empty(3, dtype=np.int64)
    for i in range(len(bounds) - 1):
        s = bounds[i]
        end = _line_end(buf, s, bounds[i + 1])
        p, us = _time(buf, s, end)
        if p < 0 or p >= end or buf[p] != _SPACE:
            continue
        while p < end and buf[p] == _SPACE:
            p += 1
        p, duration = _num(buf, p, end)
        if p < 0:
            continue
        ip_a = p
        ip_b = _plain(buf, p, end, _SPACE)
        if ip_b == ip_a or ip_b >= end or buf[ip_b] != _SPACE:
            continue
        result_a = ip_b + 1
        result_b = _plain(buf, result_a, end, _SLASH)
        if result_b == result_a or result_b + 4 >= end or buf[result_b] != _SLASH:
            continue
        if _digits(buf, result_b + 1, result_b + 4) != result_b + 4:
            continue
        if buf[result_b + 4] != _SPACE:
            continue
        status = _value(buf, result_b + 1, result_b + 4)
        p, bytes_in = _num(buf, result_b + 5, end)
        if p < 0 or bytes_in < 0:
            continue
        bad = False
        for f in range(3):
            q = _plain(buf, p, end, _SPACE)
            if q == p or q >= end or buf[q] != _SPACE:
                bad = True
                break
            starts[f] = p
            ends[f] = q
            p = q + 1
        if bad:
            continue
        hier_a = p
        hier_b = _plain(buf, p, end, _SLASH)
        if hier_b == hier_a or hier_b >= end or buf[hier_b] != _SLASH:
            continue
        peer_b = _plain(buf, hier_b + 1, end, _SPACE)
        if peer_b == hier_b + 1 or peer_b >= end or buf[peer_b] != _SPACE:
            continue
        mt_a = peer_b + 1
        mt_b = _plain(buf, mt_a, end, _SPACE)
        if mt_b == mt_a or mt_b != end:
            continue
        m_a, m_b = starts[0], ends[0]
        url_a, url_b = starts[1], ends[1]
        user_a, user_b = starts[2], ends[2]
        if _find(buf, user_a, user_b, _PERCENT) >= 0:
            continue

        k = taken
        port = -1
        if _is_connect(buf, m_a, m_b):
            target_a, target_b = url_a, url_b
            _set(texts, _PATH, k, -1, 0)
        else:
            sep = _scheme_end(buf, url_a, url_b)
            if sep < 0:
                target_a = -1
                target_b = -1
                _set(texts, _PATH, k, -1, 0)
            else:
                target_a = sep + 3
                target_b = target_a
                while target_b < url_b:
                    b = buf[target_b]
                    if b in (_SLASH, _QUESTION, _HASH):
                        break
                    target_b += 1
                at = _rfind(buf, target_a, target_b, _AT)
                if at >= 0:
                    target_a = at + 1
                _path(texts, k, buf, sep, sep + 3, url_b)
                colon = _find(buf, url_a, url_b, _COLON)
                port = _default_port(buf, url_a, colon)
        if target_a >= 0:
            if _find(buf, target_a, target_b, _BRACKET) >= 0:
                continue
            colon = _find(buf, target_a, target_b, _COLON)
            _host(texts, k, buf, target_a, colon if colon >= 0 else target_b)
            last = _rfind(buf, target_a, target_b, _COLON)
            if last >= 0 and last + 1 < target_b:
                port = _port(buf, last + 1, target_b)
                if port < 0:
                    continue
        else:
            _set(texts, _HOST, k, -1, 0)

        rows[k] = i
        numbers[US, k] = us
        numbers[PORT, k] = port
        numbers[STATUS, k] = status
        numbers[BYTES_OUT, k] = -1
        numbers[BYTES_IN, k] = bytes_in
        numbers[DURATION, k] = duration
        _set(texts, _SRC_IP, k, ip_a, ip_b)
        _set_or_null(texts, _USER, k, buf, user_a, user_b)
        _set_or_null(texts, _METHOD, k, buf, m_a, m_b)
        _set(texts, _URL, k, url_a, url_b)
        _set(texts, _RESULT, k, result_a, result_b)
        _set(texts, _HIER, k, hier_a, hier_b)
        _set_or_null(texts, _CT, k, buf, mt_a, mt_b)
        _set(texts, _UA, k, -1, 0)
        _set(texts, _REQ_CT, k, -1, 0)
        taken += 1
    return taken


@_compiled
def _gather(buf: Any, starts: Any, ends: Any, count: int) -> tuple[Any, Any, Any, int]:
    """The first ``count`` texts ``buf[starts[k]:ends[k]]`` (NULL where the start
    is -1) as Arrow string buffers: offsets, bytes, validity bits, null count."""
    offsets = np.empty(count + 1, dtype=np.int32)
    valid = np.zeros((count + 7) // 8, dtype=np.uint8)
    total = 0
    nulls = 0
    offsets[0] = 0
    for k in range(count):
        a = starts[k]
        if a >= 0:
            total += ends[k] - a
            valid[k >> 3] |= np.uint8(1 << (k & 7))
        else:
            nulls += 1
        offsets[k + 1] = total
    data = np.empty(max(total, 1), dtype=np.uint8)
    for k in range(count):
        a = starts[k]
        if a >= 0:
            o = offsets[k]
            data[o : offsets[k + 1]] = buf[a : ends[k]]
    return offsets, data, valid, nulls


Kernel = Callable[..., int]

#: Lines longer than this together are left to the SQL (int32 positions).
MAX_BYTES = 2**31 - 1


def cut(
    kernel: Kernel, data: bytes, bounds: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.int64], dict[str, pa.Array[Any]]]:
    """Run ``kernel`` over the lines of ``data`` (``bounds``: each line's start,
    then the end of the last): the indices of the lines it took, and their
    columns (``us``, the numbers and :data:`TEXTS`, as the SQL names them)."""
    n = len(bounds) - 1
    buf = np.frombuffer(data, dtype=np.uint8)
    rows = np.empty(n, dtype=np.int64)
    numbers = np.empty((NUMBERS, n), dtype=np.int64)
    texts = np.empty((len(TEXTS), 2, n), dtype=np.int32)
    taken = int(kernel(buf, bounds, rows, numbers, texts))
    columns: dict[str, pa.Array[Any]] = {}
    for name, index, kind in (
        ("us", US, pa.int64()),
        ("port", PORT, pa.int32()),
        ("status", STATUS, pa.int32()),
        ("bytes_out", BYTES_OUT, pa.int64()),
        ("bytes_in", BYTES_IN, pa.int64()),
        ("duration_ms", DURATION, pa.int64()),
    ):
        values = numbers[index, :taken]
        missing = values < 0
        columns[name] = pa.array(
            values.astype(kind.to_pandas_dtype()), kind, mask=missing if missing.any() else None
        )
    for index, name in enumerate(TEXTS):
        offsets, text, valid, nulls = _gather(buf, texts[index, 0], texts[index, 1], taken)
        columns[name] = pa.StringArray.from_buffers(
            taken,
            pa.py_buffer(offsets),
            pa.py_buffer(text),
            pa.py_buffer(valid) if nulls else None,
            nulls,
        )
    return rows[:taken], columns
