"""An ISMN download's data files as a catalog, from their names alone, and
the released rule for a station's 0.05 m soil-moisture sensors.

The ground floor that the label merge (``transforms.merge``) and a map's
validation against in-situ sensors both stand on. Names follow the ``ismn``
package: a sensor is ``<instrument>_<variable>_<depth_from:.6f>_<depth_to:.6f>``,
the network is the top folder, the station the third ``_`` part of the file
name (``LAYOUT``).

Decisions (the released script is silent on them): sensors are considered
in the order the ``ismn`` package lists them (for a zip, the order of the
files in the archive; for an extracted folder, sorted path order). When
several ISMN files give the same sensor name, the first in that order is
used, as the ``ismn`` package keeps the first it meets and warns about the
rest.
"""

from __future__ import annotations

import dataclasses
import posixpath
from typing import Dict, Iterable, List, Optional, Tuple


class IsmnDataError(Exception):
    """An ISMN file or archive could not be used; the message names it."""


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


def resolve_sensor(sensors: Iterable[str]) -> Optional[str]:
    """The first sensor, in the given order, whose name contains ``0.05`` and
    ``soil_moisture`` (the released rule)."""
    return next(iter(depth_sensors(sensors)), None)


def depth_sensors(sensors: Iterable[str]) -> List[str]:
    """The sensors the released rule accepts, in order."""
    return [s for s in sensors if SENSOR_DEPTH_TOKEN in s and SENSOR_VARIABLE_TOKEN in s]
