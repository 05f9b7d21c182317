"""The ISMN side of a validation: the download's stations and their 0.05 m
soil-moisture sensor, each sensor's file read once, placed on the map and
matched to every map time.

* ``list_stations``: the download listed by file name
  (``insitu.ismn_files.list_data_files``, ``insitu.listing.build_catalog``);
  each station's sensor is the one the label merge picks, the released rule
  ``insitu.listing.resolve_sensor`` (the first, in the catalog's order,
  whose name holds ``0.05`` and ``soil_moisture``).
* ``ReadStationFn`` -> ``place_station``: the sensor's file parsed once
  through the ``ismn`` package (``ismn_files.read_located_readings``: its
  readings and the station's latitude and longitude), the station's map
  pixel (``maps.pixel``) and, for a station on the map, the released window
  rule (``insitu.window.match_readings``, inclusive +-tolerance in whole
  seconds) at every map time. A station off the map has its readings left
  unparsed.

A station's ``sensor_id`` is spelled as the dataset's:
``<NETWORK>__<STATION>__<SENSOR TYPE>``, here the ISMN network and station
names and the sensor's instrument, as the download names them.
"""

from __future__ import annotations

import logging
import math
from typing import Dict, NamedTuple, Optional, Tuple

import apache_beam as beam

from transforms.dataset import schema
from transforms.insitu import ismn_files, listing, window
from transforms.validation import maps

_LOG = logging.getLogger(__name__)

INSIDE, OUTSIDE_MAP, UNREADABLE = "inside", "outside_map", "unreadable"
#: ``window.Match.kind`` -> what it means at a map time
MATCH_OUTCOMES = {"success": "paired", "lookup": "no_reading", "value": "several_readings"}


class StationSensor(NamedTuple):
    """One ISMN station and the sensor that validates the map there.

    Attributes:
        network, station: the ISMN network and station names.
        sensor: the ``ismn`` package's sensor name (``listing.resolve_sensor``'s choice).
        instrument: the sensor's instrument.
        path: its data file, relative to the download's root.
    """

    network: str
    station: str
    sensor: str
    instrument: str
    path: str

    @property
    def sensor_id(self) -> str:
        """``<NETWORK>__<STATION>__<INSTRUMENT>``, the dataset's spelling."""
        return schema.SENSOR_ID_SEPARATOR.join((self.network, self.station, self.instrument))


class StationListing(NamedTuple):
    """A download's stations with a 0.05 m soil-moisture sensor.

    Attributes:
        path: the download (``--ismn_data_path``).
        data_files: its ISMN data files.
        stations: its stations, with or without such a sensor.
        sensors: one ``StationSensor`` per station that has one, sorted.
        error: why the download could not be listed (None: it was).
        provenance: what identifies the ISMN snapshot
            (``ismn_files.provenance``, as the merge records it).
    """

    path: str
    data_files: int
    stations: int
    sensors: Tuple[StationSensor, ...]
    error: Optional[str] = None
    provenance: Optional[Dict[str, object]] = None


def list_stations(ismn_path: str) -> StationListing:
    """The stations of a download and their 0.05 m soil-moisture sensor.

    Args:
        ismn_path: the download, zip or extracted folder (local or ``gs://``).

    Returns:
        The listing (with the snapshot's provenance); with ``error`` when
        the download cannot be listed or holds no ISMN data file in the
        ISMN layout.
    """
    try:
        paths = ismn_files.list_data_files(ismn_path)
    except listing.IsmnDataError as e:
        return StationListing(ismn_path, 0, 0, (), str(e))
    catalog = listing.build_catalog(paths)
    if not catalog.files:
        return StationListing(ismn_path, 0, 0, (), (
            f"ISMN download {ismn_path}: no ISMN data file found in the layout {listing.LAYOUT} "
            f"({len(paths)} .stm files seen)"))
    sensors = []
    for network in sorted(catalog.stations):
        for station, names in sorted(catalog.stations[network].items()):
            sensor = listing.resolve_sensor(names)
            if sensor is not None:
                sensors.append(StationSensor(network, station, sensor,
                                             catalog.instruments.get(sensor, sensor),
                                             catalog.files[(network, station, sensor)]))
    try:
        provenance = ismn_files.provenance(ismn_path, len(catalog.files))
    except Exception as e:  # noqa: BLE001 - the listing worked; provenance is a record only
        provenance = {"path": ismn_path, "error": f"{type(e).__name__}: {e}"}
    return StationListing(ismn_path, len(catalog.files),
                          sum(len(s) for s in catalog.stations.values()), tuple(sensors),
                          provenance=provenance)


