"""The one hot loop of inference: packed int64 varints into a float32 band, compiled.

A 512x512 example holds 14 bands of 262,144 packed varints (3.7 million
values). Instead of TensorFlow's ``parse_example`` followed by cast, stack
and transpose, this loop, compiled by numba, decodes each band straight into
its channel of the model's channels-last array, and releases the GIL while it
runs (so the examples of a batch decode in parallel threads). Given a window
(the part of the image the model sees) it decodes only the window's values;
the others are counted eight bytes at a time (``_scan``). docs/benchmarks.md
gives the measured cost of each way.
"""

import os

import numba
import numpy as np
from numba.cpython.unsafe.numbers import leading_zeros, trailing_zeros

from transforms.dataset import schema

#: numba caches the compiled loops beside this file when it may write there
#: (a second start-up then skips ~1 s of compiling); a read-only install compiles
#: at each start instead of failing (numba refuses ``cache=True`` with no
#: writable cache location)
_CACHE = os.access(os.path.dirname(os.path.abspath(__file__)), os.W_OK) or bool(
    os.environ.get("NUMBA_CACHE_DIR"))

DEM_SCALE = int(schema.DEM_SCALE_METRES)  # integers: the loop computes the DEM rule exactly
DEM_MAX = int(schema.DEM_MAX_VALUE)


_HIGH_BITS = np.uint64(0x8080808080808080)  # the continuation bit of each byte of a word
_BYTE_ONES = np.uint64(0x0101010101010101)


@numba.njit(nogil=True, cache=_CACHE, inline="always")
def _bytes(buf: np.ndarray, i: int, stop: int, count: int, run: int):
    """``_scan`` one byte at a time, up to ``stop`` at most."""
    while count > 0 and i < stop:
        if run == 10:
            return -1, count, run
        if buf[i] < 0x80:
            count -= 1
            run = 0
        else:
            run += 1
        i += 1
    return i, count, run


@numba.njit(nogil=True, cache=_CACHE, inline="always")
def _scan(buf: np.ndarray, words: np.ndarray, i: int, end: int, count: int):
    """Pass up to ``count`` varints from ``buf[i]``, stopping at ``end``
    (``words``: ``_words(buf)``):
    ``(position, varints not passed, continuation bytes since the last
    varint ended)``; position -1 when a varint is longer than ten bytes.

    Whole 8-byte words are taken at once where they cannot hold the last
    varint asked for: the varints ending in a word are its bytes without the
    continuation bit (``~word & 0x80..80``, counted by one multiply), and the
    ten-byte rule is checked on the runs of continuation bytes before the
    first and after the last of them (a run inside a word is shorter than 8).
    4-5x faster than one byte at a time, with the same results (tested)."""
    run = 0
    i, count, run = _bytes(buf, i, min(end, (i + 7) & ~7), count, run)  # to a word boundary
    if i < 0:
        return -1, count, run
    while count > 8 and i + 8 <= end:
        ends = ~words[i >> 3] & _HIGH_BITS
        if ends == 0:
            run += 8
            if run >= 10:
                return -1, count, run
        else:
            if run + np.int64(trailing_zeros(ends) >> np.uint64(3)) >= 10:
                return -1, count, run
            run = np.int64(leading_zeros(ends) >> np.uint64(3))
            count -= np.int64(((ends >> np.uint64(7)) * _BYTE_ONES) >> np.uint64(56))
        i += 8
    return _bytes(buf, i, end, count, run)


@numba.njit(nogil=True, cache=_CACHE, inline="always")
def _words(buf: np.ndarray) -> np.ndarray:
    """``buf`` read as little-endian 8-byte words (its whole words)."""
    return buf[:(buf.size // 8) * 8].view(np.uint64)


@numba.njit(nogil=True, cache=_CACHE, inline="always")
def _skip(buf: np.ndarray, words: np.ndarray, i: int, end: int, count: int) -> int:
    """The position after ``count`` varints from ``buf[i]``; -1 when they run
    past ``end`` or one is longer than ten bytes."""
    if count == 0:
        return i
    i, count, run = _scan(buf, words, i, end, count)
    return -1 if count > 0 else i


@numba.njit(nogil=True, cache=_CACHE)
def decode_band(buf: np.ndarray, start: int, end: int, out: np.ndarray, channel: int,
                dem: bool, size: int, offset: int, side: int) -> int:
    """Decode the packed varints ``buf[start:end]``, a ``size`` x ``size``
    row-major band, into ``out[:, channel]`` (``out``: ``[side * side,
    channels]`` float32): the values of rows and columns ``offset`` to
    ``offset + side - 1``, as int64 values cast to float32; with ``dem`` each
    value ``e`` becomes ``floor(clip(e, 0, 3000) * 255 / 3000)``. The whole
    band (offset 0, side ``size``) is the usual case. Values outside the
    window are only counted (a scan for their last bytes).

    Returns ``size * size`` when the band holds exactly that many values;
    otherwise -1 for fewer values or a varint that is cut or longer than ten
    bytes, -2 for more values.
    """
    words = _words(buf)
    i = _skip(buf, words, start, end, offset * size)
    for row in range(side):
        if i < 0:
            return -1
        i = _skip(buf, words, i, end, offset)
        if i < 0:
            return -1
        base = row * side
        for col in range(side):
            if i >= end:
                return -1
            byte = np.int64(buf[i])
            i += 1
            value = byte & 0x7F
            shift = 7
            while byte >= 0x80:
                if i >= end or shift > 63:
                    return -1
                byte = np.int64(buf[i])
                i += 1
                value |= (byte & 0x7F) << shift
                shift += 7
            if dem:
                value = min(max(value, 0), DEM_SCALE) * DEM_MAX // DEM_SCALE
            out[base + col, channel] = value
        i = _skip(buf, words, i, end, size - offset - side)
    if i < 0:
        return -1
    i = _skip(buf, words, i, end, (size - offset - side) * size)
    if i < 0:
        return -1
    return size * size if i == end else -2


@numba.njit(nogil=True, cache=_CACHE)
def centre_value(buf: np.ndarray, start: int, end: int) -> int:
    """The value at the centre pixel ``(size // 2, size // 2)`` of the square
    band packed in ``buf[start:end]`` (``size`` from its number of values);
    -1 when the values are not a square or a varint is cut or over-long
    (the bands hold classes and measurements, never negative values here)."""
    words = _words(buf)
    i, left, run = _scan(buf, words, start, end, end - start + 1)
    if i < 0 or run:
        return -1
    n = end - start + 1 - left
    size = int(np.sqrt(n))
    while size * size > n:
        size -= 1
    while (size + 1) * (size + 1) <= n:
        size += 1
    if size == 0 or size * size != n:
        return -1
    i = _skip(buf, words, start, end, (size // 2) * size + size // 2)
    value, shift = np.int64(0), 0
    while True:
        byte = np.int64(buf[i])
        i += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value
        shift += 7
