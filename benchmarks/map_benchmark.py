"""predict_map's speed and memory against the model-only ceiling.

For each scene size (generated scenes, 10 m pixels, 14 int16 bands plus
SMAP/GLDAS), the whole ``python -m pipelines.predict_map`` process, start-up
included, is timed with its peak RSS; in the same run the same model is fed
pre-built batches of random windows in a loop with the same threads (the
model-only rate). The ratio says how much of the model's rate the map keeps:
reading, windowing and writing should hide behind the model. Peak RSS
growth from the smallest to the largest scene says whether memory depends
on the scene's size.

The model is a CNN with the released interface of about 0.5 GFLOP a 256 x
256 window (``--model medium``), or the inference benchmark's ResNet-like
model (``--model heavy``, about 6 GFLOP).

    python benchmarks/map_benchmark.py --work_dir bench_data/maps \
        --sizes 2048,8192 --stride 64
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

from transforms.dataset import model_interface  # noqa: E402

import measure  # noqa: E402
from inference_benchmark import export_heavy, heavy_gflop, save_model  # noqa: E402


def export_medium(folder: str, seed: int = 0) -> str:
    """Two 3x3 convolutions at 256 x 256 (10 -> 16 -> 16 channels), pooled,
    with the released interface: about 0.5 GFLOP a window."""
    import tensorflow as tf

    if os.path.isdir(folder):
        return folder
    v1 = tf.compat.v1
    rng = np.random.default_rng(seed)
    graph = tf.Graph()
    with graph.as_default():
        image, low_res, aux = model_interface.placeholders(tf).values()
        m = model_interface.MODEL_SIZE

        def weights(name, shape, scale):
            return v1.get_variable(name, initializer=(rng.standard_normal(shape) * scale)
                                   .astype(np.float32))

        x = tf.image.resize_with_crop_or_pad(image, m, m) / 255.0
        x = tf.nn.relu(tf.nn.conv2d(x, weights("c1", (3, 3, 10, 16), 0.1), 1, "SAME"))
        x = tf.nn.relu(tf.nn.conv2d(x, weights("c2", (3, 3, 16, 16), 0.1), 1, "SAME"))
        hi = tf.reduce_mean(x, axis=[1, 2])
        lo = tf.reduce_mean(tf.image.resize_with_crop_or_pad(low_res, m, m) / 1000.0, axis=[1, 2])
        z = tf.matmul(tf.concat([hi, lo, aux], axis=1), weights("dense", (22, 1), 0.05))[:, 0]
        out = tf.clip_by_value(z + 0.3, 0.0, 1.0, name=model_interface.OUTPUT_OP)
        assert out.name == model_interface.OUTPUT_TENSOR
        save_model(graph, folder)
    return folder


def medium_gflop() -> float:
    m = model_interface.MODEL_SIZE
    return 2 * m * m * 9 * (10 * 16 + 16 * 16) / 1e9


def model_only_rate(model_dir: str, batch_size: int, batches: int) -> float:
    """Windows a second the model alone takes, fed ready random batches."""
    from model_runner.windows import WindowModelHandler

    model = WindowModelHandler(model_dir).load_model()
    rng = np.random.default_rng(0)
    m = model_interface.MODEL_SIZE
    arrays = {"image": rng.uniform(0, 255, (batch_size, m, m, 10)).astype(np.float32),
              "low_res": rng.uniform(0, 600, (batch_size, m, m, 4)).astype(np.float32),
              "aux": rng.uniform(0, 1, (batch_size, 2)).astype(np.float32)}
    model.predict_arrays(arrays)
    start = time.time()
    for _ in range(batches):
        model.predict_arrays(arrays)
    seconds = time.time() - start
    model.close()
    return batches * batch_size / seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work_dir", default="bench_data/maps")
    parser.add_argument("--sizes", default="2048,8192", help="scene sides in pixels")
    parser.add_argument("--stride", type=int, default=64)
    parser.add_argument("--model", choices=("medium", "heavy"), default="medium")
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--model_batches", type=int, default=200,
                        help="batches the model-only loop runs")
    args = parser.parse_args(argv)

    from transforms.synthetic.scene import SceneConfig, make_scene

    os.makedirs(args.work_dir, exist_ok=True)
    if args.model == "heavy":
        model_dir, gflop = export_heavy(os.path.join(args.work_dir, "heavy_model")), heavy_gflop()
    else:
        model_dir, gflop = export_medium(os.path.join(args.work_dir, "medium_model")), medium_gflop()
    ceiling = model_only_rate(model_dir, args.batch_size, args.model_batches)
    print(f"model {args.model}: {gflop:.2f} GFLOP a window; model alone: {ceiling:.1f} windows/s "
          f"(batch {args.batch_size}, {os.cpu_count()} cores)")
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        scene = os.path.join(args.work_dir, f"scene_{size}")
        if not os.path.isdir(scene):
            make_scene(SceneConfig(scene, size, size, seed=size))
        out = os.path.join(args.work_dir, f"map_{size}.tif")
        seconds, peak_mb, _, cpu = measure.measured(
            [sys.executable, "-m", "pipelines.predict_map", "--scene_path", scene,
             "--exported_model_dir", model_dir, "--output_path", out, "--stride",
             str(args.stride), "--batch_size", str(args.batch_size)], cwd=ROOT)
        with open(out[:-len(".tif")] + ".summary.json") as f:
            summary = json.load(f)
        rate = summary["predicted"] / seconds
        rows.append((size, summary["predicted"], seconds, rate, rate / ceiling, peak_mb))
        print(f"scene {size}x{size} at stride {args.stride}: {summary['predicted']} windows in "
              f"{seconds:.1f} s (whole process), {rate:.1f} windows/s = {rate / ceiling:.2f}x "
              f"the model alone; peak RSS {peak_mb:.0f} MB; CPU {cpu:.0f} s")
    if len(rows) > 1:
        print(f"peak RSS growth {rows[0][0]}^2 -> {rows[-1][0]}^2: "
              f"{rows[-1][5] - rows[0][5]:+.0f} MB")


if __name__ == "__main__":
    main()
