"""Soil-moisture maps (``pipelines.predict_map``): the model over co-registered
rasters, one window a map pixel (README: predict_map).

``scene`` finds a scene's bands and grids; ``geometry`` says where each map
pixel's window lies; ``tiles`` reads a tile's region and decodes its windows
as ``run_inference`` decodes an example; ``pipeline.PredictMap`` runs them
through the model (``model_runner.windows``: this flow stands on the model
runtime as well as on ``transforms.dataset``); ``writer`` writes the COG, its
quicklook and the counts; ``config.MapConfig`` holds the settings and
``job.run_map`` runs it all as one call. Several scenes through time make a
Zarr cube (``cube``, ``cube_store``) or a folder of maps (``cube_job``,
``series_output``); ``maps.run_maps`` chooses.
"""

from transforms.mapping.config import MapConfig, SceneSettings, add_scene_arguments
from transforms.mapping.geometry import MapGeometry, Region, Tile
from transforms.mapping.job import check_inputs, nodata_text, nothing_predicted_line, run_map
from transforms.mapping.maps import run_maps
from transforms.mapping.pipeline import NAMESPACE, PredictMap
from transforms.mapping.scene import Scene, SceneError, read_scene
from transforms.mapping.series_output import series_report
from transforms.mapping.tiles import CAUSES, EDGE_MODES

__all__ = ["CAUSES", "EDGE_MODES", "MapConfig", "MapGeometry", "NAMESPACE", "PredictMap",
           "Region", "Scene", "SceneError", "SceneSettings", "Tile", "add_scene_arguments",
           "check_inputs", "nodata_text", "nothing_predicted_line", "read_scene", "run_map",
           "run_maps", "series_report"]
