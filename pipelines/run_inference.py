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

import os
import sys
from typing import List, Optional

import apache_beam as beam
import numpy as np
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import GoogleCloudOptions, PipelineOptions

from model_runner.model import (CPU_BATCH_SIZE, DEFAULT_INPUTS, DEFAULT_OUTPUT, DecodeFailure,
                                ModelLoadError, SoilMoistureModelHandler, TensorNames,
                                check_model, default_batch_size, keyed_examples, local_gpus)
from transforms import inference, runtime
from transforms.dataset import files, tfrecord_io

FORMATS = ("csv", "parquet", "tfrecord")


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


def handler_from(opts: RunInferenceOptions,
                 threads: Optional[int] = None) -> SoilMoistureModelHandler:
    return SoilMoistureModelHandler(
        opts.exported_model_dir, image_size=opts.image_size,
        batch_size=opts.batch_size or CPU_BATCH_SIZE,
        names=TensorNames(opts.image_tensor, opts.low_res_tensor, opts.aux_tensor,
                          opts.output_tensor), threads=opts.tensorflow_threads or threads,
        feed_window=not opts.feed_whole_images)


def resolve_batch_size(options: PipelineOptions) -> None:
    """``--batch_size`` when given, else ``default_batch_size`` for the
    machine the model runs on: a local GPU, or Dataflow workers with an
    accelerator."""
    opts = options.view_as(RunInferenceOptions)
    if opts.batch_size is not None:
        return
    if runtime.is_local(options):
        gpu = local_gpus() > 0
    else:
        service = options.view_as(GoogleCloudOptions).dataflow_service_options or []
        gpu = any(o.startswith("worker_accelerator") for o in service)
    opts.batch_size = default_batch_size(gpu)


SUFFIXES = {"csv": ".csv", "parquet": ".parquet", "tfrecord": ".tfrecord.gz"}


def output_patterns(prefix: str, output_format: str) -> List[str]:
    """Globs of every file a full run writes under ``prefix``."""
    return [f"{prefix}-*-of-*{SUFFIXES[output_format]}", f"{prefix}-failures.jsonl",
            f"{prefix}-summary.json"]


def count_written(files_written):
    """The file names a Beam sink reports -> the ``output_files`` counter
    (the shard count of this run's files: ``-SSSSS-of-NNNNN``)."""
    from apache_beam.metrics import Metrics

    counter = Metrics.counter(inference.NAMESPACE, "output_files")
    return files_written | "Count output files" >> beam.Map(lambda _: counter.inc())


def outputs_of_run(prefix: str, output_format: str, num_files: int):
    """``(this run's prediction files, other files of the prefix)``: a run
    writes ``-SSSSS-of-NNNNN`` with N its own file count, so files of the
    prefix with another N are an earlier run's (stale: a glob over the prefix
    would read them too)."""
    found = sorted(m.path for m in FileSystems.match(
        [output_patterns(prefix, output_format)[0]])[0].metadata_list)
    ours = [p for p in found if p.endswith(f"-of-{num_files:05d}{SUFFIXES[output_format]}")]
    return ours, [p for p in found if p not in ours]


def build(p: beam.Pipeline, input_data_path: str, opts: RunInferenceOptions,
          progress_dir: Optional[str] = None, threads: Optional[int] = None):
    shards = p | "Match shards" >> tfrecord_io.MatchShards(input_data_path)
    out = shards | "Predict" >> inference.PredictShards(
        keyed_examples(handler_from(opts, threads)), progress_dir)
    rows, prefix = out["rows"], opts.output_path
    if opts.output_format == "csv":
        written = (rows | "To CSV" >> beam.Map(inference.csv_line)
                   | "Write CSV" >> beam.io.WriteToText(prefix, file_name_suffix=".csv",
                                                        header=inference.CSV_HEADER))
    elif opts.output_format == "parquet":
        written = rows | "Write Parquet" >> beam.io.WriteToParquet(
            prefix, inference.parquet_schema(), file_name_suffix=".parquet")
    else:
        written = (rows | "To tf.Example" >> beam.Map(inference.tf_example)
                   | "Write TFRecord" >> beam.io.WriteToTFRecord(
                       prefix, file_name_suffix=".tfrecord.gz"))
    count_written(written)
    (out["failures"] | "Format failures" >> beam.Map(files.to_json_line)
     | "Write failures" >> beam.io.WriteToText(f"{prefix}-failures", file_name_suffix=".jsonl",
                                               num_shards=1, shard_name_template=""))
    return out


def run_samples(input_data_path: str, opts: RunInferenceOptions) -> dict:
    """Print ``Prediction {i}: {value}`` as the released script does, as each
    batch is predicted; a corrupt shard ends the run after what came before it."""
    paths = runtime.input_shards(input_data_path)
    runtime.check_image_size(paths[0], opts.image_size)
    check_model_flags(opts)
    results, error = [], None
    try:
        for i, (shard, index, value) in enumerate(inference.sample_predictions(
                paths, handler_from(opts), opts.num_inference_samples, opts.num_skip_samples)):
            results.append((shard, index, value))
            if isinstance(value, DecodeFailure):
                print(f"Prediction {i}: failed ({shard} record {index}): {value.reason}")
            else:
                print(f"Prediction {i}: {str(np.float32(value))}", flush=True)
    except tfrecord_io.CorruptShardError as e:
        error = str(e)
        print(f"run_inference: error: {e}", file=sys.stderr)
    if error is None and len(results) < opts.num_inference_samples:
        print(f"run_inference: only {len(results)} examples after skipping "
              f"{opts.num_skip_samples} (asked for {opts.num_inference_samples})", file=sys.stderr)
    return {"samples": results, "error": error}


