"""The map as one call: check the scene and the model, run the pipeline,
write the map, its quicklook and ``summary.json``."""

from __future__ import annotations

import json
import os
import posixpath
import sys
import time
from typing import Dict, List, Optional

import apache_beam as beam

from model_runner.model import ModelLoadError, check_model
from model_runner.windows import WindowModelHandler, close_spare_sessions, window_side_for
from transforms import runtime
from transforms.dataset import files
from transforms.mapping.config import MapConfig
from transforms.mapping.geometry import MapGeometry, pixel_shape_note, pixel_size_note
from transforms.mapping.pipeline import NAMESPACE, PredictMap
from transforms.mapping.scene.sample import encoding_notes
from transforms.mapping.scene import (IMAGE_BANDS, Scene, SceneError, is_stac, resampling_line,
                                      scene_files)
from transforms.mapping.writer import (UNITS, location, map_units, output_problem,
                                       quicklook_path, summary_file, write_map)
from transforms.runtime.arguments import check_reachable


def check_inputs(config: MapConfig) -> Scene:
    """Before anything runs: the scene, the model and the output.

    Args:
        config: the map's settings (``scene_path``, ``exported_model_dir``,
            ``output_path``).

    Returns:
        The scene (metadata only).

    Raises:
        UsageError: the scene folder or model does not exist, or the output
            would overwrite a scene file, lie in the scene folder, is a
            folder, or shares its quicklook and summary with another map
            (``writer.output_problem``).
        InputError: a scene that cannot be mapped (``scene.SceneError``), a
            scene smaller than one window, a file that is not a model, a
            ``gs://`` scene or model while Cloud Storage cannot be reached
            (also in a dry run: the job's shape is read from them).
    """
    scene_path = config.scene_path or ""  # "" with --stac_api: a search names no file
    # the job's shape (tiles, window) comes from the scene's grid and the model: read
    # even in a dry run, so a remote one must be reachable (else minutes of retries)
    check_reachable([p for p in (scene_path, config.exported_model_dir) if p.startswith("gs://")])
    if scene_path and "://" not in scene_path and not (os.path.isdir(scene_path) or (
            is_stac(scene_path) and os.path.isfile(scene_path))):
        raise runtime.UsageError(f"--scene_path {scene_path} is not a folder"
                                 + (" nor a file" if is_stac(scene_path) else ""))
    model = config.exported_model_dir
    if "://" not in model and not os.path.exists(model):
        raise runtime.UsageError(f"--exported_model_dir {model} does not exist")
    try:
        inputs = (scene_files(scene_path) if scene_path else []) + [
            p for p in (config.grid_like, config.encoding, config.band_map)
            if p and p.lower().endswith((".tif", ".tiff", ".json"))]
        runtime.refuse_overwrite(inputs, [
            config.output_path, quicklook_path(config.output_path),
            summary_file(config.output_path)], "--scene_path", "--output_path")
        problem = scene_path and output_problem(config.output_path, scene_path)
        if problem:
            raise runtime.UsageError(problem)
    except SceneError as e:
        raise runtime.InputError(str(e)) from e
    scene = config.open_scene()
    try:
        check_model(model, config.names)
    except ModelLoadError as e:
        raise runtime.InputError(str(e)) from e
    runtime.check_writable(posixpath.dirname(config.output_path) or ".", "--output_path")
    for note in scene_notes(scene, config.stride):
        print(f"predict_map: {note}", file=sys.stderr)
    return scene


def scene_notes(scene: Scene, stride: int) -> List[str]:
    """The lines said about a scene before it is mapped: pixels not square
    or not 10 m, the bands resampled, encodings that flatten a band.

    Args:
        scene: the scene.
        stride: scene pixels per map pixel.

    Returns:
        The lines (without the command's name), maybe none.

    Raises:
        InputError: the scene's sample cannot be read (``encoding_notes``).
    """
    try:
        flattened = encoding_notes(scene)
    except SceneError as e:
        raise runtime.InputError(str(e)) from e
    return [note for note in (pixel_shape_note(scene.grid.transform, stride),
                              pixel_size_note(scene.grid), resampling_line(scene), *flattened)
            if note]


