"""The merge's settings: one frozen object whose fields are the command's flags."""

from __future__ import annotations

import dataclasses
from typing import Optional

from apache_beam.options.pipeline_options import PipelineOptions

from transforms.runtime.errors import UsageError
from transforms.runtime.settings import values_for


@dataclasses.dataclass(frozen=True, kw_only=True)
class MergeConfig:
    """Everything ``combine_ismn_data`` does differently from run to run.

    Attributes:
        input_data_path: glob of the input shards (local or ``gs://``).
        ismn_data_path: the ISMN download, zip or extracted folder.
        output_dir: where merged shards and reports go.
        time_tolerance_minutes: readings within +- this of an example match.
        ismn_good_flags_only: only readings flagged ``G`` count.
        match_sensor_type: prefer the sensor whose instrument is the id's type.
        nonfinite_readings_as_value_failures: a NaN reading is a value failure
            instead of the released script's NaN label.
        num_workers: the released ``--num_workers`` (local worker processes).
        progress_seconds: how often a local run logs its progress (0: never).
    """

    input_data_path: str
    ismn_data_path: str
    output_dir: str
    time_tolerance_minutes: float = 3.0
    ismn_good_flags_only: bool = False
    match_sensor_type: bool = False
    nonfinite_readings_as_value_failures: bool = False
    num_workers: Optional[int] = None
    progress_seconds: float = 10.0

    @classmethod
    def from_options(cls, options: PipelineOptions) -> "MergeConfig":
        """The settings of a parsed command line.

        Raises:
            UsageError: ``--ismn_data_path`` or ``--output_dir`` is missing.
        """
        values = values_for(cls, options)
        missing = [f"--{name}" for name in ("ismn_data_path", "output_dir") if not values[name]]
        if missing:
            raise UsageError(f"{' and '.join(missing)} required")
        return cls(**values)

    @property
    def tolerance_seconds(self) -> int:
        """The window half-width the matching rule uses, in whole seconds."""
        return int(round(self.time_tolerance_minutes * 60))
