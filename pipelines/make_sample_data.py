"""Generate a realistic sample of the dataset shards and a matching ISMN download.

Example (the demo's sample):

    python -m pipelines.make_sample_data --output_dir sample_data \
        --num_shards 2 --examples_per_shard 120 --image_size 32 --seed 0 \
        --ismn_format ceop --ismn_layout zip --scene_size 768 --native_scene_size 768

Writes ``<output_dir>/shards/data-NNNNN-of-MMMMM.tfrecord.gz``,
``<output_dir>/ismn/ISMN_sample.zip`` (or the folder ``ISMN_sample/`` with
``--ismn_layout dir``), ``<output_dir>/ground_truth.jsonl`` (each example's
expected merge outcome and label) and ``<output_dir>/manifest.json``; with
``--scene_size N``, ``<output_dir>/scene/`` for ``predict_map``; with
``--native_scene_size N``, ``<output_dir>/native_scene/``: a scene as a user
downloads it (each band on its own grid and in its own units, Sentinel-2 in
two tiles) with its ``encoding.json`` and a STAC ``items.json``; with
``--scene_series N`` (and ``--scene_size``), ``<output_dir>/series/``: N
scenes ``scene_<YYYY-MM-DDTHH:MM>/`` through time, an ISMN download of
stations inside them ``ISMN_series.zip`` and ``series.json``.
See ``transforms.synthetic.generate`` (and ``scene``, ``native``, ``series``)
for what the data contains.
"""

from __future__ import annotations

import logging
import os
from typing import List, Optional

from transforms import runtime, synthetic
from transforms.runtime.arguments import command_parser


class SampleDataOptions:
    """make_sample_data's flags: a plain class, not a ``PipelineOptions`` (the
    command builds no Beam pipeline; see ``runtime.cli_main``'s ``beam``)."""

    @classmethod
    def _add_argparse_args(cls, p):
        defaults = synthetic.SampleConfig(output_dir="")
        p.add_argument("--output_dir", required=True,
                       help="the folder for shards/, ismn/, ground_truth.jsonl, manifest.json")
        p.add_argument("--num_shards", type=int, default=defaults.num_shards,
                       help="shards to write (default %(default)s)")
        p.add_argument("--examples_per_shard", type=int, default=defaults.examples_per_shard,
                       help="examples in each shard (default %(default)s)")
        p.add_argument("--image_size", type=int, default=defaults.image_size,
                       help="image side in pixels (default %(default)s; 512 in the release)")
        p.add_argument("--seed", type=int, default=defaults.seed,
                       help="random seed (default %(default)s)")
        p.add_argument("--ismn_format", choices=("ceop", "header_values"),
                       default=defaults.ismn_format,
                       help="the ISMN files' format (default %(default)s)")
        p.add_argument("--ismn_layout", choices=("zip", "dir"), default=defaults.ismn_layout,
                       help="the ISMN download as a zip or an extracted folder (default "
                            "%(default)s)")
        p.add_argument("--ismn_days", type=int, default=defaults.ismn_days,
                       help="length of the hourly ISMN series, days (default %(default)s)")
        p.add_argument("--start", default=defaults.start,
                       help="first day of the ISMN series (default %(default)s)")
        p.add_argument("--scene_size", type=int, default=0,
                       help="also write <output_dir>/scene/: a scene of this many 10 m pixels a "
                            "side in UTM, with coarse SMAP/GLDAS rasters in EPSG:4326, for "
                            "predict_map (default 0: none)")
        p.add_argument("--native_scene_size", type=int, default=0,
                       help="also write <output_dir>/native_scene/: a scene as downloaded, "
                            "this many 10 m pixels a side on Sentinel-1 VV's grid (each band on "
                            "its product's grid and in its units, Sentinel-2 in two tiles), "
                            "with encoding.json and a STAC items.json (default 0: none)")
        p.add_argument("--scene_series", type=int, default=0,
                       help="also write <output_dir>/series/: this many scenes like scene/ "
                            "(--scene_size a side, required), 6 days apart from --start at "
                            "10:00 UTC, in folders scene_YYYY-MM-DDTHH:MM, the soil drying and "
                            "then wetted by rain; ISMN_series.zip (or ISMN_series/ with "
                            "--ismn_layout dir): stations inside them whose 0.05 m readings at "
                            "each scene time follow the examples' label rule on their map "
                            "pixel's window at predict_map --stride equal to --image_size, one "
                            "outside, one gap; series.json (default 0: none; 3 to 5 make a demo)")


OPTION_CLASSES = (SampleDataOptions,)


def parse_args(argv: Optional[List[str]] = None):
    """``(SampleConfig, scene size, native scene size, SeriesConfig or None)``
    from the command line (UsageError: a flag to fix)."""
    args = vars(command_parser("make_sample_data", OPTION_CLASSES).parse_args(argv))
    sizes = args.pop("scene_size"), args.pop("native_scene_size"), args.pop("scene_series")
    for flag, size in zip(("--scene_size", "--native_scene_size", "--scene_series"), sizes):
        if size < 0:
            raise runtime.UsageError(f"{flag} must be 0 (none) or more, not {size}")
    if sizes[2] and not sizes[0]:
        raise runtime.UsageError("--scene_series needs --scene_size (its scenes' side)")
    config, series = synthetic.SampleConfig(**args), None
    if sizes[2]:
        try:  # stations judged at predict_map --stride and window --image_size
            series = synthetic.SeriesConfig(
                os.path.join(config.output_dir, "series"), sizes[2], sizes[0], config.image_size,
                config.image_size, config.start, seed=config.seed, nodata_box=cloud(sizes[0]),
                ismn_format=config.ismn_format, ismn_layout=config.ismn_layout)
        except ValueError as e:
            raise runtime.UsageError(f"--scene_series: {e}") from None
    return config, sizes[0], sizes[1], series


def run(argv: Optional[List[str]] = None) -> synthetic.SamplePaths:
    from transforms.synthetic.scene import SceneConfig, make_scene

    config, scene_size, native_size, series = parse_args(argv)
    paths = synthetic.generate(config)
    if scene_size:
        folder = os.path.join(config.output_dir, "scene")
        make_scene(SceneConfig(folder, scene_size, scene_size, seed=config.seed,
                               nodata_box=cloud(scene_size)))
        print(f"wrote the scene {folder} ({scene_size}x{scene_size} pixels at 10 m)")
    if native_size:
        folder = os.path.join(config.output_dir, "native_scene")
        if os.path.isdir(folder):  # no file of an earlier, other native scene left in it
            import shutil

            shutil.rmtree(folder)
        synthetic.make_native_scene(synthetic.NativeConfig(
            folder, native_size, seed=config.seed, cloud=cloud(native_size)))
        print(f"wrote the native scene {folder} ({native_size}x{native_size} pixels at 10 m on "
              f"Sentinel-1 VV's grid; map it with --encoding {folder}/encoding.json, or from "
              f"{folder}/items.json)")
    if series:
        synthetic.make_series(series)
    return paths


def cloud(size: int):
    """The scene's planted cloud of nodata: rows and columns ``(r0, r1, c0, c1)``."""
    return size // 3, size // 3 + 40, size // 2, size // 2 + 60


def main(argv: Optional[List[str]] = None) -> int:
    logging.getLogger().setLevel(logging.INFO)
    return runtime.cli_main("make_sample_data", run, lambda _: 0, argv, OPTION_CLASSES,
                            __doc__.splitlines()[0], beam=False)


if __name__ == "__main__":
    import sys

    sys.exit(main())