def geometry_of(config: MapConfig, scene: Scene) -> MapGeometry:
    """The map's geometry, with the window the model needs (checked at load:
    see ``model_runner.windows.window_side_for``).

    Raises:
        InputError: the scene is smaller than one window or one map pixel.
    """
    window = window_side_for(config.exported_model_dir, config.names, config.image_size,
                             config.feed_whole_images, config.tensorflow_threads)
    grid = scene.grid
    geometry = MapGeometry(grid.height, grid.width, config.stride, window, config.tile_side)
    if min(geometry.shape) == 0 or (config.edge_mode == "nan"
                                    and min(grid.height, grid.width) < window):
        raise runtime.InputError(
            f"the scene {scene.path} ({grid.width}x{grid.height} pixels) is smaller than "
            f"one {window}x{window} window at stride {config.stride}")
    return geometry


def run_map(config: MapConfig, options, test_pipeline=None) -> Dict[str, object]:
    """Map ``config.scene_path`` with ``config.exported_model_dir``.

    Args:
        config: the map's settings.
        options: the Beam ``PipelineOptions``.
        test_pipeline: a ``TestPipeline`` to run on instead (tests).

    Returns:
        The summary (also ``<output>.summary.json``): map size, pixels
        predicted, NaN pixels by cause, elapsed seconds, predictions per
        second, the paths written; or a dry run's report.
    """
    started = time.time()
    scene = check_inputs(config)
    try:
        return _run(config, options, test_pipeline, started, scene)
    finally:
        close_spare_sessions()  # the window check's session, unless the run's worker took it


def _run(config: MapConfig, options, test_pipeline, started: float, scene: Scene):
    """``run_map`` after the inputs are checked."""
    geometry = geometry_of(config, scene)
    handler = window_handler(config)
    tags = map_tags(config, scene, geometry)
    when = known_time(config.scene_path)
    if when:
        tags["time"] = when
    runtime.apply_local_defaults(options)

    def build(p):
        blocks = p | "Predict map" >> PredictMap((scene,), geometry, handler, config.edge_mode,
                                                 config.batch_size, config.progress_seconds)
        return (blocks
                | "One writer" >> beam.Map(lambda b: (None, (b.tile, b.values, b.causes)))
                | "All blocks" >> beam.GroupByKey()
                | "Write map" >> beam.MapTuple(
                    lambda _, b: write_named(b, scene, geometry, config.output_path, tags))
                | "Write summary" >> beam.Map(_write_summary, config, geometry, started,
                                              scene_facts(scene)))

    result, dry_run = runtime.run_pipeline(options, test_pipeline, build, NAMESPACE)
    if dry_run:
        return dry_run
    summary = files.read_json(summary_file(config.output_path))
    summary["counters"] = runtime.counters(result, NAMESPACE)
    return summary


def known_time(scene_path: Optional[str]) -> Optional[str]:
    """The scene's time as ``2021-06-01T10:00:00Z`` when it has one
    (``scene.times.scene_time``), else None: a single map needs none."""
    from transforms.mapping.scene.times import scene_time, time_text

    try:
        return time_text(scene_time(scene_path)) if scene_path else None
    except SceneError:
        return None


def window_handler(config: MapConfig) -> WindowModelHandler:
    """The model handler of a map (or a cube) of ``config``."""
    return WindowModelHandler(config.exported_model_dir, config.names,
                              config.tensorflow_threads, metrics_namespace=NAMESPACE)


def map_tags(config: MapConfig, scene: Scene, geometry: MapGeometry) -> Dict[str, str]:
    """How a map was made, as text: the COG's tags, the cube's attributes.

    Args:
        config: the map's settings.
        scene: the scene (a cube: its first).
        geometry: the map's geometry.

    Returns:
        ``model``, ``stride``, ``stride_m``, ``map_units``, ``scene``,
        ``window``, ``edge_mode``, ``project_version`` and ``scene_facts``.
    """
    return {"model": location(config.exported_model_dir), "stride": str(config.stride),
            "stride_m": f"{abs(scene.grid.transform[0]) * config.stride:g}",
            "map_units": map_units(scene.grid.crs),
            "scene": location(config.scene_name), "window": str(geometry.window),
            "edge_mode": config.edge_mode, "project_version": runtime.project_version(),
            **{k: v if isinstance(v, str) else json.dumps(v, sort_keys=True)
               for k, v in scene_facts(scene).items()}}


