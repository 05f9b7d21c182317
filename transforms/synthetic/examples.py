"""Synthetic examples: every field of the schema, images that look like the real ones.

Images are spatially smooth fields with sensor-like noise in plausible
ranges (S1/S2 on 0-255: the generator's own choice, the release's scaling is
unpublished; DEM in metres, SoilGrids in g/kg and cg/cm3,
blocky at their coarse native resolution), so gzip ratios and speeds
resemble the real ones. Labels depend on SMAP, GLDAS, Sentinel-1 VV and soil
texture plus noise (``label_from_inputs``).
"""

from __future__ import annotations

import dataclasses
from typing import Dict, Optional, Tuple

import numpy as np

from transforms.dataset import example_proto, schema


def _upsample(grid: np.ndarray, size: int, smooth: bool) -> np.ndarray:
    """Bilinear (smooth) or nearest (blocky) upsampling of a coarse grid."""
    n = grid.shape[0]
    pos = np.linspace(0, n - 1, size)
    if not smooth:
        idx = np.minimum(np.round(pos).astype(int), n - 1)
        return grid[np.ix_(idx, idx)]
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, n - 1)
    w = pos - lo
    m = np.zeros((size, n))
    m[np.arange(size), lo] += 1 - w
    m[np.arange(size), hi] += w
    return m @ grid @ m.T


def _field(rng, size: int, mean: float, spread: float, cells: int = 6,
           smooth: bool = True, noise: float = 0.0) -> np.ndarray:
    f = _upsample(rng.normal(0, 1, (cells, cells)), size, smooth)
    f = mean + spread * f / max(np.abs(f).max(), 1e-9)
    if noise:
        f = f + rng.normal(0, noise, f.shape)
    return f


