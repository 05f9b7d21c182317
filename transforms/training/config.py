"""Training's settings: one frozen object whose fields are the command's flags."""

from __future__ import annotations

import dataclasses
from typing import List

from apache_beam.options.pipeline_options import PipelineOptions

from transforms import runtime
from transforms.dataset import schema
from transforms.dataset.splits import SplitConfig
from transforms.runtime.settings import values_for
from transforms.training.data import DEFAULT_SHUFFLE_BUFFER_MB
from transforms.training.fit import FitConfig
from transforms.training.network import SOURCES, input_masks


@dataclasses.dataclass(frozen=True, kw_only=True)
class TrainingConfig:
    """Everything ``train`` does differently from run to run.

    Attributes:
        input_data_path: glob of the merged (labelled) shards.
        output_dir: preprocessed data, checkpoints, the model, reports.
        image_size: the examples' image side.
        inputs: comma-separated sources the model sees (``SOURCES``).
        baseline: ``smap_gldas_nn`` for the MLP baseline, else "".
        epochs, train_batch_size, learning_rate, seed, patience, resume,
        shuffle_buffer_mb: the fit (``FitConfig``).
        train_fraction, validation_fraction: the sensor split.
        run_evaluation: then predict with the exported model and evaluate.
    """

    input_data_path: str
    output_dir: str
    image_size: int = 512
    inputs: str = ",".join(SOURCES)
    baseline: str = ""
    epochs: int = 20
    train_batch_size: int = 16
    learning_rate: float = 3e-3
    seed: int = 0
    train_fraction: float = 0.7
    validation_fraction: float = 0.15
    patience: int = 0
    resume: bool = False
    shuffle_buffer_mb: float = DEFAULT_SHUFFLE_BUFFER_MB
    run_evaluation: bool = False

    @classmethod
    def from_options(cls, options: PipelineOptions) -> "TrainingConfig":
        """The settings of a parsed command line.

        Raises:
            UsageError: no ``--output_dir``, or an unknown ``--inputs`` name.
        """
        values = values_for(cls, options)
        if values["image_size"] is None:  # the release's size unless given
            values["image_size"] = schema.RELEASED_IMAGE_SIZE
        if not values["output_dir"]:
            raise runtime.UsageError("--output_dir required")
        config = cls(**values)
        try:
            input_masks(config.sources)
        except ValueError as e:
            raise runtime.UsageError(f"--inputs: {e}") from e
        return config

    @property
    def sources(self) -> List[str]:
        """The sources the model sees (SMAP and GLDAS alone for the baseline)."""
        if self.baseline == "smap_gldas_nn":
            return ["smap", "gldas"]
        return [s for s in self.inputs.split(",") if s]

    @property
    def splits(self) -> SplitConfig:
        return SplitConfig(self.train_fraction, self.validation_fraction)

    def fit(self) -> FitConfig:
        """The fitting step's part of these settings."""
        return FitConfig(self.sources, self.baseline, self.epochs, self.train_batch_size,
                         self.learning_rate, self.seed, self.patience, self.resume,
                         self.shuffle_buffer_mb)
