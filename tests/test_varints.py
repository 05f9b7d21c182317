"""The compiled varint loops (``transforms.dataset.varints``) against a plain
Python reading of the protobuf varint rules, on random bands: valid ones
(values of every length, including 10-byte negatives), and damaged ones
(runs of continuation bytes, cut ends, extra values). The oracle imports no
production code."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from support import varint
from transforms.dataset import varints


def _read(data: bytes, pos: int, end: int):
    """One varint from ``data[pos:end]``: ``(value as int64, next position)``,
    or None when it is cut or longer than ten bytes."""
    value, shift = 0, 0
    while pos < end and shift <= 63:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            value &= (1 << 64) - 1
            return (value - (1 << 64) if value >= 1 << 63 else value), pos
        shift += 7
    return None


def _oracle_band(data: bytes, size: int, offset: int, side: int, dem: bool):
    """``(status, window values)``: status as ``decode_band`` returns it."""
    pos, values = 0, []
    for _ in range(size * size):
        got = _read(data, pos, len(data))
        if got is None:
            return -1, None
        value, pos = got
        values.append(value)
    if pos != len(data):
        return -2, None
    grid = np.array(values, dtype=object).reshape(size, size)[offset:offset + side,
                                                                offset:offset + side]
    if dem:
        grid = np.vectorize(lambda e: min(max(e, 0), 3000) * 255 // 3000, otypes=[object])(grid)
    return size * size, np.array([float(np.float32(v)) for v in grid.ravel()], np.float32)


def _oracle_centre(data: bytes) -> int:
    pos, values = 0, []
    while pos < len(data):
        got = _read(data, pos, len(data))
        if got is None:
            return -1
        value, pos = got
        values.append(value)
    size = int(round(len(values) ** 0.5))
    if size == 0 or size * size != len(values):
        return -1
    return values[(size // 2) * size + size // 2]


_VALUES = st.one_of(st.integers(0, 127), st.integers(0, 20000), st.integers(-(1 << 63), (1 << 63) - 1))


@st.composite
def bands(draw):
    """``(bytes, size, offset, side)``: a band of ``size``x``size`` values,
    sometimes damaged."""
    size = draw(st.integers(1, 12))
    offset = draw(st.integers(0, size - 1))
    side = draw(st.integers(1, size - offset))
    data = bytearray(b"".join(varint(v) for v in draw(st.lists(_VALUES, min_size=size * size,
                                                                  max_size=size * size))))
    damage = draw(st.sampled_from(["none", "run", "cut", "extra", "bytes"]))
    if damage == "run":  # continuation bytes inserted: an over-long varint, or a longer one
        at = draw(st.integers(0, len(data)))
        data[at:at] = b"\x80" * draw(st.integers(1, 24))
    elif damage == "cut":
        data = data[:draw(st.integers(0, len(data)))]
    elif damage == "extra":
        data += varint(draw(_VALUES))
    elif damage == "bytes":  # any bytes at all
        data = bytearray(draw(st.binary(max_size=200)))
    return bytes(data), size, offset, side


@settings(max_examples=400, deadline=None)
@given(bands(), st.booleans(), st.integers(0, 7))
def test_decode_band_equals_the_varint_rules(band, dem, shift):
    data, size, offset, side = band
    # the band at every alignment within a larger record (the words the loop reads at once)
    record = b"\x00" * shift + data + b"\x01\x02"
    buf = np.frombuffer(record, np.uint8)
    out = np.full((side * side, 2), -7.0, np.float32)
    status = varints.decode_band(buf, shift, shift + len(data), out, 1, dem, size, offset, side)
    expected, values = _oracle_band(data, size, offset, side, dem)
    assert status == expected
    if expected == size * size:
        np.testing.assert_array_equal(out[:, 1], values)
        assert (out[:, 0] == -7.0).all()  # the other channel untouched


def test_long_band_at_every_alignment():
    """512 values of mixed lengths: the word-at-a-time path, not only the byte loop."""
    rng = np.random.default_rng(3)
    size = 40
    values = [int(v) for v in rng.integers(0, 1 << 20, size * size)]
    values[5] = -1  # ten bytes
    data = b"".join(varint(v) for v in values)
    for shift in range(8):
        for offset, side in ((0, size), (10, 20), (39, 1)):
            record = b"\xff" * shift + data
            out = np.zeros((side * side, 1), np.float32)
            assert varints.decode_band(np.frombuffer(record, np.uint8), shift, len(record), out,
                                       0, False, size, offset, side) == size * size
            window = np.array(values, np.float64).reshape(size, size)[offset:offset + side,
                                                                      offset:offset + side]
            np.testing.assert_array_equal(out[:, 0], window.ravel().astype(np.float32))
    # 10 continuation bytes deep inside the skipped part: refused
    bad = data[:200] + b"\x80" * 10 + data[200:]
    out = np.zeros((1, 1), np.float32)
    assert varints.decode_band(np.frombuffer(bad, np.uint8), 0, len(bad), out, 0, False,
                               size, 39, 1) == -1
    # nine continuation bytes before a value's last byte: a 10-byte varint, accepted
    nine = data[:200] + b"\x80" * 9 + b"\x00" + data[200:]
    expected, _ = _oracle_band(nine, size, 39, 1, False)
    assert varints.decode_band(np.frombuffer(nine, np.uint8), 0, len(nine), out, 0, False,
                               size, 39, 1) == expected


@settings(max_examples=300, deadline=None)
@given(bands(), st.integers(0, 7))
def test_centre_value_equals_the_varint_rules(band, shift):
    data = band[0]
    record = b"\x80" * shift + data + b"\x80"
    got = varints.centre_value(np.frombuffer(record, np.uint8), shift, shift + len(data))
    expected = _oracle_centre(data)
    assert got == expected
