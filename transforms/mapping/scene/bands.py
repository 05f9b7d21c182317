"""Which band a scene file holds, and whether it can be read as one.

A band whose colour interpretation is alpha is a mask, never a band. A file
with one band is the band its file name names (``sentinel_1_VV.tif``), or
in a band folder the folder's band (``sentinel_2_B4/T33UWP.tif``): the name
wins over the band's description (which a ``.tif.aux.xml`` sidecar may set),
and a file named for one band whose description names another is refused:
which of the two it holds cannot be told. A single-band file whose name is
no band's is the band its description names; so is each band of a
multi-band file (in a band folder, the band described with the folder's
name).
"""

from __future__ import annotations

import dataclasses
import posixpath
from typing import List, Optional, Tuple

import numpy as np

from transforms.dataset import schema
from transforms.mapping.scene.files import SceneError
from transforms.mapping.scene.grids import Grid

IMAGE_BANDS: Tuple[str, ...] = (*schema.IMAGE_BANDS, *schema.LOW_RES_BANDS)
AUX_BANDS: Tuple[str, ...] = (schema.SMAP_SM, schema.GLDAS_SM)
ALL_BANDS: Tuple[str, ...] = (*IMAGE_BANDS, *AUX_BANDS)
#: the values SMAP and GLDAS hold in the dataset's encoding (0-255: divided by 255)
AUX_RANGE = (0, int(schema.AUX_SCALE))


@dataclasses.dataclass(frozen=True)
class SourceFile:
    """One band of one file.

    Attributes:
        path: the file.
        index: the band in it (1-based).
        nodata: its nodata value (None: none).
        grid: the file's grid.
        dtype: its values' type (``uint16``, ``float32``, ...).
    """

    path: str
    index: int
    nodata: Optional[float]
    grid: Grid
    dtype: str


def band_names(path: str, ds, folder_band: str = "") -> List[Tuple[int, str]]:
    """``(index, name)`` of each data band of an open file (the module's rules).

    Args:
        path: the file.
        ds: it, open (rasterio).
        folder_band: the band folder it lies in, or empty.

    Returns:
        The bands, by index.

    Raises:
        SceneError: a file named for one band and described as another.
    """
    from rasterio.enums import ColorInterp

    data = [k for k in range(1, ds.count + 1) if ds.colorinterp[k - 1] != ColorInterp.alpha]
    if len(data) != 1:
        described = [(k, ds.descriptions[k - 1] or "") for k in data]
        if folder_band:
            return [(k, name) for k, name in described if name == folder_band][:1] or [
                (data[0] if data else 1, f"none of its {len(data)} bands described as "
                                         f"{folder_band}")]
        return described
    index = data[0]
    stem = folder_band or posixpath.splitext(posixpath.basename(path))[0]
    described = ds.descriptions[index - 1] or ""
    if stem not in ALL_BANDS:
        return [(index, described)]
    if described in ALL_BANDS and described != stem:
        named = "lies in the folder of" if folder_band else "is named for"
        raise SceneError(f"{path} {named} band {stem} but its band is described as "
                         f"{described} (in the file or a .aux.xml beside it): rename the file "
                         f"or fix the description")
    return [(index, stem)]


def source_file(path: str, ds, index: int, name: str, encoded: bool) -> SourceFile:
    """Band ``index`` (``name``) of the open file ``ds``, checked.

    Args:
        path: the file.
        ds: it, open (rasterio).
        index: the band (1-based).
        name: the band it holds.
        encoded: whether ``--encoding`` gives the band's encoding.

    Returns:
        The band's ``SourceFile``.

    Raises:
        SceneError: naming the file and band: no band of the model, floats
            or a declared scale/offset without an encoding, no CRS, no
            geotransform (GCPs or RPCs alone), a degenerate one.
    """
    from affine import Affine

    from transforms.mapping.scene.grids import grid_of

    if name not in ALL_BANDS:
        raise SceneError(
            f"{path}: band {index} is {name!r}, no band of the model (name single-band files, "
            f"or describe the bands of a multi-band file, with the schema's names, e.g. "
            f"{IMAGE_BANDS[0]})")
    dtype = ds.dtypes[index - 1]
    if not encoded and not dtype.startswith(("int", "uint")):
        raise SceneError(f"{path}: band {name} holds {dtype} values and --encoding gives it no "
                         f"encoding: the dataset's bands are integers (give its scale and "
                         f"offset in the --encoding file)")
    scale, offset = ds.scales[index - 1], ds.offsets[index - 1]
    if not encoded and (scale, offset) != (1, 0):
        raise SceneError(f"{path}: band {name} declares scale {scale:g} and offset {offset:g}; "
                         f"the map needs the dataset's integer encoding as stored (write the "
                         f"values without scale/offset, or give the band an --encoding entry: "
                         f"it applies to the stored values)")
    if not ds.crs:
        raise SceneError(f"{path} has no CRS")
    t = Affine(*tuple(ds.transform)[:6])
    if t.is_identity:
        raise SceneError(f"{path} has no geotransform (GCPs or RPCs are not enough): its pixels "
                         f"are not placed on the ground; warp it to a north-up grid first "
                         f"(e.g. gdalwarp)")
    if t.determinant == 0 or not all(np.isfinite(tuple(t))):
        raise SceneError(f"{path} has a degenerate geotransform {tuple(t)[:6]}")
    return SourceFile(path, index, ds.nodatavals[index - 1], grid_of(ds), dtype)


def orientation_problem(grid: Grid) -> str:
    """Why a map cannot lie on ``grid`` (empty when it is north-up): the
    model was trained on north-up windows."""
    if grid.north_up:
        return ""
    a, b, _, d, e, _ = grid.transform
    how = "rotated" if b or d else "south-up" if e > 0 else "east-to-west"
    return (f"not north-up ({how}: transform {tuple(grid.transform)}); the model was trained "
            f"on north-up windows: give --grid_like a north-up band or GeoTIFF (the other "
            f"bands are resampled onto it), or warp the scene north-up first (e.g. gdalwarp)")
