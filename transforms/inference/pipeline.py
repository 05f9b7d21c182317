"""DoFns and PTransforms of ``pipelines.run_inference``, and the sample mode.

Shards are read record by record (``ReadExamplesFn``); the few scalars the
output rows carry are taken from each record's wire format, and the record
itself goes, keyed by ``ExampleKey``, through Beam's ``RunInference`` with
``model_runner.model.SoilMoistureModelHandler``. Results become output rows or
failure records (unreadable shard tails, malformed records, examples missing
a band or with the wrong image size).
"""

import csv
import dataclasses
import io
import logging
import posixpath
import time
from typing import Dict, Iterator, List, NamedTuple, Optional, Tuple

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics

from transforms.dataset import example_proto, schema, tfrecord_io
from transforms.runtime.progress import ShardProgress

NAMESPACE = "run_inference"
_LOG = logging.getLogger(__name__)

#: Output columns, in order.
COLUMNS = ("sensor_id", "timestamp", "prediction", "label", "smap_sm", "gldas_sm",
           "center_lat", "center_long", "shard", "index")
_META_KEYS = (schema.SENSOR_ID, schema.TIMESTAMP, *schema.LABEL_KEYS, schema.SMAP_SM,
              schema.GLDAS_SM, schema.CENTER_LAT, schema.CENTER_LONG)


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


def example_key(shard: str, index: int, record: bytes) -> ExampleKey:
    """The row metadata of a record (raises MalformedExampleError)."""
    found = example_proto.read_features(record, _META_KEYS)

    def first(name):
        values = found.get(name)
        return values[0] if values else None

    sid = first(schema.SENSOR_ID)
    label = first(schema.SM_0_5)
    if label is None:
        label = first(schema.SM_5_5)
    return ExampleKey(shard, index, sid.decode("utf-8", "replace") if isinstance(sid, bytes) else None,
                      first(schema.TIMESTAMP), label, first(schema.SMAP_SM), first(schema.GLDAS_SM),
                      first(schema.CENTER_LAT), first(schema.CENTER_LONG))


def failure(shard: str, index: int, kind: str, reason: str,
            key: Optional[ExampleKey] = None) -> Dict[str, object]:
    return {"shard": posixpath.basename(shard), "path": shard, "index": index, "kind": kind,
            "sensor_id": key.sensor_id if key else None,
            "timestamp": key.timestamp if key else None, "reason": reason}


class ReadExamplesFn(beam.DoFn):
    """Shard path -> ``(ExampleKey, serialized)``; tagged ``failures``."""

    FAILURES = "failures"

    def __init__(self, progress_dir: Optional[str] = None):
        self.progress_dir = progress_dir
        self.read = Metrics.counter(NAMESPACE, "examples_read")
        self.malformed = Metrics.counter(NAMESPACE, "malformed")
        self.corrupt = Metrics.counter(NAMESPACE, "corrupt")
        self.incomplete = Metrics.counter(NAMESPACE, "shards_incomplete")

    def process(self, shard: str):
        start, n = time.time(), 0
        progress = ShardProgress(self.progress_dir, "read", shard)
        try:
            for record in tfrecord_io.read_shard(shard, lambda b: progress.update(n, b)):
                index, n = n, n + 1
                self.read.inc()
                try:
                    yield example_key(shard, index, record), record
                except example_proto.MalformedExampleError as e:
                    self.malformed.inc()
                    yield beam.pvalue.TaggedOutput(self.FAILURES, failure(
                        shard, index, "malformed", f"not a tf.train.Example: {e}"))
        except tfrecord_io.CorruptShardError as e:
            _LOG.error("shard %s cannot be read past record %d: %s", shard, e.index, e.reason)
            self.read.inc()
            self.corrupt.inc()
            self.incomplete.inc()
            yield beam.pvalue.TaggedOutput(self.FAILURES, failure(shard, e.index, "corrupt", e.reason))
        progress.update(n, done=True)
        _LOG.info("read %s: %d records (%.1f s)", shard, n, time.time() - start)


class RouteResultsFn(beam.DoFn):
    """``(ExampleKey, prediction or DecodeFailure)`` -> rows; tagged ``failures``."""

    FAILURES = "failures"

    def __init__(self):
        self.predicted = Metrics.counter(NAMESPACE, "predicted")
        self.failed = Metrics.counter(NAMESPACE, "decode_failed")

    def process(self, element):
        key, inference = element
        if isinstance(inference, float):
            self.predicted.inc()
            yield row(key, inference)
        else:
            self.failed.inc()
            yield beam.pvalue.TaggedOutput(self.FAILURES, failure(
                key.shard, key.index, "decode", inference.reason, key))


