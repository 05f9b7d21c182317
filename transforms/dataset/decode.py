"""Decoding serialized examples into the model's three input tensors.

The released rules (``reference-notes``): bands in ``schema.IMAGE_BANDS`` and
``schema.LOW_RES_BANDS`` order, int64 cast to float32 unchanged, except the
DEM: ``trunc(clip(elevation / 3000 * 255, 0, 255))``; aux =
``[smap_sm / 255, gldas_sm / 255]`` with a missing scalar counting as 0.
Arithmetic is done in float64 (as numpy does on int64 arrays) before the
final cast to float32.

``BatchDecoder`` does it with TensorFlow ops (``tf.io.parse_example`` with
only the needed keys, cast and stack, in a compiled ``tf.function``) into one
float32 array per model input for the whole batch: no band ever passes
through Python lists.
``decode_example_released`` is the released per-example way, kept as the
reference the batch path is tested against.
"""

import concurrent.futures
import re
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from transforms.dataset import model_interface, schema

MODEL_INPUTS = model_interface.INPUTS
_BANDS = (*schema.IMAGE_BANDS, *schema.LOW_RES_BANDS)


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


def raw_parsing_spec(size: int):
    """The features the model reads: 14 bands and the 2 aux scalars (default 0)."""
    import tensorflow as tf

    spec = schema.parsing_spec(size, (*schema.IMAGE_BANDS, *schema.LOW_RES_BANDS))
    for name in schema.AUX_FIELDS:
        spec[name] = tf.io.FixedLenFeature([], tf.int64, default_value=0)
    return spec


def decode_parsed(parsed, size: int, aux_scale):
    """TensorFlow: parsed features (``raw_parsing_spec``) -> ``{"image", "low_res", "aux"}``.

    The DEM rule is computed in integers, ``floor(clip(e, 0, 3000) * 255 / 3000)``,
    which equals the released float64 ``trunc(clip(e / 3000 * 255, 0, 255))`` for
    every elevation on Earth (tested from -11000 m to 9000 m) and, unlike a
    float formula with constants, cannot be changed by TensorFlow's graph
    optimiser (which folds ``x / 3000 * 255`` into ``x * 0.085``: 3000 m -> 254).
    ``aux_scale`` (255) is a tensor argument for the same reason. Each band is
    cast to float32 before the bands are stacked (half the memory traffic of
    stacking int64; docs/benchmarks.md has the measured cost).
    """
    import tensorflow as tf

    def band(name):
        values = parsed[name]
        if name == schema.NASA_DEM_ELEVATION:
            scale = int(schema.DEM_SCALE_METRES)
            clipped = tf.clip_by_value(values, tf.constant(0, tf.int64), tf.constant(scale, tf.int64))
            values = tf.math.floordiv(clipped * int(schema.DEM_MAX_VALUE), scale)
        return tf.cast(values, tf.float32)

    def stack(names):
        # bands stacked first ([C, batch, pixels], contiguous copies), then one
        # transpose to channels last: TensorFlow's stack on the last axis is a
        # concat of one-element slices, 1.3x slower for the whole decode
        x = tf.stack([tf.reshape(band(n), [-1, size * size]) for n in names], axis=0)
        x = tf.transpose(x, [1, 2, 0])
        return tf.reshape(x, [-1, size, size, len(names)])

    aux = tf.cast(tf.stack([tf.cast(parsed[n], tf.float64) / aux_scale
                            for n in schema.AUX_FIELDS], axis=-1), tf.float32)
    return {"image": stack(schema.IMAGE_BANDS), "low_res": stack(schema.LOW_RES_BANDS), "aux": aux}


