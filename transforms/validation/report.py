"""What a validation writes and says: ``pairs.csv``, ``stations.csv`` and
``validation.json`` (``write_outputs``), its printed line (``summary_line``)
and the "Stations" section it adds to evaluate's ``metrics.md``
(``append_stations_section``).

``validation.json`` counts every station with a 0.05 m soil-moisture sensor
once (``inside`` the map, ``outside_map`` or ``unreadable``) and every
(station on the map, map time) once, by outcome (``pairs.OUTCOMES``);
``accounted`` says the outcomes add up to stations inside x times. ``usable``
is False, with ``error`` saying why in one line, when there is nothing to
evaluate: a download that cannot be listed or has no such sensor, no
station on the map, or no pair.
"""

from __future__ import annotations

import datetime
from typing import Dict, List, Sequence

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from transforms.dataset import files
from transforms.validation import maps
from transforms.validation.config import (PAIRS_FILE, STATIONS_FILE, SUMMARY_FILE,
                                          ValidationConfig)
from transforms.validation.pairs import OUTCOMES, StationResult, pairs_csv, stations_csv
from transforms.validation.stations import INSIDE, OUTSIDE_MAP, UNREADABLE, StationListing


def _iso(t_ms: int) -> str:
    when = datetime.datetime.fromtimestamp(t_ms / 1000, datetime.timezone.utc)
    return when.strftime("%Y-%m-%dT%H:%M:%S") + "Z"


def map_description(grid: maps.MapGrid) -> Dict[str, object]:
    """What ``validation.json`` says of the map.

    Args:
        grid: the map's grid.
    """
    west, south, east, north = maps.bounds_lonlat(grid)
    return {"path": grid.path, "kind": grid.kind, "times": [_iso(t) for t in grid.times_ms],
            "crs": grid.crs, "shape": [len(grid.times_ms), grid.height, grid.width],
            "geotransform": list(grid.transform), "chunk": list(grid.chunk),
            "variables": list(grid.variables), "product": grid.product,
            "bounds_lonlat": {"west": west, "south": south, "east": east, "north": north}}


def _why_unusable(found: StationListing, grid: maps.MapGrid, by_status, outcomes,
                  tolerance_s: int):
    if found.error:
        return found.error
    if not found.sensors:
        return (f"ISMN download {found.path}: none of its {found.stations} stations has a "
                f"0.05 m soil-moisture sensor (a sensor named with '0.05' and 'soil_moisture'); "
                f"nothing to validate")
    if not by_status[INSIDE]:
        b = map_description(grid)["bounds_lonlat"]
        return (f"no station of the ISMN download {found.path} lies on the map {grid.path} "
                f"(longitude {b['west']:.4f} to {b['east']:.4f}, latitude {b['south']:.4f} "
                f"to {b['north']:.4f}): {len(by_status[OUTSIDE_MAP])} outside it, "
                f"{len(by_status[UNREADABLE])} unreadable")
    if not outcomes["paired"]:
        counts = ", ".join(f"{n} {o}" for o, n in outcomes.items() if n)
        return (f"no pair: {len(by_status[INSIDE])} stations of {found.path} lie on the map "
                f"{grid.path}, but at none of its {len(grid.times_ms)} times does one have a "
                f"value and exactly one reading within +-{tolerance_s} s ({counts})")
    return None


def summarise(results: Sequence[StationResult], found: StationListing, grid: maps.MapGrid,
              config: ValidationConfig) -> Dict[str, object]:
    """``validation.json``'s content.

    Args:
        results: every station's result.
        found: the download's listing.
        grid: the map's grid.
        config: the validation's settings.

    Returns:
        The map, the download, the tolerance, stations by status, outcomes
        of the (station, time)s on the map, ``accounted``, ``usable`` and
        ``error``.
    """
    by_status: Dict[str, List[StationResult]] = {INSIDE: [], OUTSIDE_MAP: [], UNREADABLE: []}
    for r in results:
        by_status[r.station.status].append(r)
    outcomes = {o: sum(r.counts[o] for r in by_status[INSIDE]) for o in OUTCOMES}
    station_times = len(by_status[INSIDE]) * len(grid.times_ms)
    accounted = (sum(outcomes.values()) == station_times and len(results) == len(found.sensors)
                 and all(sum(r.counts.values()) == len(grid.times_ms) for r in by_status[INSIDE]))
    error = _why_unusable(found, grid, by_status, outcomes, config.tolerance_seconds)
    return {
        "map": map_description(grid),
        "ismn": {"path": found.path, "data_files": found.data_files,
                 "stations_listed": found.stations, "error": found.error,
                 "provenance": found.provenance},
        "time_tolerance_minutes": config.time_tolerance_minutes,
        "tolerance_seconds": config.tolerance_seconds,
        "ismn_good_flags_only": config.ismn_good_flags_only,
        "stations": {"with_05m_sensor": len(found.sensors), INSIDE: len(by_status[INSIDE]),
                     OUTSIDE_MAP: len(by_status[OUTSIDE_MAP]),
                     UNREADABLE: len(by_status[UNREADABLE])},
        "unreadable_files": [{"sensor_id": r.station.sensor.sensor_id, "error": r.station.error}
                             for r in sorted(by_status[UNREADABLE],
                                             key=lambda r: r.station.sensor.sensor_id)],
        "outcomes": outcomes, "station_times": station_times, "accounted": accounted,
        "pairs": outcomes["paired"], "usable": error is None, "error": error,
        "files": [PAIRS_FILE, STATIONS_FILE, SUMMARY_FILE],
    }


