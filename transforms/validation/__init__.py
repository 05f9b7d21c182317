"""A map's validation against the ISMN in-situ sensors on it
(``pipelines.validate_map``, QA4SM-style).

``maps`` reads what a map is (a soil-moisture cube in Zarr or a GeoTIFF map)
and its values at a few pixels, chunk by chunk; ``stations`` lists the ISMN
download's stations with their 0.05 m soil-moisture sensor (the label
merge's rule), reads each sensor's file once, places the station on the map
and applies the released window rule at each map time; ``pairs`` turns a
chunk's stations into outcomes and prediction rows; ``report`` writes
``pairs.csv``, ``stations.csv`` and ``validation.json`` and the lines and
Markdown section that say what was found. ``pipeline.ValidateMap`` wires
them; ``config.ValidationConfig`` holds the settings (one field per flag);
``job.run_validation`` runs it as one call. Evaluate's report on the pairs
is composed by the entry point, not here (flows never import each other).
"""

from transforms.validation.config import (PAIRS_FILE, STATIONS_FILE, SUMMARY_FILE,
                                          ValidationConfig)
from transforms.validation.job import build, check_inputs, run_validation
from transforms.validation.maps import (MapGrid, bounds_lonlat, chunk_of, is_cube_path, on_map,
                                        open_map, parse_time, pixel, read_pixels)
from transforms.validation.pairs import (OUTCOMES, StationResult, chunk_results, csv_line,
                                         pairs_csv, station_result, stations_csv)
from transforms.validation.pipeline import NAMESPACE, ValidateMap
from transforms.validation.report import (append_stations_section, stations_section, summarise,
                                          summary_line, write_outputs)
from transforms.validation.stations import (PlacedStation, ReadStationFn, StationListing,
                                            StationSensor, list_stations, place_station)

__all__ = ["MapGrid", "NAMESPACE", "OUTCOMES", "PAIRS_FILE", "PlacedStation", "ReadStationFn",
           "STATIONS_FILE", "SUMMARY_FILE", "StationListing", "StationResult", "StationSensor",
           "ValidateMap", "ValidationConfig", "append_stations_section", "bounds_lonlat", "build",
           "check_inputs", "chunk_of", "chunk_results", "csv_line", "is_cube_path", "list_stations",
           "on_map",
           "open_map", "pairs_csv", "parse_time", "pixel", "place_station", "read_pixels",
           "run_validation", "station_result", "stations_csv", "stations_section", "summarise",
           "summary_line", "write_outputs"]
