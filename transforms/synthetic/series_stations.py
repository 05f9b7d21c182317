"""The ISMN stations of a scene series (``series.make_series``): where they
stand, their readings and their ISMN download.

Inside stations stand at the centres of map pixels whose windows lie more
than one window inside the scene, three map pixels or more apart, away from
the planted cloud and from SMAP/GLDAS pixel edges; ``Outside-1`` stands
1.5 km north of the scene. A station's window is predict_map's for its map
pixel ``(i, j)`` at stride ``s`` and window ``w`` (``mapping.geometry``):
scene rows ``i*s + s/2 - w/2`` on, ``w`` of them, likewise columns; SMAP and
GLDAS are the raster pixels holding the map pixel's centre, the scene point
``(i*s + s/2, j*s + s/2)``.
"""

from __future__ import annotations

import dataclasses
import os
import zipfile
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from transforms.dataset import schema
from transforms.synthetic.examples import Inputs, label_from_inputs
from transforms.synthetic.ismn_files import (Series, latent_series, reading_flags,
                                             render_ismn_file, render_static_csv)
from transforms.synthetic.scene import NODATA, SceneConfig
from transforms.synthetic.stations import (SensorSpec, StationSpec, first_05_sm_sensor,
                                           ismn_file_name)

__all__ = ["NETWORK", "NOISE", "place_stations", "window_inputs", "write_download"]

NETWORK = "DEMO"
NOISE = 0.015  # the examples' label noise (generate.generate: N(0, 0.015))
GAP_HOURS = 6  # the gap: no reading this many hours either side of its scene time
SENSOR = SensorSpec("sm", 0.05, 0.05, "CS655")  # the one the released rule picks
DEEP = SensorSpec("sm", 0.20, 0.20, "CS655")  # every other station's second, ignored


def window_inputs(folder: str, origin: Tuple[int, int], window: int,
                  centre: Tuple[float, float]) -> Inputs:
    """The label's inputs of one window of scene ``folder``: SMAP and GLDAS at
    the ``centre`` ``(lon, lat)``, the mean Sentinel-1 VV and the mean sand
    and clay (as fractions) over the ``window`` x ``window`` scene pixels at
    ``origin`` ``(row, col)``."""
    import rasterio
    from rasterio.windows import Window

    means = {}
    for band in ("sentinel_1_VV", "soil_grids_sand_sand_0-5cm_mean",
                 "soil_grids_clay_clay_0-5cm_mean"):
        with rasterio.open(os.path.join(folder, f"{band}.tif")) as ds:
            block = ds.read(1, window=Window(origin[1], origin[0], window, window))
        assert block.shape == (window, window) and not (block == NODATA).any(), band
        means[band] = float(block.astype(np.float64).mean())
    aux = {}
    for band in (schema.SMAP_SM, schema.GLDAS_SM):
        with rasterio.open(os.path.join(folder, f"{band}.tif")) as ds:
            col, row = ~ds.transform @ centre
            aux[band] = int(ds.read(1, window=Window(int(np.floor(col)), int(np.floor(row)),
                                                     1, 1))[0, 0])
    return Inputs(smap_sm=aux[schema.SMAP_SM], gldas_sm=aux[schema.GLDAS_SM],
                  vv_mean=means["sentinel_1_VV"],
                  sand=means["soil_grids_sand_sand_0-5cm_mean"] / 1000,
                  clay=means["soil_grids_clay_clay_0-5cm_mean"] / 1000)


def _lonlat(scene: SceneConfig, point: Sequence[float]) -> Tuple[float, float]:
    """Scene point ``(row, col)`` as ``(lon, lat)``."""
    from pyproj import Transformer

    x, y = scene.origin[0] + 10.0 * point[1], scene.origin[1] - 10.0 * point[0]
    return Transformer.from_crs(scene.epsg, 4326, always_xy=True).transform(x, y)


