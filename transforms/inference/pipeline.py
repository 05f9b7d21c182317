"""Batched inference over shards as one PTransform (``pipelines.run_inference``).

``PredictShards``: shards are read record by record (``ReadExamplesFn``); the
few scalars the output rows carry are taken from each record's wire format
(``records.example_key``), and the record itself goes, keyed by its
``ExampleKey``, through Beam's ``RunInference`` with
``model_runner.model.SoilMoistureModelHandler``. Results become output rows
(``rows.py``) or failure records (unreadable shard tails, malformed records,
examples missing a band or with the wrong image size). The released
script's sample mode is ``sample.py``.
"""

import dataclasses
import logging
import time
from typing import Optional

import apache_beam as beam

from transforms.dataset import example_proto, records
from transforms.dataset.records import row

NAMESPACE = "run_inference"
COUNTERS = records.FlowCounters(NAMESPACE)
_LOG = logging.getLogger(__name__)


class ReadExamplesFn(beam.DoFn):
    """Shard path -> ``(ExampleKey, serialized)``; tagged ``failures``.

    The shard is read ``prefetch`` records ahead in a background thread, so
    inflating the next records overlaps decoding and predicting this one.
    """

    FAILURES = "failures"

    def __init__(self, progress_dir: Optional[str] = None, prefetch: int = 2):
        self.progress_dir = progress_dir
        self.prefetch = prefetch  # records read ahead in a background thread
        self.count = COUNTERS.named(read="examples_read", malformed="malformed",
                                    corrupt="corrupt", incomplete="shards_incomplete")

    def process(self, shard: str):
        start = time.time()
        reader = records.ShardReader(shard, self.progress_dir)
        for index, record in records.prefetched(reader, self.prefetch):
            self.count.read.inc()
            try:
                yield records.example_key(shard, index, record), record
            except example_proto.MalformedExampleError as e:
                self.count.malformed.inc()
                yield beam.pvalue.TaggedOutput(self.FAILURES, records.malformed(shard, index, e))
        if reader.corrupt is not None:
            self.count.read.inc()
            self.count.corrupt.inc()
            self.count.incomplete.inc()
            yield beam.pvalue.TaggedOutput(self.FAILURES, reader.corrupt)
        _LOG.info("read %s: %d records (%.1f s)", shard, reader.records, time.time() - start)


class RouteResultsFn(beam.DoFn):
    """``(ExampleKey, prediction or DecodeFailure)`` -> rows; tagged ``failures``."""

    FAILURES = "failures"

    def __init__(self):
        self.predicted = COUNTERS("predicted")
        self.failed = COUNTERS("decode_failed")

    def process(self, element):
        key, inference = element
        if isinstance(inference, float):
            self.predicted.inc()
            yield row(key, inference)
        else:
            self.failed.inc()
            yield beam.pvalue.TaggedOutput(self.FAILURES, records.failure(
                key.shard, key.index, "decode", inference.reason, key.sensor_id, key.timestamp))


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
