"""Validate a soil-moisture map against the ISMN in-situ sensors on it (QA4SM-style).

A cube of maps through time (``predict_map``'s Zarr store: every time), or
one GeoTIFF map (its ``time`` tag, or ``--time``)::

    python -m pipelines.validate_map --map cube.zarr \
        --ismn_data_path ~/Downloads/ISMN_2015_2022.zip --output_dir validation/

    python -m pipelines.validate_map --map map.tif --time 2021-06-01T10:00 \
        --ismn_data_path ~/Downloads/ISMN_2015_2022.zip --output_dir validation/

On Dataflow add ``--runner DataflowRunner --project my-project --region
us-central1 --temp_location gs://my-bucket/tmp --setup_file ./setup.py`` with
``gs://`` paths (two jobs: the validation, then evaluate's report).

Every ISMN station with a 0.05 m soil-moisture sensor (the label merge's
rule) is placed on the map (the pixel holding it); at every map time its
one reading within +- ``--time_tolerance_minutes`` of the time (the merge's
window rule) and the map's value there make a pair. Outputs in
``--output_dir``: ``pairs.csv`` (run_inference's prediction rows: the map
value as ``prediction``, the reading as ``label``), ``stations.csv`` (each
station's pixel and outcome counts), ``validation.json`` (the counts by
cause: ``outside_map`` stations; ``paired``, ``nan_pixel``, ``no_reading``,
``several_readings`` station-times) and evaluate's report on every pair
(``--split_by none``: ``metrics.md`` with a "Stations" section added,
``metrics.json``, ``per_sensor.csv``, plots). Exits 2 on a usage error (a
GeoTIFF without a time, ``--time`` with a cube), 1 when an input is
unusable (not a cube nor a GeoTIFF, an unreadable ISMN download, one
without a 0.05 m sensor) or there is nothing to evaluate (no station on the
map, no pair), with one line saying why.
"""

import sys
from typing import List, Optional

from apache_beam.options.pipeline_options import PipelineOptions

from transforms import evaluation, runtime, validation


class ValidateMapOptions(PipelineOptions):
    """validate_map's own flags (``--output_dir`` is ``runtime.OutputDirOptions``'s;
    those it shares with combine_ismn_data and evaluate are defined once,
    with the same defaults, whichever command's options come first)."""

    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument("--map", default=None,
                            help="the map (required): a soil-moisture cube (Zarr store, every "
                                 "time validated) or a GeoTIFF map, local or gs://")
        parser.add_argument("--time", default=None,
                            help="a GeoTIFF map's time, ISO 8601 UTC (2021-06-01T10:00; "
                                 "default: the map's time tag); not for a cube")
        runtime.add_ismn_arguments(parser)  # as combine_ismn_data's
        runtime.add_report_arguments(parser)  # as evaluate's

OPTION_CLASSES = (runtime.OutputDirOptions, ValidateMapOptions)


def evaluation_config(config: validation.ValidationConfig) -> evaluation.EvaluationConfig:
    """evaluate's settings for the pairs: every pair in one split (``none``);
    SMAP and GLDAS beside the map for a cube (a GeoTIFF map holds neither)."""
    return evaluation.EvaluationConfig(
        output_dir=config.output_dir, predictions=config.output(validation.PAIRS_FILE),
        split_by="none", baselines="smap,gldas" if validation.is_cube_path(config.map)
        else "none",
        min_samples_per_sensor=config.min_samples_per_sensor,
        timeseries_sensors=config.timeseries_sensors, ci_level=config.ci_level,
        bootstrap_samples=config.bootstrap_samples, bootstrap_seed=config.bootstrap_seed,
        anomaly_window_days=config.anomaly_window_days)


def run(argv: Optional[List[str]] = None) -> dict:
    """Validate, then evaluate the pairs; returns ``{"validation":
    validation.json's content, "metrics": evaluate's metrics}`` (or both
    dry runs' reports)."""
    options = PipelineOptions(argv)
    config = validation.ValidationConfig.from_options(options)
    summary = validation.run_validation(config, options, earlier=evaluation.REPORT_FILES)
    if summary.get("dry_run"):
        return {"validation": summary,
                "metrics": evaluation.run_evaluation(evaluation_config(config), options)}
    metrics = evaluation.run_evaluation(evaluation_config(config), options)
    if "metrics.md" in metrics["files"]:
        validation.append_stations_section(config.output_dir, summary)
    out, err = evaluation.report_lines(metrics, config.output_dir)
    print("\n".join(out + [validation.summary_line(summary, config.output_dir)]))
    for line in err:
        print(line, file=sys.stderr)
    return {"validation": summary, "metrics": metrics}


def exit_code(result: dict) -> int:
    """1 when evaluate could evaluate nothing, else 0."""
    return evaluation.exit_code(result["metrics"])


def main(argv: Optional[List[str]] = None) -> int:
    return runtime.cli_main("validate_map", run, exit_code, argv,
                            option_classes=OPTION_CLASSES, description=__doc__.split("\n\n")[0])


if __name__ == "__main__":
    runtime.exit_process(main())
