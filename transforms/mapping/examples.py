"""The map's windows as examples: 512 x 512 examples in the released schema
cut from a scene at given points (``pipelines.cut_examples``), so a scene
can feed ``run_inference``, the released ``run_inference.py`` or the merge.

An example holds only what a scene can tell: ``sensor_id``, ``timestamp``,
``center_lat``, ``center_long``, ``size``, the model's 14 bands and
``smap_sm``/``gldas_sm``; nothing is invented for the other fields. It is
centred on the scene pixel corner nearest the point (a map pixel's centre
cuts exactly its map window's surroundings), so its side is even; a point
whose example would reach outside the scene or hold a nodata pixel, or whose
SMAP/GLDAS pixel is missing, gives no example but a reason.

What the command reads is checked, each refusal one line naming the file,
line or record: the points CSV (``points.read_points``) and the shards
``compare_with_examples`` reads (``release``).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections import Counter
from typing import Dict, List, NamedTuple, Optional, Tuple

import numpy as np

from transforms.dataset import example_proto, files, schema, tfrecord_io
from transforms.mapping.geometry import Region
from transforms.mapping.points import Point
from transforms.mapping.release import band_values, correlation, example_centre, shard_records
from transforms.mapping.scene import Scene, read_region
from transforms.mapping.scene.grids import extent_in
from transforms.mapping.tiles import aux_at_points
from transforms.runtime.cli import plural
from transforms.runtime.errors import InputError

__all__ = ["Compared", "Extent", "ReleasedWindows", "band_values", "centre_pixel",
           "compare_with_examples", "correlation", "cut_bands", "cut_example",
           "describe_extent", "extents", "scene_extent", "write_examples"]


def centre_pixel(scene: Scene, lat: float, lon: float) -> Optional[Tuple[int, int]]:
    """The scene pixel corner ``(row, col)`` nearest the point, or None when
    the point has no place in the scene's projection (e.g. the far side of
    the globe from a UTM zone)."""
    from affine import Affine
    from pyproj import CRS, Transformer

    x, y = Transformer.from_crs(4326, CRS.from_wkt(scene.grid.crs),
                                always_xy=True).transform(lon, lat)
    col, row = ~Affine(*scene.grid.transform) @ (x, y)
    if not (math.isfinite(row) and math.isfinite(col)):
        return None
    return int(round(row)), int(round(col))


def scene_extent(scene: Scene) -> Tuple[float, float, float, float]:
    """``(south, north, west, east)``: the WGS84 bounds of the scene's grid
    (its edges sampled, so a projected scene's curved edges are covered)."""
    from pyproj import CRS

    west, south, east, north = extent_in(scene.grid, CRS.from_epsg(4326).to_wkt())
    return south, north, west, east


def describe_extent(south: float, north: float, west: float, east: float) -> str:
    """``lat 47.8425..47.8512, lon 15.0000..15.0171`` (4 decimals: about 10 m)."""
    return f"lat {south:.4f}..{north:.4f}, lon {west:.4f}..{east:.4f}"


@dataclasses.dataclass
class Extent:
    """The WGS84 bounds of points, kept as they are added (nothing held per
    point: ``--compare_with`` may read every example of the release).

    Attributes:
        count: the points added.
        south, north, west, east: their bounds (infinite while empty).
    """

    count: int = 0
    south: float = math.inf
    north: float = -math.inf
    west: float = math.inf
    east: float = -math.inf

    def add(self, lat: float, lon: float) -> None:
        """Count the point ``(lat, lon)`` in."""
        self.count += 1
        self.south, self.north = min(self.south, lat), max(self.north, lat)
        self.west, self.east = min(self.west, lon), max(self.east, lon)

    @classmethod
    def of(cls, points) -> "Extent":
        """The extent of ``points`` (``(lat, lon)`` pairs)."""
        extent = cls()
        for lat, lon in points:
            extent.add(lat, lon)
        return extent

    def text(self) -> str:
        """``describe_extent``'s words for the bounds (not empty)."""
        return describe_extent(self.south, self.north, self.west, self.east)


def extents(scene: Scene, points: Extent, one: str, many: str) -> str:
    """``the scene <path> spans <extent>; the 3 <many> span <extent>`` (``the
    <one> lies at ...`` for one): why nothing could be cut or compared
    (``points`` not empty)."""
    where = (f"the {one} lies at lat {points.south:.4f}, lon {points.west:.4f}"
             if points.count == 1 else f"the {points.count} {many} span {points.text()}")
    return f"the scene {scene.path} spans {describe_extent(*scene_extent(scene))}; {where}"


def aux_at(scene: Scene, name: str, row: int, col: int) -> Tuple[Optional[int], str]:
    """``(value, "")`` of the ``name`` raster's pixel containing scene point
    ``(row, col)`` (a pixel corner), or ``(None, cause)``: ``smap_outside``,
    ``smap_nodata``, ``smap_invalid`` (a value outside 0-255), likewise
    ``gldas_*`` (the map's causes)."""
    found = aux_at_points(scene, name, np.array([row]), np.array([col]))
    prefix = name.split("_")[0]
    for cause in ("outside", "nodata", "invalid"):
        if getattr(found, cause)[0]:
            return None, f"{prefix}_{cause}"
    return int(found.values[0]), ""


def window_inside(scene: Scene, row: int, col: int, size: int) -> bool:
    """Whether the ``size`` x ``size`` window centred on scene pixel corner
    ``(row, col)`` lies wholly in the scene (``size`` > 0)."""
    top, left = row - size // 2, col - size // 2
    return (size > 0 and top >= 0 and left >= 0 and top + size <= scene.grid.height
            and left + size <= scene.grid.width)


def cut_bands(scene: Scene, row: int, col: int,
              size: int) -> Tuple[Optional[Dict[str, np.ndarray]], str]:
    """The model's bands centred on scene pixel corner ``(row, col)``.

    Args:
        scene: the scene.
        row, col: the centre, a pixel corner.
        size: the side, in scene pixels.

    Returns:
        ``({band: size x size values}, "")``, or ``(None, "outside_scene"
        or "band_nodata")``.

    Raises:
        SceneError: a band file that cannot be read there (a truncated
            GeoTIFF), naming it (``scene.read_region``).
    """
    region = Region(row - size // 2, col - size // 2, size, size)
    grid = scene.grid
    if not window_inside(scene, row, col, size):
        return None, "outside_scene"
    bands, carried = {}, {}
    for name, source in scene.bands.items():
        values, nodata = read_region(source, grid, region, carried)
        if nodata.any():
            return None, "band_nodata"
        bands[name] = values
    return bands, ""


def cut_example(scene: Scene, point: Point, timestamp_ms: float,
                size: int = schema.RELEASED_IMAGE_SIZE) -> Tuple[Optional[bytes], str]:
    """One example centred on ``point``.

    Args:
        scene: the scene.
        point: where (``Point``).
        timestamp_ms: its time, Unix milliseconds (stored as float32, as
            the release stores it).
        size: its side, even.

    Returns:
        ``(serialized tf.train.Example, "")``, or ``(None, why not)``:
        ``outside_scene``, ``band_nodata``, ``smap_*``, ``gldas_*`` (see
        ``tiles.CAUSES``).

    Raises:
        SceneError: a scene file that cannot be read, naming it.
    """
    centre = centre_pixel(scene, point.lat, point.lon)
    if centre is None:
        return None, "outside_scene"
    row, col = centre
    bands, cause = cut_bands(scene, row, col, size)
    if bands is None:
        return None, cause
    features: Dict[str, Tuple[str, object]] = {
        schema.SENSOR_ID: ("bytes", [point.sensor_id.encode()]),
        schema.TIMESTAMP: ("float", [timestamp_ms]),
        schema.CENTER_LAT: ("float", [point.lat]),
        schema.CENTER_LONG: ("float", [point.lon]),
        schema.SIZE: ("int64", [size])}
    for name, values in bands.items():
        features[name] = ("int64", np.asarray(values, np.int64).ravel())
    for name in (schema.SMAP_SM, schema.GLDAS_SM):
        value, cause = aux_at(scene, name, row, col)
        if value is None:
            return None, cause
        features[name] = ("int64", [value])
    return example_proto.encode_example(features), ""


def write_examples(scene: Scene, points: List[Point], points_path: str, timestamp_ms: float,
                   size: int, output_dir: str) -> Dict[str, object]:
    """``cut_examples --points``: an example at each point (``cut_example``)
    into ``<output_dir>/data-00000-of-00001.tfrecord.gz``, in the points'
    order, the others in ``failures.jsonl`` with why; a line printed.

    Returns:
        ``{"examples": count, "failures": [{"sensor_id", "lat", "lon",
        "reason"}], "output": the shard}``.

    Raises:
        InputError: no point could be cut (no shard written, an earlier one
            removed; naming the scene's extent and the points').
        SceneError: a scene file that cannot be read, naming it.
    """
    cut = [(p, *cut_example(scene, p, timestamp_ms, size)) for p in points]
    examples = [serialized for _, serialized, _ in cut if serialized is not None]
    failures = [{"sensor_id": p.sensor_id, "lat": p.lat, "lon": p.lon, "reason": why}
                for p, serialized, why in cut if serialized is None]
    out = os.path.join(output_dir, tfrecord_io.shard_name(0, 1))
    files.write_bytes_atomically(os.path.join(output_dir, "failures.jsonl"), "".join(
        json.dumps(r, sort_keys=True) + "\n" for r in failures).encode())
    if not examples:  # no shard written (an earlier run's removed): it would pass for a result
        files.remove_outputs([out])
        raise InputError(f"no point of {points_path} could be cut (failures.jsonl), no shard "
                         f"written: " + extents(scene, Extent.of((p.lat, p.lon) for p in points),
                                                "point", "points"))
    tfrecord_io.write_shard(out, examples)
    causes = ", ".join(f"{n} {c}" for c, n in Counter(f["reason"] for f in failures).items())
    print(f"cut {plural(len(examples), 'example')} of {plural(len(points), 'point')} into "
          f"{out}" + (f"; {plural(len(failures), 'point')} could not be cut ({causes}: "
                      f"failures.jsonl)" if failures else ""))
    return {"examples": len(examples), "failures": failures, "output": out}


class Compared(NamedTuple):
    """A released example whose window lies in the scene (``record``, its
    centre ``row``, ``col``: a scene pixel corner), its 14 bands
    (``released``) and the scene's over its window (``cut``), each flat
    float64."""

    record: bytes
    row: int
    col: int
    released: Dict[str, np.ndarray]
    cut: Dict[str, np.ndarray]


@dataclasses.dataclass
class ReleasedWindows:
    """The examples of the shards ``pattern`` matches whose window lies in
    ``scene``, each cut again at its ``center_lat``/``center_long``
    (iterate: ``Compared``, one at a time), the others counted by cause.

    Attributes:
        scene: the scene.
        pattern: a glob of gzipped TFRecord shards.
        acquired: only the examples of these (Sentinel-1, Sentinel-2) UTC
            days (``--acquired``), or None: all.
        compared: the examples given so far.
        skipped: the others by cause: ``outside_scene``,
            ``other_acquisitions`` (inside, other days than ``acquired``),
            ``band_nodata``, ``incomplete`` (a band missing or not size x size).
        centres: the extent of every example's centre (``Extent``).
        acquisitions: the examples whose window lies in the scene by their
            (Sentinel-1 day, Sentinel-2 day) (None: undated).
    """

    scene: Scene
    pattern: str
    acquired: Optional[Tuple[str, str]] = None
    compared: int = 0
    skipped: Dict[str, int] = dataclasses.field(default_factory=lambda: {
        "outside_scene": 0, "other_acquisitions": 0, "band_nodata": 0, "incomplete": 0})
    centres: Extent = dataclasses.field(default_factory=Extent)
    acquisitions: Dict[Optional[Tuple[str, str]], int] = dataclasses.field(default_factory=dict)

    def __iter__(self):  # raises as shard_records, example_centre, cut_bands
        names = (*schema.IMAGE_BANDS, *schema.LOW_RES_BANDS)
        for path, index, record in shard_records(self.pattern):
            lat, lon, size, acquired = example_centre(path, index, record)
            self.centres.add(lat, lon)
            if size <= 0:  # no window to compare
                self.skipped["incomplete"] += 1
                continue
            centre = centre_pixel(self.scene, lat, lon)
            if centre is None or not window_inside(self.scene, *centre, size):
                self.skipped["outside_scene"] += 1
                continue
            self.acquisitions[acquired] = self.acquisitions.get(acquired, 0) + 1
            if self.acquired is not None and acquired != self.acquired:
                self.skipped["other_acquisitions"] += 1
                continue
            cut, cause = cut_bands(self.scene, *centre, size)
            if cut is None:
                self.skipped[cause] += 1
                continue
            held = band_values(record, names, size)
            if any(held[name].size != size * size for name in names):
                self.skipped["incomplete"] += 1  # nothing to compare
                continue
            self.compared += 1
            yield Compared(record, *centre, held,
                           {n: cut[n].astype(np.float64).ravel() for n in names})

    def summary(self) -> Dict[str, object]:
        """``{"examples", "skipped", "skipped_by_cause", "scene_extent",
        "examples_extent"}`` once iterated (extents in ``describe_extent``'s
        words, the examples' by their centres).

        Raises:
            InputError: the shards hold no example, or none was compared
                (naming the scene's extent and the examples').
        """
        if not self.centres.count:
            raise InputError(f"--compare_with: the shards {self.pattern} hold no example")
        if not self.compared:
            why = ", ".join(f"{n} {c.replace('_', ' ')}" for c, n in self.skipped.items() if n)
            where = extents(self.scene, self.centres, "example's centre", "examples' centres")
            days = ""
            if self.acquired is not None and self.acquisitions:
                days = "; inside the scene: " + ", ".join(
                    f"{a[0]}/{a[1]} {n}" if a else f"undated {n}"
                    for a, n in sorted(self.acquisitions.items(), key=lambda i: -i[1]))
            raise InputError(f"no example of {self.pattern} could be compared: {where} "
                             f"({why}){days}")
        return {"examples": self.compared, "skipped": sum(self.skipped.values()),
                "skipped_by_cause": dict(self.skipped),
                "acquired": list(self.acquired) if self.acquired else None,
                "acquisitions": [
                    {"sentinel_1_day": a[0] if a else None, "sentinel_2_day": a[1] if a else None,
                     "examples": n} for a, n in sorted(self.acquisitions.items(),
                                                       key=lambda item: -item[1])],
                "scene_extent": describe_extent(*scene_extent(self.scene)),
                "examples_extent": self.centres.text()}


def compare_with_examples(scene: Scene, pattern: str,
                          acquired: Optional[Tuple[str, str]] = None) -> Dict[str, object]:
    """Compare a scene's encoding with released examples: each band of
    every example of the shards ``pattern`` whose window lies in the scene
    (``ReleasedWindows``) against the scene's, pooled over the examples.

    Returns:
        ``ReleasedWindows.summary`` with ``"bands": {band: {"mean_abs_diff",
        "r", "pixels"}}`` (``r`` in [-1, 1], None for a band constant in
        either source).

    Raises:
        UsageError, InputError, SceneError: as ``ReleasedWindows``.
    """
    names = (*schema.IMAGE_BANDS, *schema.LOW_RES_BANDS)
    sums = {n: np.zeros(7) for n in names}  # n, sum |a - b|, a, b, a², b², ab
    windows = ReleasedWindows(scene, pattern, acquired)
    for found in windows:
        for name in names:
            a, b = found.released[name], found.cut[name]
            sums[name] += (a.size, np.abs(a - b).sum(), a.sum(), b.sum(), (a * a).sum(),
                           (b * b).sum(), (a * b).sum())
    result = windows.summary()
    bands = {}
    for name in names:
        n, absdiff, *moments = sums[name]
        bands[name] = {"pixels": int(n), "mean_abs_diff": float(absdiff / n),
                       "r": correlation(n, *moments)}
    return {**result, "bands": bands}
