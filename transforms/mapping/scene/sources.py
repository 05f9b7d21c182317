"""A band's source and how it reaches the map's grid (``BandSource``), and
the reads that take it there: a region of the map grid (``read_region``)
or a set of points on it (``values_at``). The caller never knows whether
the band was read as it lies, resampled, mosaicked or encoded.

The rules (README: "Bands on their own grids"):

* **on the grid**: a band that is one file on the map's grid is read as it
  lies, window by window.
* **nearest** (the default): a map-grid pixel takes the value of the source
  pixel that holds its centre, carried there exactly (``grids.carry``).
* **bilinear**: the four source pixels around the carried centre, weighted
  by distance; nodata unless all four hold a value.
* **mosaic**: a band of several files takes, at each point, the first file
  in order (name order in a band folder, item order in STAC) that holds a
  value there; a point no file covers with a value is nodata.
* **encoding**: the values found are encoded last (``encoding.Encoding``).

A value is missing where a file's nodata value, NaN or infinity, or its
GDAL mask (an internal or per-dataset mask, an alpha band) says so.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Dict, NamedTuple, Optional, Tuple

import numpy as np

from transforms.mapping.scene import grids
from transforms.mapping.scene.bands import SourceFile
from transforms.mapping.scene.encoding import Encoding
from transforms.mapping.scene.files import rasterio_path, read_failure

RESAMPLINGS = ("nearest", "bilinear")


@dataclasses.dataclass(frozen=True)
class BandSource:
    """One band of a scene and how it reaches the map's grid.

    Attributes:
        name: the band (``bands.ALL_BANDS``).
        files: where it is, in mosaic order (one or more).
        encoding: how its values become the dataset's integers (None: they
            are used as they are, integers).
        resampling: ``nearest`` or ``bilinear`` (``RESAMPLINGS``), for a band
            not on the grid.
        on_grid: one file on the map's grid, read as it lies.
    """

    name: str
    files: Tuple[SourceFile, ...]
    encoding: Optional[Encoding] = None
    resampling: str = "nearest"
    on_grid: bool = False

    @property
    def where(self) -> str:
        """Its file, or its first file and how many more."""
        more = len(self.files) - 1
        return self.files[0].path + (f" (+{more} more)" if more else "")

    @property
    def dtype(self) -> np.dtype:
        """The type of the values a read gives (the encoding's, else the files')."""
        if self.encoding is not None:
            return self.encoding.dtype
        return np.result_type(*(np.dtype(f.dtype) for f in self.files))


class Lookup(NamedTuple):
    """A band at a set of points (``values_at``), arrays of the points' shape.

    Attributes:
        values: the value found (float64, raw: not encoded; 0 where none).
        outside: no file covers the point.
        missing: no file holds a value there (``outside`` included).
    """

    values: np.ndarray
    outside: np.ndarray
    missing: np.ndarray


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


def read_window(source: SourceFile, window) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """One file's band over a window, and where its GDAL mask hides pixels.

    Args:
        source: the band's file.
        window: a ``rasterio.windows.Window`` inside the raster.

    Returns:
        ``(values, masked)``: the band's dtype; ``masked_pixels``.

    Raises:
        SceneError: the file cannot be read there (truncated, corrupt),
            naming it, the band, the rows and the columns.
    """
    import rasterio

    try:
        with rasterio.open(rasterio_path(source.path)) as ds:
            return ds.read(source.index, window=window), masked_pixels(ds, source.index, window)
    except rasterio.errors.RasterioError as e:
        r0, c0 = int(window.row_off), int(window.col_off)
        raise read_failure(source.path, e, f"band {source.index}, rows {r0}-"
                                           f"{r0 + int(window.height)}, columns {c0}-"
                                           f"{c0 + int(window.width)}") from e


def nodata_of(values: np.ndarray, nodata: Optional[float],
              masked: Optional[np.ndarray]) -> np.ndarray:
    """Which ``values`` hold no data: the band's ``nodata`` value, NaN or
    infinity (in a float band), or a pixel its mask hides (``masked``).

    Args:
        values: pixels of a band.
        nodata: its nodata value (None or NaN: none).
        masked: ``read_window``'s mask, or None.

    Returns:
        A boolean array of ``values``' shape.
    """
    bad = ~np.isfinite(values) if values.dtype.kind == "f" else np.zeros(values.shape, bool)
    if nodata is not None and not math.isnan(nodata):
        bad |= values == nodata
    if masked is not None:
        bad |= masked
    return bad


def _gather(source: SourceFile, rows: np.ndarray, cols: np.ndarray) -> Tuple[np.ndarray,
                                                                           np.ndarray]:
    """``(values float64, held)`` of ``source``'s pixels ``(rows, cols)``
    (1-D, all inside), through one read of the window that bounds them."""
    from rasterio.windows import Window

    r0, c0 = int(rows.min()), int(cols.min())
    window = Window(c0, r0, int(cols.max()) + 1 - c0, int(rows.max()) + 1 - r0)
    block, masked = read_window(source, window)
    at = (rows - r0, cols - c0)
    values = block[at].astype(np.float64)
    return values, ~nodata_of(values, source.nodata, None if masked is None else masked[at])


def _nearest(source: SourceFile, at, todo, values, found) -> np.ndarray:
    """Fill ``values``/``found`` at ``todo`` points from ``source``, whose
    pixels hold the points as ``at`` says (``_placed``); the points it covers."""
    row_i, col_i, outside = (a[todo] for a in at)
    inside = np.flatnonzero(todo)[~outside]
    if inside.size:
        got, held = _gather(source, row_i[~outside], col_i[~outside])
        values[inside[held]] = got[held]
        found[inside[held]] = True
    return inside


def _bilinear(source: SourceFile, at, todo, values, found) -> np.ndarray:
    """As ``_nearest``, from the four pixels around each point (all held);
    ``at``: the points' fractional pixel coordinates in ``source``."""
    rows_f, cols_f = at
    r, c = rows_f[todo] - 0.5, cols_f[todo] - 0.5
    r0, c0 = np.floor(np.nan_to_num(r, nan=-2.0)), np.floor(np.nan_to_num(c, nan=-2.0))
    fr, fc = r - r0, c - c0
    h, w = source.grid.height, source.grid.width
    inside_all = (r0 >= 0) & (c0 >= 0) & (r0 + 1 < h) & (c0 + 1 < w)
    covers = (r0 >= -1) & (c0 >= -1) & (r0 < h) & (c0 < w)
    index = np.flatnonzero(todo)
    chosen = index[inside_all]
    if chosen.size:
        a, b = r0[inside_all].astype(np.int64), c0[inside_all].astype(np.int64)
        rows = np.concatenate([a, a, a + 1, a + 1])
        cols = np.concatenate([b, b + 1, b, b + 1])
        got, held = _gather(source, rows, cols)
        n = a.size
        got, held = got.reshape(4, n), held.reshape(4, n).all(axis=0)
        wr, wc = fr[inside_all], fc[inside_all]
        mixed = ((1 - wr) * ((1 - wc) * got[0] + wc * got[1])
                 + wr * ((1 - wc) * got[2] + wc * got[3]))
        values[chosen[held]] = mixed[held]
        found[chosen[held]] = True
    return index[covers]


