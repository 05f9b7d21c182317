"""Evaluation (``pipelines.evaluate``): the paper's metrics table and more.

``pipeline.Evaluate`` wires ``inputs`` (rows and their checks -> keyed
pairs, split by the rule every tool shares, ``transforms.dataset.splits``),
``metrics`` (streaming statistics as combiners, analytical and bootstrap
intervals), ``series`` (each sensor's anomaly skill and paired statistics),
``report`` (the assembled report) and ``report_files`` (``metrics.md``,
``metrics.json``, ``per_sensor.csv``, ``per_group.csv``, plots).
"""

from transforms.dataset.schema import SPLITS
from transforms.evaluation.inputs import (CheckRowsFn, header_problem, parse_csv_readable,
                                          shard_rows)
from transforms.evaluation.metrics import PairStats, PairStatsFn
from transforms.evaluation.pipeline import Evaluate
from transforms.evaluation.report import Uncertainty
from transforms.dataset.splits import SplitConfig, read_split_file, sensor_split

__all__ = ["CheckRowsFn", "Evaluate", "PairStats", "PairStatsFn", "SPLITS", "SplitConfig",
           "header_problem", "parse_csv_readable", "read_split_file", "sensor_split",
           "shard_rows", "Uncertainty"]
