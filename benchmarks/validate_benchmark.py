"""validate_map on a cube of many times and many stations: wall time, peak
RSS, and the Zarr chunks it reads (only those holding stations?).

The cube is written directly, without the model, in predict_map's layout
(``transforms.mapping.cube.template`` written with ``to_zarr``: Zarr format 2,
consolidated, chunks of one time and ``--chunk`` x ``--chunk`` map pixels;
320 m pixels in EPSG:32633): ``--times`` times 3 hours apart of ``--size``
pixels a side, random float32 (``soil_moisture`` 0.05-0.5 with 2 % NaN,
``smap_sm``/``gldas_sm`` whole numbers 0-255). It is written once under
``--work_dir`` and reused. The ISMN download (a zip in the real layout, CEOP
format, written with the generator's ``transforms.synthetic`` file writers)
holds ``--stations`` stations, each with one 0.05 m soil-moisture sensor and
hourly readings from a day before the first map time to a day after the last
(one reading exactly at each map time); 1 in 20 stands north of the map, the
rest in ``--clusters`` clusters (pixel offsets N(0, 5 px) around random
centres), so they fall into a minority of the chunks.

Measured: ``python -m pipelines.validate_map`` as a whole process (wall time
and peak RSS through ``measure.py``, ``--bootstrap_samples 100``); then the
validation alone (``validation.run_validation``, no report) in this process
with ``zarr.storage.LocalStore.get`` wrapped to record every key read, as
``tests/test_validate_map.py`` does: the data keys read must be exactly the
chunks holding stations x 3 variables x the times, each read once.

    python benchmarks/validate_benchmark.py --work_dir bench_data/validate \
        --times 20 --size 1024 --chunk 32 --stations 1000 --clusters 100
"""

from __future__ import annotations

import argparse
import collections
import csv
import os
import shutil
import sys
import time
import zipfile
from datetime import datetime, timedelta

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

import measure  # noqa: E402

CRS = "EPSG:32633"
X0, Y0, PIXEL = 400000.0, 5300000.0, 320.0
FIRST_TIME, STEP_HOURS = datetime(2021, 6, 1, 0, 0), 3
SPREAD = 5.0  # a cluster's stations: pixel offsets N(0, SPREAD) around its centre
NETWORK = "BENCH"
VARIABLES = ("soil_moisture", "smap_sm", "gldas_sm")
EPOCH = datetime(1970, 1, 1)


def map_times(n: int) -> list:
    return [FIRST_TIME + timedelta(hours=STEP_HOURS * k) for k in range(n)]


def write_cube(path: str, args) -> str:
    """The cube at ``path`` in predict_map's layout (written once)."""
    if os.path.isdir(path):
        return path
    import pyproj
    import zarr

    from transforms.mapping import cube

    part = path + ".part"
    shutil.rmtree(part, ignore_errors=True)
    grid = cube.CubeGrid(pyproj.CRS.from_user_input(CRS).to_wkt(),
                         (PIXEL, 0.0, X0, 0.0, -PIXEL, Y0), args.size, args.size, args.chunk)
    template = cube.template(grid, cube.as_times([np.datetime64(t) for t in map_times(args.times)]),
                             {"model": "benchmark", "stride": 32, "window": 32,
                              "edge_mode": "nan", "project_version": "0.1.0"})
    encoding = cube.encoding()
    for name in cube.VARIABLES:
        encoding[name]["chunks"] = (1, args.chunk, args.chunk)
    template.to_zarr(part, mode="w", compute=False, zarr_format=2, consolidated=True,
                     encoding=encoding)  # metadata and coordinates only
    group = zarr.open_group(part, mode="r+", zarr_format=2, use_consolidated=False)
    rng = np.random.default_rng(0)
    shape = (args.size, args.size)
    for k in range(args.times):
        sm = rng.uniform(0.05, 0.5, shape).astype(np.float32)
        sm[rng.random(shape) < 0.02] = np.nan
        group["soil_moisture"][k] = sm
        for name in ("smap_sm", "gldas_sm"):
            group[name][k] = rng.integers(0, 256, shape).astype(np.float32)
    cube.read_cube(part)  # raises unless it is a cube of ours
    os.replace(part, path)
    return path