def _placed(grid: grids.Grid, rows: np.ndarray, cols: np.ndarray, to: grids.Grid,
            resampling: str) -> Tuple[np.ndarray, ...]:
    """Where points of ``grid`` fall in ``to`` (``grids.carry``): for
    ``nearest`` the holding pixels as int32 ``(row, col, outside)`` (what a
    region keeps per file grid: 9 bytes a point), for ``bilinear`` the
    fractional ``(rows, cols)``."""
    rows_f, cols_f = grids.carry(grid, rows, cols, to)
    if resampling == "bilinear":
        return rows_f, cols_f
    row_i, col_i, outside = grids.holding_pixels(rows_f, cols_f, to)
    return row_i.astype(np.int32), col_i.astype(np.int32), outside


def values_at(band: BandSource, grid: grids.Grid, rows: np.ndarray, cols: np.ndarray,
              carried: Optional[Dict] = None) -> Lookup:
    """The band at points of the map's ``grid`` (the module's rules), raw.

    Args:
        band: the band.
        grid: the map's grid.
        rows: the points' rows in ``grid`` (fractional: a pixel's centre is
            ``row + 0.5``; any shape).
        cols: their columns, the same shape.
        carried: a dict the caller keeps for these same points, to ask
            about them again (other bands of one region): the points carried
            to each file's grid are kept there by grid, computed once.

    Returns:
        The ``Lookup``.

    Raises:
        SceneError: a file that cannot be read there, naming it.
    """
    rows, cols = np.asarray(rows, np.float64), np.asarray(cols, np.float64)
    flat_rows, flat_cols = rows.ravel(), cols.ravel()
    values = np.zeros(flat_rows.shape, np.float64)
    found = np.zeros(flat_rows.shape, bool)
    covered = np.zeros(flat_rows.shape, bool)
    fill = _bilinear if band.resampling == "bilinear" else _nearest
    for source in band.files:
        todo = ~found
        if not todo.any():
            break
        key = (source.grid, band.resampling)
        at = None if carried is None else carried.get(key)
        if at is None:
            at = _placed(grid, flat_rows, flat_cols, source.grid, band.resampling)
            if carried is not None:
                carried[key] = at
        covered[fill(source, at, todo, values, found)] = True
    shape = rows.shape
    return Lookup(values.reshape(shape), ~covered.reshape(shape), ~found.reshape(shape))


