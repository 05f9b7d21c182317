"""An independent restatement of predict_map's and cut_examples' rules
(README: "predict_map"), and the scenes and model that make those rules
visible, for ``tests/test_map_rules.py``.

Nothing here imports ``transforms`` or ``model_runner``: scenes are written
and read with rasterio, points are reprojected with pyproj, windows are cut
and decoded with numpy, and the model is a stand-in written with
TensorFlow's own API.

The stand-in has the released interface (``ImageTensor:0``,
``LowResImageTensor:0``, ``AuxTensor:0`` -> ``clip_by_value:0``) and its
output is a known linear function of its inputs (``expected_output``): a
weighted sum of each band's mean over the window it is fed, plus SMAP / 255
and 4 x GLDAS / 255. The scenes make that function tell windows and
auxiliary pixels apart:

* ``sentinel_1_VV`` holds each pixel's row + 1 and ``sentinel_1_VH`` its
  column + 1, so a window one row or one column off moves the output by 1/8;
* the DEM mixes elevations whose ``/ 3000 * 255`` is a whole number, below 0
  and above 3000, so trunc, clip and scale each matter in every window;
* SMAP (EPSG:4326) has pixels of 2^-13 degrees (about 9 m x 14 m), smaller
  about one scene pixel (8 m x 16 m), of random values, so a centre looked up
  a scene pixel off mostly reads another value;
* GLDAS lies in the scene's CRS with pixels of 2 x 2 scene pixels, placed so
  that every map pixel's centre (and every scene corner of odd row and
  column) lies exactly on its pixel corners: the README's "a point on a pixel
  edge belongs to the pixel to its right and below" decides every lookup.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

IMAGE = ("sentinel_1_VV", "sentinel_1_VH", "sentinel_1_angle", "sentinel_2_B4", "sentinel_2_B3",
         "sentinel_2_B2", "sentinel_2_B8", "sentinel_2_B11", "sentinel_2_B12",
         "nasa_dem_elevation")
LOW_RES = ("soil_grids_sand_sand_0-5cm_mean", "soil_grids_silt_silt_0-5cm_mean",
           "soil_grids_clay_clay_0-5cm_mean", "soil_grids_bd_bdod_0-5cm_mean")
BANDS = IMAGE + LOW_RES
VV, VH, ANGLE, B4, B3, B2, B8, B11, B12, DEM = IMAGE
SAND, SILT, CLAY, BD = LOW_RES
SMAP, GLDAS = AUX = ("smap_sm", "gldas_sm")
#: the README's causes, in its order: the first that applies is counted
CAUSES = ("outside_scene", "band_nodata", "smap_outside", "smap_nodata", "gldas_outside",
          "gldas_nodata")

#: the stand-in model's weight of each band's window mean (powers of two)
WEIGHTS: Dict[str, float] = {
    VV: 2.0 ** -3, VH: 2.0 ** -3, DEM: 2.0 ** -4,
    **{name: k * 2.0 ** -16 for k, name in enumerate((ANGLE, B4, B3, B2, B8, B11, B12), 1)},
    **{name: k * 2.0 ** -16 for k, name in enumerate(LOW_RES, 8)},
}
#: the weights of AuxTensor's two values (SMAP / 255, GLDAS / 255)
AUX_WEIGHTS = (1.0, 4.0)

#: each band's GeoTIFF nodata value: all different; the angle has none, clay's is 0
NODATA: Dict[str, Optional[int]] = {name: -(100 + k) for k, name in enumerate(BANDS)}
NODATA.update({ANGLE: None, CLAY: 0, DEM: -32768})
SMAP_NODATA, GLDAS_NODATA = 255, 0  # SMAP holds 0-254 (0 valid), GLDAS 1-255 (255 valid)

#: the scenes' grid: EPSG:32633 on its central meridian, pixels 8 m wide and 16 m high
SCENE_CRS = "EPSG:32633"
X0, Y0, XRES, YRES = 500000.0, 5300000.0, 8.0, 16.0
SMAP_PIXEL = 2.0 ** -13  # degrees


def scene_transform():
    from affine import Affine

    return Affine(XRES, 0.0, X0, 0.0, -YRES, Y0)


# --------------------------------------------------------------------------- the model


def export_linear_model(folder: str, crop: bool = False) -> str:
    """A TF1 SavedModel (tag ``serve``) with the released interface whose
    output is ``expected_output`` of the window it is fed. ``crop``: the
    images are first centre-cropped (or zero-padded) to 256 x 256, as the
    released model does, so it sees only the centre of a 512 x 512 image."""
    import tensorflow as tf

    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default():
        image = v1.placeholder(tf.float32, [None, None, None, 10], name="ImageTensor")
        low_res = v1.placeholder(tf.float32, [None, None, None, 4], name="LowResImageTensor")
        aux = v1.placeholder(tf.float32, [None, 2], name="AuxTensor")
        x, s = image, low_res
        if crop:
            x = tf.image.resize_with_crop_or_pad(x, 256, 256)
            s = tf.image.resize_with_crop_or_pad(s, 256, 256)
        # in float64 inside (sums of up to 512 x 512 pixels stay exact), float32 out
        x, s, a = (tf.cast(t, tf.float64) for t in (x, s, aux))
        w_image = tf.constant([WEIGHTS[n] for n in IMAGE], tf.float64)
        w_low = tf.constant([WEIGHTS[n] for n in LOW_RES], tf.float64)
        z = (tf.reduce_sum(tf.reduce_mean(x, axis=[1, 2]) * w_image, axis=1)
             + tf.reduce_sum(tf.reduce_mean(s, axis=[1, 2]) * w_low, axis=1)
             + AUX_WEIGHTS[0] * a[:, 0] + AUX_WEIGHTS[1] * a[:, 1])
        out = tf.clip_by_value(tf.cast(z, tf.float32), -1e30, 1e30, name="clip_by_value")
        assert out.name == "clip_by_value:0", out.name
        save_serving_model(folder, graph, image, low_res, aux, out)
    return folder


def save_serving_model(folder: str, graph, image, low_res, aux, out) -> None:
    """Save ``graph`` as a TF1 SavedModel (tag ``serve``) whose serving
    signature maps the released inputs (``image``, ``low_res``, ``aux``
    placeholders) to ``out`` (``clip_by_value:0``), as the released model's."""
    import tensorflow as tf

    v1 = tf.compat.v1
    with v1.Session(graph=graph) as sess:
        builder = v1.saved_model.Builder(folder)
        builder.add_meta_graph_and_variables(
            sess, ["serve"], signature_def_map={
                "serving_default": v1.saved_model.predict_signature_def(
                    inputs={"image": image, "low_res": low_res, "aux": aux},
                    outputs={"soil_moisture": out})})
        builder.save()


