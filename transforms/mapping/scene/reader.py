"""A scene: where each of the model's 16 bands is and how it reaches the
map's grid (README: "Map your own scene").

A scene is a folder: its ``*.tif``/``*.tiff`` files and its band folders
(a folder named after a band, its GeoTIFFs mosaicked in name order); or a
static STAC ItemCollection or Catalog (``stac``). The folder's path is
literal (``site[1]`` is that folder, never a pattern). Which band a file
holds: ``bands``. The map's grid is that of ``grid_like`` (a band held in
one file, or any GeoTIFF), north-up; every band not on it is resampled onto
it (``sources``), ``smap_sm`` and ``gldas_sm`` looked up at each window's
centre. Only metadata is read here.
"""

from __future__ import annotations

import dataclasses
import math
import os
import posixpath
import warnings
from typing import Dict, List, Optional, Tuple

from transforms.mapping.scene.bands import (ALL_BANDS, AUX_BANDS, IMAGE_BANDS, SourceFile,
                                            band_names, orientation_problem, source_file)
from transforms.mapping.scene.encoding import Encoding
from transforms.mapping.scene.files import SceneError, geotiffs_in, rasterio_path, subfolders_in
from transforms.mapping.scene.grids import (Grid, crs_name, extent, extent_in, grid_difference,
                                            grid_of, pixel_size_text)
from transforms.mapping.scene.sources import BandSource

#: the band whose grid the map takes unless ``--grid_like`` says otherwise
DEFAULT_GRID_LIKE = "sentinel_1_VV"


@dataclasses.dataclass(frozen=True)
class Scene:
    """Where each band of a scene is, and the map's grid.

    Attributes:
        path: the scene folder or STAC file.
        bands: the 14 image bands (``IMAGE_BANDS``) by name.
        aux: ``smap_sm`` and ``gldas_sm`` by name.
        grid: the map's grid (``grid_like``'s).
        grid_like: the band or GeoTIFF the grid is taken from.
    """

    path: str
    bands: Dict[str, BandSource]
    aux: Dict[str, BandSource]
    grid: Grid
    grid_like: str = DEFAULT_GRID_LIKE

    def resampled(self) -> List[str]:
        """The image bands not on the map's grid, in the model's order."""
        return [n for n in IMAGE_BANDS if not self.bands[n].on_grid]

    def encodings(self) -> Dict[str, Dict[str, float]]:
        """The encodings used, by band (``Encoding.as_dict``)."""
        return {n: b.encoding.as_dict() for n, b in {**self.bands, **self.aux}.items()
                if b.encoding is not None}


def is_stac(scene_path: str) -> bool:
    """Whether ``scene_path`` names a STAC file (``.json``) rather than a folder."""
    return scene_path.lower().endswith(".json")


def folder_files(scene_path: str) -> List[Tuple[str, str]]:
    """``(path, band folder or "")`` of every GeoTIFF of a scene folder: its
    own (sorted) and those of its band folders (sorted by band, then name).

    Raises:
        SceneError: there is none, the folder cannot be listed, a file is
            not a regular file, a band folder holds no GeoTIFF.
    """
    found = [(p, "") for p in geotiffs_in(scene_path)]
    if "://" in scene_path or os.path.isdir(scene_path):
        for folder in subfolders_in(scene_path):
            band = posixpath.basename(folder.rstrip("/"))
            if band in ALL_BANDS:
                inside = geotiffs_in(folder, "the band folder")
                if not inside:
                    raise SceneError(f"the band folder {folder} holds no GeoTIFF (*.tif)")
                for path in inside:
                    stem = posixpath.splitext(posixpath.basename(path))[0]
                    if stem in ALL_BANDS and stem != band:
                        raise SceneError(f"{path} is named for band {stem} but lies in the "
                                         f"folder of band {band}: which it holds cannot be told")
                found += [(p, band) for p in inside]
    if not found:
        raise SceneError(f"no GeoTIFF (*.tif) in the scene folder {scene_path}")
    return found


def scene_files(scene_path: str) -> List[str]:
    """Every raster file a scene reads (a STAC file: it and every file its
    assets name, band or not: which are bands may take a band map).

    Raises:
        SceneError: see ``folder_files`` (a STAC file: ``stac.stac_files``).
    """
    if is_stac(scene_path):
        from transforms.mapping.scene.stac import stac_files

        return stac_files(scene_path)
    return [p for p, _ in folder_files(scene_path)]


