"""Read and extend serialized ``tf.train.Example`` bytes without decoding them.

A released example is tens of MB of image lists; the merge needs two scalars
from it and must add one. Decoding it into protobuf objects would cost
seconds, so we walk the wire format instead:

    Example  { Features features = 1; }
    Features { map<string, Feature> feature = 1; }   # entries: key = 1, value = 2
    Feature  { oneof { BytesList bytes_list = 1; FloatList float_list = 2;
                       Int64List int64_list = 3; } }
    *List    { repeated <type> value = 1; }           # numbers usually packed

Skipping a field costs one varint read, so finding the wanted keys touches
only the bytes of the map keys and the wanted values. Protobuf merge
semantics (a message field that occurs twice is merged; for a repeated map
key the last entry wins) let ``append_feature`` add a feature by appending a
second serialized ``features`` field: parsers see the union.
"""

from __future__ import annotations

import struct
from typing import Collection, Dict, List, Tuple, Union

Value = Union[bytes, float, int]

_WIRE_VARINT, _WIRE_I64, _WIRE_LEN, _WIRE_I32 = 0, 1, 2, 5
_FLOAT = struct.Struct("<f")


class MalformedExampleError(ValueError):
    """The bytes are not a well-formed serialized tf.train.Example."""


def _varint(buf: memoryview, pos: int) -> Tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise MalformedExampleError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise MalformedExampleError("varint too long")


def _spans(buf: memoryview, start: int, end: int):
    """Yield ``(field_number, wire_type, value_start, value_end)`` of the message
    in ``buf[start:end]``, offsets into ``buf`` (a varint's value is read from
    its span)."""
    pos = start
    while pos < end:
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == _WIRE_VARINT:
            value_start = pos
            _, pos = _varint(buf, pos)
        elif wire == _WIRE_LEN:
            length, pos = _varint(buf, pos)
            if pos + length > end:
                raise MalformedExampleError("length-delimited field runs past the end")
            value_start, pos = pos, pos + length
        elif wire == _WIRE_I32:
            value_start, pos = pos, pos + 4
        elif wire == _WIRE_I64:
            value_start, pos = pos, pos + 8
        else:
            raise MalformedExampleError(f"unsupported wire type {wire}")
        if pos > end:
            raise MalformedExampleError("field runs past the end")
        yield number, wire, value_start, pos


def _fields(buf: memoryview):
    """Yield (field_number, wire_type, value) of one message level.

    ``value`` is an int for varints, a memoryview for length-delimited fields
    and fixed-width fields.
    """
    for number, wire, start, stop in _spans(buf, 0, len(buf)):
        yield number, wire, (_varint(buf, start)[0] if wire == _WIRE_VARINT else buf[start:stop])


