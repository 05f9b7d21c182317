"""The points ``cut_examples`` cuts examples at: the ``--points`` CSV read
and checked, one ``Point`` a line, and the range of an example's time."""

from __future__ import annotations

import math
from typing import List, NamedTuple

from transforms.runtime.errors import InputError, UsageError

#: The columns of ``--points``.
POINT_COLUMNS = ("sensor_id", "lat", "lon")
#: an example's timestamp range: Sentinel-1A's launch (2014-04-03T00:00Z) to
#: now + 1 day, in Unix ms (``pipelines.cut_examples --timestamp``)
EARLIEST_MS, DAY_MS = 1396483200000.0, 86400000.0


class Point(NamedTuple):
    """A place to cut an example at: ``sensor_id``, WGS84 ``lat`` and ``lon``."""

    sensor_id: str
    lat: float
    lon: float


def coordinate_problem(lat: float, lon: float) -> str:
    """Why ``(lat, lon)`` is no WGS84 point ("" when it is one)."""
    if not (math.isfinite(lat) and -90 <= lat <= 90):
        return f"lat {lat} is not between -90 and 90"
    if not (math.isfinite(lon) and -180 <= lon <= 180):
        return f"lon {lon} is not between -180 and 180"
    return ""


def read_points(path: str) -> List[Point]:
    """The points of a ``--points`` CSV: a header naming ``sensor_id``,
    ``lat`` and ``lon`` (WGS84 degrees; other columns are ignored), one
    point a line, UTF-8 with or without a byte-order mark.

    Args:
        path: the CSV file.

    Returns:
        The points, in the file's order.

    Raises:
        UsageError: the file cannot be opened (missing, a folder).
        InputError: naming the file (and the line): not UTF-8 text, a
            column missing or named twice, a line with more fields than the
            header, an empty sensor_id, a lat or lon that is not a
            number between -90 and 90 (-180 and 180), no point at all.
    """
    import csv

    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            header = [name.strip() for name in reader.fieldnames or []]
            missing = [c for c in POINT_COLUMNS if c not in header]
            repeated = sorted({c for c in header if header.count(c) > 1} & set(POINT_COLUMNS))
            if repeated:
                raise InputError(f"{path}: its header names {','.join(repeated)} more than "
                                 f"once: which one holds the points cannot be told")
            if missing:
                raise InputError(f"{path}: lacks the columns {','.join(missing)}: its header "
                                 f"must name {','.join(POINT_COLUMNS)} (it is "
                                 f"{','.join(header) or 'empty'})")
            reader.fieldnames = header
            points = []
            for row in reader:
                where = f"{path}: line {reader.line_num}"
                if None in row:  # more fields than the header names
                    raise InputError(f"{where}: {len(header) + len(row[None])} fields, the "
                                     f"header names {len(header)}")
                sensor_id = (row["sensor_id"] or "").strip()
                if not sensor_id:
                    raise InputError(f"{where}: no sensor_id")
                try:
                    lat, lon = float(row["lat"]), float(row["lon"])
                except (TypeError, ValueError):
                    raise InputError(f"{where}: lat {row['lat']!r} and lon {row['lon']!r} "
                                     f"must be numbers (WGS84 degrees)") from None
                problem = coordinate_problem(lat, lon)
                if problem:
                    raise InputError(f"{where}: {problem} ({sensor_id})")
                points.append(Point(sensor_id, lat, lon))
    except UnicodeDecodeError as e:
        raise InputError(f"{path} is not UTF-8 text ({e.reason} at byte {e.start})") from e
    except csv.Error as e:
        raise InputError(f"{path}: not a CSV file ({e})") from e
    except OSError as e:
        raise UsageError(f"--points {path}: {e.strerror or e}") from e
    if not points:
        raise InputError(f"{path} holds no point, only its header")
    return points
