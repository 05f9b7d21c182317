"""Maps through time as one call (README: "Maps through time"): several
scenes, each with its time (``scene.times``), mapped on one grid by one
pipeline into a Zarr cube (``cube``, written through xarray-beam and
committed by ``cube_store``) or a folder of one COG per time.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from typing import Dict, List, Tuple

import apache_beam as beam

from model_runner.model import ModelLoadError, check_model
from model_runner.windows import close_spare_sessions
from transforms import runtime
from transforms.dataset import files
from transforms.mapping import cube as cube_layout
from transforms.mapping.config import MapConfig
from transforms.mapping.cube_store import remove_store, staging_path
from transforms.mapping.job import geometry_of, map_tags, scene_notes, window_handler
from transforms.mapping.pipeline import NAMESPACE, PredictMap
from transforms.mapping.scene import SceneError, grid_difference, scene_files
from transforms.mapping.scene.times import expand_scenes, is_glob, scene_time, time_text
from transforms.mapping.series_output import (TimedScene, block_counts, commit_cube, cube_grid,
                                              cube_summary_path, folder_summary, merge_counts,
                                              time_file, write_time_map)
from transforms.mapping.writer import location, summary_file
from transforms.runtime.arguments import check_reachable


def series_paths(config: MapConfig) -> List[str]:
    """The scenes ``--scene_path`` names: a glob's matches, or the one scene.

    Raises:
        UsageError: a glob matching no scene, ``--stac_api`` (a search is one
            scene: a cube takes scenes by ``--scene_path``).
    """
    if config.stac_api:
        raise runtime.UsageError("--stac_api maps one scene; a cube or a folder of maps takes "
                                 "its scenes by --scene_path (a glob of folders or .json files)")
    if not is_glob(config.scene_path):
        return [config.scene_path.rstrip("/") or config.scene_path]
    found = [p for p in expand_scenes(config.scene_path)
             if not p.startswith(config.output_path.rstrip("/"))]  # its staging stores too
    if not found:
        raise runtime.UsageError(f"--scene_path {config.scene_path} matches no scene (folders, "
                                 f"or .json files when the pattern ends .json)")
    return found


def check_series(config: MapConfig) -> Tuple[List[TimedScene], List[str]]:
    """Every scene's time and grid, before anything runs.

    Returns:
        The scenes sorted by time, and the notes to say (each once).

    Raises:
        UsageError: see ``series_paths``; the output inside a scene folder.
        InputError: a scene without a time or that cannot be mapped, two
            scenes at one time, a scene on another grid than the first,
            naming the scene and what differs.
    """
    series, notes = [], []
    for path in series_paths(config):
        check_reachable([path] if path.startswith("gs://") else [])
        if "://" not in path and not os.path.exists(path):
            raise runtime.UsageError(f"--scene_path {path} does not exist")
        if runtime.is_inside(config.output_path, path):
            raise runtime.UsageError(f"--output_path {config.output_path} is inside the scene "
                                     f"folder {path}: the next run on that scene would read it; "
                                     f"write it elsewhere")
        try:
            when = scene_time(path)
            runtime.refuse_overwrite(scene_files(path), [config.output_path.rstrip("/") + "*"],
                                     "--scene_path", "--output_path")
        except SceneError as e:
            raise runtime.InputError(str(e)) from e
        scene = dataclasses.replace(config, scene_path=path).open_scene()
        series.append(TimedScene(when, path, scene))
        notes += [n for n in scene_notes(scene, config.stride) if n not in notes]
    series.sort(key=lambda s: s.time)
    for before, after in zip(series, series[1:]):
        if before.time == after.time:
            raise runtime.InputError(f"scenes {before.path} and {after.path} are both at "
                                     f"{time_text(after.time)}: a cube holds one map a time")
    first = series[0]
    for other in series[1:]:
        differs = grid_difference(other.scene.grid, first.scene.grid)
        if differs:
            raise runtime.InputError(f"scene {other.path} is not on the grid of {first.path} "
                                     f"({differs}): a cube's maps share one grid (warp the "
                                     f"scene, or give --grid_like one GeoTIFF for all)")
    return series, notes


def check_output(config: MapConfig, series: List[TimedScene], grid: cube_layout.CubeGrid,
                 attrs: Dict[str, str]):
    """The cube (or folder) to write, before anything runs.

    Returns:
        The existing cube's facts when appending, else None.

    Raises:
        UsageError: ``--append`` without an existing cube or to a folder of
            maps; a cube path that holds something other than a cube; a
            folder output that is a file.
        InputError: ``--append`` to a store that is not our cube, onto
            another grid or model, or of a time it holds.
    """
    out = config.output_path
    is_cube = config.output_kind == "cube"
    local = "://" not in out
    if not is_cube:
        if config.append:
            raise runtime.UsageError("--append adds times to a cube: --output_path ends .zarr")
        if local and os.path.isfile(out.rstrip("/")):
            raise runtime.UsageError(f"--output_path {out} is a file: a folder of maps (one COG "
                                     f"a time) or a .zarr cube")
        return None
    exists = os.path.exists(out) if local else bool(cube_store_files(out))
    if config.append and not exists:
        raise runtime.UsageError(f"--append: there is no cube {out} to add times to (leave "
                                 f"--append out to write it)")
    if not exists:
        return None
    try:
        facts = cube_layout.read_cube(out)
    except cube_layout.CubeError as e:
        if config.append:
            raise runtime.InputError(f"--append: {e}") from None
        raise runtime.UsageError(f"--output_path {out} exists and is not a cube of ours: not "
                                 f"replaced ({e})") from None
    if not config.append:
        return None
    problem = cube_layout.append_problem(facts, grid, [s.time for s in series], attrs,
                                         [s.path for s in series])
    if problem:
        raise runtime.InputError(f"--append to {out}: {problem}; the cube is unchanged")
    return facts


def cube_store_files(path: str) -> List[str]:
    """The Zarr metadata files (``.z*``) of a remote store: none if it is absent."""
    from apache_beam.io.filesystems import FileSystems

    return [m.path for r in FileSystems.match([path.rstrip("/") + "/.z*"]) for m in r.metadata_list]


def run_series(config: MapConfig, options, test_pipeline=None) -> Dict[str, object]:
    """Map every scene of ``config.scene_path`` into a cube or a folder.

    Args:
        config: the settings (``output_path`` a ``.zarr`` cube or a folder).
        options: the Beam ``PipelineOptions``.
        test_pipeline: a ``TestPipeline`` to run on instead (tests).

    Returns:
        The summary (also written beside the cube; a folder's: one per map),
        or a dry run's report.
    """
    started = time.time()
    model = config.exported_model_dir
    if "://" not in model and not os.path.exists(model):
        raise runtime.UsageError(f"--exported_model_dir {model} does not exist")
    series, notes = check_series(config)
    try:
        check_model(model, config.names)
    except ModelLoadError as e:
        raise runtime.InputError(str(e)) from e
    try:
        geometry = geometry_of(config, series[0].scene)
        attrs = map_tags(config, series[0].scene, geometry)
        grid = cube_grid(series[0].scene, geometry)
        remote = "://" in config.output_path
        if remote and not runtime.is_dry_run(options):
            check_reachable([config.output_path])
        # a dry run only builds the job: a remote cube is not looked at (offline)
        before = (None if remote and runtime.is_dry_run(options)
                  else check_output(config, series, grid, attrs))
        runtime.check_writable(os.path.dirname(config.output_path.rstrip("/")) or ".",
                               "--output_path")
        for note in notes:
            print(f"predict_map: {note}", file=sys.stderr)
        return _run(config, options, test_pipeline, started, series, geometry, grid, attrs,
                    before)
    finally:
        close_spare_sessions()


def _run(config, options, test_pipeline, started, series, geometry, grid, attrs, before):
    """``run_series`` after the checks."""
    is_cube = config.output_kind == "cube"
    scenes = tuple(s.scene for s in series)
    handler = window_handler(config)
    runtime.apply_local_defaults(options)
    staging = staging_path(config.output_path) if is_cube else None
    listed = cube_layout.scene_list(before.attrs) if before else []
    listed += [{"time": time_text(s.time), "scene": location(s.path)} for s in series]
    attrs = {**attrs, "scene": location(series[0].path), "scenes": json.dumps(listed)}

    def build(p):
        blocks = p | "Predict maps" >> PredictMap(scenes, geometry, handler, config.edge_mode,
                                                  config.batch_size, config.progress_seconds)
        if not is_cube:
            return (blocks
                    | "Key by time" >> beam.Map(lambda b: (b.time_index,
                                                           (b.tile, b.values, b.causes)))
                    | "Blocks of a time" >> beam.GroupByKey()
                    | "Write maps" >> beam.Map(write_time_map, series, config, geometry, started))
        import xarray_beam

        times = [s.time for s in series]
        template = beam.pvalue.AsSingleton(
            p | "Template" >> beam.Create([cube_layout.template(grid, times, attrs)]))
        counts = (blocks
                  | "Count pixels" >> beam.Map(block_counts)
                  | "Counts by time" >> beam.CombinePerKey(merge_counts))
        written = (blocks
                   | "As chunks" >> beam.Map(cube_layout.to_chunk)
                   | "Write chunks" >> xarray_beam.ChunksToZarr(
                       staging, template, cube_layout.zarr_chunks(grid), zarr_format=2,
                       encoding=cube_layout.encoding()))
        return (written
                | "Chunks written" >> beam.combiners.Count.Globally()
                | "Commit cube" >> beam.Map(commit_cube, beam.pvalue.AsList(counts), config,
                                            series, geometry, staging, before, attrs, started))

    try:
        result, dry_run = runtime.run_pipeline(options, test_pipeline, build, NAMESPACE)
    finally:
        if staging and not runtime.is_dry_run(options):
            remove_store(staging)  # left by a failure (a commit moves or renames it away)
    if dry_run:
        return dry_run
    if is_cube:
        summary = files.read_json(cube_summary_path(config.output_path))
    else:
        maps = [files.read_json(summary_file(time_file(config.output_path, s.time)))
                for s in series]
        summary = folder_summary(config, maps)
    summary["counters"] = runtime.counters(result, NAMESPACE)
    return summary


