"""The model's settings every command that runs it shares (``run_inference``,
``predict_map``): one frozen dataclass their settings objects extend, whose
fields are the flags ``transforms.runtime.add_model_arguments`` defines, and
the one place their machine-dependent defaults are settled
(``ModelSettings.settled_defaults``)."""

from __future__ import annotations

import dataclasses
from typing import Dict, Optional

from apache_beam.options.pipeline_options import PipelineOptions

from model_runner.model import (DEFAULT_INPUTS, DEFAULT_OUTPUT, TensorNames, default_batch_size,
                                local_gpus)
from transforms import runtime


@dataclasses.dataclass(frozen=True, kw_only=True)
class ModelSettings:
    """Which model, and how it is fed.

    Attributes:
        exported_model_dir: the SavedModel folder or frozen ``.pb``.
        batch_size: examples or windows per ``session.run``.
        feed_whole_images: feed whole ``image_size`` images even when the
            model is found to see only its centre window.
        image_size: the image side the model was made for (512).
        image_tensor, low_res_tensor, aux_tensor, output_tensor: tensor names.
        tensorflow_threads: TensorFlow threads per worker (None: its default).
    """

    exported_model_dir: str
    batch_size: int = 8
    feed_whole_images: bool = False
    image_size: int = 512
    image_tensor: str = DEFAULT_INPUTS["image"]
    low_res_tensor: str = DEFAULT_INPUTS["low_res"]
    aux_tensor: str = DEFAULT_INPUTS["aux"]
    output_tensor: str = DEFAULT_OUTPUT
    tensorflow_threads: Optional[int] = None

    @staticmethod
    def settled_defaults(options: PipelineOptions) -> Dict[str, object]:
        """``batch_size`` and ``tensorflow_threads`` for the machine the model
        will run on, as ``from_options`` of every settings object that
        extends this one takes them.

        Args:
            options: the parsed command line.

        Returns:
            ``batch_size``: ``--batch_size`` when given, else
            ``default_batch_size`` (64 with a GPU: a local one, or Dataflow
            workers with an accelerator; 8 without); ``tensorflow_threads``:
            ``--tensorflow_threads`` when given (not 0), else the cores each
            local worker process may use, else None (TensorFlow's default).
        """
        flags = options.get_all_options()
        batch_size = flags.get("batch_size")
        if batch_size is None:
            gpu = local_gpus() > 0 if runtime.is_local(options) else runtime.remote_gpu(options)
            batch_size = default_batch_size(gpu)
        return {"batch_size": batch_size,
                "tensorflow_threads": (flags.get("tensorflow_threads")
                                       or runtime.threads_per_local_worker(options))}

    @property
    def names(self) -> TensorNames:
        """The tensor names as one ``TensorNames``."""
        return TensorNames(self.image_tensor, self.low_res_tensor, self.aux_tensor,
                           self.output_tensor)
