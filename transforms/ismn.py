"""ISMN downloads: the file catalog, the released matching rules, reading readings.

Plain functions, used by the merge's DoFns (``transforms.merge``):

* ``list_data_files`` / ``parse_file_name`` / ``build_catalog``: which
  networks, stations and sensors an ISMN download (zip or extracted folder,
  local or ``gs://``) holds, from its file names alone (one listing, no file
  reads). Names follow the ``ismn`` package: a sensor is
  ``<instrument>_<variable>_<depth_from:.6f>_<depth_to:.6f>``, the network is
  the top folder, the station the third ``_`` part of the file name.
* ``resolve_station`` / ``resolve_sensor``: the released script's rules.
* ``read_readings``: one data file parsed by ``ismn.filehandlers.DataFile``
  (both CEOP and header+values), copied to local temporary storage first when
  it sits in a zip or on ``gs://``.
* ``match_readings``: the +-tolerance window rule on one sensor's readings.

Decisions (the reference is silent on them):

* Stations and sensors are considered in sorted order (the ``ismn`` package
  sorts stations by name; its sensor order is file-scan order, which we make
  deterministic by sorting sensor names). When several ISMN files give the
  same sensor name, the first path in sorted order is used, as the ``ismn``
  package keeps the first it meets and warns about the rest.
* "Every part occurs in the station name, or in it with ``-`` removed" is
  applied per part.
* The example's timestamp is truncated to whole milliseconds, then to whole
  seconds (floor), and readings ``t`` with ``ts - tol <= t <= ts + tol`` match.
"""

from __future__ import annotations

import dataclasses
import math
import os
import posixpath
import shutil
import tempfile
import zipfile
from typing import Dict, Iterable, List, Optional, Tuple

import numpy as np
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

SENSOR_DEPTH_TOKEN = "0.05"
SENSOR_VARIABLE_TOKEN = "soil_moisture"


class IsmnDataError(Exception):
    """An ISMN file or archive could not be used; the message names it."""


@dataclasses.dataclass(frozen=True, order=True)
class IsmnFile:
    """One ``.stm`` data file of an ISMN download, described by its name."""

    network: str
    station: str
    sensor: str  # the ismn package's sensor name
    path: str  # relative to the archive root, '/'-separated

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
    return IsmnFile(network=parts[-3], station=elems[2], sensor=sensor, path="/".join(parts[-3:]))


def is_zip(ismn_path: str) -> bool:
    return ismn_path.lower().endswith(".zip")


