"""predict_map's Zarr cube against one map a time, and its memory over time.

Every figure is a whole ``python -m pipelines.predict_map`` process, start-up
included, timed with its peak RSS (``measure.py``). The scenes are the map
benchmark's generated scenes (14 int16 bands plus SMAP/GLDAS, 10 m pixels),
seeds 0, 1, ..., each in a folder named for its time
(``scene_2021-06-01T10:00``, ``scene_2021-06-02T10:00``, ...), written once
under ``--work_dir`` and reused.

Speed: one cube of ``--times`` N scenes of ``--size`` pixels a side
(``--scene_path "<glob>" --output_path cube.zarr``) against N single-scene
maps of the same scenes (N processes, ``--output_path t.tif``; their wall
times summed). The singles pay N start-ups, the cube one, so the start-up of
one process is measured too, as a whole ``predict_map`` of a scene of one
window and two strides a side (imports, the model loaded, Beam started, a
tiny COG written: a few windows, so it overstates the start-up a little),
and the cube is also held to the singles' sum less (N - 1) start-ups.
Target: cube / singles <= 1.15.

Memory: the peak RSS of a cube of each of ``--memory_times`` (default 5 and
20) scenes of ``--memory_size`` pixels a side, and its growth from the first
to the last. Target: <= 100 MB.

The model is map_benchmark's CNN with the released interface (``--model
medium``, about 0.5 GFLOP a 256 x 256 window) or the inference benchmark's
ResNet-like model (``--model heavy``, about 6 GFLOP).

    python benchmarks/cube_benchmark.py --work_dir bench_data/cubes \
        --size 2048 --times 5 --memory_size 1024 --memory_times 5,20 --stride 64
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from datetime import datetime, timedelta

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

import measure  # noqa: E402
from inference_benchmark import export_heavy, heavy_gflop  # noqa: E402
from map_benchmark import export_medium, medium_gflop  # noqa: E402

FIRST_TIME = datetime(2021, 6, 1, 10, 0)


def write_scene(folder: str, side: int, seed: int) -> str:
    """The generated scene ``folder`` of ``side`` pixels a side (written once)."""
    from transforms.synthetic.scene import SceneConfig, make_scene

    if not os.path.isdir(folder):
        shutil.rmtree(folder + ".part", ignore_errors=True)
        make_scene(SceneConfig(folder + ".part", side, side, seed=seed))
        os.replace(folder + ".part", folder)
    return folder


def timed_scenes(work_dir: str, side: int, n: int) -> list:
    """The first ``n`` timed scenes of ``side`` pixels: ``scenes_<side>/
    scene_2021-06-01T10:00`` (seed 0), the next day (seed 1), ..."""
    folder = os.path.join(work_dir, f"scenes_{side}")
    return [write_scene(os.path.join(folder, "scene_" + (FIRST_TIME + timedelta(days=k))
                                     .strftime("%Y-%m-%dT%H:%M")), side, k)
            for k in range(n)]


def cube_glob(work_dir: str, side: int, n: int) -> str:
    """A glob matching exactly the first ``n`` scenes of ``side`` pixels: a
    folder of links to them (the scenes are written once for every n)."""
    links = os.path.join(work_dir, f"cube_{side}_{n}_scenes")
    shutil.rmtree(links, ignore_errors=True)
    os.makedirs(links)
    for scene in timed_scenes(work_dir, side, n):
        os.symlink(os.path.abspath(scene), os.path.join(links, os.path.basename(scene)))
    return os.path.join(links, "scene_*")


def predict_map(scene_path: str, output: str, args, model_dir: str) -> tuple:
    """``(seconds, peak RSS MB, windows predicted)`` of one whole predict_map
    process writing ``output`` (a ``.tif`` map or a ``.zarr`` cube)."""
    root = output[:-len(".zarr")] if output.endswith(".zarr") else output[:-len(".tif")]
    if output.endswith(".zarr"):
        shutil.rmtree(output, ignore_errors=True)
    seconds, peak_mb, _, _ = measure.measured(
        [sys.executable, "-m", "pipelines.predict_map", "--scene_path", scene_path,
         "--exported_model_dir", model_dir, "--output_path", output, "--stride",
         str(args.stride), "--batch_size", str(args.batch_size)], cwd=ROOT)
    with open(root + ".summary.json") as f:
        return seconds, peak_mb, json.load(f)["predicted"]


def speed(args, model_dir: str) -> list:
    """The cube of ``--times`` scenes against as many single maps; table rows."""
    from transforms.dataset.model_interface import MODEL_SIZE

    n, side, work = args.times, args.size, os.path.abspath(args.work_dir)
    pattern = cube_glob(work, side, n)
    tiny_side = MODEL_SIZE + 2 * args.stride  # a few windows: none at a scene's edge
    tiny = write_scene(os.path.join(work, f"tiny_{tiny_side}"), tiny_side, 0)
    start_s, start_mb, start_w = predict_map(tiny, os.path.join(work, "tiny.tif"), args,
                                             model_dir)
    print(f"start-up: a map of a {tiny_side}x{tiny_side} scene ({start_w} windows): "
          f"{start_s:.1f} s", flush=True)
    cube_s, cube_mb, cube_w = predict_map(pattern, os.path.join(work, f"cube_{side}_{n}.zarr"),
                                          args, model_dir)
    print(f"cube of {n} times: {cube_w} windows in {cube_s:.1f} s", flush=True)
    singles = []
    for k, scene in enumerate(timed_scenes(work, side, n)):
        singles.append(predict_map(scene, os.path.join(work, f"single_{side}_{k}.tif"), args,
                                   model_dir))
        print(f"single map {k + 1}/{n}: {singles[-1][2]} windows in {singles[-1][0]:.1f} s",
              flush=True)
    single_s = sum(s[0] for s in singles)
    single_w = sum(s[2] for s in singles)
    if single_w != cube_w:
        print(f"WARNING: the cube predicted {cube_w} windows, the singles {single_w}")
    less_startups = single_s - (n - 1) * start_s
    label = f"{n} x {side}^2"
    return [
        (f"cube of {label} (one process)", f"{cube_s:.1f} s", f"{cube_mb:.0f} MB",
         f"{cube_w / cube_s:.1f}"),
        (f"{n} single maps of {side}^2, summed", f"{single_s:.1f} s",
         f"{max(s[1] for s in singles):.0f} MB (max)", f"{single_w / single_s:.1f}"),
        (f"start-up: one map of {tiny_side}^2 ({start_w} windows)", f"{start_s:.1f} s",
         f"{start_mb:.0f} MB", ""),
        ("ratio cube / singles summed (target <= 1.15)", f"{cube_s / single_s:.2f}x", "", ""),
        (f"ratio cube / (singles summed - {n - 1} start-ups)", f"{cube_s / less_startups:.2f}x",
         "", ""),
    ]


def memory(args, model_dir: str) -> list:
    """The cube's peak RSS at each of ``--memory_times``; table rows."""
    work, side = os.path.abspath(args.work_dir), args.memory_size
    counts = [int(t) for t in args.memory_times.split(",")]
    rows, peaks = [], []
    for n in counts:
        seconds, peak_mb, windows = predict_map(
            cube_glob(work, side, n), os.path.join(work, f"cube_{side}_{n}.zarr"), args,
            model_dir)
        peaks.append(peak_mb)
        print(f"cube of {n} x {side}^2: {windows} windows in {seconds:.1f} s, peak RSS "
              f"{peak_mb:.0f} MB", flush=True)
        rows.append((f"cube of {n} x {side}^2 (one process)", f"{seconds:.1f} s",
                     f"{peak_mb:.0f} MB", f"{windows / seconds:.1f}"))
    if len(peaks) > 1:
        rows.append((f"peak RSS growth {counts[0]} -> {counts[-1]} times (target <= 100 MB)",
                     "", f"{peaks[-1] - peaks[0]:+.0f} MB", ""))
    return rows


