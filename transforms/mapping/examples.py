"""The map's windows as examples: 512 x 512 examples in the released schema
cut from a scene at given points (``pipelines.cut_examples``), so a scene
can feed ``run_inference``, the released ``run_inference.py`` or the merge.

An example holds only what a scene can tell: ``sensor_id``, ``timestamp``,
``center_lat``, ``center_long``, ``size``, the model's 14 bands and
``smap_sm``/``gldas_sm``; nothing is invented for the other fields. It is
centred on the scene pixel corner nearest the point (a map pixel's centre
cuts exactly its map window's surroundings); a point whose example would
reach outside the scene or hold a nodata pixel, or whose SMAP/GLDAS pixel is
missing, gives no example but a reason.
"""

from __future__ import annotations

import math
from typing import Dict, NamedTuple, Optional, Tuple

import numpy as np

from transforms.dataset import example_proto, schema
from transforms.mapping.geometry import Region
from transforms.mapping.scene import Scene
from transforms.mapping.tiles import aux_at_points, read_band


class Point(NamedTuple):
    """A place to cut an example at: ``sensor_id``, WGS84 ``lat`` and ``lon``."""

    sensor_id: str
    lat: float
    lon: float


def centre_pixel(scene: Scene, lat: float, lon: float) -> Tuple[int, int]:
    """The scene pixel corner ``(row, col)`` nearest the point."""
    from affine import Affine
    from pyproj import CRS, Transformer

    x, y = Transformer.from_crs(4326, CRS.from_wkt(scene.grid.crs),
                                always_xy=True).transform(lon, lat)
    col, row = ~Affine(*scene.grid.transform) @ (x, y)
    return int(round(row)), int(round(col))


def aux_at(scene: Scene, name: str, row: int, col: int) -> Tuple[Optional[int], str]:
    """``(value, "")`` of the ``name`` raster's pixel containing scene point
    ``(row, col)`` (a pixel corner), or ``(None, cause)``."""
    values, outside, nodata = aux_at_points(scene, name, np.array([row]), np.array([col]))
    prefix = name.split("_")[0]
    if outside[0]:
        return None, f"{prefix}_outside"
    if nodata[0]:
        return None, f"{prefix}_nodata"
    return int(values[0]), ""


def cut_bands(scene: Scene, row: int, col: int,
              size: int) -> Tuple[Optional[Dict[str, np.ndarray]], str]:
    """``({band: size x size values}, "")`` of the model's bands centred on
    scene pixel corner ``(row, col)``, or ``(None, "outside_scene" or
    "band_nodata")``."""
    region = Region(row - size // 2, col - size // 2, size, size)
    grid = scene.grid
    if region.row < 0 or region.col < 0 or region.row + size > grid.height \
            or region.col + size > grid.width:
        return None, "outside_scene"
    bands = {}
    for name, source in scene.bands.items():
        values, nodata = read_band(source, region, grid)
        if nodata.any():
            return None, "band_nodata"
        bands[name] = values
    return bands, ""


def cut_example(scene: Scene, point: Point, timestamp_ms: float,
                size: int = schema.RELEASED_IMAGE_SIZE) -> Tuple[Optional[bytes], str]:
    """``(serialized tf.train.Example, "")`` centred on ``point``, or
    ``(None, why not)``: ``outside_scene``, ``band_nodata``, ``smap_*``,
    ``gldas_*`` (see ``tiles.CAUSES``)."""
    row, col = centre_pixel(scene, point.lat, point.lon)
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


def compare_with_examples(scene: Scene, pattern: str) -> Dict[str, object]:
    """Compare a scene's encoding with released examples: every example of
    the shards ``pattern`` matches whose window lies in the scene is cut
    again from the scene at its ``center_lat``/``center_long``, and each band
    compared pixel by pixel, pooled over the examples.

    Returns:
        ``{"examples": compared, "skipped": outside or nodata (or an
        example lacking a band of ``size`` x ``size`` values), "bands":
        {band: {"mean_abs_diff", "r", "pixels"}}}`` (``r`` None for a band
        constant in either source).
    """
    from transforms.dataset import tfrecord_io

    names = (*schema.IMAGE_BANDS, *schema.LOW_RES_BANDS)
    sums = {n: np.zeros(7) for n in names}  # n, sum |a - b|, a, b, a², b², ab
    compared = skipped = 0
    for path in tfrecord_io.match_input_shards(pattern):
        for record in tfrecord_io.read_shard(path):
            found = example_proto.read_features(
                record, (schema.CENTER_LAT, schema.CENTER_LONG, schema.SIZE))
            size = int(found[schema.SIZE][0]) if found.get(schema.SIZE) else 512
            row, col = centre_pixel(scene, float(found[schema.CENTER_LAT][0]),
                                    float(found[schema.CENTER_LONG][0]))
            cut, _ = cut_bands(scene, row, col, size)
            if cut is None:
                skipped += 1
                continue
            held = band_values(record, names, size)
            if any(held[name].size != size * size for name in names):
                skipped += 1  # a band missing or not size x size: nothing to compare it with
                continue
            compared += 1
            for name in names:
                a = held[name]
                b = cut[name].astype(np.float64).ravel()
                sums[name] += (a.size, np.abs(a - b).sum(), a.sum(), b.sum(), (a * a).sum(),
                               (b * b).sum(), (a * b).sum())
    bands = {}
    for name in names:
        n, absdiff, sa, sb, saa, sbb, sab = sums[name]
        r = None
        if n:
            cov = sab / n - sa / n * sb / n
            va, vb = saa / n - (sa / n) ** 2, sbb / n - (sb / n) ** 2
            r = float(cov / math.sqrt(va * vb)) if va > 1e-12 and vb > 1e-12 else None
        bands[name] = {"pixels": int(n), "mean_abs_diff": float(absdiff / n) if n else None,
                       "r": r}
    return {"examples": compared, "skipped": skipped, "bands": bands}
