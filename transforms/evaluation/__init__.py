"""Evaluation (``pipelines.evaluate``): the paper's metrics table and more.

``pipeline.Evaluate`` wires ``inputs`` (rows and their checks -> keyed
pairs, split by the rule every tool shares, ``transforms.dataset.splits``),
``metrics`` (streaming statistics as combiners, analytical and bootstrap
intervals), ``series`` (each sensor's anomaly skill and paired statistics),
``report`` (the assembled report) and ``report_files`` (``metrics.md``,
``metrics.json``, ``per_sensor.csv``, ``per_group.csv``; the plots drawn by
``plots`` with the ordering and titling rules of ``plot_rules``).
``duplicates`` sets aside an example read twice and counts input shard
names shared by different examples, before ``Evaluate``.
``config.EvaluationConfig`` holds the settings (one field per flag),
``sources.ReadPredictionRows`` reads the rows, and ``job.run_evaluation``
runs the whole evaluation as one call.
"""

from transforms.dataset.schema import SPLITS
from transforms.evaluation.inputs import (BAD_ROW_KINDS, CheckRowsFn, header_problem,
                                          parse_csv_readable, predictor_columns, shard_rows)
from transforms.evaluation.duplicates import DropDuplicateRows
from transforms.evaluation.metrics import PairStats, PairStatsFn
from transforms.evaluation.config import EvaluationConfig
from transforms.evaluation.job import (build, exit_code, read_metrics, report_lines,
                                       run_evaluation)
from transforms.evaluation.pipeline import Evaluate
from transforms.evaluation.sources import ReadPredictionRows, check_prediction_files
from transforms.evaluation.report import Uncertainty, empty_time_splits
from transforms.evaluation.report_files import REPORT_FILES, stale_report_files
from transforms.dataset.splits import SplitConfig, read_split_file, sensor_split

__all__ = ["EvaluationConfig", "ReadPredictionRows", "build", "check_prediction_files",
           "exit_code", "read_metrics", "report_lines", "run_evaluation", "REPORT_FILES", "empty_time_splits", "stale_report_files", "BAD_ROW_KINDS", "CheckRowsFn", "DropDuplicateRows", "Evaluate", "PairStats", "PairStatsFn", "SPLITS", "SplitConfig",
           "header_problem", "parse_csv_readable", "predictor_columns", "read_split_file", "sensor_split",
           "shard_rows", "Uncertainty"]
