"""A generated scene for maps: the model's 14 bands as GeoTIFFs in UTM at
10 m, in the dataset's integer encoding (the DEM in metres), and coarse SMAP
and GLDAS rasters in EPSG:4326, written a block of rows at a time (a scene
of any size in bounded memory)."""

from __future__ import annotations

import dataclasses
import os
from typing import Dict, Optional, Tuple

import numpy as np

from transforms.dataset import schema

IMAGE_BANDS: Tuple[str, ...] = (*schema.IMAGE_BANDS, *schema.LOW_RES_BANDS)
NODATA = -32768
#: value ranges of each band, as the generated examples encode them
#: (``examples.make_images``: Sentinel-1/2 on 0-255, the DEM in metres,
#: SoilGrids in g/kg and cg/cm³), so a model trained on the sample maps it
RANGES: Dict[str, Tuple[int, int]] = {
    **{b: (40, 190) for b in schema.IMAGE_BANDS},
    "sentinel_1_angle": (90, 160),
    schema.NASA_DEM_ELEVATION: (50, 2500),
    "soil_grids_sand_sand_0-5cm_mean": (150, 700),
    "soil_grids_silt_silt_0-5cm_mean": (100, 600),
    "soil_grids_clay_clay_0-5cm_mean": (50, 500),
    "soil_grids_bd_bdod_0-5cm_mean": (80, 180),
}


@dataclasses.dataclass(frozen=True)
class SceneConfig:
    """What ``make_scene`` writes.

    Attributes:
        output_dir: the scene folder (created).
        height, width: scene size in pixels (10 m each).
        seed: random seed.
        layout: ``files`` (one single-band file a band) or ``multiband``
            (one file of 14 described bands).
        epsg: the scene's UTM zone (EPSG code).
        origin: the scene's top-left corner (easting, northing).
        nodata_box: scene rows and columns ``(r0, r1, c0, c1)`` set to
            nodata in Sentinel-2 B4 (a cloud), or None.
        aux_degrees: the SMAP/GLDAS pixel size in degrees.
    """

    output_dir: str
    height: int = 768
    width: int = 1024
    seed: int = 0
    layout: str = "files"
    epsg: int = 32633
    origin: Tuple[float, float] = (500000.0, 5300000.0)
    nodata_box: Optional[Tuple[int, int, int, int]] = None
    aux_degrees: float = 0.05


def _field(rng, rows: np.ndarray, width: int, band: int, low: int, high: int) -> np.ndarray:
    """Smooth, band-specific integer values with noise over scene ``rows``."""
    cols = np.arange(width)[None, :]
    r = rows[:, None].astype(np.float64)
    phase = band * 0.7
    smooth = (np.sin(r / (90 + 7 * band) + phase) + np.cos(cols / (130 + 11 * band) - phase)
              + 0.5 * np.sin((r + cols) / 400.0))
    noise = rng.normal(0, 0.15, (len(rows), width))
    unit = (smooth + noise + 2.6) / 5.2
    return np.clip(low + unit * (high - low), low, high).astype(np.int16)


def make_scene(config: SceneConfig) -> Dict[str, str]:
    """Write the scene; returns band name -> file path (the multi-band file
    for every image band with ``layout`` ``multiband``)."""
    import rasterio
    from affine import Affine
    from pyproj import Transformer
    from rasterio.crs import CRS
    from rasterio.windows import Window

    os.makedirs(config.output_dir, exist_ok=True)
    transform = Affine(10.0, 0.0, config.origin[0], 0.0, -10.0, config.origin[1])
    profile = {"driver": "GTiff", "dtype": "int16", "height": config.height,
               "width": config.width, "crs": CRS.from_epsg(config.epsg), "transform": transform,
               "nodata": NODATA, "tiled": True, "blockxsize": 256, "blockysize": 256,
               "compress": "deflate"}
    paths: Dict[str, str] = {}
    if config.layout == "multiband":
        path = os.path.join(config.output_dir, "bands.tif")
        outputs = {name: (path, k + 1) for k, name in enumerate(IMAGE_BANDS)}
        handles = {path: rasterio.open(path, "w", count=len(IMAGE_BANDS), **profile)}
    else:
        outputs = {name: (os.path.join(config.output_dir, f"{name}.tif"), 1)
                   for name in IMAGE_BANDS}
        handles = {p: rasterio.open(p, "w", count=1, **profile) for p, _ in outputs.values()}
    try:
        for k, name in enumerate(IMAGE_BANDS):
            path, index = outputs[name]
            handles[path].set_band_description(index, name)
            rng = np.random.default_rng([config.seed, k])
            for start in range(0, config.height, 512):
                rows = np.arange(start, min(start + 512, config.height))
                block = _field(rng, rows, config.width, k, *RANGES[name])
                if config.nodata_box and name == "sentinel_2_B4":
                    r0, r1, c0, c1 = config.nodata_box
                    sel = (rows >= r0) & (rows < r1)
                    block[sel, c0:c1] = NODATA
                handles[path].write(block, index, window=Window(0, start, config.width, len(rows)))
            paths[name] = path
    finally:
        for handle in handles.values():
            handle.close()
    # SMAP and GLDAS: EPSG:4326 grids covering the scene with a margin
    to_lonlat = Transformer.from_crs(config.epsg, 4326, always_xy=True)
    xs = [config.origin[0], config.origin[0] + 10 * config.width]
    ys = [config.origin[1], config.origin[1] - 10 * config.height]
    lons, lats = to_lonlat.transform([x for x in xs for _ in ys], [y for _ in xs for y in ys])
    d = config.aux_degrees
    west, north = np.floor(min(lons) / d) * d - d, np.ceil(max(lats) / d) * d + d
    cols = int(np.ceil((max(lons) + d - west) / d)) + 1
    rows = int(np.ceil((north - (min(lats) - d)) / d)) + 1
    for k, name in enumerate((schema.SMAP_SM, schema.GLDAS_SM)):
        rng = np.random.default_rng([config.seed, 100 + k])
        values = rng.integers(20, 236, (rows, cols)).astype(np.int16)
        path = os.path.join(config.output_dir, f"{name}.tif")
        with rasterio.open(path, "w", driver="GTiff", dtype="int16", count=1, height=rows,
                           width=cols, crs=CRS.from_epsg(4326),
                           transform=Affine(d, 0.0, west, 0.0, -d, north), nodata=-1) as ds:
            ds.write(values, 1)
            ds.set_band_description(1, name)
        paths[name] = path
    return paths