def _to_signed64(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _decode_feature(buf: memoryview) -> List[Value]:
    """The values of a serialized ``Feature`` (empty list if it holds none)."""
    values: List[Value] = []
    for kind, wire, lst in _fields(buf):
        if kind not in (1, 2, 3):
            continue  # an unknown field: skipped, as protobuf does
        if wire != _WIRE_LEN:
            raise MalformedExampleError("Feature list is not length-delimited")
        values = []  # a later oneof member replaces an earlier one
        for number, vwire, v in _fields(lst):
            if number != 1:
                continue
            if kind == 1:  # bytes
                if vwire != _WIRE_LEN:
                    raise MalformedExampleError("BytesList value is not length-delimited")
                values.append(bytes(v))
            elif kind == 2:  # float: packed, or one fixed32 per value
                if vwire == _WIRE_LEN and len(v) % 4 == 0:
                    values.extend(x for (x,) in _FLOAT.iter_unpack(v))
                elif vwire == _WIRE_I32:
                    values.append(_FLOAT.unpack(v)[0])
                else:
                    raise MalformedExampleError("FloatList value is not 4-byte floats")
            elif kind == 3:  # int64: packed, or one varint per value
                if vwire == _WIRE_LEN:
                    pos = 0
                    while pos < len(v):
                        x, pos = _varint(v, pos)
                        values.append(_to_signed64(x))
                elif vwire == _WIRE_VARINT:
                    values.append(_to_signed64(v))
                else:
                    raise MalformedExampleError("Int64List value is not a varint")
    return values


def read_features(serialized: bytes, names: Collection[str]) -> Dict[str, List[Value]]:
    """The values of the features ``names`` that the example has.

    Absent names are absent from the result. Raises MalformedExampleError.
    """
    wanted = {n.encode() for n in names}
    found: Dict[str, List[Value]] = {}
    for number, wire, features in _fields(memoryview(serialized)):
        if number != 1 or wire != _WIRE_LEN:
            continue
        for entry_number, entry_wire, entry in _fields(features):
            if entry_number != 1 or entry_wire != _WIRE_LEN:
                continue
            key = value = None
            for n, w, v in _fields(entry):
                if n == 1 and w == _WIRE_LEN:
                    key = bytes(v)
                elif n == 2 and w == _WIRE_LEN:
                    value = v
            if key in wanted:
                found[key.decode()] = _decode_feature(value) if value is not None else []
    return found


def _len_field(number: int, payload: bytes) -> bytes:
    return _encode_varint((number << 3) | _WIRE_LEN) + _encode_varint(len(payload)) + payload


def _encode_varint(v: int) -> bytes:
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def float_feature_suffix(name: str, value: float) -> bytes:
    """Serialized ``Example`` bytes holding only ``{name: FloatList([value])}``.

    Appending them to a serialized example adds (or replaces) that feature.
    """
    float_list = _len_field(1, _FLOAT.pack(value))  # packed repeated float
    feature = _len_field(2, float_list)  # Feature.float_list
    entry = _len_field(1, name.encode()) + _len_field(2, feature)
    return _len_field(1, _len_field(1, entry))  # Example.features{feature: entry}


def append_float_feature(serialized: bytes, name: str, value: float) -> bytes:
    """``serialized`` with the float feature ``name`` added, no re-encoding."""
    return serialized + float_feature_suffix(name, value)


def encode_packed_varints(values) -> bytes:
    """Protobuf packed-varint encoding of an int64 array, vectorised with numpy.

    Equal to what protobuf writes for ``Int64List(value=values)``; a 512x512
    band encodes in milliseconds instead of a quarter second.
    """
    import numpy as np

    u = np.ascontiguousarray(values, dtype=np.int64).ravel().view(np.uint64)
    width = 1
    while width < 10 and (u >> np.uint64(7 * width)).any():
        width += 1  # bytes needed by the largest value
    groups = np.empty((u.size, width), dtype=np.uint8)  # 7-bit groups, low first
    for k in range(width):
        groups[:, k] = ((u >> np.uint64(7 * k)) & np.uint64(0x7F)).astype(np.uint8)
    nbytes = np.ones(u.size, dtype=np.int64)
    for k in range(1, width):
        nbytes += u >= np.uint64(1 << (7 * k))
    used = np.arange(width) < nbytes[:, None]
    groups[np.arange(width) < (nbytes - 1)[:, None]] |= 0x80  # continuation bits
    return groups[used].tobytes()


def encode_feature(kind: str, values) -> bytes:
    """A serialized ``Feature`` of ``kind`` ('bytes', 'float' or 'int64')."""
    import numpy as np

    if kind == "bytes":
        payload = b"".join(_len_field(1, v) for v in values)
        return _len_field(1, payload)
    if kind == "float":
        packed = np.ascontiguousarray(values, dtype="<f4").tobytes()
        return _len_field(2, _len_field(1, packed) if packed else b"")
    if kind == "int64":
        packed = encode_packed_varints(values)
        return _len_field(3, _len_field(1, packed) if packed else b"")
    raise ValueError(f"unknown feature kind {kind!r}")


def encode_example(features: Dict[str, Tuple[str, object]]) -> bytes:
    """Serialize ``{name: (kind, values)}`` as a ``tf.train.Example``.

    Entries are written in sorted key order, as protobuf's deterministic
    serialization does, so equal inputs give equal bytes.
    """
    entries = b"".join(
        _len_field(1, _len_field(1, name.encode()) + _len_field(2, encode_feature(*features[name])))
        for name in sorted(features))
    return _len_field(1, entries)


def packed_int64_spans(serialized: bytes, names: Collection[str]) -> Dict[str, Tuple[int, int]]:
    """Where each of ``names`` keeps its values as one packed ``Int64List``:
    ``{name: (start, end)}``, byte offsets into ``serialized`` of the varints.

    Names absent, or stored any other way (another kind, unpacked values),
    are left out: callers decode those the slow way. Raises MalformedExampleError.
    """
    buf = memoryview(serialized)
    wanted = {n.encode(): n for n in names}
    found: Dict[str, Tuple[int, int]] = {}
    for number, wire, start, stop in _spans(buf, 0, len(buf)):
        if number != 1 or wire != _WIRE_LEN:
            continue
        for entry_number, entry_wire, entry_start, entry_stop in _spans(buf, start, stop):
            if entry_number != 1 or entry_wire != _WIRE_LEN:
                continue
            key, value = None, None
            for n, w, s, e in _spans(buf, entry_start, entry_stop):
                if n == 1 and w == _WIRE_LEN:
                    key = bytes(buf[s:e])
                elif n == 2 and w == _WIRE_LEN:
                    value = (s, e)
            if key in wanted:
                found.pop(wanted[key], None)
                span = _packed_int64(buf, *value) if value is not None else None
                if span is not None:
                    found[wanted[key]] = span
    return found


def _packed_int64(buf: memoryview, start: int, end: int):
    """The span of a ``Feature``'s values when they are one packed Int64List, else None."""
    span = None
    for kind, wire, s, e in _spans(buf, start, end):
        if kind not in (1, 2, 3):
            continue  # unknown fields are skipped
        if kind != 3 or wire != _WIRE_LEN:
            return None  # bytes or floats: not ours to decode
        span = None
        for n, w, vs, ve in _spans(buf, s, e):
            if n != 1:
                continue
            if w != _WIRE_LEN or span is not None:
                return None  # unpacked values (one varint each), or several packed runs
            span = vs, ve
    return span
