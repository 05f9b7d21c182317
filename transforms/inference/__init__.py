"""inference"""

from transforms.inference.pipeline import (  # noqa: F401
    CSV_HEADER,
    NAMESPACE,
    PredictShards,
    csv_line,
    example_key,
    image_side,
    iter_examples,
    parquet_schema,
    row,
    sample_predictions,
    tf_example,
)
