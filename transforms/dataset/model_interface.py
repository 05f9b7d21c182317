"""The released model's interface, defined once for every tool that feeds,
loads, trains or exports a model.

The released TF1 model (and every model ``train`` exports, and the stand-in
``model_runner.export_reference_model``) takes decoded float32 tensors

* ``ImageTensor:0`` ``[batch, H, W, 10]``: ``schema.IMAGE_BANDS`` in order,
* ``LowResImageTensor:0`` ``[batch, H, W, 4]``: ``schema.LOW_RES_BANDS``,
* ``AuxTensor:0`` ``[batch, 2]``: ``schema.AUX_FIELDS`` / ``schema.AUX_SCALE``,

and gives ``clip_by_value:0`` ``[batch]``, soil moisture in [0, 1]. Inside the
graph both images are centre-cropped (or padded) to ``MODEL_SIZE`` x
``MODEL_SIZE`` with ``tf.image.resize_with_crop_or_pad``. A SavedModel carries
the tag ``serve``; a frozen graph is a ``GraphDef`` file, ``FROZEN_NAME``.
"""

from typing import Dict, Tuple

import numpy as np

from transforms.dataset import schema

IMAGE_TENSOR = "ImageTensor:0"
LOW_RES_TENSOR = "LowResImageTensor:0"
AUX_TENSOR = "AuxTensor:0"
OUTPUT_TENSOR = "clip_by_value:0"
#: Model input -> tensor name, in feeding order.
INPUT_TENSORS: Dict[str, str] = {"image": IMAGE_TENSOR, "low_res": LOW_RES_TENSOR,
                                 "aux": AUX_TENSOR}
INPUTS: Tuple[str, ...] = tuple(INPUT_TENSORS)
#: Channels of each input (the last axis).
CHANNELS: Dict[str, int] = {"image": len(schema.IMAGE_BANDS),
                            "low_res": len(schema.LOW_RES_BANDS),
                            "aux": len(schema.AUX_FIELDS)}
#: The side of the window the model sees (its resize_with_crop_or_pad).
MODEL_SIZE = 256
SERVE_TAG = "serve"
FROZEN_NAME = "frozen_graph.pb"
#: The name of the output op (``clip_by_value(..., name=OUTPUT_OP)``).
OUTPUT_OP = OUTPUT_TENSOR.split(":")[0]
#: The JSON file beside an exported model (in its folder, or the frozen
#: ``.pb``'s folder) recording what it was made for: ``{"image_size": 32,
#: "window": 32, ...}``. ``train`` writes it; the released model has none
#: (its examples are ``schema.RELEASED_IMAGE_SIZE`` = 512 a side).
MODEL_INFO_NAME = "model_info.json"
#: The output's clip bounds: soil moisture in [0, 1] (``clip_by_value``).
CLIP_BOUNDS: Tuple[float, float] = (0.0, 1.0)


def saturated(values) -> np.ndarray:
    """Which ``values`` (model outputs) sit exactly on a clip bound
    (``CLIP_BOUNDS``): a model fed inputs unlike its training's (windows of
    another size, another encoding) often gives only those."""
    values = np.asarray(values, dtype=np.float32)
    return (values == CLIP_BOUNDS[0]) | (values == CLIP_BOUNDS[1])


def saturation_line(command: str, saturated_count: int, predicted: int, what: str) -> str:
    """The line a command prints when most predictions are on the clip
    bounds, else ``""``.

    Args:
        command: the command's name, the line's prefix.
        saturated_count: predictions exactly 0 or 1 (``saturated``).
        predicted: all predictions.
        what: what was predicted (``examples``, ``map pixels``).

    Returns:
        ``""`` when at most half are saturated; else ``<command>: WARNING:
        ...`` saying how many, or ``<command>: error: ...`` when all are
        (``all_saturated``: the command then exits 1).
    """
    if not predicted or saturated_count * 2 <= predicted:
        return ""
    stuck = all_saturated(saturated_count, predicted)
    share = "all" if stuck else f"{saturated_count} of {predicted}"
    return (f"{command}: {'error' if stuck else 'WARNING'}: {share} {what} predicted sit "
            f"exactly on the model's clip bounds ({CLIP_BOUNDS[0]:g} or {CLIP_BOUNDS[1]:g}): "
            f"the model is probably fed inputs unlike its training's (another image size or "
            f"encoding)")


def all_saturated(saturated_count: int, predicted: int) -> bool:
    """Whether every one of ``predicted`` (> 0) predictions is saturated: a
    result that means nothing (the command exits 1)."""
    return predicted > 0 and saturated_count == predicted


def placeholders(tf) -> Dict[str, object]:
    """The model's input placeholders in the current TF1 graph, with the
    released names and shapes (``tf``: the TensorFlow module)."""
    v1 = tf.compat.v1
    shapes = {"image": [None, None, None, CHANNELS["image"]],
              "low_res": [None, None, None, CHANNELS["low_res"]], "aux": [None, CHANNELS["aux"]]}
    return {key: v1.placeholder(tf.float32, shapes[key], name=tensor.split(":")[0])
            for key, tensor in INPUT_TENSORS.items()}


def window(size: int) -> Tuple[int, int]:
    """``(offset, side)`` of the part of a ``size`` x ``size`` image the model sees.

    ``resize_with_crop_or_pad`` crops a larger image to ``MODEL_SIZE`` from
    offset ``(size - MODEL_SIZE) // 2`` on both axes, and pads a smaller one
    with zeros, so then all of it is seen.
    """
    if size <= MODEL_SIZE:
        return 0, size
    return (size - MODEL_SIZE) // 2, MODEL_SIZE


def crop_to_window(image):
    """An ``[H, W, C]`` image (H == W) cut to its ``window``: what the model sees of it."""
    offset, side = window(image.shape[0])
    return image[offset:offset + side, offset:offset + side]