def place_stations(scene: SceneConfig, stride: int, window: int, count: int, rng) -> List[Dict]:
    """``count`` inside stations, then the outside one: each a dict of
    ``name``, ``inside``, ``lat``, ``lon`` (5 decimals, as the ISMN files
    write them) and for inside ones ``map_pixel``, ``window_origin`` (scene
    row, column) and ``centre`` (the map pixel's centre, scene row, column).
    ``scene``'s SMAP must be written (its pixel edges are avoided)."""
    import rasterio
    from pyproj import Transformer

    from_lonlat = Transformer.from_crs(4326, scene.epsg, always_xy=True)
    with rasterio.open(os.path.join(scene.output_dir, f"{schema.SMAP_SM}.tif")) as ds:
        aux = ~ds.transform
    s, w, size = stride, window, scene.height
    candidates = []
    for i in range(size // s):
        for j in range(size // s):
            r0, c0 = i * s + s // 2 - w // 2, j * s + s // 2 - w // 2
            if min(r0, c0) <= w or max(r0, c0) + 2 * w >= size:  # more than a window inside
                continue
            if scene.nodata_box is not None:
                b0, b1, d0, d1 = scene.nodata_box
                if r0 < b1 + s and b0 - s < r0 + w and c0 < d1 + s and d0 - s < c0 + w:
                    continue
            lon, lat = (round(v, 5) for v in _lonlat(scene, (i * s + s / 2, j * s + s / 2)))
            x, y = from_lonlat.transform(lon, lat)
            back = ((scene.origin[1] - y) / 10.0 // s, (x - scene.origin[0]) / 10.0 // s)
            fraction = np.modf(np.array(aux @ (lon, lat)))[0]
            if back == (i, j) and ((fraction > 0.02) & (fraction < 0.98)).all():
                candidates.append((i, j, lat, lon, (r0, c0)))
    chosen: List[Tuple] = []
    for k in rng.permutation(len(candidates)):
        if all(max(abs(candidates[k][0] - c[0]), abs(candidates[k][1] - c[1])) >= 3
               for c in chosen):
            chosen.append(candidates[k])
        if len(chosen) == count:
            break
    if len(chosen) < count:
        raise ValueError(f"a scene of {size} pixels holds {len(chosen)} of the {count} "
                         f"stations asked for: make it larger")
    places = [{"name": f"Inside-{n + 1}", "inside": True, "lat": lat, "lon": lon,
               "map_pixel": [int(i), int(j)], "window_origin": [int(r0), int(c0)],
               "centre": [i * s + s / 2, j * s + s / 2]}
              for n, (i, j, lat, lon, (r0, c0)) in enumerate(sorted(chosen))]
    lon, lat = _lonlat(scene, (-150.0, size / 2))
    return places + [{"name": "Outside-1", "inside": False, "lat": round(lat, 5),
                      "lon": round(lon, 5)}]


def _readings(rng, hour_times: np.ndarray, anchors: Dict[int, float],
              gap: Optional[int]) -> Series:
    """Hourly readings of a plausible series that takes ``anchors``' values
    (time -> value) exactly at their times (flag ``G``), none within
    ``GAP_HOURS`` of ``gap``."""
    values = latent_series(rng, len(hour_times), float(rng.uniform(0.15, 0.3)), "sm")
    if anchors:
        at = np.array(sorted(anchors))
        offset = np.array([anchors[t] for t in at]) - values[np.searchsorted(hour_times, at)]
        values = np.clip(values + np.interp(hour_times, at, offset), 0.02, 0.6)
    values = np.round(values, 4)
    flags = reading_flags(rng, len(hour_times))
    for t, value in anchors.items():
        k = int(np.searchsorted(hour_times, t))
        values[k], flags[k] = value, "G"
    keep = np.ones(len(hour_times), bool)
    if gap is not None:
        keep = np.abs(hour_times - gap) > GAP_HOURS * 3600
    return Series(hour_times[keep], values[keep], [f for f, k in zip(flags, keep) if k])


def _elevation(folder: str, place: Dict) -> float:
    """The DEM (metres) at the station's map pixel's centre."""
    import rasterio
    from rasterio.windows import Window

    row, col = (int(v) for v in place["centre"])
    with rasterio.open(os.path.join(folder, f"{schema.NASA_DEM_ELEVATION}.tif")) as ds:
        return float(ds.read(1, window=Window(col, row, 1, 1))[0, 0])


def write_download(places: List[Dict], scenes: List[Tuple[int, str, str]], scene: SceneConfig,
                   window: int, gap: Tuple[int, int], ismn_format: str, ismn_layout: str,
                   path: str, rng) -> None:
    """Compute each inside station's reading at each scene time (added to
    ``places``: ``inputs``, ``noise``, ``readings``, ``sensor``) and write the
    stations' ISMN download at ``path`` (a zip, or a folder with
    ``ismn_layout`` ``dir``) in ``ismn_format``.

    Args:
        places: ``place_stations``' answer.
        scenes: ``(seconds since 1970, YYYY-MM-DDTHH:MM, folder)`` of each scene.
        scene: the first scene's configuration (its grid).
        window: the model's window.
        gap: ``(station index, scene index)`` with no reading.
        ismn_format: ``ceop`` or ``header_values``.
        ismn_layout: ``zip`` or ``dir``.
        path: the download to write.
        rng: the random generator.
    """
    first, last = scenes[0][0], scenes[-1][0]
    hours = np.arange(first - first % 86400 - 86400, last + 2 * 86400, 3600)
    files: List[Tuple[str, bytes]] = []
    for n, place in enumerate(places):
        anchors: Dict[int, float] = {}
        for k, (t, when, folder) in enumerate(scenes):
            if place["inside"]:
                noise = float(rng.normal(0, NOISE))
                x = window_inputs(folder, tuple(place["window_origin"]), window,
                                  _lonlat(scene, place["centre"]))
                value = None if gap == (n, k) else label_from_inputs(x, noise)
                place.setdefault("inputs", {})[when] = dataclasses.asdict(x)
                place.setdefault("noise", {})[when] = noise
                place.setdefault("readings", {})[when] = value
                if value is not None:
                    anchors[t] = value
        sensors = (SENSOR, DEEP) if n % 2 == 0 else (SENSOR,)
        spec = StationSpec(NETWORK, place["name"], place["lat"], place["lon"],
                           _elevation(scenes[0][2], place) if place["inside"] else 600.0, sensors)
        assert first_05_sm_sensor(spec, ismn_layout) == SENSOR
        place["sensor"] = SENSOR.ismn_name
        for sensor in sensors:
            main = sensor == SENSOR
            series = _readings(rng, hours, anchors if main else {},
                               scenes[gap[1]][0] if main and gap[0] == n else None)
            name = ismn_file_name(spec, sensor, int(series.times[0]), int(series.times[-1]))
            files.append((f"{NETWORK}/{spec.name}/{name}",
                          render_ismn_file(spec, sensor, series, ismn_format)))
        files.append((f"{NETWORK}/{spec.name}/{NETWORK}_{NETWORK}_{spec.name}_static_variables.csv",
                      render_static_csv(spec, rng)))
    files.append(("Readme.txt", b"Synthetic ISMN-format series made by transforms.synthetic\r\n"))
    if ismn_layout == "zip":  # as ismn_files.write_ismn writes the sample's
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
            for name, data in files:
                info = zipfile.ZipInfo(name, date_time=(2022, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                z.writestr(info, data)
        return
    for name, data in files:
        os.makedirs(os.path.dirname(os.path.join(path, name)), exist_ok=True)
        with open(os.path.join(path, name), "wb") as f:
            f.write(data)
