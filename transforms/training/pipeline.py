"""Retraining: tf.Transform preprocessing, the fusion model, export in the released interface.

* ``decoded_examples``: serialized examples -> the model's decoded inputs and
  label, through ``transforms.dataset.decode.BatchDecoder``, the decoder
  ``run_inference`` uses (shared code, not a copy).
* ``preprocessing_fn``: tf.Transform. Each band is normalised with full-pass
  statistics over all its pixels: ``(x - mean) / sqrt(var)``, mean and
  variance from ``tft.mean`` of the per-example band means and of the
  per-example means of squares (equal-sized images, so exact). The statistics
  are also emitted as features (``*_mean``, ``*_var``) so the exporter can
  fold them into the exported graph.
* ``forward``: the network, one definition used both by the Keras model that
  trains and by the exported TF1 graph: a convolutional branch over the 10
  high-resolution bands (centre-cropped/padded to 256x256), a branch over the 4
  SoilGrids bands, the 2 auxiliary scalars, fused into a regression head,
  clipped to [0, 1]. ``inputs`` masks out unused sources (the table's
  ablations); the ``smap_gldas_nn`` baseline is an MLP over the 2 scalars.
* ``export_released_interface``: a TF1 SavedModel (tag ``serve``) and a frozen
  ``.pb`` taking raw decoded tensors ``ImageTensor:0``, ``LowResImageTensor:0``,
  ``AuxTensor:0`` and giving ``clip_by_value:0``, with the normalisation inside,
  so ``run_inference --exported_model_dir`` uses it unchanged.
"""

import os
import warnings
from typing import Dict, Iterable, List, Sequence, Tuple

import apache_beam as beam
import numpy as np

from transforms.dataset import schema

MODEL_SIZE = 256
SOURCES = ("s1", "dem", "s2", "soilgrids", "smap", "gldas")
#: Which model input channels each source feeds: (tensor, channel indices).
SOURCE_CHANNELS = {
    "s1": ("image", (0, 1, 2)), "s2": ("image", (3, 4, 5, 6, 7, 8)), "dem": ("image", (9,)),
    "soilgrids": ("low_res", (0, 1, 2, 3)), "smap": ("aux", (0,)), "gldas": ("aux", (1,)),
}
CHANNELS = {"image": 10, "low_res": 4, "aux": 2}
LABEL = "label"


# --------------------------------------------------------------------------
# Data

def decoded_examples(records: Sequence[bytes], size: int, decoder=None) -> List[Dict[str, np.ndarray]]:
    """Labelled examples -> ``{"image", "low_res", "aux", "label"}`` (unlabelled ones dropped).

    ``decoder``: a ``BatchDecoder`` to reuse (one is built otherwise).
    """
    from transforms.dataset import example_proto
    from transforms.dataset.decode import BatchDecoder

    labelled, labels = [], []
    for record in records:
        found = example_proto.read_features(record, schema.LABEL_KEYS)
        value = (found.get(schema.SM_0_5) or found.get(schema.SM_5_5) or [None])[0]
        if value is not None:
            labelled.append(record)
            labels.append(value)
    if not labelled:
        return []
    arrays = (decoder or BatchDecoder(size)).decode(labelled)
    return [{"image": arrays["image"][i], "low_res": arrays["low_res"][i],
             "aux": arrays["aux"][i], LABEL: np.float32(labels[i])} for i in range(len(labelled))]


def raw_feature_spec(size: int):
    import tensorflow as tf

    return {"image": tf.io.FixedLenFeature([size, size, CHANNELS["image"]], tf.float32),
            "low_res": tf.io.FixedLenFeature([size, size, CHANNELS["low_res"]], tf.float32),
            "aux": tf.io.FixedLenFeature([CHANNELS["aux"]], tf.float32),
            LABEL: tf.io.FixedLenFeature([], tf.float32)}


def preprocessing_fn(inputs):
    """tf.Transform: per-band full-pass normalisation of the decoded inputs."""
    import tensorflow as tf
    import tensorflow_transform as tft

    out = {LABEL: inputs[LABEL]}
    for key in ("image", "low_res", "aux"):
        x = inputs[key]
        axes = list(range(1, len(x.shape) - 1))
        per_example = tf.reduce_mean(x, axis=axes) if axes else x
        per_example_sq = tf.reduce_mean(tf.square(x), axis=axes) if axes else tf.square(x)
        mean = tft.mean(per_example, reduce_instance_dims=False)
        mean_sq = tft.mean(per_example_sq, reduce_instance_dims=False)
        var = tf.maximum(mean_sq - tf.square(mean), 1e-12)
        out[key] = (x - mean) / tf.sqrt(var)
        batch = tf.shape(x)[0]
        out[f"{key}_mean"] = tf.tile(mean[None, :], [batch, 1])
        out[f"{key}_var"] = tf.tile(var[None, :], [batch, 1])
    return out


