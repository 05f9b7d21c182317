"""The layout of a soil-moisture cube through time (README: "Maps through time").

A cube is a Zarr store (format 2, consolidated metadata) written through
xarray-beam's ``ChunksToZarr`` with an explicit template (``template``):
the variables ``soil_moisture``, ``smap_sm`` and ``gldas_sm``, float32
``(time, y, x)`` with NaN where there is no value; ``time`` datetime64
(UTC, stored as int64 seconds since 1970-01-01); ``y``/``x`` the map pixels'
centres in the scene's CRS; ``spatial_ref`` the CF grid mapping (its
``crs_wkt``, ``spatial_ref`` and GDAL ``GeoTransform``, which ``rioxarray``
reads); chunks of one time and one mapping tile (``tile`` x ``tile`` map
pixels). ``soil_moisture`` at a time equals ``predict_map``'s map of that
time's scene, pixel for pixel; ``smap_sm``/``gldas_sm`` hold the SMAP and
GLDAS values the model was given at each pixel (the dataset's 0-255 scale:
value / 255 is m³/m³). The attribute ``product`` marks a store as ours.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from transforms.mapping.pipeline import MapBlock

PRODUCT = "soil_moisture_cube"
GRID_MAPPING = "spatial_ref"
#: the cube's variables, their units and meaning
VARIABLES: Dict[str, Dict[str, str]] = {
    "soil_moisture": {"units": "m3/m3", "long_name": "volumetric soil moisture (model)"},
    "smap_sm": {"units": "1/255 m3/m3", "long_name": "SMAP soil moisture the model was given "
                                                     "(dataset 0-255 scale)"},
    "gldas_sm": {"units": "1/255 m3/m3", "long_name": "GLDAS soil moisture the model was given "
                                                      "(dataset 0-255 scale)"},
}
TIME_ENCODING = {"units": "seconds since 1970-01-01", "calendar": "proleptic_gregorian",
                 "dtype": "int64"}
#: attributes two cubes must share for one to be appended to the other
SAME_ON_APPEND = ("model", "stride", "window", "edge_mode", "resampling", "encoding")


class CubeError(Exception):
    """A store that is not a cube of ours, or one new times cannot join;
    the message names it."""


@dataclasses.dataclass(frozen=True)
class CubeGrid:
    """The map grid of a cube.

    Attributes:
        crs: the CRS as WKT.
        transform: the map's affine transform (GDAL order, 6 numbers: the
            scene's scaled by the stride).
        rows, cols: the map's size in pixels.
        tile: map pixels per chunk side (the mapping tile).
    """

    crs: str
    transform: Tuple[float, ...]
    rows: int
    cols: int
    tile: int

    @property
    def x(self) -> np.ndarray:
        """Pixel-centre x coordinates (north-up grids)."""
        a, _, c = self.transform[:3]
        return c + a * (np.arange(self.cols) + 0.5)

    @property
    def y(self) -> np.ndarray:
        """Pixel-centre y coordinates (north-up grids: descending)."""
        e, f = self.transform[4], self.transform[5]
        return f + e * (np.arange(self.rows) + 0.5)

    @property
    def geotransform(self) -> str:
        """GDAL's ``GeoTransform`` text: ``x0 dx 0 y0 0 dy``."""
        a, b, c, d, e, f = self.transform
        return " ".join(repr(float(v)) for v in (c, a, b, f, d, e))

    def difference(self, other: "CubeGrid") -> str:
        """What differs from ``other`` in words (empty: the same grid)."""
        from transforms.mapping.scene import Grid, grid_difference

        parts = [grid_difference(Grid(self.crs, self.transform, self.rows, self.cols),
                                 Grid(other.crs, other.transform, other.rows, other.cols))]
        if self.tile != other.tile:
            parts.append(f"chunks of {self.tile} vs {other.tile} map pixels (--tile_size)")
        return "; ".join(p for p in parts if p)


def zarr_chunks(grid: CubeGrid) -> Dict[str, int]:
    """The chunks: one time, one tile."""
    return {"time": 1, "y": grid.tile, "x": grid.tile}


def encoding() -> Dict[str, Dict[str, object]]:
    """How the template's variables are stored (NaN fill, int64 seconds)."""
    return {"time": dict(TIME_ENCODING),
            **{name: {"_FillValue": np.float32(np.nan), "dtype": "float32"}
               for name in VARIABLES}}


def as_times(times: Sequence[np.datetime64]) -> np.ndarray:
    """``times`` as datetime64[ns] (xarray's own unit)."""
    return np.array([np.datetime64(t, "s") for t in times], dtype="datetime64[ns]")


def template(grid: CubeGrid, times: Sequence[np.datetime64], attrs: Dict[str, str]):
    """The lazy ``xarray.Dataset`` the chunks fill (xarray-beam's template):
    the data variables are dask arrays chunked as the store, so only the
    coordinates and metadata are written when the store is set up.

    Args:
        grid: the map's grid.
        times: the cube's times, in order.
        attrs: the global attributes (``PRODUCT`` is added).

    Returns:
        The template.
    """
    import dask.array
    import xarray

    shape = (len(times), grid.rows, grid.cols)
    chunks = (1, grid.tile, grid.tile)
    data = {name: (("time", "y", "x"), dask.array.full(shape, np.nan, dtype=np.float32,
                                                       chunks=chunks),
                   {**meaning, "grid_mapping": GRID_MAPPING})
            for name, meaning in VARIABLES.items()}
    crs = {"crs_wkt": grid.crs, "spatial_ref": grid.crs, "GeoTransform": grid.geotransform}
    coords = {"time": ("time", as_times(times), {"standard_name": "time", "axis": "T"}),
              "y": ("y", grid.y, {"axis": "Y", "long_name": "pixel centre y"}),
              "x": ("x", grid.x, {"axis": "X", "long_name": "pixel centre x"}),
              GRID_MAPPING: ((), np.int64(0), crs)}
    return xarray.Dataset(data, coords=coords, attrs={**attrs, "product": PRODUCT,
                                                      "Conventions": "CF-1.8"})


