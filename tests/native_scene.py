"""A scene whose 16 bands each lie on their own grid and in their own units,
its ``--encoding`` file, a static STAC ItemCollection of the same files, and
a stand-in model that sees every pixel, for ``tests/test_map_native.py``.

Nothing here imports ``transforms``, ``model_runner`` or ``pipelines``: the
rasters are written with rasterio, their placement computed with pyproj and
numpy, the model written with TensorFlow's own API.

The map's grid (``grid_transform``, written as ``grid_like.tif`` beside the
scene folder, given as ``--grid_like``) is EPSG:32633 at 10 m, 200 x 260 pixels, about
180 km east of the zone's central meridian (so geographic grids are turned
by ~1.8 degrees against it). No band lies on it:

* ``sentinel_1_VV``, ``_VH``: float32 dB on one 10 m UTM grid shifted by
  (3.71, 4.37) pixels and 9 pixels larger; ``sentinel_1_angle``: float32
  degrees on a 30 m UTM grid whose pixel edges pass exactly through the
  map grid's pixel centres of every third row and column; VV and VH
  are multiples of 1/8 dB, a quarter of them exactly halfway between two
  encoded integers (``floor(v * 8 + offset + 0.5)`` rounds them up), some
  beyond the encoding's min and max; VV has ``-9999`` holes, VH NaN holes.
* ``sentinel_2_*``: band folders of two overlapping 20 m UTM files each,
  ``S2_tile_A.tif`` (east, first in name order) and ``S2_tile_B.tif``
  (west), which disagree where they overlap (so the mosaic's order shows).
  A's pixel edges pass exactly through the map pixel centres of even rows
  and columns, B's (shifted 10 m) through those of odd ones: the "a point
  on an edge belongs to the pixel right of / below it" rule decides half of
  all lookups. B2, B3, B4, B8 are uint16 DN (reflectance x 10000 + 1000,
  nodata 0); B11 and B12 float32 reflectance (NaN nodata). A's holes in the
  overlap (B4: nodata, B8: an internal GDAL mask, B11: NaN) are filled by
  B; B2's hole in A and B12's in B lie where only that file covers.
* ``nasa_dem_elevation``: float32 metres in EPSG:4326 at 1 arc-second,
  origin at a fraction of a pixel; values random per pixel over -300-3600 m
  (so neighbours almost always decode to different levels), some exactly
  ``n + 0.5``, some whole decoding levels; ``-32768`` and NaN holes. Its
  pixel edges pass within 1e-3 source pixel of some 200 map-grid pixel
  centres (GDAL's approximate transformer moves points by up to ~6e-4
  pixel there), but never within ``MARGIN`` (no rounding can decide one).
* ``soil_grids_sand/silt/clay``: int16 g/kg in Goode Homolosine
  (ESRI:54052) at 50 m; sand and silt have no encoding (used as stored),
  clay is encoded to percent and stops short of the map's east edge.
  ``soil_grids_bd``: float32 kg/dm3 in LAEA Europe (EPSG:3035) at 30 m.
* ``smap_sm``: float32 m3/m3 on EASE-Grid 2.0 (EPSG:6933), 1/64 of the
  9 km cell, aligned to the global grid; it stops short of the map's west
  edge; ``-9999`` and NaN pixels.
* ``gldas_sm``: float32 kg/m2 in EPSG:4326 at 2^-8 degree; it stops short
  of the map's north edge; ``-9999`` and NaN pixels.

Every carried point of a reprojected band lies at least ``MARGIN`` of a
pixel from its pixel edges (checked while writing), so the nearest rule's
answer cannot hinge on the last bits of a PROJ result.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Dict, List, Optional, Tuple

import numpy as np

from map_oracle import save_serving_model  # tests' own: TensorFlow only

VV, VH, ANGLE = "sentinel_1_VV", "sentinel_1_VH", "sentinel_1_angle"
S2 = ("sentinel_2_B4", "sentinel_2_B3", "sentinel_2_B2", "sentinel_2_B8", "sentinel_2_B11",
      "sentinel_2_B12")
B4, B3, B2, B8, B11, B12 = S2
DEM = "nasa_dem_elevation"
SAND, SILT, CLAY, BD = ("soil_grids_sand_sand_0-5cm_mean", "soil_grids_silt_silt_0-5cm_mean",
                        "soil_grids_clay_clay_0-5cm_mean", "soil_grids_bd_bdod_0-5cm_mean")
IMAGE = (VV, VH, ANGLE, B4, B3, B2, B8, B11, B12, DEM)
LOW_RES = (SAND, SILT, CLAY, BD)
SMAP, GLDAS = "smap_sm", "gldas_sm"
BANDS = IMAGE + LOW_RES
ALL = BANDS + (SMAP, GLDAS)

#: the map's grid
GRID_CRS = "EPSG:32633"
X0, Y0, RES = 680000.0, 5300000.0, 10.0
HEIGHT, WIDTH = 200, 260
#: the map: stride and the stand-in model's window
STRIDE, WINDOW = 8, 16
#: no carried point of a reprojected band lies closer than this (source pixels) to an edge
MARGIN = 1e-6

#: the encoding file (sand and silt have none: int16 g/kg used as stored)
ENCODING: Dict[str, Dict[str, float]] = {
    VV: {"scale": 8, "offset": 256, "min": 0, "max": 255},
    VH: {"scale": 8, "offset": 300, "min": 0, "max": 255},
    ANGLE: {"scale": 10, "offset": 0, "min": 0, "max": 600},
    **{b: {"scale": 1, "offset": -1000, "min": 0, "max": 10000} for b in (B4, B3, B2, B8)},
    **{b: {"scale": 10000, "offset": 0, "min": 0, "max": 10000} for b in (B11, B12)},
    DEM: {"scale": 1, "offset": 0, "min": -1000, "max": 9000},
    CLAY: {"scale": 0.1, "offset": 0, "min": 0, "max": 100},
    BD: {"scale": 100, "offset": 0, "min": 0, "max": 255},
    SMAP: {"scale": 255, "offset": 0, "min": 0, "max": 255},
    GLDAS: {"scale": 5.1, "offset": 0, "min": 0, "max": 255},
}

# EASE-Grid 2.0 global (EPSG:6933): origin and the 9 km cell
EASE_X0, EASE_Y0, EASE_9KM = -17367530.44516138, 7314540.83064791, 9008.055210146
SMAP_PIXEL = EASE_9KM / 64
GLDAS_PIXEL = 2.0 ** -8  # degrees
DEM_PIXEL = 1.0 / 3600  # degrees
S2_FILES = ("S2_tile_A.tif", "S2_tile_B.tif")  # mosaic order: name order


def grid_transform():
    from affine import Affine

    return Affine(RES, 0.0, X0, 0.0, -RES, Y0)


@dataclasses.dataclass
class NativeScene:
    """Where the scene's files are."""

    root: str
    scene: str  # the scene folder
    grid_like: str  # the map grid's template GeoTIFF (outside the scene folder)
    encoding: str  # the encoding JSON
    stac: str  # a static STAC ItemCollection of the same files
    files: Dict[str, List[str]]  # band -> its files, in mosaic order


