"""A cube's store replaced or extended all at once, or not at all.

The pipeline writes into a staging store beside the cube
(``<cube>.tmp-<hex>``). A new cube then takes the cube's name
(``commit_new``: locally one rename of the folder, the previous cube moved
aside first and removed after). An append (``commit_append``) moves the
staged chunk files into the cube under their new time indices (files no
existing chunk has: nothing written is rewritten), then grows the arrays
and the ``time`` coordinate and consolidates the metadata; if any step
fails the metadata files are written back as they were and the moved chunks
removed, so the cube reads as before; chunk files a killed append left at
the new indices are removed first, and a lock file (``.append-lock``, local
cubes) keeps two appends from committing at once. On ``gs://`` a new cube
is copied object by object (Cloud Storage has no folder rename), the old one
moved aside first and put back if the copy fails.
"""

from __future__ import annotations

import os
import posixpath
import re
import shutil
import uuid
from typing import Dict, List, Sequence

import numpy as np

from transforms.dataset import files
from transforms.mapping.cube import VARIABLES, CubeFacts, read_cube

#: a Zarr format 2 chunk file of a (time, y, x) array: "t.i.j"
CHUNK_NAME = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")


def staging_path(output_path: str, token: str = "") -> str:
    """``<output_path>.tmp-<hex>``: where a run writes before its commit."""
    return f"{output_path.rstrip('/')}.tmp-{token or uuid.uuid4().hex[:12]}"


def _join(*parts: str) -> str:
    return posixpath.join(*parts) if "://" in parts[0] else os.path.join(*parts)


def _files(folder: str) -> List[str]:
    """Every file under ``folder`` (recursively)."""
    if "://" not in folder:
        return [os.path.join(root, f) for root, _, names in os.walk(folder) for f in names]
    from apache_beam.io.filesystems import FileSystems

    return [m.path for r in FileSystems.match([folder.rstrip("/") + "/**"])
            for m in r.metadata_list]


def _read(path: str) -> bytes:
    from apache_beam.io.filesystem import CompressionTypes
    from apache_beam.io.filesystems import FileSystems

    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        return f.read()


def remove_store(path: str) -> None:
    """Remove a store (a staging one left by a failure), quietly if absent."""
    if "://" not in path:
        shutil.rmtree(path, ignore_errors=True)
        return
    from apache_beam.io.filesystems import FileSystems

    files = _files(path)
    if files:
        FileSystems.delete(files)


def commit_new(staging: str, output_path: str) -> None:
    """The staged cube becomes ``output_path`` (replacing the cube there).

    Args:
        staging: the staging store.
        output_path: the cube.

    Raises:
        OSError: a rename failed (the previous cube is put back).
    """
    if "://" in output_path:
        aside = f"{output_path.rstrip('/')}.old-{uuid.uuid4().hex[:12]}"
        had = bool(_files(output_path))
        if had:
            _rename_store(output_path, aside)
        try:
            _rename_store(staging, output_path)
        except Exception:
            if had:
                remove_store(output_path)
                _rename_store(aside, output_path)
            raise
        if had:
            remove_store(aside)
        return
    aside = f"{output_path.rstrip(os.sep)}.old-{uuid.uuid4().hex[:12]}"
    had = os.path.exists(output_path)
    if had:
        os.rename(output_path, aside)
    try:
        os.rename(staging, output_path)
    except OSError:
        if had:
            os.rename(aside, output_path)
        raise
    if had:
        shutil.rmtree(aside, ignore_errors=True)


def _rename_store(src: str, dst: str) -> None:
    """Every object of the store ``src`` renamed under ``dst`` (``gs://``)."""
    from apache_beam.io.filesystems import FileSystems

    sources = _files(src)
    FileSystems.rename(sources, [dst.rstrip("/") + s[len(src.rstrip("/")):] for s in sources])


def _metadata_files(cube: str) -> List[str]:
    """The files an append rewrites: every ``.z*`` metadata file and the
    ``time`` coordinate's chunks."""
    return [p for p in _files(cube)
            if posixpath.basename(p.replace(os.sep, "/")).startswith(".z")
            or posixpath.basename(posixpath.dirname(p.replace(os.sep, "/"))) == "time"]


