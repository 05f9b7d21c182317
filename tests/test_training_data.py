"""Training data at scale: the model's window, compact storage, the input
pipeline, streaming figures, checkpoints and early stopping (no Beam run)."""

import logging

import numpy as np
import pytest
import tensorflow as tf

from transforms.dataset import model_interface
from transforms.training import data, fit, network, preprocess


@pytest.mark.parametrize("size", [512, 301, 300, 257, 256, 255, 16])
def test_the_stored_window_is_what_the_model_sees(size):
    rng = np.random.default_rng(size)
    image = rng.uniform(0, 255, (size, size, 3)).astype(np.float32)
    window = model_interface.crop_to_window(image)
    assert window.shape[0] == min(size, model_interface.MODEL_SIZE)
    m = model_interface.MODEL_SIZE
    seen = tf.image.resize_with_crop_or_pad(image, m, m).numpy()
    np.testing.assert_array_equal(tf.image.resize_with_crop_or_pad(window, m, m).numpy(), seen)


def _decoded(rng, size=300):
    return {"image": rng.integers(0, 256, (size, size, 10)).astype(np.float32),
            "low_res": rng.integers(0, 2000, (size, size, 4)).astype(np.float32),
            "aux": np.array([0.3, 0.7], np.float32), "label": np.float32(0.25)}


def test_compact_example_keeps_the_window_within_float16_precision():
    rng = np.random.default_rng(0)
    decoded = _decoded(rng)
    decoded["image"][..., 0] = rng.uniform(0, 3000, (300, 300))  # not integers, above 2048
    serialized, summary = preprocess.compact_example(decoded)
    assert len(serialized) < data.example_bytes(256) + 200
    parsed = tf.io.parse_example([serialized], preprocess.compact_feature_spec())
    image = tf.io.decode_raw(parsed["image"], tf.float16).numpy().reshape(256, 256, 10)
    expected = model_interface.crop_to_window(decoded["image"])
    np.testing.assert_array_equal(image[..., 1:], expected[..., 1:])  # integers <= 2048: exact
    np.testing.assert_allclose(image[..., 0], expected[..., 0], rtol=2.0 ** -11)
    low = tf.io.decode_raw(parsed["low_res"], tf.float16).numpy().reshape(256, 256, 4)
    np.testing.assert_array_equal(low, model_interface.crop_to_window(decoded["low_res"]))
    np.testing.assert_array_equal(parsed["aux"].numpy()[0], decoded["aux"])
    assert parsed["label"].numpy()[0] == np.float32(0.25)
    np.testing.assert_allclose(summary["low_res_mean"], low.astype(np.float64).mean(axis=(0, 1)),
                               rtol=1e-6)
    np.testing.assert_allclose(summary["low_res_sq"],
                               np.square(low.astype(np.float64)).mean(axis=(0, 1)), rtol=1e-6)


def test_a_value_beyond_float16_is_refused():
    decoded = _decoded(np.random.default_rng(1), size=16)
    decoded["low_res"][3, 3, 1] = 70000.0
    with pytest.raises(ValueError, match="float16"):
        preprocess.compact_example(decoded)


def _normalisation(rng):
    return {key: (rng.uniform(0, 50, n).astype(np.float32), rng.uniform(1, 400, n).astype(np.float32))
            for key, n in model_interface.CHANNELS.items()}


