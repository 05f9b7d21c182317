"""Step 1 of the merge: walk every shard once, keeping only light references.

Each record's wire format is read for ``sensor_id``, ``timestamp`` and the
label keys (``classify_record``): labelled examples need nothing more, the
others become ``ExampleRef``s; malformed records and unreadable shard tails
become failure records.
"""

import dataclasses
import logging
import posixpath
import time
from typing import NamedTuple, Optional

import apache_beam as beam

from transforms.dataset import example_proto, keys, schema
from transforms.dataset.failures import Failure, malformed
from transforms.dataset.walks import ShardReader
from transforms.insitu import window
from transforms.merge.accounting import COUNTERS, ScanReport

_LOG = logging.getLogger(__name__)


class ExampleRef(NamedTuple):
    """Where an unlabelled example is and what identifies its reading."""

    shard: str  # full input path
    index: int  # position in the shard
    sensor_id: str
    timestamp: float  # as stored: float32 Unix milliseconds


_SCAN_KEYS = (schema.SENSOR_ID, schema.TIMESTAMP, *schema.LABEL_KEYS)


def classify_record(shard: str, index: int, record: bytes):
    """What the merge does with one record.

    Args:
        shard: the shard's path; index: the record's position in it.
        record: the serialized record.

    Returns:
        ``("labelled", None)`` (it has a label already), ``("ref",
        ExampleRef)`` (to be labelled from ISMN) or ``("malformed", Failure)``.
    """
    try:
        found = example_proto.read_features(record, _SCAN_KEYS)
    except example_proto.MalformedExampleError as e:
        return "malformed", malformed(shard, index, e)
    if any(k in found for k in schema.LABEL_KEYS):
        return "labelled", None
    first = {name: values[0] for name, values in found.items() if values}
    sensor_id = keys.sensor_id_of(first)
    timestamp = first.get(schema.TIMESTAMP)
    timestamp = float(timestamp) if isinstance(timestamp, float) else None
    problem = None
    if sensor_id is None:
        problem = "missing or non-bytes sensor_id"
    elif timestamp is None:
        problem = "missing or non-float timestamp"
    else:
        try:
            schema.split_sensor_id(sensor_id)
            window.timestamp_seconds(timestamp)
        except ValueError as e:
            problem = str(e)
    if problem:
        return "malformed", Failure(shard, index, "malformed", problem, sensor_id,
                                            timestamp)
    return "ref", ExampleRef(shard, index, sensor_id, timestamp)


class ScanShardFn(beam.DoFn):
    """Shard path -> ExampleRefs; tagged ``failures`` and ``reports``."""

    FAILURES, REPORTS = "failures", "reports"

    def __init__(self, progress_dir: Optional[str] = None):
        self.progress_dir = progress_dir
        self.count = COUNTERS.named(
            read="examples_read", labelled="already_labelled", to_merge="ismn_examples",
            malformed="malformed", corrupt="corrupt", shards="shards_read",
            incomplete="shards_incomplete")

    def process(self, shard: str):
        start = time.time()
        labelled = refs = 0
        reader = ShardReader(shard, self.progress_dir)
        for index, record in reader:
            what, value = classify_record(shard, index, record)
            if what == "labelled":
                labelled += 1
            elif what == "ref":
                refs += 1
                yield value
            else:
                self.count.malformed.inc()
                yield beam.pvalue.TaggedOutput(self.FAILURES, value)
        if reader.corrupt is not None:
            self.count.corrupt.inc()
            self.count.incomplete.inc()
            yield beam.pvalue.TaggedOutput(self.FAILURES, reader.corrupt)
        self.count.read.inc(reader.examples_read)
        self.count.labelled.inc(labelled)
        self.count.to_merge.inc(refs)
        self.count.shards.inc()
        report = ScanReport(
            shard=posixpath.basename(shard), path=shard, complete=reader.corrupt is None,
            records=reader.records, already_labelled=labelled, ismn_examples=refs,
            seconds=round(time.time() - start, 3),
            error=None if reader.corrupt is None else str(reader.error))
        _LOG.info("scanned %s: %d records, %d already labelled, %d to merge (%.1f s)",
                  shard, reader.records, labelled, refs, time.time() - start)
        yield beam.pvalue.TaggedOutput(self.REPORTS, report)


@dataclasses.dataclass
class ScanShards(beam.PTransform):
    """Shard paths -> ``ExampleRef``s, with ``failures`` and per-shard ``reports``.

    ``progress_dir``: where local runs report progress (``transforms.dataset.progress``).
    """

    progress_dir: Optional[str] = None

    def expand(self, shards):
        return (shards
                | "Spread shards" >> beam.Reshuffle()
                | "Walk records" >> beam.ParDo(ScanShardFn(self.progress_dir)).with_outputs(
                    ScanShardFn.FAILURES, ScanShardFn.REPORTS, main="refs"))
