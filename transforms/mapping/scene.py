"""A scene: co-registered GeoTIFFs holding the model's bands in the dataset's
own encoding, and the SMAP and GLDAS rasters (README: predict_map).

The scene folder's path is literal (``site[1]`` is that folder, never a
pattern); its ``*.tif`` / ``*.tiff`` files are the scene. Each must be a
regular file: a link to a missing file, a FIFO or a folder so named is
refused, naming it.

Bands are found by file name or by band description. A band whose colour
interpretation is alpha is a mask (see below), never a band. A file with one
band is the band its file name names (``sentinel_1_VV.tif``): the name wins
over the band's description (which a ``.tif.aux.xml`` sidecar may set), and
a file named for one band whose description names another
(``sentinel_2_B4.tif`` described as ``sentinel_2_B3``) is refused: which of
the two it holds cannot be told. A single-band file whose name is no band's
is the band its description names; so is each band of a multi-band file.

The model's 14 image bands must share one grid (compared by CRS, transform
and size; the error says which differ) and be north-up (no rotation, rows
north to south, columns west to east: the model was trained on north-up
windows; warp others first, e.g. ``gdalwarp``). ``smap_sm`` and
``gldas_sm`` may each have their own grid and CRS, in any orientation (the
point lookup is exact), a geographic one on a 0-360 degree longitude grid
included. Every raster needs a CRS and a geotransform (GCPs or RPCs alone do
not place a window on the ground). Bands hold integers, without a declared
scale or offset (the map needs the dataset's integer encoding as stored).

A band's nodata value and its GDAL mask (an internal or per-dataset mask,
an alpha band) both mark nodata (``masked_pixels``). Only metadata is read
here; pixels are read a tile at a time (``tiles``), whose read errors name
the file (``read_failure``).
"""

from __future__ import annotations

import dataclasses
import os
import posixpath
import stat
import warnings
from typing import Dict, List, Optional, Tuple

import numpy as np
from apache_beam.io.filesystems import FileSystems

from transforms.dataset import schema

IMAGE_BANDS: Tuple[str, ...] = (*schema.IMAGE_BANDS, *schema.LOW_RES_BANDS)
AUX_BANDS: Tuple[str, ...] = (schema.SMAP_SM, schema.GLDAS_SM)
SUFFIXES = (".tif", ".tiff")
#: the values SMAP and GLDAS hold in the dataset's encoding (0-255: divided by 255)
AUX_RANGE = (0, int(schema.AUX_SCALE))


class SceneError(Exception):
    """A scene that cannot be mapped, with the file or band at fault."""


@dataclasses.dataclass(frozen=True)
class BandSource:
    """One band of a scene file: ``path``, 1-based ``index``, ``nodata`` value."""

    path: str
    index: int
    nodata: Optional[float]


@dataclasses.dataclass(frozen=True)
class Grid:
    """A raster grid: ``crs`` (WKT), affine ``transform`` (6 numbers, GDAL
    order as ``affine.Affine``), ``height`` and ``width``."""

    crs: str
    transform: Tuple[float, ...]
    height: int
    width: int


@dataclasses.dataclass(frozen=True)
class Scene:
    """Where each band of a scene is, and the grids they lie on.

    Attributes:
        path: the scene folder.
        bands: the 14 image bands (``IMAGE_BANDS``) by name.
        aux: ``smap_sm`` and ``gldas_sm`` by name.
        grid: the image bands' shared grid.
        aux_grids: each auxiliary raster's grid.
    """

    path: str
    bands: Dict[str, BandSource]
    aux: Dict[str, BandSource]
    grid: Grid
    aux_grids: Dict[str, Grid]


def rasterio_path(path: str) -> str:
    """A path rasterio opens (``gs://`` through GDAL's ``/vsigs/``)."""
    return "/vsigs/" + path[len("gs://"):] if path.startswith("gs://") else path


def grid_of(dataset) -> Grid:
    """The ``Grid`` of an open rasterio ``dataset``."""
    return Grid(dataset.crs.to_wkt() if dataset.crs else "", tuple(dataset.transform)[:6],
                dataset.height, dataset.width)


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


def masked_pixels(dataset, index: int, window) -> Optional[np.ndarray]:
    """Where band ``index``'s GDAL mask hides pixels over ``window`` (True:
    masked), or None when it has no mask beyond its nodata value (mask flags
    ``all_valid`` or ``nodata``: the fast path, nothing more read).

    Args:
        dataset: an open rasterio dataset.
        index: the band (1-based).
        window: a ``rasterio.windows.Window``.

    Returns:
        A boolean array of the window's shape, or None: an internal or
        per-dataset mask, or an alpha band (0: masked; also one GDAL does not
        use as a mask: it does only for 8 and 16-bit unsigned data).
    """
    from rasterio.enums import ColorInterp, MaskFlags

    flags = list(dataset.mask_flag_enums[index - 1])
    masked = None
    if flags not in ([MaskFlags.all_valid], [MaskFlags.nodata]):
        masked = dataset.read_masks(index, window=window) == 0
    if MaskFlags.alpha not in flags:
        for k, interp in enumerate(dataset.colorinterp, start=1):
            if interp == ColorInterp.alpha and k != index:
                alpha = dataset.read(k, window=window) == 0
                masked = alpha if masked is None else masked | alpha
    return masked