def _open(path: str):
    import rasterio

    with warnings.catch_warnings():  # no geotransform: refused by name
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        return rasterio.open(rasterio_path(path))


def _sources(listed: List[Tuple[str, str]], encoding: Dict[str, Encoding],
             raw: bool) -> Dict[str, List[SourceFile]]:
    """Each band's files, checked, in order (a band in the scene folder
    itself is one file; a band folder's or STAC's, one or more); ``raw``:
    every band may hold floats (read as they are, never encoded)."""
    import rasterio

    found: Dict[str, List[SourceFile]] = {}
    alone: Dict[str, bool] = {}
    stored: Dict[str, Tuple[float, float, str]] = {}  # declared scale, offset, value kind
    for path, folder_band in listed:
        try:
            with _open(path) as ds:
                for index, name in band_names(path, ds, folder_band):
                    source = source_file(path, ds, index, name, raw or name in encoding)
                    if name in found and (alone[name] or not folder_band):
                        raise SceneError(f"{path}: band {name} is also in "
                                         f"{found[name][0].path}")
                    how = (ds.scales[index - 1], ds.offsets[index - 1],
                           "floats" if source.dtype.startswith("float") else "integers")
                    if stored.setdefault(name, how) != how:
                        raise SceneError(
                            f"{path}: band {name} stores {how[2]} with scale {how[0]:g} and "
                            f"offset {how[1]:g} but {found[name][0].path} "
                            f"{stored[name][2]} with scale {stored[name][0]:g} and offset "
                            f"{stored[name][1]:g}: one band's files must store its values "
                            f"alike (one encoding applies to all)")
                    found.setdefault(name, []).append(source)
                    alone[name] = not folder_band
        except rasterio.errors.RasterioError as e:
            raise SceneError(f"{path} is not a readable GeoTIFF: {' '.join(str(e).split())}") \
                from e
    return found


def map_grid(grid_like: str, found: Dict[str, List[SourceFile]]) -> Grid:
    """The grid of ``grid_like``: a band held in one file, or a GeoTIFF.

    Raises:
        SceneError: a band of several files, a GeoTIFF that cannot be read
            or has no CRS or geotransform, a grid that is not north-up.
    """
    import rasterio
    from affine import Affine

    if grid_like in ALL_BANDS:
        files = found[grid_like]
        if len(files) != 1:
            raise SceneError(f"--grid_like {grid_like}: the band is mosaicked from "
                             f"{len(files)} files, so it has no one grid: give a band held in "
                             f"one file, or a GeoTIFF on the grid wanted")
        grid, where = files[0].grid, f"{grid_like} ({files[0].path})"
    else:
        try:
            with _open(grid_like) as ds:
                grid = grid_of(ds)
        except rasterio.errors.RasterioError as e:
            raise SceneError(f"--grid_like {grid_like} is not a readable GeoTIFF: "
                             f"{' '.join(str(e).split())}") from e
        if not grid.crs or Affine(*grid.transform).is_identity:
            raise SceneError(f"--grid_like {grid_like} has no CRS or no geotransform")
        where = grid_like
    problem = orientation_problem(grid)
    if problem:
        raise SceneError(f"the map's grid, {where}, is {problem}")
    return grid


def _overlaps(source: SourceFile, grid: Grid) -> bool:
    """Whether ``source``'s file may cover part of the map's ``grid``
    (bounding boxes in the file's CRS, a global geographic raster counted
    as covering all longitudes; False when the map's grid has no place in
    the file's CRS)."""
    try:
        bounds = extent_in(grid, source.grid.crs)
    except Exception:  # pyproj: no place for the grid in that CRS
        return False
    if not all(math.isfinite(v) for v in bounds):
        return False
    west, south, east, north = extent(source.grid)
    if east - west >= 359:  # a global geographic raster: longitudes wrap
        west, east = -math.inf, math.inf
    return not (bounds[2] < west or bounds[0] > east or bounds[3] < south or bounds[1] > north)


def check_overlaps(bands: Dict[str, BandSource], grid: Grid, grid_like: str) -> None:
    """SceneError naming each image band none of whose files reaches the
    map's grid (another place, or a wrong CRS): every map pixel would be NaN
    (SMAP and GLDAS off the grid are counted by cause, as ever)."""
    away = [n for n, b in bands.items() if n in IMAGE_BANDS and not b.on_grid
            and not any(_overlaps(f, grid) for f in b.files)]
    if away:
        first = bands[away[0]].files[0]
        raise SceneError(
            f"{', '.join(away)} do{'es' if len(away) == 1 else ''} not reach the map's grid "
            f"({grid_like}, {crs_name(grid.crs)}): e.g. {first.path} in "
            f"{crs_name(first.grid.crs)} lies elsewhere (another place, or a wrong CRS)")


