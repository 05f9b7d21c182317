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

from model_runner.model import DEFAULT_INPUTS, DEFAULT_OUTPUT
from transforms import inference, runtime

FORMATS = tuple(inference.SUFFIXES)


class RunInferenceOptions(PipelineOptions):
    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument("--exported_model_dir", default=None,
                            help="TF1 SavedModel directory (tag serve) or a frozen GraphDef .pb")
        parser.add_argument("--num_inference_samples", type=int, default=None,
                            help="sample mode: predict this many examples, print them, exit")
        parser.add_argument("--num_skip_samples", type=int, default=0,
                            help="sample mode: examples to skip first (file order)")
        parser.add_argument("--output_path", default=None, help="output file prefix (full run)")
        parser.add_argument("--output_format", choices=FORMATS, default="csv")
        parser.add_argument("--batch_size", type=int, default=None,
                            help="examples per session.run (default 8, or 64 when the local "
                                 "machine has a GPU or Dataflow workers get one: a "
                                 "worker_accelerator service option)")
        parser.add_argument("--feed_whole_images", action="store_true",
                            help="always feed whole images (by default only the centre "
                                 "window is decoded and fed when a check at load shows the "
                                 "model crops to it, as the released model does)")
        runtime.add_shared_argument(parser, "--image_size", type=int, default=512,
                            help="image side of the examples (512 in the release)")
        parser.add_argument("--image_tensor", default=DEFAULT_INPUTS["image"])
        parser.add_argument("--low_res_tensor", default=DEFAULT_INPUTS["low_res"])
        parser.add_argument("--aux_tensor", default=DEFAULT_INPUTS["aux"])
        parser.add_argument("--output_tensor", default=DEFAULT_OUTPUT)
        parser.add_argument("--tensorflow_threads", type=int, default=0,
                            help="TensorFlow threads per worker process (default 0: the "
                                 "cores divided by --direct_num_workers on a local run, "
                                 "else TensorFlow's own default)")


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
