"""Prediction rows and their three output formats (CSV, Parquet, TFRecord).

A row (``keys.PredictionRow``) holds ``schema.ROW_COLUMNS``: the example's
identity and the scalars evaluation needs (from its ``ExampleKey``), and the
prediction. Float32
values are written as the shortest text that reads back as the same float32;
the timestamp as the stored float32 milliseconds, exactly.
"""

import csv
import io

import numpy as np

from transforms.dataset import example_proto, schema
from transforms.dataset.keys import PredictionRow

COLUMNS = schema.ROW_COLUMNS
CSV_HEADER = ",".join(COLUMNS)
_FLOAT32_COLUMNS = {schema.PREDICTION, schema.LABEL, schema.CENTER_LAT, schema.CENTER_LONG}
_INT64_COLUMNS = {schema.SMAP_SM, schema.GLDAS_SM, schema.INDEX, schema.LAND_COVER}
_TEXT_COLUMNS = {schema.SENSOR_ID, schema.SHARD}
_MILLISECONDS = {schema.TIMESTAMP, schema.SENTINEL_1_AGE, schema.SENTINEL_2_AGE}


def _cell(column: str, value) -> str:
    if value is None:
        return ""
    if column in _FLOAT32_COLUMNS:
        return str(np.float32(value))  # shortest text that reads back as the same float32
    if column in (schema.TIMESTAMP, schema.SENTINEL_1_AGE, schema.SENTINEL_2_AGE):
        return repr(float(value))  # the stored float32 milliseconds, exactly
    return str(value)


def csv_line(row: PredictionRow) -> str:
    """The row as one CSV line (no line end) under ``CSV_HEADER``."""
    values = row.to_dict()
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow([_cell(c, values[c]) for c in COLUMNS])
    return buf.getvalue()


def parquet_schema():
    """The Parquet schema of ``PredictionRow.to_dict()`` rows."""
    import pyarrow as pa

    def kind(column):
        if column in _TEXT_COLUMNS:
            return pa.string()
        if column in _INT64_COLUMNS:
            return pa.int64()
        return pa.float64() if column in _MILLISECONDS else pa.float32()

    return pa.schema([(c, kind(c)) for c in COLUMNS])


def tf_example(row: PredictionRow) -> bytes:
    """A row as a serialized ``tf.train.Example`` (absent values left out)."""
    features = {}
    for c, v in row.to_dict().items():
        if v is None:
            continue
        kind = "bytes" if c in _TEXT_COLUMNS else "int64" if c in _INT64_COLUMNS else "float"
        features[c] = (kind, [v.encode() if kind == "bytes" else v])
    return example_proto.encode_example(features)
