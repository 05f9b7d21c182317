"""Map soil moisture over a scene: the released model (or one with its
interface) on one window per map pixel, at the paper's nominal 320 m.

Locally (a scene folder of GeoTIFFs named by the schema's bands, plus
``smap_sm.tif`` and ``gldas_sm.tif``; see the README's "Map your own scene")::

    python -m pipelines.predict_map --scene_path scene/ \
        --exported_model_dir soil_moisture_model/ --output_path maps/map.tif --stride 32

On Dataflow::

    python -m pipelines.predict_map --scene_path gs://my-bucket/scenes/2021-06-01/ \
        --exported_model_dir gs://my-bucket/soil_moisture_model/ \
        --output_path gs://my-bucket/maps/2021-06-01.tif \
        --runner DataflowRunner --project my-project --region us-central1 \
        --temp_location gs://my-bucket/tmp --setup_file ./setup.py

Outputs: the map ``<output_path>`` (a Cloud-Optimized GeoTIFF: float32 soil
moisture in m³/m³, NaN where no prediction is made, the scene's CRS, the
scene's transform scaled by ``--stride``), its quicklook ``<output>.png``
and ``<output>.summary.json`` (pixels predicted, NaN pixels by cause,
elapsed time, predictions per second). Exit 2 on a usage error (a stride
that is not a positive even number, a scene folder that does not exist, an
output that would overwrite a scene file), 1 on a scene that cannot be
mapped (a missing or unknown band, a float band without an ``--encoding``
entry, a corrupt GeoTIFF, a scene smaller than one window). Bands on other
grids than ``--grid_like``'s are resampled onto it (one line says which).
"""

from __future__ import annotations

import sys
from typing import List, Optional

from apache_beam.options.pipeline_options import PipelineOptions

from transforms import mapping, runtime
from transforms.dataset import model_interface


class PredictMapOptions(PipelineOptions):
    """predict_map's own flags (the model's are ``runtime.add_model_arguments``')."""

    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument("--scene_path", default=None,
                            help="the scene: a folder of GeoTIFFs of the model's bands, "
                                 "smap_sm.tif, gldas_sm.tif (a band may be a folder of files, "
                                 "mosaicked), or a STAC ItemCollection or Catalog .json "
                                 "(local or gs://); a quoted glob of them makes a cube "
                                 "(each scene's time in its name, e.g. "
                                 "scene_2021-06-01T10:00, or its files' TIFFTAG_DATETIME or "
                                 "items' datetime)")
        mapping.add_scene_arguments(parser)
        parser.add_argument("--append", action="store_true", default=False,
                            help="add the scenes' times to the existing cube --output_path "
                                 "(.zarr): same grid and model, times after its last")
        parser.add_argument("--stride", type=int, default=32,
                            help="scene pixels per map pixel, even (default 32: 320 m at the "
                                 "release's 10 m pixels)")
        parser.add_argument("--edge_mode", choices=mapping.EDGE_MODES, default="nan",
                            help="nan: a window reaching outside the scene gives NaN; pad: "
                                 "zeros outside the scene, as the model's own crop-or-pad")
        parser.add_argument("--tile_size", type=int, default=None,
                            help="map pixels per tile side (one Beam element; default: "
                                 "1024 scene pixels a side, 1024 // --stride)")
        runtime.add_model_arguments(parser)


OPTION_CLASSES = (PredictMapOptions, runtime.ProgressOptions)


def run(argv: Optional[List[str]] = None, test_pipeline=None) -> dict:
    """Map the scene; returns the summary (also ``<output>.summary.json``)."""
    options = PipelineOptions(argv)
    config = mapping.MapConfig.from_options(options)
    summary = mapping.run_maps(config, options, test_pipeline)
    if summary.get("dry_run"):
        return summary
    if summary.get("kind") in ("cube", "maps"):  # several times
        text, problem = mapping.series_report(summary)
        print(text)
        if problem:
            print(problem, file=sys.stderr)
        return summary
    nodata = mapping.nodata_text(summary["nodata"])
    low, mean, high = (summary["values"][k] for k in ("min", "mean", "max"))
    values = ("none predicted" if low is None else f"all {low:.3f}" if low == high
              else f"min {low:.3f}, mean {mean:.3f}, max {high:.3f}")
    saturated = f", {summary['saturated']} saturated" if summary.get("saturated") else ""
    crs = summary["crs"] if len(summary["crs"]) < 40 else "the summary's WKT"
    print(f"Map {summary['rows']}x{summary['columns']} pixels at stride {summary['stride']} "
          f"(window {summary['window']}): {summary['predicted']} predicted{saturated}, NaN: "
          f"{nodata}; {summary['elapsed_seconds']:.1f} s, {summary['predictions_per_second']} "
          f"predictions/s.\nValues ({summary['units']}): {values}; CRS {crs}.\n"
          f"Map: {summary['map']}\nQuicklook: {summary['quicklook']}\n"
          f"Summary: {summary['summary']}")
    line = mapping.nothing_predicted_line(summary) or model_interface.saturation_line(
        "predict_map", summary["saturated"], summary["predicted"], "map pixels")
    if line:
        print(line, file=sys.stderr)
    return summary


def exit_code(summary: dict) -> int:
    """0 for a dry run or a map whose every pixel is accounted for; 1 when
    the counts do not add up, or the map means nothing: no pixel predicted,
    or every predicted pixel on the model's clip bounds."""
    if summary.get("dry_run"):
        return 0
    if summary.get("kind") in ("cube", "maps"):
        return 0 if summary["accounted"] and not summary["empty_times"] else 1
    stuck = model_interface.all_saturated(summary["saturated"], summary["predicted"])
    return 0 if summary.get("accounted") and summary["predicted"] and not stuck else 1


def main(argv: Optional[List[str]] = None) -> int:
    return runtime.cli_main("predict_map", run, exit_code, argv, option_classes=OPTION_CLASSES,
                            description=__doc__.split("\n\n")[0])


if __name__ == "__main__":
    runtime.exit_process(main())
