"""Retrain the fusion model (or an ablation, or the SMAP+GLDAS NN baseline).

    python -m pipelines.train --input_data_path 'merged/data-*.tfrecord.gz' \
        --output_dir training/ --image_size 512 --inputs s1,dem,s2,soilgrids,smap,gldas \
        --epochs 20 --train_batch_size 16 --patience 5

1. A Beam + tf.Transform job (``transforms.training.preprocess``) turns the
   labelled examples into compact training data: decoded with
   ``run_inference``'s decoder, cut to the 256 x 256 window the model sees,
   stored as float16 (``transformed/{train,validation,test}-*.tfrecord.gz``),
   split by sensor as ``evaluate`` splits; tf.Transform analyses the per-band
   statistics on the train split only (``transform_fn/``). On the real data,
   run it on Dataflow by adding the Dataflow options (below); training then
   runs where the command runs. ``preprocessing.json`` records the counts
   and sizes.
2. Keras trains on the train split streamed by ``tf.data``
   (``transforms.training.data``), checkpointing every epoch, with early
   stopping on the validation RMSE (``--patience``) and ``--resume``
   (``transforms.training.fit``); with several GPUs, ``MirroredStrategy``.
3. The model is exported to ``<output_dir>/model/`` in the released
   interface, normalisation inside (``saved_model.pb``, ``variables/``,
   ``graph_def.pbtxt``, ``frozen_graph.pb``), for
   ``run_inference --exported_model_dir``; ``training.json`` records the
   configuration, the losses and the RMSE of each split.

``--run_evaluation`` then runs the exported model over the input shards
(``transforms.inference.PredictShards``, as ``run_inference`` does) and
evaluates its predictions (``transforms.evaluation.Evaluate``, as
``evaluate`` does) in one pipeline, writing the predictions and the metrics
table to ``<output_dir>/evaluation/``.

Preprocessing on Dataflow, training here (a GPU machine) against gs:// data::

    python -m pipelines.train --input_data_path 'gs://my-bucket/merged/data-*.tfrecord.gz' \
        --output_dir gs://my-bucket/training --image_size 512 --epochs 50 --patience 5 \
        --runner DataflowRunner --project my-project --region us-central1 \
        --temp_location gs://my-bucket/tmp --setup_file ./setup.py
"""

import json
import sys
import tempfile
from typing import List, Optional

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import GoogleCloudOptions, PipelineOptions

from model_runner.model import SoilMoistureModelHandler, keyed_examples
from transforms import evaluation, inference, runtime, training
from transforms.dataset import files, tfrecord_io
from transforms.training.data import (DEFAULT_SHUFFLE_BUFFER_MB, decoded_bytes, example_bytes,
                                      window_side)


class TrainOptions(PipelineOptions):
    """train's own flags (``--output_dir`` is ``runtime.OutputDirOptions``'s)."""

    @classmethod
    def _add_argparse_args(cls, parser):
        runtime.add_shared_argument(parser, "--image_size", type=int, default=512)
        parser.add_argument("--inputs", default=",".join(training.SOURCES),
                            help="comma-separated subset of " + ",".join(training.SOURCES))
        parser.add_argument("--baseline", choices=("", "smap_gldas_nn"), default="",
                            help="smap_gldas_nn: the small MLP baseline over SMAP and GLDAS")
        parser.add_argument("--epochs", type=int, default=20)
        parser.add_argument("--train_batch_size", type=int, default=16)
        parser.add_argument("--learning_rate", type=float, default=3e-3)
        parser.add_argument("--seed", type=int, default=0)
        runtime.add_shared_argument(parser, "--train_fraction", type=float, default=0.7)
        runtime.add_shared_argument(parser, "--validation_fraction", type=float, default=0.15)
        parser.add_argument("--patience", type=int, default=0,
                            help="stop after this many epochs without a better validation RMSE "
                                 "and export the best epoch's weights (0: train every epoch)")
        parser.add_argument("--resume", action="store_true",
                            help="continue from <output_dir>/checkpoints/last.npz, reusing the "
                                 "preprocessed data when preprocessing.json is there")
        parser.add_argument("--shuffle_buffer_mb", type=float, default=DEFAULT_SHUFFLE_BUFFER_MB,
                            help="memory for shuffling training examples")
        parser.add_argument("--run_evaluation", action="store_true",
                            help="then run run_inference and evaluate with the exported model")


