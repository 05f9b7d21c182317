import numpy as np
import pytest
import tensorflow as tf

from transforms.dataset import decode, example_proto, schema


def _example(size, dem, overrides=None, drop=()):
    features = {}
    for i, name in enumerate((*schema.IMAGE_BANDS, *schema.LOW_RES_BANDS)):
        features[name] = ("int64", (np.arange(size * size) * (i + 1) + i) % 251)
    features[schema.NASA_DEM_ELEVATION] = ("int64", np.asarray(dem))
    features[schema.SMAP_SM] = ("int64", [200])
    features[schema.GLDAS_SM] = ("int64", [51])
    features.update(overrides or {})
    for name in drop:
        features.pop(name)
    return example_proto.encode_example(features)


def test_dem_rescaling_edge_values():
    got = decode.dem_to_model(np.array([0, 3000, 4500, -20, 1500, 12, 11, 2999]))
    assert got.tolist() == [0.0, 255.0, 255.0, 0.0, 127.0, 1.0, 0.0, 254.0]
    assert got.dtype == np.float32


def test_batch_decode_equals_hand_computed_and_released():
    dem = [0, 3000, 4500, -20]
    rec = _example(2, dem)
    out = decode.BatchDecoder(2).decode([rec, rec])
    assert out["image"].shape == (2, 2, 2, 10) and out["image"].dtype == np.float32
    assert out["low_res"].shape == (2, 2, 2, 4)
    assert out["image"][0, :, :, 9].ravel().tolist() == [0.0, 255.0, 255.0, 0.0]
    assert out["image"][0, :, :, 0].ravel().tolist() == [0.0, 1.0, 2.0, 3.0]  # VV first
    assert out["image"][0, :, :, 3].ravel().tolist() == [3.0, 7.0, 11.0, 15.0]  # then B4
    np.testing.assert_array_equal(out["aux"][0], np.float32([200 / 255, 51 / 255]))
    released = decode.decode_example_released(rec, 2)
    for k in decode.MODEL_INPUTS:
        np.testing.assert_array_equal(out[k][0], released[k])
        assert out[k].dtype == np.float32 and released[k].dtype == np.float32, k
    with pytest.raises(ValueError, match=r"sentinel_1_VV: expected 9 values, got 4"):
        decode.decode_example_released(rec, 3)


def test_missing_aux_scalars_count_as_zero():
    rec = _example(2, [1, 2, 3, 4], drop=(schema.SMAP_SM, schema.GLDAS_SM))
    out = decode.BatchDecoder(2).decode([rec])
    assert out["aux"].tolist() == [[0.0, 0.0]]
    assert decode.decode_example_released(rec, 2)["aux"].tolist() == [0.0, 0.0]


def test_bad_examples_are_named():
    good = _example(2, [1, 2, 3, 4])
    missing = _example(2, [1, 2, 3, 4], drop=("sentinel_2_B8",))
    wrong_size = _example(3, list(range(9)))
    dec = decode.BatchDecoder(2)
    with pytest.raises(tf.errors.InvalidArgumentError):
        dec.decode([good, missing])
    results = dec.decode_each([good, missing, wrong_size])
    assert results[0][1] == "" and results[0][0]["image"].shape == (2, 2, 10)
    assert results[1][0] is None and "sentinel_2_B8" in results[1][1]
    assert results[2][0] is None and "2x2 = 4" in results[2][1] and "Values size: 9" in results[2][1]


def test_dem_rescaling_equals_numpy_for_every_elevation_on_both_paths():
    """Every whole elevation from -11000 m to 9000 m in one DEM band, decoded by
    the compiled loop and by TensorFlow's ops: both equal the released float64 rule."""
    elevations = np.arange(-11000, 9001)
    size = int(np.ceil(np.sqrt(elevations.size)))
    dem = np.resize(elevations, size * size)
    dec = decode.BatchDecoder(size)
    record = _example(size, dem)
    expected = decode.dem_to_model(dem).reshape(size, size)
    np.testing.assert_array_equal(dec.decode([record])["image"][0, :, :, 9], expected)
    np.testing.assert_array_equal(dec.decode_with_tensorflow([record])["image"][0, :, :, 9],
                                  expected)
    # and numpy's float64 order of operations is the exact rational floor here
    exact = np.floor(np.clip(elevations * 255 / 3000, 0, 255))
    np.testing.assert_array_equal(decode.dem_to_model(elevations), exact)


