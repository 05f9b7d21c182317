"""The model's settings every command that runs it shares (``run_inference``,
``predict_map``): one frozen dataclass their settings objects extend, whose
fields are the flags ``transforms.runtime.add_model_arguments`` defines."""

from __future__ import annotations

import dataclasses
from typing import Optional

from model_runner.model import DEFAULT_INPUTS, DEFAULT_OUTPUT, TensorNames


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

    @property
    def names(self) -> TensorNames:
        return TensorNames(self.image_tensor, self.low_res_tensor, self.aux_tensor,
                           self.output_tensor)
