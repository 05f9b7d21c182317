"""One tile of a map: its scene region read band by band through windowed
reads (bands not on the map grid resampled onto it: ``scene.read_region``),
each map pixel's window checked for nodata, and the valid windows
decoded (as ``run_inference`` decodes an example) into model batches.

Nothing larger than one tile's region of one band is read at once; the
windows are views into it, copied only into the batch fed to the model.
"""

from __future__ import annotations

from typing import Dict, Iterator, List, NamedTuple, Tuple

import numpy as np

from transforms.dataset import schema
from transforms.dataset.decode import dem_to_model
from transforms.mapping.geometry import MapGeometry, Region, Tile
from transforms.mapping.scene import AUX_RANGE, Scene, read_region, values_at

#: Why a map pixel is NaN; its code in a tile's cause array is its position + 1
#: (0: predicted). Checked in this order; the first that applies is counted.
#: ``model_nan`` (last: only a window fed to the model can have it) is a
#: window the model answered with NaN or infinity (``pipeline.assemble_block``).
CAUSES = ("outside_scene", "band_nodata", "smap_outside", "smap_nodata", "gldas_outside",
          "gldas_nodata", "smap_invalid", "gldas_invalid", "model_nan")
EDGE_MODES = ("nan", "pad")


def window_sums(mask: np.ndarray, side: int, stride: int, shape: Tuple[int, int]) -> np.ndarray:
    """Count of ``mask`` pixels in each ``side`` x ``side`` window whose
    top-left is ``(a*stride, b*stride)`` for ``a, b`` < ``shape`` (an
    integral image: O(1) a window)."""
    integral = np.zeros((mask.shape[0] + 1, mask.shape[1] + 1), dtype=np.int64)
    integral[1:, 1:] = np.cumsum(np.cumsum(mask, axis=0), axis=1)
    rows = np.arange(shape[0]) * stride
    cols = np.arange(shape[1]) * stride
    return (integral[np.ix_(rows + side, cols + side)] - integral[np.ix_(rows, cols + side)]
            - integral[np.ix_(rows + side, cols)] + integral[np.ix_(rows, cols)])


class AuxLookup(NamedTuple):
    """SMAP or GLDAS at a set of points (``aux_at_points``), arrays of the
    points' shape.

    Attributes:
        values: the raster's value (float64; 0 where ``outside``).
        outside: the point is off the raster.
        nodata: the value is the raster's nodata value, NaN, or masked by
            its GDAL mask.
        invalid: a held value outside 0-255, the dataset's encoding
            (``scene.AUX_RANGE``): never fed to the model.
    """

    values: np.ndarray
    outside: np.ndarray
    nodata: np.ndarray
    invalid: np.ndarray


def aux_values(scene: Scene, name: str, geometry: MapGeometry, tile: Tile) -> AuxLookup:
    """``aux_at_points`` at each map pixel's centre point of ``tile``.

    Args:
        scene: the scene.
        name: ``smap_sm`` or ``gldas_sm``.
        geometry: the map's geometry.
        tile: the tile.

    Returns:
        The lookup, arrays of the tile's shape.
    """
    s = geometry.stride
    i = np.arange(tile.row, tile.row + tile.height)
    j = np.arange(tile.col, tile.col + tile.width)
    cols, rows = np.meshgrid(j * s + s / 2, i * s + s / 2)
    return aux_at_points(scene, name, rows, cols)


def aux_at_points(scene: Scene, name: str, rows: np.ndarray, cols: np.ndarray) -> AuxLookup:
    """The ``name`` raster at scene points ``(rows, cols)`` (pixel
    coordinates of the map's grid, corners at integers): the value of its
    pixel holding the point, carried there exactly (``scene.values_at``: a
    raster of any grid, CRS and orientation, several files mosaicked, a
    0-360 degree grid included), encoded if ``--encoding`` gives it.

    Args:
        scene: the scene.
        name: ``smap_sm`` or ``gldas_sm``.
        rows: scene rows of the points (any shape).
        cols: scene columns, the same shape.

    Returns:
        The lookup (``AuxLookup``), arrays of ``rows``' shape.

    Raises:
        SceneError: the raster cannot be read there, naming the file.
    """
    band = scene.aux[name]
    found = values_at(band, scene.grid, rows, cols)
    held = ~found.missing
    values = np.where(held, found.values, 0.0)
    if band.encoding is not None:
        values = np.where(held, band.encoding.apply(values), 0).astype(np.float64)
    invalid = held & ((values < AUX_RANGE[0]) | (values > AUX_RANGE[1]))
    return AuxLookup(values, found.outside, found.missing & ~found.outside, invalid)