def wrap_longitudes(grid: Grid, x: np.ndarray) -> np.ndarray:
    """``x`` in ``grid``'s CRS, longitudes outside a geographic grid's span
    moved by whole turns into it (-10 is 350 on a 0-360 grid).

    Args:
        grid: a raster's grid.
        x: the points' first coordinate in the grid's CRS (longitude for a
            geographic CRS in GDAL's traditional order).

    Returns:
        The coordinates to look the points up at (``x`` itself for a
        projected grid or when every point is inside).
    """
    from affine import Affine
    from pyproj import CRS

    crs = CRS.from_wkt(grid.crs)
    if not crs.is_geographic or "degree" not in (crs.axis_info[0].unit_name or "degree"):
        return x
    corners = [Affine(*grid.transform) @ (c, r) for c in (0, grid.width) for r in (0, grid.height)]
    west, east = min(c[0] for c in corners), max(c[0] for c in corners)
    x = np.asarray(x, np.float64)
    away = np.isfinite(x) & ((x < west) | (x >= east))
    if not away.any():
        return x
    return np.where(away, west + np.mod(x - west, 360.0), x)


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


def _check_regular(path: str) -> None:
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


def scene_files(scene_path: str) -> List[str]:
    """The GeoTIFFs of a scene folder, sorted; the path is literal (no glob).

    Args:
        scene_path: the scene folder (local or ``gs://``).

    Returns:
        The paths of its ``*.tif`` and ``*.tiff`` files.

    Raises:
        SceneError: there is none, the folder cannot be listed, or one is not
            a regular file (a link to a missing file, a FIFO, a folder).
    """
    if "://" in scene_path:
        found = sorted(p for p in files_in(scene_path) if p.lower().endswith(SUFFIXES))
    else:
        try:
            names = os.listdir(scene_path)
        except OSError as e:
            raise SceneError(f"the scene folder {scene_path} cannot be listed: {e.strerror}") \
                from None
        found = [os.path.join(scene_path, n) for n in sorted(names)
                 if n.lower().endswith(SUFFIXES)]
        for path in found:
            _check_regular(path)
    if not found:
        raise SceneError(f"no GeoTIFF (*.tif) in the scene folder {scene_path}")
    return found


def crs_name(wkt: str) -> str:
    """A CRS as ``AUTHORITY:CODE`` (``EPSG:32633``) when it has one, else its WKT."""
    from rasterio.crs import CRS

    authority = CRS.from_wkt(wkt).to_authority() if wkt else None
    return ":".join(authority) if authority else wkt


def grid_difference(grid: Grid, other: Grid) -> str:
    """What differs between two grids, in words (empty when they are one
    grid: CRSs that are the same CRS in other words count as one).

    Args:
        grid: a grid.
        other: the grid it should be on.

    Returns:
        E.g. ``CRS EPSG:32634 vs EPSG:32633`` and/or the transforms or sizes.
    """
    from rasterio.crs import CRS

    parts = []
    if grid.crs != other.crs and not (grid.crs and other.crs
                                      and CRS.from_wkt(grid.crs) == CRS.from_wkt(other.crs)):
        labels = (crs_name(grid.crs) or "none", crs_name(other.crs) or "none")
        parts.append("CRS {} vs {}".format(*(labels if labels[0] != labels[1]
                                             else (grid.crs, other.crs))))
    if grid.transform != other.transform:
        def shown(t, digits):
            return tuple(round(v, digits) for v in t) if digits else tuple(t)

        digits = next((d for d in (6, 9, 12) if shown(grid.transform, d)
                       != shown(other.transform, d)), None)  # None: every digit
        parts.append(f"transform {shown(grid.transform, digits)} vs "
                     f"{shown(other.transform, digits)}")
    if (grid.height, grid.width) != (other.height, other.width):
        parts.append(f"size {grid.width}x{grid.height} vs {other.width}x{other.height} pixels")
    return "; ".join(parts)


