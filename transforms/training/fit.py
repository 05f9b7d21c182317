"""Training step 2b: fit the network, survive long runs, report, export.

``train_and_export`` trains the Keras model (``network.py``) on the train
split streamed by ``data.dataset``, in memory independent of the data size:

* **Every epoch** ends with the validation RMSE (Keras' validation loss is
  the exact mean over all validation examples), one progress line (loss,
  validation RMSE, examples/s, ETA) and a checkpoint, ``checkpoints/last.npz``
  (weights, optimizer state, epoch, early-stopping state), written
  atomically; ``resume=True`` continues from it.
* **Early stopping** (``patience`` > 0): after ``patience`` epochs without a
  better validation RMSE, training stops and the best epoch's weights are
  restored; ``patience`` 0 trains every epoch and keeps the last weights.
* **Devices**: with several GPUs visible, ``tf.distribute.MirroredStrategy``
  splits each batch across them; otherwise the default device (one GPU or the
  CPU), with the same code.
* **Report**: loss per epoch, RMSE of each split and of predicting the train
  mean (``streaming_rmse``, batch by batch), examples/s.

The model is then exported in the released interface by ``export.py``.
"""

import dataclasses
import io
import logging
import math
import os
import time
import warnings
from typing import Dict, Optional, Sequence

import numpy as np

from transforms.dataset import files, schema
from transforms.training import data
from transforms.training.export import export_released_interface
from transforms.training.network import keras_params, make_keras_model
from transforms.training.preprocess import LABEL, normalisation_from, transformed_statistics

_LOG = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class FitConfig:
    """What ``train_and_export`` does (``TrainingConfig.fit()``); the fields
    are ``pipelines.train``'s flags of the same names, ``inputs`` as a list.

    Attributes:
        inputs: the input sources the model sees (ablations leave some out).
        baseline: the baseline the model learns a correction to ("": none).
        epochs: the most epochs; train_batch_size: examples per step.
        learning_rate: Adam's learning rate; seed: every random seed.
        patience: epochs without a better validation RMSE before stopping
            (0: never stop early).
        resume: go on from ``checkpoints/last.npz``.
        shuffle_buffer_mb: the shuffle buffer's size in MB.
    """

    inputs: Sequence[str]
    baseline: str = ""
    epochs: int = 20
    train_batch_size: int = 16
    learning_rate: float = 3e-3
    seed: int = 0
    patience: int = 0  # epochs without a better validation RMSE before stopping; 0: never
    resume: bool = False
    shuffle_buffer_mb: float = data.DEFAULT_SHUFFLE_BUFFER_MB


def distribution_strategy():
    """``MirroredStrategy`` over the visible GPUs when there are several, else the default."""
    import tensorflow as tf

    gpus = tf.config.list_logical_devices("GPU")
    return tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.get_strategy()


class Checkpoints:
    """``<output_dir>/checkpoints/last.npz``: the state to resume from (local or gs://)."""

    def __init__(self, output_dir: str):
        self.path = os.path.join(output_dir, "checkpoints", "last.npz")

    def save(self, model, state: Dict[str, object]) -> None:
        arrays = {f"param/{k}": v for k, v in keras_params(model).items()}
        arrays.update({f"optimizer/{i:04d}": np.asarray(v.numpy())
                       for i, v in enumerate(model.optimizer.variables)})
        arrays.update({f"best/{k}": v for k, v in state["best_params"].items()})
        arrays["state"] = np.frombuffer(repr({k: v for k, v in state.items()
                                              if k != "best_params"}).encode(), np.uint8)
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        files.write_bytes_atomically(self.path, buf.getvalue())

    def restore(self, model) -> Optional[Dict[str, object]]:
        """Load the last state into ``model`` (weights and optimizer); None when there is none."""
        import ast

        import tensorflow as tf

        if not tf.io.gfile.exists(self.path):
            return None
        with tf.io.gfile.GFile(self.path, "rb") as f:
            saved = np.load(io.BytesIO(f.read()))
        for name, variable in model.params.items():
            variable.assign(saved[f"param/{name}"])
        model.optimizer.build(model.trainable_variables)
        for i, variable in enumerate(model.optimizer.variables):
            variable.assign(saved[f"optimizer/{i:04d}"])
        state = ast.literal_eval(bytes(saved["state"]).decode())
        state["best_params"] = {k[len("best/"):]: saved[k] for k in saved.files
                                if k.startswith("best/")}
        return state


