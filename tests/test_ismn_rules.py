"""The released matching rules, as plain functions."""

import os
import zipfile

import numpy as np
import pytest

from transforms.insitu import ismn_files, listing, window
from transforms.merge import rules


@pytest.mark.parametrize("id_station,ismn_station,ok", [
    ("AdamsRanch_1", "AdamsRanch#1", True),
    ("CST_01", "CST-01", True),
    ("CST_01", "CST-02", False),
    ("LasBrozas", "Las-Brozas", True),  # only with '-' removed
    ("Stillwater_2_W", "Stillwater-2-W", True),
    ("Bushland_1", "Bushland#10", True),  # parts are substrings
    ("Bushland_10", "Bushland#1", False),
    ("Nowhere_9", "AdamsRanch#1", False),
])
def test_station_matches(id_station, ismn_station, ok):
    assert rules.station_matches(id_station, ismn_station) is ok


def test_resolve_station_sorted_first():
    stations = ["Bushland#10", "AdamsRanch#1", "Bushland#1"]
    assert rules.resolve_station("Bushland_1", stations) == ["Bushland#1", "Bushland#10"]
    assert rules.resolve_station("Bushland_10", stations) == ["Bushland#10"]
    assert rules.resolve_station("Nowhere", stations) == []


def test_resolve_sensor():
    sensors = ["ThetaProbe-ML2X_soil_moisture_0.050000_0.050000",
               "CS655_soil_temperature_0.050000_0.050000",
               "CS655_soil_moisture_0.500000_0.500000",
               "CS655_soil_moisture_0.050000_0.050000"]
    # the released rule: the first accepted sensor in the order listed, not sorted
    assert listing.resolve_sensor(sensors) == "ThetaProbe-ML2X_soil_moisture_0.050000_0.050000"
    assert listing.resolve_sensor(sensors[1:]) == "CS655_soil_moisture_0.050000_0.050000"
    assert listing.resolve_sensor(["X_soil_moisture_0.000000_0.050000"]) == "X_soil_moisture_0.000000_0.050000"
    assert listing.resolve_sensor(["X_soil_moisture_0.050800_0.050800"]) == "X_soil_moisture_0.050800_0.050800"
    assert listing.resolve_sensor(["X_soil_moisture_0.500000_0.500000",
                                "X_soil_temperature_0.050000_0.050000"]) is None


@pytest.mark.parametrize("path,expected", [
    ("SCAN/AdamsRanch#1/SCAN_SCAN_AdamsRanch#1_sm_0.050800_0.050800_Hydraprobe-Analog-(2.5-Volt)_20150101_20220101.stm",
     ("SCAN", "AdamsRanch#1", "Hydraprobe-Analog-(2.5-Volt)_soil_moisture_0.050800_0.050800")),
    ("REMEDHUS/Carretoro/REMEDHUS_REMEDHUS_Carretoro_ts_0.000000_0.050000_Stevens_Hydra_Probe_20150101_20220101.stm",
     ("REMEDHUS", "Carretoro", "Stevens_Hydra_Probe_soil_temperature_0.000000_0.050000")),
])
def test_parse_file_name(path, expected):
    assert listing.parse_file_name(path).key == expected


@pytest.mark.parametrize("bad", ["SCAN/x.stm", "SCAN/St/readme.stm", "SCAN/St/A_B_C_sm_x_y_Z_1_2.stm"])
def test_parse_file_name_rejects(bad):
    with pytest.raises(listing.IsmnDataError):
        listing.parse_file_name(bad)


def test_build_catalog_first_file_wins_and_bad_names():
    paths = ["N/S/N_N_S_sm_0.050000_0.050000_P_20150101_20170101.stm",
             "N/S/N_N_S_sm_0.050000_0.050000_P_20170101_20220101.stm",
             "N/S/N_N_S_ts_0.050000_0.050000_P_20150101_20220101.stm",
             "N/S/garbage.stm"]
    cat = listing.build_catalog(paths)
    assert cat.stations == {"N": {"S": ["P_soil_moisture_0.050000_0.050000",
                                        "P_soil_temperature_0.050000_0.050000"]}}
    assert cat.files[("N", "S", "P_soil_moisture_0.050000_0.050000")] == paths[0]
    assert cat.duplicate_files == [paths[1]]
    assert cat.bad_names == ["N/S/garbage.stm"]


