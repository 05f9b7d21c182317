"""ISMN downloads as files: listing them, reading one sensor's readings, provenance.

The I/O half of the ISMN ground floor (the names and the window rule are
``listing`` and ``window``), used by the label merge:

* ``list_data_files``: the ``.stm`` data files of a download (zip or
  extracted folder, local or ``gs://``), from one listing, no file reads.
* ``read_readings``: one data file parsed by ``ismn.filehandlers.DataFile``
  (both CEOP and header+values), copied to local temporary storage first when
  it sits in a zip or on ``gs://``; ``read_located_readings`` also gives
  the station's latitude and longitude from the same file's metadata (a
  map's validation).
* ``provenance``: what identifies the ISMN snapshot a merge used.

Decisions (the reference is silent on them):

* Zip members whose normalised path is absolute or climbs out of the archive
  (``..``) are ignored with a warning and never read; files are copied to
  local temporary storage under names the project makes, never under the
  member's path.
* A data file with a line whose value is not a number is unreadable as a
  whole (the ``ismn`` package would return it as text): the examples that
  need it are lookup failures naming the file and the line.
"""

from __future__ import annotations

import logging
import os
import posixpath
import shutil
import tempfile
import zipfile
from typing import Callable, Dict, List, NamedTuple, Optional, Tuple

import numpy as np
import pandas as pd
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from transforms.insitu.listing import IsmnDataError, is_safe_member
from transforms.insitu.window import Readings

_LOG = logging.getLogger(__name__)


class OpenArchive:
    """An ISMN download's zip, opened once and kept open across the files a
    worker reads (``zip_file``: None for a folder); ``close`` in the DoFn's
    teardown.

    Args:
        ismn_path: the download, a zip or a folder (local or ``gs://``).
    """

    def __init__(self, ismn_path: str):
        self.ismn_path = ismn_path
        self._zip = self._stream = None

    def zip_file(self) -> Optional[zipfile.ZipFile]:
        """The open zip, or None when the download is a folder."""
        if is_zip(self.ismn_path) and self._zip is None:
            self._stream = FileSystems.open(self.ismn_path,
                                            compression_type=CompressionTypes.UNCOMPRESSED)
            self._zip = zipfile.ZipFile(self._stream)
        return self._zip

    def close(self) -> None:
        for closer in (self._zip, self._stream):
            if closer is not None:
                closer.close()
        self._zip = self._stream = None


def is_zip(ismn_path: str) -> bool:
    return ismn_path.lower().endswith(".zip")


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


# --------------------------------------------------------------------------
# Readings

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
    return _parse(ismn_path, rel_path, zip_file, temp_root).readings


class LocatedReadings(NamedTuple):
    """One sensor file's readings and where its station is.

    Attributes:
        latitude, longitude: the station's, degrees (EPSG:4326), as the
            ``ismn`` package reads them from the file.
        readings: the file's readings; None when ``read_located_readings``
            was told the place is not wanted (its readings then not parsed).
    """

    latitude: float
    longitude: float
    readings: Optional[Readings]


def read_located_readings(ismn_path: str, rel_path: str,
                          zip_file: Optional[zipfile.ZipFile] = None,
                          temp_root: Optional[str] = None,
                          wanted: Optional[Callable[[float, float], bool]] = None
                          ) -> LocatedReadings:
    """``read_readings`` and the station's latitude and longitude from the
    ``ismn`` package's metadata of the same file, copied and opened once.

    Args:
        ismn_path, rel_path, zip_file, temp_root: as ``read_readings``.
        wanted: ``wanted(latitude, longitude)``; when it says False the
            readings are not parsed (None). Default: always parsed.

    Returns:
        The ``LocatedReadings``.

    Raises:
        IsmnDataError: as ``read_readings``.
    """
    return _parse(ismn_path, rel_path, zip_file, temp_root, wanted)


def _parse(ismn_path: str, rel_path: str, zip_file: Optional[zipfile.ZipFile],
           temp_root: Optional[str],
           wanted: Optional[Callable[[float, float], bool]] = None) -> LocatedReadings:
    from ismn.base import IsmnRoot
    from ismn.filehandlers import DataFile

    where = f"{ismn_path}:{rel_path}" if is_zip(ismn_path) else posixpath.join(ismn_path, rel_path)
    with tempfile.TemporaryDirectory(prefix="ismn-", dir=temp_root) as tmp:
        data_file = None
        try:
            root_dir, rel = _materialise(ismn_path, rel_path, tmp, zip_file)
            data_file = DataFile(IsmnRoot(root_dir), rel, temp_root=tmp)
            lat, lon = (float(data_file.metadata[k].val) for k in ("latitude", "longitude"))
            if wanted is not None and not wanted(lat, lon):
                return LocatedReadings(lat, lon, None)
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
    return LocatedReadings(lat, lon, Readings(times, values, flags))


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
