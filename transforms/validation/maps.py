"""The map side of a validation: what a map is (``open_map``), the pixel
holding a station (``pixel``), and the values at a few pixels
(``read_pixels``), read chunk by chunk, never the whole map.

Two kinds of map:

* a soil-moisture **cube** (``predict_map``'s Zarr store, format 2,
  consolidated): ``soil_moisture``, ``smap_sm`` and ``gldas_sm`` float32
  ``(time, y, x)``, NaN nodata, the grid mapping variable its
  ``grid_mapping`` attribute names (``crs_wkt`` or ``spatial_ref``, and GDAL's
  ``GeoTransform``), ``time`` CF-encoded. Read with ``zarr``: only the
  chunks holding the asked pixels.
* a **GeoTIFF** map (``predict_map``'s COG): band 1 soil moisture (m³/m³),
  NaN nodata, one time: ``--time`` or its GDAL metadata tag ``time``. Read
  with rasterio's windowed reads.

The pixel rule: the station's longitude/latitude (EPSG:4326) carried to the
map's CRS by PROJ (pyproj, ``always_xy``), then ``col = floor((x - x0) / dx)``,
``row = floor((y - y0) / dy)`` with the map's geotransform (GDAL order
``x0 dx 0 y0 0 dy``; north-up maps only). A station is on the map when
``0 <= row < height`` and ``0 <= col < width``.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
import os
import re
import threading
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
from apache_beam.io.filesystems import FileSystems

from transforms.runtime.errors import InputError, UsageError

CUBE, COG = "cube", "cog"
#: the cube's variables: the map, then the SMAP and GLDAS values the model was given
SOIL_MOISTURE, SMAP_SM, GLDAS_SM = "soil_moisture", "smap_sm", "gldas_sm"
CUBE_VARIABLES = (SOIL_MOISTURE, SMAP_SM, GLDAS_SM)
_ZARR_METADATA = (".zmetadata", ".zgroup", "zarr.json")
_TIME = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?Z?$")


@dataclasses.dataclass(frozen=True)
class MapGrid:
    """What a validation needs to know of a map, read from its metadata.

    Attributes:
        path: the map (``--map``).
        kind: ``cube`` (Zarr) or ``cog`` (GeoTIFF).
        crs: the map's CRS as WKT.
        transform: its geotransform in GDAL order ``(x0, dx, 0, y0, 0, dy)``.
        height, width: its size in pixels.
        times_ms: its times, Unix milliseconds (UTC), in the map's order.
        chunk: the ``(rows, cols)`` of a Zarr chunk or a GeoTIFF block.
        variables: the variables with values (``CUBE_VARIABLES`` of a cube;
            ``soil_moisture`` alone for a GeoTIFF).
        product: a cube's ``product`` attribute ("" for a GeoTIFF).
    """

    path: str
    kind: str
    crs: str
    transform: Tuple[float, ...]
    height: int
    width: int
    times_ms: Tuple[int, ...]
    chunk: Tuple[int, int]
    variables: Tuple[str, ...]
    product: str = ""


def parse_time(text: str, what: str) -> int:
    """An ISO 8601 UTC time (``2021-06-01T10:00``, seconds optional, a
    trailing ``Z`` allowed) as Unix milliseconds.

    Args:
        text: the time.
        what: where it came from (``--time``), for the error.

    Returns:
        The time in Unix milliseconds.

    Raises:
        UsageError: ``text`` is not such a time.
    """
    m = _TIME.match(text.strip())
    try:
        when = datetime.datetime(*(int(g or 0) for g in m.groups()),
                                 tzinfo=datetime.timezone.utc) if m else None
    except ValueError:
        when = None
    if when is None:
        raise UsageError(f"{what} {text!r} is not an ISO 8601 UTC time such as 2021-06-01T10:00 "
                         f"(seconds optional, a trailing Z allowed)")
    return int(when.timestamp()) * 1000


def is_zarr(path: str) -> bool:
    """A path ending ``.zarr``, or a folder holding Zarr metadata."""
    root = path.rstrip("/")
    if root.endswith(".zarr"):
        return True
    return any(FileSystems.exists(FileSystems.join(root, name)) for name in _ZARR_METADATA)


def is_cube_path(path: str) -> bool:
    """Whether ``path`` names a cube without reading it: ``.zarr``, or a
    local folder (a GeoTIFF map is a file)."""
    return path.rstrip("/").endswith(".zarr") or ("://" not in path and os.path.isdir(path))


def open_map(path: str, time: Optional[str] = None) -> MapGrid:
    """The ``MapGrid`` of a cube or a GeoTIFF map, from its metadata alone.

    Args:
        path: the map (local or ``gs://``).
        time: a GeoTIFF map's time (ISO 8601 UTC), else its ``time`` tag.

    Returns:
        The map's grid.

    Raises:
        UsageError: the map does not exist; ``time`` given for a cube; a
            GeoTIFF with neither ``time`` nor a ``time`` tag; a time that is
            no ISO 8601 UTC time.
        InputError: neither a Zarr store nor a GeoTIFF; a Zarr store that is
            not a soil-moisture cube (no ``soil_moisture`` ``(time, y, x)``,
            no grid mapping, a CRS PROJ cannot read, no time); a rotated
            or degenerate geotransform.
    """
    if is_zarr(path):
        if time is not None:
            raise UsageError(f"--time is for a GeoTIFF map; the cube {path} carries its own "
                             f"times (every one is validated)")
        return _open_cube(path)
    if not FileSystems.exists(path):
        raise UsageError(f"--map {path} does not exist")
    return _open_geotiff(path, time)


def _north_up(path: str, transform: Sequence[float]) -> Tuple[float, ...]:
    x0, dx, rx, y0, ry, dy = (float(v) for v in transform)
    if rx != 0 or ry != 0 or dx == 0 or dy == 0 or not all(map(math.isfinite, (x0, dx, y0, dy))):
        raise InputError(f"--map {path}: geotransform {tuple(transform)} is rotated or "
                         f"degenerate (x0 dx 0 y0 0 dy wanted); such maps are not validated")
    return x0, dx, rx, y0, ry, dy


def _open_cube(path: str) -> MapGrid:
    import zarr

    def not_ours(why: str) -> InputError:
        return InputError(f"--map {path} is a Zarr store but not a soil-moisture cube: {why}")

    try:
        group = zarr.open_group(path, mode="r")
        names = sorted(group.array_keys())
    except Exception as e:  # noqa: BLE001 - zarr and its stores raise many kinds
        if not FileSystems.exists(path.rstrip("/")):
            raise UsageError(f"--map {path} does not exist") from e
        raise InputError(f"--map {path} is not a readable Zarr store: {type(e).__name__}: "
                         f"{str(e).strip()[:300]}") from e
    if SOIL_MOISTURE not in names:
        raise not_ours(f"it has no {SOIL_MOISTURE} variable (its arrays: {', '.join(names)})")
    sm = group[SOIL_MOISTURE]
    dims = list(sm.attrs.get("_ARRAY_DIMENSIONS", []))
    if dims != ["time", "y", "x"]:
        raise not_ours(f"{SOIL_MOISTURE} has dimensions {dims}, not (time, y, x)")
    mapping = sm.attrs.get("grid_mapping")
    crs_attrs = dict(group[mapping].attrs) if mapping in names else {}
    crs = crs_attrs.get("crs_wkt") or crs_attrs.get("spatial_ref")
    if not crs or "GeoTransform" not in crs_attrs:
        raise not_ours(f"{SOIL_MOISTURE} has no grid mapping with a CRS and a GeoTransform "
                       f"(grid_mapping: {mapping!r})")
    try:
        transform = [float(v) for v in str(crs_attrs["GeoTransform"]).split()]
    except ValueError:
        transform = []
    if len(transform) != 6:
        raise not_ours(f"GeoTransform {crs_attrs['GeoTransform']!r} is not 6 numbers")
    if "time" not in names:
        raise not_ours("it has no time coordinate")
    _check_crs(path, crs)
    times = _decode_times(path, group["time"])
    shape = tuple(sm.shape)
    if len(times) != shape[0]:
        raise not_ours(f"{len(times)} times for {shape[0]} maps")
    if not times:
        raise InputError(f"--map {path}: the cube holds no time, nothing to validate")
    variables = tuple(v for v in CUBE_VARIABLES if v in names and tuple(group[v].shape) == shape)
    return MapGrid(path, CUBE, crs, _north_up(path, transform), shape[1], shape[2], times,
                   (int(sm.chunks[1]), int(sm.chunks[2])), variables,
                   str(group.attrs.get("product", "")))


def _check_crs(path: str, crs: str) -> None:
    """A CRS PROJ reads, else one line naming ``--map`` (not a failure per station)."""
    from pyproj import CRS
    from pyproj.exceptions import CRSError

    try:
        CRS.from_user_input(crs)
    except CRSError as e:
        raise InputError(f"--map {path}: its grid mapping's CRS {crs[:80]!r} cannot be read: "
                         f"{str(e).splitlines()[0][:200]}") from None


def _decode_times(path: str, array) -> Tuple[int, ...]:
    """A CF-encoded time coordinate as Unix milliseconds."""
    from xarray.coding.times import decode_cf_datetime

    units = array.attrs.get("units")
    try:
        decoded = decode_cf_datetime(np.asarray(array[:]), units,
                                     array.attrs.get("calendar", "standard"))
        ms = np.asarray(decoded, dtype="datetime64[ms]").astype(np.int64)
    except Exception as e:  # noqa: BLE001 - xarray raises many kinds
        raise InputError(f"--map {path}: its times (units {units!r}) cannot be read as UTC "
                         f"times: {type(e).__name__}: {e}") from e
    return tuple(int(t) for t in ms)


def _open_geotiff(path: str, time: Optional[str]) -> MapGrid:
    import rasterio

    import warnings

    try:
        with warnings.catch_warnings():  # a raster without a geotransform is refused below
            warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
            src = rasterio.open(path)
    except rasterio.errors.RasterioIOError as e:
        raise InputError(f"--map {path} is neither a Zarr store (a folder with Zarr metadata) "
                         f"nor a GeoTIFF: {e}") from e
    with src:
        if src.driver not in ("GTiff", "COG"):
            raise InputError(f"--map {path} is a {src.driver} raster, neither a Zarr store nor "
                             f"a GeoTIFF")
        if src.crs is None:
            raise InputError(f"--map {path} has no CRS")
        tag = src.tags().get("time")
        if time is None and tag is None:
            raise UsageError(f"--map {path} is a GeoTIFF without a time tag: give --time "
                             f"(ISO 8601 UTC, e.g. 2021-06-01T10:00)")
        t_ms = parse_time(time, "--time") if time is not None else parse_time(tag, f"{path}'s time tag")
        return MapGrid(path, COG, src.crs.to_wkt(), _north_up(path, src.transform.to_gdal()),
                       src.height, src.width, (t_ms,), tuple(src.block_shapes[0]),
                       (SOIL_MOISTURE,))


_TRANSFORMERS = threading.local()


def _transformer(source: str, target: str):
    """A cached pyproj transformer, one per thread (they are not shared between threads)."""
    from pyproj import Transformer

    cache = _TRANSFORMERS.__dict__.setdefault("cache", {})
    if (source, target) not in cache:
        cache[(source, target)] = Transformer.from_crs(source, target, always_xy=True)
    return cache[(source, target)]


def pixel(grid: MapGrid, longitude: float, latitude: float) -> Tuple[Optional[int], Optional[int]]:
    """``(row, col)`` of the map pixel holding a place (maybe off the map;
    ``(None, None)`` when PROJ cannot carry it to the map's CRS).

    Args:
        grid: the map's grid.
        longitude, latitude: the place, degrees (EPSG:4326).
    """
    x, y = _transformer("EPSG:4326", grid.crs).transform(longitude, latitude)
    if not (math.isfinite(x) and math.isfinite(y)):
        return None, None
    x0, dx, _, y0, _, dy = grid.transform
    return math.floor((y - y0) / dy), math.floor((x - x0) / dx)


def on_map(grid: MapGrid, row: Optional[int], col: Optional[int]) -> bool:
    """Whether ``(row, col)`` is a pixel of the map.

    Args:
        grid: the map's grid.
        row, col: a pixel (``pixel``'s), None when there is none.
    """
    return row is not None and col is not None and 0 <= row < grid.height and 0 <= col < grid.width


def chunk_of(grid: MapGrid, row: int, col: int) -> Tuple[int, int]:
    """The ``(chunk row, chunk col)`` of the chunk (block) holding a pixel.

    Args:
        grid: the map's grid.
        row, col: a pixel of the map.
    """
    return row // grid.chunk[0], col // grid.chunk[1]


def read_pixels(grid: MapGrid, rows: Sequence[int], cols: Sequence[int]) -> Dict[str, np.ndarray]:
    """Every variable's values at the given pixels, at every time.

    One read of the window bounding the pixels per variable (and, in a
    cube, per time chunk): meant for the pixels of one chunk.

    Args:
        grid: the map's grid.
        rows, cols: the pixels (on the map), as two equal-length sequences.

    Returns:
        Variable name -> float64 array ``(times, pixels)``, NaN where the map
        has no value.
    """
    rows, cols = np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
    r0, c0 = int(rows.min()), int(cols.min())
    r1, c1 = int(rows.max()) + 1, int(cols.max()) + 1
    if grid.kind == CUBE:
        import zarr

        group = zarr.open_group(grid.path, mode="r")
        blocks = {v: np.asarray(group[v][:, r0:r1, c0:c1]) for v in grid.variables}
    else:
        import rasterio
        from rasterio.windows import Window

        with rasterio.open(grid.path) as src:
            block = src.read(1, window=Window(c0, r0, c1 - c0, r1 - r0)).astype(np.float64)
            if src.nodata is not None and not math.isnan(src.nodata):
                block[block == src.nodata] = np.nan
        blocks = {SOIL_MOISTURE: block[None]}
    return {v: b[:, rows - r0, cols - c0].astype(np.float64) for v, b in blocks.items()}


def bounds_lonlat(grid: MapGrid) -> Tuple[float, float, float, float]:
    """The map's ``(west, south, east, north)`` in degrees (EPSG:4326), its
    edges densified.

    Args:
        grid: the map's grid.
    """
    x0, dx, _, y0, _, dy = grid.transform
    xs, ys = (x0, x0 + dx * grid.width), (y0, y0 + dy * grid.height)
    return tuple(float(v) for v in _transformer(grid.crs, "EPSG:4326").transform_bounds(
        min(xs), min(ys), max(xs), max(ys), densify_pts=21))