def _readings(times):
    return window.Readings(np.array(times, dtype=np.int64), np.arange(len(times)) / 10.0,
                         ["G"] * len(times))


T = 1_500_000_000  # a reading time, whole minutes


@pytest.mark.parametrize("t_s,times,kind", [
    (T, [T - 3600, T, T + 3600], "success"),
    (T + 180, [T], "success"),  # exactly +3 min: inclusive
    (T - 180, [T], "success"),  # exactly -3 min: inclusive
    (T + 181, [T], "lookup"),  # just outside
    (T - 181, [T], "lookup"),
    (T, [T, T + 60], "value"),  # two readings within 3 min
    (T, [T - 180, T + 180], "value"),
    (T, [], "lookup"),
])
def test_match_window(t_s, times, kind):
    assert window.match_readings(_readings(times), t_s, 180).kind == kind


def test_match_float32_rounded_timestamp():
    # hourly reading stored as float32 millis is up to ~65 s off
    stored = float(np.float32(T * 1000))
    assert stored != T * 1000
    t_s = window.timestamp_seconds(stored)
    assert abs(t_s - T) <= 66
    m = window.match_readings(_readings([T - 3600, T, T + 3600]), t_s, 180)
    assert m.kind == "success" and m.value == 0.1


def test_match_good_flags_only():
    r = window.Readings(np.array([T, T + 60]), np.array([0.1, 0.2]), ["D01", "G"])
    assert window.match_readings(r, T, 180).kind == "value"
    m = window.match_readings(r, T, 180, good_flags_only=True)
    assert m.kind == "success" and m.value == 0.2


def test_timestamp_seconds():
    assert window.timestamp_seconds(1_500_000_000_999.0) == 1_500_000_000
    with pytest.raises(ValueError):
        window.timestamp_seconds(float("nan"))


def test_build_catalog_keeps_the_listed_sensor_order():
    paths = ["N/S/N_N_S_sm_0.050000_0.050000_ThetaProbe-ML2X_20150101_20220101.stm",
             "N/S/N_N_S_sm_0.050000_0.050000_CS655_20150101_20220101.stm"]
    cat = listing.build_catalog(paths)
    assert cat.stations["N"]["S"] == ["ThetaProbe-ML2X_soil_moisture_0.050000_0.050000",
                                      "CS655_soil_moisture_0.050000_0.050000"]
    assert cat.instruments["CS655_soil_moisture_0.050000_0.050000"] == "CS655"


def test_choose_sensor_released_and_matching_the_type():
    sensors = ["ThetaProbe-ML2X_soil_moisture_0.050000_0.050000",
               "CS655_soil_moisture_0.050000_0.050000"]
    instruments = {s: s.split("_")[0] for s in sensors}
    assert rules.choose_sensor(sensors, instruments, "CS655") == (sensors[0], True)
    assert rules.choose_sensor(sensors, instruments, "CS655", match_sensor_type=True) == (
        sensors[1], False)
    assert rules.choose_sensor(sensors, instruments, "ThetaProbe_ML2X") == (sensors[0], False)
    # no candidate of the id's type: the released choice, flagged as a mismatch
    assert rules.choose_sensor(sensors, instruments, "TDR", match_sensor_type=True) == (
        sensors[0], True)
    assert rules.choose_sensor(["X_soil_moisture_0.500000_0.500000"], {}, "X") == (None, False)


@pytest.mark.parametrize("name,safe", [
    ("SCAN/St/f.stm", True), ("top/SCAN/St/f.stm", True), ("../../SCAN/St/f.stm", False),
    ("/etc/SCAN/St/f.stm", False), ("SCAN/../../St/f.stm", False), ("C:/x/St/f.stm", False),
    ("SCAN\\..\\..\\f.stm", False)])
def test_is_safe_member(name, safe):
    assert listing.is_safe_member(name) is safe


@pytest.mark.parametrize("ms", [3e38, -3e38, 2.6e14, -6.3e13])
def test_timestamp_outside_datetime_range_is_an_error_naming_the_value(ms):
    with pytest.raises(ValueError, match="outside years 1-9999"):
        window.timestamp_seconds(ms)


