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
``compare_with_examples`` reads.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Dict, Optional, Tuple

import numpy as np

from transforms.dataset import example_proto, schema
from transforms.mapping.geometry import Region
from transforms.mapping.points import Point, coordinate_problem
from transforms.mapping.scene import Scene, read_region
from transforms.mapping.tiles import aux_at_points
from transforms.runtime.errors import InputError, UsageError


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
    from affine import Affine
    from pyproj import CRS, Transformer

    grid = scene.grid
    corners = [Affine(*grid.transform) @ (c, r) for c in (0, grid.width) for r in (0, grid.height)]
    xs, ys = [x for x, _ in corners], [y for _, y in corners]
    west, south, east, north = Transformer.from_crs(
        CRS.from_wkt(grid.crs), 4326, always_xy=True).transform_bounds(
        min(xs), min(ys), max(xs), max(ys), densify_pts=21)
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
    if size <= 0 or region.row < 0 or region.col < 0 or region.row + size > grid.height \
            or region.col + size > grid.width:
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


def band_values(record: bytes, names, size: int) -> Dict[str, np.ndarray]:
    """Each of ``names`` of an example as a flat float64 array: bands held as
    one packed ``Int64List`` of ``size * size`` values (the released layout)
    decoded by the compiled varint loop (``dataset.varints``), any other
    layout by the plain protobuf reader.

    Raises:
        MalformedExampleError: the record is not a tf.train.Example.
    """
    from transforms.dataset import varints

    spans = example_proto.packed_int64_spans(record, names)
    buf = np.frombuffer(record, np.uint8)
    out = np.empty((size * size, 1), np.float64)  # exact for integers below 2^53
    values, slow = {}, []
    for name in names:
        span = spans.get(name)
        if span is not None and varints.decode_band(buf, *span, out, 0, False, size, 0,
                                                    size) == size * size:
            values[name] = out[:, 0].copy()
        else:
            slow.append(name)
    if slow:
        found = example_proto.read_features(record, slow)
        values.update((n, np.asarray(found.get(n, []), np.float64)) for n in slow)
    return values


def shard_records(pattern: str):
    """``(path, index, record)`` of every record of the shards ``pattern``
    matches (``--compare_with``).

    Raises:
        UsageError: nothing matches, or the pattern is a folder.
        InputError: a matched shard that cannot be opened or read to its end.
    """
    from transforms.dataset import tfrecord_io

    try:
        paths = tfrecord_io.match_input_shards(pattern)
    except IsADirectoryError as e:
        raise UsageError(f"--compare_with {e}") from e
    except FileNotFoundError as e:
        raise UsageError(f"--compare_with: {e}") from e
    except tfrecord_io.UnreadableShardError as e:
        raise InputError(f"--compare_with: {e}") from e
    for path in paths:
        try:
            for index, record in enumerate(tfrecord_io.read_shard(path)):
                yield path, index, record
        except tfrecord_io.CorruptShardError as e:
            raise InputError(f"--compare_with: {e} (nothing compared)") from e


def example_centre(path: str, index: int, record: bytes) -> Tuple[float, float, int]:
    """``(center_lat, center_long, size)`` of a released example (size 512
    when it has none).

    Raises:
        InputError: naming the shard and record: not a tf.train.Example, or
            without a valid ``center_lat``/``center_long``.
    """
    where = f"--compare_with: {path}: record {index}"
    try:
        found = example_proto.read_features(
            record, (schema.CENTER_LAT, schema.CENTER_LONG, schema.SIZE))
    except example_proto.MalformedExampleError as e:
        raise InputError(f"{where} is not a tf.train.Example ({e})") from e
    if not found.get(schema.CENTER_LAT) or not found.get(schema.CENTER_LONG):
        raise InputError(f"{where} has no {schema.CENTER_LAT}/{schema.CENTER_LONG}: "
                         f"--compare_with needs examples of the released schema")
    lat, lon = float(found[schema.CENTER_LAT][0]), float(found[schema.CENTER_LONG][0])
    problem = coordinate_problem(lat, lon)
    if problem:
        raise InputError(f"{where}: {schema.CENTER_LAT}/{schema.CENTER_LONG}: {problem}")
    size = int(found[schema.SIZE][0]) if found.get(schema.SIZE) else schema.RELEASED_IMAGE_SIZE
    return lat, lon, size


