"""A realistic, deterministic sample of the released dataset and an ISMN download.

The released shards and the ISMN archive cannot be fetched here (and ISMN data
may not be redistributed), so tests, the demo and the benchmarks run on data
made by this module. It is built to exercise what the real data exercises:

* Shards ``data-NNNNN-of-MMMMM.tfrecord.gz`` with every field of
  ``transforms.dataset.schema``; images are spatially smooth fields with sensor-like
  noise in plausible ranges (S1/S2 8-bit scaled, DEM in metres, SoilGrids in
  g/kg and cg/cm3, blocky at their coarse native resolution), so gzip ratios
  and speeds resemble the real ones.
* ``sensor_id = NETWORK__STATION__SENSOR_TYPE`` with station names that need
  the reference matching rules (``AdamsRanch_1`` -> ``AdamsRanch#1``,
  ``CST_01`` -> ``CST-01``, ``LasBrozas`` -> ``Las-Brozas`` with ``-`` removed,
  ``Bushland_1`` matching both ``Bushland#1`` and ``Bushland#10``), timestamps
  as float32 milliseconds of hourly reading times (carrying the real float32
  rounding), and a share of non-ISMN examples pre-labelled with ``sm_0_5`` or
  ``sm_5_5``.
* An ISMN archive in the real layout and file naming, CEOP or header+values,
  zip or folder: hourly series with gaps, CRLF line ends, ISMN flags, several
  depths and variables per station, ``static_variables.csv`` missing for some.
* Planted failures: unknown network, unknown station, station without a 0.05 m
  soil-moisture sensor, timestamps in gaps, two readings within 3 minutes.
* ``ground_truth.jsonl``: each example's expected merge outcome and label.

Labels depend on SMAP, GLDAS, Sentinel-1 VV and soil texture plus noise
(``label_from_inputs``), so evaluation and training have a signal to find.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import shutil
import zipfile
from typing import Dict, List, Optional, Tuple

import numpy as np

from transforms.dataset import example_proto, schema, tfrecord_io

EPOCH = dt.datetime(1970, 1, 1)
TIME_TOLERANCE_S = 180  # the reference's +-3 minutes
CATEGORIES = ("success", "prelabelled_sm_0_5", "prelabelled_sm_5_5", "unknown_network",
              "unknown_station", "no_sensor", "gap", "duplicate")
_WEIGHTS = (0.55, 0.17, 0.08, 0.04, 0.04, 0.04, 0.04, 0.04)
OUTCOME = {"success": "success", "prelabelled_sm_0_5": "prelabelled",
           "prelabelled_sm_5_5": "prelabelled", "unknown_network": "lookup",
           "unknown_station": "lookup", "no_sensor": "lookup", "gap": "lookup",
           "duplicate": "value"}


@dataclasses.dataclass(frozen=True)
class SensorSpec:
    variable: str  # ISMN short name: sm, ts, p
    depth_from: float
    depth_to: float
    instrument: str

    @property
    def ismn_name(self) -> str:
        """The name the ``ismn`` package gives this sensor."""
        from ismn.const import VARIABLE_LUT
        return (f"{self.instrument}_{VARIABLE_LUT[self.variable]}_"
                f"{self.depth_from:1.6f}_{self.depth_to:1.6f}")


@dataclasses.dataclass(frozen=True)
class StationSpec:
    network: str
    name: str  # as in the ISMN archive
    lat: float
    lon: float
    elevation: float
    sensors: Tuple[SensorSpec, ...]
    static_csv: bool = True


def _s(var, d0, d1, instrument):
    return SensorSpec(var, d0, d1, instrument)


_HP = "Hydraprobe-Analog-(2.5-Volt)"
_USCRN = "Stevens-Hydraprobe-II-Sdi-12"
STATIONS: Tuple[StationSpec, ...] = (
    StationSpec("SCAN", "AdamsRanch#1", 34.25, -105.42, 1905.0,
                (_s("sm", .0508, .0508, _HP), _s("sm", .1016, .1016, _HP),
                 _s("sm", .2032, .2032, _HP), _s("sm", .508, .508, _HP),
                 _s("ts", .0508, .0508, _HP))),
    StationSpec("SCAN", "Bushland#1", 35.18, -102.10, 1170.0,
                (_s("sm", .0508, .0508, _HP), _s("ts", .0508, .0508, _HP))),
    StationSpec("SCAN", "Bushland#10", 35.19, -102.09, 1172.0,
                (_s("sm", .0508, .0508, _HP), _s("sm", .2032, .2032, _HP)),
                static_csv=False),
    StationSpec("USCRN", "Stillwater-2-W", 36.12, -97.09, 272.0,
                (_s("sm", .05, .05, _USCRN), _s("sm", .1, .1, _USCRN),
                 _s("sm", .2, .2, _USCRN), _s("p", 0., 0., "Weighing-gauge"))),
    StationSpec("USCRN", "Kenai-29-ENE", 60.72, -150.45, 86.0,
                (_s("sm", .05, .05, _USCRN), _s("ts", .05, .05, _USCRN)),
                static_csv=False),
    StationSpec("REMEDHUS", "Carretoro", 41.27, -5.39, 737.0,
                (_s("sm", 0., .05, "Stevens-Hydra-Probe"), _s("ts", 0., .05, "Stevens-Hydra-Probe"))),
    StationSpec("REMEDHUS", "Las-Brozas", 41.45, -5.36, 780.0,
                (_s("sm", 0., .05, "Stevens-Hydra-Probe"),)),
    StationSpec("HOBE", "CST-01", 55.97, 9.13, 60.0,
                (_s("sm", .05, .05, "ThetaProbe-ML2X"), _s("sm", .05, .05, "CS655"),
                 _s("sm", .25, .25, "CS655"))),
    StationSpec("HOBE", "CST-02", 56.01, 9.20, 58.0,
                (_s("sm", .05, .05, "CS655"), _s("ts", .05, .05, "CS655"))),
    StationSpec("HOBE", "CST-03", 55.90, 9.07, 55.0,
                (_s("sm", .25, .25, "CS655"), _s("ts", .05, .05, "CS655"))),
)

#: Station names as they appear in sensor_id -> the ISMN station they resolve
#: to (None: no 0.05 m soil moisture sensor), under the reference rules.
ID_STATIONS: Tuple[Tuple[str, str, str], ...] = (
    ("SCAN", "AdamsRanch_1", "AdamsRanch#1"),
    ("SCAN", "Bushland_1", "Bushland#1"),  # also matches Bushland#10: ambiguous
    ("SCAN", "Bushland_10", "Bushland#10"),
    ("USCRN", "Stillwater_2_W", "Stillwater-2-W"),
    ("USCRN", "Kenai_29_ENE", "Kenai-29-ENE"),
    ("REMEDHUS", "Carretoro", "Carretoro"),
    ("REMEDHUS", "LasBrozas", "Las-Brozas"),  # matches only with '-' removed
    ("HOBE", "CST_01", "CST-01"),  # two 0.05 m sensors: ThetaProbe first in the zip, CS655 in a folder
    ("HOBE", "CST_02", "CST-02"),
)
NO_SENSOR_ID_STATION = ("HOBE", "CST_03", "CST-03")
UNKNOWN_STATION_IDS = (("SCAN", "Nowhere_9"), ("USCRN", "Atlantis_1_N"))
UNKNOWN_NETWORK_IDS = (("NOTANETWORK", "Somewhere_1"), ("FR_Aqui", "Lamothe"))
PRELABELLED_IDS = (("SMAP-LittleWashita", "LW01", "CS655"),
                   ("SMAP-ReynoldsCreek", "RC05", "HydraProbe"),
                   ("SMAP-WalnutGulch", "WG82", "TDR"))
AMBIGUOUS_ID_STATIONS = {("SCAN", "Bushland_1")}


@dataclasses.dataclass(frozen=True)
class SampleConfig:
    """What to generate (the flags of ``pipelines.make_sample_data``)."""

    output_dir: str
    num_shards: int = 2
    examples_per_shard: int = 16
    image_size: int = 64
    seed: int = 0
    ismn_format: str = "ceop"  # or "header_values"
    ismn_layout: str = "zip"  # or "dir"
    ismn_days: int = 365  # length of the hourly ISMN series
    start: str = "2016-01-01"

    def __post_init__(self):
        if self.ismn_format not in ("ceop", "header_values"):
            raise ValueError(f"ismn_format must be ceop or header_values, not {self.ismn_format!r}")
        if self.ismn_layout not in ("zip", "dir"):
            raise ValueError(f"ismn_layout must be zip or dir, not {self.ismn_layout!r}")
        if self.image_size < 4 or self.num_shards < 1 or self.examples_per_shard < 1:
            raise ValueError("image_size >= 4, num_shards >= 1, examples_per_shard >= 1")
        if self.ismn_days < 10:
            raise ValueError("ismn_days must be at least 10")


@dataclasses.dataclass
class SamplePaths:
    shards_glob: str
    shards: List[str]
    ismn_path: str
    ground_truth: str
    manifest: str
    #: (network, station, ismn sensor name) -> the readings written for it
    series: Dict[Tuple[str, str, str], "Series"] = dataclasses.field(default_factory=dict)


# --------------------------------------------------------------------------
# ISMN series

@dataclasses.dataclass
class Series:
    """Readings of one ISMN sensor: seconds since epoch, values, flags."""

    times: np.ndarray  # int64 seconds, sorted
    values: np.ndarray  # float64, rounded to 4 decimals as written
    flags: List[str]

    def window(self, t: int, tolerance_s: int = TIME_TOLERANCE_S) -> np.ndarray:
        lo = np.searchsorted(self.times, t - tolerance_s, side="left")
        hi = np.searchsorted(self.times, t + tolerance_s, side="right")
        return np.arange(lo, hi)


def _start_seconds(cfg: SampleConfig) -> int:
    return int((dt.datetime.fromisoformat(cfg.start) - EPOCH).total_seconds())


def _latent_series(rng, hours: int, base: float, variable: str) -> np.ndarray:
    """A plausible hourly series: seasonal cycle, rain pulses with decay, noise."""
    t = np.arange(hours)
    if variable == "ts":
        daily = 6 * np.sin(2 * np.pi * (t % 24) / 24)
        return 12 + 10 * np.sin(2 * np.pi * t / 8760) + daily + rng.normal(0, .3, hours)
    if variable == "p":
        return np.where(rng.random(hours) < .03, rng.gamma(1.5, 2.0, hours), 0.0)
    seasonal = base + 0.06 * np.sin(2 * np.pi * t / 8760 + rng.uniform(0, 6))
    rain = np.where(rng.random(hours) < 0.01, rng.uniform(0.02, 0.12, hours), 0.0)
    wet = np.zeros(hours)
    acc = 0.0
    decay = 0.985
    for i in range(hours):  # recursion: cheap enough for a few years of hours
        acc = acc * decay + rain[i]
        wet[i] = acc
    return np.clip(seasonal + wet + rng.normal(0, 0.003, hours), 0.02, 0.6)


def _flags(rng, n: int) -> List[str]:
    choice = rng.choice(["G", "D01", "D02", "D06", "C03", "U", "M"], size=n,
                        p=[.9, .02, .02, .02, .02, .01, .01])
    return [str(c) for c in choice]


def _gaps(rng, hours: int) -> np.ndarray:
    """Boolean mask of hours with no reading: a few gaps of 12 h to 5 days."""
    missing = np.zeros(hours, dtype=bool)
    for _ in range(max(1, hours // 2000)):
        length = int(rng.integers(12, 120))
        start = int(rng.integers(24, max(25, hours - length - 24)))
        missing[start:start + length] = True
    return missing


# --------------------------------------------------------------------------
# Images

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


def _draw_inputs(rng) -> Inputs:
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


# --------------------------------------------------------------------------
# ISMN archive writing

def _fmt_time(t: int) -> Tuple[str, str]:
    d = EPOCH + dt.timedelta(seconds=int(t))
    return d.strftime("%Y/%m/%d"), d.strftime("%H:%M")


def ismn_file_name(st: StationSpec, sensor: SensorSpec, t0: int, t1: int) -> str:
    d0 = (EPOCH + dt.timedelta(seconds=t0)).strftime("%Y%m%d")
    d1 = (EPOCH + dt.timedelta(seconds=t1)).strftime("%Y%m%d")
    return (f"{st.network}_{st.network}_{st.name}_{sensor.variable}_{sensor.depth_from:.6f}_"
            f"{sensor.depth_to:.6f}_{sensor.instrument}_{d0}_{d1}.stm")


def render_ismn_file(st: StationSpec, sensor: SensorSpec, series: Series, fmt: str) -> bytes:
    """The text of one ISMN data file, CRLF line ends."""
    lines = []
    head = (f"{st.network} {st.network} {st.name} {st.lat:.5f} {st.lon:.5f} {st.elevation:.2f} "
            f"{sensor.depth_from:.4f} {sensor.depth_to:.4f}")
    if fmt == "header_values":
        lines.append(f"{head} {sensor.instrument}")
    for t, v, flag in zip(series.times, series.values, series.flags):
        day, hm = _fmt_time(int(t))
        if fmt == "ceop":
            lines.append(f"{day} {hm} {day} {hm} {head} {v:.4f} {flag} M")
        else:
            lines.append(f"{day} {hm} {v:.4f} {flag} M")
    return ("\r\n".join(lines) + "\r\n").encode("ascii")


def render_static_csv(st: StationSpec, rng) -> bytes:
    rows = ["quantity_name;unit;depth_from[m];depth_to[m];value;description;quantity_source_name;"
            "quantity_source_description;quantity_source_provider;quantity_source_version;"
            "quantity_source_reference;quantity_source_license;quantity_source_url"]
    clay, sand = rng.uniform(5, 40), rng.uniform(20, 70)
    for name, unit, d0, d1, val, src in (
            ("saturation", "m^3*m^-3", 0.0, 0.3, f"{rng.uniform(.35, .5):.2f}", "HWSD"),
            ("clay fraction", "% weight", 0.0, 0.3, f"{clay:.1f}", "HWSD"),
            ("sand fraction", "% weight", 0.0, 0.3, f"{sand:.1f}", "HWSD"),
            ("silt fraction", "% weight", 0.0, 0.3, f"{100 - clay - sand:.1f}", "HWSD"),
            ("organic carbon", "% weight", 0.0, 0.3, f"{rng.uniform(.2, 3):.2f}", "HWSD"),
            ("land cover classification", "", 0.0, 0.0, "10", "CCI_landcover_2000"),
            ("land cover classification", "", 0.0, 0.0, "10", "CCI_landcover_2005"),
            ("land cover classification", "", 0.0, 0.0, "11", "CCI_landcover_2010"),
            ("climate classification", "", 0.0, 0.0, "BSk", "koeppen_geiger_2007")):
        rows.append(f"{name};{unit};{d0};{d1};{val};;{src};;;;;;")
    return ("\r\n".join(rows) + "\r\n").encode()


# --------------------------------------------------------------------------
# The whole sample

def _plan_categories(rng, n: int) -> List[str]:
    """Example categories: every category once (if n allows), the rest drawn."""
    base = list(CATEGORIES[: min(n, len(CATEGORIES))])
    rest = rng.choice(CATEGORIES, size=n - len(base), p=_WEIGHTS).tolist()
    plan = base + [str(c) for c in rest]
    rng.shuffle(plan)
    return plan


def _station(network: str, name: str) -> StationSpec:
    return next(s for s in STATIONS if s.network == network and s.name == name)


def listed_sensors(st: StationSpec, layout: str) -> List[SensorSpec]:
    """A station's sensors in the order the released script meets them: the
    order of their files in the zip (``_write_ismn`` writes them in
    ``st.sensors`` order), or for a folder our documented sorted file-name order."""
    if layout == "zip":
        return list(st.sensors)
    return sorted(st.sensors, key=lambda s: ismn_file_name(st, s, 0, 0))


def first_05_sm_sensor(st: StationSpec, layout: str = "zip") -> Optional[SensorSpec]:
    """The released sensor rule: the first listed whose name has 0.05 and soil_moisture."""
    for sensor in listed_sensors(st, layout):
        if "0.05" in sensor.ismn_name and "soil_moisture" in sensor.ismn_name:
            return sensor
    return None


def generate(cfg: SampleConfig, log=print) -> SamplePaths:
    """Write shards, the ISMN archive, ground truth and a manifest under ``cfg.output_dir``."""
    rng = np.random.default_rng(cfg.seed)
    out = cfg.output_dir
    shard_dir = os.path.join(out, "shards")
    ismn_root = os.path.join(out, "ismn")
    for d in (shard_dir, ismn_root):
        if os.path.exists(d):
            shutil.rmtree(d)
        os.makedirs(d)

    hours = cfg.ismn_days * 24
    t_start = _start_seconds(cfg)
    hour_times = t_start + 3600 * np.arange(hours, dtype=np.int64)

    # 1. Series for every sensor of every station (gaps shared by a station).
    series: Dict[Tuple[str, str, SensorSpec], Series] = {}
    gaps: Dict[Tuple[str, str], np.ndarray] = {}
    for st in STATIONS:
        missing = _gaps(rng, hours)
        gaps[(st.network, st.name)] = missing
        base = float(rng.uniform(0.12, 0.32))
        for sensor in st.sensors:
            vals = np.round(_latent_series(rng, hours, base, sensor.variable), 4)
            keep = ~missing
            series[(st.network, st.name, sensor)] = Series(
                hour_times[keep].copy(), vals[keep].copy(), _flags(rng, int(keep.sum())))

    # 2. Plan the examples and fix their outcomes.
    n_total = cfg.num_shards * cfg.examples_per_shard
    plan = _plan_categories(rng, n_total)
    used_times: Dict[Tuple[str, str], set] = {}
    records = []  # (category, sensor_id, t, lat, lon, elev, inputs, label, truth)
    margin = 48  # keep label times away from the series ends
    for category in plan:
        x = _draw_inputs(rng)
        noise = float(rng.normal(0, 0.015))
        truth: Dict[str, object] = {"case": category, "outcome": OUTCOME[category]}
        label = None
        if category.startswith("prelabelled"):
            net, name, kind = PRELABELLED_IDS[int(rng.integers(len(PRELABELLED_IDS)))]
            key = schema.SM_0_5 if category.endswith("0_5") else schema.SM_5_5
            t = int(hour_times[int(rng.integers(margin, hours - margin))])
            value = label_from_inputs(x, noise)
            label = (key, value)
            truth.update(label_key=key, label=value)
            sensor_id = f"{net}__{name}__{kind}"
            lat, lon, elev = 35.0 + rng.uniform(-5, 5), -100 + rng.uniform(-5, 5), 500.0
        elif category in ("unknown_network", "unknown_station"):
            pool = UNKNOWN_NETWORK_IDS if category == "unknown_network" else UNKNOWN_STATION_IDS
            net, name = pool[int(rng.integers(len(pool)))]
            sensor_id = f"{net}__{name}__{_HP}"
            t = int(hour_times[int(rng.integers(margin, hours - margin))])
            lat, lon, elev = 40.0, -90.0, 300.0
        else:
            if category == "no_sensor":
                net, id_name, ismn_name = NO_SENSOR_ID_STATION
            else:
                net, id_name, ismn_name = ID_STATIONS[int(rng.integers(len(ID_STATIONS)))]
            st = _station(net, ismn_name)
            sensor = first_05_sm_sensor(st, cfg.ismn_layout)
            # the id's sensor type: one of the station's 0.05 m soil-moisture
            # instruments, so stations with two give ids of either type
            kinds = sorted({c.instrument for c in st.sensors
                            if "0.05" in c.ismn_name and "soil_moisture" in c.ismn_name})
            kind = kinds[int(rng.integers(len(kinds)))] if len(kinds) > 1 else (
                sensor or st.sensors[0]).instrument
            sensor_id = f"{net}__{id_name}__{kind}"
            lat, lon, elev = st.lat, st.lon, st.elevation
            truth.update(ismn_network=net, ismn_station=ismn_name,
                         ambiguous_station=(net, id_name) in AMBIGUOUS_ID_STATIONS)
            if sensor is not None:
                truth["ismn_sensor"] = sensor.ismn_name
                truth["sensor_type_mismatch"] = sensor.instrument != kind
            missing = gaps[(net, ismn_name)]
            taken = used_times.setdefault((net, ismn_name), set())
            inner = np.zeros(hours, dtype=bool)
            inner[margin:hours - margin] = True
            if category == "gap":
                # an hour whose neighbours are missing too: nothing within 3 min
                ok = inner & missing & np.roll(missing, 1) & np.roll(missing, -1)
            else:
                ok = inner & ~missing & ~np.roll(missing, 1) & ~np.roll(missing, -1)
            candidates = [i for i in np.flatnonzero(ok) if i not in taken]
            i = int(candidates[int(rng.integers(len(candidates)))])
            taken.update((i - 1, i, i + 1))
            t = int(hour_times[i])
            if sensor is not None and category in ("success", "duplicate"):
                s = series[(net, ismn_name, sensor)]
                j = int(np.searchsorted(s.times, t))
                assert s.times[j] == t
                value = label_from_inputs(x, noise)
                s.values[j] = value
                if category == "success":
                    truth.update(label_key=schema.MERGED_LABEL_KEY, label=value, flag=s.flags[j])
                else:  # a second reading a minute later: a value failure
                    s.times = np.insert(s.times, j + 1, t + 60)
                    s.values = np.insert(s.values, j + 1, np.round(value + 0.01, 4))
                    s.flags.insert(j + 1, "G")
        ts32 = np.float32(t * 1000)
        truth.update(sensor_id=sensor_id, timestamp=float(ts32), reading_time_s=t)
        records.append((sensor_id, ts32, lat, lon, elev, x, label, truth))

    # 3. Check the planted outcomes against the series with the window rule
    #    (float32-rounded timestamps included).
    for sensor_id, ts32, *_rest, truth in records:
        if truth["outcome"] not in ("success", "value") and truth["case"] != "gap":
            continue
        st = _station(truth["ismn_network"], truth["ismn_station"])
        s = series[(st.network, st.name, first_05_sm_sensor(st, cfg.ismn_layout))]
        hits = s.window(int(ts32) // 1000)
        expected = {"success": 1, "value": 2}.get(truth["outcome"], 0)
        assert len(hits) == expected, (truth, hits)
        if expected == 1:
            assert s.values[hits[0]] == truth["label"]

    # 4. Write the ISMN archive.
    ismn_path = _write_ismn(cfg, series, rng, ismn_root)

    # 5. Write shards and ground truth.
    shards, raw_bytes, truth_rows = [], 0, []
    for k in range(cfg.num_shards):
        name = tfrecord_io.shard_name(k, cfg.num_shards)
        path = os.path.join(shard_dir, name)
        chunk = records[k * cfg.examples_per_shard:(k + 1) * cfg.examples_per_shard]
        with tfrecord_io.AtomicShardWriter(path) as writer:
            for index, (sensor_id, ts32, lat, lon, elev, x, label, truth) in enumerate(chunk):
                data = make_example(rng, cfg.image_size, sensor_id, ts32, lat, lon, elev, x, label)
                raw_bytes += len(data)
                writer.write(data)
                truth_rows.append({"shard": name, "index": index, **truth})
        shards.append(path)
        log(f"wrote {path} ({len(chunk)} examples)")
    compressed = sum(os.path.getsize(p) for p in shards)
    gt_path = os.path.join(out, "ground_truth.jsonl")
    with open(gt_path, "w") as f:
        for row in truth_rows:
            f.write(json.dumps(row, sort_keys=True) + "\n")
    counts: Dict[str, int] = {}
    for row in truth_rows:
        counts[row["outcome"]] = counts.get(row["outcome"], 0) + 1
    manifest = {"config": dataclasses.asdict(cfg), "shards": [os.path.basename(p) for p in shards],
                "ismn_path": os.path.relpath(ismn_path, out), "examples": len(truth_rows),
                "expected_outcomes": counts, "uncompressed_bytes": raw_bytes,
                "compressed_bytes": compressed,
                "compression_ratio": round(raw_bytes / compressed, 3)}
    manifest_path = os.path.join(out, "manifest.json")
    with open(manifest_path, "w") as f:
        json.dump(manifest, f, indent=2, sort_keys=True)
    log(f"{len(truth_rows)} examples, {raw_bytes / 1e6:.1f} MB serialized, "
        f"{compressed / 1e6:.1f} MB gzipped: compression ratio {raw_bytes / compressed:.2f}x")
    log(f"expected merge outcomes: {counts}")
    return SamplePaths(os.path.join(shard_dir, f"data-*-of-{cfg.num_shards:05d}.tfrecord.gz"),
                       shards, ismn_path, gt_path, manifest_path,
                       {(net, name, sensor.ismn_name): s
                        for (net, name, sensor), s in series.items()})


def _write_ismn(cfg: SampleConfig, series, rng, ismn_root: str) -> str:
    """Write the archive as ``ismn/ISMN_sample.zip`` or ``ismn/ISMN_sample/``."""
    files: List[Tuple[str, bytes]] = []
    for st in STATIONS:
        folder = f"{st.network}/{st.name}"
        for sensor in st.sensors:
            s = series[(st.network, st.name, sensor)]
            name = ismn_file_name(st, sensor, int(s.times[0]), int(s.times[-1]))
            files.append((f"{folder}/{name}", render_ismn_file(st, sensor, s, cfg.ismn_format)))
        if st.static_csv:
            files.append((f"{folder}/{st.network}_{st.network}_{st.name}_static_variables.csv",
                          render_static_csv(st, rng)))
    files.append(("Readme.txt", b"Synthetic ISMN-format sample made by transforms.synthetic\r\n"))
    if cfg.ismn_layout == "zip":
        path = os.path.join(ismn_root, "ISMN_sample.zip")
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
            for name, data in files:
                info = zipfile.ZipInfo(name, date_time=(2022, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                z.writestr(info, data)
        return path
    path = os.path.join(ismn_root, "ISMN_sample")
    for name, data in files:
        full = os.path.join(path, name)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "wb") as f:
            f.write(data)
    return path