def test_first_bad_line_names_the_line(tmp_path):
    hv = tmp_path / "hv.stm"
    hv.write_bytes(b"HEADER LINE\r\n2015/01/01 00:00 0.25 G M\r\n"
                   b"2015/01/01 01:00 abc G M\r\n2015/01/01 02:00 0.2 G M\r\n")
    assert ismn_files.first_bad_line(str(hv), header_values=True) == (3, "2015/01/01 01:00 abc G M")
    ceop = tmp_path / "c.stm"
    good = b"2015/01/01 00:00 2015/01/01 00:00 CSE NET ST 1.0 2.0 3.0 0.05 0.05 0.2 G M\r\n"
    ceop.write_bytes(good + b"2015/13/01 00:00 2015/01/01 00:00 CSE NET ST 1.0 2.0 3.0 0.05 0.05 0.2 G M\r\n")
    assert ismn_files.first_bad_line(str(ceop), header_values=False)[0] == 2
    ceop.write_bytes(good * 3)
    assert ismn_files.first_bad_line(str(ceop), header_values=False) is None


# ---------------------------------------------------------------- what failures say

def test_match_reasons_name_the_readings():
    r = window.Readings(np.array([T, T + 60]), np.array([0.25, 0.3]), ["G", "D01"])
    assert window.match_readings(r, T + 3600, 180) == window.Match(
        "lookup", reason="no reading within +-180 s of 2017-07-14T03:40:00Z")
    assert window.match_readings(r, T + 3600, 180, good_flags_only=True).reason == (
        "no reading flagged G within +-180 s of 2017-07-14T03:40:00Z")
    assert window.match_readings(r, T, 180) == window.Match(
        "value", reason="2 readings within +-180 s of 2017-07-14T02:40:00Z: "
                        "2017-07-14T02:40:00Z=0.25 [G], 2017-07-14T02:41:00Z=0.3 [D01]")
    assert window.match_readings(r, T - 100, 120) == window.Match(
        "success", 0.25, reason="reading 2017-07-14T02:40:00Z flag G")


@pytest.mark.parametrize("text,header_values,expected", [
    (b"H\r\n2015/01/01 00:00 0.2 G M\r\n2015/01/01 01:00 0.2 G\r\n", True,
     (3, "2015/01/01 01:00 0.2 G")),  # too few fields
    (b"H\r\n\r\n2015/01/01 00:00 0.2 G M\r\n2015/01/01 25:00 0.2 G M\r\n", True,
     (4, "2015/01/01 25:00 0.2 G M")),  # blank line skipped, bad hour
    (b"H\r\n2015-01-01 00:00 0.2 G M\r\n", True, (2, "2015-01-01 00:00 0.2 G M")),  # wrong date form
    (b"H\r\n2015/01/01 00:00 \xff\xfe G M\r\n", True, (2, "2015/01/01 00:00 \ufffd\ufffd G M")),
    (b"2015/01/01 00:00 0.2 G M\r\n", True, None),  # the first line is the header: not read
])
def test_first_bad_line_cases(tmp_path, text, header_values, expected):
    path = tmp_path / "f.stm"
    path.write_bytes(text)
    assert ismn_files.first_bad_line(str(path), header_values) == expected


def test_sensor_names_and_instruments():
    assert listing._variable_name("sm") == "soil_moisture"
    assert listing._variable_name("xyz") == "xyz"  # unknown short names kept
    f = listing.parse_file_name("top/N/S/N_N_S_xyz_0.050000_0.050000_Probe_A_20150101_20220101.stm")
    assert (f.network, f.station, f.sensor, f.instrument, f.path) == (
        "N", "S", "Probe_A_xyz_0.050000_0.050000", "Probe_A",
        "top/N/S/N_N_S_xyz_0.050000_0.050000_Probe_A_20150101_20220101.stm")
    assert rules.instrument_matches("CS655", "cs-655")
    assert rules.instrument_matches("Hydraprobe_Analog", "Hydraprobe-Analog-(2.5-Volt)")
    assert not rules.instrument_matches("", "CS655") and not rules.instrument_matches("CS655", "")
    assert not rules.instrument_matches("CS655", "CS616")
    assert not rules.instrument_matches("TDR", "ThetaProbe")
    assert listing.is_safe_member("C") and not listing.is_safe_member("C:")


