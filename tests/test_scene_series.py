"""make_sample_data --scene_series: scenes through time and ISMN stations
inside them, checked from the files written (the GeoTIFFs, the ISMN zip),
not from the generator's internals: the times in the folders' names and in
the GeoTIFFs' TIFF DateTime tags agree; every scene is on one grid; the
inputs of the label rule change between dates; at each scene time an inside
station's 0.05 m reading is the examples' label rule (``label_from_inputs``)
on its map pixel's window at predict_map's stride (``MapGeometry``), plus
the noise ``series.json`` records; the planted gap and outside station."""

import glob
import json
import os
import shutil
import struct
import zipfile

import numpy as np
import pytest
import rasterio
from pyproj import Transformer
from rasterio.windows import Window

from transforms.insitu.ismn_files import list_data_files, read_readings
from transforms.mapping.geometry import MapGeometry
from transforms.runtime import UsageError
from transforms.synthetic.examples import Inputs, label_from_inputs

SIZE, WINDOW = 256, 16
TIMES = ["2016-01-01T10:00", "2016-01-07T10:00", "2016-01-13T10:00", "2016-01-19T10:00",
         "2016-01-25T10:00"]
DRIVERS = ("sentinel_1_VV", "sentinel_1_VH", "smap_sm", "gldas_sm")


@pytest.fixture(scope="module", params=[("ceop", "zip", 3), ("header_values", "dir", 5)],
                ids=["ceop-zip-3", "header_values-dir-5"])
def sample(request, tmp_path_factory):
    """``(output folder, series.json, number of dates)`` of a small sample."""
    from pipelines import make_sample_data

    ismn_format, layout, dates = request.param
    out = tmp_path_factory.mktemp("series_sample")
    make_sample_data.run(["--output_dir", str(out), "--num_shards", "1", "--examples_per_shard",
                          "4", "--image_size", str(WINDOW), "--ismn_days", "10", "--seed", "4",
                          "--ismn_format", ismn_format, "--ismn_layout", layout,
                          "--scene_size", str(SIZE), "--scene_series", str(dates)])
    with open(out / "series" / "series.json") as f:
        return out, json.load(f), dates


def scenes(out):
    return sorted(glob.glob(str(out / "series" / "scene_*")))


def tiff_datetime(path):
    """TIFF tag 306 (DateTime) of the first image directory, read from the bytes."""
    data = open(path, "rb").read()
    order = "<" if data[:2] == b"II" else ">"
    ifd = struct.unpack(order + "I", data[4:8])[0]
    for k in range(struct.unpack(order + "H", data[ifd:ifd + 2])[0]):
        tag, kind, count, value = struct.unpack(order + "HHI4s", data[ifd + 2 + 12 * k:
                                                                      ifd + 14 + 12 * k])
        if tag == 306:
            at = struct.unpack(order + "I", value)[0]
            return data[at:at + count].rstrip(b"\0").decode()
    return None


def test_the_folders_times_agree_and_are_the_dates_asked_for(sample):
    out, manifest, dates = sample
    folders = scenes(out)
    assert [os.path.basename(f) for f in folders] == [f"scene_{t}" for t in TIMES[:dates]]
    assert manifest["times"] == TIMES[:dates]
    for folder, when in zip(folders, TIMES):
        tag = f"{when[:10].replace('-', ':')} {when[11:]}:00"
        files = sorted(glob.glob(os.path.join(folder, "*.tif")))
        assert len(files) == 16
        for path in files:
            with rasterio.open(path) as ds:
                assert ds.tags()["TIFFTAG_DATETIME"] == tag, path
        assert tiff_datetime(files[0]) == tag  # the TIFF DateTime tag itself


def test_every_scene_is_the_scene_on_one_grid_and_the_drivers_change(sample):
    out, _, _ = sample
    folders = scenes(out)
    names = sorted(os.listdir(out / "scene"))
    for folder in folders:
        assert sorted(os.listdir(folder)) == names
    for name in names:
        grids, values = set(), []
        for folder in [str(out / "scene")] + folders:
            with rasterio.open(os.path.join(folder, name)) as ds:
                grids.add((ds.crs.to_epsg(), tuple(ds.transform), ds.shape, ds.dtypes, ds.nodata,
                           ds.descriptions))
                values.append(ds.read(1))
        assert len(grids) == 1, name
        assert (values[0] == values[1]).all(), name  # the first date is the sample's scene/
        later = [not (values[1] == v).all() for v in values[2:]]
        assert all(later) if name[:-4] in DRIVERS else not any(later), name


