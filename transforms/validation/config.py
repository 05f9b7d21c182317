"""A map validation's settings: one frozen object whose fields are the command's flags."""

from __future__ import annotations

import dataclasses
from typing import Optional

from apache_beam.options.pipeline_options import PipelineOptions

from transforms.runtime.errors import UsageError
from transforms.runtime.settings import values_for

#: the files the validation writes in ``--output_dir`` (evaluate's report lands beside them)
PAIRS_FILE, STATIONS_FILE, SUMMARY_FILE = "pairs.csv", "stations.csv", "validation.json"


@dataclasses.dataclass(frozen=True, kw_only=True)
class ValidationConfig:
    """Everything ``validate_map`` does differently from run to run.

    Attributes:
        map: the map: a soil-moisture cube (Zarr) or a GeoTIFF map (COG).
        time: a GeoTIFF map's time (ISO 8601 UTC); None: its ``time`` tag.
        ismn_data_path: the ISMN download, zip or extracted folder.
        output_dir: where the pairs, the counts and evaluate's report go.
        time_tolerance_minutes: readings within +- this of a map time match.
        ismn_good_flags_only: only readings flagged ``G`` count.
        min_samples_per_sensor, timeseries_sensors, ci_level,
        bootstrap_samples, bootstrap_seed, anomaly_window_days: evaluate's
            report settings, passed on to it.
    """

    map: str
    ismn_data_path: str
    output_dir: str
    time: Optional[str] = None
    time_tolerance_minutes: float = 3.0
    ismn_good_flags_only: bool = False
    min_samples_per_sensor: int = 10
    timeseries_sensors: int = 4
    ci_level: float = 0.95
    bootstrap_samples: int = 1000
    bootstrap_seed: int = 0
    anomaly_window_days: float = 35.0

    @classmethod
    def from_options(cls, options: PipelineOptions) -> "ValidationConfig":
        """The settings of a parsed command line.

        Args:
            options: the command's parsed ``PipelineOptions``.

        Returns:
            The settings.

        Raises:
            UsageError: ``--map``, ``--ismn_data_path`` or ``--output_dir`` is missing.
        """
        values = values_for(cls, options)
        missing = [f"--{name}" for name in ("map", "ismn_data_path", "output_dir")
                   if not values.get(name)]
        if missing:
            raise UsageError(f"{' and '.join(missing)} required")
        return cls(**values)

    @property
    def tolerance_seconds(self) -> int:
        """The window half-width the matching rule uses, in whole seconds
        (as the merge's ``MergeConfig.tolerance_seconds``)."""
        return int(round(self.time_tolerance_minutes * 60))

    def output(self, name: str) -> str:
        """The path of output file ``name`` in ``output_dir``."""
        from apache_beam.io.filesystems import FileSystems

        return FileSystems.join(self.output_dir, name)
