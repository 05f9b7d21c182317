"""validate_map end to end on a small cube and COG built here, against
``validation_oracle`` (an independent restatement) and pytesmo: the pairs,
the counts by cause, the metrics, the chunks read, bad input, a Dataflow
dry run.

The ISMN download is written here in the real layout (CEOP and
header+values), with the cases each rule must tell apart: a reading exactly
180 s from a map time (kept) and one 181 s away (not), two readings inside
the window, a gap, NaN map pixels, a station whose pixel is 0.7 of a pixel
from its corner (floor, not round), a 0.05 m temperature sensor listed
before the soil-moisture one, two 0.05 m soil-moisture sensors (the first
listed is used), a station with no 0.05 m sensor and two off the map.
"""

import argparse
import csv
import datetime
import json
import math
import zipfile

import numpy as np
import pytest

# the commands whose flags validate_map shares define them first, as in the
# whole suite (their options classes add them without checking)
from pipelines import combine_ismn_data, evaluate
from pipelines import validate_map
import validation_oracle as oracle
from transforms import validation

CRS = "EPSG:32633"
X0, DX, Y0, DY = 500000.0, 100.0, 5000000.0, -80.0  # not square: rows use dy
H, W, CHUNK = 40, 50, 16
NET = "TNET"
T0 = datetime.datetime(2021, 6, 1, tzinfo=datetime.timezone.utc)
#: the map times: the 10:00 readings are +180 s from t1 (kept) and -181 s from t2 (not)
TIMES = [T0 + datetime.timedelta(days=d, hours=10, seconds=s)
         for d, s in ((0, 0), (1, -180), (2, 181), (3, 0), (4, 0), (5, 30), (6, 0), (7, 0))]
#: station -> (fractional row, col) of its pixel, file format, its sensors (var, depth, instrument)
STATIONS = {
    "Alpha": ((3.7, 4.7), "ceop", [("ts", .05, "ProbeT"), ("sm", .05, "ProbeA")]),
    "Bravo": ((5.2, 9.3), "ceop", [("sm", .0508, "Hydra")]),
    "Charlie": ((20.5, 35.5), "header_values", [("sm", .05, "CS655")]),
    "Delta": ((38.6, 47.9), "ceop", [("sm", .05, "CS655")]),
    "Echo": ((-3.5, 10.5), "ceop", [("sm", .05, "CS655")]),
    "Golf": ((12.5, 12.5), "ceop", [("sm", .10, "CS655"), ("ts", .05, "CS655")]),
    "Hotel": ((10.1, 20.2), "ceop", [("sm", .05, "ProbeA"), ("sm", .05, "ProbeB")]),
}
FAR = {"Foxtrot": (10.0, 10.0)}  # (lat, lon): far off the map


def _lonlat(frow, fcol):
    from pyproj import Transformer

    lon, lat = Transformer.from_crs(CRS, "EPSG:4326", always_xy=True).transform(
        X0 + fcol * DX, Y0 + frow * DY)
    return round(lat, 5), round(lon, 5)


def _readings(seed, station):
    """Hourly readings 1-9 June (a gap at Delta, two extra around t0 at Bravo)."""
    rng = np.random.default_rng(seed)
    hours = [T0 + datetime.timedelta(hours=h) for h in range(9 * 24)]
    if station == "Delta":
        hours = [t for t in hours if not (t.day == 4 and 6 <= t.hour <= 14)]
    if station == "Bravo":
        hours += [T0 + datetime.timedelta(hours=10, minutes=m) for m in (-2, 2)]
    values = 0.2 + 0.1 * np.sin(np.arange(len(hours)) / 9) + rng.normal(0, 0.02, len(hours))
    flags = ["G" if k % 7 else "D01" for k in range(len(hours))]
    return sorted(zip(hours, np.round(values, 4), flags))


