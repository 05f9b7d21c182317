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

* Stations are considered in sorted order (the ``ismn`` package sorts them
  by network and station name). Sensors are considered in the order the
  ``ismn`` package lists them: for a zip, the order of the files in the
  archive (as the released script sees them); for an extracted folder, where
  the package's order depends on the file system, in sorted path order. When several ISMN files give
  the same sensor name, the first in that order is used, as the ``ismn``
  package keeps the first it meets and warns about the rest.
* "Every part occurs in the station name, or in it with ``-`` removed" is
  applied per part.
* The example's timestamp is truncated to whole milliseconds, then to whole
  seconds (floor), and readings ``t`` with ``ts - tol <= t <= ts + tol`` match.
  A timestamp outside years 1-9999 is malformed.
* Zip members whose normalised path is absolute or climbs out of the archive
  (``..``) are ignored with a warning and never read; files are copied to
  local temporary storage under names the project makes, never under the
  member's path.
* A data file with a line whose value is not a number is unreadable as a
  whole (the ``ismn`` package would return it as text): the examples that
  need it are lookup failures naming the file and the line.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import posixpath
import shutil
import tempfile
import zipfile
from typing import Dict, Iterable, List, Optional, Tuple

import numpy as np
import pandas as pd
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

_LOG = logging.getLogger(__name__)
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


def is_zip(ismn_path: str) -> bool:
    return ismn_path.lower().endswith(".zip")


LAYOUT = "NETWORK/STATION/<CSE>_<NETWORK>_<STATION>_<var>_<from>_<to>_<SENSOR>_<start>_<end>.stm"


def is_safe_member(name: str) -> bool:
    """False for a zip member whose path is absolute or climbs out (``..``)."""
    norm = name.replace("\\", "/")
    if norm.startswith("/") or (len(norm) > 1 and norm[1] == ":"):
        return False
    return ".." not in posixpath.normpath(norm).split("/")


