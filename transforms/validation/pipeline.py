"""A map's validation against the ISMN sensors on it, as one PTransform
(``pipelines.validate_map``).

1. ``Read map grid``: the map's metadata (``maps.open_map``), a side input.
2. ``List ISMN stations``: the download listed once by file name, each
   station with its 0.05 m soil-moisture sensor (``stations.list_stations``).
3. ``Read and place stations``: each sensor's file parsed once, the station
   placed on the map and matched to every map time (``stations.ReadStationFn``).
4. ``Group by map chunk`` / ``Read map at stations``: stations on the map
   keyed by the chunk holding their pixel; each chunk read once for all of
   them (``pairs.chunk_results``): the outcome of every (station, time).
5. ``Write pairs and counts``: ``pairs.csv``, ``stations.csv`` and
   ``validation.json`` (``report.write_outputs``).
"""

import dataclasses

import apache_beam as beam

from transforms.validation import maps, pairs, report, stations
from transforms.validation.config import ValidationConfig

NAMESPACE = "validate_map"


@dataclasses.dataclass
class ValidateMap(beam.PTransform):
    """Pipeline start -> one element, ``validation.json``'s content, once the
    files are written in ``config.output_dir``.

    Attributes:
        config: the validation's settings (map, ISMN download, tolerance,
            output folder).
    """

    config: ValidationConfig

    def expand(self, pbegin):
        c = self.config
        grid = beam.pvalue.AsSingleton(
            pbegin
            | "Map path" >> beam.Create([c.map])
            | "Read map grid" >> beam.Map(maps.open_map, c.time))
        found = (pbegin
                 | "ISMN path" >> beam.Create([c.ismn_data_path])
                 | "List ISMN stations" >> beam.Map(stations.list_stations))
        placed = (found
                  | "Each station" >> beam.FlatMap(stations.each_station)
                  | "Spread stations" >> beam.Reshuffle()
                  | "Read and place stations" >> beam.ParDo(stations.ReadStationFn(
                      c.ismn_data_path, c.tolerance_seconds, c.ismn_good_flags_only), grid))
        on_map = (placed
                  | "Key by map chunk" >> beam.FlatMap(pairs.keyed_by_chunk, grid)
                  | "Group by map chunk" >> beam.GroupByKey()
                  | "Read map at stations" >> beam.FlatMap(pairs.chunk_results, grid))
        elsewhere = placed | "Stations not on the map" >> beam.FlatMap(pairs.not_on_map)
        return ((on_map, elsewhere)
                | "All stations" >> beam.Flatten()
                | "Collect stations" >> beam.combiners.ToList()
                | "Write pairs and counts" >> beam.Map(
                    report.write_outputs, beam.pvalue.AsSingleton(found), grid, c))
