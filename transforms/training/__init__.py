"""Retraining (``pipelines.train``): preprocess, fit, export.

``preprocess.Preprocess`` (Beam + tf.Transform: decode, cut to the model's
window, store compactly, split by sensor, analyse the train statistics) ->
``data.dataset`` (the tf.data input pipeline) -> ``fit.train_and_export``
(Keras, checkpoints, early stopping, streaming RMSE report) ->
``export.export_released_interface`` (the released model interface).
``network`` is the one definition of the model both training and export use.
``config.TrainingConfig`` holds the settings (one field per flag) and
``job.run_training`` runs preprocessing, fitting and export as one call.
"""

from transforms.training.config import TrainingConfig
from transforms.training.data import DEFAULT_SHUFFLE_BUFFER_MB
from transforms.training.fit import FitConfig, TrainingDiverged, train_and_export
from transforms.training.job import check_inputs, preprocess_shards, report_lines, run_training
from transforms.training.network import SOURCES, input_masks
from transforms.training.preprocess import (NAMESPACE, DecodeShardFn, Preprocess,
                                            compact_example, decoded_examples, preprocessing_fn,
                                            transformed_statistics)

__all__ = ["DEFAULT_SHUFFLE_BUFFER_MB", "TrainingConfig", "check_inputs", "preprocess_shards",
           "report_lines", "run_training", "DecodeShardFn", "FitConfig", "TrainingDiverged", "NAMESPACE", "Preprocess", "SOURCES", "compact_example",
           "decoded_examples", "input_masks", "preprocessing_fn", "train_and_export",
           "transformed_statistics"]