class BatchDecoder:
    """Serialized examples -> ``{"image", "low_res", "aux"}`` float32 batches.

    Build one per process (it compiles a ``tf.function``); it is thread-safe.
    ``decode`` raises ``tf.errors.InvalidArgumentError`` when any example of
    the batch lacks a band or has the wrong image size; ``decode_each`` then
    tells which examples are bad and why.
    """

    def __init__(self, size: int, window: Optional[Tuple[int, int]] = None, threads: int = 1):
        """``window``: ``(offset, side)``, decode only rows and columns
        ``offset`` to ``offset + side - 1`` (the part the model sees, see
        ``model_interface.window``); None: the whole image. ``threads``:
        examples of a batch decoded at once (the compiled loop releases the GIL)."""
        import tensorflow as tf

        self.size = size
        self.offset, self.side = window if window is not None else (0, size)
        self.threads = max(1, threads)
        self._pool: Optional[concurrent.futures.ThreadPoolExecutor] = None
        self._spec = raw_parsing_spec(size)
        self._fn = tf.function(self._decode, input_signature=[
            tf.TensorSpec([None], tf.string), tf.TensorSpec([], tf.float64)])
        self._aux_scale = tf.constant(schema.AUX_SCALE, tf.float64)

    def _decode(self, serialized, aux_scale):
        import tensorflow as tf

        return decode_parsed(tf.io.parse_example(serialized, self._spec), self.size, aux_scale)

    def decode(self, serialized: Sequence[bytes]) -> Dict[str, np.ndarray]:
        """Decode a batch (only the window, when the decoder has one). Each
        example goes through the compiled varint loop (``varints.decode_band``)
        when it keeps its bands as packed int64 lists of the right length and
        its scalars as int64 (what the release and every TensorFlow writer
        produce), else through TensorFlow, whose ``InvalidArgumentError`` then
        names the problem. With ``threads`` > 1 the examples of the batch are
        decoded in parallel threads.

        The compiled loop and TensorFlow give equal arrays (tested)."""
        n, side = len(serialized), self.side
        out = {key: np.empty((n, side * side, channels), np.float32)
               for key, channels in (("image", len(schema.IMAGE_BANDS)),
                                     ("low_res", len(schema.LOW_RES_BANDS)))}
        out["aux"] = np.empty((n, len(schema.AUX_FIELDS)), np.float32)

        def packed(i: int) -> bool:
            return self._decode_packed(serialized[i], {key: array[i] for key, array in out.items()})

        if self.threads > 1 and n > 1:
            if self._pool is None:
                self._pool = concurrent.futures.ThreadPoolExecutor(self.threads, "decode")
            done = list(self._pool.map(packed, range(n)))
        else:
            done = [packed(i) for i in range(n)]
        for i in (i for i, ok in enumerate(done) if not ok):
            one = self.decode_with_tensorflow([serialized[i]])
            for key, array in out.items():
                array[i] = one[key][0].reshape(array[i].shape)
        return {"image": out["image"].reshape(n, side, side, -1),
                "low_res": out["low_res"].reshape(n, side, side, -1), "aux": out["aux"]}

    def decode_with_tensorflow(self, serialized: Sequence[bytes]) -> Dict[str, np.ndarray]:
        """One call of the compiled TensorFlow function (parse, cast, stack,
        transpose), cut to the window; the arrays are the result tensors' own memory."""
        import tensorflow as tf

        try:
            out = self._fn(tf.constant(list(serialized), dtype=tf.string), self._aux_scale)
        except UnicodeDecodeError as e:
            # TensorFlow's parse error quotes the record's bytes, and Python then
            # fails to read the message as UTF-8: the same refusal, said plainly
            raise tf.errors.InvalidArgumentError(
                None, None, "Name: <unknown>, the record is not a readable tf.train.Example "
                f"(TensorFlow's parse error quotes bytes that are not text: {e.reason})") from e
        o, s = self.offset, self.side
        return {k: v.numpy() if k == "aux" else v.numpy()[:, o:o + s, o:o + s]
                for k, v in out.items()}

    def _decode_packed(self, record: bytes, out: Dict[str, np.ndarray]) -> bool:
        """Decode one example into ``out`` (``image`` and ``low_res`` as
        ``[window pixels, channels]``, ``aux``) by the compiled loop; False when it
        is not stored the way that loop reads (``out`` is then partly written)."""
        from transforms.dataset import example_proto, varints

        try:
            spans = example_proto.packed_int64_spans(record, _BANDS)
            scalars = example_proto.read_features(record, schema.AUX_FIELDS)
        except example_proto.MalformedExampleError:
            return False
        if len(spans) != len(_BANDS):
            return False
        buf = np.frombuffer(record, np.uint8)
        for key, names in (("image", schema.IMAGE_BANDS), ("low_res", schema.LOW_RES_BANDS)):
            for c, name in enumerate(names):
                if varints.decode_band(buf, *spans[name], out[key], c,
                                       name == schema.NASA_DEM_ELEVATION, self.size,
                                       self.offset, self.side) != self.size * self.size:
                    return False
        for c, name in enumerate(schema.AUX_FIELDS):
            values = scalars.get(name, [0])
            if len(values) != 1 or not isinstance(values[0], int):
                return False  # TensorFlow's FixedLenFeature([], int64) would refuse it
            out["aux"][c] = np.float32(np.float64(values[0]) / schema.AUX_SCALE)
        return True

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
    # else the last line that is not the graph node's ``[[{{node ...}}]]`` marker
    lines = [line.strip() for line in message.splitlines()
             if line.strip() and not line.strip().startswith("[[")]
    detail = (found.group(1) if found else (lines or [message])[-1]).strip()
    return (f"cannot decode for the model (bands of {size}x{size} = {size * size} int64 "
            f"values expected): {detail}")
