"""The released matching rules, as plain functions."""

import numpy as np
import pytest

from transforms import ismn


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
    assert ismn.station_matches(id_station, ismn_station) is ok


def test_resolve_station_sorted_first():
    stations = ["Bushland#10", "AdamsRanch#1", "Bushland#1"]
    assert ismn.resolve_station("Bushland_1", stations) == ["Bushland#1", "Bushland#10"]
    assert ismn.resolve_station("Bushland_10", stations) == ["Bushland#10"]
    assert ismn.resolve_station("Nowhere", stations) == []


def test_resolve_sensor():
    sensors = ["ThetaProbe-ML2X_soil_moisture_0.050000_0.050000",
               "CS655_soil_temperature_0.050000_0.050000",
               "CS655_soil_moisture_0.500000_0.500000",
               "CS655_soil_moisture_0.050000_0.050000"]
    # the released rule: the first accepted sensor in the order listed, not sorted
    assert ismn.resolve_sensor(sensors) == "ThetaProbe-ML2X_soil_moisture_0.050000_0.050000"
    assert ismn.resolve_sensor(sensors[1:]) == "CS655_soil_moisture_0.050000_0.050000"
    assert ismn.resolve_sensor(["X_soil_moisture_0.000000_0.050000"]) == "X_soil_moisture_0.000000_0.050000"
    assert ismn.resolve_sensor(["X_soil_moisture_0.050800_0.050800"]) == "X_soil_moisture_0.050800_0.050800"
    assert ismn.resolve_sensor(["X_soil_moisture_0.500000_0.500000",
                                "X_soil_temperature_0.050000_0.050000"]) is None


@pytest.mark.parametrize("path,expected", [
    ("SCAN/AdamsRanch#1/SCAN_SCAN_AdamsRanch#1_sm_0.050800_0.050800_Hydraprobe-Analog-(2.5-Volt)_20150101_20220101.stm",
     ("SCAN", "AdamsRanch#1", "Hydraprobe-Analog-(2.5-Volt)_soil_moisture_0.050800_0.050800")),
    ("REMEDHUS/Carretoro/REMEDHUS_REMEDHUS_Carretoro_ts_0.000000_0.050000_Stevens_Hydra_Probe_20150101_20220101.stm",
     ("REMEDHUS", "Carretoro", "Stevens_Hydra_Probe_soil_temperature_0.000000_0.050000")),
])
def test_parse_file_name(path, expected):
    assert ismn.parse_file_name(path).key == expected


@pytest.mark.parametrize("bad", ["SCAN/x.stm", "SCAN/St/readme.stm", "SCAN/St/A_B_C_sm_x_y_Z_1_2.stm"])
def test_parse_file_name_rejects(bad):
    with pytest.raises(ismn.IsmnDataError):
        ismn.parse_file_name(bad)


def test_build_catalog_first_file_wins_and_bad_names():
    paths = ["N/S/N_N_S_sm_0.050000_0.050000_P_20150101_20170101.stm",
             "N/S/N_N_S_sm_0.050000_0.050000_P_20170101_20220101.stm",
             "N/S/N_N_S_ts_0.050000_0.050000_P_20150101_20220101.stm",
             "N/S/garbage.stm"]
    cat = ismn.build_catalog(paths)
    assert cat.stations == {"N": {"S": ["P_soil_moisture_0.050000_0.050000",
                                        "P_soil_temperature_0.050000_0.050000"]}}
    assert cat.files[("N", "S", "P_soil_moisture_0.050000_0.050000")] == paths[0]
    assert cat.duplicate_files == [paths[1]]
    assert cat.bad_names == ["N/S/garbage.stm"]