def each_station(found: StationListing):
    """The ``StationSensor``s of a listing, one element each."""
    return found.sensors


class PlacedStation(NamedTuple):
    """A station placed on the map, with its reading outcome at every map time.

    Attributes:
        sensor: the station and its sensor.
        status: ``inside`` (on the map), ``outside_map`` or ``unreadable``
            (its file could not be parsed: ``error`` says why).
        latitude, longitude: the station's (None when unreadable).
        row, col: its map pixel (maybe off the map; None when unreadable or
            PROJ could not carry it to the map's CRS).
        matches: for a station on the map, per map time (``MapGrid.times_ms``
            order), ``paired``, ``no_reading`` or ``several_readings``.
        readings: the one reading of each ``paired`` time (NaN otherwise).
        error: why an ``unreadable`` station's file could not be parsed.
    """

    sensor: StationSensor
    status: str
    latitude: Optional[float] = None
    longitude: Optional[float] = None
    row: Optional[int] = None
    col: Optional[int] = None
    matches: Tuple[str, ...] = ()
    readings: Tuple[float, ...] = ()
    error: str = ""


def place_station(sensor: StationSensor, located: ismn_files.LocatedReadings,
                  grid: maps.MapGrid, tolerance_s: int,
                  good_flags_only: bool = False) -> PlacedStation:
    """Place one station on the map and apply the window rule at each map time.

    Args:
        sensor: the station and its sensor.
        located: its file's readings (None when off the map) and place.
        grid: the map's grid.
        tolerance_s: the window's half-width, whole seconds (inclusive).
        good_flags_only: only readings flagged ``G`` count.

    Returns:
        The ``PlacedStation``.
    """
    lat, lon = located.latitude, located.longitude
    row, col = maps.pixel(grid, lon, lat)
    if not maps.on_map(grid, row, col) or located.readings is None:
        return PlacedStation(sensor, OUTSIDE_MAP, lat, lon, row, col)
    matches, values = [], []
    for t_ms in grid.times_ms:
        m = window.match_readings(located.readings, window.timestamp_seconds(t_ms), tolerance_s,
                                  good_flags_only)
        matches.append(MATCH_OUTCOMES[m.kind])
        values.append(m.value if m.kind == "success" else math.nan)
    return PlacedStation(sensor, INSIDE, lat, lon, row, col, tuple(matches), tuple(values))


class ReadStationFn(beam.DoFn):
    """``StationSensor`` -> ``PlacedStation``: the sensor's file parsed once
    (its readings only when the station is on the map), placed and matched
    (``place_station``); an unparseable file gives an ``unreadable`` station.
    Keeps the zip (if the download is one) open for the DoFn's life.

    Args:
        ismn_path: the download.
        tolerance_s: the window's half-width, whole seconds.
        good_flags_only: only readings flagged ``G`` count.
    """

    def __init__(self, ismn_path: str, tolerance_s: int, good_flags_only: bool = False):
        self.ismn_path = ismn_path
        self.tolerance_s = tolerance_s
        self.good_flags_only = good_flags_only
        self._archive = ismn_files.OpenArchive(ismn_path)

    def teardown(self):
        self._archive.close()

    def process(self, sensor: StationSensor, grid: maps.MapGrid):
        def wanted(lat: float, lon: float) -> bool:
            return maps.on_map(grid, *maps.pixel(grid, lon, lat))

        try:
            located = ismn_files.read_located_readings(self.ismn_path, sensor.path,
                                                       self._archive.zip_file(), wanted=wanted)
        except listing.IsmnDataError as e:
            _LOG.error("%s", e)
            yield PlacedStation(sensor, UNREADABLE, error=str(e))
            return
        yield place_station(sensor, located, grid, self.tolerance_s, self.good_flags_only)
