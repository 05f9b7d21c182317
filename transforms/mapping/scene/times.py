"""A scene's time, and the scenes a glob names (README: "Maps through time").

A scene stands for one time, as an example's ``timestamp`` does (UTC), found
in this order:

1. its name: ``YYYY-MM-DDTHH:MM`` or ``YYYY-MM-DDTHH:MM:SS`` anywhere in the
   folder's (or STAC file's) name, e.g. ``scene_2021-06-01T10:00``;
2. a folder's GeoTIFFs' ``TIFFTAG_DATETIME`` (``YYYY:MM:DD HH:MM:SS``), or a
   STAC file's items' ``datetime`` (else ``start_datetime``): every file or
   item that has one must give the same time.

No time, or sources that disagree, is a ``SceneError`` naming the scene.
"""

from __future__ import annotations

import datetime
import glob
import os
import posixpath
import re
from typing import List, Optional

import numpy as np

from transforms.mapping.scene.files import SceneError, rasterio_path
from transforms.mapping.scene.reader import is_stac, scene_files

#: a time in a scene's name, not inside a longer number; what may follow it
NAME_TIME = re.compile(r"(?<!\d)(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2})?)(?![\d:])"
                       r"([.,]\d+|[+-]\d{2}:?\d{2}|Z)?")
#: a GeoTIFF's TIFFTAG_DATETIME (TIFF 6.0: "YYYY:MM:DD HH:MM:SS")
TIFF_TIME = re.compile(r"^\s*(\d{4}):(\d{2}):(\d{2})[ T](\d{2}):(\d{2}):(\d{2})\s*$")
GLOB_CHARACTERS = "*?["
HOW = ("name it with its time (e.g. scene_2021-06-01T10:00), or tag its GeoTIFFs' "
       "TIFFTAG_DATETIME, or give its STAC items a datetime")


def is_glob(path: str) -> bool:
    """Whether ``path`` is a glob pattern: it holds ``*``, ``?`` or ``[`` and
    is not an existing local path (a folder named ``site[1]`` is that folder)."""
    return any(c in path for c in GLOB_CHARACTERS) and not (
        "://" not in path and os.path.exists(path))


def expand_scenes(pattern: str) -> List[str]:
    """The scenes a glob names, sorted: the folders and STAC ``.json`` files
    it matches (never a Zarr store: ``is_store``); ``gs://`` patterns through
    Beam's file systems (``.json`` files when the pattern ends ``.json``,
    else the folders holding a matching file).

    Args:
        pattern: e.g. ``scenes/scene_*`` or ``stac/*.json``.

    Returns:
        The scene paths (may be empty).
    """
    if "://" not in pattern:
        return sorted(p.rstrip("/") for p in glob.glob(pattern)
                      if (os.path.isfile(p) and is_stac(p)) or (
                          os.path.isdir(p) and not is_store(p)))
    from apache_beam.io.filesystems import FileSystems

    if is_stac(pattern):
        return sorted(m.path for r in FileSystems.match([pattern]) for m in r.metadata_list)
    matched = FileSystems.match([pattern.rstrip("/") + "/*"])
    return sorted({posixpath.dirname(m.path) for r in matched for m in r.metadata_list})


def is_store(path: str) -> bool:
    """A Zarr store or a run's staging or set-aside copy (``x.zarr``,
    ``x.zarr.tmp-<hex>``, ``x.zarr.old-<hex>``): never a scene."""
    return re.search(r"\.zarr(\.(tmp|old)-[0-9a-f]+)?/?$", path, re.IGNORECASE) is not None


def parse_time(text: str) -> np.datetime64:
    """``YYYY-MM-DDTHH:MM[:SS]`` (optionally ending ``Z``) as UTC seconds.

    Raises:
        ValueError: not such a time.
    """
    text = text.strip()
    core = text[:-1] if text.endswith(("Z", "z")) else text
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?", core):
        raise ValueError(f"{text!r} is not a time like 2021-06-01T10:00[:SS]")
    try:
        return np.datetime64(core, "s")
    except ValueError:
        raise ValueError(f"{text!r} is not a valid time") from None