def row(key: ExampleKey, prediction: float) -> Dict[str, object]:
    return {"sensor_id": key.sensor_id, "timestamp": key.timestamp, "prediction": prediction,
            "label": key.label, "smap_sm": key.smap_sm, "gldas_sm": key.gldas_sm,
            "center_lat": key.center_lat, "center_long": key.center_long,
            "shard": posixpath.basename(key.shard), "index": key.index}


_FLOAT32_COLUMNS = {"prediction", "label", "center_lat", "center_long"}


def _cell(column: str, value) -> str:
    if value is None:
        return ""
    if column in _FLOAT32_COLUMNS:
        return str(np.float32(value))  # shortest text that reads back as the same float32
    if column == "timestamp":
        return repr(float(value))  # the stored float32 milliseconds, exactly
    return str(value)


def csv_line(r) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow([_cell(c, r[c]) for c in COLUMNS])
    return buf.getvalue()


CSV_HEADER = ",".join(COLUMNS)


def parquet_schema():
    import pyarrow as pa

    return pa.schema([("sensor_id", pa.string()), ("timestamp", pa.float64()),
                      ("prediction", pa.float32()), ("label", pa.float32()),
                      ("smap_sm", pa.int64()), ("gldas_sm", pa.int64()),
                      ("center_lat", pa.float32()), ("center_long", pa.float32()),
                      ("shard", pa.string()), ("index", pa.int64())])


def tf_example(r) -> bytes:
    """A row as a serialized ``tf.train.Example`` (absent values left out)."""
    kinds = {"sensor_id": "bytes", "shard": "bytes", "smap_sm": "int64", "gldas_sm": "int64",
             "index": "int64"}
    features = {}
    for c in COLUMNS:
        v = r[c]
        if v is None:
            continue
        kind = kinds.get(c, "float")
        features[c] = (kind, [v.encode() if kind == "bytes" else v])
    return example_proto.encode_example(features)


@dataclasses.dataclass
class PredictShards(beam.PTransform):
    """Shard paths -> ``{"rows": dicts, "failures": failure records}``."""

    model_handler: object  # a ModelHandler for (key, serialized) elements
    progress_dir: Optional[str] = None  # where local runs report progress

    STAGES = ("read",)

    def expand(self, shards):
        from apache_beam.ml.inference.base import RunInference

        read = (shards
                | "Spread shards" >> beam.Reshuffle()
                | "Read examples" >> beam.ParDo(ReadExamplesFn(self.progress_dir)).with_outputs(
                    ReadExamplesFn.FAILURES, main="examples"))
        routed = (read.examples
                  | "Run model" >> RunInference(self.model_handler)
                  | "Unwrap" >> beam.Map(lambda kv: (kv[0], kv[1].inference))
                  | "Route results" >> beam.ParDo(RouteResultsFn()).with_outputs(
                      RouteResultsFn.FAILURES, main="rows"))
        failures = (read.failures, routed.failures) | "All failures" >> beam.Flatten()
        return {"rows": routed.rows, "failures": failures}


# --------------------------------------------------------------------------
# Sample mode: the released script's behaviour

def iter_examples(paths: List[str]) -> Iterator[Tuple[str, int, bytes]]:
    for path in paths:
        for index, record in enumerate(tfrecord_io.read_shard(path)):
            yield path, index, record


def sample_predictions(paths: List[str], handler, num_samples: int,
                       num_skip: int = 0) -> Iterator[Tuple[str, int, object]]:
    """``(shard, index, prediction or DecodeFailure)`` for ``num_samples`` examples
    in file order after skipping ``num_skip``, run in batches of the handler's size.

    A generator: each batch's results come as soon as they are predicted, so a
    ``CorruptShardError`` met later leaves the earlier ones with the caller.
    """
    from model_runner.model import predict_serialized

    model = handler.load_model()
    batch: List[Tuple[str, int, bytes]] = []

    def flush():
        predictions = predict_serialized(model, [r for _, _, r in batch])
        done = [(s, i, p) for (s, i, _), p in zip(batch, predictions)]
        batch.clear()
        return done

    try:
        chosen = 0
        for position, item in enumerate(iter_examples(paths)):
            if chosen == num_samples:
                break
            if position < num_skip:
                continue
            batch.append(item)
            chosen += 1
            if len(batch) == handler.batch_size:
                yield from flush()
        if batch:
            yield from flush()
    except tfrecord_io.CorruptShardError:
        if batch:  # predict what was read before the damage, then report it
            yield from flush()
        raise
    finally:
        model.session.close()


def image_side(record: bytes, band: str = schema.IMAGE_BANDS[0]) -> Optional[int]:
    """The side N of an example's N x N images (from one band's value count),
    or None when the band is absent or not square."""
    values = example_proto.read_features(record, (band,)).get(band)
    if not values:
        return None
    side = int(round(len(values) ** 0.5))
    return side if side * side == len(values) else None
