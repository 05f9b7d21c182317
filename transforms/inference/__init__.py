"""Batched inference (``pipelines.run_inference``).

``pipeline.PredictShards`` reads shards and runs the model through Beam's
``RunInference`` (the model handler is ``model_runner.model``); ``rows``
holds the output row and its formats; ``sample`` the released script's
sample mode.
"""

from transforms.inference.pipeline import COUNTERS, NAMESPACE, PredictShards
from transforms.dataset.records import row
from transforms.inference.rows import CSV_HEADER, csv_line, parquet_schema, tf_example
from transforms.inference.sample import iter_examples, sample_predictions

__all__ = ["COUNTERS", "CSV_HEADER", "NAMESPACE", "PredictShards", "csv_line", 
           "iter_examples", "parquet_schema", "row", "sample_predictions", "tf_example"]