def commit_append(staging: str, cube: str, before: CubeFacts, times: Sequence[np.datetime64],
                  attrs: Dict[str, str]) -> None:
    """Add the staged times to ``cube`` after its own.

    Args:
        staging: a store holding only the new times (indices from 0).
        cube: the cube.
        before: the cube's facts when the run was checked (a cube changed
            since is refused).
        times: the new times, in order.
        attrs: global attributes to set (the ``scenes`` list, versions).

    Raises:
        CubeError: the cube changed since it was checked, or another append
            holds its lock.
        Exception: whatever failed, after the cube is put back as it was.
    """
    from transforms.mapping.cube import CubeError

    with _append_lock(cube):
        now = read_cube(cube)
        if now.times != before.times or now.grid != before.grid:
            raise CubeError(f"{cube} changed while the new times were mapped (another "
                            f"--append?); nothing was appended")
        _commit_append(staging, cube, before, times, attrs)
    remove_store(staging)


#: the file an append holds while it commits (another append is refused)
LOCK_NAME = ".append-lock"


class _append_lock:
    """``cube/.append-lock``, created exclusively for the commit (local cubes;
    Cloud Storage has no exclusive create: there, appends must not overlap)."""

    def __init__(self, cube: str):
        self.path = _join(cube, LOCK_NAME)

    def __enter__(self):
        from transforms.mapping.cube import CubeError

        if "://" in self.path:
            return self
        try:
            os.close(os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            raise CubeError(f"another --append is committing to the cube ({self.path} exists); "
                            f"run this one again after it (if none is running, a killed one "
                            f"left that file: remove it)") from None
        return self

    def __exit__(self, *exc):
        if "://" not in self.path:
            _quietly_delete(self.path)
        return False


def _commit_append(staging: str, cube: str, before: CubeFacts, times: Sequence[np.datetime64],
                   attrs: Dict[str, str]) -> None:
    """``commit_append`` under the lock, the cube checked unchanged."""
    import zarr

    offset = len(before.times)
    # chunks at the new indices a killed append left: NaN chunks are not written, so a
    # stale one would show through
    for name in VARIABLES:
        for path in _files(_join(cube, name)):
            found = CHUNK_NAME.match(posixpath.basename(path.replace(os.sep, "/")))
            if found and int(found.group(1)) >= offset:
                _quietly_delete(path)
    saved = {p: _read(p) for p in _metadata_files(cube)}
    moved: List[str] = []
    try:
        for name in VARIABLES:
            for path in _files(_join(staging, name)):
                found = CHUNK_NAME.match(posixpath.basename(path.replace(os.sep, "/")))
                if not found:
                    continue
                t, i, j = (int(v) for v in found.groups())
                target = _join(cube, name, f"{t + offset}.{i}.{j}")
                files.replace_file(path, target)
                moved.append(target)
        # the arrays' own metadata, not the consolidated copy (which this rewrites)
        group = zarr.open_group(cube, mode="r+", zarr_format=2, use_consolidated=False)
        total = offset + len(times)
        for name in VARIABLES:
            group[name].resize((total, before.grid.rows, before.grid.cols))
        clock = group["time"]
        clock.resize((total,))
        clock[offset:] = np.array([np.datetime64(t, "s") for t in times]).astype(np.int64)
        group.attrs.update(attrs)
        consolidate(cube)
    except BaseException:
        for path in moved:
            _quietly_delete(path)
        for path in _metadata_files(cube):
            if path not in saved:
                _quietly_delete(path)
        for path, data in saved.items():
            files.write_bytes_atomically(path, data)
        raise


def consolidate(cube: str) -> None:
    """Rewrite the cube's consolidated metadata (``.zmetadata``) from its arrays'."""
    import zarr

    zarr.consolidate_metadata(cube, zarr_format=2)


def _quietly_delete(path: str) -> None:
    """Delete ``path`` if it is there, ignoring a failure (cleaning up after one)."""
    try:
        files.remove_outputs([path])
    except OSError:
        pass