def build_evaluation(p, input_data_path: str, model_dir: str, output_dir: str, opts: TrainOptions):
    """``--run_evaluation``: the exported model's predictions over the input
    shards (``<output_dir>/evaluation/pred-*.csv``) and the evaluation report
    of them in ``<output_dir>/evaluation/``, in one pipeline."""
    folder = FileSystems.join(output_dir, "evaluation")
    handler = SoilMoistureModelHandler(model_dir, image_size=opts.image_size)
    predicted = (p
                 | "Match shards" >> tfrecord_io.MatchShards(input_data_path)
                 | "Predict" >> inference.PredictShards(keyed_examples(handler)))
    _ = (predicted["rows"]
         | "To CSV" >> beam.Map(inference.csv_line)
         | "Write predictions" >> beam.io.WriteToText(
             FileSystems.join(folder, "pred"), file_name_suffix=".csv",
             header=inference.CSV_HEADER))
    _ = (predicted["failures"]
         | "Format failures" >> beam.Map(files.to_json_line)
         | "Write failures" >> beam.io.WriteToText(
             FileSystems.join(folder, "pred-failures"), file_name_suffix=".jsonl",
             num_shards=1, shard_name_template=""))
    _ = predicted["rows"] | "Evaluate" >> evaluation.Evaluate(
        folder, evaluation.SplitConfig(opts.train_fraction, opts.validation_fraction),
        min_samples_per_sensor=3)


def preprocess(options: PipelineOptions, test_pipeline, input_data_path: str, output_dir: str,
               opts: TrainOptions) -> dict:
    """Run the Beam + tf.Transform step; returns what ``preprocessing.json`` records
    (or the dry run's report, with ``dry_run``)."""
    clock = runtime.Stopwatch()
    cloud_temp = options.view_as(GoogleCloudOptions).temp_location
    with tempfile.TemporaryDirectory() as local_temp:
        # tf.Transform's temporary files must be readable by every worker (it
        # creates its folder while the pipeline is built, so a dry run, which
        # runs nothing, keeps it local)
        shared = cloud_temp and not runtime.is_dry_run(options)
        temp = FileSystems.join(cloud_temp, "tft") if shared else local_temp
        splits = evaluation.SplitConfig(opts.train_fraction, opts.validation_fraction)

        def build(p):
            import tensorflow_transform.beam as tft_beam

            with tft_beam.Context(temp_dir=temp):
                _ = (p
                     | "Match shards" >> tfrecord_io.MatchShards(input_data_path)
                     | "Preprocess" >> training.Preprocess(output_dir, opts.image_size, splits))

        result, dry_run = runtime.run_pipeline(options, test_pipeline, build, "train")
    if dry_run:
        return dry_run
    counts = runtime.counters(result, training.NAMESPACE)
    side = window_side(opts.image_size)
    examples = {split: counts.get(f"examples_{split}", 0) for split in evaluation.SPLITS}
    stored = [m.size_in_bytes for m in FileSystems.match(
        [FileSystems.join(output_dir, "transformed", "*.tfrecord.gz")])[0].metadata_list]
    return {
        "input_data_path": input_data_path, "image_size": opts.image_size, "window": side,
        "dtype": "float16", "examples": examples,
        "skipped": {k: v for k, v in counts.items() if not k.startswith("examples_")},
        "bytes_per_example": {
            "decoded_float32_inputs": decoded_bytes(opts.image_size) + 2 * 4,
            "compact": example_bytes(side),
            "compact_gzip_stored": (round(sum(stored) / sum(examples.values()))
                                    if sum(examples.values()) else None)},
        "seconds": clock.seconds()}