def _stm(fmt, station, lat, lon, d, instrument, readings):
    head = f"{NET} {NET} {station} {lat:.5f} {lon:.5f} 100.00 {d:.4f} {d:.4f}"
    lines = [f"{head} {instrument}"] if fmt == "header_values" else []
    for t, v, flag in readings:
        day, hm = t.strftime("%Y/%m/%d"), t.strftime("%H:%M")
        lines.append(f"{day} {hm} {v:.4f} {flag} M" if fmt == "header_values"
                     else f"{day} {hm} {day} {hm} {head} {v:.4f} {flag} M")
    return "\r\n".join(lines) + "\r\n"


def write_ismn(path, stations=STATIONS, far=FAR):
    """An ISMN zip in the real layout, files in ``stations``' sensor order."""
    with zipfile.ZipFile(path, "w") as z:
        places = {s: _lonlat(*p) for s, (p, _, _) in stations.items()}
        places.update(far)
        for k, station in enumerate(sorted(places)):
            fmt, sensors = stations[station][1:] if station in stations else ("ceop", [
                ("sm", .05, "CS655")])
            for j, (var, d, instrument) in enumerate(sensors):
                name = (f"{NET}_{NET}_{station}_{var}_{d:.6f}_{d:.6f}_{instrument}_20210601_"
                        f"20210609.stm")
                z.writestr(f"{NET}/{station}/{name}", _stm(fmt, station, *places[station], d,
                                                           instrument, _readings(10 * k + j, station)))
    return str(path)


def map_arrays(seed=0):
    """soil_moisture, smap_sm, gldas_sm (T, H, W): NaN at Charlie at t1, t4 (the
    map) and t3 (SMAP), at Alpha at t2 (no reading then either: NaN counts
    first), and in a block elsewhere."""
    rng = np.random.default_rng(seed)
    shape = (len(TIMES), H, W)
    sm = rng.uniform(0.05, 0.45, shape).astype(np.float32)
    smap = rng.integers(0, 256, shape).astype(np.float32)
    gldas = rng.integers(0, 256, shape).astype(np.float32)
    sm[:, 30:34, 0:5] = np.nan
    r, c = (int(v) for v in STATIONS["Charlie"][0])
    sm[[1, 4], r, c] = np.nan
    smap[3, r, c] = np.nan
    sm[2, 3, 4] = np.nan  # Alpha's pixel
    return sm, smap, gldas


def write_cube(path, arrays, x0=X0, y0=Y0, times=TIMES):
    """A cube in predict_map's layout (Zarr format 2, consolidated)."""
    import pyproj
    import xarray

    crs = pyproj.CRS.from_user_input(CRS).to_wkt()
    names = ("soil_moisture", "smap_sm", "gldas_sm")
    ds = xarray.Dataset(
        {n: (("time", "y", "x"), a, {"grid_mapping": "spatial_ref"}) for n, a in zip(names, arrays)},
        coords={"time": np.array([t.replace(tzinfo=None) for t in times], dtype="datetime64[ns]"),
                "y": y0 + DY * (np.arange(H) + 0.5), "x": x0 + DX * (np.arange(W) + 0.5),
                "spatial_ref": ((), np.int64(0), {"crs_wkt": crs, "spatial_ref": crs,
                                                  "GeoTransform": f"{x0!r} {DX!r} 0.0 {y0!r} 0.0 {DY!r}"})},
        attrs={"product": "soil_moisture_cube", "model": "test", "stride": 32, "window": 32,
               "edge_mode": "nan", "project_version": "0.1.0"})
    encoding = {n: {"chunks": (1, CHUNK, CHUNK), "dtype": "float32", "_FillValue": np.float32(np.nan)}
                for n in names}
    encoding["time"] = {"units": "seconds since 1970-01-01T00:00:00", "dtype": "int64",
                        "calendar": "proleptic_gregorian"}
    ds.to_zarr(str(path), zarr_format=2, consolidated=True, encoding=encoding, mode="w")
    return str(path)


