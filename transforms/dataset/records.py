"""Records of the dataset as every flow sees them: where each one is, what
identifies it, how a failed one is reported, and how a shard is walked.

* ``ExampleKey``: an example's place (shard, index) and the scalars the
  output rows carry, read from its wire format (``example_key``), never by
  decoding the example.
* ``failure``: the one failure record (a line of ``failures.jsonl``) of every
  flow, naming the shard, the record index and the reason.
* ``ShardReader``: a shard's records in order with progress reporting; an
  unreadable tail ends the walk and becomes ``corrupt_failure``. The read
  count (``examples_read``) includes that unreadable record, so counters of a
  flow add up to it.
* ``ConcurrentWalks``: several of these walks (shards) at once, each in a
  background thread, their items merged into one bounded queue, so reading
  and inflating overlaps the work on what was read (one core inflates one
  gzip stream at ~400 MB/s, so one shard at a time cannot keep a model fed).
* ``FlowCounters``: one flow's Beam counters, its namespace given once.
"""

from __future__ import annotations

import logging
import posixpath
import queue
import threading
from types import SimpleNamespace
from typing import Dict, Iterable, Iterator, NamedTuple, Optional, Tuple, TypeVar

from apache_beam.metrics import Metrics

from transforms.dataset import example_proto, schema, tfrecord_io
from transforms.dataset.progress import ShardProgress

_LOG = logging.getLogger(__name__)

#: Every kind of failure a flow records: the merge's lookup (no ISMN sensor or
#: reading), value (reading outside [0, 1]), and every flow's malformed
#: (not a tf.train.Example, or its id fields unusable), corrupt (unreadable
#: shard tail) and decode (inference: bands missing or of the wrong size).
FAILURE_KINDS = ("lookup", "value", "malformed", "corrupt", "decode")


class FlowCounters:
    """The Beam counters of one flow: ``COUNTERS = FlowCounters("run_inference")``,
    then ``COUNTERS("examples_read").inc()`` anywhere in the flow."""

    def __init__(self, namespace: str):
        self.namespace = namespace

    def __call__(self, name: str):
        return Metrics.counter(self.namespace, name)

    def named(self, **names: str) -> SimpleNamespace:
        """Several counters at once: ``named(read="examples_read")`` -> ``.read``."""
        return SimpleNamespace(**{attr: self(name) for attr, name in names.items()})