def _tf_example(size, rng, packed=True):
    """An example written by TensorFlow itself (packed int64 lists), with values
    of every varint length: negative, zero, large, and DEM edge elevations."""
    def ints(values):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v) for v in values]))

    n = size * size
    feature = {name: ints(rng.integers(-(2 ** 40), 2 ** 40, n) if i % 3 == 0 else rng.integers(0, 300, n))
               for i, name in enumerate((*schema.IMAGE_BANDS, *schema.LOW_RES_BANDS))}
    dem = np.resize([-5, 0, 11, 12, 2999, 3000, 3001, 9000, 2 ** 62, -(2 ** 62)], n)
    feature[schema.NASA_DEM_ELEVATION] = ints(dem)
    feature[schema.SMAP_SM] = ints([int(rng.integers(0, 256))])
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def _packed(dec, record):
    """The compiled loop's arrays for one example, or None when it declines it."""
    out = {"image": np.empty((dec.size ** 2, len(schema.IMAGE_BANDS)), np.float32),
           "low_res": np.empty((dec.size ** 2, len(schema.LOW_RES_BANDS)), np.float32),
           "aux": np.empty(len(schema.AUX_FIELDS), np.float32)}
    return out if dec._decode_packed(record, out) else None


@pytest.mark.parametrize("size", [4, 7])
def test_compiled_varint_path_equals_tensorflow(size):
    rng = np.random.default_rng(size)
    records = [_tf_example(size, rng) for _ in range(3)]
    dec = decode.BatchDecoder(size)
    # TensorFlow writes packed lists: the fast path applies to every example
    assert all(_packed(dec, record) is not None for record in records)
    fast = dec.decode(records)
    slow = dec.decode_with_tensorflow(records)
    for key in ("image", "low_res", "aux"):
        np.testing.assert_array_equal(fast[key], slow[key])
    np.testing.assert_array_equal(fast["aux"][:, 1], 0)  # gldas_sm absent: 0


def test_tensorflow_path_decodes_a_batch_as_the_compiled_one():
    dec = decode.BatchDecoder(2)
    records = [_example(2, [0, 1500, 3000, 4000]), _example(2, [7, 8, 9, 10]),
               _example(2, [1, 2, 3, 4], drop=(schema.GLDAS_SM,))]
    by_tf, compiled = dec.decode_with_tensorflow(records), dec.decode(records)
    for key in decode.MODEL_INPUTS:
        assert by_tf[key].dtype == np.float32 and by_tf[key].shape == compiled[key].shape, key
        np.testing.assert_array_equal(by_tf[key], compiled[key])


@pytest.mark.parametrize("scalar", [("float", [1.0]), ("int64", [1, 2])])
def test_an_aux_scalar_stored_otherwise_is_refused_by_name(scalar):
    """``smap_sm`` as a float, or with two values: TensorFlow's int64 scalar
    refuses it, so the compiled loop must not take it."""
    dec = decode.BatchDecoder(2)
    bad = _example(2, [1, 2, 3, 4], overrides={schema.SMAP_SM: scalar})
    with pytest.raises(tf.errors.InvalidArgumentError):
        dec.decode([bad])
    (arrays, reason), = dec.decode_each([bad])
    assert arrays is None and reason.startswith("cannot decode for the model")


def test_bytes_that_are_no_example_are_refused():
    """Bytes that are no Example, and an Example whose band holds bytes that are
    no Feature: refused with a reason (TensorFlow's own error for the first
    quotes bytes that are not text, which Python cannot read as its message)."""
    dec = decode.BatchDecoder(2)
    lf = example_proto._len_field
    junk_band = _example(2, [1, 2, 3, 4]) + lf(1, lf(1, lf(1, b"sentinel_1_VV") + lf(2, b"\xff\xfe\xfd")))
    for junk in (b"\xff\xff\xff", b"\x0a\x05\x0a\x03abc", junk_band):
        with pytest.raises(tf.errors.InvalidArgumentError):
            dec.decode([junk])
        (arrays, reason), = dec.decode_each([junk, _example(2, [1, 2, 3, 4])])[:1]
        assert arrays is None and reason
        if junk == b"\xff\xff\xff":  # the message TensorFlow could not give
            assert reason == ("cannot decode for the model (bands of 2x2 = 4 int64 values "
                              "expected): the record is not a readable tf.train.Example "
                              "(TensorFlow's parse error quotes bytes that are not text: "
                              "invalid start byte)")


def test_failure_reason_is_the_parse_errors_own_sentence():
    message = ("Trace of the op\n  more\nName: <unknown>, Key: sentinel_2_B8, Index: 0.  "
               "Number of int64 values != expected.  Values size: 9 but output shape: [4]\n")
    reason = decode._short_reason(message, 2)
    assert reason == ("cannot decode for the model (bands of 2x2 = 4 int64 values expected): "
                      "Key: sentinel_2_B8, Index: 0.  Number of int64 values != expected.  "
                      "Values size: 9 but output shape: [4]")
    # a message of another shape: its last line, not the graph node's marker
    assert decode._short_reason("first\nsecond\n  Feature: x (data type: int64) is required\n",
                                3).endswith("values expected): Feature: x (data type: int64) is required")
    graph_error = ("Graph execution error:\n\nDetected at node ParseExample/ParseExampleV2\n"
                   "  File \"decode.py\", line 134, in _decode\n\nUnsupported datatype.\n"
                   "\t [[{{node ParseExample/ParseExampleV2}}]] [Op:__inference__decode_230]")
    assert decode._short_reason(graph_error, 2).endswith("values expected): Unsupported datatype.")


