import numpy as np
import pytest
import tensorflow as tf

from support import varint
from transforms.dataset import example_proto


def _tf_example():
    return tf.train.Example(features=tf.train.Features(feature={
        "sensor_id": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"SCAN__A_1__X"])),
        "timestamp": tf.train.Feature(float_list=tf.train.FloatList(value=[1.5e12])),
        "smap_sm": tf.train.Feature(int64_list=tf.train.Int64List(value=[200])),
        "neg": tf.train.Feature(int64_list=tf.train.Int64List(value=[-3, 2**62])),
        "img": tf.train.Feature(int64_list=tf.train.Int64List(value=list(range(300)))),
        "empty": tf.train.Feature(float_list=tf.train.FloatList(value=[])),
    }))


def test_read_features_equals_protobuf():
    data = _tf_example().SerializeToString()
    got = example_proto.read_features(data, ["sensor_id", "timestamp", "smap_sm", "neg",
                                             "empty", "absent"])
    assert got == {"sensor_id": [b"SCAN__A_1__X"], "timestamp": [np.float32(1.5e12)],
                   "smap_sm": [200], "neg": [-3, 2**62], "empty": []}


def test_append_float_feature_keeps_every_field():
    ex = _tf_example()
    merged = example_proto.append_float_feature(ex.SerializeToString(), "sm_0_5", 0.3125)
    parsed = tf.train.Example.FromString(merged)
    assert parsed.features.feature["sm_0_5"].float_list.value == [0.3125]
    del parsed.features.feature["sm_0_5"]
    assert parsed == ex
    spec = {"sm_0_5": tf.io.FixedLenFeature([], tf.float32),
            "img": tf.io.FixedLenFeature([300], tf.int64)}
    out = tf.io.parse_single_example(merged, spec)
    assert out["sm_0_5"].numpy() == np.float32(0.3125)
    assert out["img"].numpy().tolist() == list(range(300))
    assert example_proto.read_features(merged, ["sm_0_5"]) == {"sm_0_5": [0.3125]}


def test_unpacked_encodings_are_read():
    # proto2-style unpacked repeated values are legal on the wire
    feature = tf.train.Feature(float_list=tf.train.FloatList(value=[2.0]))
    entry = (b"\x0a" + bytes([1]) + b"x" + b"\x12" + bytes([7]) +
             b"\x12\x05\x0d" + np.float32(2.0).tobytes())
    data = b"\x0a" + bytes([len(entry) + 2]) + b"\x0a" + bytes([len(entry)]) + entry
    assert tf.train.Example.FromString(data).features.feature["x"] == feature
    assert example_proto.read_features(data, ["x"]) == {"x": [2.0]}


@pytest.mark.parametrize("bad", [b"\x0a\xff", b"\x0a\x05\x0a\x03", b"\x0f"])
def test_malformed_raises(bad):
    with pytest.raises(example_proto.MalformedExampleError):
        example_proto.read_features(bad, ["x"])


@pytest.mark.parametrize("values", [
    np.arange(-5, 400), np.array([0, 127, 128, 16383, 16384, 2**40, 2**63 - 1, -2**63]),
    np.zeros(0, dtype=np.int64), np.full(1000, 255)])
def test_encode_example_equals_protobuf_deterministic(values):
    ref = tf.train.Example(features=tf.train.Features(feature={
        "x": tf.train.Feature(int64_list=tf.train.Int64List(value=values)),
        "f": tf.train.Feature(float_list=tf.train.FloatList(value=[1.5, -2.25])),
        "b": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"ab", b""]))}))
    mine = example_proto.encode_example(
        {"x": ("int64", values), "f": ("float", [1.5, -2.25]), "b": ("bytes", [b"ab", b""])})
    assert mine == ref.SerializeToString(deterministic=True)


# ---------------------------------------------------------------- hand-built wire bytes

_varint = varint  # the oracle encoder of hand-built wire bytes


def _field(number, wire, payload=b"", value=None):
    """One protobuf field: LEN payload, a varint value, or fixed bytes."""
    key = _varint((number << 3) | wire)
    if wire == 2:
        return key + _varint(len(payload)) + payload
    if wire == 0:
        return key + _varint(value)
    return key + payload  # fixed32 / fixed64


def _example(entries):
    """Example{features{feature: entries}} from raw map-entry payloads."""
    return _field(1, 2, b"".join(_field(1, 2, e) for e in entries))


def _entry(name, feature):
    return _field(1, 2, name.encode()) + _field(2, 2, feature)


def _check_as_protobuf(data, names):
    """Our reader agrees with protobuf's own parser on ``data``."""
    parsed = tf.train.Example.FromString(data).features.feature
    got = example_proto.read_features(data, names)
    for name in names:
        if name not in parsed:
            assert name not in got
            continue
        f = parsed[name]
        kind = f.WhichOneof("kind")
        expected = list(getattr(f, kind).value) if kind else []
        assert got[name] == expected, name


def test_unknown_fields_at_every_level_are_skipped_as_protobuf_does():
    floats = _field(1, 2, np.float32([1.5, -2.0]).tobytes())
    feature = _field(9, 0, value=1) + _field(2, 2, _field(4, 2, b"??") + floats)
    entry = _entry("f", feature)
    data = (_field(2, 2, b"\x0a\x03abc")  # unknown Example field, length-delimited
            + _field(3, 1, b"\x01" * 8)  # unknown fixed64
            + _field(4, 5, b"\x02" * 4)  # unknown fixed32
            + _field(5, 0, value=300)  # unknown varint
            + _field(1, 2, _field(7, 2, b"zz") + _field(1, 2, entry)))
    _check_as_protobuf(data, ["f", "zz"])
    assert example_proto.read_features(data, ["f"]) == {"f": [1.5, -2.0]}


