"""Evaluation as one PTransform (``pipelines.evaluate``).

``Evaluate``: rows -> ``(split, sensor, predictor)`` pairs (``inputs``) ->
streaming statistics per sensor, pooled per split and per network, density
grids (``metrics``) -> one ``Report`` (``report``) -> the report files
(``report_files``). Only aggregates cross the final step; rows are never
collected.
"""

import dataclasses
from typing import Tuple

import apache_beam as beam

from transforms.evaluation import inputs, metrics, report, report_files
from transforms.dataset.splits import SplitConfig, network_of


def _series_point(row, extra):
    return row["sensor_id"], {"timestamp": float(row["timestamp"]), "label": float(row["label"]),
                              "predictors": inputs.predictor_values(row, extra)}


@dataclasses.dataclass
class Evaluate(beam.PTransform):
    """Rows (dicts with ``sensor_id``, ``timestamp``, ``label`` and predictor
    columns) -> the report files in ``output_dir`` (their paths)."""

    output_dir: str
    splits: SplitConfig = SplitConfig()
    extra_columns: Tuple[str, ...] = ()
    min_samples_per_sensor: int = 10
    table_splits: Tuple[str, ...] = ("validation", "test")
    series_sensors: int = 4

    def expand(self, rows):
        extra = self.extra_columns
        pairs = rows | "Key pairs" >> beam.FlatMap(inputs.keyed_pairs, self.splits, extra)
        per_sensor = pairs | "Per-sensor stats" >> beam.CombinePerKey(metrics.PairStatsFn())
        pooled = (per_sensor
                  | "By split" >> beam.Map(lambda kv: ((kv[0][0], kv[0][2]), kv[1]))
                  | "Pooled stats" >> beam.CombinePerKey(metrics.MergeStatsFn()))
        networks = (per_sensor
                    | "By network" >> beam.Map(
                        lambda kv: ((kv[0][0], network_of(kv[0][1]), kv[0][2]), kv[1]))
                    | "Network stats" >> beam.CombinePerKey(metrics.MergeStatsFn()))
        sensor_rows = per_sensor | "Per-sensor metrics" >> beam.Map(report.metrics_row)
        hists = (pairs
                 | "Pairs by split" >> beam.Map(lambda kv: ((kv[0][0], kv[0][2]), kv[1]))
                 | "Density grids" >> beam.CombinePerKey(metrics.Hist2dFn()))
        top = (sensor_rows
               | "Sensor sizes" >> beam.Map(lambda r: (r["sensor_id"], r["n"]))
               | "Largest n per sensor" >> beam.CombinePerKey(max)
               | "Size first" >> beam.Map(lambda kv: (kv[1], kv[0]))
               | "Largest sensors" >> beam.combiners.Top.Of(self.series_sensors)
               | "Sensor ids" >> beam.Map(lambda top: [sensor for _, sensor in top]))
        series = (rows
                  | "Rows of largest sensors" >> beam.Filter(
                      lambda r, chosen: r.get("label") not in (None, "")
                      and r.get("sensor_id") in chosen, beam.pvalue.AsSingleton(top))
                  | "Series points" >> beam.Map(_series_point, extra))
        side = beam.pvalue.AsList
        return (rows.pipeline
                | "Report trigger" >> beam.Create([None])
                | "Assemble report" >> beam.Map(
                    report.build_report, side(pooled), side(networks), side(sensor_rows),
                    side(hists), side(series), min_samples=self.min_samples_per_sensor,
                    table_splits=list(self.table_splits))
                | "Write report" >> beam.FlatMap(report_files.write_report, self.output_dir))
