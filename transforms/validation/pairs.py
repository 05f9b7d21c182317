"""Stations on the map -> their outcome at every map time and the pairs.

Stations are keyed by the map chunk holding their pixel (``keyed_by_chunk``);
each chunk's stations read the map once (``chunk_results``:
``maps.read_pixels``, all times). At each (station, time) the outcome is, in
this order: ``nan_pixel`` (the map has no value there), else the window
rule's: ``no_reading``, ``several_readings`` (counted, never guessed) or
``paired``: a prediction row (``keys.PredictionRow``, run_inference's layout)
with the map's value as ``prediction``, the reading as ``label``, the cube's
``smap_sm``/``gldas_sm`` there (the dataset's 0-255 scale), the station's
latitude and longitude, and the map time as ``timestamp`` (Unix ms).

``csv_line`` writes a row as ``run_inference`` does: float32 values as the
shortest text that reads back as the same float32, the timestamp as
``repr(float)`` milliseconds, absent values empty; ``smap_sm``/``gldas_sm``
as integers (a value that is not a whole number, which predict_map never
writes, as its float32 text).
"""

from __future__ import annotations

import csv
import io
import math
from typing import Dict, Iterable, NamedTuple, Optional, Tuple

import numpy as np

from transforms.dataset import schema
from transforms.dataset.keys import PredictionRow
from transforms.validation import maps
from transforms.validation.stations import INSIDE, PlacedStation

#: the outcomes of a (station, time) on the map, in ``counts`` order
OUTCOMES = ("paired", "nan_pixel", "no_reading", "several_readings")
CSV_HEADER = ",".join(schema.ROW_COLUMNS)
_FLOAT32_COLUMNS = {schema.PREDICTION, schema.LABEL, schema.CENTER_LAT, schema.CENTER_LONG}
_MILLISECONDS = {schema.TIMESTAMP, schema.SENTINEL_1_AGE, schema.SENTINEL_2_AGE}


class StationResult(NamedTuple):
    """One station's outcome.

    Attributes:
        station: the placed station.
        counts: outcome -> (station, time) count, every one of ``OUTCOMES``
            (all 0 for a station not on the map).
        rows: its pairs, in map-time order.
    """

    station: PlacedStation
    counts: Dict[str, int]
    rows: Tuple[PredictionRow, ...] = ()


def keyed_by_chunk(station: PlacedStation, grid: maps.MapGrid):
    """``((chunk row, chunk col), station)`` for a station on the map; nothing otherwise.

    Args:
        station: a placed station.
        grid: the map's grid.
    """
    if station.status == INSIDE:
        yield maps.chunk_of(grid, station.row, station.col), station


def not_on_map(station: PlacedStation):
    """The ``StationResult`` (no outcome) of a station off the map or unreadable.

    Args:
        station: a placed station.
    """
    if station.status != INSIDE:
        yield StationResult(station, dict.fromkeys(OUTCOMES, 0))


def _finite(values: Optional[np.ndarray], i: int) -> Optional[float]:
    if values is None or not math.isfinite(values[i]):
        return None
    return float(values[i])


def _scale_value(value: Optional[float]):
    """A 0-255 value as an int when whole, else as it is."""
    return int(value) if value is not None and value.is_integer() else value


def station_result(station: PlacedStation, times_ms: Iterable[int],
                   values: Dict[str, np.ndarray]) -> StationResult:
    """The outcome at each map time of one station on the map.

    Args:
        station: the station (``inside``), with its window-rule matches.
        times_ms: the map's times, Unix ms, in the matches' order.
        values: variable -> its values at the station's pixel, one per time
            (``soil_moisture``; a cube's ``smap_sm`` and ``gldas_sm``).

    Returns:
        Its ``StationResult``.
    """
    counts = dict.fromkeys(OUTCOMES, 0)
    rows = []
    sm = values[maps.SOIL_MOISTURE]
    for i, t_ms in enumerate(times_ms):
        prediction = _finite(sm, i)
        outcome = "nan_pixel" if prediction is None else station.matches[i]
        counts[outcome] += 1
        if outcome != "paired":
            continue
        rows.append(PredictionRow(
            sensor_id=station.sensor.sensor_id, timestamp=float(t_ms), prediction=prediction,
            label=station.readings[i],
            smap_sm=_scale_value(_finite(values.get(maps.SMAP_SM), i)),
            gldas_sm=_scale_value(_finite(values.get(maps.GLDAS_SM), i)),
            center_lat=station.latitude, center_long=station.longitude, shard=None, index=None))
    return StationResult(station, counts, tuple(rows))


def chunk_results(keyed, grid: maps.MapGrid):
    """One chunk's stations -> their ``StationResult``s, the map read once
    for all of them (``maps.read_pixels``).

    Args:
        keyed: ``(chunk, stations)`` (``keyed_by_chunk`` grouped).
        grid: the map's grid.
    """
    _, stations = keyed
    stations = sorted(stations, key=lambda s: s.sensor.sensor_id)
    values = maps.read_pixels(grid, [s.row for s in stations], [s.col for s in stations])
    for i, station in enumerate(stations):
        yield station_result(station, grid.times_ms, {v: a[:, i] for v, a in values.items()})


def _cell(column: str, value) -> str:
    if value is None:
        return ""
    if column in _MILLISECONDS:
        return repr(float(value))  # the time's milliseconds, exactly
    if column in _FLOAT32_COLUMNS or isinstance(value, float):
        return str(np.float32(value))  # shortest text that reads back as the same float32
    return str(value)


def csv_line(row: PredictionRow) -> str:
    """A pair as one CSV line (no line end) under ``CSV_HEADER``.

    Args:
        row: the pair.
    """
    values = row.to_dict()
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow([_cell(c, values[c]) for c in schema.ROW_COLUMNS])
    return buf.getvalue()


def pairs_csv(results: Iterable[StationResult]) -> str:
    """``pairs.csv``: the header, then every pair sorted by (sensor_id, timestamp).

    Args:
        results: every station's result.
    """
    rows = sorted((r for result in results for r in result.rows),
                  key=lambda r: (r.sensor_id, r.timestamp))
    return "".join(f"{line}\n" for line in [CSV_HEADER, *map(csv_line, rows)])


STATION_COLUMNS = ("sensor_id", "status", "lat", "lon", "row", "col", *OUTCOMES, "ismn_file")


def stations_csv(results: Iterable[StationResult]) -> str:
    """``stations.csv``: one line per station with a 0.05 m sensor, sorted by
    ``sensor_id``: its status, place, pixel (maybe off the map) and outcome counts.

    Args:
        results: every station's result.
    """
    buf = io.StringIO()
    out = csv.writer(buf, lineterminator="\n")
    out.writerow(STATION_COLUMNS)
    for result in sorted(results, key=lambda r: r.station.sensor.sensor_id):
        s = result.station
        out.writerow([s.sensor.sensor_id, s.status,
                       *("" if v is None else repr(float(v)) for v in (s.latitude, s.longitude)),
                       *("" if v is None else int(v) for v in (s.row, s.col)),
                       *(result.counts[o] for o in OUTCOMES), s.sensor.path])
    return buf.getvalue()