def list_data_files(ismn_path: str) -> List[str]:
    """Relative paths of every ``.stm`` file of a download (zip or folder).

    Raises IsmnDataError when the path does not exist or is not a zip.
    """
    if is_zip(ismn_path):
        if not FileSystems.exists(ismn_path):
            raise IsmnDataError(f"ISMN archive not found: {ismn_path}")
        try:
            with FileSystems.open(ismn_path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
                with zipfile.ZipFile(f) as z:
                    names = z.namelist()
        except zipfile.BadZipFile as e:
            raise IsmnDataError(f"ISMN archive {ismn_path} is not a readable zip: {e}") from e
        return sorted(n for n in names if n.endswith(".stm"))
    root = ismn_path.rstrip("/")
    pattern = FileSystems.join(root, "*", "*", "*.stm")
    matches = FileSystems.match([pattern])[0].metadata_list
    if not matches and not FileSystems.exists(root):
        raise IsmnDataError(f"ISMN folder not found: {ismn_path}")
    return sorted(m.path[len(root):].lstrip("/\\").replace("\\", "/") for m in matches)


@dataclasses.dataclass
class Catalog:
    """Networks -> stations -> sensors of a download, and each sensor's file."""

    stations: Dict[str, Dict[str, List[str]]]  # network -> station -> sorted sensors
    files: Dict[Tuple[str, str, str], str]  # (network, station, sensor) -> path
    duplicate_files: List[str]  # files ignored because their sensor name repeats
    bad_names: List[str]  # files whose names do not parse

    def networks(self) -> List[str]:
        return sorted(self.stations)


def build_catalog(paths: Iterable[str]) -> Catalog:
    stations: Dict[str, Dict[str, List[str]]] = {}
    files: Dict[Tuple[str, str, str], str] = {}
    duplicates, bad = [], []
    for path in sorted(paths):
        try:
            f = parse_file_name(path)
        except IsmnDataError:
            bad.append(path)
            continue
        if f.key in files:
            duplicates.append(path)
            continue
        files[f.key] = f.path
        stations.setdefault(f.network, {}).setdefault(f.station, []).append(f.sensor)
    for by_station in stations.values():
        for sensors in by_station.values():
            sensors.sort()
    return Catalog(stations, files, duplicates, bad)


# --------------------------------------------------------------------------
# The released matching rules

def station_matches(id_station: str, ismn_station: str) -> bool:
    """Every ``_`` part of ``id_station`` occurs in ``ismn_station`` or in it with ``-`` removed."""
    undashed = ismn_station.replace("-", "")
    return all(p in ismn_station or p in undashed for p in id_station.split("_"))


def resolve_station(id_station: str, candidates: Iterable[str]) -> List[str]:
    """All ISMN stations matching ``id_station``, sorted; the first is the one used."""
    return [s for s in sorted(candidates) if station_matches(id_station, s)]


def resolve_sensor(sensors: Iterable[str]) -> Optional[str]:
    """The first sensor (sorted) whose name contains ``0.05`` and ``soil_moisture``."""
    for s in sorted(sensors):
        if SENSOR_DEPTH_TOKEN in s and SENSOR_VARIABLE_TOKEN in s:
            return s
    return None


# --------------------------------------------------------------------------
# Readings

@dataclasses.dataclass
class Readings:
    """One sensor's readings, sorted by time."""

    times: np.ndarray  # int64 Unix seconds
    values: np.ndarray  # float64
    flags: List[str]

    def __len__(self) -> int:
        return len(self.times)


def _materialise(ismn_path: str, rel_path: str, tmp: str, zip_file=None) -> Tuple[str, str]:
    """A local (root, rel_path) the ismn package can read the file from."""
    if not is_zip(ismn_path) and "://" not in ismn_path:
        return ismn_path, rel_path  # a local folder: read in place
    target = os.path.join(tmp, *rel_path.split("/"))
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if zip_file is not None:
        with zip_file.open(rel_path) as src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst)
    else:
        src_path = FileSystems.join(ismn_path.rstrip("/"), *rel_path.split("/"))
        with FileSystems.open(src_path, compression_type=CompressionTypes.UNCOMPRESSED) as src, \
                open(target, "wb") as dst:
            shutil.copyfileobj(src, dst)
    return tmp, rel_path


def read_readings(ismn_path: str, rel_path: str, zip_file: Optional[zipfile.ZipFile] = None,
                  temp_root: Optional[str] = None) -> Readings:
    """Parse one ISMN data file with ``ismn.filehandlers.DataFile``.

    ``zip_file`` is an open ``ZipFile`` of ``ismn_path`` when it is a zip (kept
    open by the caller across files). Raises IsmnDataError naming the file.
    """
    from ismn.base import IsmnRoot
    from ismn.filehandlers import DataFile

    where = f"{ismn_path}:{rel_path}" if is_zip(ismn_path) else posixpath.join(ismn_path, rel_path)
    with tempfile.TemporaryDirectory(prefix="ismn-", dir=temp_root) as tmp:
        try:
            root_dir, rel = _materialise(ismn_path, rel_path, tmp, zip_file)
            data_file = DataFile(IsmnRoot(root_dir), rel, temp_root=tmp)
            frame = data_file.read_data()
        except Exception as e:  # the ismn package raises many kinds
            msg = str(e).strip().splitlines()
            raise IsmnDataError(f"ISMN file {where} could not be parsed: "
                                f"{type(e).__name__}: {msg[-1] if msg else ''}") from e
    if frame.shape[1] < 2 or len(frame) == 0:
        raise IsmnDataError(f"ISMN file {where} has no readings")
    times = frame.index.values.astype("datetime64[s]").astype(np.int64)
    values = frame.iloc[:, 0].to_numpy(dtype=np.float64)
    flags = [str(f) for f in frame.iloc[:, 1]]
    order = np.argsort(times, kind="stable")
    if (order != np.arange(len(order))).any():
        times, values, flags = times[order], values[order], [flags[i] for i in order]
    return Readings(times, values, flags)


def timestamp_seconds(timestamp_ms: float) -> int:
    """The example's float32 millisecond timestamp as whole Unix seconds."""
    if not math.isfinite(timestamp_ms):
        raise ValueError(f"timestamp {timestamp_ms!r} is not finite")
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