def correlation(n: float, sa: float, sb: float, saa: float, sbb: float,
                sab: float) -> Optional[float]:
    """Pearson's r of ``n`` pairs from their sums (``sa``, ``sb``), sums of
    squares (``saa``, ``sbb``) and of products (``sab``), clipped to [-1, 1]
    (rounding in the sums gives 1.0000005 for identical large values); None
    when either side is constant."""
    cov = sab / n - sa / n * sb / n
    va, vb = saa / n - (sa / n) ** 2, sbb / n - (sb / n) ** 2
    if va <= 1e-12 or vb <= 1e-12:
        return None
    return min(1.0, max(-1.0, float(cov / math.sqrt(va * vb))))


def compare_with_examples(scene: Scene, pattern: str) -> Dict[str, object]:
    """Compare a scene's encoding with released examples: every example of
    the shards ``pattern`` matches whose window lies in the scene is cut
    again from the scene at its ``center_lat``/``center_long``, and each band
    compared pixel by pixel, pooled over the examples.

    Args:
        scene: the scene.
        pattern: a glob of gzipped TFRecord shards.

    Returns:
        ``{"examples": compared, "skipped": not compared, "skipped_by_cause":
        {"outside_scene", "band_nodata", "incomplete" (a band missing or not
        size x size)}, "bands": {band: {"mean_abs_diff", "r", "pixels"}},
        "scene_extent", "examples_extent"}`` (``r`` in [-1, 1], None for a
        band constant in either source; extents in ``describe_extent``'s
        words, the examples' by their centres).

    Raises:
        UsageError, InputError: see ``shard_records`` and ``example_centre``;
            InputError also when no example could be compared (naming the
            scene's extent and the examples').
        SceneError: a scene file that cannot be read, naming it.
    """
    names = (*schema.IMAGE_BANDS, *schema.LOW_RES_BANDS)
    sums = {n: np.zeros(7) for n in names}  # n, sum |a - b|, a, b, a², b², ab
    skipped = {"outside_scene": 0, "band_nodata": 0, "incomplete": 0}
    compared, centres = 0, Extent()
    for path, index, record in shard_records(pattern):
        lat, lon, size = example_centre(path, index, record)
        centres.add(lat, lon)
        if size <= 0:  # no window to compare
            skipped["incomplete"] += 1
            continue
        centre = centre_pixel(scene, lat, lon)
        cut, cause = cut_bands(scene, *centre, size) if centre else (None, "outside_scene")
        if cut is None:
            skipped[cause] += 1
            continue
        held = band_values(record, names, size)
        if any(held[name].size != size * size for name in names):
            skipped["incomplete"] += 1  # a band missing or not size x size: nothing to compare
            continue
        compared += 1
        for name in names:
            a = held[name]
            b = cut[name].astype(np.float64).ravel()
            sums[name] += (a.size, np.abs(a - b).sum(), a.sum(), b.sum(), (a * a).sum(),
                           (b * b).sum(), (a * b).sum())
    if not centres.count:
        raise InputError(f"--compare_with: the shards {pattern} hold no example")
    if not compared:
        why = ", ".join(f"{n} {cause.replace('_', ' ')}" for cause, n in skipped.items() if n)
        where = extents(scene, centres, "example's centre", "examples' centres")
        raise InputError(f"no example of {pattern} could be compared: {where} ({why})")
    bands = {}
    for name in names:
        n, absdiff, *moments = sums[name]
        bands[name] = {"pixels": int(n), "mean_abs_diff": float(absdiff / n),
                       "r": correlation(n, *moments)}
    return {"examples": compared, "skipped": sum(skipped.values()), "skipped_by_cause": skipped,
            "bands": bands, "scene_extent": describe_extent(*scene_extent(scene)),
            "examples_extent": centres.text()}
