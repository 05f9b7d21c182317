"""Batched inference (``pipelines.run_inference``).

``config.InferenceConfig`` holds the settings (one field per flag, every
derived default settled); ``pipeline.PredictShards`` reads shards and runs
the model through Beam's ``RunInference`` (the model handler is
``model_runner.model``: this flow stands on the model runtime as well as on
``transforms.dataset``); ``sinks.WritePredictions`` writes the rows in their
formats (``rows``); ``sample`` is the released script's sample mode; ``job``
runs either mode as one call, with its checks, summary and exit status.
"""

from transforms.dataset.keys import row
from transforms.inference.config import SUFFIXES, InferenceConfig
from transforms.inference.job import (build, check_model_flags, exit_code, run_predictions,
                                      run_samples, summary_lines)
from transforms.inference.pipeline import COUNTERS, NAMESPACE, PredictShards
from transforms.inference.rows import CSV_HEADER, csv_line, parquet_schema, tf_example
from transforms.inference.sample import iter_examples, sample_predictions
from transforms.inference.sinks import WritePredictions, output_patterns, outputs_of_run

__all__ = ["COUNTERS", "CSV_HEADER", "InferenceConfig", "NAMESPACE", "PredictShards", "SUFFIXES",
           "WritePredictions", "build", "check_model_flags", "csv_line", "exit_code",
           "iter_examples", "output_patterns", "outputs_of_run", "parquet_schema", "row",
           "run_predictions", "run_samples", "sample_predictions", "summary_lines", "tf_example"]
