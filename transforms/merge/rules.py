"""The released script's ISMN matching rules, as pure functions.

From an example's ``sensor_id`` (``<network>__<station>__<sensor type>``) and
timestamp to one ISMN reading, as ``../shared/reference-notes.md`` states them:

* ``parse_file_name`` / ``build_catalog``: which networks, stations and
  sensors an ISMN download holds, from its file names alone. Names follow the
  ``ismn`` package: a sensor is
  ``<instrument>_<variable>_<depth_from:.6f>_<depth_to:.6f>``, the network is
  the top folder, the station the third ``_`` part of the file name.
* ``resolve_station`` / ``choose_sensor``: the station and 0.05 m soil
  moisture sensor rules.
* ``timestamp_seconds`` / ``match_readings``: the +-tolerance window rule.

Decisions (the reference is silent on them):

* Stations are considered in sorted order (the ``ismn`` package sorts them
  by network and station name). Sensors are considered in the order the
  ``ismn`` package lists them: for a zip, the order of the files in the
  archive (as the released script sees them); for an extracted folder, where
  the package's order depends on the file system, in sorted path order. When
  several ISMN files give the same sensor name, the first in that order is
  used, as the ``ismn`` package keeps the first it meets and warns about the rest.
* "Every part occurs in the station name, or in it with ``-`` removed" is
  applied per part.
* The example's timestamp is truncated to whole milliseconds, then to whole
  seconds (floor), and readings ``t`` with ``ts - tol <= t <= ts + tol`` match.
  A timestamp outside years 1-9999 is malformed.
"""

from __future__ import annotations

import dataclasses
import math
import posixpath
from typing import Dict, Iterable, List, Optional, Tuple

import numpy as np

class IsmnDataError(Exception):
    """An ISMN file or archive could not be used; the message names it."""


#: Unix milliseconds of 0001-01-01 and of the end of 9999-12-31: the times a
#: ``datetime`` (and an ISMN reading) can have.
MIN_TIMESTAMP_MS, MAX_TIMESTAMP_MS = -62135596800000, 253402300799999


SENSOR_DEPTH_TOKEN = "0.05"


SENSOR_VARIABLE_TOKEN = "soil_moisture"


@dataclasses.dataclass(frozen=True, order=True)
class IsmnFile:
    """One ``.stm`` data file of an ISMN download, described by its name."""

    network: str
    station: str
    sensor: str  # the ismn package's sensor name
    path: str  # relative to the archive root, '/'-separated, as listed
    instrument: str = ""

    @property
    def key(self) -> Tuple[str, str, str]:
        return self.network, self.station, self.sensor


def _variable_name(short: str) -> str:
    from ismn.const import VARIABLE_LUT
    return VARIABLE_LUT.get(short, short)


def parse_file_name(path: str) -> IsmnFile:
    """Describe ``NETWORK/STATION/<CSE>_<NET>_<STATION>_<var>_<d0>_<d1>_<SENSOR>_<t0>_<t1>.stm``.

    Mirrors ``ismn.filehandlers.DataFile`` metadata for both formats. Raises
    IsmnDataError for a name that does not follow the ISMN convention.
    """
    parts = path.replace("\\", "/").strip("/").split("/")
    if len(parts) < 3:
        raise IsmnDataError(f"{path}: not NETWORK/STATION/<file>.stm")
    elems = parts[-1].split("_")
    if len(elems) < 9 or not parts[-1].endswith(".stm"):
        raise IsmnDataError(f"{path}: file name is not an ISMN data file name")
    instrument = "_".join(elems[6:len(elems) - 2]) if len(elems) > 9 else elems[6]
    try:
        d0, d1 = float(elems[4]), float(elems[5])
    except ValueError as e:
        raise IsmnDataError(f"{path}: depths in file name are not numbers") from e
    sensor = f"{instrument}_{_variable_name(elems[3])}_{d0:1.6f}_{d1:1.6f}"
    return IsmnFile(network=parts[-3], station=elems[2], sensor=sensor, path="/".join(parts),
                    instrument=instrument)


LAYOUT = "NETWORK/STATION/<CSE>_<NETWORK>_<STATION>_<var>_<from>_<to>_<SENSOR>_<start>_<end>.stm"


def is_safe_member(name: str) -> bool:
    """False for a zip member whose path is absolute or climbs out (``..``)."""
    norm = name.replace("\\", "/")
    if norm.startswith("/") or (len(norm) > 1 and norm[1] == ":"):
        return False
    return ".." not in posixpath.normpath(norm).split("/")


@dataclasses.dataclass
class Catalog:
    """Networks -> stations -> sensors of a download, and each sensor's file."""

    stations: Dict[str, Dict[str, List[str]]]  # network -> station -> sensors, in order
    files: Dict[Tuple[str, str, str], str]  # (network, station, sensor) -> path
    duplicate_files: List[str]  # files ignored because their sensor name repeats
    bad_names: List[str]  # files whose names do not parse
    instruments: Dict[str, str] = dataclasses.field(default_factory=dict)  # sensor -> instrument

    def networks(self) -> List[str]:
        return sorted(self.stations)