def dem_rule(elevation) -> np.ndarray:
    """README: ``trunc(clip(elevation / 3000 * 255, 0, 255))``."""
    return np.trunc(np.clip(np.asarray(elevation, np.float64) / 3000.0 * 255.0, 0.0, 255.0))


def expected_output(means: Dict[str, float], smap: float, gldas: float) -> float:
    """The stand-in's output for the window means of the decoded bands and
    raw SMAP/GLDAS values (0-255)."""
    return (sum(WEIGHTS[n] * means[n] for n in BANDS)
            + AUX_WEIGHTS[0] * smap / 255.0 + AUX_WEIGHTS[1] * gldas / 255.0)


# --------------------------------------------------------------------------- points


def aux_coordinates(scene_crs, scene_transform_, aux_crs, aux_transform, rows, cols):
    """Scene points ``(rows, cols)`` (pixel coordinates, corners at
    integers) as fractional ``(rows, cols)`` of an auxiliary raster,
    reprojected with pyproj when its CRS is not the scene's."""
    rows, cols = np.asarray(rows, np.float64), np.asarray(cols, np.float64)
    x, y = scene_transform_ @ (cols, rows)
    to_aux = _transformer(str(scene_crs), str(aux_crs))
    if to_aux is not None:
        x, y = to_aux.transform(x, y)
    c, r = ~aux_transform @ (np.asarray(x), np.asarray(y))
    return np.asarray(r), np.asarray(c)


@functools.lru_cache(maxsize=None)
def _transformer(source: str, target: str):
    """pyproj's transformer between two CRSs (None: the same CRS)."""
    from pyproj import CRS, Transformer

    source, target = CRS.from_user_input(source), CRS.from_user_input(target)
    return None if source == target else Transformer.from_crs(source, target, always_xy=True)


def lonlat(row: float, col: float) -> Tuple[float, float]:
    """WGS84 ``(lon, lat)`` of a scene point (pixel coordinates)."""
    x, y = scene_transform() @ (col, row)
    return _transformer(SCENE_CRS, "EPSG:4326").transform(x, y)


