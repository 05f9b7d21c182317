"""Batched inference over shards as one PTransform (``pipelines.run_inference``).

``PredictShards``: shards are read record by record (``ReadExamplesFn``); the
few scalars the output rows carry are taken from each record's wire format
(``keys.example_key``), and the record itself goes, keyed by its
``ExampleKey``, through Beam's ``RunInference`` with
``model_runner.model.SoilMoistureModelHandler``, whose results its
post-processing (``outcome``) turns into output rows (``rows.py``) or
failure records (examples missing a band or with the wrong image size), as
unreadable shard tails and malformed records are. The released
script's sample mode is ``sample.py``.
"""

import dataclasses
import logging
import time
from typing import Optional, Tuple, Union

import apache_beam as beam
from apache_beam.ml.inference.base import KeyedModelHandler, PredictionResult, RunInference

from transforms.dataset import example_proto, keys, model_interface
from transforms.dataset.counters import FlowCounters
from transforms.dataset.failures import Failure, malformed
from transforms.dataset.keys import PredictionRow, row
from transforms.dataset.walks import ConcurrentWalks, ShardReader, WalkingDoFn

NAMESPACE = "run_inference"
COUNTERS = FlowCounters(NAMESPACE)
_LOG = logging.getLogger(__name__)


class ReadExamplesFn(WalkingDoFn):
    """Shard path -> ``(ExampleKey, serialized)``; tagged ``failures``.

    ``parallel`` shards of a bundle are read at once, each in a background
    thread (``walks.ConcurrentWalks``), at most ``prefetch`` records ahead
    of the model in all: inflating gzip is the one step of inference that
    cannot be split within a shard, and one core inflates one shard more
    slowly than the model predicts on a GPU or a light model on a CPU. So a
    shard's records may be emitted while a later shard of the same bundle is
    processed, or when the bundle finishes; every record of the bundle is
    emitted before it ends. Shards are in the global window (as
    ``MatchShards`` makes them).
    """

    FAILURES = "failures"

    def __init__(self, progress_dir: Optional[str] = None, prefetch: int = 10, parallel: int = 2):
        self.progress_dir = progress_dir
        self.depth = prefetch  # records read ahead, all shards together
        self.parallel = max(1, parallel)  # shards read at once
        self.count = COUNTERS.named(read="examples_read", malformed="malformed",
                                    corrupt="corrupt", incomplete="shards_incomplete")

    def start_bundle(self):
        super().start_bundle()
        self._readers = {}

    def process(self, shard: str):
        reader = ShardReader(shard, self.progress_dir)
        self._readers[len(self._readers)] = (reader, time.time())
        yield from self.walk(len(self._readers) - 1, reader)

    def outputs(self, taken):
        for key, item in taken:
            reader, start = self._readers[key]
            if item is ConcurrentWalks.END:
                yield from self._shard_done(reader, start)
                continue
            index, record = item
            self.count.read.inc()
            try:
                yield keys.example_key(reader.shard, index, record), record
            except example_proto.MalformedExampleError as e:
                self.count.malformed.inc()
                yield beam.pvalue.TaggedOutput(self.FAILURES,
                                               malformed(reader.shard, index, e))

    def _shard_done(self, reader: ShardReader, start: float):
        if reader.corrupt is not None:
            self.count.read.inc()
            self.count.corrupt.inc()
            self.count.incomplete.inc()
            yield beam.pvalue.TaggedOutput(self.FAILURES, reader.corrupt)
        _LOG.info("read %s: %d records (%.1f s)", reader.shard, reader.records, time.time() - start)


def outcome(result: Tuple[keys.ExampleKey, PredictionResult]) -> Union[PredictionRow, Failure]:
    """RunInference's post-processing: an example's ``(ExampleKey,
    PredictionResult)`` -> its output row, or its ``decode`` failure when the
    handler could not decode it (``DecodeFailure``)."""
    key, predicted = result
    if isinstance(predicted.inference, float):
        return row(key, predicted.inference)
    return Failure(key.shard, key.index, "decode", predicted.inference.reason, key.sensor_id,
                   key.timestamp)


@beam.typehints.with_output_types(PredictionRow)
class RouteResultsFn(beam.DoFn):
    """``PredictionRow`` or ``Failure`` -> rows; failures tagged ``failures``
    (counted as ``predicted`` and ``decode_failed``; predictions exactly on
    the model's clip bounds also as ``saturated``)."""

    FAILURES = "failures"

    def __init__(self):
        self.predicted = COUNTERS("predicted")
        self.saturated = COUNTERS("saturated")
        self.failed = COUNTERS("decode_failed")

    def process(self, result):
        if isinstance(result, PredictionRow):
            self.predicted.inc()
            if model_interface.saturated(result.prediction):
                self.saturated.inc()
            yield result
        else:
            self.failed.inc()
            yield beam.pvalue.TaggedOutput(self.FAILURES, result)


@dataclasses.dataclass
class PredictShards(beam.PTransform):
    """Shard paths -> ``{"rows": PredictionRows, "failures": Failures}``.

    Attributes:
        model_handler: a keyed handler (``model_runner.model.keyed_examples``)
            for ``(ExampleKey, serialized example)`` elements.
        progress_dir: where local runs report progress (None: nowhere).
        prefetch: records read ahead of the model (None: two more than the
            handler's largest batch, so reading goes on while a batch runs).
    """

    model_handler: KeyedModelHandler
    progress_dir: Optional[str] = None
    prefetch: Optional[int] = None

    STAGES = ("read",)

    def expand(self, shards):
        prefetch = self.prefetch
        if prefetch is None:
            prefetch = self.model_handler.batch_elements_kwargs()["max_batch_size"] + 2
        read = (shards
                | "Spread shards" >> beam.Reshuffle()
                | "Read examples" >> beam.ParDo(ReadExamplesFn(self.progress_dir, prefetch)).with_outputs(
                    ReadExamplesFn.FAILURES, main="examples"))
        routed = (read.examples
                  | "Run model" >> RunInference(self.model_handler.with_postprocess_fn(outcome))
                  | "Route results" >> beam.ParDo(RouteResultsFn()).with_outputs(
                      RouteResultsFn.FAILURES, main="rows"))
        failures = (read.failures, routed.failures) | "All failures" >> beam.Flatten()
        return {"rows": routed.rows, "failures": failures}
