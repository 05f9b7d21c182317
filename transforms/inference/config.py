"""Inference's settings: one frozen object whose fields are the command's flags."""

from __future__ import annotations

import dataclasses
from typing import Optional

from apache_beam.options.pipeline_options import PipelineOptions

from model_runner.model import SoilMoistureModelHandler
from model_runner.settings import ModelSettings
from transforms import runtime
from transforms.inference.pipeline import NAMESPACE
from transforms.runtime.settings import values_for

#: ``--output_format`` choices -> the file name suffix of each prediction file
SUFFIXES = {"csv": ".csv", "parquet": ".parquet", "tfrecord": ".tfrecord.gz"}


@dataclasses.dataclass(frozen=True, kw_only=True)
class InferenceConfig(ModelSettings):
    """Everything ``run_inference`` does differently from run to run (the
    model's settings are ``ModelSettings``'; ``batch_size`` and
    ``tensorflow_threads`` settled by ``ModelSettings.settled_defaults``).

    Attributes:
        input_data_path: glob of the input shards.
        num_inference_samples: sample mode: predict and print this many
            examples (None: a full run).
        num_skip_samples: sample mode: examples skipped first.
        output_path: full run: the prefix of every output file.
        output_format: ``csv``, ``parquet`` or ``tfrecord``.
        progress_seconds: how often a local run logs its progress.
    """

    input_data_path: str
    num_inference_samples: Optional[int] = None
    num_skip_samples: int = 0
    output_path: Optional[str] = None
    output_format: str = "csv"
    progress_seconds: float = 10.0

    @classmethod
    def from_options(cls, options: PipelineOptions) -> "InferenceConfig":
        """The settings of a parsed command line, every derived default settled.

        Raises:
            UsageError: no ``--exported_model_dir``, or a full run without
                ``--output_path``.
        """
        values = values_for(cls, options, **cls.settled_defaults(options))
        if not values["exported_model_dir"]:
            raise runtime.UsageError("--exported_model_dir required")
        if values["num_inference_samples"] is None and not values["output_path"]:
            raise runtime.UsageError("--output_path required (or --num_inference_samples)")
        return cls(**values)

    @property
    def sample_mode(self) -> bool:
        return self.num_inference_samples is not None

    def handler(self) -> SoilMoistureModelHandler:
        """The model handler of these settings (paths and config only; the
        model loads on the worker)."""
        return SoilMoistureModelHandler(
            self.exported_model_dir, image_size=self.image_size, batch_size=self.batch_size,
            names=self.names, threads=self.tensorflow_threads,
            feed_window=not self.feed_whole_images, metrics_namespace=NAMESPACE)

