"""Where each map pixel's window lies in the scene, exactly (README: predict_map).

A scene of ``height`` x ``width`` pixels at stride ``s`` (even) gives a map of
``height // s`` x ``width // s`` pixels. Map pixel ``(i, j)`` covers scene
rows ``[i*s, (i+1)*s)`` and columns ``[j*s, (j+1)*s)``, so the map's
transform is the scene's scaled by ``s``. Its value is the model's output on
the ``w`` x ``w`` window (``w``: the model's window, 256 for the released
model, or 512 when whole images are fed) centred on the pixel's centre, the
scene point ``(i*s + s/2, j*s + s/2)``: the window's top-left scene pixel is
``(i*s + s/2 - w/2, j*s + s/2 - w/2)``. Tiles group ``tile`` x ``tile`` map
pixels; a tile's region is the union of its windows, read at once.
"""

from __future__ import annotations

import dataclasses
from typing import Iterator, NamedTuple, Tuple


class Region(NamedTuple):
    """Scene rows ``[row, row + height)`` and columns ``[col, col + width)``
    (may reach outside the scene)."""

    row: int
    col: int
    height: int
    width: int


class Tile(NamedTuple):
    """Map rows ``[row, row + height)`` and columns ``[col, col + width)``."""

    row: int
    col: int
    height: int
    width: int


@dataclasses.dataclass(frozen=True)
class MapGeometry:
    """The map of one scene.

    Attributes:
        height, width: the scene's size in pixels.
        stride: scene pixels per map pixel along each axis (even, positive).
        window: the side of the window the model is fed (even).
        tile: map pixels per tile along each axis.
    """

    height: int
    width: int
    stride: int
    window: int
    tile: int = 32

    def __post_init__(self):
        if self.stride <= 0 or self.stride % 2:
            raise ValueError(f"the stride must be a positive even number, not {self.stride}")
        if self.window <= 0 or self.window % 2:
            raise ValueError(f"the window must be a positive even number, not {self.window}")

    @property
    def shape(self) -> Tuple[int, int]:
        """``(rows, columns)`` of the map."""
        return self.height // self.stride, self.width // self.stride

    def window_origin(self, i, j):
        """The top-left scene pixel of map pixel ``(i, j)``'s window (``i``
        and ``j`` may be numpy arrays: then arrays of rows and columns)."""
        half = self.stride // 2 - self.window // 2
        return i * self.stride + half, j * self.stride + half

    def inside(self, i, j):
        """Whether map pixel ``(i, j)``'s window lies wholly inside the scene
        (element-wise for numpy arrays)."""
        r, c = self.window_origin(i, j)
        return ((r >= 0) & (c >= 0) & (r + self.window <= self.height)
                & (c + self.window <= self.width))

    def tiles(self) -> Iterator[Tile]:
        """Every tile, row by row; together they cover each map pixel once."""
        rows, cols = self.shape
        for row in range(0, rows, self.tile):
            for col in range(0, cols, self.tile):
                yield Tile(row, col, min(self.tile, rows - row), min(self.tile, cols - col))

    def region(self, tile: Tile) -> Region:
        """The scene region holding every window of ``tile``."""
        r, c = self.window_origin(tile.row, tile.col)
        return Region(r, c, (tile.height - 1) * self.stride + self.window,
                      (tile.width - 1) * self.stride + self.window)


def pixel_shape_note(transform: Tuple[float, ...], stride: int) -> str:
    """A line when a scene's pixels are not square, else ``""``: the map's
    pixels are then not square either, and the model was trained on square
    10 m pixels.

    Args:
        transform: the scene's affine transform (GDAL order, 6 numbers).
        stride: scene pixels per map pixel.

    Returns:
        ``WARNING: ...`` naming both pixel sizes, or ``""``.
    """
    width, height = abs(transform[0]), abs(transform[4])
    if abs(width - height) <= 1e-9 * max(width, height):
        return ""
    return (f"WARNING: the scene's pixels are {width:g} x {height:g} map units, not square, so "
            f"the map's are {width * stride:g} x {height * stride:g}; the model was trained on "
            f"square 10 m pixels (warp the scene to square ones, e.g. gdalwarp -tr)")


#: the release's pixel size in metres (Sentinel-1/2 at 10 m): the model's windows are 2560 m
RELEASE_PIXEL_M = 10.0


def pixel_size_note(grid) -> str:
    """A line when the map's grid is not of the release's 10 m pixels, else
    ``""``: the model's windows then cover another ground size than the
    ones it was trained on.

    Args:
        grid: the map's grid (``scene.Grid``).

    Returns:
        ``WARNING: ...`` naming the pixel size, or ``""``.
    """
    from pyproj import CRS

    crs = CRS.from_wkt(grid.crs)
    size = abs(grid.transform[0])
    unit = (crs.axis_info[0].unit_name or "") if crs.axis_info else ""
    if crs.is_projected and unit in ("metre", "meter"):
        if abs(size - RELEASE_PIXEL_M) <= 0.01 * RELEASE_PIXEL_M:
            return ""
        what = f"{size:g} m pixels"
    else:
        what = f"pixels of {size:g} {unit or 'units'} (not metres)"
    return (f"WARNING: the map's grid has {what}; the model was trained on the release's "
            f"{RELEASE_PIXEL_M:g} m pixels, so its windows cover other ground than in training "
            f"(give --grid_like a 10 m band or GeoTIFF)")