def normalisation_from(transformed_example: Dict[str, np.ndarray]) -> Dict[str, Tuple[np.ndarray, np.ndarray]]:
    return {k: (np.asarray(transformed_example[f"{k}_mean"], np.float32),
                np.asarray(transformed_example[f"{k}_var"], np.float32))
            for k in ("image", "low_res", "aux")}


# --------------------------------------------------------------------------
# The network (one definition for training and export)

def param_shapes(baseline: str = "") -> Dict[str, Tuple[int, ...]]:
    if baseline == "smap_gldas_nn":
        return {"b_dense1": (16,), "w_dense1": (2, 16), "b_dense2": (1,), "w_dense2": (16, 1)}
    return {"w_conv1": (5, 5, 10, 16), "b_conv1": (16,), "w_conv2": (3, 3, 16, 32),
            "b_conv2": (32,), "w_soil": (4, 8), "b_soil": (8,), "w_dense1": (42, 32),
            "b_dense1": (32,), "w_dense2": (32, 1), "b_dense2": (1,)}


def input_masks(inputs: Iterable[str]) -> Dict[str, np.ndarray]:
    """Per tensor, 1 for channels of the chosen sources, 0 for the others."""
    masks = {k: np.zeros(n, np.float32) for k, n in CHANNELS.items()}
    for source in inputs:
        if source not in SOURCE_CHANNELS:
            raise ValueError(f"unknown input {source!r}; choose from {', '.join(SOURCES)}")
        key, channels = SOURCE_CHANNELS[source]
        masks[key][list(channels)] = 1.0
    return masks


def _clip(z, training: bool):
    """``clip_by_value(z, 0, 1)``; in training its gradient passes straight through
    (same values), so an output outside [0, 1] can still learn its way back."""
    import tensorflow as tf

    if training:
        return z + tf.stop_gradient(tf.clip_by_value(z, 0.0, 1.0) - z)
    return tf.clip_by_value(z, 0.0, 1.0, name="clip_by_value")


def forward(params, image, low_res, aux, masks, baseline: str = "", training: bool = False):
    """Normalised inputs -> soil moisture in [0, 1] (``[batch]``), TensorFlow ops only."""
    import tensorflow as tf

    relu = tf.nn.relu
    if baseline == "smap_gldas_nn":
        h = relu(tf.matmul(aux * masks["aux"], params["w_dense1"]) + params["b_dense1"])
        z = tf.matmul(h, params["w_dense2"])[:, 0] + params["b_dense2"][0]
        return _clip(z, training)
    x = tf.image.resize_with_crop_or_pad(image * masks["image"], MODEL_SIZE, MODEL_SIZE)
    x = relu(tf.nn.conv2d(x, params["w_conv1"], 4, "SAME") + params["b_conv1"])
    x = relu(tf.nn.conv2d(x, params["w_conv2"], 2, "SAME") + params["b_conv2"])
    hi = tf.reduce_mean(x, axis=[1, 2])
    s = tf.image.resize_with_crop_or_pad(low_res * masks["low_res"], MODEL_SIZE, MODEL_SIZE)
    lo = relu(tf.matmul(tf.reduce_mean(s, axis=[1, 2]), params["w_soil"]) + params["b_soil"])
    h = tf.concat([hi, lo, aux * masks["aux"]], axis=1)
    h = relu(tf.matmul(h, params["w_dense1"]) + params["b_dense1"])
    z = tf.matmul(h, params["w_dense2"])[:, 0] + params["b_dense2"][0]
    return _clip(z, training)


def initial_params(seed: int, baseline: str = "") -> Dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {}
    for name, shape in param_shapes(baseline).items():
        if name.startswith("b_"):
            out[name] = np.full(shape, 0.25 if name == "b_dense2" else 0.0, np.float32)
        else:
            fan_in = int(np.prod(shape[:-1]))
            scale = np.sqrt(2.0 / fan_in) * (0.1 if name == "w_dense2" else 1.0)
            out[name] = (rng.standard_normal(shape) * scale).astype(np.float32)
    return out