def test_choose_sensor_falls_back_to_the_sensor_name_for_the_instrument():
    sensors = ["CS655_soil_moisture_0.050000_0.050000", "TDR_soil_moisture_0.050000_0.050000"]
    assert rules.choose_sensor(sensors, {}, "TDR", match_sensor_type=True) == (sensors[1], False)
    assert rules.choose_sensor(sensors, {}, "CS655") == (sensors[0], False)


def test_build_catalog_goes_on_after_a_bad_name():
    cat = listing.build_catalog(["N/S/bad.stm",
                              "N/S/N_N_S_sm_0.050000_0.050000_P_20150101_20220101.stm"])
    assert cat.bad_names == ["N/S/bad.stm"] and list(cat.files) == [
        ("N", "S", "P_soil_moisture_0.050000_0.050000")]


# ---------------------------------------------------------------- downloads, in process

_CEOP = ("{d} {hm} {d} {hm} N N S 1.00000 2.00000 3.00 0.0500 0.0500 {v} G M")


def _ceop_file(values):
    lines = [_CEOP.format(d="2015/01/01", hm=f"{h:02d}:00", v=v) for h, v in enumerate(values)]
    return ("\r\n".join(lines) + "\r\n").encode()


NAME = "N_N_S_sm_0.050000_0.050000_P_20150101_20220101.stm"


def _download(tmp_path, files, layout):
    if layout == "zip":
        path = tmp_path / "ISMN.zip"
        with zipfile.ZipFile(path, "w") as z:
            for name, data in files.items():
                z.writestr(name, data)
        return str(path)
    root = tmp_path / "ISMN"
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return str(root)


@pytest.mark.parametrize("layout", ["zip", "dir"])
def test_list_and_read_a_download(tmp_path, layout):
    files = {f"N/S/{NAME}": _ceop_file(["0.2500", "0.3000"]), "N/S/readme.txt": b"x",
             "Readme.txt": b"top"}
    path = _download(tmp_path, files, layout)
    assert ismn_files.list_data_files(path) == [f"N/S/{NAME}"]
    r = ismn_files.read_readings(path, f"N/S/{NAME}")
    assert list(r.values) == [0.25, 0.3] and r.flags == ["G", "G"]
    assert list(r.times) == [1420070400, 1420074000]  # 2015-01-01T00:00Z, 01:00Z


def test_zip_reading_copies_into_a_temporary_folder_of_ours(tmp_path):
    path = _download(tmp_path, {f"deep/er/N/S/{NAME}": _ceop_file(["0.1000", "0.2000"])}, "zip")
    assert ismn_files.list_data_files(path) == [f"deep/er/N/S/{NAME}"]
    with zipfile.ZipFile(path) as z:
        r = ismn_files.read_readings(path, f"deep/er/N/S/{NAME}", z, temp_root=str(tmp_path))
    assert list(r.values) == [0.1, 0.2]
    assert sorted(os.listdir(tmp_path)) == ["ISMN.zip"]  # its temporary folder is gone


def test_unsafe_members_are_left_out_of_the_listing(tmp_path, caplog):
    path = _download(tmp_path, {f"N/S/{NAME}": b"", f"../../N/S/{NAME}": b""}, "zip")
    assert ismn_files.list_data_files(path) == [f"N/S/{NAME}"]
    assert "points outside the archive" in caplog.text
    with pytest.raises(listing.IsmnDataError, match="not a file inside the ISMN download"):
        with zipfile.ZipFile(path) as z:
            ismn_files.read_readings(path, f"../../N/S/{NAME}", z)


def test_folder_one_level_deeper_and_missing_paths(tmp_path):
    root = _download(tmp_path, {f"extra/N/S/{NAME}": _ceop_file(["0.2000"])}, "dir")
    assert ismn_files.list_data_files(root) == [f"extra/N/S/{NAME}"]
    assert ismn_files.list_data_files(str(tmp_path / "ISMN") + "/") == [f"extra/N/S/{NAME}"]
    with pytest.raises(listing.IsmnDataError, match="ISMN folder not found: .*nope"):
        ismn_files.list_data_files(str(tmp_path / "nope"))
    with pytest.raises(listing.IsmnDataError, match="ISMN archive not found: .*nope.zip"):
        ismn_files.list_data_files(str(tmp_path / "nope.zip"))
    (tmp_path / "bad.zip").write_bytes(b"not a zip")
    with pytest.raises(listing.IsmnDataError, match="is not a readable zip"):
        ismn_files.list_data_files(str(tmp_path / "bad.zip"))


