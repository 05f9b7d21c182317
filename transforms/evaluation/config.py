"""Evaluation's settings: one frozen object whose fields are the command's flags."""

from __future__ import annotations

import dataclasses
from typing import Optional, Tuple

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from transforms import runtime
from transforms.dataset.splits import SplitConfig, read_split_file
from transforms.evaluation.report import Uncertainty
from transforms.evaluation.series import ANOMALY_WINDOW_DAYS
from transforms.runtime.settings import values_for


@dataclasses.dataclass(frozen=True, kw_only=True)
class EvaluationConfig:
    """Everything ``evaluate`` does differently from run to run.

    Attributes:
        output_dir: where the report files go.
        predictions: glob of ``run_inference`` outputs (CSV or Parquet); None:
            the shards of ``input_data_path``, for the baselines alone.
        input_data_path: glob of shards (used without ``predictions``).
        split_by: ``sensor`` (hash of the id), ``file``, ``time`` or ``none``.
        split_file: ``sensor_id,split`` lines for ``split_by`` ``file``.
        test_years, validation_years: comma-separated years (``split_by`` ``time``).
        train_fraction, validation_fraction: the sensor split's shares.
        extra_columns: comma-separated extra prediction columns.
        min_samples_per_sensor: pairs a sensor needs to count in averages.
        timeseries_sensors: sensors whose series are plotted.
        ci_level, bootstrap_samples, bootstrap_seed: the intervals.
        reference_predictor: compared with every other on the same pairs.
        anomaly_window_days: the anomalies' moving-average window.
        baselines: the baselines evaluated beside the model,
            comma-separated (``smap,gldas``), or ``none``: every row must
            have their values (a map validated without SMAP/GLDAS: none).
    """

    output_dir: str
    predictions: Optional[str] = None
    input_data_path: Optional[str] = None
    split_by: str = "sensor"
    split_file: Optional[str] = None
    test_years: str = ""
    validation_years: str = ""
    train_fraction: float = 0.7
    validation_fraction: float = 0.15
    extra_columns: str = ""
    min_samples_per_sensor: int = 10
    timeseries_sensors: int = 4
    ci_level: float = 0.95
    bootstrap_samples: int = 1000
    bootstrap_seed: int = 0
    reference_predictor: str = "model"
    anomaly_window_days: float = ANOMALY_WINDOW_DAYS
    baselines: str = "smap,gldas"

    @classmethod
    def from_options(cls, options: PipelineOptions) -> "EvaluationConfig":
        """The settings of a parsed command line.

        Raises:
            UsageError: no ``--output_dir``; neither ``--predictions`` nor
                ``--input_data_path``; a split without what it needs; a
                ``--reference_predictor`` that is no predictor.
        """
        values = values_for(cls, options)
        if not values["output_dir"]:
            raise runtime.UsageError("--output_dir required")
        explicit = options.get_all_options(drop_default=True)
        if not values["predictions"] and "input_data_path" not in explicit:
            raise runtime.UsageError("give --predictions (run_inference output) or --input_data_path")
        config = cls(**values)
        if config.split_by == "file" and not config.split_file:
            raise runtime.UsageError("--split_by file needs --split_file (sensor_id,split lines)")
        if config.split_by == "time" and not years(config.test_years, "--test_years"):
            raise runtime.UsageError("--split_by time needs --test_years (e.g. 2021)")
        years(config.validation_years, "--validation_years")
        config.baseline_names  # an unknown baseline is refused here
        known = ["model", *config.baseline_names, *config.extra]
        if config.reference_predictor not in known:
            raise runtime.UsageError(f"--reference_predictor {config.reference_predictor} is "
                                     f"not evaluated here: one of {', '.join(known)}")
        return config

    @property
    def baseline_names(self) -> Tuple[str, ...]:
        """The baselines evaluated, in ``inputs.BASELINES`` order.

        Raises:
            UsageError: a name that is no baseline.
        """
        from transforms.evaluation.inputs import BASELINES

        named = [b.strip() for b in self.baselines.split(",") if b.strip()]
        if named == ["none"]:
            return ()
        unknown = [b for b in named if b not in BASELINES]
        if unknown or not named:
            raise runtime.UsageError(f"--baselines {self.baselines!r}: give "
                                     f"{','.join(BASELINES)} (or some of them), or none")
        return tuple(b for b in BASELINES if b in named)

    @property
    def extra(self) -> Tuple[str, ...]:
        """The extra prediction columns, as a tuple."""
        return tuple(c for c in self.extra_columns.split(",") if c)

    @property
    def with_model(self) -> bool:
        """Whether rows hold the model's predictions (not shards alone)."""
        return bool(self.predictions)

    @property
    def table_splits(self) -> Tuple[str, ...]:
        return ("all",) if self.split_by == "none" else ("validation", "test")

    @property
    def uncertainty(self) -> Uncertainty:
        return Uncertainty(self.ci_level, self.bootstrap_samples, self.bootstrap_seed)

    def splits(self) -> SplitConfig:
        """The split rule (reads ``split_file`` for ``split_by`` ``file``)."""
        if self.split_by == "file":
            with FileSystems.open(self.split_file,
                                  compression_type=CompressionTypes.UNCOMPRESSED) as f:
                return SplitConfig(by_sensor_file=read_split_file(f.read().decode()))
        if self.split_by == "none":
            return SplitConfig(single_split="all")
        if self.split_by == "time":
            return SplitConfig(test_years=years(self.test_years, "--test_years"),
                               validation_years=years(self.validation_years, "--validation_years"))
        return SplitConfig(self.train_fraction, self.validation_fraction)


def years(text: str, flag: str) -> tuple:
    """``"2020,2021"`` -> ``(2020, 2021)``; raises UsageError naming ``flag``."""
    try:
        return tuple(int(y) for y in text.split(",") if y.strip())
    except ValueError:
        raise runtime.UsageError(f"{flag} takes comma-separated years, not {text!r}") from None