def write_outputs(results: Sequence[StationResult], found: StationListing, grid: maps.MapGrid,
                  config: ValidationConfig) -> Dict[str, object]:
    """Write ``pairs.csv`` (a header alone when there is no pair),
    ``stations.csv`` and ``validation.json`` in ``config.output_dir``, each
    atomically.

    Args:
        results: every station's result.
        found: the download's listing.
        grid: the map's grid.
        config: the validation's settings.

    Returns:
        ``validation.json``'s content (``summarise``).
    """
    summary = summarise(results, found, grid, config)
    files.write_bytes_atomically(config.output(PAIRS_FILE), pairs_csv(results).encode())
    files.write_bytes_atomically(config.output(STATIONS_FILE), stations_csv(results).encode())
    files.write_json_atomically(config.output(SUMMARY_FILE), summary)
    return summary


def summary_line(summary: Dict[str, object], output_dir: str) -> str:
    """The one line a validation prints: stations and outcomes by cause.

    Args:
        summary: ``validation.json``'s content.
        output_dir: where its files are.
    """
    s, o = summary["stations"], summary["outcomes"]
    return (f"Validated {summary['map']['path']} against {summary['ismn']['path']}: "
            f"{s['with_05m_sensor']} stations with a 0.05 m sensor, {s[INSIDE]} on the map, "
            f"{s[OUTSIDE_MAP]} outside_map, {s[UNREADABLE]} unreadable; "
            f"{summary['station_times']} station-times: "
            + ", ".join(f"{o[k]} {k}" for k in OUTCOMES)
            + f" (pairs: {FileSystems.join(output_dir, PAIRS_FILE)}, per station: "
              f"{FileSystems.join(output_dir, STATIONS_FILE)})")


def stations_section(summary: Dict[str, object]) -> str:
    """The "Stations" section (Markdown) added to evaluate's ``metrics.md``.

    Args:
        summary: ``validation.json``'s content.
    """
    s, o, m = summary["stations"], summary["outcomes"], summary["map"]
    return "\n".join([
        "", "## Stations", "",
        f"The map `{m['path']}` ({m['kind']}, {len(m['times'])} times) against the ISMN "
        f"download `{summary['ismn']['path']}`, one reading within ±"
        f"{summary['tolerance_seconds']} s of a map time"
        + (" (flagged G)" if summary["ismn_good_flags_only"] else "") + ":", "",
        "| Stations with a 0.05 m sensor | on the map | outside_map | unreadable |",
        "| ---: | ---: | ---: | ---: |",
        f"| {s['with_05m_sensor']} | {s[INSIDE]} | {s[OUTSIDE_MAP]} | {s[UNREADABLE]} |", "",
        "| Station-times on the map | " + " | ".join(OUTCOMES) + " |",
        "| ---: | " + " | ".join("---:" for _ in OUTCOMES) + " |",
        f"| {summary['station_times']} | " + " | ".join(str(o[k]) for k in OUTCOMES) + " |", "",
        f"Per station: `{STATIONS_FILE}`; the pairs evaluated: `{PAIRS_FILE}`; the counts: "
        f"`{SUMMARY_FILE}`.", ""])


def append_stations_section(output_dir: str, summary: Dict[str, object]) -> str:
    """Add ``stations_section`` to the end of the ``metrics.md`` evaluate
    wrote in ``output_dir`` (rewritten atomically).

    Args:
        output_dir: the folder of the report.
        summary: ``validation.json``'s content.

    Returns:
        The path of ``metrics.md``.
    """
    path = FileSystems.join(output_dir, "metrics.md")
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        text = f.read().decode()
    files.write_bytes_atomically(path, (text.rstrip("\n") + "\n" + stations_section(summary))
                                 .encode())
    return path
