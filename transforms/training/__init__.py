"""Retraining (``pipelines.train``): preprocess, fit, export.

``preprocess.Preprocess`` (Beam + tf.Transform: decode, split by sensor,
normalise) -> ``fit.train_and_export`` (Keras on the transformed train split,
RMSE report) -> ``export.export_released_interface`` (the released model
interface). ``network`` is the one definition of the model both use.
"""

from transforms.training.fit import train_and_export, transformed_statistics
from transforms.training.network import SOURCES, input_masks
from transforms.training.preprocess import (DecodeShardFn, Preprocess, decoded_examples,
                                            encode_transformed, preprocessing_fn,
                                            raw_feature_spec)

__all__ = ["DecodeShardFn", "Preprocess", "SOURCES", "decoded_examples", "encode_transformed",
           "input_masks", "preprocessing_fn", "raw_feature_spec", "train_and_export",
           "transformed_statistics"]