# --------------------------------------------------------------------------- geometry

def _transformer(source: str, target: str):
    from pyproj import Transformer

    return Transformer.from_crs(source, target, always_xy=True)


def map_points(rows, cols, crs: str) -> Tuple[np.ndarray, np.ndarray]:
    """Map-grid pixel coordinates (corners at integers) as ``(x, y)`` in ``crs``."""
    rows, cols = np.asarray(rows, np.float64), np.asarray(cols, np.float64)
    x, y = X0 + RES * cols, Y0 - RES * rows
    if crs != GRID_CRS:
        x, y = _transformer(GRID_CRS, crs).transform(x, y)
    return np.asarray(x), np.asarray(y)


def centres() -> Tuple[np.ndarray, np.ndarray]:
    """Every map-grid pixel centre, ``(rows, cols)`` (pixel coordinates)."""
    r, c = np.meshgrid(np.arange(HEIGHT) + 0.5, np.arange(WIDTH) + 0.5, indexing="ij")
    return r, c


def map_centre_points() -> Tuple[np.ndarray, np.ndarray]:
    """The map pixels' centre points ``(i s + s/2, j s + s/2)``: SMAP/GLDAS lookups."""
    s = STRIDE
    i, j = np.meshgrid(np.arange(HEIGHT // s), np.arange(WIDTH // s), indexing="ij")
    return i * s + s / 2, j * s + s / 2


def _extent(crs: str, pad: float = 30.0) -> Tuple[float, float, float, float]:
    """``(west, south, east, north)`` in ``crs`` of the map grid, ``pad`` grid pixels wider."""
    along_r, along_c = np.linspace(-pad, HEIGHT + pad, 65), np.linspace(-pad, WIDTH + pad, 65)
    first, last_r, last_c = np.full(65, -pad), np.full(65, HEIGHT + pad), np.full(65, WIDTH + pad)
    rows = np.concatenate([first, last_r, along_r, along_r])
    cols = np.concatenate([along_c, along_c, first, last_c])
    x, y = map_points(rows, cols, crs)
    return float(x.min()), float(y.min()), float(x.max()), float(y.max())


def _fractional(transform, x, y) -> Tuple[np.ndarray, np.ndarray]:
    """Fractional ``(rows, cols)`` of points in a north-up grid."""
    return (y - transform.f) / transform.e, (x - transform.c) / transform.a


def _edge_distance(transform, crs: str, rows, cols) -> float:
    """The smallest distance (source pixels) of map points from ``transform``'s pixel edges."""
    r, c = _fractional(transform, *map_points(rows, cols, crs))
    return float(min(np.abs(r - np.round(r)).min(), np.abs(c - np.round(c)).min()))


def _clear_of_edges(make, crs: str, points, tries: int = 50):
    """``make(k)``'s transform for the first ``k`` whose grid keeps every
    point at least ``MARGIN`` from its pixel edges."""
    for k in range(tries):
        transform = make(k)
        if _edge_distance(transform, crs, *points) >= MARGIN:
            return transform
    raise AssertionError(f"no {crs} origin keeps the points off its pixel edges")


def source_pixel(transform, crs: str, row: float, col: float) -> Tuple[int, int]:
    """The pixel of a file's grid holding map-grid point ``(row, col)``."""
    r, c = _fractional(transform, *map_points([row], [col], crs))
    return int(np.floor(r[0])), int(np.floor(c[0]))


# --------------------------------------------------------------------------- writing

def write_tif(path: str, array: np.ndarray, crs: str, transform, nodata=None,
              mask: Optional[np.ndarray] = None) -> str:
    """One single-band GeoTIFF; ``mask``: an internal GDAL mask (True: masked)."""
    import rasterio
    from rasterio.crs import CRS

    os.makedirs(os.path.dirname(path), exist_ok=True)
    profile = {"driver": "GTiff", "height": array.shape[0], "width": array.shape[1], "count": 1,
               "dtype": array.dtype.name, "crs": CRS.from_string(crs), "transform": transform}
    if nodata is not None:
        profile["nodata"] = nodata
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True):
        with rasterio.open(path, "w", **profile) as ds:
            ds.write(array, 1)
            if mask is not None:
                ds.write_mask(np.where(mask, 0, 255).astype(np.uint8))
    return path


def _block(array: np.ndarray, transform, crs: str, rows: Tuple[int, int],
           cols: Tuple[int, int], value) -> None:
    """Set the file pixels holding the map-grid pixels ``rows`` x ``cols``
    (half-open ranges of map pixels) to ``value``."""
    r0, c0 = source_pixel(transform, crs, rows[0] + 0.5, cols[0] + 0.5)
    r1, c1 = source_pixel(transform, crs, rows[1] - 0.5, cols[1] - 0.5)
    array[min(r0, r1):max(r0, r1) + 1, min(c0, c1):max(c0, c1) + 1] = value


def s1_transforms():
    """VV and VH: 10 m, shifted (3.71, 4.37) pixels, 9 pixels larger than the
    map's grid; the angle: 30 m, its pixel edges exactly on the map grid's
    pixel centres of every third row and column."""
    from affine import Affine

    return (Affine(RES, 0.0, X0 - 4.37 * RES, 0.0, -RES, Y0 + 3.71 * RES),
            Affine(30.0, 0.0, X0 - 55, 0.0, -30.0, Y0 + 55))


def _sentinel_1(rng, scene: str) -> Dict[str, List[str]]:
    transform, coarse = s1_transforms()
    shape = (HEIGHT + 9, WIDTH + 9)
    quarter = rng.integers(0, 4, shape) / 4  # a quarter exactly halfway (x.5 after scaling)
    vv = ((rng.integers(-320, 17, shape) + quarter) / 8).astype(np.float32)  # -40 to 2 dB
    vh = ((rng.integers(-400, -20, shape) + quarter) / 8).astype(np.float32)  # -50 to -2.5 dB
    angle = rng.uniform(29.0, 46.0, ((HEIGHT + 13) // 3, (WIDTH + 13) // 3)).astype(np.float32)
    for r, c in rng.integers(10, min(shape) - 10, (6, 2)):
        vv[r:r + 2, c:c + 3] = -9999.0
    for r, c in rng.integers(10, min(shape) - 10, (4, 2)):
        vh[r:r + 3, c:c + 2] = np.nan
    vh[r, c + 5] = np.inf  # infinity is nodata too
    return {VV: [write_tif(os.path.join(scene, f"{VV}.tif"), vv, GRID_CRS, transform, -9999.0)],
            VH: [write_tif(os.path.join(scene, f"{VH}.tif"), vh, GRID_CRS, transform)],
            ANGLE: [write_tif(os.path.join(scene, f"{ANGLE}.tif"), angle, GRID_CRS, coarse)]}


def s2_transforms():
    """Tile A (east; first in name order) and tile B (west), 20 m: A's
    edges at the map's even pixel centres, B's (10 m shifted) at odd ones."""
    from affine import Affine

    a = Affine(20.0, 0.0, X0 + 5 + 20 * 54, 0.0, -20.0, Y0 - 5 + 40)  # map columns 108.5-
    b = Affine(20.0, 0.0, X0 + 15 - 60, 0.0, -20.0, Y0 + 25)  # map columns -4.5-
    return a, b


def _sentinel_2(rng, scene: str) -> Dict[str, List[str]]:
    ta, tb = s2_transforms()
    shape_a = (HEIGHT // 2 + 4, (WIDTH - 108) // 2 + 4)  # east from map column 108.5
    shape_b = (HEIGHT // 2 + 4, 156 // 2 + 2)  # west, to map column 151.5: overlap 108.5-151.5
    out = {}
    for band in S2:
        if band in (B11, B12):
            a = rng.uniform(-0.05, 1.1, shape_a).astype(np.float32)
            b = rng.uniform(-0.05, 1.1, shape_b).astype(np.float32)
            nodata = None
        else:
            a = rng.integers(1, 12500, shape_a).astype(np.uint16)
            b = rng.integers(1, 12500, shape_b).astype(np.uint16)
            nodata = 0
        mask = None
        if band == B4:  # a hole in A where B covers: B's values
            _block(a, ta, GRID_CRS, (100, 107), (124, 133), 0)
        elif band == B8:  # an internal mask over A where B covers
            mask = np.zeros(shape_a, bool)
            _block(mask, ta, GRID_CRS, (140, 151), (115, 141), True)
        elif band == B11:  # NaN in A where B covers
            _block(a, ta, GRID_CRS, (30, 36), (120, 129), np.nan)
        elif band == B2:  # a hole in A where only A covers: band nodata
            _block(a, ta, GRID_CRS, (60, 63), (200, 204), 0)
        elif band == B12:  # NaN in B where only B covers: band nodata
            _block(b, tb, GRID_CRS, (150, 153), (40, 43), np.nan)
        folder = os.path.join(scene, band)
        out[band] = [write_tif(os.path.join(folder, S2_FILES[0]), a, GRID_CRS, ta, nodata, mask),
                     write_tif(os.path.join(folder, S2_FILES[1]), b, GRID_CRS, tb, nodata)]
    return out


def dem_transform():
    """1 arc-second, origin 0.37 / 0.21 pixel off the whole second, nudged
    until no map pixel centre lies within ``MARGIN`` of its edges."""
    from affine import Affine

    west, _, _, north = _extent("EPSG:4326", pad=8)
    w0 = np.floor(west / DEM_PIXEL) * DEM_PIXEL
    n0 = np.ceil(north / DEM_PIXEL) * DEM_PIXEL
    return _clear_of_edges(lambda k: Affine(DEM_PIXEL, 0.0, w0 + (0.37 + k / 97) * DEM_PIXEL, 0.0,
                                            -DEM_PIXEL, n0 - (0.21 + k / 89) * DEM_PIXEL),
                           "EPSG:4326", centres())


def _dem(rng, scene: str) -> Dict[str, List[str]]:
    transform = dem_transform()
    _, south, east, _ = _extent("EPSG:4326", pad=8)
    shape = (int(np.ceil((transform.f - south) / DEM_PIXEL)) + 2,
             int(np.ceil((east - transform.c) / DEM_PIXEL)) + 2)
    metres = rng.uniform(-300, 3600, shape)
    pick = rng.random(shape)
    metres = np.where(pick < 0.15, rng.integers(-300, 3600, shape) + 0.5, metres)  # ties
    metres = np.where((pick >= 0.15) & (pick < 0.3), 200.0 * rng.integers(0, 16, shape), metres)
    dem = metres.astype(np.float32)
    for r, c in rng.integers(3, min(shape) - 3, (3, 2)):
        dem[r, c] = -32768.0
    for r, c in rng.integers(3, min(shape) - 3, (3, 2)):
        dem[r, c] = np.nan
    return {DEM: [write_tif(os.path.join(scene, f"{DEM}.tif"), dem, "EPSG:4326", transform,
                            -32768.0)]}


def _projected(crs: str, pixel: float, fx: float, fy: float, points, pad: float = 30.0):
    """A north-up grid in ``crs`` with ``pixel`` pixels covering the map,
    its origin ``(fx, fy)`` of a pixel off the whole pixel, clear of edges."""
    from affine import Affine

    west, south, east, north = _extent(crs, pad)
    w0, n0 = np.floor(west / pixel) * pixel, np.ceil(north / pixel) * pixel
    transform = _clear_of_edges(lambda k: Affine(pixel, 0.0, w0 + (fx + k / 97) * pixel, 0.0,
                                                 -pixel, n0 - (fy + k / 89) * pixel),
                                crs, points)
    shape = (int(np.ceil((transform.f - south) / pixel)) + 1,
             int(np.ceil((east - transform.c) / pixel)) + 1)
    return transform, shape


def _soil_grids(rng, scene: str) -> Dict[str, List[str]]:
    out = {}
    homolosine, shape = _projected("ESRI:54052", 50.0, 0.43, 0.19, centres())
    for band in (SAND, SILT, CLAY):
        values = rng.integers(20, 950, shape).astype(np.int16)
        if band == SAND:
            _block(values, homolosine, "ESRI:54052", (80, 82), (60, 62), -32768)
        if band == CLAY:  # stops short of the map's east edge
            _, c = source_pixel(homolosine, "ESRI:54052", HEIGHT / 2, WIDTH - 21.5)
            values = values[:, :c]
        out[band] = [write_tif(os.path.join(scene, f"{band}.tif"), values, "ESRI:54052",
                               homolosine, -32768)]
    laea, shape = _projected("EPSG:3035", 30.0, 0.61, 0.77, centres())
    bd = rng.uniform(0.9, 1.9, shape).astype(np.float32)
    _block(bd, laea, "EPSG:3035", (120, 121), (180, 181), np.nan)
    out[BD] = [write_tif(os.path.join(scene, f"{BD}.tif"), bd, "EPSG:3035", laea)]
    return out


def _aux(rng, scene: str) -> Dict[str, List[str]]:
    from affine import Affine

    points = map_centre_points()
    # SMAP: EASE-Grid 2.0 cells of 9 km / 64, aligned to the global grid, stopping
    # short of the map's west edge (between map columns 1 and 3)
    _, south, east, north = _extent("EPSG:6933", pad=40)
    west = map_points([HEIGHT / 2], [26.0], "EPSG:6933")[0][0]
    c0 = int(np.floor((west - EASE_X0) / SMAP_PIXEL))
    r0 = int(np.floor((EASE_Y0 - north) / SMAP_PIXEL))
    smap_t = Affine(SMAP_PIXEL, 0.0, EASE_X0 + c0 * SMAP_PIXEL, 0.0, -SMAP_PIXEL,
                    EASE_Y0 - r0 * SMAP_PIXEL)
    assert _edge_distance(smap_t, "EPSG:6933", *points) >= MARGIN
    shape = (int(np.ceil((smap_t.f - south) / SMAP_PIXEL)) + 1,
             int(np.ceil((east - smap_t.c) / SMAP_PIXEL)) + 1)
    smap = rng.uniform(0.02, 0.55, shape).astype(np.float32)
    smap[source_pixel(smap_t, "EPSG:6933", 60, 100)] = -9999.0
    smap[source_pixel(smap_t, "EPSG:6933", 140, 36)] = np.nan
    smap[source_pixel(smap_t, "EPSG:6933", 100, 220)] = 0.0  # valid: 0
    # GLDAS: 2^-8 degree, stopping short of the map's north edge (near map row 30)
    west, south, east, north = _extent("EPSG:4326", pad=40)
    lat_cut = map_points([30.0], [WIDTH / 2], "EPSG:4326")[1][0]
    gldas_t = Affine(GLDAS_PIXEL, 0.0, np.floor(west / GLDAS_PIXEL) * GLDAS_PIXEL, 0.0,
                     -GLDAS_PIXEL, np.floor(lat_cut / GLDAS_PIXEL) * GLDAS_PIXEL)
    assert _edge_distance(gldas_t, "EPSG:4326", *points) >= MARGIN
    shape = (int(np.ceil((gldas_t.f - south) / GLDAS_PIXEL)) + 1,
             int(np.ceil((east - gldas_t.c) / GLDAS_PIXEL)) + 1)
    gldas = rng.uniform(4.0, 52.0, shape).astype(np.float32)  # kg/m2; above 50: clipped at 255
    gldas[source_pixel(gldas_t, "EPSG:4326", 150, 60)] = -9999.0
    gldas[source_pixel(gldas_t, "EPSG:4326", 190, 250)] = np.nan
    return {SMAP: [write_tif(os.path.join(scene, f"{SMAP}.tif"), smap, "EPSG:6933", smap_t,
                             -9999.0)],
            GLDAS: [write_tif(os.path.join(scene, f"{GLDAS}.tif"), gldas, "EPSG:4326", gldas_t,
                              -9999.0)]}


def write_grid_like(path: str) -> str:
    """The map's grid as a GeoTIFF (one byte band)."""
    return write_tif(path, np.zeros((HEIGHT, WIDTH), np.uint8), GRID_CRS, grid_transform())


def write_stac(path: str, files: Dict[str, List[str]]) -> str:
    """A static STAC ItemCollection of ``files`` (relative hrefs, asset key =
    band), one item per product; the S2 tiles as two items, A before B (the
    mosaic's order)."""
    import rasterio
    from rasterio.warp import transform_bounds

    base = os.path.dirname(os.path.abspath(path))
    products = [("sentinel-1", [VV, VH, ANGLE], 0), ("sentinel-2-A", list(S2), 0),
                ("sentinel-2-B", list(S2), 1), ("nasadem", [DEM], 0),
                ("soilgrids", list(LOW_RES), 0), ("smap", [SMAP], 0), ("gldas", [GLDAS], 0)]
    features = []
    for item, bands, k in products:
        with rasterio.open(files[bands[0]][k]) as ds:
            west, south, east, north = transform_bounds(ds.crs, "EPSG:4326", *ds.bounds)
        features.append({
            "type": "Feature", "stac_version": "1.0.0", "id": item,
            "geometry": {"type": "Polygon", "coordinates": [[[west, south], [east, south],
                                                             [east, north], [west, north],
                                                             [west, south]]]},
            "bbox": [west, south, east, north],
            "properties": {"datetime": "2021-06-01T10:30:00Z"}, "links": [],
            "assets": {band: {"href": os.path.relpath(files[band][k], base),
                              "type": "image/tiff; application=geotiff", "roles": ["data"]}
                       for band in bands}})
    with open(path, "w") as f:
        json.dump({"type": "FeatureCollection", "features": features}, f, indent=1)
    return path


def write_native_scene(root: str, seed: int = 0) -> NativeScene:
    """The scene (``root/scene``), its grid template, encoding file and STAC file."""
    rng = np.random.default_rng(seed)
    scene = os.path.join(root, "scene")
    files: Dict[str, List[str]] = {}
    for part in (_sentinel_1, _sentinel_2, _dem, _soil_grids, _aux):
        files.update(part(rng, scene))
    assert sorted(files) == sorted(ALL)
    encoding = os.path.join(root, "encoding.json")
    with open(encoding, "w") as f:
        json.dump(ENCODING, f, indent=1)
    return NativeScene(root, scene, write_grid_like(os.path.join(root, "grid_like.tif")),
                       encoding, write_stac(os.path.join(root, "scene.stac.json"), files),
                       files)


# --------------------------------------------------------------------------- the model

def model_weights(seed: int = 7) -> Tuple[np.ndarray, np.ndarray, Tuple[float, float]]:
    """The stand-in's weights: one per window pixel and band, odd multiples
    of 2^-12 below 1/2 (image ``[w, w, 10]``, low-res ``[w, w, 4]``), and
    SMAP's and GLDAS's (of value / 255)."""
    rng = np.random.default_rng(seed)
    image = (2 * rng.integers(0, 1024, (WINDOW, WINDOW, 10)) + 1) * 2.0 ** -12
    low = (2 * rng.integers(0, 1024, (WINDOW, WINDOW, 4)) + 1) * 2.0 ** -12
    return image, low, (1.0, 4.0)


def model_output(image: np.ndarray, low: np.ndarray, aux: np.ndarray) -> np.ndarray:
    """The stand-in, restated in numpy: ``z = sum(W x image) + sum(V x low)
    + 1 aux0 + 4 aux1`` in float64 (exact but for the aux terms' last bits),
    output ``z - floor(z)`` as float32. Any single pixel of any band moved
    by one step moves it by at least 2^-12 (mod 1)."""
    w_image, w_low, (a0, a1) = model_weights()
    z = ((np.asarray(image, np.float64) * w_image).sum(axis=(1, 2, 3))
         + (np.asarray(low, np.float64) * w_low).sum(axis=(1, 2, 3))
         + a0 * np.asarray(aux[:, 0], np.float64) + a1 * np.asarray(aux[:, 1], np.float64))
    return (z - np.floor(z)).astype(np.float32)


def export_model(folder: str) -> str:
    """A TF1 SavedModel (tag ``serve``) with the released interface
    (``ImageTensor:0``, ``LowResImageTensor:0``, ``AuxTensor:0`` ->
    ``clip_by_value:0``) computing ``model_output`` on ``WINDOW`` x
    ``WINDOW`` images (another size fails at run time)."""
    import tensorflow as tf

    v1 = tf.compat.v1
    w_image, w_low, (a0, a1) = model_weights()
    graph = tf.Graph()
    with graph.as_default():
        image = v1.placeholder(tf.float32, [None, None, None, 10], name="ImageTensor")
        low = v1.placeholder(tf.float32, [None, None, None, 4], name="LowResImageTensor")
        aux = v1.placeholder(tf.float32, [None, 2], name="AuxTensor")
        a = tf.cast(aux, tf.float64)
        z = (tf.reduce_sum(tf.cast(image, tf.float64) * tf.constant(w_image), axis=[1, 2, 3])
             + tf.reduce_sum(tf.cast(low, tf.float64) * tf.constant(w_low), axis=[1, 2, 3])
             + a0 * a[:, 0] + a1 * a[:, 1])
        out = tf.clip_by_value(tf.cast(z - tf.floor(z), tf.float32), -1e30, 1e30,
                               name="clip_by_value")
        assert out.name == "clip_by_value:0", out.name
        save_serving_model(folder, graph, image, low, aux, out)
    return folder


def run_saved_model(folder: str, image, low, aux) -> np.ndarray:
    """The SavedModel's own output on a batch, through TensorFlow directly."""
    import tensorflow as tf

    v1 = tf.compat.v1
    graph = tf.Graph()
    with v1.Session(graph=graph) as sess:
        v1.saved_model.loader.load(sess, ["serve"], folder)
        return sess.run("clip_by_value:0", {"ImageTensor:0": image, "LowResImageTensor:0": low,
                                            "AuxTensor:0": aux})
