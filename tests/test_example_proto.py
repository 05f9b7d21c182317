import numpy as np
import pytest
import tensorflow as tf

from transforms import example_proto


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
