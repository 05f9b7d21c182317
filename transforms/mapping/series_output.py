"""What a run over several scenes writes besides the chunks (README: "Maps
through time"): one COG a time (a folder output), the cube's commit and
summary, and the lines ``predict_map`` prints.
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Dict, List, Tuple

import numpy as np

from transforms.dataset import files
from transforms.mapping import cube as cube_layout
from transforms.mapping.config import MapConfig
from transforms.mapping.cube_store import commit_append, commit_new
from transforms.mapping.geometry import MapGeometry
from transforms.mapping.job import (_write_summary, map_tags, nodata_text, scene_facts,
                                    write_named)
from transforms.mapping.pipeline import MapBlock
from transforms.mapping.scene import Scene
from transforms.mapping.scene.times import time_text
from transforms.mapping.tiles import CAUSES, cause_counts
from transforms.mapping.writer import location


@dataclasses.dataclass(frozen=True)
class TimedScene:
    """One scene of a series: its ``time`` (UTC seconds), ``path`` and ``scene``."""

    time: np.datetime64
    path: str
    scene: Scene


def cube_summary_path(output_path: str) -> str:
    """``cube.zarr`` -> ``cube.summary.json`` (beside the store)."""
    root = output_path.rstrip("/")
    return (root[:-5] if root.lower().endswith(".zarr") else root) + ".summary.json"


def time_file(folder: str, when: np.datetime64) -> str:
    """The COG of one time in a folder output: ``20210601T100000Z.tif``."""
    name = str(np.datetime64(when, "s")).replace("-", "").replace(":", "") + "Z.tif"
    return folder.rstrip("/") + "/" + name if "://" in folder else os.path.join(folder, name)



def cube_grid(scene: Scene, geometry: MapGeometry) -> cube_layout.CubeGrid:
    """The cube's grid: the scene's scaled by the stride, chunks of a tile."""
    a, b, c, d, e, f = scene.grid.transform[:6]
    s = geometry.stride
    rows, cols = geometry.shape
    return cube_layout.CubeGrid(scene.grid.crs, (a * s, b * s, c, d * s, e * s, f),
                                rows, cols, geometry.tile)


def block_counts(block: MapBlock) -> Tuple[int, Dict[str, float]]:
    """``(time index, counts)``: pixels by outcome (``cause_counts``) and the
    finite values' count, sum, min and max."""
    finite = block.values[np.isfinite(block.values)]
    stats = {"n": int(finite.size), "sum": float(finite.sum(dtype=np.float64)),
             "min": float(finite.min()) if finite.size else np.inf,
             "max": float(finite.max()) if finite.size else -np.inf}
    return block.time_index, {**cause_counts(block.causes), **stats, "tiles": 1}


def merge_counts(counts) -> Dict[str, float]:
    """The sum of ``block_counts``' dicts (min of mins, max of maxes)."""
    out: Dict[str, float] = {}
    for c in counts:
        for k, v in c.items():
            if k not in out:
                out[k] = v
            elif k == "min":
                out[k] = min(out[k], v)
            elif k == "max":
                out[k] = max(out[k], v)
            else:
                out[k] += v
    return out


def time_summary(item: TimedScene, counts: Dict[str, float], pixels: int) -> Dict[str, object]:
    """One time's entry in a cube's summary."""
    nodata = {cause: int(counts.get(cause, 0)) for cause in CAUSES}
    n = int(counts.get("n", 0))
    values = ({"min": counts["min"], "mean": counts["sum"] / n, "max": counts["max"]} if n
              else {"min": None, "mean": None, "max": None})
    predicted = int(counts.get("predicted", 0))
    return {"time": time_text(item.time), "scene_path": location(item.path),
            "predicted": predicted, "nodata": nodata, "values": values,
            "accounted": predicted + sum(nodata.values()) == pixels}


def write_time_map(element, series: List[TimedScene], config: MapConfig,
                   geometry: MapGeometry, started: float) -> Dict[str, object]:
    """``(time index, blocks)`` -> that time's COG, quicklook and summary in
    a folder output (its summary returned)."""
    index, blocks = element
    item = series[index]
    output = time_file(config.output_path, item.time)
    if "://" not in output:
        os.makedirs(os.path.dirname(output), exist_ok=True)
    mine = dataclasses.replace(config, scene_path=item.path, output_path=output)
    tags = {**map_tags(mine, item.scene, geometry), "time": time_text(item.time)}
    staged = write_named(blocks, item.scene, geometry, output, tags)
    summary = _write_summary(staged, mine, geometry, started, scene_facts(item.scene))
    return summary


def folder_summary(config: MapConfig, maps: List[Dict[str, object]]) -> Dict[str, object]:
    """The run's summary of a folder of maps (one summary a map beside it)."""
    return {"kind": "maps", "output_path": config.output_path, "maps": maps,
            "times": len(maps), "rows": maps[0]["rows"], "columns": maps[0]["columns"],
            "stride": config.stride, "predicted": sum(m["predicted"] for m in maps),
            "accounted": all(m["accounted"] for m in maps),
            "empty_times": [m["map"] for m in maps if not m["predicted"]]}