def print_table(title: str, rows: list) -> None:
    header = ("", "wall time", "peak RSS", "windows/s")
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(4)]
    print(f"\n{title}")
    for row in [header] + rows:
        print("  " + row[0].ljust(widths[0]) + "  "
              + "  ".join(c.rjust(w) for c, w in zip(row[1:], widths[1:])))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work_dir", default="bench_data/cubes")
    parser.add_argument("--size", type=int, default=2048, help="speed: scene side in pixels")
    parser.add_argument("--times", type=int, default=5, help="speed: scenes in the cube")
    parser.add_argument("--memory_times", default="5,20",
                        help="memory: the cubes' numbers of scenes, comma-separated")
    parser.add_argument("--memory_size", type=int, default=1024,
                        help="memory: scene side in pixels")
    parser.add_argument("--stride", type=int, default=64)
    parser.add_argument("--model", choices=("medium", "heavy"), default="medium")
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--skip_speed", action="store_true")
    parser.add_argument("--skip_memory", action="store_true")
    args = parser.parse_args(argv)
    if args.times < 1 or any(int(t) < 1 for t in args.memory_times.split(",")):
        parser.error("--times and --memory_times: at least 1 scene")

    os.makedirs(args.work_dir, exist_ok=True)
    export, gflop = ((export_heavy, heavy_gflop()) if args.model == "heavy"
                     else (export_medium, medium_gflop()))
    model_dir = export(os.path.join(args.work_dir, f"{args.model}_model"))
    print(f"model {args.model}: {gflop:.2f} GFLOP a window; stride {args.stride}, batch "
          f"{args.batch_size}, {os.cpu_count()} cores", flush=True)
    tables = []
    if not args.skip_speed:
        tables.append((f"speed: a cube of {args.times} times against {args.times} single "
                       f"maps (whole processes)", speed(args, model_dir)))
    if not args.skip_memory:
        tables.append((f"memory: cubes of {args.memory_times} times of {args.memory_size}^2",
                       memory(args, model_dir)))
    for title, rows in tables:
        print_table(title, rows)


if __name__ == "__main__":
    main()
