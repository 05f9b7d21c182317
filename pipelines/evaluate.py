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
``timeseries.png``). Splits: ``--split_by sensor`` hashes ``sensor_id`` (see
``transforms.dataset.splits.sensor_split``), ``--split_by file`` reads
``--split_file`` (``sensor_id,split`` lines), ``--split_by none`` evaluates all
examples together.
"""

import csv
import io
import json
import typing
import sys
from typing import List, Optional

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from transforms import evaluation, runtime

from transforms.dataset import files, tfrecord_io


class EvaluateOptions(PipelineOptions):
    """evaluate's own flags (``--output_dir`` is ``runtime.OutputDirOptions``'s)."""

    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument("--predictions", default=None,
                            help="glob of run_inference outputs (.csv or .parquet)")
        parser.add_argument("--split_by", choices=("sensor", "file", "time", "none"),
                            default="sensor",
                            help="sensor: hash of sensor_id; file: --split_file; time: the "
                                 "year of each example (--test_years, --validation_years); "
                                 "none: all examples together")
        parser.add_argument("--split_file", default=None, help="sensor_id,split lines")
        parser.add_argument("--test_years", default="",
                            help="--split_by time: comma-separated years held out as test")
        parser.add_argument("--validation_years", default="",
                            help="--split_by time: years for validation (the rest: train)")
        runtime.add_shared_argument(parser, "--train_fraction", type=float, default=0.7)
        runtime.add_shared_argument(parser, "--validation_fraction", type=float, default=0.15)
        parser.add_argument("--extra_columns", default="",
                            help="comma-separated extra prediction columns to evaluate")
        parser.add_argument("--min_samples_per_sensor", type=int, default=10)
        parser.add_argument("--timeseries_sensors", type=int, default=4,
                            help="plot the series of this many sensors with most data")
        parser.add_argument("--ci_level", type=float, default=0.95,
                            help="level of every confidence interval (analytical and bootstrap)")
        parser.add_argument("--bootstrap_samples", type=int, default=1000,
                            help="resamples of sensors for the intervals of per-sensor "
                                 "averages and of the paired comparison (0: none)")
        parser.add_argument("--bootstrap_seed", type=int, default=0)
        parser.add_argument("--reference_predictor", default="model",
                            help="the predictor compared with every other on the same pairs")
        parser.add_argument("--anomaly_window_days", type=float, default=35.0,
                            help="moving-average window of the anomalies (days, centred)")


def _split_config(opts: EvaluateOptions) -> evaluation.SplitConfig:
    if opts.split_by == "file":
        if not opts.split_file:
            raise runtime.UsageError("--split_by file needs --split_file (sensor_id,split lines)")
        with FileSystems.open(opts.split_file, compression_type=CompressionTypes.UNCOMPRESSED) as f:
            mapping = evaluation.read_split_file(f.read().decode())
        return evaluation.SplitConfig(by_sensor_file=mapping)
    if opts.split_by == "none":
        return evaluation.SplitConfig(single_split="all")
    if opts.split_by == "time":
        test, validation = _years(opts.test_years, "--test_years"), _years(
            opts.validation_years, "--validation_years")
        if not test:
            raise runtime.UsageError("--split_by time needs --test_years (e.g. 2021)")
        return evaluation.SplitConfig(test_years=test, validation_years=validation)
    return evaluation.SplitConfig(opts.train_fraction, opts.validation_fraction)


def _years(text: str, flag: str) -> tuple:
    try:
        return tuple(int(y) for y in text.split(",") if y.strip())
    except ValueError:
        raise runtime.UsageError(f"{flag} takes comma-separated years, not {text!r}") from None


def build(p: beam.Pipeline, input_data_path: Optional[str], output_dir: str,
          opts: EvaluateOptions):
    if opts.predictions:
        if opts.predictions.endswith(".parquet") or opts.predictions.endswith(".parquet*"):
            rows = p | "Read predictions" >> beam.io.ReadFromParquet(opts.predictions, validate=False)
        else:
            rows = (p
                    | "Match predictions" >> fileio.MatchFiles(opts.predictions)
                    | "Open" >> fileio.ReadMatches()
                    | "Parse CSV" >> beam.FlatMap(evaluation.parse_csv_readable))
    else:
        rows = (p
                | "Match shards" >> tfrecord_io.MatchShards(input_data_path)
                | "Spread shards" >> beam.Reshuffle()
                | "Read shard rows" >> beam.FlatMap(evaluation.shard_rows))
    splits = _split_config(opts)
    table_splits = ("all",) if opts.split_by == "none" else ("validation", "test")
    extra = _extra(opts)
    bad = []
    if opts.predictions:
        unique = rows | "Drop duplicate rows" >> evaluation.DropDuplicateRows()
        rows, bad = unique["rows"], [unique["bad"]]
    checked = rows | "Check rows" >> beam.ParDo(
        evaluation.CheckRowsFn(extra, with_model=bool(opts.predictions))).with_output_types(
        typing.Any).with_outputs(evaluation.CheckRowsFn.BAD, main="rows")
    ((checked.bad, *bad)
     | "All bad rows" >> beam.Flatten()
     | "Format bad rows" >> beam.Map(lambda r: json.dumps(r, sort_keys=True))
     | "Write bad rows" >> beam.io.WriteToText(
         FileSystems.join(output_dir, "bad_rows"), file_name_suffix=".jsonl",
         num_shards=1, shard_name_template=""))
    return checked.rows | "Evaluate" >> evaluation.Evaluate(
        output_dir, splits, extra, opts.min_samples_per_sensor, table_splits,
        opts.timeseries_sensors,
        evaluation.Uncertainty(opts.ci_level, opts.bootstrap_samples, opts.bootstrap_seed),
        opts.reference_predictor, opts.anomaly_window_days)


def _extra(opts: EvaluateOptions):
    return tuple(c for c in opts.extra_columns.split(",") if c)


def _first_lines(path: str, n: int = 2) -> List[str]:
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        head = f.read(1 << 16).decode("utf-8", "replace")
    return head.splitlines()[:n]


def check_inputs(opts: EvaluateOptions, input_data_path: Optional[str]) -> None:
    """Before anything runs: the input files exist, and CSV predictions have
    the columns and at least one row (raises InputError naming the file)."""
    if not opts.predictions:
        runtime.input_shards(input_data_path)
        return
    pattern = opts.predictions
    paths = sorted(m.path for m in FileSystems.match([pattern])[0].metadata_list)
    if not paths:
        raise runtime.InputError(f"no files match {pattern}")
    if opts.predictions.endswith((".parquet", ".parquet*")):
        for path in paths:
            _check_parquet(path, _extra(opts))
        return
    with_rows = 0
    for path in paths:
        lines = _first_lines(path)
        _check_extra_columns(path, next(csv.reader(lines[:1]), []), _extra(opts))
        problem = evaluation.header_problem(lines, _extra(opts))
        if problem:
            raise runtime.InputError(f"{path} {problem}")
        with_rows += len(lines) > 1
    if not with_rows:
        raise runtime.InputError(f"{', '.join(paths[:3])}{' ...' if len(paths) > 3 else ''}: "
                                 f"a header but no rows")


BAD_ROW_WORDS = {"unparseable": "could not be parsed",
                 "nonfinite": "hold a NaN or infinite label or prediction",
                 "incomplete": "lack a predictor's value",
                 "duplicate": "repeat an example already read (stale prediction files?)"}


def _check_parquet(path: str, extra) -> None:
    """A Parquet file opens and its schema has what evaluation needs (else
    InputError naming the file), read from its footer only."""
    import pyarrow.parquet as pq

    try:
        with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
            columns = pq.ParquetFile(f).schema_arrow.names
    except Exception as e:  # noqa: BLE001 - pyarrow's errors name neither file nor cause well
        raise runtime.InputError(f"{path} is not a readable Parquet file: "
                                 f"{type(e).__name__}: {e}") from e
    _check_extra_columns(path, columns, extra)
    header = io.StringIO()
    csv.writer(header).writerow(columns)
    problem = evaluation.header_problem([header.getvalue().strip()], extra)
    if problem:
        problem = problem.split(" (first line")[0].replace("header", "schema", 1)
        raise runtime.InputError(f"{path} {problem} (its columns: {', '.join(columns)})")


def _check_extra_columns(path: str, columns: List[str], extra) -> None:
    missing = [c for c in extra if c not in columns]
    if missing and columns:
        raise runtime.UsageError(f"--extra_columns {','.join(missing)}: no such column in "
                                 f"{path} (its columns: {', '.join(columns)})")


def check_predictors(opts: EvaluateOptions) -> None:
    """``--reference_predictor`` names a predictor (else UsageError); the
    default, ``model``, compares nothing when shards are evaluated without
    predictions."""
    known = ["model", "smap", "gldas", *_extra(opts)]
    if opts.reference_predictor not in known:
        raise runtime.UsageError(f"--reference_predictor {opts.reference_predictor} is not "
                                 f"evaluated here: one of {', '.join(known)}")


def refuse_overwrite(opts: EvaluateOptions, output_dir: str) -> None:
    """No input file is one of the report's own files in ``output_dir``."""
    pattern = opts.predictions
    if not pattern:
        return
    inputs = [m.path for m in FileSystems.match([pattern])[0].metadata_list]
    runtime.refuse_overwrite(inputs, [FileSystems.join(output_dir, name)
                                      for name in evaluation.REPORT_FILES],
                             "--predictions", "--output_dir")