def centres(rows: int, cols: int, s: int) -> List[Tuple[float, float]]:
    """Every map pixel's centre point (README), scene ``(row, col)``."""
    return [(i * s + s / 2, j * s + s / 2) for i in range(rows) for j in range(cols)]


# --------------------------------------------------------------------------- writing scenes


def write_tif(path: str, array: np.ndarray, crs, transform, nodata=None) -> None:
    import rasterio

    profile = {"driver": "GTiff", "height": array.shape[0], "width": array.shape[1], "count": 1,
               "dtype": array.dtype.name, "crs": crs, "transform": transform}
    if nodata is not None:
        profile["nodata"] = nodata
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(array, 1)


@dataclasses.dataclass
class AuxRaster:
    values: np.ndarray
    crs: str
    transform: object
    nodata: int

    def index(self, rows, cols) -> Tuple[np.ndarray, np.ndarray]:
        """Integer ``(rows, cols)`` of the pixels holding scene points."""
        r, c = aux_coordinates(SCENE_CRS, scene_transform(), self.crs, self.transform, rows, cols)
        return np.floor(r).astype(int), np.floor(c).astype(int)

    def set_at(self, points: Iterable[Tuple[float, float]], value) -> None:
        """The pixels holding scene points ``(row, col)`` set to ``value``."""
        points = list(points)
        if points:
            r, c = self.index(*zip(*points))
            assert ((r >= 0) & (c >= 0) & (r < self.values.shape[0])
                    & (c < self.values.shape[1])).all(), "a point outside the raster"
            self.values[r, c] = value


def gldas_raster(rng, s: int, i0: int, i1: int, j0: int, j1: int) -> AuxRaster:
    """GLDAS in the scene's CRS, pixels 2 x 2 scene pixels: map pixel
    ``(i, j)``'s centre lies exactly on its pixel corner ``(s/2 (i - i0),
    s/2 (j - j0))`` (scene corners of odd row and column lie on corners
    too), so centres of rows ``i0``/columns ``j0`` lie on its top/left edge
    (inside) and those of rows ``i1``/columns ``j1`` on its bottom/right
    edge (outside). Values 1-255, nodata 0."""
    from affine import Affine

    half = s // 2
    transform = Affine(2 * XRES, 0.0, X0 + XRES * (j0 * s + half), 0.0, -2 * YRES,
                       Y0 - YRES * (i0 * s + half))
    values = rng.integers(1, 256, (half * (i1 - i0), half * (j1 - j0))).astype(np.uint8)
    return AuxRaster(values, SCENE_CRS, transform, GLDAS_NODATA)