def test_other_encodings_take_the_tensorflow_path_with_its_errors():
    size = 2
    dec = decode.BatchDecoder(size)
    good = _example(size, [0, 1500, 3000, 4000])
    # a band given as float values is not ours to decode: TensorFlow refuses it by name
    as_float = _example(size, [0, 1, 2, 3], overrides={schema.SENSOR_ID: ("bytes", [b"x"]),
                                                       "sentinel_1_VV": ("float", [1.0] * 4)})
    assert _packed(dec, good) is not None and _packed(dec, as_float) is None
    with pytest.raises(tf.errors.InvalidArgumentError, match="sentinel_1_VV"):
        dec.decode([good, as_float])
    too_long = _example(size, [0, 1, 2, 3], overrides={"sentinel_1_VH": ("int64", [1] * 5)})
    assert _packed(dec, too_long) is None
    (_, reason), = dec.decode_each([too_long])
    assert "sentinel_1_VH" in reason
    # unpacked values (one varint field each) are declined early and decoded by TensorFlow
    lf, varint = example_proto._len_field, example_proto._encode_varint

    def example_of(int64_list):
        entries = b"".join(lf(1, lf(1, name.encode()) + lf(2, lf(3, int64_list)))
                           for name in (*schema.IMAGE_BANDS, *schema.LOW_RES_BANDS))
        return lf(1, entries)

    values = [1, 2, 300, 4]
    packed = example_of(lf(1, b"".join(varint(v) for v in values)))
    unpacked = example_of(b"".join(b"\x08" + varint(v) for v in values))
    assert _packed(dec, unpacked) is None and _packed(dec, packed) is not None
    decoded = dec.decode([unpacked, good])
    np.testing.assert_array_equal(decoded["image"][0], dec.decode([packed])["image"][0])
    np.testing.assert_array_equal(decoded["image"][1], dec.decode([good])["image"][0])


@pytest.mark.parametrize("threads", [1, 3])
def test_window_decode_is_the_window_of_the_whole_decode(threads):
    """Only the window's rows and columns are written, equal to the whole
    decode's; every value is still counted (a short or long band is refused)."""
    size, window = 9, (3, 4)
    rng = np.random.default_rng(7)
    records = [_tf_example(size, rng) for _ in range(4)]
    whole = decode.BatchDecoder(size).decode(records)
    cut = decode.BatchDecoder(size, window, threads=threads)
    got = cut.decode(records)
    inside = (slice(None), slice(3, 7), slice(3, 7))
    for key in ("image", "low_res"):
        assert got[key].shape == (4, 4, 4, whole[key].shape[-1])
        np.testing.assert_array_equal(got[key], whole[key][inside])
    np.testing.assert_array_equal(got["aux"], whole["aux"])
    # the TensorFlow path (a band as floats) cuts the same window
    np.testing.assert_array_equal(cut.decode_with_tensorflow(records)["image"], whole["image"][inside])
    short = _example(size, np.arange(size * size), overrides={"sentinel_1_VH": ("int64", [1] * 80)})
    long = _example(size, np.arange(size * size), overrides={"sentinel_1_VH": ("int64", [1] * 82)})
    assert _packed_window(cut, short) is None and _packed_window(cut, long) is None
    assert _packed_window(cut, _example(size, np.arange(size * size))) is not None
    for bad in (short, long):
        (_, reason), = cut.decode_each([bad])
        assert "sentinel_1_VH" in reason


def _packed_window(dec, record):
    side = dec.side
    out = {"image": np.empty((side ** 2, len(schema.IMAGE_BANDS)), np.float32),
           "low_res": np.empty((side ** 2, len(schema.LOW_RES_BANDS)), np.float32),
           "aux": np.empty(len(schema.AUX_FIELDS), np.float32)}
    return out if dec._decode_packed(record, out) else None


def test_overlong_varint_outside_the_window_is_refused():
    from transforms.dataset import varints

    size = 3
    values = b"".join(example_proto._encode_varint(v) for v in range(size * size))
    buf = np.frombuffer(b"\xff" * 10 + b"\x01" + values[1:], np.uint8)  # an 11-byte first varint
    out = np.zeros((1, 1), np.float32)
    assert varints.decode_band(buf, 0, len(buf), out, 0, False, size, 1, 1) == -1
    ok = np.frombuffer(values, np.uint8)
    assert varints.decode_band(ok, 0, len(ok), out, 0, False, size, 1, 1) == size * size
    assert out[0, 0] == 4  # the centre value of 0..8
    assert varints.decode_band(ok, 0, len(ok) - 1, out, 0, False, size, 1, 1) == -1  # one short
    more = np.frombuffer(values + b"\x05", np.uint8)
    assert varints.decode_band(more, 0, len(more), out, 0, False, size, 1, 1) == -2