def _ints(a: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return np.clip(np.rint(a), lo, hi).astype(np.int64)


@dataclasses.dataclass
class Inputs:
    """The per-example scalars the synthetic label is a function of."""

    smap_sm: int
    gldas_sm: int
    vv_mean: float  # mean Sentinel-1 VV over the image, 0-255 scale
    sand: float  # fraction 0-1
    clay: float  # fraction 0-1


def label_from_inputs(x: Inputs, noise: float) -> float:
    """The synthetic truth: in-situ soil moisture as a function of the inputs."""
    value = (0.02 + 0.30 * x.smap_sm / 255 + 0.20 * x.gldas_sm / 255
             + 0.12 * x.vv_mean / 255 + 0.15 * x.clay - 0.05 * x.sand + noise)
    return float(np.round(np.clip(value, 0.01, 0.6), 4))


def draw_inputs(rng) -> Inputs:
    sand = float(rng.uniform(0.15, 0.7))
    clay = float(rng.uniform(0.05, min(0.5, 0.95 - sand)))
    return Inputs(smap_sm=int(rng.integers(20, 236)), gldas_sm=int(rng.integers(20, 236)),
                  vv_mean=float(rng.uniform(60, 190)), sand=sand, clay=clay)


def make_images(rng, size: int, x: Inputs, elevation: float) -> Dict[str, np.ndarray]:
    """Every image band of the schema for one example, int64 ``size x size``."""
    out: Dict[str, np.ndarray] = {}
    # Sentinel-1: smooth backscatter with multiplicative speckle; the incidence
    # angle ramps across the swath.
    for band, mean in (("VV", x.vv_mean), ("VH", x.vv_mean * 0.7)):
        clean = _field(rng, size, mean, 25, cells=8)
        out[f"sentinel_1_{band}"] = _ints(clean * rng.gamma(16, 1 / 16, clean.shape), 0, 255)
        out[f"sentinel_1_max_{band}"] = _ints(clean + 30, 0, 255)
        out[f"sentinel_1_mean_{band}"] = _ints(clean, 0, 255)
        out[f"sentinel_1_min_{band}"] = _ints(clean - 30, 0, 255)
    ramp = np.linspace(90, 160, size)[None, :] + np.zeros((size, 1))
    out["sentinel_1_angle"] = _ints(ramp + rng.normal(0, 0.5, ramp.shape), 0, 255)
    for stat, off in (("max", 4), ("mean", 0), ("min", -4)):
        out[f"sentinel_1_{stat}_angle"] = _ints(ramp + off, 0, 255)
    # Sentinel-2: reflectances scaled to 0-255, cloud mask blobs.
    cloud = _field(rng, size, 0, 1, cells=5) > 0.6
    for band in ("B2", "B3", "B4", "B5", "B6", "B7", "B8", "B11", "B12"):
        mean = float(rng.uniform(40, 140))
        clean = _field(rng, size, mean, 35, cells=10, noise=2.0)
        out[f"sentinel_2_{band}"] = _ints(np.where(cloud, 250, clean), 0, 255)
        for stat, off in (("max", 40), ("mean", 0), ("min", -40)):
            out[f"sentinel_2_{stat}_{band}"] = _ints(clean + off, 0, 255)
    out["sentinel_2_sen_2_mask"] = cloud.astype(np.int64)
    for stat in ("max", "mean", "min"):
        out[f"sentinel_2_{stat}_sen_2_mask"] = (_field(rng, size, 0, 1, cells=5) > 0.5).astype(np.int64)
    # NASA DEM in metres (may be below 0 or above 3000 at the edges of relief).
    out[schema.NASA_DEM_ELEVATION] = _ints(_field(rng, size, elevation, 150, cells=5, noise=1.0),
                                          -500, 9000)
    # SoilGrids: 250 m cells, so blocky at 10 m pixels; g/kg and cg/cm3.
    cells = max(2, size // 25)
    sand = _field(rng, size, x.sand * 1000, 60, cells=cells, smooth=False)
    clay = _field(rng, size, x.clay * 1000, 40, cells=cells, smooth=False)
    out["soil_grids_sand_sand_0-5cm_mean"] = _ints(sand, 0, 1000)
    out["soil_grids_clay_clay_0-5cm_mean"] = _ints(clay, 0, 1000)
    out["soil_grids_silt_silt_0-5cm_mean"] = _ints(1000 - sand - clay, 0, 1000)
    out["soil_grids_bd_bdod_0-5cm_mean"] = _ints(
        _field(rng, size, 135, 20, cells=cells, smooth=False), 80, 180)
    # Other bands.
    out["aster_B13"] = _ints(_field(rng, size, 150, 30, cells=6, noise=1.5), 0, 255)
    out["aster_B14"] = _ints(_field(rng, size, 145, 30, cells=6, noise=1.5), 0, 255)
    lc_cells = max(2, size // 10)
    out["cgls_lc_crops-coverfraction"] = _ints(_field(rng, size, 40, 40, lc_cells, False), 0, 100)
    out["cgls_lc_grass-coverfraction"] = _ints(_field(rng, size, 30, 30, lc_cells, False), 0, 100)
    out["cgls_lc_moss-coverfraction"] = _ints(_field(rng, size, 2, 4, lc_cells, False), 0, 100)
    classes = np.array([20, 30, 40, 50, 60, 80, 90, 111, 126])
    pick = _field(rng, size, 0, 1, lc_cells, False)
    out["cgls_lc_discrete_classification"] = classes[
        np.clip(((pick + 1) / 2 * len(classes)).astype(int), 0, len(classes) - 1)]
    modis_cells = max(2, size // 50)
    out["modis_leaf_area_Fpar"] = _ints(_field(rng, size, 50, 30, modis_cells, False), 0, 100)
    out["modis_leaf_area_Lai"] = _ints(_field(rng, size, 20, 15, modis_cells, False), 0, 70)
    mask = np.ones((size, size), dtype=np.int64)
    mask[:, : int(rng.integers(0, max(1, size // 8)))] = 0
    out["mask"] = mask
    missing = {f.name for f in schema.image_fields()} - set(out)
    assert not missing, f"generator lacks images for {sorted(missing)}"
    return {k: v.ravel() for k, v in out.items()}


def make_example(rng, size: int, sensor_id: str, timestamp_ms: np.float32, lat: float,
                 lon: float, elevation: float, x: Inputs,
                 label: Optional[Tuple[str, float]]) -> bytes:
    """A serialized example with every schema field (and ``label`` if given)."""
    ts = float(timestamp_ms)
    values: Dict[str, object] = {name: img for name, img in make_images(rng, size, x, elevation).items()}
    scalars = {
        schema.CENTER_LAT: lat, schema.CENTER_LONG: lon, schema.SENSOR_ID: sensor_id.encode(),
        schema.SIZE: size, schema.TIMESTAMP: ts,
        "utm_zone": f"{int((lon + 180) // 6) + 1}{'N' if lat >= 0 else 'S'}".encode(),
        "sentinel_1_orbit_pass": rng.choice([b"ASCENDING", b"DESCENDING"]),
        "sentinel_2_cloud_percentage": float(rng.uniform(0, 40)),
        schema.SMAP_SM: x.smap_sm, schema.GLDAS_SM: x.gldas_sm,
        "gldas_evaporation": int(rng.integers(0, 60)), "gldas_rainfall": int(rng.integers(0, 40)),
        "gldas_snow_depth": int(rng.integers(0, 5)), "gldas_temp": int(rng.integers(100, 200)),
    }
    values.update(scalars)
    easting, northing = float(rng.uniform(2e5, 8e5)), float(rng.uniform(1e6, 7e6))
    half = size * 5.0  # 10 m pixels
    values["utm_easting_northing_image_polygon"] = [
        easting - half, northing - half, easting + half, northing - half,
        easting + half, northing + half, easting - half, northing + half,
        easting - half, northing - half]
    for f in schema.FIELDS:
        if f.name.endswith("_time_millis_diff"):
            prefix = f.name[: -len("_time_millis_diff")]
            diff = float(rng.uniform(-3, 3) * 86400e3)
            values[f.name] = diff
            values[f"{prefix}_timestamp"] = ts - diff
    if label is not None:
        values[label[0]] = label[1]
    features = {}
    for name, v in values.items():
        f = schema.FIELDS_BY_NAME[name]
        features[name] = (f.kind.value, v if isinstance(v, (list, np.ndarray)) else [v])
    required = {f.name for f in schema.FIELDS if not f.optional}
    assert required <= set(features), sorted(required - set(features))
    return example_proto.encode_example(features)
