"""The synthetic ISMN networks, stations and sensors, and the sensor ids the
sample's examples carry (some needing each of the released matching rules,
some planted to fail).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import List, Optional, Tuple

EPOCH = dt.datetime(1970, 1, 1)


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


HYDRAPROBE = "Hydraprobe-Analog-(2.5-Volt)"


_USCRN = "Stevens-Hydraprobe-II-Sdi-12"


STATIONS: Tuple[StationSpec, ...] = (
    StationSpec("SCAN", "AdamsRanch#1", 34.25, -105.42, 1905.0,
                (_s("sm", .0508, .0508, HYDRAPROBE), _s("sm", .1016, .1016, HYDRAPROBE),
                 _s("sm", .2032, .2032, HYDRAPROBE), _s("sm", .508, .508, HYDRAPROBE),
                 _s("ts", .0508, .0508, HYDRAPROBE))),
    StationSpec("SCAN", "Bushland#1", 35.18, -102.10, 1170.0,
                (_s("sm", .0508, .0508, HYDRAPROBE), _s("ts", .0508, .0508, HYDRAPROBE))),
    StationSpec("SCAN", "Bushland#10", 35.19, -102.09, 1172.0,
                (_s("sm", .0508, .0508, HYDRAPROBE), _s("sm", .2032, .2032, HYDRAPROBE)),
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


def station_spec(network: str, name: str) -> StationSpec:
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


def fmt_time(t: int) -> Tuple[str, str]:
    d = EPOCH + dt.timedelta(seconds=int(t))
    return d.strftime("%Y/%m/%d"), d.strftime("%H:%M")


def ismn_file_name(st: StationSpec, sensor: SensorSpec, t0: int, t1: int) -> str:
    d0 = (EPOCH + dt.timedelta(seconds=t0)).strftime("%Y%m%d")
    d1 = (EPOCH + dt.timedelta(seconds=t1)).strftime("%Y%m%d")
    return (f"{st.network}_{st.network}_{st.name}_{sensor.variable}_{sensor.depth_from:.6f}_"
            f"{sensor.depth_to:.6f}_{sensor.instrument}_{d0}_{d1}.stm")
