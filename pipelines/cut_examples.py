"""Cut 512 x 512 examples in the released schema from a scene at given points.

    python -m pipelines.cut_examples --scene_path scene/ --points points.csv \
        --timestamp 2021-06-01T10:30:00Z --output_dir examples/

Writes ``<output_dir>/data-00000-of-00001.tfrecord.gz`` (an example per point
that could be cut, in the CSV's order) and ``failures.jsonl`` (the others and
why); exit 1 when none could. ``--compare_with 'shards/*.gz'``: each example
of the shards lying in the scene is cut again and compared band by band
(``compare.json``); exit 1 when none lies in it. ``--fit_encoding
enc.json`` with it: the scene read raw, each band's encoding fitted against
the shards (``mapping.fit``), enc.json written for ``predict_map
--encoding`` (exit 1, none written, when a fit is poor). Not Beam.
"""

from __future__ import annotations

import os
import sys
import time
from typing import List, Optional

from transforms import runtime
from transforms import mapping
from transforms.mapping import fit
from transforms.mapping.examples import write_examples
from transforms.mapping.points import DAY_MS, EARLIEST_MS, read_points
from transforms.runtime.arguments import command_parser, time_ms


class CutExamplesOptions:
    """cut_examples' flags: a plain class, not a ``PipelineOptions`` (the
    command builds no Beam pipeline; see ``runtime.cli_main``'s ``beam``)."""

    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument("--scene_path", default=None,
                            help="the scene folder: GeoTIFFs of the model's 14 bands, "
                                 "smap_sm.tif, gldas_sm.tif, or a STAC .json (as for "
                                 "predict_map); or give --stac_api")
        mapping.add_scene_arguments(parser)
        parser.add_argument("--points", default=None,
                            help="CSV whose header names sensor_id,lat,lon (WGS84 degrees; "
                                 "UTF-8, a byte-order mark is fine): one example centred at "
                                 "each point (with --timestamp; not with --compare_with)")
        parser.add_argument("--timestamp", default=None,
                            help="the examples' time: an ISO time (UTC when it names no zone) "
                                 "or Unix milliseconds, from 2014-04-03 (Sentinel-1's launch) "
                                 "to now + 1 day; stored as float32 Unix milliseconds, as in "
                                 "the release: 131072 ms apart near 2021, so off by up to "
                                 "about 65 s")
        parser.add_argument("--compare_with", default=None,
                            help="glob of released shards: cut each example that lies in the "
                                 "scene again from the scene and compare band by band (mean "
                                 "absolute difference, correlation): a check of the scene's "
                                 "encoding (instead of --points and --timestamp)")
        parser.add_argument("--fit_encoding", default=None,
                            help="with --compare_with: fit each band's encoding from the "
                                 "scene's own values (read raw, floats accepted) to the "
                                 "examples' integers, and write it to this JSON file, for "
                                 "predict_map --encoding (not with --encoding)")
        parser.add_argument("--fit_min_r", type=float, default=None,
                            help=f"with --fit_encoding: the lowest |r| of a band's fit; below "
                                 f"it no file is written, exit 1 (default {fit.DEFAULT_MIN_R})")
        parser.add_argument("--acquired", default=None,
                            help="with --compare_with: only the examples whose "
                                 "sentinel_1_timestamp and sentinel_2_timestamp fall on these "
                                 "UTC days, S1DAY,S2DAY (YYYY-MM-DD,YYYY-MM-DD): the scene's own "
                                 "acquisitions (the table lists those inside it)")
        parser.add_argument("--output_dir", required=True,
                            help="the folder for the examples and failures.jsonl (or "
                                 "compare.json); created when missing")
        parser.add_argument("--size", type=int, default=None,
                            help="the examples' side in pixels, positive and even: they are "
                                 "centred on a pixel corner (default 512, the release's; not "
                                 "with --compare_with, which uses each example's own)")


OPTION_CLASSES = (CutExamplesOptions,)
DESCRIPTION = ("Cut examples in the released schema from a scene at the points of a CSV with "
               "the header sensor_id,lat,lon, or compare a scene with released examples "
               "(and fit its encoding to them).")


def check_flags(args) -> Optional[float]:
    """The flags' combinations and values (UsageError naming the flag); returns
    ``--timestamp`` in Unix milliseconds (None with ``--compare_with``)."""
    given = [f"--{f}" for f in ("points", "timestamp", "size") if getattr(args, f) is not None]
    if args.compare_with and given:
        raise runtime.UsageError(f"--compare_with compares the shards' own examples: leave out "
                                 f"{' and '.join(given)}")
    if not args.compare_with and (args.points is None or args.timestamp is None):
        raise runtime.UsageError("give --points and --timestamp, or --compare_with")
    fit.check_fit_flags(args.fit_encoding, args.fit_min_r, args.compare_with, args.encoding,
                        (("--scene_path", args.scene_path), ("--band_map", args.band_map)))
    args.acquired = fit.parse_acquired(args.acquired, args.compare_with)
    if args.size is not None and (args.size <= 0 or args.size % 2):
        raise runtime.UsageError(f"--size must be a positive even number (an example is "
                                 f"centred on a pixel corner), not {args.size}")
    when = None if args.compare_with else time_ms(
        "--timestamp", args.timestamp, EARLIEST_MS, time.time() * 1000 + DAY_MS,
        ("Sentinel-1's launch", "now + 1 day"))
    scene_path = args.scene_path
    if scene_path and "://" not in scene_path and not os.path.isdir(scene_path) and not (
            scene_path.lower().endswith(".json") and os.path.isfile(scene_path)):
        raise runtime.UsageError(f"--scene_path {scene_path} is not a folder"
                                 + (" nor a file" if scene_path.endswith(".json") else ""))
    settings_of(args).check_scene_flags()
    if os.path.isfile(args.output_dir):
        raise runtime.UsageError(f"--output_dir {args.output_dir} is a file, not a folder")
    return when


def settings_of(args) -> mapping.SceneSettings:
    """The scene's flags as ``mapping.SceneSettings``."""
    return mapping.SceneSettings(scene_path=args.scene_path, grid_like=args.grid_like,
                                 encoding=args.encoding, resampling=args.resampling,
                                 band_map=args.band_map, stac_api=args.stac_api,
                                 collections=args.collections, bbox=args.bbox,
                                 datetime=args.datetime)


def run(argv: Optional[List[str]] = None) -> dict:
    """Cut the examples (or compare, with ``--compare_with``; and fit, with
    ``--fit_encoding``); returns what was done."""
    args = command_parser("cut_examples", OPTION_CLASSES).parse_args(argv)
    when = check_flags(args)
    points = None if args.compare_with else read_points(args.points)
    scene = settings_of(args).open_scene(raw=args.fit_encoding is not None)  # fit: own units
    runtime.check_writable(args.output_dir, "--output_dir")  # creates it: after every check
    try:
        if args.fit_encoding:
            return fit.write_fit(scene, args.compare_with, args.output_dir, args.fit_encoding,
                                 args.fit_min_r, args.acquired)
        if args.compare_with:
            return fit.write_comparison(scene, args.compare_with, args.output_dir, args.acquired)
        return write_examples(scene, points, args.points, when, args.size or 512,
                              args.output_dir)
    except mapping.SceneError as e:
        raise runtime.InputError(str(e)) from e  # a file of the scene, named


def main(argv: Optional[List[str]] = None) -> int:
    return runtime.cli_main("cut_examples", run, lambda _: 0, argv, OPTION_CLASSES,
                            DESCRIPTION, beam=False)


if __name__ == "__main__":
    sys.exit(main())