def check_model_flags(opts: RunInferenceOptions) -> None:
    """The model exists (else exit 2) and has the tensors the flags name (else exit 1)."""
    path = opts.exported_model_dir
    if "://" not in path and not os.path.exists(path):
        raise runtime.UsageError(f"--exported_model_dir {path} does not exist")
    try:
        check_model(path, handler_from(opts).names)
    except ModelLoadError as e:
        hint = (" (see --image_tensor, --low_res_tensor, --aux_tensor, --output_tensor)"
                if "tensor " in str(e) else "")
        raise runtime.InputError(f"{e}{hint}") from e


def validate(opts: RunInferenceOptions) -> None:
    if not opts.exported_model_dir:
        raise runtime.UsageError("--exported_model_dir required")
    for flag in ("num_inference_samples", "num_skip_samples"):
        value = getattr(opts, flag)
        if value is not None and value < 0:
            raise runtime.UsageError(f"--{flag} must be 0 or more, not {value}")
    if (opts.batch_size is not None and opts.batch_size < 1) or opts.image_size < 1:
        raise runtime.UsageError("--batch_size and --image_size must be positive")


def run(argv: Optional[List[str]] = None, test_pipeline=None):
    """Sample mode: ``{"samples": [(shard, index, value)], "error": ...}``.
    Full run: the summary dict."""
    options = PipelineOptions(argv)
    opts = options.view_as(RunInferenceOptions)
    input_data_path = options.view_as(runtime.ShardInputOptions).input_data_path
    validate(opts)
    resolve_batch_size(options)
    if opts.num_inference_samples is not None:
        return run_samples(input_data_path, opts)
    if not opts.output_path:
        raise runtime.UsageError("--output_path required (or --num_inference_samples)")
    if not runtime.is_dry_run(options):
        paths = runtime.input_shards(input_data_path)
        runtime.refuse_overwrite(paths, output_patterns(opts.output_path, opts.output_format),
                                 "--input_data_path", "--output_path")
        runtime.check_image_size(paths[0], opts.image_size)
        check_model_flags(opts)
        runtime.check_writable(os.path.dirname(opts.output_path) or ".", "--output_path")
    runtime.apply_local_defaults(options)
    clock = runtime.Stopwatch()
    with runtime.local_progress(options, inference.PredictShards.STAGES, input_data_path) as progress:
        result, dry_run = runtime.run_pipeline(
            options, test_pipeline,
            lambda p: build(p, input_data_path, opts, progress,
                            runtime.threads_per_local_worker(options)), "run_inference")
    if dry_run:
        return dry_run
    c = runtime.counters(result, inference.NAMESPACE)
    failed = sum(c.get(k, 0) for k in ("malformed", "corrupt", "decode_failed"))
    outputs, stale = outputs_of_run(opts.output_path, opts.output_format,
                                    c.get("output_files", 0))
    folder, name = os.path.split(opts.output_path)
    files.remove_stale_temporaries(folder or ".", name)
    summary = {"counters": c, "examples_read": c.get("examples_read", 0),
               "outputs": outputs, "stale_outputs": stale,
               "predicted": c.get("predicted", 0), "failed": failed,
               "accounted": c.get("examples_read", 0) == c.get("predicted", 0) + failed,
               "input_data_path": input_data_path,
               "exported_model_dir": opts.exported_model_dir,
               "output_path": opts.output_path, "output_format": opts.output_format,
               "batch_size": opts.batch_size, "project_version": runtime.project_version(),
               "elapsed_seconds": clock.seconds()}
    files.write_json_atomically(f"{opts.output_path}-summary.json", summary)
    shown = outputs if len(outputs) <= 4 else [outputs[0], "...", outputs[-1]]
    print(f"Examples read: {summary['examples_read']}, predicted: {summary['predicted']}, "
          f"failed: {failed}; {summary['elapsed_seconds']:.1f} s. "
          f"Outputs ({len(outputs)} files): {', '.join(shown)}")
    if stale:
        print(f"NOTE: {len(stale)} files of {opts.output_path} are from an earlier run, not "
              f"this one (a glob over the prefix reads them too; listed as stale_outputs in "
              f"{opts.output_path}-summary.json): {', '.join(stale[:4])}"
              f"{' ...' if len(stale) > 4 else ''}", file=sys.stderr)
    if summary["examples_read"] and not summary["predicted"]:
        print(f"run_inference: error: no example could be predicted; the reasons are in "
              f"{opts.output_path}-failures.jsonl", file=sys.stderr)
    return summary


def exit_code(result) -> int:
    """0, or 1 when a shard could not be read to its end, nothing could be
    predicted, the counts do not add up, or sample mode met a corrupt shard."""
    if "samples" in result:
        return 1 if result["error"] else 0
    if result.get("dry_run"):
        return 0
    ok = (result["accounted"] and not result["counters"].get("shards_incomplete")
          and (result["predicted"] or not result["examples_read"]))
    return 0 if ok else 1


def main(argv: Optional[List[str]] = None) -> int:
    return runtime.cli_main(
        "run_inference", run, exit_code, argv,
        option_classes=(runtime.ShardInputOptions, RunInferenceOptions, runtime.ProgressOptions),
        description=__doc__.split("\n\n")[0])


if __name__ == "__main__":
    runtime.exit_process(main())  # skips TensorFlow's slow interpreter teardown
