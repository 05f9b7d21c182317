"""A series of generated scenes through time, with ISMN stations inside them,
for maps through time and their validation (``make_sample_data
--scene_series N``). ``make_series`` writes, under ``config.output_dir``:

* ``scene_<YYYY-MM-DDTHH:MM>/``: ``config.dates`` scenes ``config.days_apart``
  days apart from ``config.start`` at ``config.hour``:00 UTC, each exactly as
  ``scene.make_scene`` writes one (the same 16 files, encoding and grid:
  CRS, transform, size); every GeoTIFF also carries its time as the TIFF
  DateTime tag (GDAL's ``TIFFTAG_DATETIME``, ``YYYY:MM:DD HH:MM:SS``). The
  first is ``make_scene``'s scene (the sample's ``scene/`` with the same
  seed); the later ones change the inputs the examples' labels depend on
  (``examples.label_from_inputs``: SMAP, GLDAS, mean Sentinel-1 VV): the
  soil dries by ``DRYING`` a day, and rain the day before the third date
  wets it by ``RAIN`` (decaying over ``RAIN_DAYS``), more under a storm cell
  in Sentinel-1 (VH follows VV). Texture, DEM and Sentinel-2 stay.
* an ISMN download (``ISMN_series.zip``, or the folder ``ISMN_series/``),
  in the sample's formats (``ismn_files``), of network ``DEMO``
  (``series_stations``): ``config.stations`` stations ``Inside-1``... at the
  centres of map pixels (at stride ``config.stride``) well inside the scene,
  and ``Outside-1`` north of it. Each has a 0.05 m soil-moisture sensor
  (every other one a 0.20 m one too), hourly over the series. At each scene
  time an inside station's 0.05 m reading is ``label_from_inputs`` of its
  map pixel's window (``config.window`` a side, as predict_map feeds the
  model; ``series_stations.window_inputs``) in that scene, plus noise drawn
  as the examples' labels' (N(0, 0.015)), except ``Inside-3`` at the second
  scene: no reading within 6 hours (a gap).
* ``series.json``: times, scene folders, grid, stride and window, the ISMN
  path, the gap, the change, each station's place, map pixel, window, the
  label's inputs, noise and reading at each time (null: the gap).

Only the bands that change are written anew; the others are copied from the
first scene.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import shutil
from typing import List, Optional, Tuple

import numpy as np

from transforms.dataset import schema
from transforms.synthetic.scene import SceneConfig, make_scene
from transforms.synthetic.series_stations import NETWORK, NOISE, place_stations, write_download
from transforms.synthetic.stations import EPOCH

__all__ = ["SeriesConfig", "SeriesPaths", "make_series", "scene_times"]

DRYING, RAIN, RAIN_DAYS = 3.0, 75.0, 5.0  # SMAP units (of 255) a day; a rain's wetting; decay


@dataclasses.dataclass(frozen=True)
class SeriesConfig:
    """What ``make_series`` writes.

    Attributes:
        output_dir: the series folder (replaced if it exists).
        dates: how many scenes (1 or more).
        size: each scene's side in 10 m pixels.
        window: the model's window (the sample's ``image_size``; even).
        stride: predict_map's ``--stride`` the stations' readings are for (even).
        start: the first scene's day, ``YYYY-MM-DD``.
        days_apart: days between scenes.
        hour: the scenes' hour (UTC).
        seed: random seed (the first scene is ``make_scene``'s with it).
        nodata_box: the cloud of nodata in Sentinel-2 B4 (``SceneConfig``).
        ismn_format: ``ceop`` or ``header_values``.
        ismn_layout: ``zip`` or ``dir``.
        stations: how many stations inside the scene (3 or more).
    """

    output_dir: str
    dates: int = 3
    size: int = 768
    window: int = 32
    stride: int = 32
    start: str = "2016-01-01"
    days_apart: int = 6
    hour: int = 10
    seed: int = 0
    nodata_box: Optional[Tuple[int, int, int, int]] = None
    ismn_format: str = "ceop"
    ismn_layout: str = "zip"
    stations: int = 7

    def __post_init__(self):
        if self.dates < 1 or self.days_apart < 1 or not 0 <= self.hour < 24 or self.stations < 3:
            raise ValueError("dates >= 1, days_apart >= 1, 0 <= hour < 24, stations >= 3")
        if self.window <= 0 or self.window % 2 or self.stride <= 0 or self.stride % 2:
            raise ValueError(f"the window ({self.window}) and the stride ({self.stride}) must "
                             f"be positive even numbers")
        if self.size < 16 * max(self.window, self.stride):
            raise ValueError(f"a series' scene must be at least 16 windows a side to hold its "
                             f"stations: {16 * max(self.window, self.stride)} pixels, not "
                             f"{self.size}")


@dataclasses.dataclass
class SeriesPaths:
    """What ``make_series`` wrote.

    Attributes:
        folder: the series folder.
        scenes: the scene folders, in time order.
        times: their times, ``YYYY-MM-DDTHH:MM``.
        ismn_path: the ISMN download.
        manifest: ``series.json``.
    """

    folder: str
    scenes: List[str]
    times: List[str]
    ismn_path: str
    manifest: str


def scene_times(config: SeriesConfig) -> List[dt.datetime]:
    """The scenes' times (naive UTC)."""
    first = dt.datetime.fromisoformat(config.start).replace(hour=config.hour, minute=0, second=0)
    return [first + dt.timedelta(days=k * config.days_apart) for k in range(config.dates)]


def _wetness(day: float, rain_day: float) -> float:
    """The change of soil moisture since the first scene, in SMAP units."""
    rain = RAIN * np.exp(-(day - rain_day) / RAIN_DAYS) if day >= rain_day else 0.0
    return -DRYING * day + rain


def _storm(rows: np.ndarray, width: int, size: int) -> np.ndarray:
    """The rain's share at scene ``rows``: 0.5 everywhere, up to 1.5 under the storm."""
    cols = np.arange(width)[None, :]
    d2 = (rows[:, None] - 0.35 * size) ** 2 + (cols - 0.65 * size) ** 2
    return 0.5 + np.exp(-d2 / (2 * (size / 3) ** 2))


def _drive(base: str, out: str, change, low: int, high: int) -> None:
    """``out``: ``base`` plus ``change(rows, width)`` rounded, clipped to
    ``[low, high]`` (nodata kept), a block of rows at a time."""
    import rasterio
    from rasterio.windows import Window

    with rasterio.open(base) as src:
        profile, description, nodata = src.profile, src.descriptions[0], src.nodata
        with rasterio.open(out, "w", **profile) as dst:
            dst.set_band_description(1, description)
            for start in range(0, src.height, 512):
                window = Window(0, start, src.width, min(512, src.height - start))
                block = src.read(1, window=window)
                rows = np.arange(start, start + window.height)
                moved = np.clip(np.rint(block + change(rows, src.width)), low, high)
                dst.write(np.where(block == nodata, block, moved).astype(block.dtype), 1,
                          window=window)


def _derive_scene(first: str, folder: str, day: float, rain_day: float, size: int) -> None:
    """Scene ``folder`` at ``day``: ``first``'s files, the label's drivers changed."""
    os.makedirs(folder)
    wet = _wetness(day, rain_day)
    dry = -DRYING * day
    changed = {
        "sentinel_1_VV": (lambda r, w: 0.5 * (dry + (wet - dry) * _storm(r, w, size)), 0, 255),
        "sentinel_1_VH": (lambda r, w: 0.35 * (dry + (wet - dry) * _storm(r, w, size)), 0, 255),
        schema.SMAP_SM: (lambda r, w: wet, 20, 235),
        schema.GLDAS_SM: (lambda r, w: 0.8 * wet, 20, 235),
    }
    for name in sorted(os.listdir(first)):
        band = name[:-len(".tif")]
        if band in changed:
            _drive(os.path.join(first, name), os.path.join(folder, name), *changed[band])
        else:
            shutil.copyfile(os.path.join(first, name), os.path.join(folder, name))


def _tag_time(folder: str, when: dt.datetime) -> None:
    import rasterio

    for name in sorted(os.listdir(folder)):
        if name.endswith(".tif"):
            with rasterio.open(os.path.join(folder, name), "r+") as ds:
                ds.update_tags(TIFFTAG_DATETIME=when.strftime("%Y:%m:%d %H:%M:%S"))


def make_series(config: SeriesConfig, log=print) -> SeriesPaths:
    """Write the series (the module's docstring); returns its paths."""
    if os.path.isdir(config.output_dir):  # no scene of an earlier, longer series left in it
        shutil.rmtree(config.output_dir)
    os.makedirs(config.output_dir)
    rng = np.random.default_rng([config.seed, 7])
    times = scene_times(config)
    names = [t.strftime("%Y-%m-%dT%H:%M") for t in times]
    folders = [os.path.join(config.output_dir, f"scene_{n}") for n in names]
    scene = SceneConfig(folders[0], config.size, config.size, seed=config.seed,
                        nodata_box=config.nodata_box)
    make_scene(scene)
    rain_day = 2 * config.days_apart - 1  # the day before the third scene
    for k, folder in enumerate(folders[1:], 1):
        _derive_scene(folders[0], folder, k * config.days_apart, rain_day, config.size)
    for folder, when in zip(folders, times):  # the copies carry the first's tag until now
        _tag_time(folder, when)
    seconds = [int((t - EPOCH).total_seconds()) for t in times]
    places = place_stations(scene, config.stride, config.window, config.stations, rng)
    gap = (2, min(1, len(names) - 1))  # Inside-3 at the second scene
    ismn_name = "ISMN_series.zip" if config.ismn_layout == "zip" else "ISMN_series"
    ismn_path = os.path.join(config.output_dir, ismn_name)
    write_download(places, list(zip(seconds, names, folders)), scene, config.window, gap,
                   config.ismn_format, config.ismn_layout, ismn_path, rng)
    manifest = {"times": names, "scenes": [os.path.basename(f) for f in folders],
                "size": config.size, "window": config.window, "stride": config.stride,
                "epsg": scene.epsg, "transform": [10.0, 0.0, scene.origin[0], 0.0, -10.0,
                                                   scene.origin[1]],
                "ismn_path": ismn_name, "network": NETWORK, "noise_sd": NOISE,
                "gap": {"station": places[gap[0]]["name"], "time": names[gap[1]]},
                "change": {"drying_per_day": DRYING, "rain": RAIN, "rain_day": rain_day,
                           "smap_change": [round(_wetness(k * config.days_apart, rain_day), 3)
                                           for k in range(config.dates)]},
                "stations": places}
    path = os.path.join(config.output_dir, "series.json")
    with open(path, "w") as f:
        json.dump(manifest, f, indent=1)
    log(f"wrote the series {config.output_dir}: {len(names)} scenes scene_{names[0]} ... "
        f"scene_{names[-1]} ({config.size}x{config.size} pixels), {config.stations} ISMN "
        f"stations inside them (map at --stride {config.stride}) and 1 outside: {ismn_path}")
    return SeriesPaths(config.output_dir, folders, names, ismn_path, path)