def run(argv: Optional[List[str]] = None, test_pipeline=None) -> dict:
    options = PipelineOptions(argv)
    opts = options.view_as(EvaluateOptions)
    output_dir = runtime.output_dir_of(options)
    input_data_path = options.view_as(runtime.ShardInputOptions).input_data_path
    explicit = options.get_all_options(drop_default=True)
    if not opts.predictions and "input_data_path" not in explicit:
        raise runtime.UsageError("give --predictions (run_inference output) or --input_data_path")
    check_predictors(opts)
    splits = _split_config(opts)  # a usage error in the split flags before anything runs
    if not runtime.is_dry_run(options):
        refuse_overwrite(opts, output_dir)
        check_inputs(opts, input_data_path)
        runtime.check_writable(output_dir, "--output_dir")
    runtime.apply_local_defaults(options)
    _, dry_run = runtime.run_pipeline(
        options, test_pipeline, lambda p: build(p, input_data_path, output_dir, opts), "evaluate")
    if dry_run:
        return dry_run
    with FileSystems.open(FileSystems.join(output_dir, "metrics.md"),
                          compression_type=CompressionTypes.UNCOMPRESSED) as f:
        table = f.read().decode()
    print(table)
    with FileSystems.open(FileSystems.join(output_dir, "metrics.json"),
                          compression_type=CompressionTypes.UNCOMPRESSED) as f:
        metrics = json.load(f)
    plots = [FileSystems.join(output_dir, name) for name in metrics["files"]
             if name.endswith(".png")]
    print(f"Report: {FileSystems.join(output_dir, 'metrics.md')} (and metrics.json, "
          f"per_sensor.csv, per_group.csv); plots: {', '.join(plots)}")
    stale = evaluation.stale_report_files(output_dir, metrics["files"])
    if stale:
        print(f"NOTE: {len(stale)} files in {output_dir} are from an earlier run, not this one: "
              f"{', '.join(stale)}", file=sys.stderr)
    bad = files.read_json_lines(FileSystems.join(output_dir, "bad_rows.jsonl"))
    set_aside = {kind: sum(b.get("kind", "unparseable") == kind for b in bad)
                 for kind in evaluation.BAD_ROW_KINDS}
    metrics.update(rows_unparseable=set_aside["unparseable"], rows_set_aside=set_aside,
                   stale_files=stale)
    files.write_json_atomically(FileSystems.join(output_dir, "metrics.json"), metrics)
    for kind, n in set_aside.items():
        if n:
            print(f"{n} rows {BAD_ROW_WORDS[kind]} and were left out (all in "
                  f"{FileSystems.join(output_dir, 'bad_rows.jsonl')}):", file=sys.stderr)
            for b in [b for b in bad if b.get("kind", "unparseable") == kind][:5]:
                print(f"  {b['source']}: {b['reason']}", file=sys.stderr)
    if not any(m.get("n") for split in metrics["pooled"].values() for m in split.values()):
        print(f"evaluate: error: no row of {opts.predictions or input_data_path} has a label and "
              f"a prediction to evaluate", file=sys.stderr)
        metrics["usable"] = False
    elif splits.test_years:
        empty = evaluation.empty_time_splits(metrics, splits)
        if empty:
            print(f"evaluate: error: {empty}", file=sys.stderr)
            metrics["usable"] = False
    return metrics


def exit_code(metrics: dict) -> int:
    return 1 if metrics.get("usable") is False else 0


def main(argv: Optional[List[str]] = None) -> int:
    return runtime.cli_main(
        "evaluate", run, exit_code, argv,
        option_classes=(runtime.ShardInputOptions, runtime.OutputDirOptions, EvaluateOptions),
        description=__doc__.split("\n\n")[0])


if __name__ == "__main__":
    sys.exit(main())
