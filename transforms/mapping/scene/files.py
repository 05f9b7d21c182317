"""The files of a scene: listing a folder (literally: its name is never a
pattern), refusing what is not a regular file, opening through GDAL, and
the one-line error a failed read gives.
"""

from __future__ import annotations

import json
import os
import posixpath
import stat
from typing import List

from apache_beam.io.filesystems import FileSystems

from transforms.runtime.errors import UsageError

SUFFIXES = (".tif", ".tiff")

#: GDAL's limits for a raster read over HTTP(S) (a STAC asset's href), unless
#: the environment sets its own: without them a server that never answers
#: holds a read for as long as the server keeps the connection open
for _option, _seconds in (("GDAL_HTTP_CONNECTTIMEOUT", "10"), ("GDAL_HTTP_TIMEOUT", "120")):
    os.environ.setdefault(_option, _seconds)


class SceneError(Exception):
    """A scene that cannot be mapped, with the file or band at fault."""


def rasterio_path(path: str) -> str:
    """A path rasterio opens (``gs://`` through GDAL's ``/vsigs/``)."""
    return "/vsigs/" + path[len("gs://"):] if path.startswith("gs://") else path


def read_failure(path: str, error: BaseException, what: str = "") -> SceneError:
    """A ``SceneError`` of one line naming ``path`` for a failed read.

    Args:
        path: the file.
        error: the reader's exception (with its causes' messages: rasterio's
            own may be ``See previous exception``).
        what: what was read (e.g. ``band 1, rows 0-256``), or empty.

    Returns:
        The error, to raise ``from error``.
    """
    messages, seen = [], error
    while seen is not None and len(messages) < 4:
        text = " ".join(str(seen).split())
        if text and text not in messages and "previous exception" not in text:
            messages.append(text)
        seen = seen.__cause__ or seen.__context__
    where = f" ({what})" if what else ""
    return SceneError(f"{path} cannot be read{where}: {'; '.join(messages) or type(error).__name__}"
                      f" (a truncated or corrupt GeoTIFF?)")


def read_flag_file(flag: str, path: str) -> str:
    """The text of a small file a flag names (``--encoding``, ``--band_map``),
    local or ``gs://``, a byte-order mark dropped.

    Args:
        flag: the flag, for the error.
        path: the file.

    Returns:
        Its text.

    Raises:
        UsageError: naming the flag and file: it cannot be read, or is not UTF-8.
    """
    try:
        with FileSystems.open(path, compression_type="uncompressed") as f:
            return f.read().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UsageError(f"{flag} {path} is not a UTF-8 text file") from None
    except Exception as e:  # FileSystems wraps every failure in its own errors
        raise UsageError(f"{flag} {path} cannot be read: "
                         f"{' '.join(str(e).split())[:200]}") from None


def strict_json(flag: str, path: str, text: str):
    """A flag's JSON file's content, an object's key given twice refused
    (``json`` would keep the last silently).

    Raises:
        UsageError: naming the flag and file: not JSON, a key given twice.
    """
    def pairs(items):
        seen = {}
        for key, value in items:
            if key in seen:
                raise UsageError(f"{flag} {path}: the key {key!r} is given twice")
            seen[key] = value
        return seen

    try:
        return json.loads(text, object_pairs_hook=pairs)
    except json.JSONDecodeError as e:
        raise UsageError(f"{flag} {path} is not JSON: {e}") from None


def files_in(folder: str) -> List[str]:
    """The files directly in ``folder`` through Beam's ``FileSystems`` (for
    ``gs://``), the path taken literally: its glob characters (``[ ] * ?``)
    matched by ``?``, then only the folder's own files kept.

    Args:
        folder: a folder path or URL.

    Returns:
        The paths, in the order ``FileSystems.match`` gives them.
    """
    folder = folder.rstrip("/")
    pattern = FileSystems.join("".join("?" if c in "[]*?" else c for c in folder), "*")
    return [m.path for m in FileSystems.match([pattern])[0].metadata_list
            if posixpath.dirname(m.path) == folder]


def subfolders_in(folder: str) -> List[str]:
    """The folders directly in ``folder`` (``gs://``: the first path part of
    every object below it), sorted.

    Args:
        folder: a folder path or URL.

    Returns:
        Their paths.
    """
    folder = folder.rstrip("/")
    if "://" not in folder:
        return sorted(os.path.join(folder, n) for n in os.listdir(folder)
                      if os.path.isdir(os.path.join(folder, n)))
    pattern = FileSystems.join("".join("?" if c in "[]*?" else c for c in folder), "**")
    found = set()
    for m in FileSystems.match([pattern])[0].metadata_list:
        rest = m.path[len(folder) + 1:]
        if "/" in rest:
            found.add(f"{folder}/{rest.split('/')[0]}")
    return sorted(found)


def check_regular(path: str) -> None:
    """SceneError unless ``path`` is a regular file (a link to a missing
    file, a folder, a FIFO, a socket or a device is named)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        if os.path.islink(path):
            raise SceneError(f"{path} is a link to a missing file ({os.readlink(path)})") from None
        raise SceneError(f"{path} disappeared while the scene was read") from None
    except OSError as e:
        raise SceneError(f"{path} cannot be read: {e.strerror}") from None
    if not stat.S_ISREG(mode):
        kind = ("a folder" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode)
                else "a socket" if stat.S_ISSOCK(mode) else "a device")
        raise SceneError(f"{path} is {kind}, not a regular file: a scene's *.tif are GeoTIFF "
                         f"files")


def geotiffs_in(folder: str, what: str = "the scene folder") -> List[str]:
    """The GeoTIFFs (``*.tif``, ``*.tiff``) directly in a folder, sorted by
    name; the path is literal (no glob).

    Args:
        folder: the folder (local or ``gs://``).
        what: how the error names the folder.

    Returns:
        Their paths (maybe none).

    Raises:
        SceneError: the folder cannot be listed, or a file so named is not a
            regular file (a link to a missing file, a FIFO, a folder).
    """
    if "://" in folder:
        return sorted(p for p in files_in(folder) if p.lower().endswith(SUFFIXES))
    try:
        names = os.listdir(folder)
    except OSError as e:
        raise SceneError(f"{what} {folder} cannot be listed: {e.strerror}") from None
    found = [os.path.join(folder, n) for n in sorted(names) if n.lower().endswith(SUFFIXES)]
    for path in found:
        check_regular(path)
    return found