def test_map_entry_without_value_and_later_oneof_member():
    no_value = _field(1, 2, b"k")
    two_kinds = _field(1, 2, b"m") + _field(2, 2, _field(3, 2, _field(1, 2, _varint(7)))
                                            + _field(2, 2, _field(1, 2, np.float32([4.0]).tobytes())))
    data = _example([no_value, two_kinds])
    _check_as_protobuf(data, ["k", "m"])
    assert example_proto.read_features(data, ["k", "m"]) == {"k": [], "m": [4.0]}


def test_unpacked_values_and_int64_extremes_read_as_protobuf():
    ints = b"".join(_field(1, 0, value=v & (2**64 - 1)) for v in (-2**63, -1, 0, 2**63 - 1))
    floats = b"".join(_field(1, 5, np.float32(v).tobytes()) for v in (0.5, -3.25))
    data = _example([_entry("i", _field(3, 2, ints)), _entry("f", _field(2, 2, floats)),
                     _entry("b", _field(1, 2, _field(1, 2, b"x") + _field(1, 2, b"")))])
    _check_as_protobuf(data, ["i", "f", "b"])
    assert example_proto.read_features(data, ["i"])["i"] == [-2**63, -1, 0, 2**63 - 1]


@pytest.mark.parametrize("data,message,protobuf_rejects", [
    (b"\x0a", "truncated varint", True),
    (b"\x0a" + b"\xff" * 10 + b"\x01", "varint too long", True),
    (b"\x0a\x05ab", "length-delimited field runs past the end", True),
    (b"\x0b", "unsupported wire type 3", True),
    (b"\x0d\x01\x02", "field runs past the end", True),
    (b"\x09\x01\x02\x03", "field runs past the end", True),
    # wire types that do not fit the field: protobuf keeps them as unknown
    # fields, we call the record malformed (the model could not use it)
    (_example([_entry("x", _field(2, 0, value=1))]), "Feature list is not length-delimited", False),
    (_example([_entry("x", _field(1, 2, _field(1, 0, value=1)))]),
     "BytesList value is not length-delimited", False),
    (_example([_entry("x", _field(2, 2, _field(1, 2, b"abc")))]),
     "FloatList value is not 4-byte floats", True),
    (_example([_entry("x", _field(2, 2, _field(1, 0, value=1)))]),
     "FloatList value is not 4-byte floats", False),
    (_example([_entry("x", _field(3, 2, _field(1, 5, b"abcd")))]),
     "Int64List value is not a varint", False),
])
def test_malformed_input_names_what_is_wrong(data, message, protobuf_rejects):
    with pytest.raises(example_proto.MalformedExampleError) as e:
        example_proto.read_features(data, ["x"])
    assert str(e.value) == message
    if protobuf_rejects:
        with pytest.raises(Exception):
            tf.train.Example.FromString(data)


def test_a_ten_byte_varint_is_read():
    data = _example([_entry("x", _field(3, 2, _field(1, 2, _varint(2**64 - 1))))])
    assert example_proto.read_features(data, ["x"]) == {"x": [-1]}


@pytest.mark.parametrize("values", [np.array([1, 200, 70000], dtype=np.int32),
                                    np.array([[3, -4], [5, 2**40]]), [0, -1, 2**63 - 1]])
def test_packed_varints_of_any_int_array_equal_protobuf(values):
    flat = np.asarray(values).ravel().tolist()
    ref = tf.train.Int64List(value=flat).SerializeToString(deterministic=True)
    assert _field(1, 2, example_proto.encode_packed_varints(values)) == ref


def test_empty_lists_encode_as_protobuf_does():
    ref = tf.train.Example(features=tf.train.Features(feature={
        "f": tf.train.Feature(float_list=tf.train.FloatList(value=[])),
        "i": tf.train.Feature(int64_list=tf.train.Int64List(value=[])),
        "b": tf.train.Feature(bytes_list=tf.train.BytesList(value=[]))}))
    mine = example_proto.encode_example({"f": ("float", []), "i": ("int64", []), "b": ("bytes", [])})
    assert mine == ref.SerializeToString(deterministic=True)
    with pytest.raises(ValueError, match="unknown feature kind 'double'"):
        example_proto.encode_feature("double", [1.0])


def test_feature_with_only_unknown_fields_and_entry_with_extra_fields():
    only_unknown = _entry("u", _field(9, 0, value=5))
    extra_after_value = (_field(1, 2, b"v") + _field(2, 2, _field(2, 2, _field(
        1, 2, np.float32([7.0]).tobytes()))) + _field(3, 2, b"not the value"))
    data = _example([only_unknown, extra_after_value])
    assert example_proto.read_features(data, ["u", "v"]) == {"u": [], "v": [7.0]}


def test_fixed64_field_is_skipped_by_exactly_eight_bytes():
    features = _field(1, 2, _field(1, 2, _entry("f", _field(3, 2, _field(1, 2, _varint(9))))))
    data = _field(3, 1, b"\x0a" * 8) + features  # the byte after it is the features key
    _check_as_protobuf(data, ["f"])
    assert example_proto.read_features(data, ["f"]) == {"f": [9]}
