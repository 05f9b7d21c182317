"""The map's files: a Cloud-Optimized GeoTIFF, its quicklook PNG, counts.

GDAL's COG driver only copies, so the blocks are first written into a tiled
GeoTIFF in a temporary folder, which is then copied as a COG (internal
tiles, overviews, DEFLATE) and moved to the output path under a temporary
name, then renamed: a reader never sees a partial map.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from typing import Dict, Iterable, Tuple

import numpy as np
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from transforms.mapping.geometry import MapGeometry, Tile
from transforms.mapping.scene import Scene
from transforms.mapping.tiles import CAUSES, cause_counts

BAND_DESCRIPTION = "soil_moisture_m3_m3"
QUICKLOOK_MAX_SIDE = 2048


def map_profile(scene: Scene, geometry: MapGeometry) -> Dict[str, object]:
    """The GeoTIFF profile of the map: float32, NaN nodata, the scene's CRS,
    the scene's transform scaled by the stride."""
    from affine import Affine
    from rasterio.crs import CRS

    rows, cols = geometry.shape
    block = 256 if min(rows, cols) >= 256 else 16 * max(1, min(rows, cols) // 16)
    return {"driver": "GTiff", "dtype": "float32", "count": 1, "height": rows, "width": cols,
            "crs": CRS.from_wkt(scene.grid.crs), "nodata": float("nan"),
            "transform": Affine(*scene.grid.transform) @ Affine.scale(geometry.stride),
            "tiled": True, "blockxsize": block, "blockysize": block}


def _move_into_place(local: str, output_path: str) -> None:
    """``local`` -> ``output_path`` via a temporary name beside it and a rename."""
    temp = f"{output_path}.tmp-{uuid.uuid4().hex}"
    if "://" in output_path:
        with open(local, "rb") as src, FileSystems.create(
                temp, compression_type=CompressionTypes.UNCOMPRESSED) as dst:
            while chunk := src.read(8 << 20):
                dst.write(chunk)
        FileSystems.rename([temp], [output_path])
    else:
        import shutil

        shutil.copyfile(local, temp)
        os.replace(temp, output_path)


def quicklook(cog: str, png: str, title: str) -> None:
    """A PNG of the map (decimated to at most ``QUICKLOOK_MAX_SIDE`` pixels a
    side, from the COG's overviews) with a colour bar in m³/m³."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import rasterio

    with rasterio.open(cog) as ds:
        scale = max(1, int(np.ceil(max(ds.height, ds.width) / QUICKLOOK_MAX_SIDE)))
        data = ds.read(1, out_shape=(max(1, ds.height // scale), max(1, ds.width // scale)))
    fig, ax = plt.subplots(figsize=(7, 6), constrained_layout=True)
    shown = ax.imshow(np.ma.masked_invalid(data), cmap="YlGnBu", vmin=0, vmax=0.6,
                      interpolation="nearest")
    fig.colorbar(shown, ax=ax, label="soil moisture (m³/m³)")
    ax.set_facecolor("0.85")  # NaN pixels (no prediction) show grey
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title + " (grey: no prediction)", fontsize=9)
    fig.savefig(png, dpi=110)
    plt.close(fig)


def write_map(blocks: Iterable[Tuple[Tile, np.ndarray, np.ndarray]], scene: Scene,
              geometry: MapGeometry, output_path: str, tags: Dict[str, str]) -> Dict[str, int]:
    """Write every tile's block into the map at ``output_path`` (a COG) and
    its quicklook (``<output_path without .tif>.png``).

    Returns:
        Map pixels by outcome: ``predicted`` and each of ``tiles.CAUSES``,
        and ``tiles``, the number of tiles written.

    Raises:
        RuntimeError: a tile written twice (a bug, never data).
    """
    import rasterio
    import rasterio.shutil
    from rasterio.windows import Window

    counts = {"predicted": 0, **{c: 0 for c in CAUSES}, "tiles": 0}
    written = set()
    with tempfile.TemporaryDirectory(prefix="map-") as folder:
        assembled, cog = os.path.join(folder, "map.tif"), os.path.join(folder, "cog.tif")
        with rasterio.open(assembled, "w", **map_profile(scene, geometry)) as dst:
            for tile, block, causes in blocks:
                if tuple(tile) in written:
                    raise RuntimeError(f"tile {tile} written twice")
                written.add(tuple(tile))
                dst.write(block, 1, window=Window(tile.col, tile.row, tile.width, tile.height))
                for key, n in cause_counts(causes).items():
                    counts[key] += n
                counts["tiles"] += 1
            dst.set_band_description(1, BAND_DESCRIPTION)
            dst.update_tags(**tags)
            dst.update_tags(1, units="m3/m3")
        rasterio.shutil.copy(assembled, cog, driver="COG", compress="DEFLATE",
                             overview_resampling="average", blocksize=256)
        png = os.path.join(folder, "quicklook.png")
        quicklook(cog, png, f"{os.path.basename(output_path)}: {tags.get('stride_m', '')}")
        _move_into_place(cog, output_path)
        _move_into_place(png, quicklook_path(output_path))
    return counts


def quicklook_path(output_path: str) -> str:
    root, ext = os.path.splitext(output_path)
    return (root if ext.lower() in (".tif", ".tiff") else output_path) + ".png"
