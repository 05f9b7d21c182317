"""The fusion network: one definition for the Keras model that trains and the exported graph.

``forward``: a convolutional branch over the 10 high-resolution bands
(centre-cropped/padded to the model window, ``model_interface.MODEL_SIZE``),
a branch over the 4 SoilGrids bands, the 2 auxiliary scalars, fused into a
regression head, clipped to [0, 1]. ``inputs`` masks out unused sources (the
table's ablations); the ``smap_gldas_nn`` baseline is an MLP over the 2 scalars.
"""

from typing import Dict, Iterable, Sequence, Tuple

import numpy as np

from transforms.dataset.model_interface import CHANNELS, MODEL_SIZE, OUTPUT_OP


SOURCES = ("s1", "dem", "s2", "soilgrids", "smap", "gldas")


#: Which model input channels each source feeds: (tensor, channel indices).
SOURCE_CHANNELS = {
    "s1": ("image", (0, 1, 2)), "s2": ("image", (3, 4, 5, 6, 7, 8)), "dem": ("image", (9,)),
    "soilgrids": ("low_res", (0, 1, 2, 3)), "smap": ("aux", (0,)), "gldas": ("aux", (1,)),
}



def param_shapes(baseline: str = "") -> Dict[str, Tuple[int, ...]]:
    if baseline == "smap_gldas_nn":
        return {"b_dense1": (16,), "w_dense1": (2, 16), "b_dense2": (1,), "w_dense2": (16, 1)}
    return {"w_conv1": (5, 5, 10, 16), "b_conv1": (16,), "w_conv2": (3, 3, 16, 32),
            "b_conv2": (32,), "w_soil": (4, 8), "b_soil": (8,), "w_dense1": (42, 32),
            "b_dense1": (32,), "w_dense2": (32, 1), "b_dense2": (1,)}


def input_masks(inputs: Iterable[str]) -> Dict[str, np.ndarray]:
    """Per tensor, 1 for channels of the sources in ``inputs``, 0 for the others.

    Raises:
        ValueError: an input that is not one of ``SOURCES``.
    """
    masks = {k: np.zeros(n, np.float32) for k, n in CHANNELS.items()}
    for source in inputs:
        if source not in SOURCE_CHANNELS:
            raise ValueError(f"unknown input {source!r}; choose from {', '.join(SOURCES)}")
        key, channels = SOURCE_CHANNELS[source]
        masks[key][list(channels)] = 1.0
    return masks


def _clip(z, training: bool):
    """``clip_by_value(z, 0, 1)``; in training its gradient passes straight through
    (same values), so an output outside [0, 1] can still learn its way back."""
    import tensorflow as tf

    if training:
        return z + tf.stop_gradient(tf.clip_by_value(z, 0.0, 1.0) - z)
    return tf.clip_by_value(z, 0.0, 1.0, name=OUTPUT_OP)


def forward(params, image, low_res, aux, masks, baseline: str = "", training: bool = False):
    """Normalised inputs -> soil moisture in [0, 1] (``[batch]``), TensorFlow ops only."""
    import tensorflow as tf

    relu = tf.nn.relu
    if baseline == "smap_gldas_nn":
        h = relu(tf.matmul(aux * masks["aux"], params["w_dense1"]) + params["b_dense1"])
        z = tf.matmul(h, params["w_dense2"])[:, 0] + params["b_dense2"][0]
        return _clip(z, training)
    x = tf.image.resize_with_crop_or_pad(image * masks["image"], MODEL_SIZE, MODEL_SIZE)
    x = relu(tf.nn.conv2d(x, params["w_conv1"], 4, "SAME") + params["b_conv1"])
    x = relu(tf.nn.conv2d(x, params["w_conv2"], 2, "SAME") + params["b_conv2"])
    hi = tf.reduce_mean(x, axis=[1, 2])
    s = tf.image.resize_with_crop_or_pad(low_res * masks["low_res"], MODEL_SIZE, MODEL_SIZE)
    lo = relu(tf.matmul(tf.reduce_mean(s, axis=[1, 2]), params["w_soil"]) + params["b_soil"])
    h = tf.concat([hi, lo, aux * masks["aux"]], axis=1)
    h = relu(tf.matmul(h, params["w_dense1"]) + params["b_dense1"])
    z = tf.matmul(h, params["w_dense2"])[:, 0] + params["b_dense2"][0]
    return _clip(z, training)


def initial_params(seed: int, baseline: str = "") -> Dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {}
    for name, shape in param_shapes(baseline).items():
        if name.startswith("b_"):
            out[name] = np.full(shape, 0.25 if name == "b_dense2" else 0.0, np.float32)
        else:
            fan_in = int(np.prod(shape[:-1]))
            scale = np.sqrt(2.0 / fan_in) * (0.1 if name == "w_dense2" else 1.0)
            out[name] = (rng.standard_normal(shape) * scale).astype(np.float32)
    return out


def make_keras_model(inputs: Sequence[str], baseline: str = "", seed: int = 0):
    """A Keras model over normalised inputs whose ``call`` is ``forward``."""
    import keras

    masks = input_masks(inputs)

    class FusionModel(keras.Model):
        def __init__(self):
            super().__init__()
            self.baseline = baseline
            self.params = {name: self.add_weight(name=name, shape=value.shape,
                                                 initializer=keras.initializers.Constant(value))
                           for name, value in initial_params(seed, baseline).items()}

        def call(self, features, training=False):
            return forward(self.params, features["image"], features["low_res"],
                           features["aux"], masks, self.baseline, training=bool(training))

    return FusionModel()


def keras_params(model) -> Dict[str, np.ndarray]:
    return {name: np.asarray(v.numpy()) for name, v in model.params.items()}
