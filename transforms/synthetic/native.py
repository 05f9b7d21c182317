"""A generated scene as a user downloads it: each band on its product's own
grid and in its own units, the encoding file that maps those units to the
dataset's integers, and a static STAC ItemCollection of the same files
(README: "Map your own scene"). ``make_native_scene`` writes, around a map
grid of ``size`` x ``size`` 10 m pixels in UTM (EPSG:32633 by default):

* ``sentinel_1_VV.tif``: float32 dB (NaN nodata) cropped to the area to
  map: its grid is the map's (``predict_map --grid_like``'s default).
  ``sentinel_1_VH.tif``, ``sentinel_1_angle.tif`` (dB, degrees) as
  downloaded: the same 10 m lattice, a larger grid (its origin shifted).
* ``sentinel_2_<band>/T33UWP.tif``, ``.../T33UXP.tif``: L2A uint16
  reflectance x 10000 + 1000 (baseline 04.00's offset; 0 is nodata) on
  Sentinel-2's own lattice (a few metres off Sentinel-1's), B2/B3/B4/B8 at
  10 m, B11/B12 at 20 m; two overlapping tiles, the first without data on a
  strip of the overlap (outside its swath: the second fills it). A cloud,
  if asked for, is nodata in B4 of both.
* ``nasa_dem_elevation.tif``: NASADEM float32 metres, EPSG:4326, 1";
  ``soil_grids_*_0-5cm_mean.tif``: SoilGrids 2.0 int16 g/kg (sand, silt,
  clay), cg/cm3 (bulk density), 250 m, Goode Homolosine (ESRI:54052);
  ``smap_sm.tif``: SMAP L3 float32 m3/m3, 9 km EASE-Grid 2.0 (EPSG:6933);
  ``gldas_sm.tif``: GLDAS Noah 0-10 cm float32 kg/m2, 0.25 deg, EPSG:4326.
* ``encoding.json`` (``ENCODINGS``): the units above onto the integers the
  generated examples hold (``examples.make_images``), so a model trained on
  the sample maps the scene with values in the ranges it learned.
* ``items.json``: a static STAC ItemCollection of these files (asset keys:
  band names; hrefs relative to it), an item a product and Sentinel-2 tile.

Every value is a smooth field of the place (a band looks alike on any grid)
with sensor-like noise, written a block of rows at a time (bounded memory).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
from typing import Dict, List, Optional, Tuple

import numpy as np

from transforms.dataset import schema

S2_10M = ("sentinel_2_B4", "sentinel_2_B3", "sentinel_2_B2", "sentinel_2_B8")
S2_20M = ("sentinel_2_B11", "sentinel_2_B12")
S2_TILES = ("T33UWP", "T33UXP")
_DN, _S2 = "reflectance*10000+1000", (0.05, -50, 0, 255)  # Sentinel-2: reflectance x 500
_SOIL = (1, 0, 0, 1000)
#: band -> (its unit as the product serves it; its encoding: scale, offset,
#: min, max; its clean field's range and its pixels' noise, in its unit, but
#: Sentinel-2's in reflectance, or None: derived). The encodings bring each
#: band into the ranges of the generated examples: Sentinel-1 dB x 10 + 250,
#: the angle's degrees x 5 - 60, the DEM and SoilGrids as they are, SMAP
#: m3/m3 x 255, GLDAS kg/m2 (0-10 cm: 100 kg/m2 is 1 m3/m3) x 2.55.
_BANDS: Dict[str, Tuple[str, Tuple[float, ...], Optional[Tuple[float, float, float]]]] = {
    "sentinel_1_VV": ("dB", (10, 250, 0, 255), (-19, -6, 0.8)),
    "sentinel_1_VH": ("dB", (10, 250, 0, 255), (-22, -13, 0.8)),
    "sentinel_1_angle": ("degree", (5, -60, 0, 255), None),
    "sentinel_2_B4": (_DN, _S2, (0.03, 0.14, 0.004)),
    "sentinel_2_B3": (_DN, _S2, (0.05, 0.12, 0.004)),
    "sentinel_2_B2": (_DN, _S2, (0.03, 0.09, 0.004)),
    "sentinel_2_B8": (_DN, _S2, (0.20, 0.36, 0.004)),
    "sentinel_2_B11": (_DN, _S2, (0.14, 0.30, 0.004)),
    "sentinel_2_B12": (_DN, _S2, (0.08, 0.22, 0.004)),
    schema.NASA_DEM_ELEVATION: ("m", (1, 0, -500, 9000), (150, 600, 0.5)),
    "soil_grids_sand_sand_0-5cm_mean": ("g/kg", _SOIL, (250, 600, 8)),
    "soil_grids_silt_silt_0-5cm_mean": ("g/kg", _SOIL, None),
    "soil_grids_clay_clay_0-5cm_mean": ("g/kg", _SOIL, (100, 350, 6)),
    "soil_grids_bd_bdod_0-5cm_mean": ("cg/cm3", _SOIL, (110, 160, 2)),
    schema.SMAP_SM: ("m3/m3", (255, 0, 0, 255), (0.12, 0.42, 0)),
    schema.GLDAS_SM: ("kg/m2", (2.55, 0, 0, 255), (12, 40, 0)),
}
#: each band's ``{"scale", "offset", "min", "max"}``: ``encoding.json``
ENCODINGS: Dict[str, Dict[str, float]] = {
    name: dict(zip(("scale", "offset", "min", "max"), e)) for name, (_, e, _) in _BANDS.items()}
#: each band's unit (its GeoTIFF band's unit)
UNITS: Dict[str, str] = {name: unit for name, (unit, _, _) in _BANDS.items()}
#: the Sentinel-1 incidence angle: degrees at the map's west edge, and per km east
ANGLE_WEST, ANGLE_PER_KM = 36.0, 0.07
S1_NODATA, S2_NODATA, SOIL_NODATA, AUX_NODATA = float("nan"), 0, -32768, -9999.0
#: lattices: (origin x, origin y, pixel size) in the product's CRS
SOILGRIDS_CRS, SOILGRIDS_LATTICE = "ESRI:54052", (-19949750.0, 8361000.0, 250.0)
SMAP_CRS, SMAP_LATTICE = "EPSG:6933", (-17367530.44516138, 7314540.830907966, 9008.055210146)
GLDAS_LATTICE = (-180.0, 90.0, 0.25)
DEM_LATTICE = (-180.0 - 0.5 / 3600, 90.0 + 0.5 / 3600, 1 / 3600)
BLOCK_ROWS = 512


@dataclasses.dataclass(frozen=True)
class NativeConfig:
    """What ``make_native_scene`` writes.

    Attributes:
        output_dir: the scene folder (created).
        size: the map grid's side, 10 m pixels (Sentinel-1 VV's grid).
        seed: random seed.
        epsg: the map's UTM zone (EPSG code).
        origin: the map grid's top-left corner (easting, northing).
        s1_margin: Sentinel-1 VH/angle pixels beyond the map grid, (west,
            north, east, south).
        s2_shift: the Sentinel-2 lattice's offset from Sentinel-1's, metres
            (east, north).
        s2_margin: Sentinel-2 pixels (10 m) beyond the map grid on each side.
        overlap: the share of the map's width both Sentinel-2 tiles cover
            (centred); the first tile covers the west, the second the east.
        cloud: map-grid rows and columns ``(r0, r1, c0, c1)`` that are
            nodata in Sentinel-2 B4 (both tiles), or None.
        items: also write ``items.json`` (pystac).
    """

    output_dir: str
    size: int = 768
    seed: int = 0
    epsg: int = 32633
    origin: Tuple[float, float] = (601000.0, 5350000.0)
    s1_margin: Tuple[int, int, int, int] = (12, 7, 9, 14)
    s2_shift: Tuple[float, float] = (4.0, -3.0)
    s2_margin: int = 10
    overlap: float = 0.2
    cloud: Optional[Tuple[int, int, int, int]] = None
    items: bool = True


@dataclasses.dataclass(frozen=True)
class _Raster:
    """One file to write: its grid, type and nodata."""

    path: str
    band: str
    crs: str
    transform: Tuple[float, ...]  # (a, b, c, d, e, f), north-up
    height: int
    width: int
    dtype: str
    nodata: float
    tile: str = ""  # the Sentinel-2 tile, or empty
    noise_offset: int = 0  # the noise's columns: the file's of rows this wide (0: its own)
    noise_width: int = 0


def _unit(rows: np.ndarray, cols: np.ndarray, k: int) -> np.ndarray:
    """A smooth field in [0, 1] of (fractional) map-grid pixel coordinates,
    one pattern per band ``k``: ``scene._field``'s waves."""
    phase = k * 0.7
    smooth = (np.sin(rows / (90 + 7 * k) + phase) + np.cos(cols / (130 + 11 * k) - phase)
              + 0.5 * np.sin((rows + cols) / 400.0))
    return np.clip((smooth + 2.5) / 5.0, 0.0, 1.0)


