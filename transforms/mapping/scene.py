"""A scene: co-registered GeoTIFFs holding the model's bands in the dataset's
own encoding, and the SMAP and GLDAS rasters (README: Maps).

Bands are found by file name (a single-band ``sentinel_1_VV.tif``) or by band
description (a multi-band GeoTIFF whose bands are described with the
schema's names). The model's 14 image bands must share one grid; ``smap_sm``
and ``gldas_sm`` may each have their own grid and CRS. Only metadata is read
here; pixels are read a tile at a time (``tiles``).
"""

from __future__ import annotations

import dataclasses
import posixpath
from typing import Dict, List, Optional, Tuple

from apache_beam.io.filesystems import FileSystems

from transforms.dataset import schema

IMAGE_BANDS: Tuple[str, ...] = (*schema.IMAGE_BANDS, *schema.LOW_RES_BANDS)
AUX_BANDS: Tuple[str, ...] = (schema.SMAP_SM, schema.GLDAS_SM)
SUFFIXES = (".tif", ".tiff")


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
    return Grid(dataset.crs.to_wkt() if dataset.crs else "", tuple(dataset.transform)[:6],
                dataset.height, dataset.width)


def _describe(grid: Grid) -> str:
    return (f"{grid.width}x{grid.height} pixels, transform "
            f"{tuple(round(v, 6) for v in grid.transform)}")


def scene_files(scene_path: str) -> List[str]:
    """The GeoTIFFs of a scene folder, sorted (SceneError when there is none)."""
    pattern = FileSystems.join(scene_path.rstrip("/"), "*")
    found = sorted(m.path for m in FileSystems.match([pattern])[0].metadata_list
                   if m.path.lower().endswith(SUFFIXES))
    if not found:
        raise SceneError(f"no GeoTIFF (*.tif) in the scene folder {scene_path}")
    return found


def read_scene(scene_path: str) -> Scene:
    """The scene in ``scene_path``: every band found, every grid checked.

    Raises:
        SceneError: naming the file or band: a file that is not a readable
            GeoTIFF, an unknown or repeated band, a band missing, a band of
            floats (the dataset's bands are integers), image bands on
            different grids, a raster without a CRS.
    """
    import rasterio

    found: Dict[str, BandSource] = {}
    grids: Dict[str, Grid] = {}
    for path in scene_files(scene_path):
        try:
            with rasterio.open(rasterio_path(path)) as ds:
                names = ([posixpath.splitext(posixpath.basename(path))[0]] if ds.count == 1
                         and not (ds.descriptions[0] or "") in (*IMAGE_BANDS, *AUX_BANDS)
                         else [d or "" for d in ds.descriptions])
                for index, (name, dtype) in enumerate(zip(names, ds.dtypes), start=1):
                    if name not in (*IMAGE_BANDS, *AUX_BANDS):
                        raise SceneError(
                            f"{path}: band {index} is {name!r}, no band of the model (name "
                            f"single-band files, or describe the bands of a multi-band file, "
                            f"with the schema's names, e.g. {IMAGE_BANDS[0]})")
                    if name in found:
                        raise SceneError(f"{path}: band {name} is also in {found[name].path}")
                    if not dtype.startswith(("int", "uint")):
                        raise SceneError(f"{path}: band {name} holds {dtype} values; the "
                                         f"dataset's bands are integers (its own encoding)")
                    if not ds.crs:
                        raise SceneError(f"{path} has no CRS")
                    found[name] = BandSource(path, index, ds.nodatavals[index - 1])
                    grids[name] = grid_of(ds)
        except rasterio.errors.RasterioError as e:
            raise SceneError(f"{path} is not a readable GeoTIFF: {e}") from e
    missing = [n for n in (*IMAGE_BANDS, *AUX_BANDS) if n not in found]
    if missing:
        raise SceneError(f"the scene {scene_path} lacks the bands {', '.join(missing)}")
    first = IMAGE_BANDS[0]
    for name in IMAGE_BANDS[1:]:
        if grids[name] != grids[first]:
            raise SceneError(
                f"band {name} ({found[name].path}: {_describe(grids[name])}) is not on the grid "
                f"of {first} ({found[first].path}: {_describe(grids[first])}); the model's "
                f"bands must share one grid")
    return Scene(scene_path, {n: found[n] for n in IMAGE_BANDS},
                 {n: found[n] for n in AUX_BANDS}, grids[first],
                 {n: grids[n] for n in AUX_BANDS})