def station_readings(out, tmp_path):
    """``{station: (lat, lon, readings of its first 0.05 m soil-moisture sensor)}``,
    lat and lon as the ismn package reads them."""
    from ismn.interface import ISMN_Interface

    (path,) = glob.glob(str(out / "series" / "ISMN_series*"))
    copy = str(tmp_path / os.path.basename(path))  # the ismn package writes beside it
    (shutil.copy if path.endswith(".zip") else shutil.copytree)(path, copy)
    network = ISMN_Interface(copy, parallel=False).networks["DEMO"]
    found = {}
    z = zipfile.ZipFile(path) if path.endswith(".zip") else None
    for rel in list_data_files(path):
        station = rel.split("/")[1]
        if "_sm_0.050000_" in rel and station not in found:
            st = network.stations[station]
            found[station] = (st.lat, st.lon, read_readings(path, rel, z))
    if z is not None:
        z.close()
    return found


def window_label(folder, geometry, i, j, noise):
    """The examples' label rule on map pixel ``(i, j)``'s window of ``folder``."""
    r0, c0 = geometry.window_origin(i, j)
    means = {}
    for band in ("sentinel_1_VV", "soil_grids_sand_sand_0-5cm_mean",
                 "soil_grids_clay_clay_0-5cm_mean"):
        with rasterio.open(os.path.join(folder, f"{band}.tif")) as ds:
            means[band] = ds.read(1, window=Window(c0, r0, geometry.window, geometry.window)
                                  ).astype(np.float64).mean()
            x, y = ds.transform @ (j * geometry.stride + geometry.stride / 2,
                                   i * geometry.stride + geometry.stride / 2)
            lon, lat = Transformer.from_crs(ds.crs, 4326, always_xy=True).transform(x, y)
    aux = []
    for band in ("smap_sm", "gldas_sm"):
        with rasterio.open(os.path.join(folder, f"{band}.tif")) as ds:
            aux.append(int(next(ds.sample([(lon, lat)]))[0]))
    return label_from_inputs(Inputs(aux[0], aux[1], means["sentinel_1_VV"],
                                    means["soil_grids_sand_sand_0-5cm_mean"] / 1000,
                                    means["soil_grids_clay_clay_0-5cm_mean"] / 1000), noise)


def test_inside_readings_follow_the_label_rule_at_each_scene_time(sample, tmp_path):
    out, manifest, dates = sample
    folders = scenes(out)
    geometry = MapGeometry(SIZE, SIZE, stride=WINDOW, window=WINDOW)
    noise = {s["name"]: s.get("noise") for s in manifest["stations"]}
    with rasterio.open(os.path.join(folders[0], "sentinel_1_VV.tif")) as ds:
        to_scene = Transformer.from_crs(4326, ds.crs, always_xy=True)
        back = ~ds.transform
    stations = station_readings(out, tmp_path)
    assert sorted(stations) == [f"Inside-{k}" for k in range(1, 8)] + ["Outside-1"]
    checked, gaps, neighbours_agree = 0, [], 0
    for name, (lat, lon, readings) in sorted(stations.items()):
        col, row = back @ to_scene.transform(lon, lat)
        i, j = int(row // WINDOW), int(col // WINDOW)
        if name.startswith("Outside"):
            assert not (0 <= row < SIZE and 0 <= col < SIZE), (name, row, col)
            continue
        r0, c0 = geometry.window_origin(i, j)  # more than a window inside the scene
        assert WINDOW < min(r0, c0) and max(r0, c0) + 2 * WINDOW < SIZE, name
        for folder, when in zip(folders, TIMES):
            t = int(np.datetime64(when, "s").astype(np.int64))
            near = np.flatnonzero(np.abs(readings.times - t) <= 180)
            if len(near) == 0:
                gaps.append((name, when))
                continue
            assert len(near) == 1 and readings.times[near[0]] == t, (name, when)
            assert abs(noise[name][when]) < 5 * manifest["noise_sd"]
            expected = window_label(folder, geometry, i, j, noise[name][when])
            assert readings.values[near[0]] == pytest.approx(expected, abs=1e-9), (name, when)
            neighbours_agree += readings.values[near[0]] == pytest.approx(
                window_label(folder, geometry, i + 1, j, noise[name][when]), abs=1e-9)
            checked += 1
    assert gaps == [("Inside-3", TIMES[1])] == [(manifest["gap"]["station"],
                                                 manifest["gap"]["time"])]
    assert checked == 7 * dates - 1 and neighbours_agree < checked // 2  # a window matters


def test_a_series_needs_a_scene_size_with_room_and_a_count_of_zero_or_more(tmp_path):
    from pipelines import make_sample_data

    with pytest.raises(UsageError, match="--scene_series needs --scene_size"):
        make_sample_data.parse_args(["--output_dir", str(tmp_path), "--scene_series", "3"])
    with pytest.raises(UsageError, match="--scene_series must be 0"):
        make_sample_data.parse_args(["--output_dir", str(tmp_path), "--scene_series", "-1",
                                     "--scene_size", "256"])
    with pytest.raises(UsageError, match="at least 16 windows a side"):  # no room for stations
        make_sample_data.parse_args(["--output_dir", str(tmp_path), "--scene_series", "3",
                                     "--scene_size", "256", "--image_size", "32"])
