"""Decoding serialized examples into the model's three input tensors.

The released rules (``reference-notes``): bands in ``schema.IMAGE_BANDS`` and
``schema.LOW_RES_BANDS`` order, int64 cast to float32 unchanged, except the
DEM: ``trunc(clip(elevation / 3000 * 255, 0, 255))``; aux =
``[smap_sm / 255, gldas_sm / 255]`` with a missing scalar counting as 0.
Arithmetic is done in float64 (as numpy does on int64 arrays) before the
final cast to float32.

``BatchDecoder`` does it with TensorFlow ops (``tf.io.parse_example`` with
only the needed keys, in a compiled ``tf.function``) into one float32 array
per model input for the whole batch: no band ever passes through Python lists.
``decode_example_released`` is the released per-example way, kept as the
reference the batch path is tested against.
"""

import re
from typing import Dict, List, Sequence, Tuple

import numpy as np

from transforms.dataset import model_interface, schema

MODEL_INPUTS = model_interface.INPUTS


def dem_to_model(elevation):
    """numpy: the released DEM rescaling."""
    scaled = np.asarray(elevation, dtype=np.float64) / schema.DEM_SCALE_METRES * schema.DEM_MAX_VALUE
    return np.trunc(np.clip(scaled, 0.0, schema.DEM_MAX_VALUE)).astype(np.float32)


def decode_example_released(serialized: bytes, size: int) -> Dict[str, np.ndarray]:
    """One example decoded the released way: full protobuf decode, numpy per band."""
    import tensorflow as tf

    feature = tf.train.Example.FromString(serialized).features.feature

    def band(name):
        values = np.array(feature[name].int64_list.value, dtype=np.int64)
        if values.size != size * size:
            raise ValueError(f"{name}: expected {size * size} values, got {values.size}")
        return values.reshape(size, size)

    image = np.stack([dem_to_model(band(n)) if n == schema.NASA_DEM_ELEVATION
                      else band(n).astype(np.float32) for n in schema.IMAGE_BANDS], axis=-1)
    low_res = np.stack([band(n).astype(np.float32) for n in schema.LOW_RES_BANDS], axis=-1)

    def scalar(name):
        values = feature[name].int64_list.value if name in feature else []
        return values[0] if values else 0

    aux = np.array([scalar(n) / schema.AUX_SCALE for n in schema.AUX_FIELDS], dtype=np.float32)
    return {"image": image, "low_res": low_res, "aux": aux}


def decode_parsed(parsed, size: int, aux_scale):
    """TensorFlow: parsed features (``raw_parsing_spec``) -> ``{"image", "low_res", "aux"}``.

    The DEM rule is computed in integers, ``floor(clip(e, 0, 3000) * 255 / 3000)``,
    which equals the released float64 ``trunc(clip(e / 3000 * 255, 0, 255))`` for
    every elevation on Earth (tested from -11000 m to 9000 m) and, unlike a
    float formula with constants, cannot be changed by TensorFlow's graph
    optimiser (which folds ``x / 3000 * 255`` into ``x * 0.085``: 3000 m -> 254).
    ``aux_scale`` (255) is a tensor argument for the same reason.
    """
    import tensorflow as tf

    shape = [-1, size, size]

    def band(name):
        values = tf.reshape(parsed[name], shape)
        if name == schema.NASA_DEM_ELEVATION:
            scale = int(schema.DEM_SCALE_METRES)
            clipped = tf.clip_by_value(values, tf.constant(0, tf.int64), tf.constant(scale, tf.int64))
            return tf.cast(tf.math.floordiv(clipped * int(schema.DEM_MAX_VALUE), scale), tf.float32)
        return tf.cast(values, tf.float32)

    image = tf.stack([band(n) for n in schema.IMAGE_BANDS], axis=-1)
    low_res = tf.stack([band(n) for n in schema.LOW_RES_BANDS], axis=-1)
    aux = tf.cast(tf.stack([tf.cast(parsed[n], tf.float64) / aux_scale
                            for n in schema.AUX_FIELDS], axis=-1), tf.float32)
    return {"image": image, "low_res": low_res, "aux": aux}


def raw_parsing_spec(size: int):
    """The features the model reads: 14 bands and the 2 aux scalars (default 0)."""
    import tensorflow as tf

    spec = schema.parsing_spec(size, (*schema.IMAGE_BANDS, *schema.LOW_RES_BANDS))
    for name in schema.AUX_FIELDS:
        spec[name] = tf.io.FixedLenFeature([], tf.int64, default_value=0)
    return spec


class BatchDecoder:
    """Serialized examples -> ``{"image", "low_res", "aux"}`` float32 batches.

    Build one per process (it compiles a ``tf.function``); it is thread-safe.
    ``decode`` raises ``tf.errors.InvalidArgumentError`` when any example of
    the batch lacks a band or has the wrong image size; ``decode_each`` then
    tells which examples are bad and why.
    """

    def __init__(self, size: int):
        import tensorflow as tf

        self.size = size
        self._spec = raw_parsing_spec(size)
        self._fn = tf.function(self._decode, input_signature=[
            tf.TensorSpec([None], tf.string), tf.TensorSpec([], tf.float64)])
        self._aux_scale = tf.constant(schema.AUX_SCALE, tf.float64)

    def _decode(self, serialized, aux_scale):
        import tensorflow as tf

        return decode_parsed(tf.io.parse_example(serialized, self._spec), self.size, aux_scale)

    def decode(self, serialized: Sequence[bytes]) -> Dict[str, np.ndarray]:
        """Decode a batch into one preallocated array per model input.

        The compiled function is fed one example at a time: measured here,
        ``tf.io.parse_example`` over a whole batch of 30 MB examples costs 2.4x
        more per example at batch 8 (4x at 32) than one at a time, because the
        batch's working set leaves the caches; writing each decoded example
        straight into the batch arrays keeps it hot.
        """
        import tensorflow as tf

        out: Dict[str, np.ndarray] = {}
        for i, record in enumerate(serialized):
            one = self._fn(tf.constant([record], dtype=tf.string), self._aux_scale)
            if not out:
                out = {k: np.empty((len(serialized), *v.shape[1:]), np.float32)
                       for k, v in one.items()}
            for k, v in one.items():
                out[k][i] = v.numpy()[0]
        return out

    def decode_each(self, serialized: Sequence[bytes]) -> List[Tuple[Dict[str, np.ndarray], str]]:
        """Per example: ``(arrays, "")`` or ``(None, reason)``."""
        import tensorflow as tf

        results = []
        for record in serialized:
            try:
                out = self.decode([record])
                results.append(({k: v[0] for k, v in out.items()}, ""))
            except tf.errors.InvalidArgumentError as e:
                results.append((None, _short_reason(e.message, self.size)))
        return results


def _short_reason(message: str, size: int) -> str:
    """The parse error's own sentence (which feature, which sizes), without the trace."""
    found = re.search(r"Name: [^,]*, (.*)", message)
    detail = found.group(1).strip() if found else message.strip().splitlines()[-1]
    return (f"cannot decode for the model (bands of {size}x{size} = {size * size} int64 "
            f"values expected): {detail}")
