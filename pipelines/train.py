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

import sys
from typing import List, Optional

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from model_runner.model import SoilMoistureModelHandler, keyed_examples
from transforms import evaluation, inference, runtime, training
from transforms.dataset import tfrecord_io
from transforms.dataset.keys import PredictionRow


class TrainOptions(PipelineOptions):
    """train's own flags (``--output_dir`` is ``runtime.OutputDirOptions``'s)."""

    @classmethod
    def _add_argparse_args(cls, parser):
        runtime.add_image_size_argument(parser)
        parser.add_argument("--inputs", default=",".join(training.SOURCES),
                            help="comma-separated subset of " + ",".join(training.SOURCES))
        parser.add_argument("--baseline", choices=("", "smap_gldas_nn"), default="",
                            help="smap_gldas_nn: the small MLP baseline over SMAP and GLDAS "
                                 "(default: none, the fusion model)")
        parser.add_argument("--epochs", type=int, default=20,
                            help="passes over the train split (fewer with --patience)")
        parser.add_argument("--train_batch_size", type=int, default=16,
                            help="examples per training step")
        parser.add_argument("--learning_rate", type=float, default=3e-3,
                            help="Adam's learning rate")
        parser.add_argument("--seed", type=int, default=0,
                            help="random seed of the weights' initialisation and the shuffling")
        runtime.add_split_fraction_arguments(parser)
        parser.add_argument("--patience", type=int, default=0,
                            help="stop after this many epochs without a better validation RMSE "
                                 "and export the best epoch's weights (0: train every epoch)")
        parser.add_argument("--resume", action="store_true",
                            help="continue from <output_dir>/checkpoints/last.npz, reusing the "
                                 "preprocessed data when preprocessing.json is there")
        parser.add_argument("--shuffle_buffer_mb", type=float,
                            default=training.DEFAULT_SHUFFLE_BUFFER_MB,
                            help="memory for shuffling training examples")
        parser.add_argument("--run_evaluation", action="store_true",
                            help="then run run_inference and evaluate with the exported model")


OPTION_CLASSES = (runtime.ShardInputOptions, runtime.OutputDirOptions, TrainOptions)


def build_evaluation(p, config: training.TrainingConfig, model_dir: str) -> None:
    """``--run_evaluation``: the exported model's predictions over the input
    shards (``<output_dir>/evaluation/pred-*.csv``) and the evaluation report
    of them in ``<output_dir>/evaluation/``, in one pipeline."""
    folder = FileSystems.join(config.output_dir, "evaluation")
    handler = SoilMoistureModelHandler(model_dir, image_size=config.image_size,
                                       metrics_namespace=inference.NAMESPACE)
    predicted = (p
                 | "Match shards" >> tfrecord_io.MatchShards(config.input_data_path)
                 | "Predict" >> inference.PredictShards(keyed_examples(handler)))
    _ = predicted | "Write predictions" >> inference.WritePredictions(
        FileSystems.join(folder, "pred"), "csv")
    report = evaluation.EvaluationConfig(
        output_dir=folder, predictions=FileSystems.join(folder, "pred-*.csv"),
        train_fraction=config.train_fraction, validation_fraction=config.validation_fraction,
        min_samples_per_sensor=3)
    _ = (predicted["rows"]
         | "Rows as dicts" >> beam.Map(PredictionRow.to_dict)
         | "Evaluate" >> evaluation.Evaluate(report, config.splits))


def run(argv: Optional[List[str]] = None, test_pipeline=None) -> dict:
    """Train (and with ``--run_evaluation`` evaluate); returns the training report."""
    options = PipelineOptions(argv)
    config = training.TrainingConfig.from_options(options)
    report = training.run_training(config, options, test_pipeline)
    if report.get("dry_run"):
        return report
    print("\n".join(training.report_lines(report)))
    if config.run_evaluation:
        runtime.run_pipeline(options, None, lambda p: build_evaluation(p, config,
                                                                       report["model_dir"]),
                             "train evaluation")
        report["evaluation"] = evaluation.read_metrics(
            FileSystems.join(config.output_dir, "evaluation"))["pooled"]
        print(f"evaluation of the exported model: "
              f"{FileSystems.join(config.output_dir, 'evaluation', 'metrics.md')}")
    return report


def main(argv: Optional[List[str]] = None) -> int:
    return runtime.cli_main("train", run, lambda _: 0, argv, option_classes=OPTION_CLASSES,
                            description=__doc__.split("\n\n")[0])


if __name__ == "__main__":
    sys.exit(main())
