"""training"""

from transforms.training.pipeline import (  # noqa: F401
    DecodeShardFn,
    SOURCES,
    _collect,
    _dataset,
    decoded_examples,
    encode_transformed,
    input_masks,
    preprocessing_fn,
    raw_feature_spec,
    train_and_export,
    transformed_statistics,
)