def tile_windows(scene: Scene, geometry: MapGeometry, tile: Tile, edge_mode: str = "nan",
                 batch_size: int = 8) -> Iterator[Tuple[str, object]]:
    """The tile's ``("causes", uint8 array)`` (see ``CAUSES``; 0 where the
    model predicts), its ``("aux", (smap, gldas))``: float32 arrays of the
    SMAP and GLDAS values at each map pixel's centre on the dataset's 0-255
    scale, NaN where the raster holds none (outside, nodata) or an invalid
    one; then ``("batch", (pixels, inputs))`` for each run of at
    most ``batch_size`` valid windows: ``pixels`` their ``(row, col)`` in the
    tile, ``inputs`` the decoded ``image``, ``low_res`` and ``aux`` arrays.

    Decoding is ``run_inference``'s: bands cast to float32 in the model's
    order, the DEM ``trunc(clip(elevation / 3000 * 255, 0, 255))``, SMAP and
    GLDAS divided by 255. With ``edge_mode`` ``pad``, scene pixels outside
    the scene are zeros (the model's own crop-or-pad) instead of NaN pixels.
    """
    s, w = geometry.stride, geometry.window
    region = geometry.region(tile)
    causes = np.zeros((tile.height, tile.width), dtype=np.uint8)
    outside = ~geometry.inside(np.arange(tile.row, tile.row + tile.height)[:, None],
                               np.arange(tile.col, tile.col + tile.width)[None, :])
    stacks, bad = decoded_stacks(scene, region)
    band_nodata = window_sums(bad, w, s, (tile.height, tile.width)) > 0
    aux, held = {}, []
    checks: List[np.ndarray] = [outside if edge_mode == "nan" else np.zeros_like(outside),
                                band_nodata]
    invalid = []
    for name in (schema.SMAP_SM, schema.GLDAS_SM):
        found = aux_values(scene, name, geometry, tile)
        aux[name] = found.values
        checks += [found.outside, found.nodata]
        invalid.append(found.invalid)
        held.append(np.where(found.outside | found.nodata | found.invalid, np.nan,
                             found.values).astype(np.float32))
    checks += invalid  # smap_invalid, gldas_invalid: in CAUSES after gldas_nodata
    for code, failed in reversed(list(enumerate(checks, start=1))):
        causes[failed] = code  # the first cause in CAUSES order wins
    yield "causes", causes
    yield "aux", tuple(held)
    valid = np.argwhere(causes == 0)
    for start in range(0, len(valid), batch_size):
        pixels = valid[start:start + batch_size]
        yield "batch", ([tuple(int(v) for v in p) for p in pixels],
                        decode_windows(stacks, aux, pixels, s, w))


def decode_windows(stacks: Dict[str, np.ndarray], aux: Dict[str, np.ndarray], pixels,
                   stride: int, window: int) -> Dict[str, np.ndarray]:
    """The model inputs of the windows of tile ``pixels`` (see ``tile_windows``):
    ``stacks`` holds the region's ``image`` and ``low_res`` bands as integers,
    channels-last, so each window is one copy of contiguous rows, cast to
    float32 on the way (the same rounding as ``run_inference``'s int64 ->
    float32 cast: none for integers below 2^24 in magnitude)."""
    n = len(pixels)
    out = {key: np.empty((n, window, window, stack.shape[-1]), np.float32)
           for key, stack in stacks.items()}
    out["aux"] = np.empty((n, 2), np.float32)
    for k, (a, b) in enumerate(pixels):
        r, c = a * stride, b * stride
        for key, stack in stacks.items():
            out[key][k] = stack[r:r + window, c:c + window]
        out["aux"][k] = (np.float32(aux[schema.SMAP_SM][a, b] / schema.AUX_SCALE),
                         np.float32(aux[schema.GLDAS_SM][a, b] / schema.AUX_SCALE))
    return out


def decoded_stacks(scene: Scene, region: Region) -> Tuple[Dict[str, np.ndarray], np.ndarray]:
    """``({"image": [h, w, 10], "low_res": [h, w, 4]} integers, nodata mask)``
    of ``region``: each band read once into an integer plane (the DEM by its
    rule, whose values are the integers 0-255), then the planes interleaved
    channels-last in one pass (``channels_last``). The values stay integers
    (half the memory of float32); ``decode_windows`` casts each window."""
    stacks = {}
    bad = np.zeros((region.height, region.width), dtype=bool)
    carried: Dict = {}  # the region's pixel centres in each file's grid, for every band
    for key, names in (("image", schema.IMAGE_BANDS), ("low_res", schema.LOW_RES_BANDS)):
        planes = None
        for channel, name in enumerate(names):
            values, nodata = read_region(scene.bands[name], scene.grid, region, carried)
            bad |= nodata
            if name == schema.NASA_DEM_ELEVATION:
                values = dem_to_model(values).astype(np.int16)  # exact: integers 0-255
            dtype = np.result_type(np.int16, values.dtype)
            if planes is None:
                planes = np.empty((len(names), region.height, region.width), dtype)
            elif not np.can_cast(dtype, planes.dtype):
                planes = planes.astype(np.result_type(planes.dtype, dtype))
            planes[channel] = values
        stacks[key] = channels_last(planes)
    return stacks, bad


def channels_last(planes: np.ndarray, rows: int = 64) -> np.ndarray:
    """``[C, H, W]`` planes as ``[H, W, C]``, copied ``rows`` rows at a time:
    one pass that writes each output cache line once, many times faster than
    writing one strided channel at a time."""
    channels, height, width = planes.shape
    out = np.empty((height, width, channels), planes.dtype)
    for r in range(0, height, rows):
        out[r:r + rows] = planes[:, r:r + rows].transpose(1, 2, 0)
    return out


def empty_block(tile: Tile) -> np.ndarray:
    return np.full((tile.height, tile.width), np.nan, dtype=np.float32)


def cause_counts(causes: np.ndarray) -> Dict[str, int]:
    """Map pixels of a tile by outcome: ``predicted`` and each of ``CAUSES``."""
    counts = np.bincount(causes.ravel(), minlength=len(CAUSES) + 1)
    return {"predicted": int(counts[0]),
            **{name: int(counts[k + 1]) for k, name in enumerate(CAUSES)}}

