"""Run the released soil-moisture model (or one with its interface) on the shards.

The Beam version of the released ``run_inference.py``: batched, one loaded
session per worker process, predictions identical to feeding one example at
a time (see ``model_runner.model`` and ``transforms.dataset.decode``).

Sample mode, as the released script (prints ``Prediction {i}: {value}``)::

    python -m pipelines.run_inference \
        --input_data_path 'shards/data-00000-of-00500.tfrecord.gz' \
        --exported_model_dir soil_moisture_model/ --num_inference_samples 20

Every example, locally::

    python -m pipelines.run_inference \
        --input_data_path 'merged/data-*-of-00500.tfrecord.gz' \
        --exported_model_dir soil_moisture_model/ --output_path predictions/pred \
        --batch_size 8 --direct_num_workers 4 --direct_running_mode multi_processing

On Dataflow::

    python -m pipelines.run_inference \
        --input_data_path 'gs://my-bucket/soil_moisture_full/data-*-of-00500.tfrecord.gz' \
        --exported_model_dir gs://my-bucket/soil_moisture_model/ \
        --output_path gs://my-bucket/predictions/pred --output_format parquet \
        --runner DataflowRunner --project my-project --region us-central1 \
        --temp_location gs://my-bucket/tmp --setup_file ./setup.py \
        --experiments use_runner_v2 --machine_type n2-highmem-4 \
        --disk_size_gb 100 --max_num_workers 50

Outputs of a full run: ``<output_path>-SSSSS-of-NNNNN.csv`` (or ``.parquet``,
``.tfrecord.gz``) with the columns of ``transforms.dataset.schema.ROW_COLUMNS``
(``sensor_id, timestamp, prediction, label, smap_sm, gldas_sm, center_lat,
center_long, shard, index, land_cover, sentinel_1_age, sentinel_2_age``);
``<output_path>-failures.jsonl`` (one line per example not predicted, with
shard, index and reason) and ``<output_path>-summary.json`` (counters, the
files written, ``stale_outputs``: files of the prefix an earlier run with
another file count left). An output that would replace an input is refused.
"""

import sys
from typing import List, Optional

from apache_beam.options.pipeline_options import PipelineOptions

from transforms import inference, runtime

FORMATS = tuple(inference.SUFFIXES)


class RunInferenceOptions(PipelineOptions):
    """run_inference's own flags (the model's are ``runtime.add_model_arguments``')."""

    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument("--num_inference_samples", type=int, default=None,
                            help="sample mode: predict this many examples, print them, exit "
                                 "(default: predict every example into --output_path)")
        parser.add_argument("--num_skip_samples", type=int, default=0,
                            help="sample mode: examples to skip first (file order)")
        parser.add_argument("--output_format", choices=FORMATS, default="csv",
                            help="the prediction files' format")
        runtime.add_model_arguments(parser)


OPTION_CLASSES = (runtime.ShardInputOptions, RunInferenceOptions, runtime.ProgressOptions)


def run(argv: Optional[List[str]] = None, test_pipeline=None):
    """Sample mode: ``{"samples": [(shard, index, value)], "error": ...}``.
    Full run: the summary dict (also ``<output_path>-summary.json``)."""
    options = PipelineOptions(argv)
    config = inference.InferenceConfig.from_options(options)
    if config.sample_mode:
        return inference.run_samples(config, lambda line, error: print(
            line, file=sys.stderr if error else sys.stdout, flush=True))
    summary = inference.run_predictions(config, options, test_pipeline)
    if summary.get("dry_run"):
        return summary
    out, err = inference.summary_lines(summary, config.output_path)
    print("\n".join(out))
    for line in err:
        print(line, file=sys.stderr)
    return summary


def main(argv: Optional[List[str]] = None) -> int:
    return runtime.cli_main("run_inference", run, inference.exit_code, argv,
                            option_classes=OPTION_CLASSES, description=__doc__.split("\n\n")[0])


if __name__ == "__main__":
    runtime.exit_process(main())  # skips TensorFlow's slow interpreter teardown
