"""Evaluation as one PTransform (``pipelines.evaluate``).

``Evaluate``: rows -> ``(split, sensor, predictor)`` pairs (``inputs``) ->
streaming statistics per sensor, pooled per split, per network and per
breakdown group, density grids (``metrics``); each sensor's series, grouped
on its own, -> anomaly skill and paired statistics (``series``) -> one
``Report`` (``report``) -> the report files (``report_files``). Only
aggregates cross the final step; rows are never collected (a sensor's
series is the largest group).
"""

import dataclasses
from typing import Optional

import apache_beam as beam

from transforms.evaluation import inputs, metrics, report, report_files, series
from transforms.evaluation.config import EvaluationConfig
from transforms.dataset.splits import SplitConfig, network_of, year_of


def _series_point(row, extra, splits: SplitConfig):
    timestamp = float(row["timestamp"])
    return row["sensor_id"], {"timestamp": timestamp, "label": float(row["label"]),
                              "split": splits.split(str(row["sensor_id"]), timestamp),
                              "predictors": inputs.predictor_values(row, extra)}


def _labelled_year(row):
    """The UTC year of a labelled row with a timestamp (what a time split sees)."""
    if row.get("label") in (None, "") or row.get("timestamp") in (None, ""):
        return
    year = year_of(float(row["timestamp"]))
    if year is not None:
        yield year


@dataclasses.dataclass
class Evaluate(beam.PTransform):
    """Rows (dicts with ``sensor_id``, ``timestamp``, ``label`` and predictor
    columns) -> the report files in ``config.output_dir`` (their paths).

    Attributes:
        config: the evaluation's settings (output folder, extra columns,
            minimum pairs per sensor, plotted sensors, intervals, reference
            predictor, anomaly window).
        splits: the split rule (``config.splits()``: it may read a file).
        collisions: ``(shard name, examples)`` of input shard names shared
            by different examples (``DropDuplicateRows``' ``collisions``),
            reported in ``metrics.json``; None: none were looked for.
    """

    config: EvaluationConfig
    splits: SplitConfig = SplitConfig()
    collisions: Optional[beam.PCollection] = None

    def expand(self, rows):
        c = self.config
        extra = c.extra
        ci_level = c.ci_level
        pairs = rows | "Key pairs" >> beam.FlatMap(inputs.keyed_pairs, self.splits, extra)
        per_sensor = pairs | "Per-sensor stats" >> beam.CombinePerKey(metrics.PairStatsFn())
        skills = (rows
                  | "Key series points" >> beam.FlatMap(inputs.keyed_points, self.splits, extra)
                  | "Series per sensor" >> beam.GroupByKey()
                  | "Series skill" >> beam.MapTuple(
                      series.sensor_skill, window_days=c.anomaly_window_days,
                      reference=c.reference_predictor))
        groups = (rows
                  | "Key breakdown pairs" >> beam.FlatMap(inputs.keyed_group_pairs, self.splits, extra)
                  | "Breakdown stats" >> beam.CombinePerKey(metrics.PairStatsFn())
                  | "Breakdown metrics" >> beam.Map(report.group_row, ci_level))
        pooled = (per_sensor
                  | "By split" >> beam.Map(lambda kv: ((kv[0].split, kv[0].predictor), kv[1]))
                  | "Pooled stats" >> beam.CombinePerKey(metrics.MergeStatsFn()))
        networks = (per_sensor
                    | "By network" >> beam.Map(
                        lambda kv: ((kv[0].split, network_of(kv[0].sensor_id), kv[0].predictor),
                                    kv[1]))
                    | "Network stats" >> beam.CombinePerKey(metrics.MergeStatsFn()))
        statuses = (rows
                    | "Row status" >> beam.Map(inputs.row_status, self.splits, extra)
                    | "Count statuses" >> beam.combiners.Count.PerElement())
        sensor_rows = per_sensor | "Per-sensor metrics" >> beam.Map(report.metrics_row, ci_level)
        hists = (pairs
                 | "Pairs by split" >> beam.Map(lambda kv: ((kv[0].split, kv[0].predictor), kv[1]))
                 | "Density grids" >> beam.CombinePerKey(metrics.Hist2dFn()))
        top = (sensor_rows
               | "Sensor sizes" >> beam.Map(lambda r: (r["sensor_id"], r["n"]))
               | "Largest n per sensor" >> beam.CombinePerKey(max)
               | "Size first" >> beam.Map(lambda kv: (kv[1], kv[0]))
               | "Largest sensors" >> beam.combiners.Top.Of(c.timeseries_sensors)
               | "Sensor ids" >> beam.Map(lambda top: [sensor for _, sensor in top]))
        series_points = (rows
                  | "Rows of largest sensors" >> beam.Filter(
                      lambda r, chosen: r.get("label") not in (None, "")
                      and r.get("sensor_id") in chosen, beam.pvalue.AsSingleton(top))
                  | "Series points" >> beam.Map(_series_point, extra, self.splits))
        years = (rows
                 | "Labelled years" >> beam.FlatMap(_labelled_year)
                 | "Count years" >> beam.combiners.Count.PerElement())
        collisions = (self.collisions if self.collisions is not None
                      else rows.pipeline | "No collisions looked for" >> beam.Create([]))
        side = beam.pvalue.AsList
        return (rows.pipeline
                | "Report trigger" >> beam.Create([None])
                | "Assemble report" >> beam.Map(
                    report.build_report, side(pooled), side(networks), side(sensor_rows),
                    side(hists), side(series_points), side(skills), side(groups), side(statuses),
                    side(years), side(collisions),
                    min_samples=c.min_samples_per_sensor, table_splits=list(c.table_splits),
                    uncertainty=c.uncertainty, reference=c.reference_predictor,
                    anomaly_window_days=c.anomaly_window_days)
                | "Write report" >> beam.FlatMap(report_files.write_report, c.output_dir))