def make_keras_model(inputs: Sequence[str], baseline: str = "", seed: int = 0):
    """A Keras model over normalised inputs whose ``call`` is ``forward``."""
    import keras

    masks = input_masks(inputs)

    class FusionModel(keras.Model):
        def __init__(self):
            super().__init__()
            self.baseline = baseline
            self.params = {name: self.add_weight(name=name, shape=value.shape,
                                                 initializer=keras.initializers.Constant(value))
                           for name, value in initial_params(seed, baseline).items()}

        def call(self, features, training=False):
            return forward(self.params, features["image"], features["low_res"],
                           features["aux"], masks, self.baseline, training=bool(training))

    return FusionModel()


def keras_params(model) -> Dict[str, np.ndarray]:
    return {name: np.asarray(v.numpy()) for name, v in model.params.items()}


# --------------------------------------------------------------------------
# Export in the released interface

def export_released_interface(output_dir: str, params: Dict[str, np.ndarray],
                              normalisation: Dict[str, Tuple[np.ndarray, np.ndarray]],
                              inputs: Sequence[str], baseline: str = "") -> Tuple[str, str]:
    """Write a TF1 SavedModel (tag ``serve``) and ``frozen_graph.pb``; returns their paths."""
    import tensorflow as tf

    v1 = tf.compat.v1
    masks = input_masks(inputs)
    graph = tf.Graph()
    with graph.as_default():
        image = v1.placeholder(tf.float32, [None, None, None, 10], name="ImageTensor")
        low_res = v1.placeholder(tf.float32, [None, None, None, 4], name="LowResImageTensor")
        aux = v1.placeholder(tf.float32, [None, 2], name="AuxTensor")

        def normalise(x, key):
            mean, var = normalisation[key]
            return (x - tf.constant(mean)) / tf.constant(np.sqrt(var).astype(np.float32))

        variables = {name: v1.get_variable(name, initializer=value) for name, value in params.items()}
        out = forward(variables, normalise(image, "image"), normalise(low_res, "low_res"),
                      normalise(aux, "aux"), {k: tf.constant(m) for k, m in masks.items()}, baseline)
        assert out.name == "clip_by_value:0", out.name
        with v1.Session(graph=graph) as sess:
            sess.run(v1.global_variables_initializer())
            builder = v1.saved_model.Builder(output_dir)
            builder.add_meta_graph_and_variables(
                sess, [v1.saved_model.tag_constants.SERVING],
                signature_def_map={"serving_default": v1.saved_model.predict_signature_def(
                    inputs={"image": image, "low_res": low_res, "aux": aux},
                    outputs={"soil_moisture": out})})
            builder.save()
            tf.io.write_graph(graph.as_graph_def(), output_dir, "graph_def.pbtxt", as_text=True)
            frozen = v1.graph_util.convert_variables_to_constants(
                sess, graph.as_graph_def(), [out.op.name])
            tf.io.write_graph(frozen, output_dir, "frozen_graph.pb", as_text=False)
    return output_dir, os.path.join(output_dir, "frozen_graph.pb")


# --------------------------------------------------------------------------
# Beam pieces


class DecodeShardFn(beam.DoFn):
    """Shard -> decoded labelled examples, tagged by the sensor split."""

    def __init__(self, size: int, splits, batch: int = 16):
        self.size = size
        self.splits = splits
        self.batch = batch
        self._decoder = None

    def setup(self):
        from transforms.dataset.decode import BatchDecoder

        self._decoder = BatchDecoder(self.size)  # compiled once per DoFn instance

    def process(self, shard: str):
        from transforms.dataset import example_proto, tfrecord_io

        pending = {s: [] for s in ("train", "validation", "test")}
        for record in tfrecord_io.read_shard(shard):
            try:
                sid = example_proto.read_features(record, [schema.SENSOR_ID]).get(schema.SENSOR_ID)
            except example_proto.MalformedExampleError:
                beam.metrics.Metrics.counter("train", "malformed_skipped").inc()
                continue
            split = self.splits.split(sid[0].decode()) if sid else None
            if split is None:
                continue
            pending[split].append(record)
            if len(pending[split]) == self.batch:
                yield from self._flush(split, pending[split])
        for split, records in pending.items():
            yield from self._flush(split, records)

    def _flush(self, split, records):
        for example in decoded_examples(records, self.size, self._decoder):
            beam.metrics.Metrics.counter("train", f"examples_{split}").inc()
            yield beam.pvalue.TaggedOutput(split, example)
        records.clear()