def _band_names(path: str, ds) -> List[Tuple[int, str]]:
    """``(index, name)`` of each band of an open file (see the module's rules)."""
    from rasterio.enums import ColorInterp

    known = (*IMAGE_BANDS, *AUX_BANDS)
    data = [k for k in range(1, ds.count + 1) if ds.colorinterp[k - 1] != ColorInterp.alpha]
    if len(data) != 1:
        return [(k, ds.descriptions[k - 1] or "") for k in data]
    index, stem = data[0], posixpath.splitext(posixpath.basename(path))[0]
    described = ds.descriptions[index - 1] or ""
    if stem not in known:
        return [(index, described)]
    if described in known and described != stem:
        raise SceneError(f"{path} is named for band {stem} but its band is described as "
                         f"{described} (in the file or a .aux.xml beside it): rename the file "
                         f"or fix the description")
    return [(index, stem)]


def _check_band(path: str, ds, index: int, name: str, found: Dict[str, BandSource]) -> None:
    """SceneError unless band ``index`` (``name``) of ``ds`` can be mapped."""
    from affine import Affine

    if name not in (*IMAGE_BANDS, *AUX_BANDS):
        raise SceneError(
            f"{path}: band {index} is {name!r}, no band of the model (name single-band files, "
            f"or describe the bands of a multi-band file, with the schema's names, e.g. "
            f"{IMAGE_BANDS[0]})")
    if name in found:
        raise SceneError(f"{path}: band {name} is also in {found[name].path}")
    dtype = ds.dtypes[index - 1]
    if not dtype.startswith(("int", "uint")):
        raise SceneError(f"{path}: band {name} holds {dtype} values; the dataset's bands are "
                         f"integers (its own encoding)")
    scale, offset = ds.scales[index - 1], ds.offsets[index - 1]
    if (scale, offset) != (1, 0):
        raise SceneError(f"{path}: band {name} declares scale {scale:g} and offset {offset:g}; "
                         f"the map needs the dataset's integer encoding as stored (write the "
                         f"values without scale/offset)")
    if not ds.crs:
        raise SceneError(f"{path} has no CRS")
    t = Affine(*tuple(ds.transform)[:6])
    if t.is_identity:
        raise SceneError(f"{path} has no geotransform (GCPs or RPCs are not enough): its pixels "
                         f"are not placed on the ground; warp it to a north-up grid first "
                         f"(e.g. gdalwarp)")
    if t.determinant == 0 or not all(np.isfinite(tuple(t))):
        raise SceneError(f"{path} has a degenerate geotransform {tuple(t)[:6]}")
    if name in IMAGE_BANDS and (t.b != 0 or t.d != 0 or t.a < 0 or t.e > 0):
        how = "rotated" if t.b or t.d else "south-up" if t.e > 0 else "east-to-west"
        raise SceneError(
            f"{path}: band {name} is not north-up ({how}: transform {tuple(t)[:6]}); the model "
            f"was trained on north-up windows: warp the scene north-up first (e.g. gdalwarp)")


def read_scene(scene_path: str) -> Scene:
    """The scene in ``scene_path``: every band found, every grid checked.

    Args:
        scene_path: the scene folder (local or ``gs://``; literal).

    Returns:
        The scene (metadata only).

    Raises:
        SceneError: naming the file or band: a file that is not a regular
            file or not a readable GeoTIFF, an unknown or repeated band, a
            band missing, a single-band file named for one band and
            described as another, a band of floats (the dataset's bands are
            integers) or with a declared scale/offset, a raster without a
            CRS or geotransform, image bands not north-up or on different
            grids (saying what differs).
    """
    import rasterio

    found: Dict[str, BandSource] = {}
    grids: Dict[str, Grid] = {}
    for path in scene_files(scene_path):
        try:
            with warnings.catch_warnings():  # no geotransform: refused below, by name
                warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
                with rasterio.open(rasterio_path(path)) as ds:
                    for index, name in _band_names(path, ds):
                        _check_band(path, ds, index, name, found)
                        found[name] = BandSource(path, index, ds.nodatavals[index - 1])
                        grids[name] = grid_of(ds)
        except rasterio.errors.RasterioError as e:
            raise SceneError(f"{path} is not a readable GeoTIFF: {' '.join(str(e).split())}") \
                from e
    missing = [n for n in (*IMAGE_BANDS, *AUX_BANDS) if n not in found]
    if missing:
        raise SceneError(f"the scene {scene_path} lacks the bands {', '.join(missing)}")
    first = IMAGE_BANDS[0]
    for name in IMAGE_BANDS[1:]:
        differs = grid_difference(grids[name], grids[first])
        if differs:
            raise SceneError(
                f"band {name} ({found[name].path}) is not on the grid of {first} "
                f"({found[first].path}): {differs}; the model's bands must share one grid")
    return Scene(scene_path, {n: found[n] for n in IMAGE_BANDS},
                 {n: found[n] for n in AUX_BANDS}, grids[first],
                 {n: grids[n] for n in AUX_BANDS})