def build_catalog(paths: Iterable[str]) -> Catalog:
    """The catalog of data files listed in ``paths``, in the order given
    (``list_data_files``'s), which is the order sensors are tried in."""
    stations: Dict[str, Dict[str, List[str]]] = {}
    files: Dict[Tuple[str, str, str], str] = {}
    instruments: Dict[str, str] = {}
    duplicates, bad = [], []
    for path in paths:
        try:
            f = parse_file_name(path)
        except IsmnDataError:
            bad.append(path)
            continue
        if f.key in files:
            duplicates.append(path)
            continue
        files[f.key] = f.path
        instruments[f.sensor] = f.instrument
        stations.setdefault(f.network, {}).setdefault(f.station, []).append(f.sensor)
    return Catalog(stations, files, duplicates, bad, instruments)


def station_matches(id_station: str, ismn_station: str) -> bool:
    """Every ``_`` part of ``id_station`` occurs in ``ismn_station`` or in it with ``-`` removed."""
    undashed = ismn_station.replace("-", "")
    return all(p in ismn_station or p in undashed for p in id_station.split("_"))


def resolve_station(id_station: str, candidates: Iterable[str]) -> List[str]:
    """All ISMN stations matching ``id_station``, sorted; the first is the one used."""
    return [s for s in sorted(candidates) if station_matches(id_station, s)]


def resolve_sensor(sensors: Iterable[str]) -> Optional[str]:
    """The first sensor, in the given order, whose name contains ``0.05`` and
    ``soil_moisture`` (the released rule)."""
    return next(iter(depth_sensors(sensors)), None)


def depth_sensors(sensors: Iterable[str]) -> List[str]:
    """The sensors the released rule accepts, in order."""
    return [s for s in sensors if SENSOR_DEPTH_TOKEN in s and SENSOR_VARIABLE_TOKEN in s]


def _squash(name: str) -> str:
    return "".join(c for c in name.lower() if c.isalnum())


def instrument_matches(id_sensor_type: str, instrument: str) -> bool:
    """The id's sensor type names this instrument: equal, or one contains the
    other, ignoring case and everything but letters and digits."""
    a, b = _squash(id_sensor_type), _squash(instrument)
    return bool(a and b) and (a in b or b in a)


def choose_sensor(sensors: Iterable[str], instruments: Dict[str, str], id_sensor_type: str,
                  match_sensor_type: bool = False) -> Tuple[Optional[str], bool]:
    """``(sensor, type_mismatch)``.

    The released choice (``resolve_sensor``), or with ``match_sensor_type``
    the first candidate whose instrument matches the id's sensor type when
    one does. ``type_mismatch``: the chosen sensor's instrument does not match
    the id's sensor type.
    """
    candidates = depth_sensors(sensors)
    if not candidates:
        return None, False
    same = [s for s in candidates if instrument_matches(id_sensor_type, instruments.get(s, s))]
    chosen = same[0] if match_sensor_type and same else candidates[0]
    return chosen, not instrument_matches(id_sensor_type, instruments.get(chosen, chosen))


@dataclasses.dataclass
class Readings:
    """One sensor's readings, sorted by time."""

    times: np.ndarray  # int64 Unix seconds
    values: np.ndarray  # float64
    flags: List[str]

    def __len__(self) -> int:
        return len(self.times)


def timestamp_seconds(timestamp_ms: float) -> int:
    """The example's float32 millisecond timestamp as whole Unix seconds.

    Raises ValueError, with the value, for one that is not finite or not in
    years 1-9999.
    """
    if not math.isfinite(timestamp_ms):
        raise ValueError(f"timestamp {timestamp_ms!r} is not finite")
    if not MIN_TIMESTAMP_MS <= timestamp_ms <= MAX_TIMESTAMP_MS:
        raise ValueError(f"timestamp {timestamp_ms!r} ms is outside years 1-9999")
    return int(timestamp_ms) // 1000


@dataclasses.dataclass(frozen=True)
class Match:
    """The outcome of the window rule for one example."""

    kind: str  # "success", "lookup" or "value"
    value: Optional[float] = None
    reason: str = ""


def match_readings(readings: Readings, t_s: int, tolerance_s: int,
                   good_flags_only: bool = False) -> Match:
    """Readings within ``t_s +- tolerance_s`` (inclusive): exactly one -> success."""
    lo = int(np.searchsorted(readings.times, t_s - tolerance_s, side="left"))
    hi = int(np.searchsorted(readings.times, t_s + tolerance_s, side="right"))
    hits = list(range(lo, hi))
    if good_flags_only:
        hits = [i for i in hits if readings.flags[i] == "G"]
    if not hits:
        what = "no reading flagged G" if good_flags_only else "no reading"
        return Match("lookup", reason=f"{what} within +-{tolerance_s} s of {_iso(t_s)}")
    if len(hits) > 1:
        listed = ", ".join(f"{_iso(int(readings.times[i]))}={readings.values[i]:g} "
                           f"[{readings.flags[i]}]" for i in hits)
        return Match("value", reason=f"{len(hits)} readings within +-{tolerance_s} s of "
                                     f"{_iso(t_s)}: {listed}")
    i = hits[0]
    return Match("success", float(readings.values[i]),
                 reason=f"reading {_iso(int(readings.times[i]))} flag {readings.flags[i]}")


def _iso(t_s: int) -> str:
    return np.datetime64(int(t_s), "s").astype(str) + "Z"
