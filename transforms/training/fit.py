"""Training step 2: fit the network on the transformed train split, report, export.

Keras trains on ``transformed/train`` streamed with ``tf.data``; the report
gives the loss per epoch and the RMSE of each split against the RMSE of
predicting the train mean; the model is exported by ``export.py``.
"""

import os
import warnings
from typing import Dict, List, Sequence, Tuple

import numpy as np

from transforms.dataset import schema
from transforms.dataset.model_interface import INPUTS
from transforms.training.export import export_released_interface
from transforms.training.network import keras_params, make_keras_model
from transforms.training.preprocess import LABEL, normalisation_from


def _dataset(output_dir: str, split: str, batch_size: int, shuffle_seed=None):
    import tensorflow as tf
    import tensorflow_transform as tft

    spec = tft.TFTransformOutput(output_dir).transformed_feature_spec()
    files = _transformed_files(output_dir, split)
    ds = tf.data.TFRecordDataset(files, compression_type="GZIP")
    if shuffle_seed is not None:
        ds = ds.shuffle(1024, seed=shuffle_seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size).map(lambda s: tf.io.parse_example(s, spec))
    return ds.map(lambda f: ({k: f[k] for k in INPUTS}, f[LABEL]))


def _transformed_files(output_dir: str, split: str) -> List[str]:
    import tensorflow as tf  # tf.io.gfile: local paths and gs:// alike

    return sorted(tf.io.gfile.glob(os.path.join(output_dir, "transformed", f"{split}-*.tfrecord.gz")))


def transformed_statistics(output_dir: str) -> Dict[str, np.ndarray]:
    """The analyzers' results, as carried by every transformed example."""
    import tensorflow as tf
    import tensorflow_transform as tft

    spec = tft.TFTransformOutput(output_dir).transformed_feature_spec()
    for split in schema.SPLITS:
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
    for split in schema.SPLITS:
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