def write_named(blocks, scene: Scene, geometry: MapGeometry, output_path: str,
                tags: Dict[str, str]):
    """``writer.write_map``, a failure to write (a full disk) named: the map,
    and the temporary folder it is assembled in first.

    Raises:
        OSError: naming ``output_path`` and the temporary folder, with the
            cause (GDAL's own message may say "Read failed" for a write).
    """
    import tempfile

    import rasterio

    try:
        return write_map(blocks, scene, geometry, output_path, tags)
    except (OSError, rasterio.errors.RasterioError) as e:
        raise OSError(f"writing the map {output_path} (assembled in {tempfile.gettempdir()} "
                      f"first) failed: {type(e).__name__}: {e}") from e


def scene_facts(scene: Scene) -> Dict[str, object]:
    """How the scene reached the map, for its tags and summary: the grid's
    source (``grid_like``), the ``resampling`` and the bands it moved
    (``resampled_bands``), the ``encoding`` used by band (``{}``: none).

    Args:
        scene: the scene.

    Returns:
        The four entries.
    """
    return {"grid_like": scene.grid_like, "resampling": scene.bands[IMAGE_BANDS[0]].resampling,
            "resampled_bands": scene.resampled(), "encoding": scene.encodings()}


def _write_summary(staged, config: MapConfig, geometry: MapGeometry,
                   started: float, facts: Dict[str, object]) -> Dict[str, object]:
    """The summary of the ``writer.StagedMap`` ``staged``, committed with the
    map and quicklook (all three or none; the staged files are removed on
    any failure)."""
    try:
        seconds = round(time.time() - started, 3)
        rows, cols = geometry.shape
        counts, nodata = staged.counts, staged.nodata
        predicted = counts["predicted"]
        summary = {
            **{k: v for k, v in counts.items() if k not in nodata},  # predicted, tiles, ...
            "map": config.output_path, "quicklook": quicklook_path(config.output_path),
            "summary": summary_file(config.output_path),
            "scene_path": location(config.scene_name),
            "exported_model_dir": location(config.exported_model_dir),
            "stride": config.stride, "window": geometry.window, "edge_mode": config.edge_mode,
            **facts,
            "rows": rows, "columns": cols, "pixels": rows * cols, "nodata": nodata,
            "crs": staged.crs, "bounds": staged.bounds, "units": UNITS,
            "values": staged.values, "elapsed_seconds": seconds,
            "predictions_per_second": round(predicted / seconds, 1) if seconds else None,
            "accounted": predicted + sum(nodata.values()) == rows * cols}
        staged.commit(summary_file(config.output_path), summary)
    finally:
        staged.discard()
    return summary


def nodata_text(nodata: Dict[str, int], by_count: bool = False) -> str:
    """NaN map pixels by cause in words: ``4 band nodata, 2 smap outside``.

    Args:
        nodata: the summary's ``nodata`` (pixels by cause).
        by_count: the largest first (else in ``tiles.CAUSES`` order).

    Returns:
        The causes that occur with their counts, or ``none``.
    """
    causes = sorted(nodata.items(), key=lambda item: -item[1]) if by_count else nodata.items()
    return ", ".join(f"{n} {cause.replace('_', ' ')}" for cause, n in causes if n) or "none"


def nothing_predicted_line(summary: Dict[str, object]) -> str:
    """The error line of a map with no pixel predicted, else ``""``.

    Args:
        summary: the map's summary (``run_map``'s).

    Returns:
        ``predict_map: error: no map pixel could be predicted: ...`` naming
        the causes by count (the command then exits 1), or ``""``.
    """
    if summary["predicted"] or not summary["pixels"]:
        return ""
    return (f"predict_map: error: no map pixel could be predicted (NaN: "
            f"{nodata_text(summary['nodata'], by_count=True)}); the map, "
            f"its quicklook and summary are written to look at: does the scene cover the SMAP "
            f"and GLDAS rasters, and is it larger than a window?")