def write_cog(path, values, time=None):
    """A GeoTIFF map in predict_map's layout: band 1 float32, NaN nodata, tiled."""
    import rasterio
    from rasterio.transform import from_origin

    with rasterio.open(str(path), "w", driver="GTiff", dtype="float32", count=1, height=H,
                       width=W, crs=CRS, transform=from_origin(X0, Y0, DX, -DY),
                       nodata=float("nan"), tiled=True, blockxsize=CHUNK, blockysize=CHUNK) as dst:
        dst.write(values.astype(np.float32), 1)
        if time:
            dst.update_tags(time=time)
    return str(path)


FLAGS = ["--bootstrap_samples", "20", "--min_samples_per_sensor", "3", "--timeseries_sensors", "1"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("validate")
    arrays = map_arrays()
    return {"folder": folder, "arrays": arrays, "ismn": write_ismn(folder / "ISMN.zip"),
            "cube": write_cube(folder / "cube.zarr", arrays)}


@pytest.fixture(scope="module")
def cube_run(data):
    """validate_map on the cube, recording every Zarr key read."""
    import zarr.storage

    keys, original = [], zarr.storage.LocalStore.get

    async def get(self, key, *args, **kwargs):
        keys.append(key)
        return await original(self, key, *args, **kwargs)

    out = data["folder"] / "v"
    zarr.storage.LocalStore.get = get
    try:
        result = validate_map.run(["--map", data["cube"], "--ismn_data_path", data["ismn"],
                                   "--output_dir", str(out), *FLAGS])
    finally:
        zarr.storage.LocalStore.get = original
    return out, result, keys, oracle.expected(data["cube"], data["ismn"])


def test_pairs_equal_the_oracle(cube_run):
    out, _, _, (text, _, _) = cube_run
    assert (out / "pairs.csv").read_text() == text
    assert text.count("\n") > 25


def test_counts_by_cause_add_up_and_match_the_oracle(cube_run):
    out, result, _, (_, totals, per_station) = cube_run
    summary = json.loads((out / "validation.json").read_text())
    assert summary == result["validation"]
    assert summary["outcomes"] == totals
    assert all(totals.values())  # every cause occurs
    assert summary["stations"] == {"with_05m_sensor": 7, "inside": 5, "outside_map": 2,
                                   "unreadable": 0}
    assert summary["accounted"] and summary["station_times"] == 5 * len(TIMES) == sum(totals.values())
    assert summary["map"]["kind"] == "cube" and summary["map"]["shape"] == [len(TIMES), H, W]
    assert summary["map"]["times"][1] == "2021-06-02T09:57:00Z"
    with open(out / "stations.csv") as f:
        rows = {r["sensor_id"]: r for r in csv.DictReader(f)}
    assert set(rows) == set(per_station)
    for sid, want in per_station.items():
        got = rows[sid]
        assert (got["status"], int(got["row"]), int(got["col"])) == (
            want["status"], want["row"], want["col"]), sid
        assert {o: int(got[o]) for o in oracle.OUTCOMES} == {o: want[o] for o in oracle.OUTCOMES}
    assert f"{NET}__Hotel__ProbeA" in rows and f"{NET}__Alpha__ProbeA" in rows


def _evaluated(text):
    """The oracle's pairs evaluate keeps: every predictor present."""
    rows = list(csv.DictReader(text.splitlines()))
    return [r for r in rows if r["smap_sm"] and r["gldas_sm"]], len(rows)


def test_metrics_equal_pytesmo(cube_run):
    from pytesmo.metrics import bias, pearson_r, ubrmsd

    out, result, _, (text, _, _) = cube_run
    rows, total = _evaluated(text)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["rows"]["evaluated"] == len(rows)
    assert metrics["rows_set_aside"]["incomplete"] == total - len(rows) == 1  # Charlie's NaN SMAP
    values = {"model": lambda r: float(r["prediction"]), "smap": lambda r: float(r["smap_sm"]) / 255,
              "gldas": lambda r: float(r["gldas_sm"]) / 255}

    def figures(chosen, predictor):
        p = np.array([values[predictor](r) for r in chosen])
        y = np.array([float(r["label"]) for r in chosen])
        return {"bias": float(bias(p, y)), "ubrmse": float(ubrmsd(p, y)), "r": float(pearson_r(p, y))}

    for predictor in values:
        pooled = metrics["pooled"]["all"][predictor]
        for key, want in figures(rows, predictor).items():
            assert pooled[key] == pytest.approx(want, rel=1e-9, abs=1e-12), (predictor, key)
    with open(out / "per_sensor.csv") as f:
        per_sensor = list(csv.DictReader(f))
    assert {r["sensor_id"] for r in per_sensor} == {r["sensor_id"] for r in rows}
    for got in per_sensor:
        mine = [r for r in rows if r["sensor_id"] == got["sensor_id"]]
        assert int(got["n"]) == len(mine) and got["split"] == "all"
        for key, want in figures(mine, got["predictor"]).items():
            assert float(got[key]) == pytest.approx(want, rel=1e-9, abs=1e-12), (got["sensor_id"], key)
    assert validate_map.exit_code(result) == 0


def test_metrics_md_gets_the_stations_section(cube_run):
    out, result, _, (_, totals, _) = cube_run
    text = (out / "metrics.md").read_text()
    assert text.startswith(result["metrics"]["table"].rstrip("\n"))
    section = text[text.index("## Stations"):]
    assert "| 7 | 5 | 2 | 0 |" in section
    assert f"| {5 * len(TIMES)} | " + " | ".join(str(totals[o]) for o in oracle.OUTCOMES) in section


def test_only_the_chunks_holding_stations_are_read(cube_run):
    _, _, keys, (_, _, per_station) = cube_run
    data_keys = {k for k in keys if k.split("/")[0] in ("soil_moisture", "smap_sm", "gldas_sm")
                 and not k.split("/")[-1].startswith((".", "zarr"))}
    chunks = {(s["row"] // CHUNK, s["col"] // CHUNK) for s in per_station.values()
              if s["status"] == "inside"}
    assert len(chunks) == 4 < math.ceil(H / CHUNK) * math.ceil(W / CHUNK)
    assert data_keys == {f"{v}/{t}.{r}.{c}" for v in ("soil_moisture", "smap_sm", "gldas_sm")
                         for t in range(len(TIMES)) for r, c in chunks}
    assert all(keys.count(k) == 1 for k in data_keys)  # each once


def _validation_only(config_flags):
    from apache_beam.options.pipeline_options import PipelineOptions

    options = PipelineOptions(config_flags)
    return validation.run_validation(validation.ValidationConfig.from_options(options), options)


def test_cog_pairs_equal_the_oracle_read_by_small_windows(data, monkeypatch):
    import rasterio.io

    windows, original = [], rasterio.io.DatasetReader.read

    def read(self, *args, **kwargs):
        windows.append(kwargs.get("window"))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(rasterio.io.DatasetReader, "read", read)
    cog = write_cog(data["folder"] / "map.tif", data["arrays"][0][5], time="2021-06-06T10:00:30Z")
    out = data["folder"] / "vcog"
    summary = _validation_only(["--map", cog, "--ismn_data_path", data["ismn"],
                                "--output_dir", str(out)])
    read_windows = list(windows)
    text, totals, _ = oracle.expected(cog, data["ismn"])
    assert (out / "pairs.csv").read_text() == text and summary["outcomes"] == totals
    assert summary["map"]["kind"] == "cog" and totals["paired"] == 5
    assert len(read_windows) == 4  # one a chunk holding stations, none of the whole map
    assert all(w is not None and w.height <= CHUNK and w.width <= CHUNK for w in read_windows)


def test_good_flags_only_and_a_wider_window_equal_the_oracle(data):
    out = data["folder"] / "vgood"
    summary = _validation_only(["--map", data["cube"], "--ismn_data_path", data["ismn"],
                                "--output_dir", str(out), "--ismn_good_flags_only",
                                "--time_tolerance_minutes", "3.01"])
    text, totals, _ = oracle.expected(data["cube"], data["ismn"], 3.01, good_flags_only=True)
    assert (out / "pairs.csv").read_text() == text and summary["outcomes"] == totals
    assert summary["tolerance_seconds"] == 181  # 180.6 s: whole seconds, rounded, as the merge
    assert text != oracle.expected(data["cube"], data["ismn"], 3.01)[0]  # the flags matter here
    assert text != oracle.expected(data["cube"], data["ismn"], 3.0, True)[0]  # and 181 s


def test_a_folder_download_and_an_unreadable_file_without_beam(data, tmp_path):
    folder = tmp_path / "ISMN"
    with zipfile.ZipFile(data["ismn"]) as z:
        z.extractall(folder)
    found = validation.list_stations(str(folder))
    assert [s.sensor_id for s in found.sensors] == sorted(oracle.stations(data["ismn"]))
    bad = folder / NET / "Zulu" / f"{NET}_{NET}_Zulu_sm_0.050000_0.050000_CS655_20210601_20210609.stm"
    bad.parent.mkdir()
    lines = _stm("ceop", "Zulu", *_lonlat(12.5, 30.5), .05, "CS655", _readings(1, "Zulu")).split("\r\n")
    lines[3] = lines[3].rsplit(" ", 3)[0] + " abc G M"  # a value that is no number
    bad.write_text("\r\n".join(lines))
    grid = validation.open_map(data["cube"])
    read = validation.ReadStationFn(str(folder), 180)
    placed = {p.sensor.station: p for s in validation.list_stations(str(folder)).sensors
              for p in read.process(s, grid)}
    assert placed["Zulu"].status == "unreadable" and "line 4" in placed["Zulu"].error
    assert placed["Echo"].status == "outside_map" and placed["Echo"].matches == ()
    assert (placed["Charlie"].status, placed["Charlie"].row, placed["Charlie"].col) == ("inside", 20, 35)
    assert placed["Bravo"].matches[0] == "several_readings" and placed["Alpha"].matches[2] == "no_reading"


def test_cog_time_flag_overrides_and_a_time_without_pairs_exits_1(data, capfd):
    cog = write_cog(data["folder"] / "notime.tif", data["arrays"][0][0])
    argv = ["--ismn_data_path", data["ismn"], "--output_dir", str(data["folder"] / "v30")]
    capfd.readouterr()
    assert validate_map.main(["--map", cog, *argv]) == 2
    err = capfd.readouterr().err.strip().splitlines()
    assert err == [f"validate_map: error: --map {cog} is a GeoTIFF without a time tag: give "
                   f"--time (ISO 8601 UTC, e.g. 2021-06-01T10:00)"]
    tagged = write_cog(data["folder"] / "tagged.tif", data["arrays"][0][0], "2021-06-01T10:00")
    assert validate_map.main(["--map", tagged, *argv, "--time", "2021-06-01T10:30"]) == 1
    err = [line for line in capfd.readouterr().err.splitlines() if " INFO " not in line]
    assert len(err) == 1 and err[0].startswith("validate_map: error: no pair: 5 stations")
    summary = json.loads((data["folder"] / "v30" / "validation.json").read_text())
    assert summary["outcomes"]["no_reading"] == 5 and not summary["usable"]


def test_no_station_on_the_map_exits_1_and_says_so(data, capfd):
    cube = write_cube(data["folder"] / "elsewhere.zarr", data["arrays"], x0=X0 + 2e5)
    out = data["folder"] / "vnone"
    out.mkdir()
    for name in ("metrics.md", "metrics.json", "scatter_model.png", "notes.txt"):
        (out / name).write_text("an earlier run's")
    capfd.readouterr()
    assert validate_map.main(["--map", cube, "--ismn_data_path", data["ismn"] + ".missing",
                              "--output_dir", str(out)]) == 2  # a mistake removes nothing
    assert (out / "metrics.md").exists()
    capfd.readouterr()
    assert validate_map.main(["--map", cube, "--ismn_data_path", data["ismn"],
                              "--output_dir", str(out)]) == 1
    assert sorted(p.name for p in out.iterdir() if p.name in (
        "metrics.md", "metrics.json", "scatter_model.png", "notes.txt")) == ["notes.txt"]
    err = [line for line in capfd.readouterr().err.splitlines() if " INFO " not in line]
    assert len(err) == 1 and cube in err[0] and data["ismn"] in err[0] and "latitude" in err[0]
    summary = json.loads((out / "validation.json").read_text())
    assert summary["stations"]["inside"] == 0 and summary["stations"]["outside_map"] == 7
    assert not summary["usable"] and summary["accounted"] and not (out / "metrics.json").exists()
    assert (out / "stations.csv").read_text().count("outside_map") == 7


def test_a_download_without_a_005_sensor_exits_1(data, capfd):
    ismn = write_ismn(data["folder"] / "deep.zip", {"Golf": STATIONS["Golf"]}, {})
    capfd.readouterr()
    assert validate_map.main(["--map", data["cube"], "--ismn_data_path", ismn,
                              "--output_dir", str(data["folder"] / "vdeep")]) == 1
    err = [line for line in capfd.readouterr().err.splitlines() if " INFO " not in line]
    assert err == [f"validate_map: error: ISMN download {ismn}: none of its 1 stations has a "
                   f"0.05 m soil-moisture sensor (a sensor named with '0.05' and "
                   f"'soil_moisture'); nothing to validate"]


def test_an_unreadable_download_exits_1(data, tmp_path, capfd):
    broken = tmp_path / "ISMN.zip"
    broken.write_bytes(b"not a zip")
    capfd.readouterr()
    assert validate_map.main(["--map", data["cube"], "--ismn_data_path", str(broken),
                              "--output_dir", str(tmp_path / "v")]) == 1
    err = [line for line in capfd.readouterr().err.splitlines() if " INFO " not in line]
    assert len(err) == 1 and err[0].startswith(
        f"validate_map: error: ISMN archive {broken} is not a readable zip")


@pytest.mark.parametrize("case,code,words", [
    ("not_ours", 1, "is a Zarr store but not a soil-moisture cube: it has no soil_moisture"),
    ("text", 1, "is neither a Zarr store"),
    ("cube_with_time", 2, "--time is for a GeoTIFF map"),
    ("bad_time", 2, "is not an ISO 8601 UTC time"),
    ("missing", 2, "does not exist"),
    ("bad_crs", 1, "its grid mapping's CRS 'garbage' cannot be read"),
    ("no_times", 1, "the cube holds no time"),
])
def test_bad_maps_are_one_line(data, tmp_path, capfd, case, code, words):
    import xarray

    path, extra = str(tmp_path / "m.zarr"), []
    if case == "not_ours":
        xarray.Dataset({"other": (("y", "x"), np.zeros((2, 2)))}).to_zarr(path, zarr_format=2)
    elif case == "text":
        path = str(tmp_path / "m.tif")
        open(path, "w").write("not a raster")
    elif case == "cube_with_time":
        path, extra = data["cube"], ["--time", "2021-06-01T10:00"]
    elif case == "bad_time":
        path, extra = write_cog(tmp_path / "m.tif", data["arrays"][0][0]), ["--time", "June 1st"]
    elif case in ("bad_crs", "no_times"):
        import shutil
        import zarr

        shutil.copytree(data["cube"], path)
        group = zarr.open_group(path, mode="r+", zarr_format=2, use_consolidated=False)
        if case == "bad_crs":
            group["spatial_ref"].attrs.update(crs_wkt="garbage", spatial_ref="garbage")
        else:
            for name in ("soil_moisture", "smap_sm", "gldas_sm"):
                group[name].resize((0, *group[name].shape[1:]))
            group["time"].resize((0,))
        zarr.consolidate_metadata(path, zarr_format=2)
    out = tmp_path / "out"
    out.mkdir()
    (out / "pairs.csv").write_text("an earlier run's")
    capfd.readouterr()
    assert validate_map.main(["--map", path, "--ismn_data_path", data["ismn"], "--output_dir",
                              str(out), *extra]) == code
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0], err
    assert (out / "pairs.csv").read_text() == "an earlier run's"  # refused before removing


def test_a_dry_run_on_the_local_runner_is_refused_and_writes_nothing(data, tmp_path, capfd):
    out = tmp_path / "out"
    capfd.readouterr()
    assert validate_map.main(["--map", data["cube"], "--ismn_data_path", data["ismn"],
                              "--output_dir", str(out), "--dry_run=True"]) == 2
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--dry_run builds a job for a cluster runner" in err[0]
    assert not out.exists() or not list(out.iterdir())


def test_dataflow_jobs_build_offline():
    r = validate_map.run(["--runner", "DataflowRunner", "--project", "my-project-123", "--region",
                          "us-central1", "--temp_location", "gs://my-bucket-123/tmp",
                          "--dry_run=True", "--no_auth", "--sdk_location=container",
                          "--experiments", "use_runner_v2", "--map", "gs://my-bucket-123/cube.zarr",
                          "--ismn_data_path", "gs://my-bucket-123/ISMN.zip",
                          "--output_dir", "gs://my-bucket-123/validation"])
    names = r["validation"]["transforms"]
    assert r["validation"]["dry_run"] and r["validation"]["job"].proto.type
    for step in ("Read map grid", "List ISMN stations", "Read and place stations",
                 "Group by map chunk", "Read map at stations", "Write pairs and counts"):
        assert any(f"Validate map/{step}" in n for n in names), step
    assert r["metrics"]["dry_run"] and any(n.startswith("Evaluate/") for n in r["metrics"]["transforms"])
    assert validate_map.exit_code(r) == 0


def test_shared_flags_have_the_same_definitions_as_evaluate_and_the_merge():
    def defined(cls):
        parser = argparse.ArgumentParser()
        cls._add_argparse_args(parser)
        return {a.dest: (a.default, a.type) for a in parser._actions}

    mine = defined(validate_map.ValidateMapOptions)
    for cls in (evaluate.EvaluateOptions, combine_ismn_data.CombineIsmnOptions):
        theirs = defined(cls)
        shared = set(mine) & set(theirs) - {"help"}
        assert shared and all(mine[f] == theirs[f] for f in shared), cls
    fields = {f for f in validation.ValidationConfig.__dataclass_fields__} - {"output_dir"}
    assert fields <= set(mine)
    defaults = validation.ValidationConfig(map="m", ismn_data_path="i", output_dir="o")
    assert all(getattr(defaults, f) == mine[f][0] for f in fields - {"map", "ismn_data_path"})


@pytest.mark.parametrize("text,ms", [("2021-06-01T10:00", 1622541600000),
                                     ("2021-06-01T10:00:30Z", 1622541630000)])
def test_times_parse_as_iso_utc(text, ms):
    assert validation.parse_time(text, "--time") == ms


def test_a_cog_is_evaluated_for_the_model_alone(data, tmp_path, capfd):
    """A GeoTIFF map holds no SMAP/GLDAS: its pairs are evaluated for the
    model (``--baselines none``), none set aside as incomplete."""
    import json

    cog = write_cog(tmp_path / "map.tif", data["arrays"][0][5], time="2021-06-06T10:00:30Z")
    out = tmp_path / "v"
    code = validate_map.main(["--map", cog, "--ismn_data_path", data["ismn"],
                              "--output_dir", str(out), *FLAGS, "--min_samples_per_sensor", "1"])
    assert code == 0, capfd.readouterr().err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["pairs_by_split"] == {"all": 5} and list(metrics["pooled"]["all"]) == ["model"]
    assert not any(metrics["rows_set_aside"].values())
    assert not (out / "bad_rows.jsonl").read_text().strip()
