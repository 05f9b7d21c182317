"""Reading a scene (README: "Map your own scene"): which files hold which
band (``bands``), on which grids (``grids``), in which units
(``encoding``), from a folder or STAC (``files``, ``stac``), and how each
band reaches the map's grid (``sources.BandSource``: read as it lies,
resampled exactly, mosaicked, encoded). ``reader.read_scene`` puts it
together; the tile reader asks ``sources.read_region`` for a region of the
map's grid and ``sources.values_at`` for points on it.
"""

from transforms.mapping.scene.bands import (ALL_BANDS, AUX_BANDS, AUX_RANGE, IMAGE_BANDS,
                                            SourceFile)
from transforms.mapping.scene.encoding import Encoding, parse_encoding, read_encoding
from transforms.mapping.scene.files import SceneError, rasterio_path, read_failure
from transforms.mapping.scene.grids import Grid, crs_name, grid_difference
from transforms.mapping.scene.reader import (DEFAULT_GRID_LIKE, Scene, is_stac, read_scene,
                                             resampling_line, scene_files)
from transforms.mapping.scene.sources import (RESAMPLINGS, BandSource, Lookup, nodata_of,
                                              read_region, read_window, values_at)

__all__ = ["ALL_BANDS", "AUX_BANDS", "AUX_RANGE", "BandSource", "DEFAULT_GRID_LIKE", "Encoding",
           "Grid", "IMAGE_BANDS", "Lookup", "RESAMPLINGS", "Scene", "SceneError", "SourceFile",
           "crs_name", "grid_difference", "is_stac", "nodata_of", "parse_encoding",
           "rasterio_path", "read_encoding", "read_failure", "read_region", "read_scene",
           "read_window", "resampling_line", "scene_files", "values_at"]