def commit_cube(_, counts, config: MapConfig, series: List[TimedScene],
                geometry: MapGeometry, staging: str, before, attrs: Dict[str, str],
                started: float) -> Dict[str, object]:
    """After every chunk is written: the staged store becomes the cube (or
    its new times join it), then its summary is written beside it."""
    rows, cols = geometry.shape
    by_time = dict(counts)
    entries = [time_summary(item, by_time.get(i, {}), rows * cols)
               for i, item in enumerate(series)]
    if before is None:
        commit_new(staging, config.output_path)
    else:
        commit_append(staging, config.output_path, before, [s.time for s in series],
                      {"scenes": attrs["scenes"], "project_version": attrs["project_version"]})
    previous = earlier_times(config.output_path, before) if before is not None else []
    seconds = round(time.time() - started, 3)
    predicted = sum(e["predicted"] for e in entries)
    summary = {
        "kind": "cube", "cube": config.output_path,
        "summary": cube_summary_path(config.output_path),
        "appended": before is not None, "new_times": len(entries),
        "times": previous + entries, "rows": rows, "columns": cols, "pixels": rows * cols,
        "stride": config.stride, "window": geometry.window, "edge_mode": config.edge_mode,
        "exported_model_dir": location(config.exported_model_dir),
        "crs": series[0].scene.grid.crs, "chunks": cube_layout.zarr_chunks(
            cube_grid(series[0].scene, geometry)),
        "predicted": predicted, "elapsed_seconds": seconds,
        "predictions_per_second": round(predicted / seconds, 1) if seconds else None,
        "accounted": all(e["accounted"] for e in entries),
        "empty_times": [e["time"] for e in entries if not e["predicted"]]}
    files.write_json_atomically(cube_summary_path(config.output_path), summary)
    return summary


def earlier_times(output_path: str, before) -> List[Dict[str, object]]:
    """The summary entries of the times a cube held before an append: those
    of its summary file, for the cube's own times (``before.times``); a time
    the file does not have (no file beside the cube, another run's) gets its
    time and scene from the cube's ``scenes`` attribute, without counts."""
    try:
        known = {e["time"]: e for e in files.read_json(cube_summary_path(output_path))
                 .get("times", [])}
    except (OSError, ValueError, AttributeError):
        known = {}
    scenes = {e["time"]: e.get("scene") for e in cube_layout.scene_list(before.attrs)}
    out = []
    for when in before.times:
        text = time_text(when)
        out.append(known.get(text) or {"time": text, "scene_path": scenes.get(text),
                                       "counts": "not in the summary beside the cube"})
    return out


def series_report(summary: Dict[str, object]) -> Tuple[str, str]:
    """What ``predict_map`` prints for a cube or a folder of maps.

    Args:
        summary: ``run_series``' summary.

    Returns:
        ``(stdout text, stderr line)``: the times mapped with their pixels
        predicted and value range; the error line when a time has no pixel
        predicted or the counts do not add up (else ``""``).
    """
    entries = summary["times"] if summary["kind"] == "cube" else [
        {"time": m.get("time") or m["map"], "predicted": m["predicted"], "nodata": m["nodata"],
         "values": m["values"]} for m in summary["maps"]]
    lines = []
    for e in entries[-len(entries) if summary["kind"] == "maps" else -summary["new_times"]:]:
        low, mean, high = (e["values"][k] for k in ("min", "mean", "max"))
        values = "none predicted" if low is None else f"{low:.3f}-{high:.3f} (mean {mean:.3f})"
        lines.append(f"  {e['time']}: {e['predicted']} predicted, {values}; NaN: "
                     f"{nodata_text(e['nodata'])}")
    if summary["kind"] == "cube":
        head = (f"Cube {summary['cube']}: {'appended ' if summary['appended'] else ''}"
                f"{summary['new_times']} time(s) of {summary['rows']}x{summary['columns']} pixels "
                f"at stride {summary['stride']}, {len(summary['times'])} in the cube; "
                f"{summary['elapsed_seconds']:.1f} s, {summary['predictions_per_second']} "
                f"predictions/s.")
        tail = f"Summary: {summary['summary']}"
    else:
        head = (f"Maps in {summary['output_path']}: {summary['times']} time(s) of "
                f"{summary['rows']}x{summary['columns']} pixels at stride {summary['stride']}.")
        tail = "Maps: " + ", ".join(m["map"] for m in summary["maps"])
    problem = ""
    if summary["empty_times"]:
        problem = (f"predict_map: error: no map pixel could be predicted at "
                   f"{', '.join(summary['empty_times'])} (the counts by cause are in the "
                   f"summary): does each scene cover the SMAP and GLDAS rasters?")
    elif not summary["accounted"]:
        problem = "predict_map: error: the map pixels by outcome do not add up (a bug)"
    return "\n".join([head, *lines, tail]), problem
