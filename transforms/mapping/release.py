"""Reading the released shards ``cut_examples --compare_with`` compares a
scene with: their records (``shard_records``), each example's centre and
acquisition days (``example_centre``) and bands (``band_values``), each refusal one line
naming the shard and record; and Pearson's r from pooled sums
(``correlation``).
"""

from __future__ import annotations

import datetime
import math
from typing import Dict, NamedTuple, Optional, Tuple

import numpy as np

from transforms.dataset import example_proto, schema
from transforms.mapping.points import coordinate_problem
from transforms.runtime.errors import InputError, UsageError

__all__ = ["ReleasedCentre", "band_values", "correlation", "example_centre", "shard_records"]

#: the fields that date an example's Sentinel-1 and Sentinel-2 acquisitions
ACQUISITION_FIELDS = ("sentinel_1_timestamp", "sentinel_2_timestamp")


class ReleasedCentre(NamedTuple):
    """Where a released example lies and when its images were taken.

    Attributes:
        lat, lon: its ``center_lat``, ``center_long``.
        size: its side (512 when it has no ``size``).
        acquired: the UTC days (``YYYY-MM-DD``) of its ``sentinel_1_timestamp``
            and ``sentinel_2_timestamp``, or None when it lacks either.
    """

    lat: float
    lon: float
    size: int
    acquired: Optional[Tuple[str, str]]


def utc_day(ms: float) -> str:
    """The UTC day (``2021-06-01``) of Unix milliseconds."""
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc).date().isoformat()


def band_values(record: bytes, names, size: int) -> Dict[str, np.ndarray]:
    """Each of ``names`` of an example as a flat float64 array: bands held as
    one packed ``Int64List`` of ``size * size`` values (the released layout)
    decoded by the compiled varint loop (``dataset.varints``), any other
    layout by the plain protobuf reader.

    Raises:
        MalformedExampleError: the record is not a tf.train.Example.
    """
    from transforms.dataset import varints

    spans = example_proto.packed_int64_spans(record, names)
    buf = np.frombuffer(record, np.uint8)
    out = np.empty((size * size, 1), np.float64)  # exact for integers below 2^53
    values, slow = {}, []
    for name in names:
        span = spans.get(name)
        if span is not None and varints.decode_band(buf, *span, out, 0, False, size, 0,
                                                    size) == size * size:
            values[name] = out[:, 0].copy()
        else:
            slow.append(name)
    if slow:
        found = example_proto.read_features(record, slow)
        values.update((n, np.asarray(found.get(n, []), np.float64)) for n in slow)
    return values


def shard_records(pattern: str):
    """``(path, index, record)`` of every record of the shards ``pattern``
    matches (``--compare_with``).

    Raises:
        UsageError: nothing matches, or the pattern is a folder.
        InputError: a matched shard that cannot be opened or read to its end.
    """
    from transforms.dataset import tfrecord_io

    try:
        paths = tfrecord_io.match_input_shards(pattern)
    except IsADirectoryError as e:
        raise UsageError(f"--compare_with {e}") from e
    except FileNotFoundError as e:
        raise UsageError(f"--compare_with: {e}") from e
    except tfrecord_io.UnreadableShardError as e:
        raise InputError(f"--compare_with: {e}") from e
    for path in paths:
        try:
            for index, record in enumerate(tfrecord_io.read_shard(path)):
                yield path, index, record
        except tfrecord_io.CorruptShardError as e:
            raise InputError(f"--compare_with: {e} (nothing compared)") from e


def example_centre(path: str, index: int, record: bytes) -> ReleasedCentre:
    """The centre, size and acquisition days of a released example (one
    pass over the record).

    Raises:
        InputError: naming the shard and record: not a tf.train.Example, or
            without a valid ``center_lat``/``center_long``.
    """
    where = f"--compare_with: {path}: record {index}"
    try:
        found = example_proto.read_features(
            record, (schema.CENTER_LAT, schema.CENTER_LONG, schema.SIZE, *ACQUISITION_FIELDS))
    except example_proto.MalformedExampleError as e:
        raise InputError(f"{where} is not a tf.train.Example ({e})") from e
    if not found.get(schema.CENTER_LAT) or not found.get(schema.CENTER_LONG):
        raise InputError(f"{where} has no {schema.CENTER_LAT}/{schema.CENTER_LONG}: "
                         f"--compare_with needs examples of the released schema")
    lat, lon = float(found[schema.CENTER_LAT][0]), float(found[schema.CENTER_LONG][0])
    problem = coordinate_problem(lat, lon)
    if problem:
        raise InputError(f"{where}: {schema.CENTER_LAT}/{schema.CENTER_LONG}: {problem}")
    size = int(found[schema.SIZE][0]) if found.get(schema.SIZE) else schema.RELEASED_IMAGE_SIZE
    times = [found.get(name) for name in ACQUISITION_FIELDS]
    acquired = (tuple(utc_day(float(t[0])) for t in times)
                if all(t and math.isfinite(t[0]) for t in times) else None)
    return ReleasedCentre(lat, lon, size, acquired)


def correlation(n: float, sa: float, sb: float, saa: float, sbb: float,
                sab: float) -> Optional[float]:
    """Pearson's r of ``n`` pairs from their sums (``sa``, ``sb``), sums of
    squares (``saa``, ``sbb``) and of products (``sab``), clipped to [-1, 1]
    (rounding in the sums gives 1.0000005 for identical large values); None
    when either side is constant."""
    cov = sab / n - sa / n * sb / n
    va, vb = saa / n - (sa / n) ** 2, sbb / n - (sb / n) ** 2
    if va <= 1e-12 or vb <= 1e-12:
        return None
    return min(1.0, max(-1.0, float(cov / math.sqrt(va * vb))))