def read_scene(scene_path: str, grid_like: str = DEFAULT_GRID_LIKE,
               encoding: Optional[Dict[str, Encoding]] = None, resampling: str = "nearest",
               band_map: Optional[Dict[str, str]] = None, raw: bool = False,
               items: Optional[list] = None) -> Scene:
    """The scene in ``scene_path``: every band found and checked.

    Args:
        scene_path: the scene folder (local or ``gs://``; literal), or a
            STAC ItemCollection or Catalog (``.json``).
        grid_like: a band (held in one file) or a GeoTIFF path whose grid
            the map takes.
        encoding: the bands' encodings (``encoding.read_encoding``), or None.
        resampling: ``nearest`` or ``bilinear``, for bands not on the grid.
        band_map: for a STAC scene, asset key -> band name (None: assets
            are bands by their key).
        raw: read every band's own values (floats and declared scales
            accepted, ``encoding`` not applied): to fit an encoding.
        items: STAC items already found (a search's, ``stac.search_items``),
            in mosaic order, read as a static ItemCollection is; then
            ``scene_path`` only names them.

    Returns:
        The scene (metadata only).

    Raises:
        SceneError: naming the file or band: a file that is not a regular
            file or not a readable GeoTIFF, an unknown band, a band in two
            places, a band missing, a single-band file named for one band
            and described as another, a band of floats or with a declared
            scale/offset that ``encoding`` does not cover, one band's files
            storing values differently, a raster without a CRS or
            geotransform, a map grid that is not north-up, an image band
            none of whose files reaches the map's grid (``check_overlaps``).
    """
    encoding = {} if raw else encoding or {}
    if items is not None or is_stac(scene_path):
        from transforms.mapping.scene.stac import item_band_files, stac_band_files

        found_files = (stac_band_files(scene_path, band_map) if items is None
                       else item_band_files(items, band_map, scene_path))
        listed = [(href, band) for band, hrefs in found_files.items() for href in hrefs]
    else:
        listed = folder_files(scene_path)
    found = _sources(listed, encoding, raw)
    missing = [n for n in ALL_BANDS if n not in found]
    if missing:
        raise SceneError(f"the scene {scene_path} lacks the bands {', '.join(missing)}")
    grid = map_grid(grid_like, found)
    bands = {}
    for name in ALL_BANDS:
        files = tuple(found[name])
        on_grid = (name in IMAGE_BANDS and len(files) == 1
                   and not grid_difference(files[0].grid, grid))
        how = resampling if name in IMAGE_BANDS else "nearest"  # SMAP/GLDAS: the pixel's value
        bands[name] = BandSource(name, files, encoding.get(name), how, on_grid)
    check_overlaps(bands, grid, grid_like)
    return Scene(scene_path, {n: bands[n] for n in IMAGE_BANDS},
                 {n: bands[n] for n in AUX_BANDS}, grid, grid_like)


def resampling_line(scene: Scene) -> str:
    """One line saying which image bands are resampled onto the map's grid,
    and how (empty when every band is on it)."""
    moved = scene.resampled()
    if not moved:
        return ""
    by_grid: Dict[str, List[str]] = {}
    for name in moved:
        source = scene.bands[name]
        crs = sorted({crs_name(f.grid.crs) for f in source.files})
        sizes = sorted({pixel_size_text(f.grid) for f in source.files})
        files = f", {len(source.files)} files" if len(source.files) > 1 else ""
        by_grid.setdefault(f"{'/'.join(crs)} at {'/'.join(sizes)}{files}", []).append(name)
    method = {"nearest": "the nearest rule", "bilinear": "bilinear interpolation"}[
        scene.bands[moved[0]].resampling]
    groups = "; ".join(f"{', '.join(names)} ({how})" for how, names in by_grid.items())
    return (f"{len(moved)} of {len(IMAGE_BANDS)} bands resampled onto the grid of "
            f"{scene.grid_like} ({crs_name(scene.grid.crs)} at {pixel_size_text(scene.grid)}) "
            f"by {method} (exact transforms): {groups}")
