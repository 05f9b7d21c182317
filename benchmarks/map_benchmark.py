"""predict_map's speed and memory against the model-only ceiling.

For each scene size (generated scenes, 10 m pixels, 14 int16 bands plus
SMAP/GLDAS), the whole ``python -m pipelines.predict_map`` process, start-up
included, is timed with its peak RSS; in the same run the same model is fed
pre-built batches of random windows in a loop with the same threads (the
model-only rate, measured before and after the maps: the higher of the two,
since another load on the machine only slows it). The ratio says how much
of the model's rate the map keeps: reading, windowing and writing should
hide behind the model. Peak RSS
growth from the smallest to the largest scene says whether memory depends
on the scene's size.

Two variants of each scene (``--variants``): ``coregistered``, the 14 bands
as int16 on one grid (``synthetic.scene``), and ``native``, the same place
as a user downloads it (``synthetic.native``): float32 Sentinel-1 in dB
read through ``--encoding`` (VH and the angle on a larger grid of their
own), uint16 Sentinel-2 on its own lattice in two overlapping tiles, B11 and
B12 at 20 m, the DEM in EPSG:4326, SoilGrids at 250 m in Goode Homolosine,
SMAP on EASE-Grid 2.0: 13 of the 14 bands resampled onto the map's grid.

The model is a CNN with the released interface of about 0.5 GFLOP a 256 x
256 window (``--model medium``), or the inference benchmark's ResNet-like
model (``--model heavy``, about 6 GFLOP). ``--profile_tile`` also profiles
(cProfile) the reading of one tile of the largest scene of each variant
(``tiles.tile_windows``, the model not run) and prints where its time goes.

    python benchmarks/map_benchmark.py --work_dir bench_data/maps \
        --sizes 2048,8192 --stride 64 --model heavy
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


def make_variant(variant: str, folder: str, size: int) -> list:
    """Write the ``variant`` scene of ``size`` pixels a side into ``folder``
    (once); the flags ``predict_map`` needs beyond ``--scene_path``."""
    if variant == "native":
        from transforms.synthetic.native import NativeConfig, make_native_scene

        if not os.path.isdir(folder):
            make_native_scene(NativeConfig(folder + ".part", size, seed=size, items=False))
            os.replace(folder + ".part", folder)
        return ["--encoding", os.path.join(folder, "encoding.json")]
    from transforms.synthetic.scene import SceneConfig, make_scene

    if not os.path.isdir(folder):
        make_scene(SceneConfig(folder + ".part", size, size, seed=size))
        os.replace(folder + ".part", folder)
    return []


def profile_tile(folder: str, flags: list, stride: int, window: int, batch_size: int,
                 top: int = 20) -> None:
    """Print cProfile's view of reading one tile (``tiles.tile_windows``: the
    bands read, resampled, encoded and decoded into batches; no model) in
    the middle of the scene in ``folder``."""
    import cProfile
    import pstats

    from transforms.mapping.config import default_tile_size
    from transforms.mapping.geometry import MapGeometry
    from transforms.mapping.scene import read_encoding, read_scene
    from transforms.mapping.tiles import tile_windows

    encoding = read_encoding(flags[1]) if flags else None
    scene = read_scene(folder, encoding=encoding)
    geometry = MapGeometry(scene.grid.height, scene.grid.width, stride, window,
                           default_tile_size(stride))
    tiles = list(geometry.tiles())
    tile = tiles[len(tiles) // 2]
    list(tile_windows(scene, geometry, tile, batch_size=batch_size))  # warm: files, PROJ
    profiler = cProfile.Profile()
    start = time.time()
    profiler.enable()
    batches = sum(kind == "batch" for kind, _ in tile_windows(scene, geometry, tile,
                                                               batch_size=batch_size))
    profiler.disable()
    region = geometry.region(tile)
    print(f"one tile of {folder}: {tile.height}x{tile.width} map pixels, region "
          f"{region.height}x{region.width} scene pixels, {batches} batches: "
          f"{time.time() - start:.2f} s (profiled)")
    pstats.Stats(profiler, stream=sys.stdout).sort_stats("tottime").print_stats(top)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work_dir", default="bench_data/maps")
    parser.add_argument("--sizes", default="2048,8192", help="scene sides in pixels")
    parser.add_argument("--stride", type=int, default=64)
    parser.add_argument("--model", choices=("medium", "heavy"), default="medium")
    parser.add_argument("--variants", default="coregistered,native",
                        help="scenes to map: coregistered (int16 bands on one grid), native "
                             "(each band on its own grid, in its units, with an encoding)")
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--model_batches", type=int, default=200,
                        help="batches the model-only loop runs")
    parser.add_argument("--profile_tile", action="store_true",
                        help="also profile reading one tile of the largest scene of each variant")
    args = parser.parse_args(argv)
    variants = args.variants.split(",")
    unknown = sorted(set(variants) - {"coregistered", "native"})
    if unknown:
        parser.error(f"--variants: unknown {', '.join(unknown)}")

    os.makedirs(args.work_dir, exist_ok=True)
    if args.model == "heavy":
        model_dir, gflop = export_heavy(os.path.join(args.work_dir, "heavy_model")), heavy_gflop()
    else:
        model_dir, gflop = export_medium(os.path.join(args.work_dir, "medium_model")), medium_gflop()
    first = model_only_rate(model_dir, args.batch_size, args.model_batches)
    print(f"model {args.model}: {gflop:.2f} GFLOP a window; model alone: {first:.1f} windows/s "
          f"(batch {args.batch_size}, {os.cpu_count()} cores)", flush=True)
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = {v: [] for v in variants}
    maps = []
    for size in sizes:
        for variant in variants:
            name = "scene" if variant == "coregistered" else "native"
            scene = os.path.join(args.work_dir, f"{name}_{size}")
            started = time.time()
            flags = make_variant(variant, scene, size)
            made = time.time() - started
            out = os.path.join(args.work_dir, f"map_{variant}_{size}.tif")
            seconds, peak_mb, _, cpu = measure.measured(
                [sys.executable, "-m", "pipelines.predict_map", "--scene_path", scene, *flags,
                 "--exported_model_dir", model_dir, "--output_path", out, "--stride",
                 str(args.stride), "--batch_size", str(args.batch_size)], cwd=ROOT)
            with open(out[:-len(".tif")] + ".summary.json") as f:
                summary = json.load(f)
            rate = summary["predicted"] / seconds
            maps.append((variant, size, summary["predicted"], seconds, rate, peak_mb, cpu, made))
            print(f"{variant} scene {size}x{size} at stride {args.stride}: "
                  f"{summary['predicted']} windows in {seconds:.1f} s (whole process), "
                  f"{rate:.1f} windows/s; peak RSS {peak_mb:.0f} MB; CPU {cpu:.0f} s"
                  + (f"; scene written in {made:.0f} s" if made > 1 else ""), flush=True)
    # the model alone again: another load on the machine slows it, never speeds
    # it up, so the higher of the two rates is the ceiling the maps are held to
    last = model_only_rate(model_dir, args.batch_size, args.model_batches)
    ceiling = max(first, last)
    print(f"model alone again: {last:.1f} windows/s; the ceiling: {ceiling:.1f} windows/s "
          f"(the higher)")
    for variant, size, predicted, seconds, rate, peak_mb, cpu, made in maps:
        rows[variant].append((size, predicted, seconds, rate, rate / ceiling, peak_mb))
        print(f"{variant} {size}x{size}: {rate:.1f} windows/s = {rate / ceiling:.2f}x the model "
              f"alone; peak RSS {peak_mb:.0f} MB")
    for variant, found in rows.items():
        if len(found) > 1:
            print(f"{variant}: peak RSS growth {found[0][0]}^2 -> {found[-1][0]}^2: "
                  f"{found[-1][5] - found[0][5]:+.0f} MB")
    print("map rate / model-only rate: " + "; ".join(
        f"{variant} " + ", ".join(f"{size}^2 {fraction:.2f}x"
                                  for size, _, _, _, fraction, _ in found)
        for variant, found in rows.items()))
    if args.profile_tile:
        from transforms.dataset.model_interface import MODEL_SIZE

        for variant in variants:
            name = "scene" if variant == "coregistered" else "native"
            scene = os.path.join(args.work_dir, f"{name}_{sizes[-1]}")
            profile_tile(scene, make_variant(variant, scene, sizes[-1]), args.stride,
                         MODEL_SIZE, args.batch_size)


if __name__ == "__main__":
    main()
