"""Evaluate predictions against in-situ soil moisture: the paper's metrics table.

From ``run_inference`` output (CSV or Parquet), evaluating the model, SMAP
(``smap_sm/255``), GLDAS (``gldas_sm/255``) and any extra prediction columns
side by side::

    python -m pipelines.evaluate --predictions 'predictions/pred-*.csv' \
        --output_dir evaluation/

Or from shards directly (the SMAP and GLDAS baselines alone)::

    python -m pipelines.evaluate \
        --input_data_path 'merged/data-*-of-00500.tfrecord.gz' --output_dir evaluation/

On Dataflow add ``--runner DataflowRunner --project my-project --region
us-central1 --temp_location gs://my-bucket/tmp --setup_file ./setup.py`` with
``gs://`` paths.

Outputs in ``--output_dir``: ``metrics.md`` (tables laid out like the
published README's: pooled, per-sensor mean, per-sensor median),
``metrics.json`` (also per network), ``per_sensor.csv``, and PNG plots
(``scatter_<predictor>.png``, ``per_sensor_r.png``, ``per_sensor_ubrmse.png``,
``timeseries.png``, ``breakdown_<name>.png``), ``per_group.csv`` (the
breakdowns) and ``bad_rows.jsonl`` (every row left out, with its kind and
reason). Splits: ``--split_by sensor`` hashes ``sensor_id`` (see
``transforms.dataset.splits.sensor_split``), ``--split_by file`` reads
``--split_file`` (``sensor_id,split`` lines), ``--split_by time`` holds out
``--test_years`` (and ``--validation_years``), ``--split_by none`` evaluates
all examples together.
"""

import sys
from typing import List, Optional

from apache_beam.options.pipeline_options import PipelineOptions

from transforms import evaluation, runtime


class EvaluateOptions(PipelineOptions):
    """evaluate's own flags (``--output_dir`` is ``runtime.OutputDirOptions``'s)."""

    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument("--predictions", default=None,
                            help="glob of run_inference outputs (.csv or .parquet); without it, "
                                 "--input_data_path's shards give the SMAP and GLDAS "
                                 "baselines alone")
        parser.add_argument("--split_by", choices=("sensor", "file", "time", "none"),
                            default="sensor",
                            help="sensor: hash of sensor_id; file: --split_file; time: the "
                                 "year of each example (--test_years, --validation_years); "
                                 "none: all examples together")
        parser.add_argument("--split_file", default=None,
                            help="--split_by file: a file of sensor_id,split lines")
        parser.add_argument("--test_years", default="",
                            help="--split_by time: comma-separated years held out as test "
                                 "(default: none)")
        parser.add_argument("--validation_years", default="",
                            help="--split_by time: years for validation (the rest: train; "
                                 "default: none)")
        runtime.add_split_fraction_arguments(parser)
        parser.add_argument("--extra_columns", default="",
                            help="comma-separated extra prediction columns to evaluate (default: "
                                 "none)")
        runtime.add_report_arguments(parser)  # shared with validate_map
        parser.add_argument("--reference_predictor", default="model",
                            help="the predictor compared with every other on the same pairs")
        parser.add_argument("--baselines", default="smap,gldas",
                            help="smap,gldas, one of them, or none")


OPTION_CLASSES = (runtime.ShardInputOptions, runtime.OutputDirOptions, EvaluateOptions)


def run(argv: Optional[List[str]] = None, test_pipeline=None) -> dict:
    """Evaluate; returns ``metrics.json``'s content (with ``usable`` False
    when nothing could be evaluated), or a dry run's report."""
    options = PipelineOptions(argv)
    config = evaluation.EvaluationConfig.from_options(options)
    metrics = evaluation.run_evaluation(config, options, test_pipeline)
    if metrics.get("dry_run"):
        return metrics
    out, err = evaluation.report_lines(metrics, config.output_dir)
    if out:
        print("\n".join(out))
    for line in err:
        print(line, file=sys.stderr)
    return metrics


def main(argv: Optional[List[str]] = None) -> int:
    return runtime.cli_main("evaluate", run, evaluation.exit_code, argv,
                            option_classes=OPTION_CLASSES, description=__doc__.split("\n\n")[0])


if __name__ == "__main__":
    sys.exit(main())