def time_text(time: np.datetime64) -> str:
    """``2021-06-01T10:00:00Z``."""
    return str(np.datetime64(time, "s")) + "Z"


def scene_time(scene_path: str) -> np.datetime64:
    """The time ``scene_path`` stands for (module docstring's order).

    Args:
        scene_path: a scene folder or STAC file.

    Returns:
        The time, UTC, in seconds.

    Raises:
        SceneError: no time found, a time in the name that is no date, or
            files (items) that disagree, naming the scene.
    """
    name = posixpath.basename(scene_path.rstrip("/"))
    named = list(NAME_TIME.finditer(name))
    if len(named) > 1:
        raise SceneError(f"scene {scene_path}: its name holds {len(named)} times "
                         f"({', '.join(m.group(0) for m in named)}); name it with the one time "
                         f"its map stands for")
    if named:
        text, suffix = named[0].group(1), named[0].group(2) or ""
        if suffix not in ("", "Z"):
            raise SceneError(f"scene {scene_path}: the time in its name ends {suffix!r} (a "
                             f"fraction of a second or a UTC offset): name it in whole "
                             f"seconds, UTC, e.g. {text}")
        try:
            return parse_time(text)
        except ValueError as e:
            raise SceneError(f"scene {scene_path}: its name's time {e}") from None
    found = _item_times(scene_path) if is_stac(scene_path) else _tiff_times(scene_path)
    times = sorted(set(found.values()))
    if not times:
        raise SceneError(f"scene {scene_path} has no time: {HOW}")
    if len(times) > 1:
        first = {}  # one file (item) a time: those that differ are named
        for where, t in found.items():
            first.setdefault(t, where)
        shown = ", ".join(f"{where} {time_text(t)}" for t, where in list(first.items())[:4])
        raise SceneError(f"scene {scene_path}: its {'items' if is_stac(scene_path) else 'files'}"
                         f" give different times ({shown}); name the scene with the time its "
                         f"map stands for, e.g. scene_2021-06-01T10:00")
    return times[0]


def _tiff_times(scene_path: str) -> dict:
    """File -> its ``TIFFTAG_DATETIME``, for the scene's files that have one."""
    import rasterio

    out = {}
    for path in scene_files(scene_path):
        try:
            with rasterio.open(rasterio_path(path)) as ds:
                tag = ds.tags().get("TIFFTAG_DATETIME")
        except rasterio.errors.RasterioError as e:
            raise SceneError(f"scene {scene_path}: {path} cannot be read: {e}") from None
        if tag:
            m = TIFF_TIME.match(tag)
            if not m:
                raise SceneError(f"scene {scene_path}: {path} has TIFFTAG_DATETIME {tag!r}, "
                                 f"not YYYY:MM:DD HH:MM:SS")
            try:
                out[posixpath.basename(path)] = np.datetime64(
                    "{}-{}-{}T{}:{}:{}".format(*m.groups()), "s")
            except ValueError:
                raise SceneError(f"scene {scene_path}: {path} has TIFFTAG_DATETIME {tag!r}, "
                                 f"which is no date") from None
    return out


def _item_times(scene_path: str) -> dict:
    """Item id -> its ``datetime`` (else ``start_datetime``), UTC seconds."""
    from transforms.mapping.scene.stac import load_items

    out = {}
    for item in load_items(scene_path):
        when = item.datetime or _start(item)
        if when is not None:
            if when.tzinfo is not None:
                when = when.astimezone(datetime.timezone.utc).replace(tzinfo=None)
            out[f"item {item.id}"] = np.datetime64(when.replace(microsecond=0), "s")
    return out


def _start(item) -> Optional[object]:
    from pystac.utils import str_to_datetime

    text = item.properties.get("start_datetime")
    return str_to_datetime(text) if text else None
