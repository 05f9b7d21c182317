"""Property-based tests of the two byte-level readers every record goes through.

Arbitrary bytes, truncations and bit flips must never raise anything but the
module's own documented error (``MalformedExampleError`` for the wire-format
reader, ``CorruptShardError`` for the TFRecord framing), and valid data must
always round-trip, as TensorFlow's own parser reads it.
"""

import io

import numpy as np
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from transforms.dataset import example_proto, tfrecord_io

# 300 cases a property (the "default" profile, tests/conftest.py); fewer under ``make mutate``
SETTINGS = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])

names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_0123456789", min_size=1, max_size=12)
int64s = st.integers(min_value=-(2**63), max_value=2**63 - 1)
float32s = st.floats(width=32, allow_nan=False)
features = st.dictionaries(names, st.one_of(
    st.tuples(st.just("bytes"), st.lists(st.binary(max_size=20), max_size=4)),
    st.tuples(st.just("float"), st.lists(float32s, max_size=6)),
    st.tuples(st.just("int64"), st.lists(int64s, max_size=6))), max_size=6)


def _read_all(data: bytes, names_=("a", "b", "sensor_id", "timestamp")):
    try:
        return example_proto.read_features(data, names_)
    except example_proto.MalformedExampleError:
        return None


@SETTINGS
@given(features)
def test_valid_examples_round_trip_as_tensorflow_reads_them(feats):
    data = example_proto.encode_example(feats)
    got = example_proto.read_features(data, list(feats) + ["absent"])
    parsed = tf.train.Example.FromString(data).features.feature
    assert set(got) == set(feats)
    for name, (kind, values) in feats.items():
        f = parsed[name]
        expected = list({"bytes": f.bytes_list, "float": f.float_list,
                         "int64": f.int64_list}[kind].value)
        if kind == "float":
            assert np.array_equal(np.float32(got[name]), np.float32(expected))
            assert np.array_equal(np.float32(values), np.float32(expected))
        else:
            assert got[name] == expected == list(values)


@SETTINGS
@given(st.binary(max_size=400))
def test_arbitrary_bytes_raise_only_the_documented_error(data):
    _read_all(data)  # anything else propagates and fails the test


@SETTINGS
@given(features, st.data())
def test_truncated_and_bit_flipped_examples_raise_only_the_documented_error(feats, data):
    blob = bytearray(example_proto.encode_example(feats))
    if blob:
        cut = data.draw(st.integers(0, len(blob)))
        _read_all(bytes(blob[:cut]), list(feats))
        i = data.draw(st.integers(0, len(blob) - 1))
        blob[i] ^= 1 << data.draw(st.integers(0, 7))
        _read_all(bytes(blob), list(feats))


@SETTINGS
@given(features, st.sampled_from(["sm_0_5", "timestamp", "x"]), float32s)
def test_appended_float_feature_is_what_tensorflow_reads(feats, name, value):
    merged = example_proto.append_float_feature(example_proto.encode_example(feats), name, value)
    parsed = tf.train.Example.FromString(merged).features.feature[name].float_list.value
    assert list(parsed) == [np.float32(value)]
    assert example_proto.read_features(merged, [name])[name] == [np.float32(value)]


# ---------------------------------------------------------------- framing

records = st.lists(st.binary(max_size=300), max_size=8)


def _frames(recs):
    return b"".join(tfrecord_io.encode_record(r) for r in recs)


def _read_frames(data: bytes):
    out = []
    try:
        for r in tfrecord_io.iter_records([data[i:i + 37] for i in range(0, len(data), 37)]):
            out.append(r)
    except tfrecord_io.CorruptShardError as e:
        assert e.index == len(out)
        return out, e
    return out, None


@SETTINGS
@given(records)
def test_framing_round_trips(recs):
    got, error = _read_frames(_frames(recs))
    assert error is None and got == recs


@SETTINGS
@given(records, st.data())
def test_truncated_framing_keeps_every_whole_record(recs, data):
    blob = _frames(recs)
    cut = data.draw(st.integers(0, len(blob)))
    got, error = _read_frames(blob[:cut])
    whole = 0
    pos = 0
    for r in recs:  # the records lying wholly before the cut
        pos += 16 + len(r)
        if pos <= cut:
            whole += 1
    assert got == recs[:whole]
    assert (error is None) == (cut in {0, *np.cumsum([16 + len(r) for r in recs]).tolist()})


@SETTINGS
@given(records, st.data())
def test_bit_flipped_framing_never_yields_a_changed_record(recs, data):
    blob = bytearray(_frames(recs))
    if not blob:
        return
    i = data.draw(st.integers(0, len(blob) - 1))
    blob[i] ^= 1 << data.draw(st.integers(0, 7))
    got, error = _read_frames(bytes(blob))
    assert error is not None  # every byte is covered by a CRC
    assert got == recs[:len(got)]


@SETTINGS
@given(st.binary(max_size=600))
def test_arbitrary_gzip_input_raises_only_the_documented_error(data):
    out = []
    try:
        for r in tfrecord_io.iter_records(tfrecord_io.inflate(io.BytesIO(data))):
            out.append(r)
    except tfrecord_io.CorruptShardError as e:
        assert e.index == len(out)
