"""What identifies an example, read from its wire format, and the prediction
row that carries it.

* ``first_values`` and its readers (``sensor_id_of``, ``label_of``): a few
  scalar fields of a record, never decoding its images.
* ``ExampleKey`` (``example_key``): an example's place (shard, index) and the
  scalars an output row carries.
* ``PredictionRow`` (``row``): one line of ``run_inference``'s output,
  ``schema.ROW_COLUMNS`` in order.
* ``image_side``: the side of an example's square images.
"""

from __future__ import annotations

import dataclasses
import json
import posixpath
from typing import Dict, NamedTuple, Optional, Sequence

from transforms.dataset import example_proto, schema


def first_values(record: bytes, names: Sequence[str]) -> Dict[str, object]:
    """The first value of each of ``names`` the record has.

    Raises:
        MalformedExampleError: the record is not a tf.train.Example.
    """
    return {name: values[0] for name, values in example_proto.read_features(record, names).items()
            if values}


def sensor_id_of(values: Dict[str, object]) -> Optional[str]:
    """``sensor_id`` from ``first_values`` (None when absent or not bytes)."""
    sid = values.get(schema.SENSOR_ID)
    return sid.decode("utf-8", "replace") if isinstance(sid, bytes) else None


def label_of(values: Dict[str, object]) -> Optional[float]:
    """The label from ``first_values``: ``sm_0_5``, else ``sm_5_5``, else None."""
    for key in schema.LABEL_KEYS:
        if values.get(key) is not None:
            return values[key]
    return None


class ExampleKey(NamedTuple):
    """What an output row says about its example besides the prediction."""

    shard: str
    index: int
    sensor_id: Optional[str]
    timestamp: Optional[float]
    label: Optional[float]
    smap_sm: Optional[int]
    gldas_sm: Optional[int]
    center_lat: Optional[float]
    center_long: Optional[float]
    land_cover: Optional[int] = None
    sentinel_1_age: Optional[float] = None
    sentinel_2_age: Optional[float] = None


_KEY_FIELDS = (schema.SENSOR_ID, schema.TIMESTAMP, *schema.LABEL_KEYS, schema.SMAP_SM,
               schema.GLDAS_SM, schema.CENTER_LAT, schema.CENTER_LONG, schema.SENTINEL_1_AGE,
               schema.SENTINEL_2_AGE)


def land_cover_of(record: bytes) -> Optional[int]:
    """The land-cover class at the centre pixel, when the example has the
    band as a packed int64 list (None otherwise).

    Raises:
        MalformedExampleError: the record is not a tf.train.Example.
    """
    import numpy as np

    from transforms.dataset import varints

    span = example_proto.packed_int64_spans(record, (schema.LAND_COVER_BAND,)).get(
        schema.LAND_COVER_BAND)
    if span is None:
        return None
    value = varints.centre_value(np.frombuffer(record, np.uint8), *span)
    return None if value < 0 else int(value)


def _number(value) -> Optional[float]:
    return value if isinstance(value, (int, float)) else None


def example_key(shard: str, index: int, record: bytes) -> ExampleKey:
    """The row metadata of the record at ``index`` of ``shard``.

    Raises:
        MalformedExampleError: the record is not a tf.train.Example.
    """
    found = first_values(record, _KEY_FIELDS)
    return ExampleKey(shard, index, sensor_id_of(found), found.get(schema.TIMESTAMP),
                      label_of(found), found.get(schema.SMAP_SM), found.get(schema.GLDAS_SM),
                      found.get(schema.CENTER_LAT), found.get(schema.CENTER_LONG),
                      land_cover_of(record), _number(found.get(schema.SENTINEL_1_AGE)),
                      _number(found.get(schema.SENTINEL_2_AGE)))


@dataclasses.dataclass(frozen=True)
class PredictionRow:
    """One output row of ``run_inference``: ``schema.ROW_COLUMNS``, in order.

    Attributes:
        sensor_id, timestamp, label, smap_sm, gldas_sm, center_lat,
        center_long, land_cover: the example's, as read (None when absent).
        prediction: the model's output (None in rows of the baselines alone).
        shard: the input shard's file name; index: the record's position in it.
        sentinel_1_age, sentinel_2_age: ``sentinel_{1,2}_time_millis_diff``.
    """

    sensor_id: Optional[str]
    timestamp: Optional[float]
    prediction: Optional[float]
    label: Optional[float]
    smap_sm: Optional[int]
    gldas_sm: Optional[int]
    center_lat: Optional[float]
    center_long: Optional[float]
    shard: str
    index: int
    land_cover: Optional[int] = None
    sentinel_1_age: Optional[float] = None
    sentinel_2_age: Optional[float] = None

    def to_dict(self) -> Dict[str, object]:
        """Column name (``schema.ROW_COLUMNS``) -> value."""
        return {column: getattr(self, name) for column, name in _COLUMN_FIELDS}

    def to_json(self) -> str:
        """The row as one JSON object (keys sorted, no newline)."""
        return json.dumps(self.to_dict(), sort_keys=True)


#: (column, field) pairs of ``PredictionRow``, in column order (the fields
#: are the columns; two ages have shorter names). ``to_dict`` runs once per
#: output row, so it reads them directly rather than through ``astuple``,
#: which deep-copies every value.
_COLUMN_FIELDS = tuple(zip(schema.ROW_COLUMNS,
                           (f.name for f in dataclasses.fields(PredictionRow))))


def row(key: ExampleKey, prediction: Optional[float]) -> PredictionRow:
    """The prediction row of the example ``key`` identifies; ``prediction``
    None for the rows of the baselines alone."""
    return PredictionRow(key.sensor_id, key.timestamp, prediction, key.label, key.smap_sm,
                         key.gldas_sm, key.center_lat, key.center_long,
                         posixpath.basename(key.shard), key.index, key.land_cover,
                         key.sentinel_1_age, key.sentinel_2_age)


def image_side(record: bytes, band: str = schema.IMAGE_BANDS[0]) -> Optional[int]:
    """The side N of an example's N x N images (from one band's value count),
    or None when the band is absent or not square."""
    values = example_proto.read_features(record, (band,)).get(band)
    if not values:
        return None
    side = int(round(len(values) ** 0.5))
    return side if side * side == len(values) else None