def place_stations(args) -> tuple:
    """``(pixels (n, 2) row/col, lat, lon, inside)``: clustered stations, then
    1 in 20 north of the map; coordinates at pixel centres, 5 decimals."""
    from pyproj import Transformer

    rng = np.random.default_rng(1)
    n_out = max(1, args.stations // 20)
    n_in, size = args.stations - n_out, args.size
    centres = rng.uniform(3 * SPREAD, size - 3 * SPREAD, (args.clusters, 2))
    offsets = rng.normal(0, SPREAD, (n_in, 2))
    inside = np.clip(np.floor(centres[rng.integers(0, args.clusters, n_in)] + offsets), 0,
                     size - 1).astype(np.int64)
    outside = np.column_stack([-40 - 3 * np.arange(n_out), rng.integers(0, size, n_out)])
    pixels = np.vstack([inside, outside])
    lon, lat = Transformer.from_crs(CRS, "EPSG:4326", always_xy=True).transform(
        X0 + PIXEL * (pixels[:, 1] + 0.5), Y0 - PIXEL * (pixels[:, 0] + 0.5))
    return pixels, np.round(lat, 5), np.round(lon, 5), np.arange(len(pixels)) < n_in


def write_ismn(path: str, args, lat, lon) -> str:
    """The ISMN zip: one CEOP file per station (the generator's writers)."""
    from transforms.synthetic.ismn_files import (Series, latent_series, reading_flags,
                                                 render_ismn_file)
    from transforms.synthetic.stations import SensorSpec, StationSpec, ismn_file_name

    sensor = SensorSpec("sm", 0.05, 0.05, "CS655")
    times = [int((t - EPOCH).total_seconds()) for t in map_times(args.times)]
    hours = np.arange(times[0] - 86400, times[-1] + 86400 + 1, 3600, dtype=np.int64)
    rng = np.random.default_rng(2)
    with zipfile.ZipFile(path + ".part", "w", zipfile.ZIP_DEFLATED) as z:
        def add(name: str, data: bytes) -> None:  # as series_stations.write_download
            info = zipfile.ZipInfo(name, date_time=(2022, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)

        for n in range(len(lat)):
            spec = StationSpec(NETWORK, f"S{n:05d}", float(lat[n]), float(lon[n]), 300.0,
                               (sensor,), static_csv=False)
            values = latent_series(rng, len(hours), float(rng.uniform(0.15, 0.3)), "sm")
            series = Series(hours, np.round(values, 4), reading_flags(rng, len(hours)))
            name = ismn_file_name(spec, sensor, int(hours[0]), int(hours[-1]))
            add(f"{NETWORK}/{spec.name}/{name}", render_ismn_file(spec, sensor, series, "ceop"))
        add("Readme.txt", b"ISMN-format stations made by benchmarks/validate_benchmark.py\r\n")
    os.replace(path + ".part", path)
    return path


def keys_read(cube_path: str, ismn: str, out: str) -> tuple:
    """``(keys read, summary)`` of the validation alone, run in this process
    with ``LocalStore.get`` recording every key (tests/test_validate_map.py)."""
    import zarr.storage
    from apache_beam.options.pipeline_options import PipelineOptions

    from pipelines import validate_map
    from transforms import validation

    keys, original = [], zarr.storage.LocalStore.get

    async def get(self, key, *a, **kw):
        keys.append(key)
        return await original(self, key, *a, **kw)

    options = PipelineOptions(["--map", cube_path, "--ismn_data_path", ismn, "--output_dir", out])
    options.view_as(validate_map.ValidateMapOptions)
    zarr.storage.LocalStore.get = get
    try:
        summary = validation.run_validation(validation.ValidationConfig.from_options(options),
                                            options)
    finally:
        zarr.storage.LocalStore.get = original
    return keys, summary


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work_dir", default="bench_data/validate")
    parser.add_argument("--times", type=int, default=20, help="map times in the cube")
    parser.add_argument("--size", type=int, default=1024, help="map pixels a side")
    parser.add_argument("--chunk", type=int, default=32, help="chunk side in map pixels")
    parser.add_argument("--stations", type=int, default=1000, help="ISMN stations (1 in 20 off "
                                                                    "the map)")
    parser.add_argument("--clusters", type=int, default=100, help="clusters of the stations "
                                                                  "on the map")
    parser.add_argument("--bootstrap_samples", type=int, default=100)
    args = parser.parse_args(argv)
    work = os.path.abspath(args.work_dir)
    os.makedirs(work, exist_ok=True)

    start = time.time()
    cube_path = write_cube(os.path.join(
        work, f"cube_{args.times}x{args.size}_c{args.chunk}.zarr"), args)
    print(f"cube {cube_path}: ready in {time.time() - start:.1f} s", flush=True)
    pixels, lat, lon, inside = place_stations(args)
    ismn = write_ismn(os.path.join(work, "ISMN.zip"), args, lat, lon)
    print(f"ISMN download {ismn}: {len(lat)} stations, {os.path.getsize(ismn) / 1e6:.1f} MB",
          flush=True)

    out = os.path.join(work, "validation")
    shutil.rmtree(out, ignore_errors=True)
    seconds, peak_mb, stdout, cpu = measure.measured(
        [sys.executable, "-m", "pipelines.validate_map", "--map", cube_path, "--ismn_data_path",
         ismn, "--output_dir", out, "--bootstrap_samples", str(args.bootstrap_samples)], cwd=ROOT)
    lines = stdout.strip().splitlines()
    with open(os.path.join(out, "pairs.csv")) as f:
        pairs_text = f.read()

    counted = os.path.join(work, "validation_keys")
    shutil.rmtree(counted, ignore_errors=True)
    counting_start = time.time()
    keys, summary = keys_read(cube_path, ismn, counted)
    counting_s = time.time() - counting_start
    with open(os.path.join(counted, "pairs.csv")) as f:
        same_pairs = f.read() == pairs_text
    with open(os.path.join(counted, "stations.csv")) as f:
        placed = {int(r["sensor_id"].split("__")[1][1:]): r for r in csv.DictReader(f)}
    same_pixels = all((int(placed[n]["row"]), int(placed[n]["col"])) == tuple(pixels[n])
                      for n in range(len(pixels)) if inside[n])

    c = args.chunk
    per_time = (-(-args.size // c)) ** 2
    chunks = {(int(r) // c, int(col) // c) for r, col in pixels[inside]}
    data = [k for k in keys if k.split("/")[0] in VARIABLES
            and not k.split("/")[-1].startswith((".", "zarr"))]
    expected = {f"{v}/{t}.{r}.{col}" for v in VARIABLES for t in range(args.times)
                for r, col in chunks}
    by_variable = collections.Counter(k.split("/")[0] for k in data)
    print(f"\nsettings: {args.times} times x {args.size}^2 map pixels, chunks (1, {c}, {c}); "
          f"{args.stations} stations ({int(inside.sum())} on the map in {args.clusters} "
          f"clusters, {int((~inside).sum())} off it); {os.cpu_count()} cores")
    print(f"chunks in the cube: {args.times * per_time} per variable ({per_time} a time), "
          f"{3 * args.times * per_time} in all")
    print(f"distinct chunks holding stations: {len(chunks)} of {per_time} a time "
          f"({100 * len(chunks) / per_time:.1f} %)")
    print(f"keys read: {len(keys)} in all; data {len(data)} ("
          + ", ".join(f"{v} {by_variable[v]}" for v in VARIABLES)
          + f"), metadata and coordinates {len(keys) - len(data)} (distinct: "
            f"{', '.join(sorted(set(keys) - set(data)))})")
    print(f"data keys == chunks holding stations x 3 variables x {args.times} times "
          f"({len(chunks)} x 3 x {args.times} = {len(expected)}): {set(data) == expected}; "
          f"each read once: {len(data) == len(set(data))}; share of the cube's chunks read: "
          f"{100 * len(data) / (3 * args.times * per_time):.2f} %")
    print(f"validation alone in this process (keys recorded): {counting_s:.1f} s; pairs.csv "
          f"identical to the whole run's: {same_pairs}; stations' pixels as placed: "
          f"{same_pixels}")
    print(f"\nvalidate_map, whole process (--bootstrap_samples {args.bootstrap_samples}): "
          f"{seconds:.1f} s wall, {cpu:.1f} CPU s, peak RSS {peak_mb:.0f} MB")
    print(f"pairs written: {pairs_text.count(chr(10)) - 1}; outcomes: {summary['outcomes']}")
    print(f"report's first line: {lines[0] if lines else ''}")
    print(f"its last line: {lines[-1] if lines else ''}")


if __name__ == "__main__":
    main()
