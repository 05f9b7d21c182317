"""Training step 3: export the trained network in the released model interface.

A TF1 SavedModel (tag ``serve``) and a frozen ``.pb`` taking raw decoded
tensors ``ImageTensor:0``, ``LowResImageTensor:0``, ``AuxTensor:0`` and
giving ``clip_by_value:0`` (``transforms.dataset.model_interface``), with the
normalisation inside, so ``run_inference --exported_model_dir`` uses it
unchanged.
"""

import json
import os
from typing import Dict, Sequence, Tuple

import numpy as np

from transforms.dataset import model_interface, schema
from transforms.training.network import forward, input_masks


def export_released_interface(output_dir: str, params: Dict[str, np.ndarray],
                              normalisation: Dict[str, Tuple[np.ndarray, np.ndarray]],
                              inputs: Sequence[str], baseline: str = "",
                              image_size: int = schema.RELEASED_IMAGE_SIZE) -> Tuple[str, str]:
    """Write a TF1 SavedModel (tag ``serve``), ``frozen_graph.pb`` and
    ``model_info.json`` (``model_interface.MODEL_INFO_NAME``: the image size
    the network was trained on, so ``run_inference`` and ``predict_map`` feed
    it images and windows of that size and refuse another).

    Args:
        output_dir: the folder to write (must not exist yet).
        params: the trained weights by variable name.
        normalisation: ``(mean, variance)`` of each input.
        inputs: the sources the network sees (``network.SOURCES``).
        baseline: ``""`` or the baseline's name.
        image_size: the side of the training examples' images.

    Returns:
        ``(SavedModel folder, frozen graph path)``.
    """
    import tensorflow as tf

    v1 = tf.compat.v1
    masks = input_masks(inputs)
    graph = tf.Graph()
    with graph.as_default():
        image, low_res, aux = model_interface.placeholders(tf).values()

        def normalise(x, key):
            mean, var = normalisation[key]
            return (x - tf.constant(mean)) / tf.constant(np.sqrt(var).astype(np.float32))

        variables = {name: v1.get_variable(name, initializer=value) for name, value in params.items()}
        out = forward(variables, normalise(image, "image"), normalise(low_res, "low_res"),
                      normalise(aux, "aux"), {k: tf.constant(m) for k, m in masks.items()}, baseline)
        assert out.name == model_interface.OUTPUT_TENSOR, out.name
        with v1.Session(graph=graph) as sess:
            sess.run(v1.global_variables_initializer())
            builder = v1.saved_model.Builder(output_dir)
            builder.add_meta_graph_and_variables(
                sess, [v1.saved_model.tag_constants.SERVING],
                signature_def_map={"serving_default": v1.saved_model.predict_signature_def(
                    inputs={"image": image, "low_res": low_res, "aux": aux},
                    outputs={"soil_moisture": out})})
            builder.save()
            tf.io.write_graph(graph.as_graph_def(), output_dir, "graph_def.pbtxt", as_text=True)
            frozen = v1.graph_util.convert_variables_to_constants(
                sess, graph.as_graph_def(), [out.op.name])
            tf.io.write_graph(frozen, output_dir, model_interface.FROZEN_NAME, as_text=False)
    info = {"image_size": int(image_size), "window": model_interface.window(image_size)[1],
            "inputs": list(inputs), "baseline": baseline}
    with tf.io.gfile.GFile(os.path.join(output_dir, model_interface.MODEL_INFO_NAME), "w") as f:
        f.write(json.dumps(info, indent=1, sort_keys=True) + "\n")
    return output_dir, os.path.join(output_dir, model_interface.FROZEN_NAME)
