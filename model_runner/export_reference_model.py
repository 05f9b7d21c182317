"""Export a small reference CNN with exactly the released model's interface.

The released model (a TF1 SavedModel) cannot be downloaded here, so tests and
the demo use this stand-in. It has the same interface:

* ``ImageTensor:0``  float32 ``[batch, H, W, 10]`` (the high-resolution bands),
* ``LowResImageTensor:0`` float32 ``[batch, H, W, 4]`` (SoilGrids),
* ``AuxTensor:0`` float32 ``[batch, 2]`` (SMAP/255, GLDAS/255),
* ``clip_by_value:0`` float32 ``[batch]``: soil moisture clipped to [0, 1],

crops or pads the images to 256x256 inside the graph, and is written in the
released directory layout (``saved_model.pb``, ``graph_def.pbtxt``,
``variables/``; with ``--frozen`` also ``frozen_graph.pb``, a GraphDef with
the variables folded into constants). Weights are drawn from ``--seed``, and
``tanh`` activations (no dead units) make the output depend on every band and
on the bands' order.

    python -m model_runner.export_reference_model --output_dir model/ [--frozen] [--seed 0]
"""

import argparse
import os
from typing import List, Optional

import numpy as np

from transforms.dataset import model_interface
from transforms.dataset.model_interface import FROZEN_NAME, MODEL_SIZE, OUTPUT_TENSOR


def _build(tf, rng):
    """The inference graph in the current default graph; returns (inputs, output)."""
    v1 = tf.compat.v1

    def weight(name, shape, scale):
        return v1.get_variable(name, initializer=(rng.standard_normal(shape) * scale).astype(np.float32))

    image, low_res, aux = model_interface.placeholders(tf).values()

    # weights small enough that every tanh works in its near-linear range, so
    # the output moves with every band (and with their order)
    x = tf.image.resize_with_crop_or_pad(image, MODEL_SIZE, MODEL_SIZE) / 255.0 - 0.5
    x = tf.tanh(tf.nn.conv2d(x, weight("conv1", [5, 5, 10, 12], 0.05), 4, "SAME")
                + weight("bias1", [12], 0.05))
    x = tf.tanh(tf.nn.conv2d(x, weight("conv2", [3, 3, 12, 16], 0.1), 4, "SAME")
                + weight("bias2", [16], 0.05))
    hi = tf.reduce_mean(x, axis=[1, 2])  # [batch, 16]
    s = tf.image.resize_with_crop_or_pad(low_res, MODEL_SIZE, MODEL_SIZE) / 1000.0
    s = tf.tanh(tf.nn.conv2d(s, weight("conv_soil", [1, 1, 4, 6], 1.0), 8, "SAME"))
    lo = tf.reduce_mean(s, axis=[1, 2])  # [batch, 6]
    z = tf.concat([1.5 * hi, 2.0 * lo, aux - 0.5], axis=1)
    z = tf.tanh(tf.matmul(z, weight("dense1", [24, 16], 0.3)) + weight("bias3", [16], 0.05))
    z = tf.matmul(z, weight("dense2", [16, 1], 0.15))[:, 0] + 0.3
    out = tf.clip_by_value(z, 0.0, 1.0, name=model_interface.OUTPUT_OP)
    return {"image": image, "low_res": low_res, "aux": aux}, out


def export(output_dir: str, seed: int = 0, frozen: bool = False) -> str:
    """Write the reference model to ``output_dir`` (must not exist or be empty)."""
    import tensorflow as tf

    if os.path.exists(output_dir) and os.listdir(output_dir):
        raise FileExistsError(f"{output_dir} exists and is not empty")
    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default():
        inputs, output = _build(tf, np.random.default_rng(seed))
        assert output.name == OUTPUT_TENSOR, output.name
        with v1.Session(graph=graph) as sess:
            sess.run(v1.global_variables_initializer())
            builder = v1.saved_model.Builder(output_dir)
            signature = v1.saved_model.predict_signature_def(
                inputs=inputs, outputs={"soil_moisture": output})
            builder.add_meta_graph_and_variables(
                sess, [v1.saved_model.tag_constants.SERVING],
                signature_def_map={"serving_default": signature})
            builder.save()
            tf.io.write_graph(graph.as_graph_def(), output_dir, "graph_def.pbtxt", as_text=True)
            if frozen:
                frozen_def = v1.graph_util.convert_variables_to_constants(
                    sess, graph.as_graph_def(), [output.op.name])
                tf.io.write_graph(frozen_def, output_dir, FROZEN_NAME, as_text=False)
    return output_dir


def main(argv: Optional[List[str]] = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--output_dir", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--frozen", action="store_true", help=f"also write {FROZEN_NAME}")
    args = p.parse_args(argv)
    export(args.output_dir, args.seed, args.frozen)
    print(f"wrote the reference model to {args.output_dir}"
          + (f" (and {os.path.join(args.output_dir, FROZEN_NAME)})" if args.frozen else ""))


if __name__ == "__main__":
    main()