def first_values(record: bytes, names) -> Dict[str, object]:
    """The first value of each of ``names`` the record has (raises MalformedExampleError)."""
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
    band as a packed int64 list (None otherwise; raises MalformedExampleError)."""
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
    """The row metadata of a record (raises MalformedExampleError)."""
    found = first_values(record, _KEY_FIELDS)
    return ExampleKey(shard, index, sensor_id_of(found), found.get(schema.TIMESTAMP),
                      label_of(found), found.get(schema.SMAP_SM), found.get(schema.GLDAS_SM),
                      found.get(schema.CENTER_LAT), found.get(schema.CENTER_LONG),
                      land_cover_of(record), _number(found.get(schema.SENTINEL_1_AGE)),
                      _number(found.get(schema.SENTINEL_2_AGE)))


def row(key: ExampleKey, prediction: Optional[float]) -> Dict[str, object]:
    """A prediction row (``schema.ROW_COLUMNS``) of an example; ``prediction``
    None for the rows of the baselines alone."""
    return {schema.SENSOR_ID: key.sensor_id, schema.TIMESTAMP: key.timestamp,
            schema.PREDICTION: prediction, schema.LABEL: key.label,
            schema.SMAP_SM: key.smap_sm, schema.GLDAS_SM: key.gldas_sm,
            schema.CENTER_LAT: key.center_lat, schema.CENTER_LONG: key.center_long,
            schema.SHARD: posixpath.basename(key.shard), schema.INDEX: key.index,
            schema.LAND_COVER: key.land_cover, schema.SENTINEL_1_AGE: key.sentinel_1_age,
            schema.SENTINEL_2_AGE: key.sentinel_2_age}


def failure(shard: str, index: int, kind: str, reason: str, sensor_id: Optional[str] = None,
            timestamp: Optional[float] = None, ismn_file: Optional[str] = None) -> Dict[str, object]:
    """A failure record (one line of ``failures.jsonl``); ``ismn_file``: the
    ISMN data file that could not be read, when that is the reason."""
    assert kind in FAILURE_KINDS, kind
    record = {"shard": posixpath.basename(shard), "path": shard, "index": index,
              "sensor_id": sensor_id, "timestamp": timestamp, "kind": kind, "reason": reason}
    if ismn_file is not None:
        record["ismn_file"] = ismn_file
    return record


def malformed(shard: str, index: int, error: Exception) -> Dict[str, object]:
    return failure(shard, index, "malformed", f"not a tf.train.Example: {error}")


class ShardReader:
    """``for index, record in ShardReader(shard, progress_dir)``: the shard's
    records in order. A ``CorruptShardError`` ends the walk (logged); then
    ``corrupt`` holds its failure record. ``examples_read`` counts the records
    read plus the unreadable one."""

    def __init__(self, shard: str, progress_dir: Optional[str] = None, stage: str = "read"):
        self.shard = shard
        self.progress = ShardProgress(progress_dir, stage, shard)
        self.records = 0
        self.corrupt: Optional[Dict[str, object]] = None
        self.error: Optional[tfrecord_io.CorruptShardError] = None

    def __iter__(self) -> Iterator[Tuple[int, bytes]]:
        try:
            for record in tfrecord_io.read_shard(
                    self.shard, lambda b: self.progress.update(self.records, b)):
                index, self.records = self.records, self.records + 1
                yield index, record
        except tfrecord_io.CorruptShardError as e:
            _LOG.error("shard %s cannot be read past record %d: %s", self.shard, e.index, e.reason)
            self.error = e
            self.corrupt = failure(self.shard, e.index, "corrupt", e.reason)
        self.progress.update(self.records, done=True)

    @property
    def examples_read(self) -> int:
        return self.records + (1 if self.corrupt else 0)


T = TypeVar("T")
_END = object()


class ConcurrentWalks:
    """Several walks run at once, each in a background thread, their items
    merged into one queue of at most ``depth`` items (the memory bound).

    ``start(key, items)`` begins a walk; ``take(until=...)`` yields
    ``(key, item)`` from every running walk as they come, and ``(key, END)``
    when a walk is done, until the walk ``until`` is done (or, without
    ``until``, until one walk is; ``take_all`` until all are). A walk's
    exception is raised by ``take`` after the items it produced before it.
    Each walk's items keep their order. ``close`` stops every walk.
    """

    END = _END

    def __init__(self, depth: int):
        self._queue: "queue.Queue" = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._threads: Dict[object, threading.Thread] = {}

    @property
    def running(self) -> int:
        return len(self._threads)

    def start(self, key, items: Iterable[T]) -> None:
        def walk():
            try:
                for item in items:
                    if not self._put((key, item, None)):
                        return
                self._put((key, _END, None))
            except BaseException as e:  # handed to the consumer
                self._put((key, _END, e))

        thread = threading.Thread(target=walk, name=f"walk-{len(self._threads)}", daemon=True)
        self._threads[key] = thread
        thread.start()

    def _put(self, entry) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def take(self, until=_END) -> Iterator[Tuple[object, object]]:
        while self._threads:
            key, item, error = self._queue.get()
            if item is _END:
                self._threads.pop(key).join()
                if error is not None:
                    raise error
                yield key, _END
                if until is _END or key == until:
                    return
            else:
                yield key, item

    def take_all(self) -> Iterator[Tuple[object, object]]:
        while self._threads:
            yield from self.take()

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads.values():
            thread.join()
        self._threads.clear()


def image_side(record: bytes, band: str = schema.IMAGE_BANDS[0]) -> Optional[int]:
    """The side N of an example's N x N images (from one band's value count),
    or None when the band is absent or not square."""
    values = example_proto.read_features(record, (band,)).get(band)
    if not values:
        return None
    side = int(round(len(values) ** 0.5))
    return side if side * side == len(values) else None