def _readings(times):
    return ismn.Readings(np.array(times, dtype=np.int64), np.arange(len(times)) / 10.0,
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
    assert ismn.match_readings(_readings(times), t_s, 180).kind == kind


def test_match_float32_rounded_timestamp():
    # hourly reading stored as float32 millis is up to ~65 s off
    stored = float(np.float32(T * 1000))
    assert stored != T * 1000
    t_s = ismn.timestamp_seconds(stored)
    assert abs(t_s - T) <= 66
    m = ismn.match_readings(_readings([T - 3600, T, T + 3600]), t_s, 180)
    assert m.kind == "success" and m.value == 0.1


def test_match_good_flags_only():
    r = ismn.Readings(np.array([T, T + 60]), np.array([0.1, 0.2]), ["D01", "G"])
    assert ismn.match_readings(r, T, 180).kind == "value"
    m = ismn.match_readings(r, T, 180, good_flags_only=True)
    assert m.kind == "success" and m.value == 0.2


def test_timestamp_seconds():
    assert ismn.timestamp_seconds(1_500_000_000_999.0) == 1_500_000_000
    with pytest.raises(ValueError):
        ismn.timestamp_seconds(float("nan"))


def test_build_catalog_keeps_the_listed_sensor_order():
    paths = ["N/S/N_N_S_sm_0.050000_0.050000_ThetaProbe-ML2X_20150101_20220101.stm",
             "N/S/N_N_S_sm_0.050000_0.050000_CS655_20150101_20220101.stm"]
    cat = ismn.build_catalog(paths)
    assert cat.stations["N"]["S"] == ["ThetaProbe-ML2X_soil_moisture_0.050000_0.050000",
                                      "CS655_soil_moisture_0.050000_0.050000"]
    assert cat.instruments["CS655_soil_moisture_0.050000_0.050000"] == "CS655"


def test_choose_sensor_released_and_matching_the_type():
    sensors = ["ThetaProbe-ML2X_soil_moisture_0.050000_0.050000",
               "CS655_soil_moisture_0.050000_0.050000"]
    instruments = {s: s.split("_")[0] for s in sensors}
    assert ismn.choose_sensor(sensors, instruments, "CS655") == (sensors[0], True)
    assert ismn.choose_sensor(sensors, instruments, "CS655", match_sensor_type=True) == (
        sensors[1], False)
    assert ismn.choose_sensor(sensors, instruments, "ThetaProbe_ML2X") == (sensors[0], False)
    # no candidate of the id's type: the released choice, flagged as a mismatch
    assert ismn.choose_sensor(sensors, instruments, "TDR", match_sensor_type=True) == (
        sensors[0], True)
    assert ismn.choose_sensor(["X_soil_moisture_0.500000_0.500000"], {}, "X") == (None, False)


@pytest.mark.parametrize("name,safe", [
    ("SCAN/St/f.stm", True), ("top/SCAN/St/f.stm", True), ("../../SCAN/St/f.stm", False),
    ("/etc/SCAN/St/f.stm", False), ("SCAN/../../St/f.stm", False), ("C:/x/St/f.stm", False),
    ("SCAN\\..\\..\\f.stm", False)])
def test_is_safe_member(name, safe):
    assert ismn.is_safe_member(name) is safe


@pytest.mark.parametrize("ms", [3e38, -3e38, 2.6e14, -6.3e13])
def test_timestamp_outside_datetime_range_is_an_error_naming_the_value(ms):
    with pytest.raises(ValueError, match="outside years 1-9999"):
        ismn.timestamp_seconds(ms)


def test_first_bad_line_names_the_line(tmp_path):
    hv = tmp_path / "hv.stm"
    hv.write_bytes(b"HEADER LINE\r\n2015/01/01 00:00 0.25 G M\r\n"
                   b"2015/01/01 01:00 abc G M\r\n2015/01/01 02:00 0.2 G M\r\n")
    assert ismn.first_bad_line(str(hv), header_values=True) == (3, "2015/01/01 01:00 abc G M")
    ceop = tmp_path / "c.stm"
    good = b"2015/01/01 00:00 2015/01/01 00:00 CSE NET ST 1.0 2.0 3.0 0.05 0.05 0.2 G M\r\n"
    ceop.write_bytes(good + b"2015/13/01 00:00 2015/01/01 00:00 CSE NET ST 1.0 2.0 3.0 0.05 0.05 0.2 G M\r\n")
    assert ismn.first_bad_line(str(ceop), header_values=False)[0] == 2
    ceop.write_bytes(good * 3)
    assert ismn.first_bad_line(str(ceop), header_values=False) is None