def _skipped_words(prepared: dict) -> str:
    examples = prepared["examples"]
    words = [f"{n} {split}" for split, n in examples.items()]
    words += [f"{n} {name.replace('_', ' ')}" for name, n in sorted(prepared["skipped"].items())
              if n]
    return "labelled examples: " + ", ".join(words)


def run(argv: Optional[List[str]] = None, test_pipeline=None) -> dict:
    options = PipelineOptions(argv)
    opts = options.view_as(TrainOptions)
    output_dir = runtime.output_dir_of(options)
    inputs = [s for s in opts.inputs.split(",") if s]
    if opts.baseline == "smap_gldas_nn":
        inputs = ["smap", "gldas"]
    training.input_masks(inputs)  # validates the names
    input_data_path = options.view_as(runtime.ShardInputOptions).input_data_path
    if not runtime.is_dry_run(options):
        paths = runtime.input_shards(input_data_path)
        runtime.refuse_overwrite(paths, [FileSystems.join(output_dir, "*")],
                                 "--input_data_path", "--output_dir")
        runtime.check_image_size(paths[0], opts.image_size)
        runtime.check_writable(output_dir, "--output_dir")
    runtime.apply_local_defaults(options)
    clock = runtime.Stopwatch()
    summary_path = FileSystems.join(output_dir, "preprocessing.json")
    if opts.resume and FileSystems.exists(summary_path):
        with FileSystems.open(summary_path) as f:
            prepared = json.load(f)
        print(f"train: --resume: using the preprocessed data of {summary_path}")
    else:
        prepared = preprocess(options, test_pipeline, input_data_path, output_dir, opts)
        if prepared.get("dry_run"):
            return prepared
        if not prepared["examples"]["train"]:
            raise runtime.InputError(
                f"no labelled example of {input_data_path} is in the train split "
                f"({_skipped_words(prepared)}): merge ISMN labels first "
                f"(combine_ismn_data) or check --train_fraction")
        files.write_json_atomically(summary_path, prepared)
    config = training.FitConfig(inputs, opts.baseline, opts.epochs, opts.train_batch_size,
                                opts.learning_rate, opts.seed, opts.patience, opts.resume,
                                opts.shuffle_buffer_mb)
    try:
        report, _ = training.train_and_export(output_dir, opts.image_size, config,
                                              prepared["examples"]["train"])
    except training.TrainingDiverged as e:
        raise runtime.InputError(str(e)) from e
    report.update(transform_seconds=prepared["seconds"], total_seconds=clock.seconds(),
                  input_data_path=input_data_path, preprocessing=prepared)
    files.write_json_atomically(FileSystems.join(output_dir, "training.json"), report)
    nonfinite = prepared.get("skipped", {}).get("nonfinite_label_skipped", 0)
    if nonfinite:
        print(f"train: {nonfinite} examples with a NaN or infinite label were left out")
    print(f"trained on {report['examples']['train']} examples in {report['train_seconds']:.0f} s; "
          f"validation RMSE {report['rmse'].get('validation')}, train-mean baseline "
          f"{report['rmse_train_mean'].get('validation')}; model: {report['model_dir']}")
    if opts.run_evaluation:
        runtime.run_pipeline(
            options, None, lambda p: build_evaluation(p, input_data_path, report["model_dir"],
                                                       output_dir, opts), "train evaluation")
        metrics_json = FileSystems.join(output_dir, "evaluation", "metrics.json")
        with FileSystems.open(metrics_json) as f:
            report["evaluation"] = json.load(f)["pooled"]
        print(f"evaluation of the exported model: "
              f"{FileSystems.join(output_dir, 'evaluation', 'metrics.md')}")
    return report


def main(argv: Optional[List[str]] = None) -> int:
    return runtime.cli_main(
        "train", run, lambda _: 0, argv,
        option_classes=(runtime.ShardInputOptions, runtime.OutputDirOptions, TrainOptions),
        description=__doc__.split("\n\n")[0])


if __name__ == "__main__":
    sys.exit(main())