def _snap(bounds: Tuple[float, float, float, float], lattice: Tuple[float, float, float],
          margin: int) -> Tuple[Tuple[float, ...], int, int]:
    """``(transform, height, width)`` of the lattice's pixels covering
    ``bounds`` (west, south, east, north), ``margin`` pixels more a side."""
    x0, y0, d = lattice
    c0 = int(np.floor((bounds[0] - x0) / d)) - margin
    c1 = int(np.ceil((bounds[2] - x0) / d)) + margin
    r0 = int(np.floor((y0 - bounds[3]) / d)) - margin
    r1 = int(np.ceil((y0 - bounds[1]) / d)) + margin
    return (d, 0.0, x0 + c0 * d, 0.0, -d, y0 - r0 * d), r1 - r0, c1 - c0


@functools.lru_cache(maxsize=16)
def _transformer(source: str, target: str):
    from pyproj import Transformer

    return Transformer.from_crs(source, target, always_xy=True)


class _Layout:
    """The map grid, every file's grid, and where a file's pixels lie on the map's."""

    def __init__(self, config: NativeConfig):
        self.config = config
        self.crs = f"EPSG:{config.epsg}"
        x0, y0 = config.origin
        n = config.size
        self.map_transform = (10.0, 0.0, x0, 0.0, -10.0, y0)
        self.bounds = (x0, y0 - 10 * n, x0 + 10 * n, y0)

    def lonlat_bounds(self, crs: str) -> Tuple[float, float, float, float]:
        """The map's bounds in ``crs`` (its edges densified)."""
        from rasterio.warp import transform_bounds

        return transform_bounds(self.crs, crs, *self.bounds, densify_pts=101)

    def to_map(self, raster: _Raster, rows: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Map-grid pixel coordinates ``(rows, cols)`` of the centres of the
        file's pixels in ``rows`` (all its columns)."""
        a, _, c, _, e, f = raster.transform
        xs = c + a * (np.arange(raster.width) + 0.5)
        ys = f + e * (rows + 0.5)
        x, y = np.meshgrid(xs, ys)
        if raster.crs != self.crs:
            x, y = _transformer(raster.crs, self.crs).transform(x, y)
        _, _, mx, _, me, my = self.map_transform
        return (y - my) / me, (x - mx) / 10.0

    def rasters(self) -> List[_Raster]:
        """Every file of the scene: Sentinel-1's, each Sentinel-2 tile's (in
        mosaic order), the DEM's, SoilGrids', SMAP's and GLDAS's."""
        cfg, out = self.config, []
        n, (x0, y0) = cfg.size, cfg.origin

        def add(name, crs, grid, dtype, nodata, *tile):
            path = os.path.join(cfg.output_dir, *((name, f"{tile[0]}.tif") if tile
                                                  else (f"{name}.tif",)))
            out.append(_Raster(path, name, crs, *grid, dtype, nodata, *tile))

        w, north, e, south = cfg.s1_margin
        add("sentinel_1_VV", self.crs, (self.map_transform, n, n), "float32", S1_NODATA)
        for name in ("sentinel_1_VH", "sentinel_1_angle"):
            add(name, self.crs, ((10.0, 0.0, x0 - 10 * w, 0.0, -10.0, y0 + 10 * north),
                                 n + north + south, n + w + e), "float32", S1_NODATA)
        # Sentinel-2: both tiles on one lattice (its 20 m pixels' corners too);
        # the noise is drawn over their union, so the overlap holds the same values
        lattice, m = (x0 + cfg.s2_shift[0], y0 + cfg.s2_shift[1], 20.0), 10 * cfg.s2_margin
        half = (1 - cfg.overlap) / 2
        union, _, union_width = _snap((x0 - m, y0 - 10 * n - m, x0 + 10 * n + m, y0 + m),
                                      lattice, 0)
        for tile, (west, east) in zip(S2_TILES, ((x0 - m, x0 + 10 * n * (1 - half)),
                                                 (x0 + 10 * n * half, x0 + 10 * n + m))):
            t20, h20, w20 = _snap((west, y0 - 10 * n - m, east, y0 + m), lattice, 0)
            offset = int(round((t20[2] - union[2]) / 20.0))
            for name in (*S2_10M, *S2_20M):
                k = 1 if name in S2_20M else 2  # pixels per 20 m
                d = 20.0 / k
                add(name, self.crs, ((d, 0.0, t20[2], 0.0, -d, t20[5]), h20 * k, w20 * k),
                    "uint16", S2_NODATA, tile, offset * k, union_width * k)
        dem = _snap(self.lonlat_bounds("EPSG:4326"), DEM_LATTICE, 18)
        add(schema.NASA_DEM_ELEVATION, "EPSG:4326", dem, "float32", AUX_NODATA)
        soil = _snap(self.lonlat_bounds(SOILGRIDS_CRS), SOILGRIDS_LATTICE, 2)
        for name in schema.LOW_RES_BANDS:
            add(name, SOILGRIDS_CRS, soil, "int16", SOIL_NODATA)
        add(schema.SMAP_SM, SMAP_CRS, _snap(self.lonlat_bounds(SMAP_CRS), SMAP_LATTICE, 1),
            "float32", AUX_NODATA)
        add(schema.GLDAS_SM, "EPSG:4326", _snap(self.lonlat_bounds("EPSG:4326"),
                                                GLDAS_LATTICE, 1), "float32", AUX_NODATA)
        return out


_ORDER = (*schema.IMAGE_BANDS, *schema.LOW_RES_BANDS, schema.SMAP_SM, schema.GLDAS_SM)


def _values(layout: _Layout, raster: _Raster, rows: np.ndarray) -> np.ndarray:
    """The file's values over ``rows`` (all columns), in its units and type
    (the noise seeded by band and block: the same whatever else is written)."""
    cfg = layout.config
    r, c = layout.to_map(raster, rows)
    name = raster.band
    rng = np.random.default_rng([cfg.seed, _ORDER.index(name), int(rows[0])])
    if name == "sentinel_1_angle":  # a ramp across the swath
        degrees = ANGLE_WEST + ANGLE_PER_KM * c / 100.0 + rng.normal(0, 0.01, c.shape)
        return degrees.astype(np.float32)
    if name == "soil_grids_silt_silt_0-5cm_mean":  # what sand and clay leave
        sand = _values(layout, dataclasses.replace(
            raster, band="soil_grids_sand_sand_0-5cm_mean"), rows)
        clay = _values(layout, dataclasses.replace(
            raster, band="soil_grids_clay_clay_0-5cm_mean"), rows)
        return np.clip(1000 - sand.astype(np.int32) - clay, 0, 1000).astype(np.int16)
    low, high, noise = _BANDS[name][2]
    value = low + _unit(r, c, _ORDER.index(name)) * (high - low)
    if noise:
        offset, width = raster.noise_offset, raster.noise_width or raster.width
        value += rng.normal(0, noise, (len(rows), width))[:, offset:offset + raster.width]
    if name in (*S2_10M, *S2_20M):
        dn = np.clip(np.rint(1000 + 10000 * value), 1, 65535).astype(np.uint16)
        if cfg.cloud and name == "sentinel_2_B4":
            r0, r1, c0, c1 = cfg.cloud
            dn[(r >= r0) & (r < r1) & (c >= c0) & (c < c1)] = S2_NODATA
        if raster.tile == S2_TILES[0]:  # outside its swath: a strip of the overlap
            half = (1 - cfg.overlap) / 2
            dn[c >= cfg.size * (1 - half - cfg.overlap / 4)] = S2_NODATA
        return dn
    if raster.dtype == "int16":
        return np.clip(np.rint(value), 0, 1000).astype(np.int16)
    return value.astype(np.float32)


def _write(layout: _Layout, raster: _Raster) -> None:
    import rasterio
    from rasterio.crs import CRS
    from rasterio.transform import Affine
    from rasterio.windows import Window

    os.makedirs(os.path.dirname(raster.path), exist_ok=True)
    tiled = raster.height >= 256 and raster.width >= 256
    profile = {"driver": "GTiff", "dtype": raster.dtype, "count": 1, "height": raster.height,
               "width": raster.width, "crs": CRS.from_user_input(raster.crs),
               "transform": Affine(*raster.transform), "nodata": raster.nodata,
               "compress": "deflate", "tiled": tiled,
               **({"blockxsize": 256, "blockysize": 256} if tiled else {})}
    with rasterio.open(raster.path + ".part", "w", **profile) as ds:
        for start in range(0, raster.height, BLOCK_ROWS):
            rows = np.arange(start, min(start + BLOCK_ROWS, raster.height))
            ds.write(_values(layout, raster, rows), 1,
                     window=Window(0, start, raster.width, len(rows)))
        ds.set_band_unit(1, UNITS[raster.band])
    os.replace(raster.path + ".part", raster.path)


def make_native_scene(config: NativeConfig) -> Dict[str, List[str]]:
    """Write the scene, ``encoding.json`` and (``config.items``) ``items.json``.

    Returns:
        Band name -> its files (two for each Sentinel-2 band, in mosaic
        order), plus ``"encoding"`` and ``"items"`` -> their one file.
    """
    layout = _Layout(config)
    os.makedirs(config.output_dir, exist_ok=True)
    rasters = layout.rasters()
    paths: Dict[str, List[str]] = {}
    for raster in rasters:
        _write(layout, raster)
        paths.setdefault(raster.band, []).append(raster.path)
    encoding = os.path.join(config.output_dir, "encoding.json")
    with open(encoding, "w") as f:
        json.dump(ENCODINGS, f, indent=2)
        f.write("\n")
    paths["encoding"] = [encoding]
    if config.items:
        paths["items"] = [write_items(config.output_dir, rasters)]
    return paths


# --------------------------------------------------------------------------
# STAC

_S1 = ("sentinel_1_VV", "sentinel_1_VH", "sentinel_1_angle")
_ITEMS = {  # the bands of an item -> (its id, datetime or (start, end), properties)
    _S1: ("S1A_IW_GRDH_1SDV_20210601T050812_20210601T050837_038152_0480A2",
          "2021-06-01T05:08:24Z", {"platform": "sentinel-1a", "constellation": "sentinel-1",
                                   "sar:instrument_mode": "IW", "sar:polarizations": ["VV", "VH"],
                                   "sat:orbit_state": "descending"}),
    (schema.NASA_DEM_ELEVATION,): ("NASADEM_HGT_n48e016",
                                   ("2000-02-11T00:00:00Z", "2000-02-21T23:59:59Z"), {}),
    schema.LOW_RES_BANDS: ("soilgrids_2.0_0-5cm", ("2015-01-01T00:00:00Z",
                                                   "2020-12-31T23:59:59Z"), {}),
    (schema.SMAP_SM,): ("SMAP_L3_SM_P_E_20210601_R18240", "2021-06-01T06:00:00Z", {}),
    (schema.GLDAS_SM,): ("GLDAS_NOAH025_3H.A20210601.0600.021", "2021-06-01T06:00:00Z", {}),
}


def _item_of(raster: _Raster):
    """``(item id, datetime or (start, end), properties)`` of a file's item."""
    if raster.tile:
        return (f"S2B_MSIL2A_20210601T100029_N0400_R122_{raster.tile}_20210601T120000",
                "2021-06-01T10:00:29Z", {"platform": "sentinel-2b", "constellation": "sentinel-2",
                                         "s2:mgrs_tile": raster.tile[1:],
                                         "s2:processing_baseline": "04.00"})
    return next(item for bands, item in _ITEMS.items() if raster.band in bands)


def write_items(folder: str, rasters: List[_Raster]) -> str:
    """``<folder>/items.json``: a static STAC ItemCollection of the scene's
    files (asset keys: band names; hrefs relative to it; projection and
    raster extension fields), one item a product (a Sentinel-2 tile each)."""
    import pystac
    from pystac.extensions.projection import ProjectionExtension
    from pystac.extensions.raster import RasterExtension
    from pystac.utils import str_to_datetime
    from rasterio.crs import CRS
    from rasterio.warp import transform_bounds

    items: Dict[str, pystac.Item] = {}
    for r in rasters:
        item_id, time, properties = _item_of(r)
        a, _, c, _, e, f = r.transform
        w, s, e_, n = transform_bounds(r.crs, "EPSG:4326", c, f + e * r.height, c + a * r.width,
                                       f, densify_pts=21)
        if item_id not in items:
            span = {} if isinstance(time, str) else {"start_datetime": time[0],
                                                     "end_datetime": time[1]}
            items[item_id] = pystac.Item(item_id, None, [w, s, e_, n], str_to_datetime(time)
                                         if isinstance(time, str) else None,
                                         {**properties, **span}, stac_extensions=[
                                             ProjectionExtension.get_schema_uri(),
                                             RasterExtension.get_schema_uri()])
        item = items[item_id]
        item.bbox = [min(item.bbox[0], w), min(item.bbox[1], s), max(item.bbox[2], e_),
                     max(item.bbox[3], n)]
        crs = CRS.from_user_input(r.crs)
        code = ":".join(crs.to_authority() or ()) or None
        band = {"nodata": "nan" if r.dtype == "float32" and np.isnan(r.nodata) else r.nodata,
                "data_type": r.dtype, "unit": UNITS[r.band]}
        item.add_asset(r.band, pystac.Asset(
            os.path.relpath(r.path, folder).replace(os.sep, "/"), f"{r.band} ({UNITS[r.band]})",
            media_type=pystac.MediaType.GEOTIFF, roles=["data"], extra_fields={
                "proj:code": code, **({} if code else {"proj:wkt2": crs.to_wkt()}),
                "proj:shape": [r.height, r.width], "proj:transform": list(r.transform),
                "raster:bands": [band]}))
    for item in items.values():
        w, s, e, n = item.bbox
        item.geometry = {"type": "Polygon",
                         "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}
    path = os.path.join(folder, "items.json")
    pystac.ItemCollection(list(items.values())).save_object(path)
    return path
