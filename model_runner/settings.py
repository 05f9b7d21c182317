"""The model's settings every command that runs it shares (``run_inference``,
``predict_map``): one frozen dataclass their settings objects extend, whose
fields are the flags ``transforms.runtime.add_model_arguments`` defines, and
the one place their machine-dependent defaults are settled
(``ModelSettings.settled_defaults``)."""

from __future__ import annotations

import dataclasses
import os
from typing import Dict, Optional

from apache_beam.options.pipeline_options import PipelineOptions

from model_runner.model import (DEFAULT_INPUTS, DEFAULT_OUTPUT, ModelLoadError, TensorNames,
                                default_batch_size, local_gpus)
from model_runner.record import recorded_image_size
from transforms import runtime
from transforms.dataset import schema
from transforms.dataset.model_interface import MODEL_INFO_NAME


def settle_image_size(flag: Optional[int], recorded: Optional[int], model_path: str) -> int:
    """The image size to feed a model.

    Args:
        flag: ``--image_size`` (None when not given).
        recorded: the size the model records it was trained on
            (``recorded_image_size``; None for the released model).
        model_path: the model, named in the error.

    Returns:
        ``flag`` when given, else ``recorded``, else the release's 512.

    Raises:
        UsageError: ``flag`` differs from ``recorded``: a model fed images
            or windows of another size than it was trained on predicts
            nonsense (a 32x32 model fed 256x256 windows predicts 1.0
            everywhere).
    """
    if recorded is not None and flag is not None and flag != recorded:
        raise runtime.UsageError(
            f"--image_size {flag}: the model {model_path} was trained on {recorded}x{recorded} "
            f"images ({MODEL_INFO_NAME}); leave --image_size out, or give {recorded}")
    if flag is not None:
        return flag
    return recorded if recorded is not None else schema.RELEASED_IMAGE_SIZE


def readable_record(model: Optional[str], dry_run: bool = False) -> Optional[int]:
    """``recorded_image_size`` of ``model`` where a command reads it before
    its run: a local model that exists (a missing one is the command's own
    check to report), a remote one unless in a dry run (which reads nothing).

    Raises:
        ModelLoadError: the record exists but is unreadable.
    """
    if not model or ("://" not in model and not os.path.exists(model)) or (
            "://" in model and dry_run):
        return None
    return recorded_image_size(model)


@dataclasses.dataclass(frozen=True, kw_only=True)
class ModelSettings:
    """Which model, and how it is fed.

    Attributes:
        exported_model_dir: the SavedModel folder or frozen ``.pb``.
        batch_size: examples or windows per ``session.run``.
        feed_whole_images: feed whole ``image_size`` images even when the
            model is found to see only its centre window.
        image_size: the image side the model was made for (``settle_image_size``:
            ``--image_size``, else the model's recorded size, else 512).
        image_tensor, low_res_tensor, aux_tensor, output_tensor: tensor names.
        tensorflow_threads: TensorFlow threads per worker (None: its default).
    """

    exported_model_dir: str
    batch_size: int = 8
    feed_whole_images: bool = False
    image_size: int = schema.RELEASED_IMAGE_SIZE
    image_tensor: str = DEFAULT_INPUTS["image"]
    low_res_tensor: str = DEFAULT_INPUTS["low_res"]
    aux_tensor: str = DEFAULT_INPUTS["aux"]
    output_tensor: str = DEFAULT_OUTPUT
    tensorflow_threads: Optional[int] = None

    @staticmethod
    def settled_defaults(options: PipelineOptions) -> Dict[str, object]:
        """``batch_size`` and ``tensorflow_threads`` for the machine the model
        will run on, and ``image_size`` for the model, as ``from_options`` of
        every settings object that extends this one takes them.

        Args:
            options: the parsed command line.

        Returns:
            ``batch_size``: ``--batch_size`` when given, else
            ``default_batch_size`` (64 with a GPU: a local one, or Dataflow
            workers with an accelerator; 8 without); ``tensorflow_threads``:
            ``--tensorflow_threads`` when given (not 0), else the cores each
            local worker process may use, else None (TensorFlow's default);
            ``image_size``: ``settle_image_size`` of ``--image_size`` and the
            model's record (read from the model folder; a missing model is
            left to the command's own check, and a dry run reads no remote
            model).

        Raises:
            UsageError: ``--image_size`` conflicts with the model's record.
            InputError: the model's record is unreadable.
        """
        flags = options.get_all_options()
        model = flags.get("exported_model_dir")
        try:
            recorded = readable_record(model, runtime.is_dry_run(options))
        except ModelLoadError as e:
            raise runtime.InputError(str(e)) from e
        batch_size = flags.get("batch_size")
        if batch_size is None:
            gpu = local_gpus() > 0 if runtime.is_local(options) else runtime.remote_gpu(options)
            batch_size = default_batch_size(gpu)
        return {"batch_size": batch_size,
                "image_size": settle_image_size(flags.get("image_size"), recorded, model),
                "tensorflow_threads": (flags.get("tensorflow_threads")
                                       or runtime.threads_per_local_worker(options))}

    def trained_on(self) -> str:
        """``"the model M was trained on NxN images (model_info.json)"`` when
        ``image_size`` is the model's recorded size, else ``""`` (the text
        ``runtime.check_image_size`` names as the source of the size)."""
        model = self.exported_model_dir
        try:
            recorded = readable_record(model)
        except ModelLoadError:
            return ""
        if recorded is None or recorded != self.image_size:
            return ""
        return f"the model {model} was trained on {recorded}x{recorded} images ({MODEL_INFO_NAME})"

    @property
    def names(self) -> TensorNames:
        """The tensor names as one ``TensorNames``."""
        return TensorNames(self.image_tensor, self.low_res_tensor, self.aux_tensor,
                           self.output_tensor)