def _set_params(model, params: Dict[str, np.ndarray]) -> None:
    for name, variable in model.params.items():
        variable.assign(params[name])


def epoch_callback(checkpoints: Checkpoints, state: Dict[str, object], epochs: int,
                   patience: int, train_examples: int):
    """The Keras callback that ends each epoch: validation RMSE, early stopping,
    checkpoint, progress line."""
    import keras

    class EpochEnd(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.time()

        def on_epoch_end(self, epoch, logs=None):
            if not math.isfinite(logs["loss"]):  # nothing learnt from here on: stop, save nothing
                state["diverged_epoch"] = epoch
                self.model.stop_training = True
                return
            seconds = time.time() - self.started
            state["seconds"].append(seconds)
            state["loss"].append(float(logs["loss"]))
            rmse = math.sqrt(logs["val_loss"]) if "val_loss" in logs else None
            state["validation_rmse"].append(rmse)
            if rmse is not None and (state["best_rmse"] is None or rmse < state["best_rmse"]):
                state.update(best_rmse=rmse, best_epoch=epoch, wait=0,
                             best_params=keras_params(self.model))
            else:
                state["wait"] += 1
            state["epoch"] = epoch
            if patience and rmse is not None and state["wait"] >= patience:
                state["stopped_early"] = True
                self.model.stop_training = True
            checkpoints.save(self.model, state)
            left = (epochs - epoch - 1) * float(np.mean(state["seconds"]))
            _LOG.info("epoch %d/%d: loss %.5f, validation RMSE %s (best %s at epoch %s), "
                      "%.1f examples/s, ETA %.0f s", epoch + 1, epochs, logs["loss"],
                      "-" if rmse is None else f"{rmse:.5f}",
                      "-" if state["best_rmse"] is None else f"{state['best_rmse']:.5f}",
                      "-" if state["best_epoch"] is None else state["best_epoch"] + 1,
                      train_examples / seconds if seconds else 0.0,
                      0.0 if state.get("stopped_early") else left)

    return EpochEnd()


def streaming_rmse(model, ds, train_mean: float) -> Dict[str, object]:
    """The model's RMSE over ``ds`` and that of predicting ``train_mean``, batch by batch."""
    n, sq, sq_mean = 0, 0.0, 0.0
    for x, y in ds:
        y = y.numpy().astype(np.float64)
        pred = np.asarray(model(x, training=False), np.float64)
        n += len(y)
        sq += float(np.sum((pred - y) ** 2))
        sq_mean += float(np.sum((train_mean - y) ** 2))
    if not n:
        return {"examples": 0, "rmse": None, "rmse_train_mean": None}
    return {"examples": n, "rmse": math.sqrt(sq / n), "rmse_train_mean": math.sqrt(sq_mean / n)}


def _fresh_state() -> Dict[str, object]:
    return {"epoch": -1, "loss": [], "validation_rmse": [], "seconds": [], "best_rmse": None,
            "best_epoch": None, "wait": 0, "best_params": {}, "stopped_early": False}


def train_and_export(output_dir: str, image_size: int, config: FitConfig,
                     train_examples: int = 0):
    """Train on ``transformed/train``, report, export ``model/``.

    Args:
        output_dir: the training's folder (``transformed/`` read,
            ``checkpoints/`` and ``model/`` written).
        image_size: the side of the examples' images.
        config: what to fit and how.
        train_examples: the train split's size, for the examples/s figures.

    Returns:
        ``(report, Keras model)``.

    Raises:
        TrainingDiverged: the training loss became NaN or infinite (nothing
            exported).
    """
    import keras

    keras.utils.set_random_seed(config.seed)
    stats = transformed_statistics(output_dir)
    normalisation = normalisation_from(stats)
    side = data.window_side(image_size)

    def split_data(split, batch_size, seed=None):
        return data.dataset(data.transformed_files(output_dir, split), side, normalisation,
                            batch_size, shuffle_seed=seed,
                            shuffle_buffer_mb=config.shuffle_buffer_mb)

    strategy = distribution_strategy()
    with strategy.scope():
        model = make_keras_model(config.inputs, config.baseline, config.seed)
        model.compile(optimizer=keras.optimizers.Adam(config.learning_rate), loss="mse")
    checkpoints = Checkpoints(output_dir)
    state = (checkpoints.restore(model) if config.resume else None) or _fresh_state()
    if config.resume and state["epoch"] < 0:
        _LOG.info("--resume: no checkpoint at %s, training from the first epoch",
                  checkpoints.path)
    resumed_from = state["epoch"] + 1
    if resumed_from:
        _LOG.info("resuming after epoch %d from %s", resumed_from, checkpoints.path)
    eval_batch = data.evaluation_batch(side)
    validation = (split_data("validation", eval_batch)
                  if data.transformed_files(output_dir, "validation") else None)
    start = time.time()
    if resumed_from < config.epochs and not state["stopped_early"]:
        with warnings.catch_warnings():
            # a TFRecord dataset's length is unknown until its end, which Keras
            # reports as "ran out of data": not a problem
            warnings.filterwarnings("ignore", message=".*ran out of data.*")
            # shuffle=False: tf.data shuffles (Keras' own flag does not apply to a Dataset)
            model.fit(split_data("train", config.train_batch_size, config.seed), epochs=config.epochs,
                      initial_epoch=resumed_from, validation_data=validation, verbose=0,
                      shuffle=False,
                      callbacks=[epoch_callback(checkpoints, state, config.epochs,
                                                config.patience, train_examples)])
    train_seconds = time.time() - start
    if state.get("diverged_epoch") is not None:
        raise TrainingDiverged(
            f"the training loss became NaN or infinite in epoch "
            f"{state['diverged_epoch'] + 1}: nothing was exported (try a smaller "
            f"--learning_rate; the last good state is {checkpoints.path})")
    if config.patience and state["best_params"]:
        _set_params(model, state["best_params"])  # the best epoch's weights
    train_mean = float(stats[f"{LABEL}_mean"])
    report: Dict[str, object] = {
        "inputs": list(config.inputs), "baseline": config.baseline, "epochs": config.epochs,
        "epochs_run": state["epoch"] + 1, "resumed_from_epoch": resumed_from,
        "loss": state["loss"], "validation_rmse_per_epoch": state["validation_rmse"],
        "best_epoch": None if state["best_epoch"] is None else state["best_epoch"] + 1,
        "stopped_early": state["stopped_early"], "patience": config.patience,
        "exported_weights": "best" if config.patience and state["best_params"] else "last",
        "train_seconds": train_seconds, "window": side, "train_mean_label": train_mean,
        "train_examples_per_second": (train_examples * len(state["seconds"]) / sum(state["seconds"])
                                      if state["seconds"] and train_examples else None),
        "examples": {}, "rmse": {}, "rmse_train_mean": {}}
    for split in schema.SPLITS:
        figures = streaming_rmse(model, split_data(split, eval_batch), train_mean)
        report["examples"][split] = figures["examples"]
        if figures["examples"]:
            report["rmse"][split] = figures["rmse"]
            report["rmse_train_mean"][split] = figures["rmse_train_mean"]
    model_dir = os.path.join(output_dir, "model")
    export_atomically(model_dir, lambda folder: export_released_interface(
        folder, keras_params(model), normalisation, config.inputs, config.baseline, image_size))
    report["model_dir"] = model_dir
    return report, model


class TrainingDiverged(Exception):
    """The training loss became NaN or infinite: the model is not exported."""


def export_atomically(model_dir: str, export) -> None:
    """``export(folder)`` into a temporary folder beside ``model_dir``, then
    swapped in: the previous model is removed only once the new one is
    complete, and on a failure it stays as it was (the temporary folder is
    removed, the error raised)."""
    import uuid

    import tensorflow as tf

    token = uuid.uuid4().hex
    fresh, old = f"{model_dir}.tmp-{token}", f"{model_dir}.old-{token}"
    try:
        export(fresh)
    except BaseException:
        if tf.io.gfile.exists(fresh):
            tf.io.gfile.rmtree(fresh)
        raise
    had_model = tf.io.gfile.exists(model_dir)
    if had_model:
        tf.io.gfile.rename(model_dir, old)
    tf.io.gfile.rename(fresh, model_dir)
    if had_model:
        tf.io.gfile.rmtree(old)