def list_data_files(ismn_path: str) -> List[str]:
    """Relative paths of every ``.stm`` file of a download (zip or folder).

    A zip's files come in archive order (the order the ``ismn`` package
    sees), unsafe members (``is_safe_member``) left out with a warning; a
    folder's in sorted order, found at ``NETWORK/STATION/`` or one folder
    deeper. Raises IsmnDataError when the path does not exist or is not a zip.
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
        out = []
        for n in names:
            if not n.endswith(".stm"):
                continue
            if is_safe_member(n):
                out.append(n)
            else:
                _LOG.warning("ISMN archive %s: member %r points outside the archive; ignored",
                             ismn_path, n)
        return out
    root = ismn_path.rstrip("/")
    if not FileSystems.exists(root):
        raise IsmnDataError(f"ISMN folder not found: {ismn_path}")
    for depth in (("*", "*"), ("*", "*", "*")):  # NETWORK/STATION, or one folder above
        matches = FileSystems.match([FileSystems.join(root, *depth, "*.stm")])[0].metadata_list
        if matches:
            return sorted(m.path[len(root):].lstrip("/\\").replace("\\", "/") for m in matches)
    return []


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
    """A local ``(root, rel_path)`` the ismn package can read the file from.

    Files in a zip or on ``gs://`` are copied into ``tmp`` under a name we
    make (``network/station/<file name>``), never under the member's path.
    """
    if not is_zip(ismn_path) and "://" not in ismn_path:
        return ismn_path, rel_path  # a local folder: read in place
    name = posixpath.basename(rel_path.replace("\\", "/"))
    if not is_safe_member(rel_path) or name in ("", ".", ".."):
        raise IsmnDataError(f"{rel_path}: not a file inside the ISMN download")
    local_rel = f"network/station/{name}"
    target = os.path.join(tmp, "network", "station", name)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if is_zip(ismn_path):
        if zip_file is None:  # not kept open by the caller: open it for this file
            with FileSystems.open(ismn_path, compression_type=CompressionTypes.UNCOMPRESSED) as f, \
                    zipfile.ZipFile(f) as z:
                return _materialise(ismn_path, rel_path, tmp, z)
        with zip_file.open(rel_path) as src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst)
    else:
        src_path = FileSystems.join(ismn_path.rstrip("/"), *rel_path.split("/"))
        with FileSystems.open(src_path, compression_type=CompressionTypes.UNCOMPRESSED) as src, \
                open(target, "wb") as dst:
            shutil.copyfileobj(src, dst)
    return tmp, local_rel


def first_bad_line(local_file: str, header_values: bool) -> Optional[Tuple[int, str]]:
    """``(line number, text)`` of the first reading line the ``ismn`` package
    cannot turn into a time and a number, or None.

    CEOP lines hold date, time, ... and the value as their 13th field; a
    header+values file has a header line, then date, time, value, flags.
    """
    value_field, min_fields = (2, 5) if header_values else (12, 15)
    with open(local_file, "rb") as f:
        for number, raw in enumerate(f, start=1):
            if header_values and number == 1:
                continue
            text = raw.decode("utf-8", "replace").rstrip("\r\n")
            fields = text.split()
            if not fields:
                continue
            try:
                if len(fields) < min_fields:
                    raise ValueError("too few fields")
                pd.to_datetime(f"{fields[0]} {fields[1]}", format="%Y/%m/%d %H:%M")
                float(fields[value_field])
            except (ValueError, TypeError):
                return number, text
    return None


def read_readings(ismn_path: str, rel_path: str, zip_file: Optional[zipfile.ZipFile] = None,
                  temp_root: Optional[str] = None) -> Readings:
    """Parse one ISMN data file with ``ismn.filehandlers.DataFile``.

    ``zip_file`` is an open ``ZipFile`` of ``ismn_path`` when it is a zip (kept
    open by the caller across files). Raises IsmnDataError naming the file
    (and the first bad line, when a line is to blame).
    """
    from ismn.base import IsmnRoot
    from ismn.filehandlers import DataFile

    where = f"{ismn_path}:{rel_path}" if is_zip(ismn_path) else posixpath.join(ismn_path, rel_path)
    with tempfile.TemporaryDirectory(prefix="ismn-", dir=temp_root) as tmp:
        data_file = None
        try:
            root_dir, rel = _materialise(ismn_path, rel_path, tmp, zip_file)
            data_file = DataFile(IsmnRoot(root_dir), rel, temp_root=tmp)
            frame = data_file.read_data()
            values = pd.to_numeric(frame.iloc[:, 0], errors="raise").to_numpy(dtype=np.float64)
        except Exception as e:  # the ismn package and pandas raise many kinds
            msg = str(e).strip().splitlines()
            detail = f"{type(e).__name__}: {msg[-1] if msg else ''}"
            bad = None
            if data_file is not None:
                bad = first_bad_line(os.path.join(root_dir, *rel.split("/")),
                                     data_file.file_type == "header_values")
            if bad is not None:
                detail = f"line {bad[0]}: {bad[1]!r} ({detail})"
            raise IsmnDataError(f"ISMN file {where} could not be parsed: {detail}") from e
    if frame.shape[1] < 2 or len(frame) == 0:
        raise IsmnDataError(f"ISMN file {where} has no readings")
    times = frame.index.values.astype("datetime64[s]").astype(np.int64)
    flags = [str(f) for f in frame.iloc[:, 1]]
    order = np.argsort(times, kind="stable")
    if (order != np.arange(len(order))).any():
        times, values, flags = times[order], values[order], [flags[i] for i in order]
    return Readings(times, values, flags)


#: Unix milliseconds of 0001-01-01 and of the end of 9999-12-31: the times a
#: ``datetime`` (and an ISMN reading) can have.
MIN_TIMESTAMP_MS, MAX_TIMESTAMP_MS = -62135596800000, 253402300799999


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


# --------------------------------------------------------------------------
# Provenance

def provenance(ismn_path: str, data_files: int) -> Dict[str, object]:
    """What identifies an ISMN snapshot: size, modification time and a content
    hash (sha256 of a zip; of the sorted ``path<TAB>size`` listing of a
    folder), the number of data files and the ``ismn`` package version."""
    import hashlib
    from importlib import metadata

    out: Dict[str, object] = {"path": ismn_path, "data_files": data_files,
                              "ismn_package_version": metadata.version("ismn")}
    digest = hashlib.sha256()
    if is_zip(ismn_path):
        meta = FileSystems.match([ismn_path])[0].metadata_list[0]
        with FileSystems.open(ismn_path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
            for block in iter(lambda: f.read(8 << 20), b""):
                digest.update(block)
        out.update(kind="zip", size_bytes=meta.size_in_bytes,
                   modified_unix=meta.last_updated_in_seconds, sha256=digest.hexdigest())
        return out
    root = ismn_path.rstrip("/")
    listing = sorted((m.path[len(root):].lstrip("/\\").replace("\\", "/"), m.size_in_bytes,
                      m.last_updated_in_seconds)
                     for m in FileSystems.match([FileSystems.join(root, "**")])[0].metadata_list)
    for rel, size, _ in listing:
        digest.update(f"{rel}\t{size}\n".encode())
    out.update(kind="folder", size_bytes=sum(size for _, size, _ in listing),
               modified_unix=max((t for _, _, t in listing), default=None),
               files=len(listing), sha256_of_listing=digest.hexdigest())
    return out
