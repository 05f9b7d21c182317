"""validate_map restated independently, for the tests: the pairs and the
counts by cause a map and an ISMN download should give.

Nothing here imports the code it checks (``transforms.validation``,
``transforms.insitu``, ``transforms.dataset``): the ISMN ``.stm`` files are
parsed as plain text (CEOP and header+values), the station's sensor is the
released rule stated again (the first file of the station, in archive order,
whose sensor name holds ``0.05`` and ``soil_moisture``), the map is read
whole with xarray/rioxarray (a cube) or rasterio (a GeoTIFF), the station is
carried to the map's CRS with pyproj and its pixel found by the inverse of
rioxarray's/rasterio's affine transform and a floor, and the window is
``t - tol <= reading <= t + tol`` over a plain list.
"""

import calendar
import datetime
import math
import os
import zipfile

import numpy as np

COLUMNS = ("sensor_id", "timestamp", "prediction", "label", "smap_sm", "gldas_sm", "center_lat",
           "center_long", "shard", "index", "land_cover", "sentinel_1_time_millis_diff",
           "sentinel_2_time_millis_diff")
OUTCOMES = ("paired", "nan_pixel", "no_reading", "several_readings")
VARIABLE_NAMES = {"sm": "soil_moisture", "ts": "soil_temperature", "p": "precipitation"}


def _members(ismn_path):
    """``(relative path, text)`` of every .stm file, in the order a reader meets them."""
    if ismn_path.endswith(".zip"):
        with zipfile.ZipFile(ismn_path) as z:
            return [(n, z.read(n).decode()) for n in z.namelist() if n.endswith(".stm")]
    out = []
    for folder, _, names in os.walk(ismn_path):
        for name in names:
            if name.endswith(".stm"):
                full = os.path.join(folder, name)
                out.append((os.path.relpath(full, ismn_path).replace(os.sep, "/"),
                            open(full).read()))
    return sorted(out)


def _seconds(day, hm):
    return calendar.timegm(datetime.datetime.strptime(f"{day} {hm}", "%Y/%m/%d %H:%M").timetuple())


def parse_stm(text):
    """``(lat, lon, [(t_s, value, flag)])`` of one ISMN file (either format)."""
    lines = [line.split() for line in text.splitlines() if line.strip()]
    if len(lines[0]) >= 15:  # CEOP: every line repeats the header fields
        lat, lon = float(lines[0][7]), float(lines[0][8])
        rows = [(_seconds(f[0], f[1]), float(f[12]), f[13]) for f in lines]
    else:  # header+values
        lat, lon = float(lines[0][3]), float(lines[0][4])
        rows = [(_seconds(f[0], f[1]), float(f[2]), f[3]) for f in lines[1:]]
    return lat, lon, sorted(rows, key=lambda r: r[0])


def stations(ismn_path):
    """``{sensor_id: (lat, lon, readings, relative path)}`` of the stations
    with a 0.05 m soil-moisture sensor."""
    chosen = {}
    for rel, text in _members(ismn_path):
        parts = rel.split("/")
        network, name = parts[-3], parts[-1]
        e = name[:-len(".stm")].split("_")
        station = e[2]
        instrument = "_".join(e[6:-2])
        sensor = f"{instrument}_{VARIABLE_NAMES.get(e[3], e[3])}_{float(e[4]):.6f}_{float(e[5]):.6f}"
        if (network, station) in chosen or "0.05" not in sensor or "soil_moisture" not in sensor:
            continue
        chosen[(network, station)] = (f"{network}__{station}__{instrument}", text, rel)
    out = {}
    for sid, text, rel in chosen.values():
        lat, lon, readings = parse_stm(text)
        out[sid] = (lat, lon, readings, rel)
    return out


def read_map(path, time=None):
    """``(crs, affine, times_ms, {variable: array (T, H, W)})`` of a cube or GeoTIFF."""
    if os.path.isdir(path):
        import importlib

        import xarray

        importlib.import_module("rioxarray")  # registers the .rio accessor

        ds = xarray.open_zarr(path)
        times = [int(t) for t in ds.time.values.astype("datetime64[ms]").astype(np.int64)]
        arrays = {v: ds[v].values.astype(np.float64) for v in ("soil_moisture", "smap_sm", "gldas_sm")
                  if v in ds}
        return ds.rio.crs, ds.rio.transform(), times, arrays
    import rasterio

    with rasterio.open(path) as src:
        text = time or src.tags()["time"]
        when = datetime.datetime.fromisoformat(text.rstrip("Z")).replace(tzinfo=datetime.timezone.utc)
        return src.crs, src.transform, [int(when.timestamp() * 1000)], {
            "soil_moisture": src.read(1).astype(np.float64)[None]}


def _f32(v):
    return str(np.float32(v))


def _scale(v):
    if not math.isfinite(v):
        return ""
    return str(int(v)) if float(v).is_integer() else _f32(v)


def expected(map_path, ismn_path, tolerance_minutes=3.0, good_flags_only=False, time=None):
    """What validate_map should write and count.

    Returns:
        ``(pairs.csv text, {outcome: count}, {sensor_id: station record})``,
        each station record with ``status``, ``row``, ``col`` and its counts.
    """
    from pyproj import Transformer

    crs, affine, times, arrays = read_map(map_path, time)
    sm = arrays["soil_moisture"]
    _, height, width = sm.shape
    to_map = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    tol = int(round(tolerance_minutes * 60))
    lines, totals, per_station = [], dict.fromkeys(OUTCOMES, 0), {}
    found = stations(ismn_path)
    for sid in sorted(found):
        lat, lon, readings, _ = found[sid]
        x, y = to_map.transform(lon, lat)
        fcol, frow = ~affine @ (x, y)
        row, col = math.floor(frow), math.floor(fcol)
        record = {"lat": lat, "lon": lon, "row": row, "col": col, **dict.fromkeys(OUTCOMES, 0)}
        per_station[sid] = record
        if not (0 <= row < height and 0 <= col < width):
            record["status"] = "outside_map"
            continue
        record["status"] = "inside"
        for k, t_ms in enumerate(times):
            t_s = t_ms // 1000
            hits = [r for r in readings if t_s - tol <= r[0] <= t_s + tol
                    and (not good_flags_only or r[2] == "G")]
            value = sm[k, row, col]
            outcome = ("nan_pixel" if not math.isfinite(value) else "no_reading" if not hits
                       else "several_readings" if len(hits) > 1 else "paired")
            record[outcome] += 1
            totals[outcome] += 1
            if outcome != "paired":
                continue
            baselines = [_scale(arrays[v][k, row, col]) if v in arrays else ""
                         for v in ("smap_sm", "gldas_sm")]
            lines.append((sid, float(t_ms), ",".join(
                [sid, repr(float(t_ms)), _f32(value), _f32(hits[0][1]), *baselines, _f32(lat),
                 _f32(lon), "", "", "", "", ""])))
    lines.sort(key=lambda item: (item[0], item[1]))
    text = ",".join(COLUMNS) + "\n" + "".join(line + "\n" for _, _, line in lines)
    return text, totals, per_station