def test_unreadable_file_names_the_file_and_line(tmp_path):
    path = _download(tmp_path, {f"N/S/{NAME}": _ceop_file(["0.2000", "abc", "0.3"])}, "zip")
    with pytest.raises(listing.IsmnDataError) as e:
        ismn_files.read_readings(path, f"N/S/{NAME}")
    assert str(e.value).startswith(f"ISMN file {path}:N/S/{NAME} could not be parsed: line 2: "
                                   f"'2015/01/01 01:00 2015/01/01 01:00 N N S")
    empty = _download(tmp_path / "e", {f"N/S/{NAME}": b""}, "dir")
    with pytest.raises(listing.IsmnDataError, match=f"ISMN file {empty}/N/S/{NAME}"):
        ismn_files.read_readings(empty, f"N/S/{NAME}")


@pytest.mark.parametrize("layout", ["zip", "dir"])
def test_provenance_identifies_the_snapshot(tmp_path, layout):
    import hashlib
    from importlib import metadata

    files = {f"N/S/{NAME}": _ceop_file(["0.2000"]), "N/S/x.csv": b"abc"}
    path = _download(tmp_path, files, layout)
    p = ismn_files.provenance(path, 1)
    assert p["data_files"] == 1 and p["ismn_package_version"] == metadata.version("ismn")
    assert p["path"] == path and p["kind"] == ("zip" if layout == "zip" else "folder")
    if layout == "zip":
        assert p["sha256"] == hashlib.sha256(open(path, "rb").read()).hexdigest()
        assert p["size_bytes"] == os.path.getsize(path)
        assert p["modified_unix"] == pytest.approx(os.path.getmtime(path), abs=1)
    else:
        names = "".join(f"{n}\t{len(d)}\n" for n, d in sorted(files.items()))
        assert p["sha256_of_listing"] == hashlib.sha256(names.encode()).hexdigest()
        assert p["size_bytes"] == sum(len(d) for d in files.values()) and p["files"] == 2
        assert p["modified_unix"] == pytest.approx(
            max(os.path.getmtime(os.path.join(path, n)) for n in files), abs=1)


def test_timestamp_bounds_are_inclusive_and_errors_say_why():
    assert window.timestamp_seconds(float(window.MIN_TIMESTAMP_MS)) == window.MIN_TIMESTAMP_MS // 1000
    assert window.timestamp_seconds(float(window.MAX_TIMESTAMP_MS)) == window.MAX_TIMESTAMP_MS // 1000
    assert window.timestamp_seconds(-1500.7) == -2  # truncated to ms, then floored to seconds
    assert window.timestamp_seconds(1999.9) == 1
    for bad, why in ((window.MIN_TIMESTAMP_MS - 1.0, "outside years 1-9999"),
                     (window.MAX_TIMESTAMP_MS + 1.0, "outside years 1-9999"),
                     (float("inf"), "is not finite"), (float("nan"), "is not finite")):
        with pytest.raises(ValueError, match=why):
            window.timestamp_seconds(bad)


def test_parse_file_name_normalises_the_path():
    name = "N_N_S_sm_0.05_0.05_CS655_20150101_20220101.stm"  # exactly nine parts
    f = listing.parse_file_name("\\".join(["", "root", "N", "S", name]) + "/")
    assert (f.network, f.station, f.instrument, f.path) == ("N", "S", "CS655", f"root/N/S/{name}")
    assert f.sensor == "CS655_soil_moisture_0.050000_0.050000"
    for bad in (f"N/S/{name[:-4]}.csv", "N/S/N_N_S_sm_0.05_0.05_CS655_2015.stm", name):
        with pytest.raises(listing.IsmnDataError):
            listing.parse_file_name(bad)


def test_instrument_names_compare_without_case_and_punctuation():
    assert rules.instrument_matches("THETA_probe ML2x", "ThetaProbe-ML2X")
    assert rules.instrument_matches("ml2x", "ThetaProbe-ML2X")  # one contains the other
    assert not rules.instrument_matches("--", "CS655")  # nothing left to compare