def read_region(band: BandSource, grid: grids.Grid, region,
                carried: Optional[Dict] = None) -> Tuple[np.ndarray, np.ndarray]:
    """``(values, nodata)`` of ``band`` over ``region`` of the map's grid:
    the dataset's integers (``band.dtype``), encoded if the band has an
    encoding (an integer band without one, interpolated by ``bilinear``, is
    rounded as an encoding rounds: ``floor(v + 0.5)``; a float band read
    raw, ``read_scene(raw=True)``, keeps its values). Pixels outside the
    grid are 0 and not nodata (the map's edge rule decides about them); a
    pixel without a value is nodata (and 0).

    Args:
        band: the band.
        grid: the map's grid.
        region: rows and columns of the grid (``geometry.Region``; may
            reach outside it).
        carried: a dict the caller keeps for this region (share one across
            the bands of one region: the pixel centres and their places in
            each file's grid are computed once).

    Returns:
        Two arrays of the region's shape.

    Raises:
        SceneError: a file that cannot be read there, naming it.
    """
    from rasterio.windows import Window

    shape = (region.height, region.width)
    r0, c0 = max(region.row, 0), max(region.col, 0)
    r1 = min(region.row + region.height, grid.height)
    c1 = min(region.col + region.width, grid.width)
    values = np.zeros(shape, band.dtype)
    nodata = np.zeros(shape, bool)
    if r1 <= r0 or c1 <= c0:  # nothing of the grid
        return values, nodata
    inner = (slice(r0 - region.row, r1 - region.row), slice(c0 - region.col, c1 - region.col))
    if band.on_grid:
        raw, masked = read_window(band.files[0], Window(c0, r0, c1 - c0, r1 - r0))
        bad = nodata_of(raw, band.files[0].nodata, masked)
    else:
        carried = {} if carried is None else carried
        if "centres" not in carried:
            carried["centres"] = np.meshgrid(np.arange(r0, r1) + 0.5, np.arange(c0, c1) + 0.5,
                                             indexing="ij")
        found = values_at(band, grid, *carried["centres"], carried)
        raw, bad = found.values, found.missing
    if band.encoding is not None:
        held = np.where(bad, 0.0, raw)
        values[inner] = np.where(bad, 0, band.encoding.apply(held))
    elif band.on_grid:
        values[inner] = raw
    elif values.dtype.kind in "iu":  # integers, or between them (bilinear): rounded as encoded
        values[inner] = np.where(bad, 0, np.floor(raw + 0.5))
    else:  # a float band read raw (to fit its encoding): as it is
        values[inner] = np.where(bad, 0, raw)
    nodata[inner] = bad
    return values, nodata