def smap_raster(rng, height: int, width: int, points: Sequence[Tuple[float, float]],
                west_col: Optional[float] = None, margin: float = 1e-3) -> AuxRaster:
    """SMAP in EPSG:4326, pixels of ``SMAP_PIXEL`` degrees, covering the
    scene of ``height`` x ``width`` pixels with room to spare, or only east
    of scene column ``west_col``. Its origin is shifted by a fraction of a
    pixel until every one of ``points`` lies at least ``margin`` of a pixel
    from its pixel edges (so a lookup's pixel cannot hinge on rounding).
    Values 0-254, nodata 255."""
    from affine import Affine

    lons, lats = zip(*(lonlat(r, c) for r in (-20, height + 20) for c in (-20, width + 20)))
    west = lonlat(height / 2, west_col)[0] if west_col is not None else min(lons)
    north, south, east = max(lats), min(lats), max(lons)
    shape = (int((north - south) / SMAP_PIXEL) + 2, int((east - west) / SMAP_PIXEL) + 2)
    values = rng.integers(0, 255, shape).astype(np.uint8)
    rows, cols = zip(*points)
    for k in range(200):  # (a west edge moves by under a pixel: it stays between its columns)
        dx, dy = (k % 17) / 17 * 0.9, (k // 17) / 13 * 0.9
        transform = Affine(SMAP_PIXEL, 0.0, west - dx * SMAP_PIXEL, 0.0, -SMAP_PIXEL,
                           north + dy * SMAP_PIXEL)
        r, c = aux_coordinates(SCENE_CRS, scene_transform(), "EPSG:4326", transform, rows, cols)
        if min(np.abs(r - np.round(r)).min(), np.abs(c - np.round(c)).min()) >= margin:
            return AuxRaster(values, "EPSG:4326", transform, SMAP_NODATA)
    raise AssertionError("no SMAP origin keeps every point off its pixel edges")


def make_bands(rng, height: int, width: int) -> Dict[str, np.ndarray]:
    """The 14 bands (int16): VV = row + 1, VH = column + 1, the DEM in
    metres (a third multiples of 200 m, whose ``/ 3000 * 255`` is whole; a
    tenth above 3000 m and a tenth below 0), the others 1-1000."""
    rows, cols = np.indices((height, width))
    bands = {name: rng.integers(1, 1001, (height, width)).astype(np.int16) for name in BANDS}
    bands[VV] = (rows + 1).astype(np.int16)
    bands[VH] = (cols + 1).astype(np.int16)
    dem = rng.integers(-300, 3601, (height, width))
    pick = rng.random((height, width))
    dem = np.where(pick < 0.35, 200 * rng.integers(0, 16, (height, width)), dem)
    dem = np.where((pick >= 0.35) & (pick < 0.45), rng.integers(3001, 4500, (height, width)), dem)
    dem = np.where((pick >= 0.45) & (pick < 0.55), rng.integers(-500, 0, (height, width)), dem)
    bands[DEM] = dem.astype(np.int16)
    return bands


def write_scene(folder: str, bands: Dict[str, np.ndarray], aux: Dict[str, AuxRaster],
                nodata: Optional[Dict[str, Optional[int]]] = None) -> str:
    nodata = NODATA if nodata is None else nodata
    os.makedirs(folder, exist_ok=True)
    for name in BANDS:
        write_tif(os.path.join(folder, f"{name}.tif"), bands[name], SCENE_CRS,
                  scene_transform(), nodata.get(name))
    for name, raster in aux.items():
        write_tif(os.path.join(folder, f"{name}.tif"), raster.values, raster.crs,
                  raster.transform, raster.nodata)
    return folder


# --------------------------------------------------------------------------- the oracle


class Oracle:
    """A scene read back with rasterio, and the README's rules over it."""

    def __init__(self, folder: str):
        import rasterio

        self.folder = folder
        self.bands, self.nodata = {}, {}
        for name in BANDS:
            with rasterio.open(os.path.join(folder, f"{name}.tif")) as ds:
                self.bands[name] = ds.read(1).astype(np.int64)
                self.nodata[name] = ds.nodata
                self.transform, self.crs = ds.transform, ds.crs
        self.height, self.width = self.bands[VV].shape
        self.bad = np.zeros((self.height, self.width), bool)
        for name in BANDS:
            if self.nodata[name] is not None:
                self.bad |= self.bands[name] == self.nodata[name]
        self.aux = {}
        for name in AUX:
            with rasterio.open(os.path.join(folder, f"{name}.tif")) as ds:
                self.aux[name] = (ds.read(1).astype(np.int64), ds.nodata, ds.transform, ds.crs)

    # ----- SMAP / GLDAS

    def aux_pixel(self, name: str, row: float, col: float) -> Tuple[int, int]:
        """README: the ``name`` raster's pixel containing scene point ``(row,
        col)``, reprojected with pyproj (on an edge: the pixel right of and
        below it), which may be off the raster."""
        _, _, transform, crs = self.aux[name]
        r, c = aux_coordinates(self.crs, self.transform, crs, transform, [row], [col])
        return int(math.floor(r[0])), int(math.floor(c[0]))

    def aux_lookup(self, name: str, row: float, col: float) -> Tuple[Optional[int], str]:
        """``(value, "")`` at scene point ``(row, col)``, or ``(None,
        "<prefix>_outside" or "<prefix>_nodata")``."""
        grid, nodata, _, _ = self.aux[name]
        r, c = self.aux_pixel(name, row, col)
        prefix = name.split("_")[0]
        if not (0 <= r < grid.shape[0] and 0 <= c < grid.shape[1]):
            return None, f"{prefix}_outside"
        if nodata is not None and grid[r, c] == nodata:
            return None, f"{prefix}_nodata"
        return int(grid[r, c]), ""

    # ----- the map

    @staticmethod
    def centre(i: int, j: int, s: int) -> Tuple[float, float]:
        """README: map pixel ``(i, j)``'s centre point, scene ``(row, col)``."""
        return i * s + s / 2, j * s + s / 2

    @staticmethod
    def origin(i: int, j: int, s: int, w: int) -> Tuple[int, int]:
        """README: the top-left scene pixel of map pixel ``(i, j)``'s window."""
        return int(i * s + s / 2 - w / 2), int(j * s + s / 2 - w / 2)

    def inside(self, top: int, left: int, w: int) -> bool:
        return top >= 0 and left >= 0 and top + w <= self.height and left + w <= self.width

    def window(self, name: str, top: int, left: int, w: int) -> np.ndarray:
        """The band's ``w`` x ``w`` window from ``(top, left)``, decoded (the
        DEM by its rule), zeros outside the scene."""
        out = np.zeros((w, w), np.float64)
        r0, r1 = max(top, 0), min(top + w, self.height)
        c0, c1 = max(left, 0), min(left + w, self.width)
        if r1 > r0 and c1 > c0:
            part = self.bands[name][r0:r1, c0:c1]
            out[r0 - top:r1 - top, c0 - left:c1 - left] = dem_rule(part) if name == DEM else part
        return out

    def window_value(self, top: int, left: int, w: int, smap: float, gldas: float) -> float:
        """The stand-in's output on the window from ``(top, left)``."""
        return expected_output({n: self.window(n, top, left, w).mean() for n in BANDS},
                               smap, gldas)

    def holds_nodata(self, top: int, left: int, w: int) -> bool:
        r0, r1 = max(top, 0), min(top + w, self.height)
        c0, c1 = max(left, 0), min(left + w, self.width)
        return r1 > r0 and c1 > c0 and bool(self.bad[r0:r1, c0:c1].any())

    def applicable(self, i: int, j: int, s: int, w: int, pad: bool = False) -> List[str]:
        """Every cause that applies to map pixel ``(i, j)``, in the README's order."""
        top, left = self.origin(i, j, s, w)
        found = []
        if not pad and not self.inside(top, left, w):
            found.append("outside_scene")
        if self.holds_nodata(top, left, w):
            found.append("band_nodata")
        row, col = self.centre(i, j, s)
        for name in AUX:
            value, cause = self.aux_lookup(name, row, col)
            if value is None:
                found.append(cause)
        return found

    def value(self, i: int, j: int, s: int, w: int) -> float:
        """The stand-in's output on map pixel ``(i, j)``'s window (zeros
        outside the scene) with its centre's SMAP and GLDAS."""
        top, left = self.origin(i, j, s, w)
        row, col = self.centre(i, j, s)
        return self.window_value(top, left, w, self.aux_lookup(SMAP, row, col)[0],
                                 self.aux_lookup(GLDAS, row, col)[0])

    def map(self, s: int, w: int, pad: bool = False) -> "OracleMap":
        rows, cols = self.height // s, self.width // s
        values = np.full((rows, cols), np.nan)
        causes = np.empty((rows, cols), dtype=object)
        applies = np.empty((rows, cols), dtype=object)
        for i in range(rows):
            for j in range(cols):
                found = self.applicable(i, j, s, w, pad)
                applies[i, j] = found
                causes[i, j] = found[0] if found else "predicted"
                if not found:
                    values[i, j] = self.value(i, j, s, w)
        return OracleMap(values, causes, applies)

    # ----- cut_examples

    def nearest_corner(self, lat: float, lon: float) -> Tuple[int, int]:
        """README (cut_examples): the scene pixel corner nearest the point."""
        x, y = _transformer("EPSG:4326", str(self.crs)).transform(lon, lat)
        col, row = ~self.transform @ (x, y)
        return int(math.floor(row + 0.5)), int(math.floor(col + 0.5))

    def example(self, row: int, col: int, size: int):
        """``(bands, smap, gldas, "")`` of the ``size`` x ``size`` example
        centred on scene corner ``(row, col)`` (raw values: the DEM in
        metres), or ``(None, None, None, cause)``."""
        top, left = row - size // 2, col - size // 2
        if not self.inside(top, left, size):
            return None, None, None, "outside_scene"
        if self.holds_nodata(top, left, size):
            return None, None, None, "band_nodata"
        held = {}
        for name in AUX:
            value, cause = self.aux_lookup(name, row, col)
            if value is None:
                return None, None, None, cause
            held[name] = value
        bands = {n: self.bands[n][top:top + size, left:left + size] for n in BANDS}
        return bands, held[SMAP], held[GLDAS], ""


@dataclasses.dataclass
class OracleMap:
    """``values`` (NaN where not predicted), ``causes`` (the first cause
    that applies, ``predicted`` where none) and ``applies`` (every cause that
    applies) of each map pixel."""

    values: np.ndarray
    causes: np.ndarray
    applies: np.ndarray

    def count(self, cause: str) -> int:
        return int((self.causes == cause).sum())

    def pixels(self, cause: str) -> List[Tuple[int, int]]:
        return [tuple(int(v) for v in p) for p in np.argwhere(self.causes == cause)]