def encode_transformed(example) -> bytes:
    from transforms.dataset import example_proto

    return example_proto.encode_example(
        {k: ("float", np.asarray(v, np.float32).ravel()) for k, v in example.items()})


# --------------------------------------------------------------------------
# Training

def _dataset(output_dir: str, split: str, batch_size: int, shuffle_seed=None):
    import tensorflow as tf
    import tensorflow_transform as tft

    spec = tft.TFTransformOutput(output_dir).transformed_feature_spec()
    files = _transformed_files(output_dir, split)
    ds = tf.data.TFRecordDataset(files, compression_type="GZIP")
    if shuffle_seed is not None:
        ds = ds.shuffle(1024, seed=shuffle_seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size).map(lambda s: tf.io.parse_example(s, spec))
    return ds.map(lambda f: ({k: f[k] for k in ("image", "low_res", "aux")}, f[LABEL]))


def _transformed_files(output_dir: str, split: str) -> List[str]:
    import tensorflow as tf  # tf.io.gfile: local paths and gs:// alike

    return sorted(tf.io.gfile.glob(os.path.join(output_dir, "transformed", f"{split}-*.tfrecord.gz")))


def transformed_statistics(output_dir: str) -> Dict[str, np.ndarray]:
    """The analyzers' results, as carried by every transformed example."""
    import tensorflow as tf
    import tensorflow_transform as tft

    spec = tft.TFTransformOutput(output_dir).transformed_feature_spec()
    for split in ("train", "validation", "test"):
        for path in _transformed_files(output_dir, split):
            for record in tf.data.TFRecordDataset(path, compression_type="GZIP").take(1):
                parsed = tf.io.parse_single_example(record, spec)
                return {k: v.numpy() for k, v in parsed.items() if k.endswith(("_mean", "_var"))}
    raise ValueError(f"no transformed examples under {output_dir}")


def _collect(ds):
    feats, labels = [], []
    for x, y in ds:
        feats.append({k: v.numpy() for k, v in x.items()})
        labels.append(y.numpy())
    if not labels:
        return None, np.zeros(0, np.float32)
    return {k: np.concatenate([f[k] for f in feats]) for k in feats[0]}, np.concatenate(labels)


def train_and_export(output_dir: str, inputs: Sequence[str], baseline: str, epochs: int,
                     batch_size: int, learning_rate: float, seed: int
                     ) -> Tuple[Dict[str, object], object]:  # (report, the Keras model)
    """Train on ``transformed/train``, report RMSEs, export ``model/``; returns (report, model)."""
    import time

    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    model = make_keras_model(inputs, baseline, seed)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="mse")
    train = _dataset(output_dir, "train", batch_size, shuffle_seed=seed)
    start = time.time()
    with warnings.catch_warnings():
        # tf.data shuffles (Keras' own shuffle flag does not apply to a
        # Dataset), and a TFRecord dataset's length is unknown until its end,
        # which Keras reports as "ran out of data": neither is a problem
        warnings.filterwarnings("ignore", message=".*shuffle=True.*")
        warnings.filterwarnings("ignore", message=".*ran out of data.*")
        history = model.fit(train, epochs=epochs, verbose=0, shuffle=False)
    train_seconds = time.time() - start
    report: Dict[str, object] = {"inputs": list(inputs), "baseline": baseline, "epochs": epochs,
                                 "loss": [float(v) for v in history.history["loss"]],
                                 "train_seconds": train_seconds, "examples": {}, "rmse": {},
                                 "rmse_train_mean": {}}
    _, y_train = _collect(_dataset(output_dir, "train", 256))
    train_mean = float(y_train.mean()) if len(y_train) else 0.0
    for split in ("train", "validation", "test"):
        x, y = _collect(_dataset(output_dir, split, 256))
        report["examples"][split] = int(len(y))
        if x is None:
            continue
        pred = model(x).numpy()
        report["rmse"][split] = float(np.sqrt(np.mean((pred - y) ** 2)))
        report["rmse_train_mean"][split] = float(np.sqrt(np.mean((train_mean - y) ** 2)))
    probe = transformed_statistics(output_dir)
    model_dir = os.path.join(output_dir, "model")
    if tf.io.gfile.exists(model_dir):
        tf.io.gfile.rmtree(model_dir)
    export_released_interface(model_dir, keras_params(model), normalisation_from(probe),
                              inputs, baseline)
    report["model_dir"] = model_dir
    return report, model