def test_input_pipeline_normalises_as_the_exported_graph(tmp_path):
    from transforms.dataset import tfrecord_io

    rng = np.random.default_rng(2)
    examples = [_decoded(rng, size=20) for _ in range(5)]
    path = str(tmp_path / "train-00000-of-00001.tfrecord.gz")
    tfrecord_io.write_shard(path, [preprocess.compact_example(e)[0] for e in examples])
    norm = _normalisation(rng)
    (x, y), = list(data.dataset([path], 20, norm, batch_size=8))
    for key in model_interface.INPUTS:
        mean, var = norm[key]
        expected = np.stack([(e[key] - mean) / np.sqrt(var).astype(np.float32) for e in examples])
        np.testing.assert_allclose(x[key].numpy(), expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(y.numpy(), [0.25] * 5)
    shuffled = list(data.dataset([path, path], 20, norm, batch_size=3, shuffle_seed=1))
    assert sum(len(b[1]) for b in shuffled) == 10


def test_shuffle_buffer_is_bounded_in_bytes():
    assert data.buffer_examples(256, 256) == (256 << 20) // data.example_bytes(256) == 146
    assert data.buffer_examples(256, 0.001) == 1
    assert data.buffer_examples(16, 1) > data.buffer_examples(256, 1)


def test_streaming_rmse_equals_numpy():
    rng = np.random.default_rng(3)
    batches = [(rng.uniform(0, 1, (n, 2)).astype(np.float32), rng.uniform(0, 1, n).astype(np.float32))
               for n in (4, 1, 7)]
    model = lambda x, training=False: x[:, 0] * 0.5  # noqa: E731
    got = fit.streaming_rmse(model, [(tf.constant(x), tf.constant(y)) for x, y in batches], 0.3)
    x = np.concatenate([b[0] for b in batches]).astype(np.float64)
    y = np.concatenate([b[1] for b in batches]).astype(np.float64)
    assert got["examples"] == 12
    assert got["rmse"] == pytest.approx(np.sqrt(np.mean((np.float32(0.5) * x[:, 0] - y) ** 2)), rel=1e-6)
    assert got["rmse_train_mean"] == pytest.approx(np.sqrt(np.mean((0.3 - y) ** 2)))
    assert fit.streaming_rmse(model, [], 0.3)["rmse"] is None


def _small_model():
    import keras

    model = network.make_keras_model(["smap", "gldas"], "smap_gldas_nn", seed=0)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    model.optimizer.build(model.trainable_variables)
    return model


def test_early_stopping_keeps_the_best_epoch_and_checkpoints_each_epoch(tmp_path, caplog):
    model = _small_model()
    checkpoints = fit.Checkpoints(str(tmp_path))
    state = fit._fresh_state()
    callback = fit.epoch_callback(checkpoints, state, epochs=10, patience=2, train_examples=100)
    callback.set_model(model)
    best = None
    with caplog.at_level(logging.INFO, logger="transforms.training.fit"):
        for epoch, val_loss in enumerate([0.04, 0.01, 0.02, 0.03, 0.0001]):
            if model.stop_training:
                break
            model.params["b_dense2"].assign([float(epoch)])
            if epoch == 1:
                best = network.keras_params(model)
            callback.on_epoch_begin(epoch)
            callback.on_epoch_end(epoch, {"loss": 0.1 / (epoch + 1), "val_loss": val_loss})
    assert model.stop_training and state["stopped_early"] and state["epoch"] == 3
    assert state["best_epoch"] == 1 and state["best_rmse"] == pytest.approx(0.1)
    np.testing.assert_array_equal(state["best_params"]["b_dense2"], best["b_dense2"])
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 4 and lines[0].startswith("epoch 1/10: loss 0.10000, validation RMSE 0.20000")
    assert "examples/s" in lines[0] and "ETA" in lines[0]
    restored = _small_model()
    again = checkpoints.restore(restored)
    assert again["epoch"] == 3 and again["best_epoch"] == 1 and again["stopped_early"]
    np.testing.assert_array_equal(network.keras_params(restored)["b_dense2"], [3.0])
    np.testing.assert_array_equal(again["best_params"]["b_dense2"], best["b_dense2"])


def test_checkpoint_restores_the_optimizer_state(tmp_path):
    model = _small_model()
    x = {"image": tf.zeros([4, 8, 8, 10]), "low_res": tf.zeros([4, 8, 8, 4]),
         "aux": tf.constant(np.random.default_rng(4).uniform(0, 1, (4, 2)), tf.float32)}
    model.fit(x, tf.constant([0.1, 0.2, 0.3, 0.4]), epochs=3, verbose=0)
    state = fit._fresh_state()
    state["epoch"] = 2
    fit.Checkpoints(str(tmp_path)).save(model, state)
    restored = _small_model()
    assert fit.Checkpoints(str(tmp_path)).restore(restored)["epoch"] == 2
    assert int(restored.optimizer.iterations.numpy()) == int(model.optimizer.iterations.numpy()) == 3
    for a, b in zip(model.optimizer.variables, restored.optimizer.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert fit.Checkpoints(str(tmp_path / "none")).restore(_small_model()) is None