def to_chunk(block: MapBlock, first_time: int = 0):
    """A map block as xarray-beam's ``(Key, Dataset)`` of the cube's three
    variables at time ``first_time + block.time_index``.

    Args:
        block: a tile of one time's map.
        first_time: the time index of the store's first time (0; appends
            stage the new times in a store of their own).

    Returns:
        ``(xarray_beam.Key, xarray.Dataset)``.
    """
    import xarray
    import xarray_beam

    tile = block.tile
    key = xarray_beam.Key({"time": first_time + block.time_index, "y": tile.row, "x": tile.col})
    dims = ("time", "y", "x")
    return key, xarray.Dataset({"soil_moisture": (dims, block.values[None]),
                                "smap_sm": (dims, block.smap[None]),
                                "gldas_sm": (dims, block.gldas[None])})


@dataclasses.dataclass(frozen=True)
class CubeFacts:
    """What an existing cube holds (``read_cube``).

    Attributes:
        grid: its grid.
        times: its times (datetime64[s]), in order.
        attrs: its global attributes.
    """

    grid: CubeGrid
    times: Tuple[np.datetime64, ...]
    attrs: Dict[str, object]


def read_cube(store: str) -> CubeFacts:
    """The grid, times and attributes of the cube ``store`` (metadata and
    the coordinates only).

    Args:
        store: a Zarr store path (local or ``gs://``).

    Returns:
        Its facts.

    Raises:
        CubeError: not a Zarr store, or not a cube of ours (no ``product``
            attribute, a variable missing), naming it.
    """
    import zarr

    try:
        group = zarr.open_group(store, mode="r", zarr_format=2)
        attrs = dict(group.attrs)
    except Exception as e:  # zarr raises many kinds for a folder that is no store
        raise CubeError(f"{store} is not a Zarr store ({type(e).__name__}: {e})") from None
    missing = [n for n in (*VARIABLES, "time", "x", "y", GRID_MAPPING) if n not in group]
    if attrs.get("product") != PRODUCT or missing:
        why = (f"no variable {', '.join(missing)}" if missing
               else f"its product is {attrs.get('product')!r}")
        raise CubeError(f"{store} is not a soil-moisture cube written by predict_map ({why})")
    crs = group[GRID_MAPPING].attrs
    try:
        c, a, b, f, d, e = (float(v) for v in str(crs["GeoTransform"]).split())
        sm = group["soil_moisture"]
        _, rows, cols = sm.shape
        grid = CubeGrid(str(crs["crs_wkt"]), (a, b, c, d, e, f), rows, cols, sm.chunks[1])
        seconds = np.asarray(group["time"][:], dtype=np.int64)
    except (KeyError, ValueError, TypeError) as e:
        raise CubeError(f"{store}: its grid mapping or time cannot be read ({e})") from None
    if group["time"].attrs.get("units") != TIME_ENCODING["units"]:
        raise CubeError(f"{store}: its time is stored in {group['time'].attrs.get('units')!r}, "
                        f"not {TIME_ENCODING['units']!r}")
    if len(seconds) != sm.shape[0] or (np.diff(seconds) <= 0).any():
        raise CubeError(f"{store}: its times are not {sm.shape[0]} increasing times (a damaged "
                        f"cube)")
    return CubeFacts(grid, tuple(seconds.astype("datetime64[s]")), attrs)


def append_problem(facts: CubeFacts, grid: CubeGrid, times: Sequence[np.datetime64],
                   attrs: Dict[str, str], scenes: Sequence[str]) -> Optional[str]:
    """Why ``times`` (of ``scenes``) cannot be appended to the cube of
    ``facts`` (one line), or None.

    Args:
        facts: the existing cube's.
        grid: the new maps' grid.
        times: the new times, in order.
        attrs: the new maps' attributes (``SAME_ON_APPEND`` must match).
        scenes: the new times' scenes, for the message.

    Returns:
        The problem, or None.
    """
    differs = grid.difference(facts.grid)
    if differs:
        return f"the scenes' map grid is not the cube's: {differs}"
    for name in SAME_ON_APPEND:
        if str(attrs.get(name)) != str(facts.attrs.get(name)):
            return (f"the cube was made with {name} {facts.attrs.get(name)!r}, these maps with "
                    f"{attrs.get(name)!r}")
    present = set(facts.times)
    for time, scene in zip(times, scenes):
        if np.datetime64(time, "s") in present:
            return f"the time {time}Z of scene {scene} is already in the cube"
    if facts.times and np.datetime64(times[0], "s") <= max(facts.times):
        return (f"--append adds times after the cube's last ({max(facts.times)}Z); scene "
                f"{scenes[0]} is at {times[0]}Z (write the cube anew to put it in order)")
    return None


def scene_list(attrs: Dict[str, object]) -> List[Dict[str, str]]:
    """The cube's ``scenes`` attribute: ``[{"time", "scene"}]`` by time."""
    return json.loads(str(attrs.get("scenes") or "[]"))
