"""Raster grids and the exact mapping of points between them.

A point of one grid is carried to another by its coordinates: pixel
coordinates (corners at integers) through the first grid's geotransform to
its CRS, through PROJ (``pyproj``) to the other's CRS when they differ, and
back through the other's geotransform, exactly, for every point: no
approximate transformer. The pixel holding a point is the floor of its
pixel coordinates (a point on a pixel edge belongs to the pixel right of and
below it). On a north-up grid the geotransform is undone by division, so a
point exactly on an edge lands on it in floating point too.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Tuple

import numpy as np


@dataclasses.dataclass(frozen=True)
class Grid:
    """A raster grid: ``crs`` (WKT), affine ``transform`` (6 numbers, GDAL
    order as ``affine.Affine``), ``height`` and ``width``."""

    crs: str
    transform: Tuple[float, ...]
    height: int
    width: int

    @property
    def north_up(self) -> bool:
        """No rotation, rows north to south, columns west to east."""
        a, b, _, d, e, _ = self.transform
        return b == 0 and d == 0 and a > 0 and e < 0


def grid_of(dataset) -> Grid:
    """The ``Grid`` of an open rasterio ``dataset``."""
    return Grid(dataset.crs.to_wkt() if dataset.crs else "", tuple(dataset.transform)[:6],
                dataset.height, dataset.width)


@functools.lru_cache(maxsize=64)
def _crs(wkt: str):
    from pyproj import CRS

    return CRS.from_wkt(wkt)


@functools.lru_cache(maxsize=64)
def _transformer(source: str, target: str):
    from pyproj import Transformer

    return Transformer.from_crs(_crs(source), _crs(target), always_xy=True)


def same_crs(one: str, other: str) -> bool:
    """Whether two WKTs are one CRS (in other words counts as the same)."""
    return one == other or bool(one and other and _crs(one) == _crs(other))


def crs_name(wkt: str) -> str:
    """A CRS as ``AUTHORITY:CODE`` (``EPSG:32633``) when it has one, else its WKT."""
    from rasterio.crs import CRS

    authority = CRS.from_wkt(wkt).to_authority() if wkt else None
    return ":".join(authority) if authority else wkt


def pixel_size_text(grid: Grid) -> str:
    """A grid's pixel width in its CRS's unit: ``10 m``, ``0.000278°``, ``250 m``."""
    size = abs(grid.transform[0]) if grid.transform[1] == 0 else float(
        np.hypot(grid.transform[0], grid.transform[3]))
    unit = (_crs(grid.crs).axis_info[0].unit_name or "") if grid.crs else ""
    unit = {"metre": " m", "meter": " m", "degree": "°"}.get(unit, f" {unit}".rstrip())
    return f"{size:.6g}{unit}"


def grid_difference(grid: Grid, other: Grid) -> str:
    """What differs between two grids, in words (empty when they are one
    grid: CRSs that are the same CRS in other words count as one).

    Args:
        grid: a grid.
        other: the grid it should be on.

    Returns:
        E.g. ``CRS EPSG:32634 vs EPSG:32633`` and/or the transforms or sizes.
    """
    parts = []
    if not same_crs(grid.crs, other.crs):
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


def extent(grid: Grid) -> Tuple[float, float, float, float]:
    """``(west, south, east, north)`` of ``grid``'s corners in its own CRS
    (any orientation)."""
    a, b, c, d, e, f = grid.transform
    xs = [a * col + b * row + c for col in (0, grid.width) for row in (0, grid.height)]
    ys = [d * col + e * row + f for col in (0, grid.width) for row in (0, grid.height)]
    return min(xs), min(ys), max(xs), max(ys)


def extent_in(grid: Grid, crs: str) -> Tuple[float, float, float, float]:
    """``(west, south, east, north)`` of ``grid``'s extent in the CRS ``crs``
    (WKT), its edges sampled (21 points a side) so curved edges are covered.

    Raises:
        pyproj's errors: the grid has no place in ``crs`` (bounds may also
        come back infinite).
    """
    return _transformer(grid.crs, crs).transform_bounds(*extent(grid), densify_pts=21)


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
    crs = _crs(grid.crs)
    if not crs.is_geographic or "degree" not in (crs.axis_info[0].unit_name or "degree"):
        return x
    west, _, east, _ = extent(grid)
    x = np.asarray(x, np.float64)
    away = np.isfinite(x) & ((x < west) | (x >= east))
    if not away.any():
        return x
    return np.where(away, west + np.mod(x - west, 360.0), x)


def coordinates_of(grid: Grid, rows: np.ndarray, cols: np.ndarray) -> Tuple[np.ndarray,
                                                                              np.ndarray]:
    """``(x, y)`` in ``grid``'s CRS of pixel coordinates ``(rows, cols)``
    (float64; corners at integers, a pixel's centre at ``+ 0.5``)."""
    a, b, c, d, e, f = grid.transform
    cols, rows = np.asarray(cols, np.float64), np.asarray(rows, np.float64)
    return a * cols + b * rows + c, d * cols + e * rows + f


def pixel_coordinates(grid: Grid, x: np.ndarray, y: np.ndarray) -> Tuple[np.ndarray,
                                                                           np.ndarray]:
    """``(rows, cols)``, fractional, of points ``(x, y)`` in ``grid``'s CRS
    (division on a grid without rotation, the inverse geotransform else)."""
    from affine import Affine

    a, b, c, d, e, f = grid.transform
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if b == 0 and d == 0:
        return (y - f) / e, (x - c) / a
    cols, rows = ~Affine(a, b, c, d, e, f) @ (x, y)
    return np.asarray(rows), np.asarray(cols)


def carry(grid: Grid, rows: np.ndarray, cols: np.ndarray, to: Grid) -> Tuple[np.ndarray,
                                                                              np.ndarray]:
    """Pixel coordinates ``(rows, cols)`` of ``grid`` as fractional pixel
    coordinates of ``to``: exactly, point by point (NaN for a point with no
    place in ``to``'s CRS; longitudes wrapped onto a 0-360 grid).

    Args:
        grid: the points' grid.
        rows: their rows (any shape; a pixel's centre is ``row + 0.5``).
        cols: their columns, the same shape.
        to: the grid to carry them to.

    Returns:
        ``(rows, cols)`` in ``to``, float64.
    """
    x, y = coordinates_of(grid, rows, cols)
    if not same_crs(grid.crs, to.crs):
        x, y = _transformer(grid.crs, to.crs).transform(x, y)
    return pixel_coordinates(to, wrap_longitudes(to, np.asarray(x)), y)


def holding_pixels(rows: np.ndarray, cols: np.ndarray, grid: Grid) -> Tuple[np.ndarray,
                                                                             np.ndarray,
                                                                             np.ndarray]:
    """``(row, col, outside)``: the pixel of ``grid`` holding each point of
    fractional pixel coordinates ``(rows, cols)`` (the floor), and whether
    it is off the grid (or the point has no place: NaN); int64 arrays with
    -1 where outside."""
    finite = np.isfinite(rows) & np.isfinite(cols)
    row_i = np.where(finite, np.floor(np.where(finite, rows, -1)), -1).astype(np.int64)
    col_i = np.where(finite, np.floor(np.where(finite, cols, -1)), -1).astype(np.int64)
    outside = (row_i < 0) | (col_i < 0) | (row_i >= grid.height) | (col_i >= grid.width)
    row_i[outside], col_i[outside] = -1, -1
    return row_i, col_i, outside
